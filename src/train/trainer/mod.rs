//! The trainer: one AdamW step at a time, with the locality penalty and anchor loss.
//!
//! It owns no thread and no I/O: the CLI and (later) the studio's worker drive it step by step,
//! so stopping, pausing and checkpointing are decided outside. A non-finite loss is reported as
//! an error naming the step *before* the optimizer touches the weights, so the last good state
//! is never lost.
//!
//! The files: `config.rs` (settings, step report, errors), `loss.rs` (the loss of a batch),
//! `shards.rs` (a step's batch cut over the CPU threads), `snapshot.rs` (undoing steps and
//! swapping block maps); the trainer and its step are here.

mod config;
mod loss;
mod native;
mod native_terms;
mod shards;
mod snapshot;

use std::collections::HashMap;

use candle_core::Tensor;

use crate::analysis::rng::SplitMix64;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::transformer::LocalistModel;
use crate::rules::check::ResolvedRule;
use crate::train::dataset::{batch_offsets, TokenStream, Window};
use crate::train::optimizer::AdamW;

pub use config::{LrSchedule, StepStats, TrainConfig, TrainError};
pub use loss::{grad_norms, mean_ce, LossTerms};
pub use native::NativeGradients;
pub(crate) use shards::training_pool;
pub use shards::{set_training_threads, training_threads};
pub use snapshot::TrainerSnapshot;

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
    pub rules: Vec<ResolvedRule>,
    /// Exponential moving average of the training cross-entropy (nats; weight 1/20 per step),
    /// `None` before the first step: whether the model is still learning (recruitment's
    /// patience counts only rounds after it has settled).
    pub ce_ema: Option<f64>,
    /// Shards a step's batch is cut into, one per thread ([`shards`]); 1 by default, or the
    /// threads given to [`set_training_threads`].
    pub shards: usize,
    /// Train through the native pass where it covers the loss ([`Trainer::native_applies`]);
    /// true by default, false forces candle's autograd (tests compare the two).
    pub native: bool,
    native_buffers: native::NativeBuffers,
    optimizer: AdamW,
    rng: SplitMix64,
    /// The batch of the last step, for [`Trainer::check_updated_weights`].
    last_batch: Vec<Window>,
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
            ce_ema: None,
            shards: training_threads(),
            native: true,
            native_buffers: native::NativeBuffers::default(),
            optimizer,
            rng,
            last_batch: Vec::new(),
        })
    }

    /// λ at `step` after annealing from 0 over `anneal_fraction` of the steps, counted from the
    /// start or from `ramp_from` (the last accepted recruitment move).
    pub fn lambda_at(&self, step: usize) -> f64 {
        let c = &self.config;
        let ramp = (c.anneal_fraction * c.steps as f64).round();
        if ramp <= 0.0 {
            return c.lambda_train;
        }
        let since = step - c.ramp_from.filter(|&s| s <= step).unwrap_or(0);
        c.lambda_train * ((since as f64 + 1.0) / ramp).min(1.0)
    }

    /// True once the penalty has reached λ_train after its last ramp (always, without one).
    pub fn penalty_ramped(&self) -> bool {
        self.lambda_at(self.step) >= self.config.lambda_train
    }

    /// The learning rate at `step` under the schedule.
    pub fn lr_at(&self, step: usize) -> f64 {
        let c = &self.config;
        c.optimizer.lr * c.schedule.factor(step, c.steps)
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

    /// One optimizer step. On a non-finite loss nothing is updated.
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        let batch = self.next_batch();
        if batch.is_empty() {
            return Err(TrainError::Invalid("no batch could be drawn".into()));
        }
        let lambda = self.lambda_at(self.step);
        let values = if self.native_applies() {
            let (values, bufs) = self.native_loss_and_grads(&batch, lambda)?;
            self.check_loss(values.total, values.ce)?;
            self.optimizer.config.lr = self.lr_at(self.step);
            self.native_update(bufs)?;
            values
        } else {
            let (values, grads) = self.loss_and_grads(&batch, lambda)?;
            self.check_loss(values.total, values.ce)?;
            self.optimizer.config.lr = self.lr_at(self.step);
            self.optimizer.step(&grads)?;
            values
        };
        let stats = StepStats {
            step: self.step,
            loss_nats: values.total,
            ce_nats: values.ce,
            penalty: values.penalty,
            anchor_nats: values.anchor,
            rule_nats: values.rule,
            lambda,
            tokens: batch.len() * self.config.seq_len,
        };
        self.ce_ema = Some(match self.ce_ema {
            Some(e) => e + (stats.ce_nats - e) / 20.0,
            None => stats.ce_nats,
        });
        self.step += 1;
        self.last_batch = batch;
        Ok(stats)
    }

    /// The weights after the last step's update, measured on that step's own batch: an error
    /// when its cross-entropy is not finite or past [`diverged_bound`] (one update can throw a
    /// model far off, and a step's loss only sees the weights before it). Run before writing a
    /// checkpoint, so that none holds weights no loss has seen.
    pub fn check_updated_weights(&self) -> Result<(), TrainError> {
        if self.last_batch.is_empty() {
            return Ok(());
        }
        let (_, ce, ..) = self.batch_loss(&self.last_batch, 0.0)?;
        let ce = f64::from(ce.to_dtype(candle_core::DType::F32)?.to_scalar::<f32>()?);
        let bound = diverged_bound(self.model.config.vocab_size);
        if ce.is_finite() && ce <= bound {
            return Ok(());
        }
        Err(TrainError::DivergedUpdate {
            step: self.step.saturating_sub(1),
            ce,
            bound,
        })
    }

    /// The positional windows of `start_windows` that the penalty's groups come from instead
    /// of the block map, while the block map is one open block (recruitment before its first
    /// block), or for the unassigned queries throughout with `windows_throughout`; None: the
    /// block map's own groups.
    pub fn start_windows_map(&self) -> Option<BlockMap> {
        let b = &self.blocks;
        let on = b.open_unassigned && (b.num_blocks() == 1 || self.config.windows_throughout);
        self.config
            .start_windows
            .filter(|_| on)
            .and_then(|w| BlockMap::windows(w, self.config.seq_len).ok())
    }

    /// The off-block penalty's positional windows for `batch`, whose masks under the block
    /// map are `own`: None when the block map's groups are the only ones. Otherwise the
    /// windows' masks and their number of groups, and whether the block map's groups count
    /// too. Before the first block the windows replace them (every row is open under the map);
    /// past it, with `windows_throughout`, both count and each row has its groups in one of
    /// the two: every recruited query's row is made open in the windows' masks (under one
    /// extra group with no keys), and the unassigned queries' rows are open under the map.
    pub fn penalty_windows(
        &self,
        batch: &[Window],
        own: &[SequenceMasks],
    ) -> Option<(Vec<SequenceMasks>, usize, bool)> {
        let windows = self.start_windows_map()?;
        let kw = windows.num_blocks();
        if self.blocks.num_blocks() == 1 {
            return Some((
                batch.iter().map(|w| windows.masks(&w.x)).collect(),
                kw,
                false,
            ));
        }
        let unassigned = own
            .iter()
            .zip(batch)
            .map(|(m, w)| {
                let mut wm = windows.masks(&w.x);
                for (i, r) in wm.relevant_blocks.iter_mut().enumerate() {
                    if !m.row_open(i) {
                        *r = kw;
                    }
                }
                wm.num_blocks = kw + 1;
                wm.open = Some(kw);
                wm
            })
            .collect();
        Some((unassigned, kw + 1, true))
    }

    /// A non-finite loss, or a cross-entropy past [`diverged_bound`] (a run that has left any
    /// sense: 10·ln V + 10 nats per token), is an error naming the step, raised before any
    /// weight changes.
    fn check_loss(&self, total: f64, ce: f64) -> Result<(), TrainError> {
        let (step, last_good) = (self.step, self.step.saturating_sub(1));
        let loss = total as f32;
        if !loss.is_finite() || !ce.is_finite() {
            let loss = if loss.is_finite() { ce as f32 } else { loss };
            return Err(TrainError::NonFinite {
                step,
                loss,
                last_good,
            });
        }
        let bound = diverged_bound(self.model.config.vocab_size);
        if ce > bound {
            return Err(TrainError::Diverged {
                step,
                ce,
                bound,
                last_good,
            });
        }
        Ok(())
    }

    /// Optimizer state for checkpoints.
    pub fn optimizer_state(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        self.optimizer.state()
    }

    /// Restore optimizer state and the step counter (resume).
    pub fn resume(
        &mut self,
        state: &HashMap<String, Tensor>,
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

/// The cross-entropy (nats per token) past which a run has diverged: ten times a uniform
/// guess's ln V, plus 10 (55.6 nats for 96 characters; a run starts near ln V and comes down).
pub fn diverged_bound(vocab: usize) -> f64 {
    10.0 * (vocab.max(2) as f64).ln() + 10.0
}
