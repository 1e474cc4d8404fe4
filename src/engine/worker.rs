//! The worker: a named background thread that owns the model, the trainer and the data.
//!
//! A UI (the studio, or a test) sends [`Command`]s and drains [`Event`]s; it never touches
//! candle and never blocks. Events travel on two channels: progress on a bounded one, where a
//! message is dropped when the UI falls behind, and everything else (snapshots, results,
//! errors) on an unbounded one, where nothing is ever dropped. After each send the worker calls
//! the `repaint` callback the UI gave it (`egui::Context::request_repaint` in the studio).
//!
//! Training runs one optimizer step at a time and looks at the command queue between steps,
//! so pause and stop take effect within one step. A panic inside the worker is caught and
//! reported as [`Event::Failed`]; the handle then reports the worker dead, and a new one can
//! be spawned without restarting the app.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Instant;

use candle_core::Device;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TryRecvError};

use crate::analysis::anchors::coherence_matrix;
use crate::data::synthetic::{SyntheticCorpus, SyntheticSpec};
use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::anchors::AnchorReport;
use crate::engine::compare::{capture_side, CompareSide, CompareView};
use crate::engine::corpus::CorpusSource;
use crate::engine::theory::{theory_curve, TheoryPoint};
use crate::engine::threshold::{estimate_threshold, ThresholdEstimate};
use crate::engine::train_job::{setup, Session, TrainJob};
use crate::hf::{HfTokenizer, ImportedModel};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::{capture, Capture};
use crate::model::checkpoint::{
    checkpoint_sha256, load_checkpoint, save_checkpoint, CheckpointMeta,
};
use crate::model::dial::DialSetting;
use crate::model::transformer::LocalistModel;
use crate::rules::check::{resolve, Firing, ResolvedRule};
use crate::rules::inject::{capture_with_rules, RuleReport};
use crate::rules::parse::{parse_rules, RuleErrors};
use crate::train::eval::EvalReport;
use crate::train::recruit::{RecruitConfig, Recruiter};
use crate::train::trainer::{StepStats, TrainConfig};

/// What the UI asks of the worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Load a checkpoint directory (the current model stays if it fails).
    Load(PathBuf),
    /// Set up a training run (fresh model, reference init or resume) without starting it.
    NewRun(Box<TrainJob>),
    /// Start or continue training the current run.
    Train,
    /// Pause after the current step.
    Pause,
    /// Continue a paused run.
    Resume,
    /// Take exactly one training step.
    Step,
    /// Stop training (the model stays loaded).
    Stop,
    /// Set the inference dial and re-capture the current text.
    SetDial(DialSetting),
    /// Capture a text under the current dial.
    Capture(String),
    /// Save the current model as a checkpoint directory.
    Save(PathBuf),
    /// Measure the current text against the derived bounds at each λ (current mode/schedule).
    TheoryCurve(Vec<f64>),
    /// Replace the rules: the text of a rule file and the ids of the rules switched off. A
    /// file with any error is rejected whole and the previous rules stay in force.
    SetRules {
        /// Rule file text (empty: no rules).
        text: String,
        /// Ids of rules switched off.
        off: Vec<String>,
    },
    /// Capture the current text under two configurations, for the Compare panel.
    Compare(Box<[CompareSide; 2]>),
    /// Switch block recruitment on or off in the current run (switching it on in a run set up
    /// without it starts a recruiter with default settings; unassigned tokens become isolated).
    SetRecruitment(bool),
    /// Rename block `index` of the current model (an imported model's block map is saved beside
    /// it, so the names come back next time).
    RenameBlock(usize, String),
    /// Rebuild an imported model's blocks: k-means with this many clusters, or a lexicon file.
    SetImportedBlocks(ImportedBlocks),
    /// Generate this many tokens after the current text under the current dial and rules.
    Generate(usize),
    /// End the worker thread.
    Shutdown,
    /// Panic on purpose (tests of the recovery path).
    #[doc(hidden)]
    DebugPanic,
}

/// Where an imported model's blocks come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportedBlocks {
    /// k-means over the embedding rows with k clusters.
    KMeans(usize),
    /// A lexicon file (word<TAB>block).
    Lexicon(PathBuf),
}

/// Tokens of the current text an imported model captures at most (its context is far longer
/// than a heatmap can show).
pub const IMPORTED_CAPTURE_LIMIT: usize = 256;

/// Clusters of the k-means blocks an imported model gets when none were saved for it.
pub const DEFAULT_CLUSTERS: usize = 16;

/// A summary of the loaded model for display.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// Where it came from.
    pub source: String,
    /// Preset name.
    pub preset: String,
    /// Layers, heads, width, positions.
    pub shape: (usize, usize, usize, usize),
    /// Trainable scalars.
    pub parameters: usize,
    /// λ_train the weights were trained under, when known.
    pub lambda_train: Option<f64>,
    /// Block names.
    pub blocks: Vec<String>,
    /// A sentence from the model's own training corpus, when it can be regenerated (the
    /// synthetic corpus), so a newcomer sees in-vocabulary text.
    pub sample_text: Option<String>,
    /// Vocabulary tokens in each block (empty for positional windows).
    pub block_sizes: Vec<usize>,
    /// Anchor tokens measured on the training text, when the checkpoint has them.
    pub anchors: Option<AnchorReport>,
    /// |cos| between the anchor keys of layer 0, head 0 (K × K).
    pub anchor_coherence: Vec<Vec<f64>>,
    /// The checkpoint directory and its SHA-256 ([`checkpoint_sha256`]), when the model was
    /// loaded from one (a fresh training run has none until it is saved).
    pub checkpoint: Option<(PathBuf, String)>,
    /// The training corpus: its file (when it is one) and SHA-256, when recorded.
    pub corpus: Option<(Option<PathBuf>, String)>,
    /// For a pretrained model opened from a `.gguf` file or a Hugging Face folder: what it is
    /// (e.g. "LLaMA-family decoder") and where its blocks come from.
    pub imported: Option<(String, String)>,
    /// Whether it predicts next tokens (false for an encoder).
    pub generates: bool,
}

/// Held-out metrics measured while training runs (about once a second), for the live curves.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePoint {
    /// Steps done.
    pub step: usize,
    /// Held-out metrics at λ_inf = 0 on a few windows.
    pub eval: EvalReport,
    /// The current text under the current dial against the derived bounds.
    pub theory: Option<TheoryPoint>,
}

/// Training progress (may be dropped when the UI falls behind).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The step's statistics.
    pub stats: StepStats,
    /// Steps planned in total.
    pub total_steps: usize,
    /// Tokens per second since the run (re)started.
    pub tokens_per_s: f64,
    /// Estimated seconds to the end.
    pub eta_s: f64,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A training step finished (lossy channel).
    Progress(Progress),
    /// A model is loaded or a run set up.
    Loaded(Box<ModelSummary>),
    /// A capture of the current text under the current dial.
    Snapshot(Box<Capture>, Vec<String>),
    /// Training reached its last step or was stopped; held-out metrics at λ_inf = 0.
    Finished(Box<EvalReport>),
    /// Training paused.
    Paused,
    /// A checkpoint was written: its directory and SHA-256.
    Saved(PathBuf, String),
    /// Live held-out metrics during training.
    Live(Box<LivePoint>),
    /// New rules are in force, resolved against the current model.
    RulesApplied(Vec<ResolvedRule>),
    /// A rule file was rejected (every error listed); the previous rules stay in force.
    RulesRejected(RuleErrors),
    /// What each rule did on the current text (sent just before its snapshot).
    RuleReport(Box<(Vec<RuleReport>, Vec<Firing>)>),
    /// The penalty threshold λ* estimated on the current text (SPEC §8.4).
    Threshold(ThresholdEstimate),
    /// The two sides of a comparison, each captured or failed.
    Compare(Box<[Result<CompareView, String>; 2]>),
    /// The theory curve of the current text.
    Theory(Vec<TheoryPoint>),
    /// The recruitment log and state (after every round, on a switch, and when a checkpoint
    /// with a `recruitment.json` is opened).
    Recruitment(Box<Recruiter>),
    /// A short status line for the UI (e.g. a recruitment round has started).
    Status(String),
    /// Recruitment changed the block map: block names and vocabulary tokens per block.
    BlocksChanged(Vec<String>, Vec<usize>),
    /// A few generated tokens with their next-token distributions.
    Generated(Box<crate::engine::generate::Generation>),
    /// Something failed; the worker keeps its previous state.
    Failed(String),
}

/// The model the worker holds when no run is set up.
struct Loaded {
    model: LocalistModel,
    blocks: BlockMap,
    tokenizer: Box<dyn Tokenizer>,
    meta: CheckpointMeta,
}

/// A pretrained model opened from a `.gguf` file or a Hugging Face folder.
struct Imported {
    model: ImportedModel,
    blocks: BlockMap,
    tokenizer: HfTokenizer,
}

#[derive(PartialEq)]
enum RunState {
    Idle,
    Running,
    Paused,
}

struct Worker {
    events: Sender<Event>,
    progress: Sender<Event>,
    repaint: Box<dyn Fn() + Send>,
    device: Device,
    loaded: Option<Loaded>,
    /// A pretrained model; at most one of `loaded`, `imported` and `session` is set (opening
    /// or setting up one clears the others).
    imported: Option<Imported>,
    session: Option<Session>,
    state: RunState,
    dial: DialSetting,
    text: String,
    run_started: Option<(Instant, usize)>,
    /// When live metrics were last measured.
    last_live: Option<Instant>,
    /// The checkpoints of a comparison, kept while they are compared.
    compare_models: Vec<(PathBuf, Loaded)>,
    /// The rule file in force and the ids switched off.
    rules_text: String,
    rules_off: Vec<String>,
    /// The rules resolved against the current model.
    rules: Vec<ResolvedRule>,
}

/// The UI's handle on a worker thread.
pub struct WorkerHandle {
    commands: Sender<Command>,
    events: Receiver<Event>,
    progress: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// Spawn a worker thread named `localist-worker`. `repaint` is called after every event.
    pub fn spawn(repaint: Box<dyn Fn() + Send>) -> std::io::Result<Self> {
        let (cmd_tx, cmd_rx) = unbounded();
        let (ev_tx, ev_rx) = unbounded();
        let (pr_tx, pr_rx) = bounded(64);
        let thread = std::thread::Builder::new()
            .name("localist-worker".into())
            .spawn(move || {
                let mut worker = Worker {
                    events: ev_tx.clone(),
                    progress: pr_tx,
                    repaint,
                    device: crate::engine::train_job::default_device(),
                    loaded: None,
                    imported: None,
                    session: None,
                    state: RunState::Idle,
                    dial: DialSetting::default(),
                    text: String::new(),
                    run_started: None,
                    last_live: None,
                    compare_models: Vec::new(),
                    rules_text: String::new(),
                    rules_off: Vec::new(),
                    rules: Vec::new(),
                };
                let outcome = catch_unwind(AssertUnwindSafe(|| worker.run(&cmd_rx)));
                if let Err(panic) = outcome {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    let _ = ev_tx.send(Event::Failed(format!(
                        "the worker crashed ({msg}); start a new one to continue"
                    )));
                    (worker.repaint)();
                }
            })?;
        Ok(Self {
            commands: cmd_tx,
            events: ev_rx,
            progress: pr_rx,
            thread: Some(thread),
        })
    }

    /// Queue a command (returns false when the worker has ended).
    pub fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// Every event waiting now, results first, then the latest progress messages; never blocks.
    pub fn drain(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self.progress.try_iter().collect();
        out.extend(self.events.try_iter());
        out
    }

    /// Wait up to `timeout` for the next non-progress event (tests and headless use).
    pub fn wait_event(&self, timeout: std::time::Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Wait up to `timeout` for the next progress event.
    pub fn wait_progress(&self, timeout: std::time::Duration) -> Option<Event> {
        self.progress.recv_timeout(timeout).ok()
    }

    /// True while the thread runs.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Worker {
    fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
        (self.repaint)();
    }

    fn emit_progress(&self, ev: Event) {
        // Lossy by design: a full channel means the UI has not drawn the last 64 steps yet.
        let _ = self.progress.try_send(ev);
        (self.repaint)();
    }

    fn run(&mut self, rx: &Receiver<Command>) {
        loop {
            let cmd = if self.state == RunState::Running {
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            match cmd {
                Some(Command::Shutdown) => return,
                Some(c) => self.handle(c),
                None => self.step(),
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Load(path) => self.load(path),
            Command::NewRun(job) => self.new_run(*job),
            Command::Train | Command::Resume => {
                if self.session.is_some() {
                    self.state = RunState::Running;
                    self.run_started = Some((Instant::now(), 0));
                } else {
                    self.emit(Event::Failed("no training run is set up".into()));
                }
            }
            Command::Pause => {
                if self.state == RunState::Running {
                    self.state = RunState::Paused;
                    self.emit(Event::Paused);
                }
            }
            Command::Step => {
                if self.session.is_some() {
                    self.step();
                }
            }
            Command::Stop => {
                if self.state != RunState::Idle {
                    self.state = RunState::Idle;
                    self.finish();
                }
            }
            Command::SetDial(d) => {
                self.dial = d;
                self.recapture();
            }
            Command::Capture(text) => {
                self.text = text;
                self.recapture();
                self.threshold();
            }
            Command::Save(path) => self.save(path),
            Command::TheoryCurve(lambdas) => self.theory(&lambdas),
            Command::Compare(sides) => self.compare(&sides),
            Command::SetRules { text, off } => self.set_rules(text, off),
            Command::SetRecruitment(on) => self.set_recruitment(on),
            Command::RenameBlock(b, name) => self.rename_block(b, name),
            Command::SetImportedBlocks(src) => self.set_imported_blocks(&src),
            Command::Generate(n) => self.generate(n),
            Command::Shutdown => {}
            Command::DebugPanic => panic!("debug panic requested"),
        }
    }

    fn load(&mut self, path: PathBuf) {
        if ImportedModel::looks_imported(&path) {
            self.load_imported(path);
            return;
        }
        match open_checkpoint(&path, &self.device) {
            Ok((loaded, lambda_train)) => {
                let mut summary = summary(
                    &loaded.model,
                    &loaded.blocks,
                    &path.display().to_string(),
                    lambda_train,
                );
                let training = &loaded.meta.training;
                summary.sample_text = sample_text(training);
                summary.anchors = training
                    .get("anchors")
                    .and_then(|a| serde_json::from_value(a.clone()).ok())
                    .or_else(|| {
                        measure_anchors(training, &spec_of(&loaded.meta.tokenizer)?, &loaded.blocks)
                    });
                summary.checkpoint = checkpoint_sha256(&path).ok().map(|h| (path.clone(), h));
                summary.corpus = corpus_of(training);
                self.session = None;
                self.state = RunState::Idle;
                self.loaded = Some(loaded);
                self.imported = None;
                self.emit(Event::Loaded(Box::new(summary)));
                if let Some(rec) = std::fs::read(path.join("recruitment.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Recruiter>(&b).ok())
                {
                    self.emit(Event::Recruitment(Box::new(rec)));
                }
                self.refit_rules();
                self.recapture();
                self.threshold();
            }
            Err(e) => self.emit(Event::Failed(format!(
                "could not open {}: {e}; the current model is kept",
                path.display()
            ))),
        }
    }

    fn new_run(&mut self, job: TrainJob) {
        match setup(&job, &self.device) {
            Ok(session) => {
                let mut summary = summary(
                    &session.trainer.model,
                    &session.trainer.blocks,
                    &session.corpus.source.label(),
                    Some(job.train.lambda_train),
                );
                summary.corpus = Some((
                    match &session.corpus.source {
                        CorpusSource::File { path } => Some(path.clone()),
                        CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => None,
                    },
                    session.corpus.sha256.clone(),
                ));
                let recruiter = session.recruiter.clone();
                self.session = Some(session);
                self.loaded = None;
                self.imported = None;
                self.state = RunState::Idle;
                self.emit(Event::Loaded(Box::new(summary)));
                if let Some(r) = recruiter {
                    self.emit(Event::Recruitment(Box::new(r)));
                }
                self.refit_rules();
                if let Some(s) = &mut self.session {
                    if s.job.rules.is_none() {
                        s.trainer.rules = self.rules.clone();
                    }
                }
                self.recapture();
                self.threshold();
            }
            Err(e) => self.emit(Event::Failed(format!("{e:#}"))),
        }
    }

    fn step(&mut self) {
        let Some(session) = self.session.as_mut() else {
            self.state = RunState::Idle;
            return;
        };
        let total = session.job.train.steps;
        if session.trainer.step >= total {
            self.state = RunState::Idle;
            self.finish();
            return;
        }
        let result = session.trainer.train_step();
        if let Ok(stats) = &result {
            session.history.push(stats.clone());
        }
        let blocks_before = session.trainer.blocks.num_blocks();
        let names_before = session.trainer.blocks.names.clone();
        if result.is_ok()
            && session
                .recruiter
                .as_ref()
                .is_some_and(|r| r.due(session.trainer.step))
        {
            // A round trains its probes for a few seconds: say so before the worker goes quiet.
            let _ = self.events.send(Event::Status(format!(
                "recruitment round at step {}: probing candidate blocks…",
                session.trainer.step
            )));
            (self.repaint)();
        }
        let recruited = match &result {
            Ok(_) => session.maybe_recruit().map_err(|e| format!("{e:#}")),
            Err(_) => Ok(Vec::new()),
        };
        let finished = session.trainer.step >= total;
        let blocks_changed = session.trainer.blocks.num_blocks() != blocks_before
            || session.trainer.blocks.names != names_before;
        let recruiter = session
            .recruiter
            .clone()
            .filter(|_| matches!(&recruited, Ok(e) if !e.is_empty()));
        let block_update = blocks_changed.then(|| {
            (
                session.trainer.blocks.names.clone(),
                session.trainer.blocks.block_sizes(),
            )
        });
        if let Err(e) = recruited {
            self.emit(Event::Failed(e));
        }
        if let Some(r) = recruiter {
            self.emit(Event::Recruitment(Box::new(r)));
        }
        if let Some((names, sizes)) = block_update {
            self.emit(Event::BlocksChanged(names, sizes));
            self.refit_rules();
            self.recapture();
        }
        match result {
            Ok(stats) => {
                let (t0, tok0) = self.run_started.unwrap_or((Instant::now(), 0));
                let done_tokens = tok0 + stats.tokens;
                self.run_started = Some((t0, done_tokens));
                let tps = done_tokens as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                let remaining = total.saturating_sub(stats.step + 1) as f64;
                let eta_s = remaining * stats.tokens as f64 / tps.max(1e-9);
                self.emit_progress(Event::Progress(Progress {
                    stats,
                    total_steps: total,
                    tokens_per_s: tps,
                    eta_s,
                }));
                if finished {
                    self.state = RunState::Idle;
                    self.finish();
                } else {
                    self.live(false);
                }
            }
            Err(e) => {
                self.state = RunState::Idle;
                self.emit(Event::Failed(format!("{e}")));
            }
        }
    }

    fn set_recruitment(&mut self, on: bool) {
        let Some(session) = self.session.as_mut() else {
            self.emit(Event::Failed(
                "recruitment runs while training: set up a run first".into(),
            ));
            return;
        };
        if on && session.recruiter.is_none() {
            if session.trainer.blocks.kind != crate::model::blocks::BlockKind::Semantic {
                self.emit(Event::Failed(
                    "recruitment needs semantic blocks, not positional windows".into(),
                ));
                return;
            }
            let mut rec = Recruiter::new(RecruitConfig {
                warmup: session.trainer.step,
                ..RecruitConfig::default()
            });
            rec.next_due = Some(session.trainer.step);
            session.trainer.blocks.isolate_unassigned = true;
            if session.trainer.config.forward_lambda.is_none() {
                session.trainer.config.forward_lambda = Some(rec.config.lambda);
            }
            session.recruiter = Some(rec);
        }
        if let Some(rec) = session.recruiter.as_mut() {
            rec.config.enabled = on;
            if on && rec.stopped.is_some() {
                // Switching it back on after it stopped starts a fresh patience count.
                rec.stopped = None;
                rec.next_due = Some(session.trainer.step);
            }
            let r = rec.clone();
            self.emit(Event::Recruitment(Box::new(r)));
        }
    }

    fn finish(&mut self) {
        let report = self
            .session
            .as_ref()
            .map(|s| s.evaluate(&DialSetting::default()));
        match report {
            Some(Ok(r)) => self.emit(Event::Finished(Box::new(r))),
            Some(Err(e)) => self.emit(Event::Failed(format!("evaluation failed: {e:#}"))),
            None => {}
        }
        if self.session.is_some() {
            self.live(true);
        } else {
            self.recapture();
        }
    }

    /// The model the panels show: a training run's, an imported one, or a checkpoint's.
    fn current(&self) -> Option<(&dyn AttentionModel, &BlockMap, &dyn Tokenizer)> {
        if let Some(i) = &self.imported {
            return Some((i.model.model(), &i.blocks, &i.tokenizer));
        }
        self.current_own()
            .map(|(m, b, t)| (m as &dyn AttentionModel, b, t))
    }

    /// The current model when it is one of ours (training, λ*, anchors and saving need it).
    fn current_own(&self) -> Option<(&LocalistModel, &BlockMap, &dyn Tokenizer)> {
        if let Some(s) = &self.session {
            return Some((
                &s.trainer.model,
                &s.trainer.blocks,
                s.corpus.tokenizer.as_ref(),
            ));
        }
        self.loaded
            .as_ref()
            .map(|l| (&l.model, &l.blocks, l.tokenizer.as_ref()))
    }

    /// How many tokens of the text a capture takes on `model`.
    fn capture_limit(&self, model: &dyn AttentionModel) -> usize {
        let max = model.dims().max_len;
        if self.imported.is_some() {
            max.min(IMPORTED_CAPTURE_LIMIT)
        } else {
            max
        }
    }

    /// The current text's ids, truncated to `max_len` positions; an empty result is reported.
    fn text_ids(&self, tok: &dyn Tokenizer, max_len: usize) -> Option<Vec<u32>> {
        let mut ids = tok.encode(&self.text);
        ids.truncate(max_len);
        if ids.is_empty() {
            self.emit(Event::Failed("the text is empty after tokenization".into()));
            return None;
        }
        Some(ids)
    }

    fn recapture(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let Some((model, blocks, tok)) = self.current() else {
            return;
        };
        let Some(ids) = self.text_ids(tok, self.capture_limit(model)) else {
            return;
        };
        let tokens: Vec<String> = ids.iter().map(|&i| tok.token_str(i)).collect();
        if self.rules.is_empty() {
            match capture(model, blocks, &ids, &self.dial) {
                Ok(cap) => self.emit(Event::Snapshot(Box::new(cap), tokens)),
                Err(e) => self.emit(Event::Failed(format!("capture failed: {e}"))),
            }
            return;
        }
        match capture_with_rules(model, blocks, &ids, &self.dial, &self.rules) {
            Ok(rc) => {
                self.emit(Event::RuleReport(Box::new((rc.reports, rc.firings))));
                self.emit(Event::Snapshot(Box::new(rc.capture), tokens));
            }
            Err(e) => self.emit(Event::Failed(format!("capture with rules failed: {e}"))),
        }
    }

    /// Anchor tokens per block of the current model, when it has them.
    fn anchors(&self) -> Vec<(String, Vec<String>)> {
        match (&self.session, &self.loaded) {
            (None, Some(l)) => crate::engine::anchors::recorded_anchor_tokens(&l.meta.training),
            _ => Vec::new(),
        }
    }

    /// Parse and resolve a rule file against the current model.
    fn resolve_rules(&self, text: &str, off: &[String]) -> Result<Vec<ResolvedRule>, RuleErrors> {
        let set = parse_rules(text)?;
        let anchors = self.anchors();
        let Some((_, blocks, tok)) = self.current() else {
            return Err(RuleErrors {
                errors: vec![crate::rules::parse::RuleError {
                    pos: Default::default(),
                    message: "no model is loaded to check the rules against".into(),
                }],
            });
        };
        let mut rules = resolve(&set, blocks, tok, &anchors)?;
        for r in &mut rules {
            if off.contains(&r.id) {
                r.enabled = false;
            }
        }
        Ok(rules)
    }

    fn set_rules(&mut self, text: String, off: Vec<String>) {
        match self.resolve_rules(&text, &off) {
            Ok(rules) => {
                self.rules = rules.clone();
                // A run in progress trains towards the rules in force (weight μ_rule).
                if let Some(s) = &mut self.session {
                    s.trainer.rules = rules.clone();
                }
                self.rules_text = text;
                self.rules_off = off;
                self.emit(Event::RulesApplied(rules));
                self.recapture();
            }
            Err(e) => self.emit(Event::RulesRejected(e)),
        }
    }

    /// After the model changed: the rules in force, checked against the new model.
    fn refit_rules(&mut self) {
        if self.rules_text.trim().is_empty() {
            self.rules.clear();
            return;
        }
        match self.resolve_rules(&self.rules_text, &self.rules_off) {
            Ok(rules) => self.rules = rules,
            Err(e) => {
                self.rules.clear();
                self.emit(Event::RulesRejected(e));
            }
        }
    }

    /// Estimate λ* on the current text with the penalty settings the model is (or was)
    /// trained under; a text too short to measure sends nothing.
    fn threshold(&mut self) {
        let config = match (&self.session, &self.loaded) {
            (Some(s), _) => s.job.train.clone(),
            (None, Some(l)) => l
                .meta
                .training
                .get("config")
                .and_then(|c| serde_json::from_value::<TrainConfig>(c.clone()).ok())
                .unwrap_or_default(),
            (None, None) => return,
        };
        if self.imported.is_some() {
            return;
        }
        let Some((model, blocks, tok)) = self.current_own() else {
            return;
        };
        let mut ids = tok.encode(&self.text);
        ids.truncate(model.config.max_seq_len);
        if ids.len() < 2 {
            return;
        }
        match estimate_threshold(model, blocks, &ids, config.eta, config.weights) {
            Ok(est) => self.emit(Event::Threshold(est)),
            Err(e) => self.emit(Event::Failed(format!("λ* estimate failed: {e}"))),
        }
    }

    fn theory(&mut self, lambdas: &[f64]) {
        let Some((model, blocks, tok)) = self.current() else {
            self.emit(Event::Failed("no model loaded".into()));
            return;
        };
        let Some(ids) = self.text_ids(tok, self.capture_limit(model)) else {
            return;
        };
        match theory_curve(model, blocks, &ids, &self.dial, lambdas) {
            Ok(curve) => self.emit(Event::Theory(curve)),
            Err(e) => self.emit(Event::Failed(format!("theory curve failed: {e}"))),
        }
    }

    fn compare(&mut self, sides: &[CompareSide; 2]) {
        // Keep the compared checkpoints loaded while they are compared; drop the others.
        let wanted: Vec<PathBuf> = sides.iter().filter_map(|s| s.checkpoint.clone()).collect();
        self.compare_models.retain(|(p, _)| wanted.contains(p));
        let mut errors: Vec<(PathBuf, String)> = Vec::new();
        for p in &wanted {
            if self.compare_models.iter().any(|(q, _)| q == p) || errors.iter().any(|(q, _)| q == p)
            {
                continue;
            }
            match open_checkpoint(p, &self.device) {
                Ok((l, _)) => self.compare_models.push((p.clone(), l)),
                Err(e) => errors.push((p.clone(), format!("could not open {}: {e}", p.display()))),
            }
        }
        let views = sides.clone().map(|side| {
            let found = match &side.checkpoint {
                None => self.current(),
                Some(p) => self
                    .compare_models
                    .iter()
                    .find(|(q, _)| q == p)
                    .map(|(_, l)| {
                        (
                            &l.model as &dyn AttentionModel,
                            &l.blocks,
                            l.tokenizer.as_ref(),
                        )
                    }),
            };
            let error = side
                .checkpoint
                .as_ref()
                .and_then(|p| errors.iter().find(|(q, _)| q == p))
                .map(|(_, e)| e.clone());
            match (found, error) {
                (Some((model, blocks, tok)), _) => {
                    capture_side(model, blocks, tok, &self.text, &side)
                }
                (None, Some(e)) => Err(e),
                (None, None) => Err("no model loaded".to_string()),
            }
        });
        self.emit(Event::Compare(Box::new(views)));
    }

    /// Held-out metrics on a few windows, the current text against the bounds, and a new
    /// capture, at most about once a second while training runs.
    fn live(&mut self, force: bool) {
        if !force
            && self
                .last_live
                .is_some_and(|t| t.elapsed().as_secs_f64() < 1.0)
        {
            return;
        }
        self.last_live = Some(Instant::now());
        let Some(session) = &self.session else { return };
        let point = session
            .evaluate_windows(&DialSetting::default(), 8)
            .map(|eval| {
                let model = &session.trainer.model;
                let mut ids = session.corpus.tokenizer.encode(&self.text);
                ids.truncate(model.config.max_seq_len);
                let theory = (!ids.is_empty())
                    .then(|| {
                        theory_curve(
                            model,
                            &session.trainer.blocks,
                            &ids,
                            &self.dial,
                            &[self.dial.params.lambda],
                        )
                        .ok()
                        .and_then(|mut c| c.pop())
                    })
                    .flatten();
                LivePoint {
                    step: session.trainer.step,
                    eval,
                    theory,
                }
            });
        match point {
            Ok(p) => self.emit(Event::Live(Box::new(p))),
            Err(e) => self.emit(Event::Failed(format!("live evaluation failed: {e:#}"))),
        }
        self.recapture();
        self.threshold();
    }

    /// Open a `.gguf` file or a Hugging Face folder; its blocks are the ones saved beside it,
    /// else k-means over its embedding rows.
    fn load_imported(&mut self, path: PathBuf) {
        let _ = self
            .events
            .send(Event::Status(format!("opening {}…", path.display())));
        (self.repaint)();
        let model = match ImportedModel::open(&path, &self.device) {
            Ok(m) => m,
            Err(e) => {
                self.emit(Event::Failed(format!(
                    "could not open {}: {e:#}; the current model is kept",
                    path.display()
                )));
                return;
            }
        };
        let tokenizer = model.tokenizer();
        let saved = model.blocks_path();
        let blocks = match std::fs::read(&saved) {
            Ok(bytes) => match serde_json::from_slice::<BlockMap>(&bytes) {
                Ok(b) if b.token_block.len() == tokenizer.vocab_size() => Ok(b),
                Ok(_) => Err(format!(
                    "{}: its block map is for another vocabulary; rebuilt by k-means",
                    saved.display()
                )),
                Err(e) => Err(format!("{}: {e}; rebuilt by k-means", saved.display())),
            },
            Err(_) => Err(String::new()),
        };
        let blocks = match blocks {
            Ok(b) => b,
            Err(why) => {
                if !why.is_empty() {
                    self.emit(Event::Failed(why));
                }
                let _ = self.events.send(Event::Status(format!(
                    "{}: blocks by k-means (k = {DEFAULT_CLUSTERS}) over the embedding rows…",
                    path.display()
                )));
                (self.repaint)();
                match model.kmeans_blocks(&tokenizer, DEFAULT_CLUSTERS, 0) {
                    Ok(b) => b,
                    Err(e) => {
                        self.emit(Event::Failed(format!("k-means blocks failed: {e:#}")));
                        return;
                    }
                }
            }
        };
        self.session = None;
        self.loaded = None;
        self.state = RunState::Idle;
        // The audit trail and sessions record what the model computes with.
        let hash = crate::hf::model_sha256(model.path())
            .ok()
            .map(|h| (model.path().to_path_buf(), h));
        self.imported = Some(Imported {
            model,
            blocks,
            tokenizer,
        });
        if let Some(mut s) = self.imported_summary() {
            s.checkpoint = hash;
            self.emit(Event::Loaded(Box::new(s)));
        }
        self.refit_rules();
        self.recapture();
    }

    fn imported_summary(&self) -> Option<ModelSummary> {
        let i = self.imported.as_ref()?;
        let dims = i.model.model().dims();
        Some(ModelSummary {
            source: i.model.path().display().to_string(),
            preset: i.model.arch_label().to_string(),
            shape: (dims.layers, dims.heads, i.model.d_model(), dims.max_len),
            parameters: i.model.parameters(),
            lambda_train: None,
            blocks: i.blocks.names.clone(),
            sample_text: None,
            block_sizes: i.blocks.block_sizes(),
            anchors: None,
            anchor_coherence: Vec::new(),
            checkpoint: None,
            corpus: None,
            imported: Some((i.model.kind_label().to_string(), i.blocks.source.clone())),
            generates: dims.has_logits && dims.causal,
        })
    }

    /// The block map the panels show, to edit.
    fn current_blocks_mut(&mut self) -> Option<&mut BlockMap> {
        if let Some(s) = &mut self.session {
            return Some(&mut s.trainer.blocks);
        }
        if let Some(i) = &mut self.imported {
            return Some(&mut i.blocks);
        }
        self.loaded.as_mut().map(|l| &mut l.blocks)
    }

    /// After the block map changed: tell the UI, save an imported model's map beside it, check
    /// the rules again and capture.
    fn blocks_changed(&mut self) {
        let Some(blocks) = self.current_blocks_mut().map(|b| b.clone()) else {
            return;
        };
        self.emit(Event::BlocksChanged(
            blocks.names.clone(),
            blocks.block_sizes(),
        ));
        if let Some(i) = &self.imported {
            let path = i.model.blocks_path();
            let written = serde_json::to_vec(&blocks)
                .map_err(|e| e.to_string())
                .and_then(|j| {
                    crate::engine::export::write_atomic(&path, &j).map_err(|e| e.to_string())
                });
            match written {
                Ok(()) => self.emit(Event::Status(format!(
                    "blocks saved to {}",
                    path.display()
                ))),
                Err(e) => self.emit(Event::Failed(format!(
                    "the blocks could not be saved to {}: {e} (they stay in force for this session)",
                    path.display()
                ))),
            }
        }
        self.refit_rules();
        self.recapture();
    }

    fn rename_block(&mut self, b: usize, name: String) {
        let name = name.trim().to_string();
        let Some(blocks) = self.current_blocks_mut() else {
            self.emit(Event::Failed("no model is loaded".into()));
            return;
        };
        let problem = if name.is_empty() {
            Some("a block name cannot be empty".to_string())
        } else if b == 0 {
            Some(format!("block 0 ({}) keeps its name", blocks.names[0]))
        } else if blocks
            .names
            .iter()
            .enumerate()
            .any(|(k, n)| k != b && *n == name)
        {
            Some(format!("another block is already called {name:?}"))
        } else if b >= blocks.names.len() {
            Some(format!("there is no block {b}"))
        } else {
            None
        };
        if let Some(p) = problem {
            self.emit(Event::Failed(p));
            return;
        }
        if let Some(slot) = blocks.names.get_mut(b) {
            *slot = name;
        }
        self.blocks_changed();
    }

    fn set_imported_blocks(&mut self, src: &ImportedBlocks) {
        let Some(i) = self.imported.as_mut() else {
            self.emit(Event::Failed(
                "blocks by k-means or lexicon are for imported models; open one first".into(),
            ));
            return;
        };
        let result = match src {
            ImportedBlocks::KMeans(k) => i
                .model
                .kmeans_blocks(&i.tokenizer, (*k).clamp(2, 256), 0)
                .map_err(|e| format!("k-means blocks failed: {e:#}")),
            ImportedBlocks::Lexicon(path) => crate::data::lexicon::Lexicon::load(path)
                .map_err(|e| e.to_string())
                .and_then(|lex| {
                    crate::hf::lexicon_blocks(&lex, &i.tokenizer).map_err(|e| e.to_string())
                }),
        };
        match result {
            Ok(b) => {
                let note = format!("{} blocks from {}", b.num_blocks(), b.source);
                i.blocks = b;
                self.emit(Event::Status(note));
                self.blocks_changed();
            }
            Err(e) => self.emit(Event::Failed(format!("{e}; the blocks are unchanged"))),
        }
    }

    fn generate(&mut self, n: usize) {
        let Some((model, blocks, tok)) = self.current() else {
            self.emit(Event::Failed("no model loaded".into()));
            return;
        };
        let Some(ids) = self.text_ids(tok, self.capture_limit(model)) else {
            return;
        };
        let out = crate::engine::generate::generate(
            model,
            blocks,
            tok,
            &ids,
            &self.dial,
            &self.rules,
            n.clamp(1, 64),
            10,
        );
        match out {
            Ok(g) => self.emit(Event::Generated(Box::new(g))),
            Err(e) => self.emit(Event::Failed(format!("generation failed: {e:#}"))),
        }
    }

    fn save(&mut self, path: PathBuf) {
        if self.imported.is_some() {
            self.emit(Event::Failed(
                "an imported model is not saved as a Localist checkpoint; its block names are \
                 saved beside it whenever you rename or rebuild them"
                    .into(),
            ));
            return;
        }
        let result = match (&self.session, &self.loaded) {
            (Some(s), _) => s.save(&path, None).map_err(|e| format!("{e:#}")),
            (None, Some(l)) => {
                let meta = CheckpointMeta {
                    dial: self.dial.clone(),
                    ..l.meta.clone()
                };
                save_checkpoint(&path, &meta, &l.blocks, &l.model, None).map_err(|e| e.to_string())
            }
            (None, None) => Err("no model to save".to_string()),
        };
        match result.and_then(|()| checkpoint_sha256(&path).map_err(|e| e.to_string())) {
            Ok(hash) => self.emit(Event::Saved(path, hash)),
            Err(e) => self.emit(Event::Failed(e)),
        }
    }
}

fn summary(
    model: &LocalistModel,
    blocks: &BlockMap,
    source: &str,
    lambda_train: Option<f64>,
) -> ModelSummary {
    let c = &model.config;
    ModelSummary {
        source: source.to_string(),
        preset: c.preset.clone(),
        shape: (c.num_layers, c.num_heads, c.d_model, c.max_seq_len),
        parameters: model.params.num_scalars(),
        lambda_train,
        blocks: blocks.names.clone(),
        sample_text: None,
        block_sizes: blocks.block_sizes(),
        anchors: None,
        anchor_coherence: anchor_coherence(model),
        checkpoint: None,
        corpus: None,
        imported: None,
        generates: true,
    }
}

/// Read a checkpoint directory with its tokenizer; also returns the λ_train it records.
fn open_checkpoint(path: &Path, device: &Device) -> Result<(Loaded, Option<f64>), String> {
    let ck = load_checkpoint(path, device).map_err(|e| e.to_string())?;
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .map_err(|e| format!("{}: tokenizer in config.json: {e}", path.display()))?;
    let tokenizer = spec
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let lambda_train = ck
        .meta
        .training
        .get("lambda_train")
        .and_then(|v| v.as_f64());
    Ok((
        Loaded {
            model: ck.model,
            blocks: ck.blocks,
            tokenizer,
            meta: ck.meta,
        },
        lambda_train,
    ))
}

/// Pairwise |cos| of layer 0, head 0's anchor keys (empty if unavailable).
fn anchor_coherence(model: &LocalistModel) -> Vec<Vec<f64>> {
    let keys = model
        .params
        .get(&crate::model::transformer::anchor_name(0))
        .and_then(|t| t.get(0))
        .and_then(|t| t.to_vec2::<f32>());
    match keys {
        Ok(rows) => coherence_matrix(&rows)
            .into_iter()
            .map(|r| r.into_iter().map(f64::abs).collect())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn spec_of(v: &serde_json::Value) -> Option<TokenizerSpec> {
    serde_json::from_value(v.clone()).ok()
}

/// Anchor tokens measured on the checkpoint's training corpus, for checkpoints written before
/// anchors were stored (only when that corpus can be read or regenerated).
fn measure_anchors(
    training: &serde_json::Value,
    spec: &TokenizerSpec,
    blocks: &BlockMap,
) -> Option<AnchorReport> {
    let source: CorpusSource = serde_json::from_value(training.get("corpus")?.clone()).ok()?;
    let source = match source {
        CorpusSource::File { path } => CorpusSource::File {
            path: crate::engine::corpus::asset_path(&path),
        },
        s => s,
    };
    let seq = training
        .get("config")
        .and_then(|c| c.get("seq_len"))
        .and_then(|v| v.as_u64())
        .unwrap_or(64) as usize;
    let corpus = crate::engine::corpus::prepare_corpus(
        &source,
        crate::engine::corpus::TokenizerKind::Char,
        Some(spec),
    )
    .ok()?;
    let split = crate::train::dataset::train_split(corpus.stream.len());
    let ids = corpus.stream.ids.get(..split)?;
    Some(crate::engine::anchors::anchor_report(
        ids,
        blocks,
        corpus.tokenizer.as_ref(),
        seq,
        5,
        8,
    ))
}

/// The training corpus file and hash a checkpoint records.
fn corpus_of(training: &serde_json::Value) -> Option<(Option<PathBuf>, String)> {
    let sha = training.get("corpus_sha256")?.as_str()?.to_string();
    let path = training
        .get("corpus")
        .and_then(|c| serde_json::from_value::<CorpusSource>(c.clone()).ok())
        .and_then(|c| match c {
            CorpusSource::File { path } => Some(crate::engine::corpus::asset_path(&path)),
            CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => None,
        });
    Some((path, sha))
}

/// The first record of a synthetic training corpus, for display.
fn sample_text(training: &serde_json::Value) -> Option<String> {
    let corpus: CorpusSource = serde_json::from_value(training.get("corpus")?.clone()).ok()?;
    match corpus {
        CorpusSource::Synthetic { seed, .. } => {
            let c = SyntheticCorpus::generate(&SyntheticSpec {
                seed,
                num_records: 1,
                ..SyntheticSpec::default()
            });
            Some(c.text.trim_end().to_string())
        }
        CorpusSource::Topics { seed, topics } => crate::engine::corpus::topic_corpus(seed, topics)
            .text
            .lines()
            .next()
            .map(|l| l.split(' ').take(48).collect::<Vec<_>>().join(" ")),
        CorpusSource::File { .. } => None,
    }
}
