//! The trainer: one AdamW step at a time, with the locality penalty and anchor loss.
//!
//! It owns no thread and no I/O: the CLI and (later) the studio's worker drive it step by step,
//! so stopping, pausing and checkpointing are decided outside. A non-finite loss is reported as
//! an error naming the step *before* the optimizer touches the weights, so the last good state
//! is never lost.

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use crate::analysis::rng::SplitMix64;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::transformer::{
    anchor_name, causal_tensor, AttentionBias, ForwardOptions, LocalistModel,
};
use crate::train::dataset::{batch_offsets, Sampling, TokenStream, Window};
use crate::train::optimizer::{AdamW, AdamWConfig};
use crate::train::penalty::{anchor_loss, group_lasso, GroupWeights, PenaltyTensors};

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
    /// layers and heads (0 disables it; see [`Trainer::rules`]).
    pub mu_rule: f64,
    /// Train only parameters whose names start with one of these (empty: all). A specialist
    /// fine-tuned this way adds only these parameters over its parent (SPEC §10).
    pub trainable: Vec<String>,
    /// Train under the mode-A dial at this λ in the forward pass as well (None: only the
    /// penalty). Recruitment measures its data bits at a dial, so a model grown by recruitment
    /// trains at that dial too, and a recruited block's keys become visible to its queries in
    /// training exactly as in the measurement.
    pub forward_lambda: Option<f64>,
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
        }
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

/// The loss terms of one batch, as tensors (scalars).
pub struct LossTerms {
    /// What is minimised: ce + η·λ·Ω + μ_anc·anchor + μ_rule·rule.
    pub total: Tensor,
    /// Cross-entropy.
    pub ce: Tensor,
    /// Mean Ω.
    pub penalty: Tensor,
    /// Anchor loss.
    pub anchor: Tensor,
    /// Rule penalty.
    pub rule: Tensor,
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

/// Everything [`Trainer::restore`] needs to undo steps and block changes.
#[derive(Clone, Debug)]
pub struct TrainerSnapshot {
    /// Weights by name.
    pub params: std::collections::BTreeMap<String, Tensor>,
    /// The block map.
    pub blocks: BlockMap,
    /// Optimizer moments.
    pub optimizer: std::collections::HashMap<String, Tensor>,
    step_t: usize,
    step: usize,
    rng: SplitMix64,
}

/// Step-at-a-time trainer.
pub struct Trainer {
    /// The model being trained.
    pub model: LocalistModel,
    /// The block map the penalty uses.
    pub blocks: BlockMap,
    /// Settings.
    pub config: TrainConfig,
    /// Training tokens.
    pub train: TokenStream,
    /// Next step index.
    pub step: usize,
    /// Rules trained towards with weight `config.mu_rule` (resolved against `blocks`).
    pub rules: Vec<crate::rules::check::ResolvedRule>,
    optimizer: AdamW,
    rng: SplitMix64,
}

impl Trainer {
    /// Set up a trainer; the stream must hold more than T + 1 tokens.
    pub fn new(
        model: LocalistModel,
        blocks: BlockMap,
        train: TokenStream,
        config: TrainConfig,
    ) -> Result<Self, TrainError> {
        if !(0.0..=1.0).contains(&config.lambda_train) {
            return Err(TrainError::Invalid(format!(
                "lambda_train must lie in [0, 1], got {}",
                config.lambda_train
            )));
        }
        if config.seq_len > model.config.max_seq_len || config.seq_len < 2 {
            return Err(TrainError::Invalid(format!(
                "sequence length {} must be between 2 and the model's {} positions",
                config.seq_len, model.config.max_seq_len
            )));
        }
        if train.len() <= config.seq_len + 1 {
            return Err(TrainError::Invalid(format!(
                "training text has {} tokens; need more than {}",
                train.len(),
                config.seq_len + 1
            )));
        }
        if model.num_anchor_blocks() != blocks.num_blocks() {
            return Err(TrainError::Invalid(format!(
                "model has anchor keys for {} blocks but the block map has {}",
                model.num_anchor_blocks(),
                blocks.num_blocks()
            )));
        }
        let mut optimizer = AdamW::new(&model.params, config.optimizer.clone())?;
        if optimizer.restrict(&config.trainable) == 0 {
            return Err(TrainError::Invalid(format!(
                "no parameter name starts with any of {:?}: nothing to train",
                config.trainable
            )));
        }
        let rng = SplitMix64::new(config.seed);
        Ok(Self {
            model,
            blocks,
            config,
            train,
            step: 0,
            rules: Vec::new(),
            optimizer,
            rng,
        })
    }

    /// λ at `step` after annealing from 0 over the first `anneal_fraction` of the steps.
    pub fn lambda_at(&self, step: usize) -> f64 {
        let c = &self.config;
        let ramp = (c.anneal_fraction * c.steps as f64).round();
        if ramp <= 0.0 {
            return c.lambda_train;
        }
        c.lambda_train * ((step as f64 + 1.0) / ramp).min(1.0)
    }

    /// The windows of the next batch (advances the sampler).
    pub fn next_batch(&mut self) -> Vec<Window> {
        let c = &self.config;
        batch_offsets(
            c.sampling,
            self.step,
            c.batch_size,
            c.seq_len,
            self.train.len(),
            &mut self.rng,
        )
        .into_iter()
        .filter_map(|o| self.train.window(o, c.seq_len))
        .collect()
    }

    /// Loss terms of a batch as tensors: (total, ce, penalty, anchor); the total includes the
    /// rule penalty when rules are set.
    pub fn batch_loss(
        &self,
        batch: &[Window],
        lambda: f64,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor), TrainError> {
        let t = self.batch_terms(batch, lambda)?;
        Ok((t.total, t.ce, t.penalty, t.anchor))
    }

    /// The rule penalty of one layer's attention [B,H,T,T]: mean −log PF_mass over the rows
    /// where a rule fires, in that rule's heads (None when no rule fires in this layer).
    fn rule_term(
        &self,
        layer: usize,
        attention: &Tensor,
        firings: &[Vec<crate::rules::check::Firing>],
    ) -> Result<Option<Tensor>, TrainError> {
        let (b, h, t) = (
            firings.len(),
            self.model.config.num_heads,
            self.config.seq_len,
        );
        let mut target = vec![0f32; b * h * t * t];
        let mut rows = vec![0f32; b * h * t];
        let mut n = 0usize;
        for (bi, fs) in firings.iter().enumerate() {
            for f in fs.iter().filter(|f| !f.targets.is_empty()) {
                let Some(rule) = self.rules.get(f.rule) else {
                    continue;
                };
                if !rule.layers.contains(layer) {
                    continue;
                }
                for hi in rule.heads.indices(h) {
                    let row = (bi * h + hi) * t + f.query;
                    if let Some(r) = rows.get_mut(row) {
                        if *r == 0.0 {
                            n += 1;
                        }
                        *r = 1.0;
                    }
                    for &j in &f.targets {
                        if let Some(c) = target.get_mut(row * t + j) {
                            *c = 1.0;
                        }
                    }
                }
            }
        }
        if n == 0 {
            return Ok(None);
        }
        let dev = &self.model.device;
        let target = Tensor::from_vec(target, (b, h, t, t), dev)?;
        let rows = Tensor::from_vec(rows, (b, h, t), dev)?;
        let pf = (attention * target)?.sum(candle_core::D::Minus1)?;
        let nll = ((pf + 1e-9)?.log()? * rows)?.sum_all()?.neg()?;
        Ok(Some((nll / n as f64)?))
    }

    /// Every loss term of a batch.
    pub fn batch_terms(&self, batch: &[Window], lambda: f64) -> Result<LossTerms, TrainError> {
        let dev = &self.model.device;
        let (b, t) = (batch.len(), self.config.seq_len);
        let x: Vec<u32> = batch.iter().flat_map(|w| w.x.iter().copied()).collect();
        let y: Vec<u32> = batch.iter().flat_map(|w| w.y.iter().copied()).collect();
        let x = Tensor::from_vec(x, (b, t), dev)?;
        let y = Tensor::from_vec(y, b * t, dev)?;
        let biases: Vec<AttentionBias> = match self.config.forward_lambda {
            Some(lam) if lam > 0.0 => {
                let masks: Vec<SequenceMasks> =
                    batch.iter().map(|w| self.blocks.masks(&w.x)).collect();
                let p = crate::model::dial::DialSetting::bias(lam).params;
                let rows: Vec<crate::model::dial::LayerBias> = masks
                    .iter()
                    .map(|m| crate::model::dial::layer_bias(m, &p))
                    .collect();
                let refs: Vec<&crate::model::dial::LayerBias> = rows.iter().collect();
                let one = AttentionBias::from_rows(&refs, t, dev)?;
                vec![one; self.model.config.num_layers]
            }
            _ => {
                let causal = causal_tensor(b, t, dev)?;
                (0..self.model.config.num_layers)
                    .map(|_| AttentionBias {
                        additive: causal.clone(),
                        tau: 1.0,
                        mixture: None,
                        extra: None,
                    })
                    .collect()
            }
        };
        let out = self.model.forward(
            &x,
            &biases,
            ForwardOptions {
                differentiable: true,
                keep_scores: false,
            },
        )?;
        let v = self.model.config.vocab_size;
        let ce = candle_nn::loss::cross_entropy(&out.logits.reshape((b * t, v))?, &y)?;
        let zero = Tensor::zeros((), candle_core::DType::F32, dev)?;
        let use_penalty = lambda > 0.0 && self.config.eta > 0.0;
        let use_anchor = self.config.mu_anchor > 0.0;
        let mut total = ce.clone();
        let (mut pen, mut anc) = (zero.clone(), zero);
        if use_penalty || use_anchor {
            let masks: Vec<SequenceMasks> = batch.iter().map(|w| self.blocks.masks(&w.x)).collect();
            let pt = PenaltyTensors::new(
                &masks,
                self.blocks.num_blocks(),
                self.config.weights,
                self.config.exempt_always_visible,
                dev,
            )?;
            let layers = out.attention.len().max(1) as f64;
            if use_penalty {
                let mut acc = Vec::with_capacity(out.attention.len());
                for a in &out.attention {
                    acc.push(group_lasso(a, &pt, self.config.penalty_eps)?);
                }
                pen = (Tensor::stack(&acc, 0)?.sum_all()? / layers)?;
                total = (total + (&pen * (self.config.eta * lambda))?)?;
            }
            if use_anchor {
                let mut acc = Vec::with_capacity(out.queries.len());
                for (l, q) in out.queries.iter().enumerate() {
                    let keys = self.model.params.get(&anchor_name(l))?;
                    acc.push(anchor_loss(q, &keys, &pt)?);
                }
                anc = (Tensor::stack(&acc, 0)?.sum_all()? / layers)?;
                total = (total + (&anc * self.config.mu_anchor)?)?;
            }
        }
        let mut rule = Tensor::zeros((), candle_core::DType::F32, dev)?;
        if self.config.mu_rule > 0.0 && !self.rules.is_empty() {
            let firings: Vec<Vec<crate::rules::check::Firing>> = batch
                .iter()
                .map(|w| crate::rules::check::fire(&self.rules, &w.x, &self.blocks.masks(&w.x)))
                .collect();
            let mut acc = Vec::new();
            for (l, a) in out.attention.iter().enumerate() {
                if let Some(term) = self.rule_term(l, a, &firings)? {
                    acc.push(term);
                }
            }
            if !acc.is_empty() {
                let k = acc.len() as f64;
                rule = (Tensor::stack(&acc, 0)?.sum_all()? / k)?;
                total = (total + (&rule * self.config.mu_rule)?)?;
            }
        }
        Ok(LossTerms {
            total,
            ce,
            penalty: pen,
            anchor: anc,
            rule,
        })
    }

    /// One optimizer step. On a non-finite loss nothing is updated.
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        let batch = self.next_batch();
        if batch.is_empty() {
            return Err(TrainError::Invalid("no batch could be drawn".into()));
        }
        let lambda = self.lambda_at(self.step);
        let LossTerms {
            total,
            ce,
            penalty: pen,
            anchor: anc,
            rule,
        } = self.batch_terms(&batch, lambda)?;
        let loss = total.to_scalar::<f32>()?;
        if !loss.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step,
                loss,
                last_good: self.step.saturating_sub(1),
            });
        }
        let grads = total.backward()?;
        self.optimizer.step(&grads)?;
        let stats = StepStats {
            step: self.step,
            loss_nats: loss as f64,
            ce_nats: ce.to_scalar::<f32>()? as f64,
            penalty: pen.to_scalar::<f32>()? as f64,
            anchor_nats: anc.to_scalar::<f32>()? as f64,
            rule_nats: rule.to_scalar::<f32>()? as f64,
            lambda,
            tokens: batch.len() * self.config.seq_len,
        };
        self.step += 1;
        Ok(stats)
    }

    /// Swap in a new block map with matching anchor keys (one [H,K,d_h] tensor per layer), as
    /// recruitment does; the anchors' optimizer moments restart from zero.
    pub fn replace_blocks(
        &mut self,
        blocks: BlockMap,
        anchors: Vec<Tensor>,
    ) -> Result<(), TrainError> {
        let layers = self.model.config.num_layers;
        if anchors.len() != layers {
            return Err(TrainError::Invalid(format!(
                "{} anchor tensors for {layers} layers",
                anchors.len()
            )));
        }
        for (l, a) in anchors.iter().enumerate() {
            if a.dim(1)? != blocks.num_blocks() {
                return Err(TrainError::Invalid(format!(
                    "layer {l}: anchor keys for {} blocks, the map has {}",
                    a.dim(1)?,
                    blocks.num_blocks()
                )));
            }
        }
        for (l, a) in anchors.iter().enumerate() {
            let name = anchor_name(l);
            self.model.params.insert(&name, a)?;
            if let Some(var) = self.model.params.var(&name) {
                self.optimizer.replace_param(&name, var)?;
            }
        }
        self.blocks = blocks;
        Ok(())
    }

    /// A deep copy of everything a step changes: weights, block map, optimizer moments, step
    /// and sampler. [`Trainer::restore`] puts it back exactly (recruitment's rollback).
    pub fn snapshot(&self) -> Result<TrainerSnapshot, TrainError> {
        Ok(TrainerSnapshot {
            params: self
                .model
                .params
                .tensors()
                .into_iter()
                .map(|(k, t)| Ok((k, t.copy()?)))
                .collect::<candle_core::Result<_>>()?,
            blocks: self.blocks.clone(),
            optimizer: self
                .optimizer
                .state()?
                .into_iter()
                .map(|(k, t)| Ok((k, t.copy()?)))
                .collect::<candle_core::Result<_>>()?,
            step_t: self.optimizer.step_t,
            step: self.step,
            rng: self.rng.clone(),
        })
    }

    /// Restore a [`Trainer::snapshot`] bit for bit.
    pub fn restore(&mut self, snap: &TrainerSnapshot) -> Result<(), TrainError> {
        for (name, t) in &snap.params {
            let same = self
                .model
                .params
                .var(name)
                .is_some_and(|v| v.as_tensor().dims() == t.dims());
            if same {
                if let Some(v) = self.model.params.var(name) {
                    v.set(&t.copy()?)?;
                }
            } else {
                self.model.params.insert(name, &t.copy()?)?;
                if let Some(var) = self.model.params.var(name) {
                    self.optimizer.replace_param(name, var)?;
                }
            }
        }
        self.optimizer.load_state(&snap.optimizer)?;
        self.optimizer.step_t = snap.step_t;
        self.blocks = snap.blocks.clone();
        self.step = snap.step;
        self.rng = snap.rng.clone();
        Ok(())
    }

    /// Optimizer state for checkpoints.
    pub fn optimizer_state(
        &self,
    ) -> candle_core::Result<std::collections::HashMap<String, Tensor>> {
        self.optimizer.state()
    }

    /// Restore optimizer state and the step counter (resume).
    pub fn resume(
        &mut self,
        state: &std::collections::HashMap<String, Tensor>,
        step: usize,
    ) -> candle_core::Result<()> {
        self.optimizer.load_state(state)?;
        self.step = step;
        // Re-derive the sampler so a resumed run draws the same batches as an unbroken one.
        self.rng = SplitMix64::new(self.config.seed);
        for s in 0..step {
            let c = &self.config;
            let _ = batch_offsets(
                c.sampling,
                s,
                c.batch_size,
                c.seq_len,
                self.train.len(),
                &mut self.rng,
            );
        }
        Ok(())
    }
}

/// Gradient norms per parameter for a loss (diagnostics and tests).
pub fn grad_norms(model: &LocalistModel, loss: &Tensor) -> candle_core::Result<Vec<(String, f32)>> {
    let grads = loss.backward()?;
    let mut out = Vec::new();
    for (name, var) in model.params.iter() {
        let n = match grads.get(var.as_tensor()) {
            Some(g) => g.sqr()?.sum_all()?.sqrt()?.to_scalar::<f32>()?,
            None => 0.0,
        };
        out.push((name.clone(), n));
    }
    Ok(out)
}

/// Mean CE in nats of logits [N,V] against labels (helper for evaluation).
pub fn mean_ce(logits: &Tensor, labels: &Tensor) -> candle_core::Result<f32> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    candle_nn::loss::nll(&logp, labels)?.to_scalar::<f32>()
}
