//! The studio application: drains worker events, draws the panels, forwards their commands.
//!
//! The UI thread never touches candle and never waits on the worker: commands go out over a
//! channel, events come back and are applied at the start of each frame.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, TryRecvError};

use crate::engine::corpus::asset_path;
use crate::engine::worker::{Command, WorkerHandle};
use crate::studio::panels::attention::HeatmapCache;
use crate::studio::panels::compare::CompareCache;
use crate::studio::panels::specialists::{PoolRequest, PoolView};
use crate::studio::panels::training::RunSettings;
use crate::studio::panels::{
    attention, audit, blocks, compare, dial, generate, model, recruitment, rules, specialists,
    theory, training,
};
use crate::studio::session::{
    load_session, save_session, Autosave, CheckpointRef, Layout, SessionFile,
};
use crate::studio::state::{FileRequest, StudioState, Tab, WorkerState};

/// What a pending file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum DialogKind {
    Open,
    OpenModelFile,
    OpenModelFolder,
    Lexicon,
    Save,
    OpenSession,
    SaveSession,
    OpenPool,
}

/// A cropped screenshot: suggested file name and PNG bytes (or why it failed).
type Shot = (String, Result<Vec<u8>, String>);

/// Longest the UI waits for the capture of a dial change, so that it lands in the same frame.
const DIAL_WAIT: std::time::Duration = std::time::Duration::from_millis(30);

/// Longest the UI waits for a pool of specialists it asked for, so that it shows in the next
/// frame (reading a manifest takes milliseconds; a busy worker answers later).
const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub use crate::studio::state::SAMPLE_TEXT;

/// The eframe application.
pub struct StudioApp {
    worker: Option<WorkerHandle>,
    /// What the panels show (public for tests).
    pub state: StudioState,
    heatmaps: HeatmapCache,
    compare_cache: CompareCache,
    /// Settings of the next training run (public for tests).
    pub settings: RunSettings,
    samples: Vec<(String, PathBuf)>,
    /// Fetched pretrained models (Model panel buttons).
    pretrained: Vec<(String, PathBuf)>,
    dialog: Option<(DialogKind, Receiver<Option<PathBuf>>)>,
    ctx: egui::Context,
    initial: Option<PathBuf>,
    export: Option<Receiver<Result<PathBuf, String>>>,
    autosave: Option<Autosave>,
    /// The bundled example rule file (for "Load example").
    example_rules: String,
    /// The pool of specialists shown in the Specialists tab (public for tests).
    pub pool: Option<PoolView>,
    /// Cropped screenshots (plots and heatmaps as drawn) on their way to an export.
    shots: (crossbeam_channel::Sender<Shot>, Receiver<Shot>),
}

/// Bundled sample checkpoints.
pub fn sample_models() -> Vec<(String, PathBuf)> {
    [
        "tiny-shakespeare-l1",
        "tiny-shakespeare-l0",
        "tiny-clinical",
        "tiny-topics-recruited",
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

/// The pretrained models `scripts/fetch_models.sh` unpacked (none before it has run).
pub fn pretrained_models() -> Vec<(String, PathBuf)> {
    PRETRAINED
        .iter()
        .map(|(name, rel)| (name.to_string(), asset_path(&PathBuf::from(rel))))
        .filter(|(_, p)| p.exists())
        .collect()
}

/// The pretrained models of `scripts/fetch_models.sh`: button label and path.
pub const PRETRAINED: [(&str, &str); 2] = [
    (
        "SmolLM2-135M (GGUF)",
        "models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    ("all-MiniLM-L6-v2", "models/all-MiniLM-L6-v2"),
];

impl StudioApp {
    /// Start the worker and load `initial` (default: the λ_train = 1 Shakespeare sample).
    pub fn new(ctx: &egui::Context, initial: Option<PathBuf>) -> Self {
        let samples = sample_models();
        let initial = initial.or_else(|| samples.first().map(|(_, p)| p.clone()));
        let mut app = Self {
            worker: None,
            state: StudioState::default(),
            heatmaps: HeatmapCache::default(),
            compare_cache: CompareCache::default(),
            settings: RunSettings::default(),
            samples,
            pretrained: pretrained_models(),
            dialog: None,
            ctx: ctx.clone(),
            initial,
            export: None,
            autosave: None,
            example_rules: std::fs::read_to_string(asset_path(&PathBuf::from(
                "assets/rules/clinical_payments.rules",
            )))
            .unwrap_or_default(),
            pool: None,
            shots: crossbeam_channel::unbounded(),
        };
        app.start_worker();
        app
    }

    /// Autosave the session into `dir` every few seconds, and offer the last autosave back
    /// when the previous studio using `dir` did not close cleanly.
    pub fn with_autosave(mut self, dir: PathBuf) -> Self {
        let mut autosave = Autosave::new(dir);
        match autosave.start() {
            Ok(offer) => self.state.restore_offer = offer,
            Err(e) => self.state.error = Some(format!("autosave is off: {e:#}")),
        }
        self.autosave = Some(autosave);
        self
    }

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
                let session = |d: rfd::FileDialog| {
                    d.add_filter("Localist session", &["json"])
                        .add_filter("all files", &["*"])
                };
                let picked = match kind {
                    DialogKind::Open => dialog
                        .set_title("Open a Localist checkpoint folder")
                        .pick_folder(),
                    DialogKind::OpenModelFile => dialog
                        .set_title("Open a pretrained model: a .gguf file (LLaMA family)")
                        .add_filter("GGUF model", &["gguf"])
                        .add_filter("all files", &["*"])
                        .pick_file(),
                    DialogKind::OpenModelFolder => dialog
                        .set_title(
                            "Open a pretrained model: a Hugging Face folder (config.json, \
                             model.safetensors, tokenizer.json)",
                        )
                        .pick_folder(),
                    DialogKind::Lexicon => dialog
                        .set_title("Blocks from a lexicon (word<TAB>block per line)")
                        .add_filter("lexicon", &["tsv", "txt", "lexicon"])
                        .add_filter("all files", &["*"])
                        .pick_file(),
                    DialogKind::Save => dialog
                        .set_title("Save the model as a checkpoint folder")
                        .set_file_name("checkpoint")
                        .save_file(),
                    DialogKind::OpenSession => {
                        session(dialog.set_title("Open a session")).pick_file()
                    }
                    DialogKind::OpenPool => dialog
                        .set_title("Open a pool of specialists (a folder with manifest.json)")
                        .pick_folder(),
                    DialogKind::SaveSession => session(dialog.set_title("Save the session"))
                        .set_file_name(format!(
                            "session.{}",
                            crate::studio::session::SESSION_EXTENSION
                        ))
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

    /// Send queued commands; true when a dial or rules change was among them.
    fn flush_commands(&mut self) -> bool {
        let Some(w) = &self.worker else { return false };
        let mut dial = false;
        for cmd in self.state.outbox.drain(..) {
            dial |= matches!(cmd, Command::SetDial(_) | Command::SetRules { .. });
            w.send(cmd);
        }
        dial
    }

    /// Ask the worker to read a pool of specialists, and apply events until it has answered
    /// or `POOL_WAIT` has passed (a later answer is taken in a later frame).
    fn open_pool(&mut self, dir: PathBuf) {
        self.state.send(Command::OpenPool(dir));
        if self.flush_commands() {
            self.await_snapshot();
        }
        let Some(w) = &self.worker else { return };
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(ev) = w.wait_event(left) else { break };
            let answered = matches!(ev, crate::engine::worker::Event::Pool(_));
            self.state.apply(ev);
            if answered {
                break;
            }
        }
        self.take_pool();
    }

    /// Show a pool the worker has read.
    fn take_pool(&mut self) {
        if let Some(pool) = self.state.pool_opened.take() {
            self.pool = Some(PoolView::from(pool));
        }
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
        self.save_dialog("Export".into(), name, move |path| {
            crate::engine::export::write_atomic(path, &bytes)
        });
    }

    /// Ask where to write an audit report; write the HTML there and its JSON twin beside it.
    fn start_report_export(&mut self, html: Vec<u8>, json: Vec<u8>) {
        self.save_dialog(
            "Export the audit report (HTML; a .json twin is written beside it)".into(),
            "audit-report.html".into(),
            move |path| write_report(path, &html, &json),
        );
    }

    /// A save dialog on its own thread; `write` runs there on the chosen path, and its outcome
    /// comes back through `self.export` (shown in the status bar).
    fn save_dialog(
        &mut self,
        title: String,
        file_name: String,
        write: impl FnOnce(&std::path::Path) -> anyhow::Result<()> + Send + 'static,
    ) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("save-dialog".into())
            .spawn(move || {
                let picked = rfd::FileDialog::new()
                    .set_title(&title)
                    .set_file_name(&file_name)
                    .save_file();
                if let Some(path) = picked {
                    let result = write(&path).map(|()| path).map_err(|e| format!("{e:#}"));
                    let _ = tx.send(result);
                }
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.export = Some(rx),
            Err(e) => self.state.error = Some(format!("could not open a file dialog: {e}")),
        }
    }

    /// Take a screenshot of the next frame and crop it to the requested region, as a PNG.
    fn start_screenshot(&mut self) {
        let Some((name, rect)) = self.state.screenshot_request.take() else {
            return;
        };
        let ppp = self.ctx.pixels_per_point();
        let tx = self.shots.0.clone();
        let ctx = self.ctx.clone();
        self.ctx.request_screenshot(move |img| {
            let crop = img.region(&rect, Some(ppp));
            let rgba: Vec<u8> = crop
                .pixels
                .iter()
                .flat_map(|c| c.to_srgba_unmultiplied())
                .collect();
            let png = crate::studio::export::rgba_png(crop.width(), crop.height(), &rgba)
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send((name, png));
            ctx.request_repaint();
        });
        self.state.info = Some("taking a screenshot of the plot…".into());
    }

    /// Apply waiting worker events (called at the start of every frame; public for tests).
    pub fn pump(&mut self) {
        while let Ok((name, png)) = self.shots.1.try_recv() {
            match png {
                Ok(bytes) => self.state.pending_export = Some((name, bytes)),
                Err(e) => self.state.error = Some(format!("export failed: {e}")),
            }
        }
        if let Some(w) = &self.worker {
            for ev in w.drain() {
                self.state.apply(ev);
            }
            if !w.is_alive() {
                self.state.worker = WorkerState::Crashed;
            }
        }
        self.take_pool();
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
                    let kind = *kind;
                    self.dialog = None;
                    match kind {
                        DialogKind::Open
                        | DialogKind::OpenModelFile
                        | DialogKind::OpenModelFolder => self.state.send(Command::Load(path)),
                        DialogKind::Lexicon => self.state.send(Command::SetImportedBlocks(
                            crate::engine::worker::ImportedBlocks::Lexicon(path),
                        )),
                        DialogKind::Save => self.state.send(Command::Save(path)),
                        DialogKind::OpenSession => self.open_session_from(&path),
                        DialogKind::SaveSession => self.save_session_to(&path),
                        DialogKind::OpenPool => self.open_pool(path),
                    }
                }
                Ok(None) | Err(TryRecvError::Disconnected) => self.dialog = None,
                Err(TryRecvError::Empty) => {}
            }
        }
    }

    fn shortcuts(&mut self, ui: &egui::Ui) {
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

    /// After a crash: offer the autosaved session back.
    fn restore_prompt(&mut self, ui: &mut egui::Ui) {
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
        self.restore_prompt(ui);
        let mut want_session = None;
        let mut want_pool = None;
        egui::Panel::top("menu").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Localist Studio");
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
                    let pretrained = self.pretrained.clone();
                    let mut open = || want_open = true;
                    let mut save = || want_save = true;
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
        // A dial change is captured and drawn in this same frame: send it now and wait, at most
        // DIAL_WAIT, for the worker's new capture (about 1 ms for the tiny model) before the
        // heatmaps below are drawn. If the worker is busy (training), the wait runs out and the
        // heatmaps follow a frame later.
        if self.flush_commands() {
            self.await_snapshot();
        }
        egui::CentralPanel::default().show(ui, |ui| {
            ui.horizontal_wrapped(|ui| {
                ui.selectable_value(&mut self.state.tab, Tab::Attention, "Attention");
                ui.selectable_value(&mut self.state.tab, Tab::Theory, "Theory");
                ui.selectable_value(&mut self.state.tab, Tab::Blocks, "Blocks & anchors");
                ui.selectable_value(&mut self.state.tab, Tab::Compare, "Compare")
                    .on_hover_text("Two configurations side by side on the same text");
                ui.selectable_value(&mut self.state.tab, Tab::Rules, "Rules")
                    .on_hover_text("Write rules and put them in force in the running model");
                ui.selectable_value(&mut self.state.tab, Tab::Generate, "Generate")
                    .on_hover_text(
                        "Generate a few tokens and see the next-token distribution under the dial",
                    );
                ui.selectable_value(&mut self.state.tab, Tab::Recruitment, "Recruitment")
                    .on_hover_text(
                        "Blocks recruited, merged and pruned while training, each decision in bits",
                    );
                ui.selectable_value(&mut self.state.tab, Tab::Specialists, "Specialists")
                    .on_hover_text(
                        "A pool of specialists: documents routed by shortest code length",
                    );
                ui.selectable_value(&mut self.state.tab, Tab::Audit, "Audit")
                    .on_hover_text(
                        "Which rule maps to which block, measured; the audit log; the report",
                    );
            });
            ui.separator();
            egui::ScrollArea::vertical().show(ui, |ui| match self.state.tab {
                Tab::Attention => attention::show(ui, &mut self.state, &mut self.heatmaps),
                Tab::Theory => theory::show(ui, &mut self.state),
                Tab::Blocks => blocks::show(ui, &mut self.state),
                Tab::Compare => {
                    compare::show(ui, &mut self.state, &mut self.compare_cache, &self.samples)
                }
                Tab::Rules => rules::show(ui, &mut self.state, &self.example_rules),
                Tab::Audit => audit::show(ui, &mut self.state),
                Tab::Recruitment => recruitment::show(ui, &mut self.state),
                Tab::Generate => generate::show(ui, &mut self.state),
                Tab::Specialists => {
                    let sample = asset_path(&PathBuf::from("sample_models/pool-clinical-payments"));
                    want_pool = specialists::show(ui, &mut self.pool, &sample);
                }
            });
        });
        if self.state.screenshot_request.is_some() {
            self.start_screenshot();
        }
        if let Some(req) = self.state.file_request.take() {
            if self.dialog.is_none() {
                self.open_dialog(match req {
                    FileRequest::ModelFile => DialogKind::OpenModelFile,
                    FileRequest::ModelFolder => DialogKind::OpenModelFolder,
                    FileRequest::Lexicon => DialogKind::Lexicon,
                });
            }
        }
        if let Some((html, json)) = self.state.pending_report.take() {
            self.start_report_export(html, json);
        }
        if self.state.pending_export.is_some() {
            self.start_export();
        }
        if want_open {
            self.open_dialog(DialogKind::Open);
        } else if want_save {
            self.open_dialog(DialogKind::Save);
        } else if let Some(kind) = want_session {
            self.open_dialog(kind);
        } else if want_pool == Some(PoolRequest::Choose) {
            self.open_dialog(DialogKind::OpenPool);
        }
        if let Some(PoolRequest::Open(dir)) = want_pool {
            self.open_pool(dir);
        }
        // Rules applied from the central panel: wait for their capture now, so the next frame
        // (requested at once) shows the new heatmaps and PF numbers.
        if self.flush_commands() {
            self.await_snapshot();
            self.ctx.request_repaint();
        }
        self.autosave_tick(false);
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

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.autosave_tick(true);
        if let Some(a) = &self.autosave {
            a.finish();
        }
    }
}

/// Write an audit report's HTML at `path` and its JSON twin at `path` with `.json` (atomic).
pub fn write_report(path: &std::path::Path, html: &[u8], json: &[u8]) -> anyhow::Result<()> {
    crate::engine::export::write_atomic(path, html)?;
    crate::engine::export::write_atomic(&path.with_extension("json"), json)
}
