//! Plain views of the worker's working state: the rules in force as the panels list them, the
//! recruitment log, and a saved pool of specialists. The worker builds them from its own types
//! (see [`crate::engine::views`]); the faces only read them.

use std::path::PathBuf;

use crate::engine::specialists::{ManifestRoute, ManifestSpecialist, PoolMove};
use crate::train::recruit::{RecruitConfig, RecruitEvent, Renamed, RoundSummary};

/// One rule as the panels and the audit log show it.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleView {
    /// Its id.
    pub id: String,
    /// Its description.
    pub description: String,
    /// Whether it is switched on.
    pub enabled: bool,
    /// The rule's text, printed canonically (the audit log records it).
    pub text: String,
    /// Name of the trigger's block ("-" when the trigger names none).
    pub trigger_label: String,
    /// Name of the targeted block or token.
    pub target_label: String,
    /// Layers in scope, as the rule language writes them.
    pub layers: String,
    /// Heads in scope, as the rule language writes them.
    pub heads: String,
}

/// The rules in force after an apply.
#[derive(Clone, Debug, PartialEq)]
pub struct RulesInForce {
    /// Every rule of the file, in file order.
    pub rules: Vec<RuleView>,
    /// The rule file in its JSON form (for export), or why it could not be written.
    pub json: Result<String, String>,
}

/// The recruitment log and state of a run or an opened checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct RecruitView {
    /// Settings.
    pub config: RecruitConfig,
    /// Every decision so far.
    pub log: Vec<RecruitEvent>,
    /// DL after each round.
    pub rounds: Vec<RoundSummary>,
    /// Why recruitment stopped, once it has.
    pub stopped: Option<String>,
    /// Blocks renamed by hand since they were recruited (the log keeps the old names).
    pub renamed: Vec<Renamed>,
    /// Accepted moves so far.
    pub accepted: usize,
    /// Step at which the next round is due.
    pub next_due: Option<usize>,
    /// Milliseconds spent in rounds and in training between them, summed over the rounds.
    pub cost_ms: (f64, f64),
    /// The whole recruiter as `recruitment.json` holds it (for export), or why it could not
    /// be written.
    pub json: Result<Vec<u8>, String>,
}

impl RecruitView {
    /// Share of time spent in rounds against the training between them.
    pub fn cost_fraction(&self) -> Option<f64> {
        let (round, train) = self.cost_ms;
        (train > 0.0).then(|| round / train)
    }
}

/// What the Specialists panel shows of a pool's manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolManifest {
    /// The specialists, base first.
    pub specialists: Vec<ManifestSpecialist>,
    /// Each document's route and its bits under every specialist.
    pub routing: Vec<ManifestRoute>,
    /// Every move, in order.
    pub log: Vec<PoolMove>,
    /// For a pool of adapters on a pretrained decoder: that decoder ("path (arch, SHA-256
    /// abcd…)"); `None` for a pool of our own checkpoints.
    pub base_model: Option<String>,
}

/// A saved pool of specialists, read for display.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSummary {
    /// Its folder.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: PoolManifest,
    /// The documents' texts, when `documents.txt` lies beside the manifest.
    pub texts: Vec<String>,
}
