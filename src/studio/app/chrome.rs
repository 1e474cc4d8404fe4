//! The window's frame around the panels: the menu bar at the top and the status bar at the
//! bottom (worker state, speed, the last error or message).

use crate::engine::worker::JobStatus;
use crate::studio::state::{StudioState, WorkerState};

use super::dialogs::DialogKind;

/// How long a job runs before the status bar shows it with a spinner.
pub const BUSY_AFTER: std::time::Duration = std::time::Duration::from_millis(150);
use super::StudioApp;

/// The menu bar: sessions and the theme. Returns the session dialog asked for, if any.
pub(super) fn menu_bar(ui: &mut egui::Ui, state: &mut StudioState) -> Option<DialogKind> {
    let mut want_session = None;
    if ui.input(|i| i.key_pressed(egui::Key::F9)) {
        state.side_panel = !state.side_panel;
    }
    if ui.input(|i| i.key_pressed(egui::Key::F11)) {
        state.projector = !state.projector;
    }
    egui::Panel::top("menu").show(ui, |ui| {
        ui.horizontal(|ui| {
            ui.strong("Localist Studio");
            ui.separator();
            ui.toggle_value(&mut state.side_panel, "Controls")
                .on_hover_text("Show or hide the side panel: model, dial, training (F9)");
            ui.toggle_value(&mut state.projector, "Projector")
                .on_hover_text(
                    "For teaching: hide the side panel and draw the heatmaps as large as the \
                     window allows (F11)",
                );
            ui.separator();
            if ui
                .button("Open session…")
                .on_hover_text(
                    "Open a session file: checkpoint, dial, text and layout (Ctrl+Shift+O)",
                )
                .clicked()
            {
                want_session = Some(DialogKind::OpenSession);
            }
            if ui
                .button("Save session…")
                .on_hover_text(
                    "Save the checkpoint path and hash, the dial, the text and the layout \
                     (Ctrl+Shift+S)",
                )
                .clicked()
            {
                want_session = Some(DialogKind::SaveSession);
            }
            ui.separator();
            if ui
                .button("Tour")
                .on_hover_text("A short guided tour: the dial, Compare, Theory, Rules and Audit")
                .clicked()
            {
                crate::studio::tour::open(state);
            }
            ui.separator();
            theme_switch(ui);
        });
    });
    want_session
}

/// The Dark / Light theme buttons.
fn theme_switch(ui: &mut egui::Ui) {
    let dark = ui.visuals().dark_mode;
    if ui
        .selectable_label(dark, "Dark")
        .on_hover_text("Dark theme")
        .clicked()
    {
        ui.ctx().set_theme(egui::Theme::Dark);
    }
    if ui
        .selectable_label(!dark, "Light")
        .on_hover_text("Light theme")
        .clicked()
    {
        ui.ctx().set_theme(egui::Theme::Light);
    }
}

impl StudioApp {
    /// The long job the worker is doing now ("loading SmolLM2…"), if any (public for tests).
    pub fn busy(&self) -> Option<String> {
        self.worker.as_ref().and_then(|w| w.busy())
    }

    /// The long job the status bar shows: one under way for [`BUSY_AFTER`] or more (a quick
    /// capture does not make the bar flicker); asks for the frame that will show it.
    fn shown_busy(&self, ctx: &egui::Context) -> Option<JobStatus> {
        let job = self.worker.as_ref().and_then(|w| w.job())?;
        if job.running < BUSY_AFTER {
            ctx.request_repaint_after(BUSY_AFTER.saturating_sub(job.running));
            return None;
        }
        Some(job)
    }

    /// The status bar: worker state, training speed, UI timings, then the error or message.
    pub(super) fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let busy = self.shown_busy(ui.ctx());
            let (label, colour) = match self.state.worker {
                WorkerState::Idle if busy.is_some() => {
                    ui.add(egui::Spinner::new());
                    if let Some(f) = busy.as_ref().and_then(|j| j.fraction) {
                        ui.add(
                            egui::ProgressBar::new(f)
                                .desired_width(120.0)
                                .show_percentage(),
                        );
                    }
                    if busy.as_ref().is_some_and(|j| j.cancellable)
                        && ui
                            .button("Cancel")
                            .on_hover_text("Stop this job; the views keep what they showed")
                            .clicked()
                    {
                        if let Some(w) = &self.worker {
                            w.cancel();
                        }
                    }
                    let what = busy.as_ref().map(|j| j.what.as_str()).unwrap_or_default();
                    (what, crate::studio::widgets::WARNING)
                }
                WorkerState::Idle => ("worker idle", ui.visuals().text_color()),
                WorkerState::Training => ("training", egui::Color32::LIGHT_GREEN),
                WorkerState::Paused => ("paused", egui::Color32::YELLOW),
                WorkerState::Crashed => ("worker crashed", egui::Color32::LIGHT_RED),
            };
            ui.colored_label(colour, label);
            if self.state.worker == WorkerState::Crashed && ui.button("Restart worker").clicked() {
                self.start_worker();
            }
            if let Some(p) = &self.state.progress {
                ui.separator();
                ui.label(if p.tokens_per_s > 0.0 {
                    format!("step {}  {:.0} tok/s", p.stats.step + 1, p.tokens_per_s)
                } else {
                    format!("step {}", p.stats.step + 1)
                });
            }
            ui.separator();
            ui.label(format!("UI {:.1} ms", self.state.frame_ms))
                .on_hover_text(
                    "Time our UI code takes per frame (smoothed), before the GPU draws it.",
                );
            if let Some(p) = self.state.dial_preview_ms {
                ui.label(format!("dial to preview {p:.1} ms"))
                    .on_hover_text(
                        "From the last dial change to its preview heatmaps (bf16 weight \
                     products), shown until the exact ones arrive.",
                    );
            }
            if let Some(l) = self.state.dial_latency_ms {
                ui.label(format!("dial to heatmaps {l:.1} ms"))
                    .on_hover_text("From the last dial change to its exact heatmaps on screen.");
            }
            ui.separator();
            if self.state.error.is_some() {
                ui.colored_label(ui.visuals().error_fg_color, "error (above)");
            } else if let Some(info) = &self.state.info {
                ui.add(egui::Label::new(info.as_str()).truncate());
            }
        });
    }

    /// The last error, above the status bar: wrapped to the window's width, with Dismiss
    /// before the text so it stays in reach however long the message is, and Copy.
    pub(super) fn error_bar(&mut self, ui: &mut egui::Ui) {
        let Some(err) = self.state.error.clone() else {
            return;
        };
        egui::Panel::bottom("error_bar").show(ui, |ui| {
            ui.horizontal_top(|ui| {
                if ui
                    .button("Dismiss")
                    .on_hover_text("Hide this error (Esc)")
                    .clicked()
                    || (self.browser.is_none() && ui.input(|i| i.key_pressed(egui::Key::Escape)))
                {
                    self.state.error = None;
                }
                if ui
                    .button("Copy")
                    .on_hover_text("Copy the whole message")
                    .clicked()
                {
                    ui.ctx().copy_text(err.clone());
                }
                ui.add(
                    egui::Label::new(egui::RichText::new(&err).color(ui.visuals().error_fg_color))
                        .wrap(),
                );
            });
        });
    }
}
