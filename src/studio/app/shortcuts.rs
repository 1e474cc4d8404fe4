//! Keyboard shortcuts: Ctrl+O / Ctrl+S (with Shift: sessions), the arrow keys to move the
//! enlarged head, and Space to pause or resume training.

use crate::engine::worker::Command;
use crate::studio::state::WorkerState;

use super::dialogs::DialogKind;
use super::StudioApp;

impl StudioApp {
    /// Act on this frame's shortcut keys.
    pub(super) fn shortcuts(&mut self, ui: &egui::Ui) {
        let (space, open, save, shift) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::Space) && !i.modifiers.any(),
                i.modifiers.command && i.key_pressed(egui::Key::O),
                i.modifiers.command && i.key_pressed(egui::Key::S),
                i.modifiers.shift,
            )
        });
        if save {
            self.open_dialog(if shift {
                DialogKind::SaveSession
            } else {
                DialogKind::Save
            });
        }
        if ui.ctx().egui_wants_keyboard_input() {
            return;
        }
        let (dl, dh) = ui.input(|i| {
            let d = |a: egui::Key, b: egui::Key| {
                i32::from(i.key_pressed(b)) - i32::from(i.key_pressed(a))
            };
            (
                d(egui::Key::ArrowUp, egui::Key::ArrowDown),
                d(egui::Key::ArrowLeft, egui::Key::ArrowRight),
            )
        });
        if dl != 0 || dh != 0 {
            self.move_focus(dl, dh);
        }
        if space {
            match self.state.worker {
                WorkerState::Training => self.state.send(Command::Pause),
                WorkerState::Paused => self.state.send(Command::Resume),
                _ => {}
            }
        }
        if open {
            self.open_dialog(if shift {
                DialogKind::OpenSession
            } else {
                DialogKind::Open
            });
        }
    }

    /// Move the enlarged head by `dl` layers and `dh` heads (arrow keys), clamped to the grid.
    fn move_focus(&mut self, dl: i32, dh: i32) {
        let Some((cap, _)) = &self.state.capture else {
            return;
        };
        let (layers, heads) = (cap.num_layers as i32, cap.num_heads as i32);
        let (l, h) = self
            .state
            .focus
            .map(|(l, h)| (l as i32 + dl, h as i32 + dh))
            .unwrap_or((0, 0));
        self.state.focus = Some((
            l.clamp(0, layers - 1) as usize,
            h.clamp(0, heads - 1) as usize,
        ));
    }
}
