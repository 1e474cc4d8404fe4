//! The engine's front door: every [`Command`] a face (the studio, a test, a headless tool) may
//! send to the worker, every [`Event`] it answers with, and every type they carry.
//!
//! Everything here is plain data: summaries, reports, logs and settings. No candle type, no
//! trainer or recruiter, no rule parser or syntax tree crosses this boundary, so a face that
//! names only `engine::protocol` cannot reach around the worker. The working types live in the
//! layers below; where one of them is already plain data (a capture, a report, a config), it is
//! re-exported here so the faces name it as `engine::protocol::X`.

mod compare;
mod generation;
mod measured;
mod summary;
mod test_set;
mod views;

use std::path::PathBuf;

pub use self::compare::{CompareSide, CompareView};
pub use self::generation::{Candidate, GenStep, Generation};
pub use self::measured::{blocks_key, rules_key, Depends, MeasuredOn};
pub use self::summary::{
    default_clusters, ImportedBlocks, LivePoint, ModelSummary, Progress, DEFAULT_CLUSTERS,
    IMPORTED_CAPTURE_LIMIT, MAX_CLUSTERS, WITHOUT_ITS_LOG,
};
pub use self::test_set::{TestSet, TestSetAudit};
pub use self::views::{PoolManifest, PoolSummary, RecruitView, RuleView, RulesInForce};

// Plain data defined in the layers below, as the faces read or build it.
pub use crate::analysis::dial::{DialMode, DialParams, LayerSchedule};
pub use crate::analysis::mdl::{Decision, ModelBits, Verdict};
pub use crate::engine::anchors::{AnchorReport, AnchorRow};
pub use crate::engine::corpus::{BlockSpec, CorpusSource, TokenizerKind};
pub use crate::engine::jobs::finetune::FinetuneJob;
pub use crate::engine::jobs::rules::RuleEval;
pub use crate::engine::jobs::specialists::{GrowPool, PoolJob};
pub use crate::engine::specialists::{ManifestRoute, ManifestSpecialist, PoolMove};
pub use crate::engine::theory::TheoryPoint;
pub use crate::engine::threshold::ThresholdEstimate;
pub use crate::engine::train_job::TrainJob;
pub use crate::model::capture_data::{Capture, HeadCapture};
pub use crate::model::capture_layout::{AttentionLayout, CapturePlan, STUDIO_GRID};
pub use crate::model::dial::DialSetting;
pub use crate::rules::check::Firing;
pub use crate::rules::inject::{HeadFidelity, RuleReport};
pub use crate::rules::parse::{RuleError, RuleErrors};
pub use crate::rules::print::KEYWORDS as RULE_KEYWORDS;
pub use crate::train::eval::EvalReport;
pub use crate::train::finetune::LocalityPenalty;
pub use crate::train::penalty::GroupWeights;
pub use crate::train::recruit::{MoveKind, RecruitConfig, RecruitEvent, RoundSummary};
pub use crate::train::trainer::{LrSchedule, StepStats, TrainConfig};

/// What the UI asks of the worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Load a checkpoint directory (the current model stays if it fails).
    Load(PathBuf),
    /// Set up a training run (fresh model, reference init or resume) without starting it.
    NewRun(Box<TrainJob>),
    /// Set up a fine-tune of the imported decoder held (its current blocks; `from` and
    /// `blocks` of the job are not read) without starting it.
    Finetune(Box<FinetuneJob>),
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
    /// Put the current run back on its state at the best point of its held-out curve and stop
    /// it there, measuring its held-out metrics again; in a run that recruits, the block map
    /// and recruitment log go back too (blocks recruited after that point are dropped).
    BackToBest,
    /// Put the current run on the weights of the best point of its held-out curve under the
    /// blocks it has now (every block and move found since stays, as `localist train` ends a
    /// run that overfits), and stop it there, measuring its held-out metrics again.
    BestWeightsUnderTheseBlocks,
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
    /// without it starts a recruiter with default settings; unassigned tokens stay open).
    SetRecruitment(bool),
    /// Rename block `index` of the current model (an imported model's block map is saved beside
    /// it, so the names come back next time).
    RenameBlock(usize, String),
    /// Rebuild an imported model's blocks: k-means with this many clusters, or a lexicon file.
    SetImportedBlocks(ImportedBlocks),
    /// Generate this many tokens after the current text under the current dial and rules.
    Generate(usize),
    /// Read a saved pool of specialists (a folder with `manifest.json`) for display; the
    /// current model is kept.
    OpenPool(PathBuf),
    /// Grow a pool of specialists (SPEC §10) from a base over documents, save it, and read it
    /// for display as [`OpenPool`](Self::OpenPool) does; cancellable between moves (a
    /// candidate being fine-tuned stops training and is decided as it is).
    GrowPool(Box<GrowPool>),
    /// Measure each rule in force over a test set under the current dial: the sentences it
    /// fired on, its pass rate and its mean PF there.
    AuditTestSet(TestSet),
    /// End the worker thread.
    Shutdown,
    /// Panic on purpose (tests of the recovery path).
    #[doc(hidden)]
    DebugPanic,
}

/// What the worker reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// A training step finished (lossy channel).
    Progress(Progress),
    /// A model is loaded or a run set up.
    Loaded(Box<ModelSummary>),
    /// A capture of the current text under the current dial: the capture, its token strings,
    /// and what it was measured on.
    Snapshot(Box<Capture>, Vec<String>, MeasuredOn),
    /// Training reached its last step or was stopped; held-out metrics at λ_inf = 0, and the
    /// model they were measured on.
    Finished(Box<EvalReport>, MeasuredOn),
    /// Training paused.
    Paused,
    /// A checkpoint was written: its directory and SHA-256.
    Saved(PathBuf, String),
    /// Live held-out metrics during training.
    Live(Box<LivePoint>),
    /// New rules are in force, resolved against the current model.
    RulesApplied(Box<RulesInForce>),
    /// A rule file was rejected (every error listed); the previous rules stay in force.
    RulesRejected(RuleErrors),
    /// What each rule did on the current text (sent just before its snapshot), and what it
    /// was measured on.
    RuleReport(Box<(Vec<RuleReport>, Vec<Firing>, MeasuredOn)>),
    /// A new model (or block map) is in place and the rules in force were checked against it:
    /// they resolve (their views on the new model), or they do not, and then no rule is in
    /// force on this model (the errors say why; the rule text is kept and checked again on
    /// the next model).
    RulesRefit(Result<Box<RulesInForce>, RuleErrors>),
    /// The penalty threshold λ* estimated on the current text (SPEC §8.4), and what it was
    /// measured on.
    Threshold(ThresholdEstimate, MeasuredOn),
    /// The two sides of a comparison, each captured or failed, and the current model and text
    /// they were taken on.
    Compare(Box<[Result<CompareView, String>; 2]>, MeasuredOn),
    /// The theory curve of the current text, and what it was measured on.
    Theory(Vec<TheoryPoint>, MeasuredOn),
    /// The recruitment log and state (after every round, on a switch, and when a checkpoint
    /// with a `recruitment.json` is opened).
    Recruitment(Box<RecruitView>),
    /// A short status line for the UI (e.g. a recruitment round has started).
    Status(String),
    /// Recruitment changed the block map: block names and vocabulary tokens per block.
    BlocksChanged(Vec<String>, Vec<usize>),
    /// A few generated tokens with their next-token distributions.
    Generated(Box<Generation>),
    /// A pool of specialists read for display, or why it could not be read.
    Pool(Result<Box<PoolSummary>, String>),
    /// The rules in force measured over a test set, or why they could not be.
    TestSetAudit(Result<Box<TestSetAudit>, String>),
    /// Something failed; the worker keeps its previous state.
    Failed(String),
}
