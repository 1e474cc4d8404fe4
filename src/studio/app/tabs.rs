//! Where the panels go: the left column (model, dial, training) and the central area with its
//! tab bar, each tab drawn by its panel with what it needs passed in.

use std::path::PathBuf;

use crate::engine::corpus::bundled_path;
use crate::studio::panels::specialists::PoolRequest;
use crate::studio::panels::{
    attention, audit, blocks, compare, dial, generate, model, recruitment, rules, specialists,
    theory, training,
};
use crate::studio::state::Tab;

use super::StudioApp;

/// What the left column asked for this frame.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct ControlsWant {
    /// The checkpoint "Open…" dialog.
    pub open: bool,
    /// The checkpoint "Save…" dialog.
    pub save: bool,
}

/// The tab bar over the central area.
fn tab_bar(ui: &mut egui::Ui, tab: &mut Tab) {
    // One row that scrolls sideways in a narrow window instead of wrapping onto a second.
    egui::ScrollArea::horizontal()
        .id_salt("tab_bar")
        .show(ui, |ui| tab_buttons(ui, tab));
}

fn tab_buttons(ui: &mut egui::Ui, tab: &mut Tab) {
    // The tab shown last frame: when it changed (a click, a shortcut, the Tour, a restored
    // session), the bar scrolls the new one into view, so a narrow window never hides it.
    let last_id = egui::Id::unique("tab_bar_last_shown");
    let changed = ui.data(|d| d.get_temp::<Tab>(last_id)) != Some(*tab);
    ui.horizontal(|ui| {
        for (value, label, tip) in TABS {
            let r = ui.selectable_value(tab, value, label);
            let r = if tip.is_empty() {
                r
            } else {
                r.on_hover_text(tip)
            };
            if changed && *tab == value {
                r.scroll_to_me(None);
            }
        }
    });
    ui.data_mut(|d| d.insert_temp(last_id, *tab));
}

/// The tabs in bar order: value, label, tooltip (empty: none).
const TABS: [(Tab, &str, &str); 9] = [
    (Tab::Attention, "Attention", ""),
    (Tab::Theory, "Theory", ""),
    (Tab::Blocks, "Blocks & anchors", ""),
    (
        Tab::Compare,
        "Compare",
        "Two configurations side by side on the same text",
    ),
    (
        Tab::Rules,
        "Rules",
        "Write rules and put them in force in the running model",
    ),
    (
        Tab::Generate,
        "Generate",
        "Generate a few tokens and see the next-token distribution under the dial",
    ),
    (
        Tab::Recruitment,
        "Recruitment",
        "Blocks recruited, merged and pruned while training, each decision in bits",
    ),
    (
        Tab::Specialists,
        "Specialists",
        "A pool of specialists: documents routed by shortest code length",
    ),
    (
        Tab::Audit,
        "Audit",
        "Which rule maps to which block, measured; the audit log; the report",
    ),
];

impl StudioApp {
    /// The left column: the Model, Dial and Training panels.
    pub(super) fn controls(&mut self, ui: &mut egui::Ui) -> ControlsWant {
        let mut want = ControlsWant::default();
        if !self.state.side_panel || self.state.projector {
            return want;
        }
        // Dragged between 220 and 560 points; content that does not fit scrolls rather than
        // widening the panel (a long model description once pushed it to 425 for good).
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(340.0)
            .size_range(220.0..=560.0)
            .show(ui, |ui| {
                egui::ScrollArea::both().show(ui, |ui| {
                    let samples = self.samples.clone();
                    let pretrained = self.pretrained.clone();
                    let mut open = || want.open = true;
                    let mut save = || want.save = true;
                    model::show(
                        ui,
                        &mut self.state,
                        &mut open,
                        &mut save,
                        &samples,
                        &pretrained,
                    );
                    ui.separator();
                    dial::show(ui, &mut self.state);
                    ui.separator();
                    training::show(ui, &mut self.state, &mut self.settings);
                });
            });
        want
    }

    /// The central area: the tab bar and the open tab. Returns what the Specialists tab asked
    /// to open.
    pub(super) fn central(&mut self, ui: &mut egui::Ui) -> Option<PoolRequest> {
        let mut want_pool = None;
        egui::CentralPanel::default().show(ui, |ui| {
            tab_bar(ui, &mut self.state.tab);
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| self.tab_body(ui, &mut want_pool));
        });
        want_pool
    }

    /// The open tab's panel.
    fn tab_body(&mut self, ui: &mut egui::Ui, want_pool: &mut Option<PoolRequest>) {
        match self.state.tab {
            Tab::Attention => attention::show(ui, &mut self.state, &mut self.heatmaps),
            Tab::Theory => theory::show(ui, &mut self.state),
            Tab::Blocks => blocks::show(ui, &mut self.state),
            Tab::Compare => {
                let models: Vec<_> = self
                    .samples
                    .iter()
                    .chain(&self.pretrained)
                    .cloned()
                    .collect();
                compare::show(ui, &mut self.state, &mut self.compare_cache, &models)
            }
            Tab::Rules => rules::show(ui, &mut self.state, &self.example_rules),
            Tab::Audit => audit::show(ui, &mut self.state),
            Tab::Recruitment => recruitment::show(ui, &mut self.state),
            Tab::Generate => generate::show(ui, &mut self.state),
            Tab::Specialists => {
                let sample = bundled_path(&PathBuf::from("sample_models/pool-clinical-payments"));
                let held = self.state.summary.as_ref().map(|s| s.source.clone());
                *want_pool = specialists::show(
                    ui,
                    &mut self.pool,
                    &mut self.pool_form,
                    (&sample, held.as_deref()),
                );
            }
        }
    }
}
