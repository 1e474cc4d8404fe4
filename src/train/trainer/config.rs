//! The trainer's settings, what one step reports, and what can go wrong.

use serde::{Deserialize, Serialize};

use crate::train::dataset::Sampling;
use crate::train::optimizer::AdamWConfig;
use crate::train::penalty::GroupWeights;

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Target training dial λ_train ∈ [0, 1].
    pub lambda_train: f64,
    /// Penalty scale η (loss = CE + η·λ·mean Ω + ...).
    pub eta: f64,
    /// Fraction of steps over which λ is annealed from 0 (0 disables annealing).
    pub anneal_fraction: f64,
    /// Anchor-loss weight μ_anc (0 disables the anchor loss).
    pub mu_anchor: f64,
    /// Off-block group weights.
    pub weights: GroupWeights,
    /// AdamW settings.
    pub optimizer: AdamWConfig,
    /// Rows per batch B.
    pub batch_size: usize,
    /// Tokens per row T.
    pub seq_len: usize,
    /// Total steps.
    pub steps: usize,
    /// Seed for sampling.
    pub seed: u64,
    /// Batch schedule.
    pub sampling: Sampling,
    /// ε inside the group-norm square root.
    pub penalty_eps: f64,
    /// Leave self and the first position out of the penalty's groups (see `PenaltyTensors`).
    pub exempt_always_visible: bool,
    /// Weight μ_rule of the rule penalty: −log PF_mass on the rows where a rule fires, in its
    /// layers and heads (0 disables it; see
    /// [`Trainer::rules`](crate::train::trainer::Trainer::rules)).
    pub mu_rule: f64,
    /// Train only parameters whose names start with one of these (empty: all). A specialist
    /// fine-tuned this way adds only these parameters over its parent (SPEC §10).
    pub trainable: Vec<String>,
    /// Train under the mode-A dial at this λ in the forward pass as well (None: only the
    /// penalty). Recruitment measures its data bits at a dial, so a model grown by recruitment
    /// trains at that dial too, and a recruited block's keys become visible to its queries in
    /// training exactly as in the measurement.
    pub forward_lambda: Option<f64>,
    /// Anneal λ again from this step, over the same `anneal_fraction` of the steps as at the
    /// start: recruitment sets it when it accepts a move, so a block recruited mid-run gets the
    /// penalty's ramp that a block given at the start gets (None: only the initial anneal).
    #[serde(default)]
    pub ramp_from: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            lambda_train: 0.0,
            eta: 1.0,
            anneal_fraction: 0.1,
            mu_anchor: 0.0,
            weights: GroupWeights::Unit,
            optimizer: AdamWConfig::default(),
            batch_size: 16,
            seq_len: 64,
            steps: 1000,
            seed: 0,
            sampling: Sampling::Random,
            penalty_eps: 1e-12,
            exempt_always_visible: false,
            mu_rule: 0.0,
            trainable: Vec::new(),
            forward_lambda: None,
            ramp_from: None,
        }
    }
}

impl TrainConfig {
    /// Most tokens per row for a fresh model (whose positions are raised to the row length): a
    /// longer row is a typo or an attack (`--seq 100000` would allocate tens of GB).
    pub const MAX_FRESH_SEQ_LEN: usize = 4096;

    /// Most rows per batch, whatever the memory estimate says.
    pub const MAX_BATCH_SIZE: usize = 1 << 16;

    /// Most memory one training step may need by [`TrainConfig::step_bytes`]'s estimate.
    pub const MAX_STEP_BYTES: u64 = 4 << 30;

    /// An estimate of the memory of one training step in bytes for a model of this shape:
    /// per row and position, each layer keeps the attention scores and weights of every head
    /// over the row (B·T·L·H·T values, four copies with their gradients) and about 16
    /// activations of width d_model, all in f32. Saturates instead of overflowing, so an absurd
    /// request gives `u64::MAX`.
    pub fn step_bytes(&self, layers: usize, heads: usize, d_model: usize) -> u64 {
        let n = |x: usize| x as u64;
        let per_layer = n(heads)
            .saturating_mul(n(self.seq_len))
            .saturating_mul(4)
            .saturating_add(n(d_model).saturating_mul(16));
        n(self.batch_size)
            .saturating_mul(n(self.seq_len))
            .saturating_mul(n(layers))
            .saturating_mul(per_layer)
            .saturating_mul(4)
    }
}

/// Errors while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error(
        "training step {step}: loss is {loss} (not finite); weights kept from step {last_good}"
    )]
    NonFinite {
        /// Step at which it happened.
        step: usize,
        /// The value.
        loss: f32,
        /// Last step whose update was applied.
        last_good: usize,
    },
    /// Bad settings or data.
    #[error("{0}")]
    Invalid(String),
    /// Candle failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] crate::model::transformer::ModelError),
}

/// What one step did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    /// Step index (0-based).
    pub step: usize,
    /// Total loss in nats.
    pub loss_nats: f64,
    /// Cross-entropy in nats.
    pub ce_nats: f64,
    /// Mean Ω (before the η·λ factor).
    pub penalty: f64,
    /// Anchor loss in nats.
    pub anchor_nats: f64,
    /// Rule penalty (mean −log PF_mass over fired rows in scope), nats; 0 without rules.
    #[serde(default)]
    pub rule_nats: f64,
    /// λ used at this step (after annealing).
    pub lambda: f64,
    /// Tokens processed.
    pub tokens: usize,
}
