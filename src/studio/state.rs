//! What the studio shows, kept apart from the worker handle: the latest capture, the model
//! summary, the training curves and the status line. Events from the worker update it; panels
//! only read it and queue commands.

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::engine::compare::{CompareSide, CompareView};
use crate::engine::theory::TheoryPoint;
use crate::engine::worker::{Command, Event, LivePoint, ModelSummary, Progress};
use crate::engine::{Capture, DialSetting, EvalReport};
use crate::studio::colormap::Colormap;

/// The worker's state as the status bar shows it.
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
    pub last_eval: Option<EvalReport>,
    /// Worker state.
    pub worker: WorkerState,
    /// The last error, shown once in the status bar until dismissed.
    pub error: Option<String>,
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
    /// Which view the central area shows.
    pub tab: Tab,
    /// The theory curve and the capture generation it was computed for.
    pub theory: Option<(u64, Vec<TheoryPoint>)>,
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
    pub threshold: Option<crate::engine::threshold::ThresholdEstimate>,
    /// A session the last (crashed) studio left, offered back at start.
    pub restore_offer: Option<crate::studio::session::SessionFile>,
    /// Block recruitment: the log, rounds and state of the run or the opened checkpoint.
    pub recruitment: Option<crate::train::recruit::Recruiter>,
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
}

/// The Generate panel: how many tokens, the last generation, and whether one is on its way.
#[derive(Clone, Debug)]
pub struct GenerateState {
    /// Tokens to generate.
    pub tokens: usize,
    /// The last generation.
    pub last: Option<crate::engine::generate::Generation>,
    /// Asked for and not arrived.
    pub pending: bool,
    /// When it was asked for (for the progress text).
    pub asked: Option<std::time::Instant>,
}

impl Default for GenerateState {
    fn default() -> Self {
        Self {
            tokens: 8,
            last: None,
            pending: false,
            asked: None,
        }
    }
}

/// Rules as the studio holds them: the editor's text, what is in force, the answer to the
/// last apply, what each rule did on the current text, the undo history and the audit log.
#[derive(Default)]
pub struct RulesState {
    /// The editor's text.
    pub editor: String,
    /// The rule file in force.
    pub applied: String,
    /// Ids switched off in the list.
    pub off: Vec<String>,
    /// The rules in force, as the worker resolved them.
    pub resolved: Vec<crate::rules::check::ResolvedRule>,
    /// Sent to the worker and not answered yet.
    pub pending: Option<(String, Vec<String>)>,
    /// The last rejection: every error, with line:column.
    pub errors: Option<crate::rules::parse::RuleErrors>,
    /// What each rule did on the current text.
    pub reports: Vec<crate::rules::inject::RuleReport>,
    /// Where each rule fired on the current text.
    pub firings: Vec<crate::rules::check::Firing>,
    /// States in force, for undo and redo (text, switched-off ids).
    pub history: Vec<(String, Vec<String>)>,
    /// Position in `history` of the state in force.
    pub cursor: usize,
    /// The rule selected in the list.
    pub selected: Option<String>,
    /// Every rule change, hash-chained.
    pub log: crate::engine::audit::AuditLog,
}

impl RulesState {
    /// Whether the editor differs from the rules in force.
    pub fn dirty(&self) -> bool {
        self.editor != self.applied
    }
}

/// A comparison as it arrived: the capture generation and the sides it was taken for, and
/// each side's capture or error.
pub type CompareViews = (u64, [CompareSide; 2], [Result<CompareView, String>; 2]);

/// What the Compare panel shows.
pub struct CompareState {
    /// The two configurations.
    pub sides: [CompareSide; 2],
    /// Their captures (or errors), and the capture generation and sides they were taken for.
    pub views: Option<CompareViews>,
    /// A comparison was asked for and has not arrived.
    pub pending: bool,
    /// The layer and head shown, or `None` for the mean over heads of the layer.
    pub layer: usize,
    /// The head shown (`None`: mean over the layer's heads).
    pub head: Option<usize>,
    /// The cell under the pointer in either heatmap (query, key), drawn on both.
    pub hover: Option<(usize, usize)>,
    /// Bumped when new views arrive (textures are rebuilt when it changes).
    pub generation: u64,
    /// Where each side's heatmap was drawn last frame (hover tests, PNG export).
    pub rects: [Option<egui::Rect>; 2],
}

impl Default for CompareState {
    fn default() -> Self {
        Self {
            sides: crate::studio::session::default_compare(),
            views: None,
            pending: false,
            layer: 0,
            head: None,
            hover: None,
            generation: 0,
            rects: [None, None],
        }
    }
}

/// The central area's views (defined in `studio::tab`, below the session files).
pub use crate::studio::tab::Tab;

impl Default for StudioState {
    fn default() -> Self {
        Self {
            summary: None,
            capture: None,
            capture_generation: 0,
            dial: DialSetting::default(),
            text: "To be, or not to be, that is the question:".into(),
            curve: VecDeque::new(),
            progress: None,
            last_eval: None,
            worker: WorkerState::Idle,
            error: None,
            info: None,
            colormap: Colormap::Viridis,
            focus: None,
            aggregated: false,
            outbox: Vec::new(),
            pending_export: None,
            frame_ms: 0.0,
            dial_sent: None,
            dial_latency_ms: None,
            tab: Tab::Attention,
            theory: None,
            theory_pending: false,
            checkpoint: None,
            expected_checkpoint: None,
            live: Vec::new(),
            compare: CompareState::default(),
            restore_offer: None,
            screenshot_request: None,
            threshold: None,
            rules: RulesState::default(),
            pending_report: None,
            recruitment: None,
            generate: GenerateState::default(),
            file_request: None,
            model_path: String::new(),
            block_rename: None,
            kmeans_k: crate::engine::worker::DEFAULT_CLUSTERS,
        }
    }
}

impl StudioState {
    /// Apply one worker event.
    pub fn apply(&mut self, ev: Event) {
        match ev {
            Event::Progress(p) => {
                self.curve.push_back(CurvePoint {
                    step: p.stats.step,
                    loss_nats: p.stats.loss_nats,
                    penalty: p.stats.penalty,
                });
                while self.curve.len() > 10_000 {
                    self.curve.pop_front();
                }
                if self.worker != WorkerState::Paused {
                    self.worker = WorkerState::Training;
                }
                self.progress = Some(p);
            }
            Event::Loaded(s) => {
                let s = *s;
                self.info = Some(format!("loaded {}", s.source));
                // A model trained on the synthetic records cannot read Shakespeare: show one of
                // its own sentences instead of the default one.
                if let Some(t) = &s.sample_text {
                    if self.text == crate::studio::text::SAMPLE_TEXT {
                        self.text = t.clone();
                        self.send(Command::Capture(t.clone()));
                    }
                }
                self.checkpoint = s.checkpoint.clone();
                self.check_expected_checkpoint();
                self.summary = Some(s);
                self.recruitment = None;
                self.generate.last = None;
                self.live.clear();
                self.compare.views = None;
                self.curve.clear();
                self.progress = None;
                self.worker = WorkerState::Idle;
            }
            Event::Recruitment(r) => {
                let last = r
                    .rounds
                    .last()
                    .filter(|_| self.worker == WorkerState::Training);
                if let Some(last) = last {
                    self.info = Some(format!(
                        "recruitment round at step {} done in {:.1} s: {} blocks",
                        last.step,
                        last.round_ms / 1e3,
                        last.blocks
                    ));
                }
                self.recruitment = Some(*r);
            }
            Event::Status(text) => self.info = Some(text),
            Event::Generated(g) => {
                self.info = Some(format!(
                    "generated {} tokens ({:.0} ms per token)",
                    g.steps.len(),
                    g.ms_per_token
                ));
                self.generate.last = Some(*g);
                self.generate.pending = false;
            }
            Event::BlocksChanged(names, sizes) => {
                if let Some(s) = &mut self.summary {
                    s.blocks = names;
                    s.block_sizes = sizes;
                    s.anchors = None;
                    s.anchor_coherence.clear();
                }
            }
            Event::Snapshot(cap, tokens) => {
                if let Some(t0) = self.dial_sent.take() {
                    self.dial_latency_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
                }
                self.capture = Some((*cap, tokens));
                self.capture_generation += 1;
            }
            Event::Finished(r) => {
                self.last_eval = Some(*r);
                self.worker = WorkerState::Idle;
                self.info = Some("training finished".into());
            }
            Event::Paused => self.worker = WorkerState::Paused,
            Event::Theory(curve) => {
                self.theory = Some((self.capture_generation, curve));
                self.theory_pending = false;
            }
            Event::Saved(p, hash) => {
                self.info = Some(format!("saved {}", p.display()));
                self.checkpoint = Some((p, hash));
            }
            Event::Live(p) => {
                if self.live.last().is_some_and(|l| l.step >= p.step) {
                    self.live.retain(|l| l.step < p.step);
                }
                self.live.push(*p);
                if self.live.len() > 5_000 {
                    // Keep the curve's shape: drop every other point.
                    let mut k = 0;
                    self.live.retain(|_| {
                        k += 1;
                        k % 2 == 1
                    });
                }
            }
            Event::Threshold(t) => self.threshold = Some(t),
            Event::RulesApplied(resolved) => {
                let (model, corpus) = self.hashes();
                let before = std::mem::take(&mut self.rules.resolved);
                self.rules
                    .log
                    .record_change(&before, &resolved, &model, &corpus);
                let n = resolved.len();
                let on = resolved.iter().filter(|r| r.enabled).count();
                self.rules.resolved = resolved;
                self.rules.errors = None;
                if let Some((text, off)) = self.rules.pending.take() {
                    self.rules.applied = text.clone();
                    self.rules.off = off.clone();
                    let state = (text, off);
                    if self.rules.history.get(self.rules.cursor) != Some(&state) {
                        self.rules.history.truncate(self.rules.cursor + 1);
                        self.rules.history.push(state);
                        self.rules.cursor = self.rules.history.len() - 1;
                    }
                }
                if n == 0 {
                    self.rules.reports.clear();
                    self.rules.firings.clear();
                }
                self.info = Some(format!("{n} rules in force ({on} on)"));
            }
            Event::RulesRejected(e) => {
                self.rules.pending = None;
                self.error = Some(format!(
                    "the rules were not applied ({}); the previous rules stay in force",
                    e.errors.first().map(|x| x.to_string()).unwrap_or_default()
                ));
                self.rules.errors = Some(e);
            }
            Event::RuleReport(r) => {
                let (reports, firings) = *r;
                self.rules.reports = reports;
                self.rules.firings = firings;
            }
            Event::Compare(views) => {
                self.compare.views =
                    Some((self.capture_generation, self.compare.sides.clone(), *views));
                self.compare.pending = false;
                self.compare.generation += 1;
            }
            Event::Failed(msg) => {
                self.generate.pending = false;
                if msg.contains("crashed") {
                    self.worker = WorkerState::Crashed;
                } else if self.worker == WorkerState::Training {
                    self.worker = WorkerState::Idle;
                }
                self.error = Some(msg);
            }
        }
    }

    /// After a session restore: warn when the checkpoint that arrived is not the one the
    /// session was saved with.
    fn check_expected_checkpoint(&mut self) {
        let Some((path, want)) = self.expected_checkpoint.take() else {
            return;
        };
        match &self.checkpoint {
            Some((p, got)) if p == &path && got != &want => {
                self.error = Some(format!(
                    "{} has changed since the session was saved (SHA-256 {} now, {} in the session); \
                     the numbers may differ from the ones you saw",
                    path.display(),
                    short(got),
                    short(&want)
                ));
            }
            Some((p, _)) if p == &path => {
                self.info = Some(format!(
                    "session restored; {} matches its hash",
                    path.display()
                ));
            }
            _ => self.expected_checkpoint = Some((path, want)),
        }
    }

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

    /// Send a rule file and switched-off ids to the worker.
    pub fn apply_rules(&mut self, text: String, off: Vec<String>) {
        self.rules.pending = Some((text.clone(), off.clone()));
        self.send(Command::SetRules { text, off });
    }

    /// Queue a command for the worker.
    pub fn send(&mut self, cmd: Command) {
        if matches!(cmd, Command::SetDial(_)) {
            self.dial_sent = Some(std::time::Instant::now());
        }
        self.outbox.push(cmd);
    }

    /// Mean attention entropy of the current capture, in bits.
    pub fn mean_entropy_bits(&self) -> Option<f64> {
        self.capture
            .as_ref()
            .map(|(c, _)| c.mean_entropy_bits(None))
    }
}

/// The first 12 hex digits of a hash, for messages.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}
