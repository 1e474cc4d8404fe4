//! The studio application: drains worker events, draws the panels, forwards their commands.
//!
//! The UI thread never touches candle and never waits on the worker: commands go out over a
//! channel, events come back and are applied at the start of each frame.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, TryRecvError};

use crate::engine::corpus::asset_path;
use crate::engine::worker::{Command, WorkerHandle};
use crate::studio::panels::attention::HeatmapCache;
use crate::studio::panels::training::RunSettings;
use crate::studio::panels::{attention, blocks, dial, model, theory, training};
use crate::studio::state::{StudioState, Tab, WorkerState};

/// What a pending file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialogKind {
    Open,
    Save,
}

/// Longest the UI waits for the capture of a dial change, so that it lands in the same frame.
const DIAL_WAIT: std::time::Duration = std::time::Duration::from_millis(30);

/// The sample sentence captured at start-up.
pub const SAMPLE_TEXT: &str = "To be, or not to be, that is the question:";

/// The eframe application.
pub struct StudioApp {
    worker: Option<WorkerHandle>,
    /// What the panels show (public for tests).
    pub state: StudioState,
    heatmaps: HeatmapCache,
    settings: RunSettings,
    samples: Vec<(String, PathBuf)>,
    dialog: Option<(DialogKind, Receiver<Option<PathBuf>>)>,
    ctx: egui::Context,
    initial: Option<PathBuf>,
    export: Option<Receiver<Result<PathBuf, String>>>,
}

/// Bundled sample checkpoints.
pub fn sample_models() -> Vec<(String, PathBuf)> {
    [
        "tiny-shakespeare-l1",
        "tiny-shakespeare-l0",
        "tiny-clinical",
    ]
    .iter()
    .map(|n| {
        (
            n.to_string(),
            asset_path(&PathBuf::from("sample_models").join(n)),
        )
    })
    .collect()
}

impl StudioApp {
    /// Start the worker and load `initial` (default: the λ_train = 1 Shakespeare sample).
    pub fn new(ctx: &egui::Context, initial: Option<PathBuf>) -> Self {
        let samples = sample_models();
        let initial = initial.or_else(|| samples.first().map(|(_, p)| p.clone()));
        let mut app = Self {
            worker: None,
            state: StudioState::default(),
            heatmaps: HeatmapCache::default(),
            settings: RunSettings::default(),
            samples,
            dialog: None,
            ctx: ctx.clone(),
            initial,
            export: None,
        };
        app.start_worker();
        app
    }

    /// Restore persisted preferences.
    pub fn with_storage(mut self, storage: Option<&dyn eframe::Storage>) -> Self {
        if let Some(s) = storage {
            if let Some(settings) = eframe::get_value(s, "run_settings") {
                self.settings = settings;
            }
            if let Some(cm) = eframe::get_value(s, "colormap") {
                self.state.colormap = cm;
            }
        }
        self
    }

    fn start_worker(&mut self) {
        let ctx = self.ctx.clone();
        match WorkerHandle::spawn(Box::new(move || ctx.request_repaint())) {
            Ok(w) => {
                if let Some(p) = &self.initial {
                    w.send(Command::Load(p.clone()));
                }
                w.send(Command::SetDial(self.state.dial.clone()));
                w.send(Command::Capture(self.state.text.clone()));
                self.worker = Some(w);
                self.state.worker = WorkerState::Idle;
            }
            Err(e) => self.state.error = Some(format!("could not start the worker thread: {e}")),
        }
    }

    fn open_dialog(&mut self, kind: DialogKind) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let dialog = rfd::FileDialog::new();
                let picked = match kind {
                    DialogKind::Open => dialog
                        .set_title("Open a Localist checkpoint folder")
                        .pick_folder(),
                    DialogKind::Save => dialog
                        .set_title("Save the model as a checkpoint folder")
                        .set_file_name("checkpoint")
                        .save_file(),
                };
                let _ = tx.send(picked);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.dialog = Some((kind, rx)),
            Err(e) => self.state.error = Some(format!("could not open a file dialog: {e}")),
        }
    }

    /// Send queued commands; true when a dial change was among them.
    fn flush_commands(&mut self) -> bool {
        let Some(w) = &self.worker else { return false };
        let mut dial = false;
        for cmd in self.state.outbox.drain(..) {
            dial |= matches!(cmd, Command::SetDial(_));
            w.send(cmd);
        }
        dial
    }

    /// Apply events until a new capture arrives or `DIAL_WAIT` has passed.
    fn await_snapshot(&mut self) {
        let Some(w) = &self.worker else { return };
        let deadline = std::time::Instant::now() + DIAL_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(ev) = w.wait_event(left) else { break };
            let snapshot = matches!(ev, crate::engine::worker::Event::Snapshot(..));
            self.state.apply(ev);
            if snapshot {
                break;
            }
        }
    }

    /// Ask where to write a pending export, on a thread, and write it there atomically.
    fn start_export(&mut self) {
        let Some((name, bytes)) = self.state.pending_export.take() else {
            return;
        };
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("export-dialog".into())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title("Export")
                    .set_file_name(&name)
                    .save_file();
                if let Some(path) = picked {
                    let result = crate::engine::export::write_atomic(&path, &bytes)
                        .map(|()| path)
                        .map_err(|e| format!("{e:#}"));
                    let _ = tx.send(result);
                }
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.export = Some(rx),
            Err(e) => self.state.error = Some(format!("could not open a file dialog: {e}")),
        }
    }

    /// Apply waiting worker events (called at the start of every frame; public for tests).
    pub fn pump(&mut self) {
        if let Some(w) = &self.worker {
            for ev in w.drain() {
                self.state.apply(ev);
            }
            if !w.is_alive() {
                self.state.worker = WorkerState::Crashed;
            }
        }
        if let Some(rx) = &self.export {
            match rx.try_recv() {
                Ok(Ok(path)) => {
                    self.state.info = Some(format!("exported {}", path.display()));
                    self.export = None;
                }
                Ok(Err(e)) => {
                    self.state.error = Some(format!("export failed: {e}"));
                    self.export = None;
                }
                Err(TryRecvError::Disconnected) => self.export = None,
                Err(TryRecvError::Empty) => {}
            }
        }
        if let Some((kind, rx)) = &self.dialog {
            match rx.try_recv() {
                Ok(Some(path)) => {
                    self.state.send(match kind {
                        DialogKind::Open => Command::Load(path),
                        DialogKind::Save => Command::Save(path),
                    });
                    self.dialog = None;
                }
                Ok(None) | Err(TryRecvError::Disconnected) => self.dialog = None,
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    fn shortcuts(&mut self, ui: &egui::Ui) {
        let (space, open, save) = ui.input(|i| {
            (
                i.key_pressed(egui::Key::Space) && !i.modifiers.any(),
                i.modifiers.command && i.key_pressed(egui::Key::O),
                i.modifiers.command && i.key_pressed(egui::Key::S),
            )
        });
        if save {
            self.open_dialog(DialogKind::Save);
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
            self.open_dialog(DialogKind::Open);
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

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let (label, colour) = match self.state.worker {
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
                ui.label(format!(
                    "step {}  {:.0} tok/s",
                    p.stats.step + 1,
                    p.tokens_per_s
                ));
            }
            ui.separator();
            ui.label(format!("UI {:.1} ms", self.state.frame_ms))
                .on_hover_text(
                    "Time our UI code takes per frame (smoothed), before the GPU draws it.",
                );
            if let Some(l) = self.state.dial_latency_ms {
                ui.label(format!("dial to heatmaps {l:.1} ms"))
                    .on_hover_text("From the last dial change to its new heatmaps on screen.");
            }
            ui.separator();
            if let Some(err) = self.state.error.clone() {
                ui.colored_label(egui::Color32::LIGHT_RED, err);
                if ui.small_button("dismiss").clicked() {
                    self.state.error = None;
                }
            } else if let Some(info) = &self.state.info {
                ui.label(info);
            }
        });
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let frame_start = std::time::Instant::now();
        self.pump();
        self.shortcuts(ui);
        egui::Panel::top("menu").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Localist Studio");
                ui.separator();
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
            });
        });
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        let (mut want_open, mut want_save) = (false, false);
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(340.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    let samples = self.samples.clone();
                    let mut open = || want_open = true;
                    let mut save = || want_save = true;
                    model::show(ui, &mut self.state, &mut open, &mut save, &samples);
                    ui.separator();
                    dial::show(ui, &mut self.state);
                    ui.separator();
                    training::show(ui, &mut self.state, &mut self.settings);
                });
            });
        // A dial change is captured and drawn in this same frame: send it now and wait, at most
        // DIAL_WAIT, for the worker's new capture (about 1 ms for the tiny model) before the
        // heatmaps below are drawn. If the worker is busy (training), the wait runs out and the
        // heatmaps follow a frame later.
        if self.flush_commands() {
            self.await_snapshot();
        }
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.selectable_value(&mut self.state.tab, Tab::Attention, "Attention");
                ui.selectable_value(&mut self.state.tab, Tab::Theory, "Theory");
                ui.selectable_value(&mut self.state.tab, Tab::Blocks, "Blocks & anchors");
            });
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| match self.state.tab {
                Tab::Attention => attention::show(ui, &mut self.state, &mut self.heatmaps),
                Tab::Theory => theory::show(ui, &mut self.state),
                Tab::Blocks => blocks::show(ui, &mut self.state),
            });
        });
        if self.state.pending_export.is_some() {
            self.start_export();
        }
        if want_open {
            self.open_dialog(DialogKind::Open);
        } else if want_save {
            self.open_dialog(DialogKind::Save);
        }
        self.flush_commands();
        let ms = frame_start.elapsed().as_secs_f64() * 1e3;
        self.state.frame_ms = if self.state.frame_ms == 0.0 {
            ms
        } else {
            0.9 * self.state.frame_ms + 0.1 * ms
        };
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, "run_settings", &self.settings);
        eframe::set_value(storage, "colormap", &self.state.colormap);
    }
}
