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
    /// While the block map is one block with its tokens open (recruitment before its first
    /// block), take the penalty over positional windows of this width instead (see
    /// `RecruitConfig::start_windows`; None: the block map's own, which has no groups then).
    #[serde(default)]
    pub start_windows: Option<usize>,
    /// Keep those windows for the unassigned (open) queries after the first block too: the
    /// recruited queries' penalty is taken over the block map, the unassigned queries' over
    /// the windows (`RecruitConfig::windows_throughout`).
    #[serde(default)]
    pub windows_throughout: bool,
    /// The learning rate over the run: warm-up and decay around `optimizer.lr`.
    pub schedule: LrSchedule,
}

/// How the learning rate moves over a run (SPEC §5 trains at a constant rate; the reference
/// does too, so the default is constant).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LrSchedule {
    /// Fraction of the steps over which the rate rises linearly from 0 (0: none).
    pub warmup: f64,
    /// Cosine decay after the warm-up, down to `floor` × the rate at the last step.
    pub cosine: bool,
    /// The decayed rate's floor as a fraction of the peak.
    pub floor: f64,
}

impl Default for LrSchedule {
    fn default() -> Self {
        Self {
            warmup: 0.0,
            cosine: false,
            floor: 0.1,
        }
    }
}

impl LrSchedule {
    /// The command line's schedule: 5% warm-up, then cosine down to a tenth. At a constant
    /// 3e-3 the final weights of the same run on different seeds spread by ±30% in held-out
    /// perplexity; the decay lets each run settle (see README, Recruitment).
    pub const WARMUP_COSINE: Self = Self {
        warmup: 0.05,
        cosine: true,
        floor: 0.1,
    };

    /// The factor on the peak rate at `step` of a run of `steps`.
    pub fn factor(&self, step: usize, steps: usize) -> f64 {
        let w = (self.warmup.clamp(0.0, 1.0) * steps as f64).round();
        let s = step as f64;
        if s < w {
            return (s + 1.0) / w;
        }
        if !self.cosine {
            return 1.0;
        }
        let span = (steps as f64 - w).max(1.0);
        let p = ((s - w) / span).clamp(0.0, 1.0);
        let floor = self.floor.clamp(0.0, 1.0);
        floor + (1.0 - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
    }
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
            start_windows: None,
            windows_throughout: false,
            schedule: LrSchedule::default(),
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
    /// The loss is finite but far past a uniform guess's: the run has diverged.
    #[error(
        "training step {step}: cross-entropy {ce:.1} nats per token, past {bound:.1} (ten times \
         a uniform guess's ln V, plus 10): the run has diverged (a smaller --lr may hold it); \
         weights kept from step {last_good}"
    )]
    Diverged {
        /// Step at which it happened.
        step: usize,
        /// The step's cross-entropy (nats per token).
        ce: f64,
        /// The bound it passed.
        bound: f64,
        /// Last step whose update was applied.
        last_good: usize,
    },
    /// The weights after a step's update fail its own batch (see `check_updated_weights`).
    #[error(
        "training step {step}: after its update the cross-entropy on its own batch is {ce:.1} \
         nats per token (not finite, or past {bound:.1}): the run has diverged (a smaller --lr \
         may hold it); these weights are not written"
    )]
    DivergedUpdate {
        /// The step whose update it was.
        step: usize,
        /// The cross-entropy after it (nats per token).
        ce: f64,
        /// The bound.
        bound: f64,
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
    /// The native training pass failed (a shape, or a token outside the vocabulary).
    #[error(transparent)]
    Native(#[from] crate::model::native::NativeError),
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_warms_up_then_decays_to_its_floor() {
        let steps = 600;
        let constant = LrSchedule::default();
        assert!((0..steps).all(|s| constant.factor(s, steps) == 1.0));
        let c = LrSchedule::WARMUP_COSINE;
        // 5% of 600 = 30 warm-up steps, rising linearly to the peak.
        assert!((c.factor(0, steps) - 1.0 / 30.0).abs() < 1e-12);
        assert!((c.factor(14, steps) - 0.5).abs() < 1e-12);
        assert!((c.factor(29, steps) - 1.0).abs() < 1e-12);
        assert!((c.factor(30, steps) - 1.0).abs() < 1e-12);
        // Half-way through the decay: the floor plus half the rest.
        assert!((c.factor(315, steps) - 0.55).abs() < 1e-12);
        assert!((c.factor(steps, steps) - 0.1).abs() < 1e-12);
        let after: Vec<f64> = (30..steps).map(|s| c.factor(s, steps)).collect();
        assert!(after.windows(2).all(|w| w[1] <= w[0]));
        // A checkpoint written before schedules reads as constant.
        let old: TrainConfig =
            serde_json::from_str("{\"steps\": 10}").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.schedule, LrSchedule::default());
    }
}
