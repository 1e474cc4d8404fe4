//! The app's side of session files: the session as it stands, bringing one back, saving and
//! opening them, the autosave tick, and the restore prompt after a crash.

use crate::engine::worker::Command;
use crate::studio::session::{load_session, save_session, CheckpointRef, Layout, SessionFile};

use super::StudioApp;

impl StudioApp {
    /// The session as it stands: checkpoint and hash, dial, text, layout, run settings.
    pub fn current_session(&self) -> SessionFile {
        let s = &self.state;
        SessionFile::new(
            s.checkpoint.as_ref().map(|(path, sha256)| CheckpointRef {
                path: path.clone(),
                sha256: sha256.clone(),
            }),
            s.dial.clone(),
            s.text.clone(),
            Layout {
                tab: s.tab,
                focus: s.focus,
                aggregated: s.aggregated,
                colormap: s.colormap,
                compare: s.compare.sides.clone(),
            },
            self.settings.clone(),
        )
        .with_rules(
            self.state.rules.applied.clone(),
            self.state.rules.off.clone(),
            self.state.rules.log.clone(),
        )
    }

    /// Bring a session back: its settings and layout now, its checkpoint, dial and text
    /// through the worker (the checkpoint's hash is checked when it arrives).
    pub fn apply_session(&mut self, session: SessionFile) {
        let s = &mut self.state;
        s.dial = session.dial.clone();
        s.text = session.text.clone();
        s.tab = session.layout.tab;
        s.focus = session.layout.focus;
        s.aggregated = session.layout.aggregated;
        s.colormap = session.layout.colormap;
        s.compare.sides = session.layout.compare.clone();
        s.compare.views = None;
        s.theory = None;
        self.settings = session.run_settings.clone();
        s.rules.log = session.audit_log.clone();
        let rules_text = session.rules.concat();
        s.rules.editor = rules_text.clone();
        s.send(Command::SetDial(session.dial));
        s.send(Command::Capture(session.text));
        let had_rules = !rules_text.trim().is_empty() || !s.rules.applied.is_empty();
        match session.checkpoint {
            Some(ck) => {
                s.expected_checkpoint = Some((ck.path.clone(), ck.sha256));
                s.send(Command::Load(ck.path));
            }
            None => {
                s.info = Some(
                    "session restored; it names no checkpoint (the model had not been saved)"
                        .into(),
                )
            }
        }
        // The rules go in force after the model has loaded (commands run in order).
        if had_rules {
            s.apply_rules(rules_text, session.rules_off.clone());
        }
    }

    /// Write the current session to `path` (atomically).
    pub fn save_session_to(&mut self, path: &std::path::Path) {
        match save_session(path, &self.current_session()) {
            Ok(()) => {
                self.state.info = Some(match &self.state.checkpoint {
                    Some(_) => format!("session saved to {}", path.display()),
                    None => format!(
                        "session saved to {}; the model is not saved, so the session names no \
                         checkpoint (save the model first to include it)",
                        path.display()
                    ),
                })
            }
            Err(e) => self.state.error = Some(format!("could not save the session: {e:#}")),
        }
    }

    /// Read a session file and apply it; a bad file leaves everything as it was.
    pub fn open_session_from(&mut self, path: &std::path::Path) {
        match load_session(path) {
            Ok(s) => self.apply_session(s),
            Err(e) => self.state.error = Some(format!("could not open the session: {e:#}")),
        }
    }

    /// Autosave now if something changed (public for tests; the frame loop calls it).
    pub fn autosave_tick(&mut self, force: bool) {
        // Never overwrite the autosave of a crashed studio while its restore is on offer, nor
        // with the half-started state of the first frames (before a model has arrived).
        if self.state.restore_offer.is_some() || self.state.summary.is_none() {
            return;
        }
        let session = self.current_session();
        if let Some(a) = &mut self.autosave {
            if let Err(e) = a.tick(&session, force) {
                self.state.error = Some(format!("autosave failed: {e:#}"));
                self.autosave = None;
            }
        }
    }

    /// After a crash: offer the autosaved session back.
    pub(super) fn restore_prompt(&mut self, ui: &mut egui::Ui) {
        let Some(offer) = &self.state.restore_offer else {
            return;
        };
        let what = match &offer.checkpoint {
            Some(c) => c.path.display().to_string(),
            None => "an unsaved model".into(),
        };
        let mut choice = None;
        egui::Modal::new(egui::Id::unique("restore_offer")).show(ui.ctx(), |ui| {
            ui.heading("Restore the last session?");
            ui.label(format!(
                "The studio did not close cleanly last time. The autosaved session has {what}, \
                 the dial at λ = {:.2} (mode {}) and the text {:?}.",
                offer.dial.params.lambda,
                offer.dial.params.mode.label(),
                offer.text.chars().take(60).collect::<String>()
            ));
            ui.horizontal(|ui| {
                if ui.button("Restore").clicked() {
                    choice = Some(true);
                }
                if ui.button("Discard").clicked() {
                    choice = Some(false);
                }
            });
        });
        match choice {
            Some(true) => {
                if let Some(s) = self.state.restore_offer.take() {
                    self.apply_session(s);
                }
            }
            Some(false) => self.state.restore_offer = None,
            None => {}
        }
    }
}
