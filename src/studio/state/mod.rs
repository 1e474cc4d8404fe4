//! What the studio shows, kept apart from the worker handle: the latest capture, the model
//! summary, the training curves and the status line. Events from the worker update it
//! (`apply.rs`); panels only read it and queue commands. The panels' own state is in
//! [`panels`]; the tabs are [`Tab`].

mod apply;
mod measured;
pub mod panels;

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::engine::figures::Colormap;
use crate::engine::protocol::{
    Capture, Command, DialSetting, EvalReport, LivePoint, MeasuredOn, ModelSummary, PoolSummary,
    Progress, RecruitView, TheoryPoint, ThresholdEstimate, DEFAULT_CLUSTERS,
};

pub use self::panels::{
    CompareState, CompareViews, GenerateState, RulesState, TourState, TrainingPlot,
};
/// The central area's views (defined in `studio::tab`, below the session files).
pub use crate::studio::tab::Tab;

/// The sample sentence captured at start-up.
pub use crate::studio::text::SAMPLE_TEXT;

/// The worker's state as the status bar shows it (a long job under way is read from the
/// handle: `WorkerHandle::busy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerState {
    /// Waiting for commands.
    Idle,
    /// Training.
    Training,
    /// Training paused.
    Paused,
    /// The worker thread ended after a panic.
    Crashed,
}

/// One point of the training curves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CurvePoint {
    /// Step.
    pub step: usize,
    /// Loss in nats.
    pub loss_nats: f64,
    /// Mean Ω.
    pub penalty: f64,
}

/// Everything the panels read.
pub struct StudioState {
    /// Loaded model, when any.
    pub summary: Option<ModelSummary>,
    /// Latest capture and its token strings.
    pub capture: Option<(Capture, Vec<String>)>,
    /// What the capture was measured on.
    pub capture_on: Option<MeasuredOn>,
    /// Bumped on every new capture (textures are rebuilt when it changes).
    pub capture_generation: u64,
    /// The dial as the user set it.
    pub dial: DialSetting,
    /// The text being captured.
    pub text: String,
    /// Training curve (last 10,000 steps).
    pub curve: VecDeque<CurvePoint>,
    /// Latest progress.
    pub progress: Option<Progress>,
    /// Held-out metrics at the end of the last run.
    pub last_eval: Option<(EvalReport, MeasuredOn)>,
    /// Worker state.
    pub worker: WorkerState,
    /// The last error, shown once in the status bar until dismissed.
    pub error: Option<String>,
    /// The text the studio last put in the text box by itself (a model's own sample), so the
    /// next model's sample may replace it; a text the user typed is never replaced.
    pub auto_text: Option<String>,
    /// The last failure the worker reported: cleared from the status bar by the next result
    /// that succeeds (a load, a capture, applied rules, a save, a generation, a comparison).
    pub worker_failure: Option<String>,
    /// A short info message (saved, loaded, ...).
    pub info: Option<String>,
    /// Heatmap colormap.
    pub colormap: Colormap,
    /// Heatmap selected for enlargement (layer, head).
    pub focus: Option<(usize, usize)>,
    /// Show block-aggregated [T × K] maps instead of [T × T].
    pub aggregated: bool,
    /// Commands the panels queued this frame.
    pub outbox: Vec<Command>,
    /// A file the user asked to export: suggested name and contents (the app asks where).
    pub pending_export: Option<(String, Vec<u8>)>,
    /// Smoothed time our UI code takes per frame, in milliseconds.
    pub frame_ms: f64,
    /// When the last dial change was sent (for the latency readout).
    pub dial_sent: Option<std::time::Instant>,
    /// Time from the last dial change to its new heatmaps, in milliseconds.
    pub dial_latency_ms: Option<f64>,
    /// Time from the last dial change to its bf16 preview, when one came.
    pub dial_preview_ms: Option<f64>,
    /// Which view the central area shows.
    pub tab: Tab,
    /// The training plots show moving averages.
    pub smooth_curves: bool,
    /// The side panel (model, dial, training) is shown (F9 toggles it).
    pub side_panel: bool,
    /// Projector mode for teaching: side panel hidden, heatmaps as large as the window allows
    /// (F11 toggles it).
    pub projector: bool,
    /// The theory curve and the capture generation it was computed for.
    pub theory: Option<(u64, Vec<TheoryPoint>)>,
    /// What the theory curve was measured on.
    pub theory_on: Option<MeasuredOn>,
    /// A theory curve was asked for and has not arrived.
    pub theory_pending: bool,
    /// The checkpoint the current model was loaded from or last saved to, with its SHA-256.
    pub checkpoint: Option<(PathBuf, String)>,
    /// A checkpoint hash a restored session expects (checked when the model arrives).
    pub expected_checkpoint: Option<(PathBuf, String)>,
    /// Live held-out metrics of the current run (about one a second).
    pub live: Vec<LivePoint>,
    /// The Compare panel.
    pub compare: CompareState,
    /// A region of the window to export as PNG (suggested file name, rectangle in points):
    /// the app takes a screenshot of the next frame and crops it.
    pub screenshot_request: Option<(String, egui::Rect)>,
    /// The Rules panel and the audit log.
    pub rules: RulesState,
    /// An audit report to write (HTML, JSON twin); the app asks where.
    pub pending_report: Option<(Vec<u8>, Vec<u8>)>,
    /// The penalty threshold λ* estimated on the current text.
    pub threshold: Option<ThresholdEstimate>,
    /// What λ* was estimated on.
    pub threshold_on: Option<MeasuredOn>,
    /// A session the last (crashed) studio left, offered back at start.
    pub restore_offer: Option<crate::studio::session::SessionFile>,
    /// Block recruitment: the log, rounds and state of the run or the opened checkpoint.
    pub recruitment: Option<RecruitView>,
    /// A pool of specialists the worker has read and the Specialists panel has not taken yet.
    pub pool_opened: Option<PoolSummary>,
    /// The Generate panel.
    pub generate: GenerateState,
    /// A file dialog a panel asked for (the app opens it).
    pub file_request: Option<FileRequest>,
    /// The path typed in the Model panel's "open a path" field.
    pub model_path: String,
    /// The block being renamed in the Blocks panel, and the name typed so far.
    pub block_rename: Option<(usize, String)>,
    /// Clusters of the next k-means rebuild of an imported model's blocks.
    pub kmeans_k: usize,
    /// The first-start Tour.
    pub tour: TourState,
    /// The training plot shown large in a window of its own.
    pub enlarged_plot: Option<TrainingPlot>,
}

/// File dialogs the panels can ask the app for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRequest {
    /// A `.gguf` file of a LLaMA-family decoder.
    ModelFile,
    /// A Hugging Face folder (config.json + model.safetensors + tokenizer.json).
    ModelFolder,
    /// A lexicon for an imported model's blocks.
    Lexicon,
    /// A file of sentences, one per line, for the auditor's test set.
    Sentences,
    /// A checkpoint or Hugging Face folder for side 0 (A) or 1 (B) of Compare.
    CompareFolder(usize),
    /// A `.gguf` file for side 0 (A) or 1 (B) of Compare.
    CompareFile(usize),
}

impl Default for StudioState {
    fn default() -> Self {
        Self {
            summary: None,
            capture: None,
            capture_on: None,
            capture_generation: 0,
            dial: DialSetting::default(),
            text: SAMPLE_TEXT.into(),
            curve: VecDeque::new(),
            progress: None,
            last_eval: None,
            worker: WorkerState::Idle,
            error: None,
            worker_failure: None,
            auto_text: None,
            info: None,
            colormap: Colormap::Viridis,
            focus: None,
            aggregated: false,
            outbox: Vec::new(),
            pending_export: None,
            frame_ms: 0.0,
            dial_sent: None,
            dial_latency_ms: None,
            dial_preview_ms: None,
            tab: Tab::Attention,
            side_panel: true,
            smooth_curves: false,
            projector: false,
            theory: None,
            theory_on: None,
            theory_pending: false,
            checkpoint: None,
            expected_checkpoint: None,
            live: Vec::new(),
            compare: CompareState::default(),
            restore_offer: None,
            screenshot_request: None,
            threshold: None,
            threshold_on: None,
            rules: RulesState::default(),
            pending_report: None,
            recruitment: None,
            pool_opened: None,
            generate: GenerateState::default(),
            file_request: None,
            model_path: String::new(),
            block_rename: None,
            kmeans_k: DEFAULT_CLUSTERS,
            tour: TourState::default(),
            enlarged_plot: None,
        }
    }
}

impl StudioState {
    /// The model's and corpus's SHA-256 for the audit log ("unsaved" / "unknown" when absent).
    pub fn hashes(&self) -> (String, String) {
        let model = self
            .checkpoint
            .as_ref()
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| "unsaved".into());
        let corpus = self
            .summary
            .as_ref()
            .and_then(|s| s.corpus.as_ref())
            .map(|(_, h)| h.clone())
            .unwrap_or_else(|| "unknown".into());
        (model, corpus)
    }

    /// Sign the audit log's entries from position `from` on (those just logged) with the
    /// user's key (created on first use); when there is no key, say so: a report with
    /// unsigned entries will not verify.
    pub fn sign_log_from(&mut self, from: usize) {
        match crate::engine::audit::user_signing_key() {
            Ok(key) => {
                self.rules.log.sign_from(from, &key);
            }
            Err(e) => {
                self.error = Some(format!(
                    "the audit log's new entries are not signed ({e}); a report of this log \
                     will not verify"
                ));
            }
        }
    }

    /// Send a rule file and switched-off ids to the worker.
    pub fn apply_rules(&mut self, text: String, off: Vec<String>) {
        self.rules.pending = Some((text.clone(), off.clone()));
        self.send(Command::SetRules { text, off });
    }

    /// Queue a command for the worker.
    pub fn send(&mut self, cmd: Command) {
        if matches!(cmd, Command::SetDial(_)) {
            self.dial_sent = Some(std::time::Instant::now());
            self.dial_preview_ms = None;
        }
        self.outbox.push(cmd);
    }

    /// Mean attention entropy of the current capture, in bits.
    pub fn mean_entropy_bits(&self) -> Option<f64> {
        self.capture
            .as_ref()
            .map(|(c, _)| c.mean_entropy_bits(None))
    }

    /// Whether the capture on screen is a bf16 preview whose exact capture is on its way
    /// (exports and reports wait for the exact one).
    pub fn capture_is_preview(&self) -> bool {
        self.capture_on.as_ref().is_some_and(|on| on.preview)
    }
}

/// The first 12 hex digits of a hash, for messages.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
