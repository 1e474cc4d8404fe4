//! The settings of a pool's growth loop and the record of one move: the plain data the
//! growth loop reads and writes, shared by every move and by the manifest.

use serde::{Deserialize, Serialize};

use crate::analysis::mdl::Decision;
use crate::train::recruit::RecruitConfig;

/// Most specialists in a pool (`specialists --max`; a manifest with more is refused): each is a
/// copy of the base model.
pub const MAX_SPECIALISTS: usize = 64;
/// Settings of the growth loop.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoolConfig {
    /// Acceptance margin δ, bits.
    pub delta_bits: f64,
    /// Header bits c_llm per specialist.
    pub header_bits: f64,
    /// Most specialists.
    pub max_specialists: usize,
    /// Fine-tuning steps of a candidate specialist.
    pub probe_steps: usize,
    /// Rows per fine-tuning batch.
    pub batch_size: usize,
    /// Tokens per row.
    pub seq_len: usize,
    /// Learning rate of the fine-tuning.
    pub lr: f64,
    /// Parameter-name prefixes a specialist trains (and pays for).
    pub trainable: Vec<String>,
    /// Stop after this many rounds without an accepted move.
    pub patience: usize,
    /// Seed.
    pub seed: u64,
    /// Try recruiting blocks inside a specialist (move 2).
    #[serde(default = "yes")]
    pub block_moves: bool,
    /// Settings of the block move: K_max and the header and map constants, the probe steps,
    /// the buffer, `charge_anchor_keys` (its λ and δ are the pool's: see `block_move.rs`).
    #[serde(default)]
    pub blocks: RecruitConfig,
}

fn yes() -> bool {
    true
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            delta_bits: 64.0,
            header_bits: 64.0,
            max_specialists: 8,
            probe_steps: 60,
            batch_size: 8,
            seq_len: 32,
            lr: 0.05,
            trainable: vec!["head.bias".into(), "ln_f".into()],
            patience: 1,
            seed: 0,
            block_moves: true,
            blocks: RecruitConfig::default(),
        }
    }
}

/// One move, with its bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolMove {
    /// Round.
    pub round: usize,
    /// What was tried.
    pub what: String,
    /// DL_total before, bits.
    pub dl_before: f64,
    /// DL_total after, bits.
    pub dl_after: f64,
    /// Accepted or not.
    pub accepted: bool,
    /// The bits of a block move: data bits of the specialist's documents before and after,
    /// and the parameter, header and map bits it adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}
