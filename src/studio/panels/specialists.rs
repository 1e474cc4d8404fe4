//! The Specialists panel: a saved pool of specialists (SPEC §10) — the specialists with their
//! parents, the parameters each adds and their blocks, the routing table (bits per document per specialist,
//! the shortest in bold) with the document under the pointer highlighted and its text shown,
//! and every move with its bits.

use std::path::{Path, PathBuf};

use egui::{Color32, RichText};

use crate::engine::protocol::{GrowPool, PoolManifest, PoolSummary};
use crate::studio::panels::specialists_grow::{self, GrowForm};

/// A pool as the panel shows it.
pub struct PoolView {
    /// Its folder.
    pub dir: PathBuf,
    /// What the panel shows of its manifest.
    pub manifest: PoolManifest,
    /// The documents' texts, when `documents.txt` lies beside the manifest.
    pub texts: Vec<String>,
    /// The document row under the pointer.
    pub hovered: Option<usize>,
}

impl From<PoolSummary> for PoolView {
    fn from(p: PoolSummary) -> Self {
        Self {
            dir: p.dir,
            manifest: p.manifest,
            texts: p.texts,
            hovered: None,
        }
    }
}

/// A specialist's blocks in one line: their names besides "unassigned", or that it shares the
/// base's (a pool saved before specialists had their own).
fn blocks_line(names: Option<&[String]>) -> String {
    match names {
        None => "the base's".into(),
        Some(n) if n.len() <= 1 => "none".into(),
        Some(n) => n.iter().skip(1).cloned().collect::<Vec<_>>().join(", "),
    }
}

/// What the user asked of the panel's buttons.
#[derive(Clone, Debug)]
pub enum PoolRequest {
    /// Ask for a pool folder (a file dialog).
    Choose,
    /// Open this pool folder (the bundled one).
    Open(PathBuf),
    /// Grow a pool and save it.
    Grow(Box<GrowPool>),
}

/// Draw the panel; `sample` is the bundled pool, `held` the path of the model held. Returns
/// what the user asked to open or grow (the app asks the worker).
pub fn show(
    ui: &mut egui::Ui,
    view: &mut Option<PoolView>,
    form: &mut GrowForm,
    (sample, held): (&Path, Option<&str>),
) -> Option<PoolRequest> {
    let mut request = buttons(ui, view.as_ref(), sample);
    if let Some(g) = specialists_grow::show(ui, form, held) {
        request = Some(PoolRequest::Grow(Box::new(g)));
    }
    let Some(v) = view.as_mut() else {
        ui.label(
            "No pool open. `localist specialists` grows one over a set of documents; the bundled \
             one serves clinical notes and payments.",
        );
        return request;
    };
    ui.separator();
    specialists(ui, &v.manifest);
    ui.separator();
    moves(ui, &v.manifest);
    ui.separator();
    routing(ui, v);
    request
}

fn buttons(ui: &mut egui::Ui, view: Option<&PoolView>, sample: &Path) -> Option<PoolRequest> {
    let mut request = None;
    ui.horizontal(|ui| {
        if ui
            .button("Open pool…")
            .on_hover_text(
                "A folder written by `localist specialists` (checkpoints and manifest.json)",
            )
            .clicked()
        {
            request = Some(PoolRequest::Choose);
        }
        if ui
            .button("pool-clinical-payments")
            .on_hover_text(sample.display().to_string())
            .clicked()
        {
            request = Some(PoolRequest::Open(sample.to_path_buf()));
        }
        if let Some(v) = view {
            ui.label(v.dir.display().to_string());
        }
    });
    request
}

fn specialists(ui: &mut egui::Ui, m: &PoolManifest) {
    ui.strong("specialists");
    if let Some(base) = &m.base_model {
        ui.label(format!(
            "Adapters on a pretrained decoder: {base}. Each specialist is an adapter folder \
             that opens as a model (the base with it applied), charged for its adapter's \
             parameters."
        ));
    }
    egui::Grid::new("pool_specialists").striped(true).num_columns(5).show(ui, |ui| {
        for h in ["name", "parent", "parameters added", "documents routed", "blocks"] {
            ui.strong(h);
        }
        ui.end_row();
        for s in &m.specialists {
            ui.label(&s.name);
            ui.label(s.parent.clone().unwrap_or_else(|| "-".into()));
            ui.label(s.added_params.to_string())
                .on_hover_text("Parameters this specialist adds over its parent: all it is charged for, (P/2)·log₂ n bits.");
            ui.label(m.routing.iter().filter(|r| r.specialist == s.name).count().to_string());
            ui.label(blocks_line(s.blocks.as_deref()))
                .on_hover_text("Its own blocks (besides \"unassigned\"); a block it recruited is charged to it, header and map bits.");
            ui.end_row();
        }
    });
}

fn moves(ui: &mut egui::Ui, m: &PoolManifest) {
    ui.strong("moves");
    for mv in &m.log {
        let text = format!(
            "round {}: {}: DL_total {:.0} -> {:.0} bits ({:+.0})",
            mv.round,
            mv.what,
            mv.dl_before,
            mv.dl_after,
            mv.dl_after - mv.dl_before
        );
        let colour = if mv.accepted {
            Color32::LIGHT_GREEN
        } else {
            ui.visuals().weak_text_color()
        };
        ui.colored_label(
            colour,
            format!(
                "{} {}",
                if mv.accepted { "accepted" } else { "rejected" },
                text
            ),
        );
    }
}

fn routing(ui: &mut egui::Ui, v: &mut PoolView) {
    ui.strong("routing: bits per document per specialist (shortest in bold)");
    let mut hovered = None;
    let highlight = ui.visuals().selection.bg_fill;
    let m = &v.manifest;
    egui::ScrollArea::vertical()
        .id_salt("pool_routing")
        .max_height(360.0)
        .show(ui, |ui| {
            egui::Grid::new("pool_routing_grid")
                .num_columns(m.specialists.len() + 3)
                .show(ui, |ui| {
                    ui.strong("document");
                    ui.strong("tokens");
                    for s in &m.specialists {
                        ui.strong(&s.name);
                    }
                    ui.strong("routed to");
                    ui.end_row();
                    for (d, r) in m.routing.iter().enumerate() {
                        let lit = v.hovered == Some(d);
                        let cell = |t: String, bold: bool| {
                            let mut rt = RichText::new(t);
                            if bold {
                                rt = rt.strong();
                            }
                            if lit {
                                rt = rt.background_color(highlight);
                            }
                            rt
                        };
                        let best = r.bits.iter().cloned().fold(f64::INFINITY, f64::min);
                        let mut resp = ui.label(cell(r.document.clone(), false));
                        resp = resp.union(ui.label(cell(r.tokens.to_string(), false)));
                        for b in &r.bits {
                            resp = resp.union(ui.label(cell(format!("{b:.0}"), *b == best)));
                        }
                        resp = resp.union(ui.label(cell(r.specialist.clone(), false)));
                        ui.end_row();
                        if ui.rect_contains_pointer(resp.rect) {
                            hovered = Some(d);
                            if let Some(text) = v.texts.get(d) {
                                resp.on_hover_text(text.clone());
                            }
                        }
                    }
                });
        });
    if v.hovered != hovered {
        // The highlight is drawn from the hovered row: show it in the next frame at once.
        ui.ctx().request_repaint();
    }
    v.hovered = hovered;
}
