//! The studio application: drains worker events, draws the panels, forwards their commands.
//!
//! The UI thread never touches candle and never waits on the worker: commands go out over a
//! channel, events come back and are applied at the start of each frame.
//!
//! This file holds the app's state and the frame loop; its parts live under `app/`: the
//! window's chrome (menu and status bars), the tabs and the left column, keyboard shortcuts,
//! file dialogs, exports, the worker's events, and sessions.

mod catalog;
mod chrome;
mod dialogs;
mod events;
mod exports;
mod session_io;
mod shortcuts;
mod signals;
mod tabs;

use std::path::PathBuf;

use crossbeam_channel::Receiver;

use crate::engine::corpus::bundled_path;
use crate::engine::worker::{Command, WorkerHandle};
use crate::studio::panels::attention::HeatmapCache;
use crate::studio::panels::compare::CompareCache;
use crate::studio::panels::specialists::{PoolRequest, PoolView};
use crate::studio::session::Autosave;
use crate::studio::settings::RunSettings;
use crate::studio::state::{StudioState, WorkerState};

/// The sample sentence captured at start-up (defined in `studio::text`).
pub use crate::studio::text::SAMPLE_TEXT;
pub use catalog::{pretrained_models, sample_models, PRETRAINED};

use dialogs::DialogKind;
use exports::{ExportOutcome, Shot};

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
    dialog: Option<(DialogKind, Receiver<dialogs::DialogAnswer>)>,
    /// The built-in file browser, when no native dialog is available, and what it is for.
    browser: Option<(
        crate::studio::file_browser::FileBrowser,
        dialogs::BrowserFor,
    )>,
    /// The folder of the last export written through the built-in browser.
    last_export_dir: Option<PathBuf>,
    /// Set when a termination signal arrived ([`StudioApp::with_signals`]).
    signals: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    ctx: egui::Context,
    initial: Option<PathBuf>,
    export: Option<ExportOutcome>,
    autosave: Option<Autosave>,
    /// The bundled example rule file (for "Load example").
    example_rules: String,
    /// The pool of specialists shown in the Specialists tab (public for tests).
    pub pool: Option<PoolView>,
    /// The Specialists tab's Grow form.
    pub pool_form: crate::studio::panels::specialists_grow::GrowForm,
    /// Cropped screenshots (plots and heatmaps as drawn) on their way to an export.
    shots: (crossbeam_channel::Sender<Shot>, Receiver<Shot>),
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
            compare_cache: CompareCache::default(),
            settings: RunSettings::default(),
            samples,
            pretrained: pretrained_models(),
            dialog: None,
            browser: None,
            last_export_dir: None,
            signals: None,
            ctx: ctx.clone(),
            initial,
            export: None,
            autosave: None,
            example_rules: std::fs::read_to_string(bundled_path(&PathBuf::from(
                "assets/rules/clinical_payments.rules",
            )))
            .unwrap_or_default(),
            pool: None,
            pool_form: Default::default(),
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
            Ok(found) => {
                self.state.restore_offer = found.offer;
                if let Some((copy, n)) = &found.kept_audit {
                    self.state.info = Some(format!(
                        "the last session's autosave holds {n} audit entries: a copy is kept as \
                         {} (Open session… restores it)",
                        copy.display()
                    ));
                }
                if let Some(why) = found.kept_aside {
                    self.state.error = Some(why);
                }
            }
            Err(e) => self.state.error = Some(format!("autosave is off: {e:#}")),
        }
        self.autosave = Some(autosave);
        self
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
            self.state.tour.seen = eframe::get_value(s, "tour_seen").unwrap_or(false);
        }
        // The first start (nothing stored yet) opens the Tour.
        if !self.state.tour.seen {
            crate::studio::tour::open(&mut self.state);
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

    /// Start what the panels asked for this frame: a screenshot, file dialogs, exports. The
    /// first of `want` (the app's own dialogs) is opened after the panels' requests.
    fn serve_requests(&mut self, want: Option<DialogKind>) {
        if self.state.screenshot_request.is_some() {
            self.start_screenshot();
        }
        if let Some(req) = self.state.file_request.take() {
            if self.dialog.is_none() {
                self.open_dialog(DialogKind::from(req));
            }
        }
        if let Some((html, json)) = self.state.pending_report.take() {
            self.start_report_export(html, json);
        }
        if self.state.pending_export.is_some() {
            self.start_export();
        }
        if let Some(kind) = want {
            self.open_dialog(kind);
        }
    }

    /// Ask where to write an audit report; write the HTML there and its JSON twin beside it.
    fn start_report_export(&mut self, html: Vec<u8>, json: Vec<u8>) {
        self.save_dialog(
            "Export the audit report (HTML; a .json twin is written beside it)".into(),
            "audit-report.html".into(),
            move |path| write_report(path, &html, &json),
        );
    }
}

impl eframe::App for StudioApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let frame_start = std::time::Instant::now();
        self.close_on_signal(ui.ctx());
        self.pump();
        self.shortcuts(ui);
        self.restore_prompt(ui);
        let want_session = chrome::menu_bar(ui, &mut self.state);
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        self.error_bar(ui);
        let controls = self.controls(ui);
        // A dial change is captured and drawn in this same frame: send it now and wait, at most
        // DIAL_WAIT, for the worker's new capture (about 1 ms for the tiny model) before the
        // heatmaps below are drawn. If the worker is busy (training), the wait runs out and the
        // heatmaps follow a frame later.
        if self.flush_commands() {
            self.await_snapshot();
        }
        let want_pool = self.central(ui);
        let want = if controls.open {
            Some(DialogKind::Open)
        } else if controls.save {
            Some(DialogKind::Save)
        } else if want_session.is_some() {
            want_session
        } else if matches!(want_pool, Some(PoolRequest::Choose)) {
            Some(DialogKind::OpenPool)
        } else {
            None
        };
        if crate::studio::tour::show(ui.ctx(), &mut self.state).is_some() {
            let l0 = bundled_path(
                &PathBuf::from("sample_models").join(crate::studio::tour::TOUR_SAMPLE),
            );
            self.state.send(Command::Load(l0));
        }
        self.serve_requests(want);
        self.show_browser();
        match want_pool {
            Some(PoolRequest::Open(dir)) => self.open_pool(dir),
            Some(PoolRequest::Grow(g)) => self.state.send(Command::GrowPool(g)),
            _ => {}
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
        eframe::set_value(storage, "tour_seen", &self.state.tour.seen);
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.autosave_tick(true);
        if let Some(a) = &self.autosave {
            a.finish();
        }
    }
}

pub use crate::engine::jobs::audit::write_report;
