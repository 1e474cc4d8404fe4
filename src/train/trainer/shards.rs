//! A step's loss and gradients over shards of the batch, one per CPU thread.
//!
//! candle runs a tiny model's small products and elementwise ops on one thread however many it
//! is given: a second thread made training no faster (16.0k tokens/s at one thread and at two,
//! against PyTorch's 17–19k and 30–33k). So the batch is cut into shards, each shard's loss is
//! differentiated on its own thread, and the gradients are summed. Every term of the loss is a
//! mean with the same weight per window (cross-entropy over B·T, Ω over B·H·T, the anchor loss
//! over B·H·T), so weighting each shard's loss by its share of the windows gives exactly the
//! batch's loss and gradient, up to the order of float sums. The rule penalty is a mean over
//! the rows where rules fire, which does not split that way: with it on, a step is one shard.
//!
//! The shards pay only when candle's own products run on one thread each (RAYON_NUM_THREADS=1,
//! which the training commands set): with two shards whose products each asked for two
//! threads, training fell to 12.4k tokens/s; with one thread each it rose to 30.5–31.8k. So
//! the shards have a pool of their own, sized by [`set_training_threads`], and a trainer cuts
//! its batches only when that was set (the studio, whose captures want threaded products,
//! leaves it at one).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use candle_core::backprop::GradStore;
use rayon::prelude::*;

use crate::train::dataset::Window;
use crate::train::trainer::{LossTerms, TrainError, Trainer};

/// Threads a training step's shards may use (1: no shards).
static TRAINING_THREADS: AtomicUsize = AtomicUsize::new(1);

/// The shards' own thread pool, built on first use with [`TRAINING_THREADS`] threads (pinned one
/// to a CPU where it has one per CPU: [`crate::model::native::pinned`]).
static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();

/// Let training steps cut their batches over `n` threads (call it once, before training, with
/// candle's products set to one thread each). Trainers made afterwards use it.
pub fn set_training_threads(n: usize) {
    TRAINING_THREADS.store(n.max(1), Ordering::Relaxed);
}

/// Threads set by [`set_training_threads`].
pub fn training_threads() -> usize {
    TRAINING_THREADS.load(Ordering::Relaxed)
}

pub(super) fn pool() -> Option<&'static rayon::ThreadPool> {
    POOL.get_or_init(|| {
        crate::model::native::pinned::pool_builder(training_threads())
            .thread_name(|i| format!("localist-train-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

/// The training threads' pool when there is more than one thread, for work of a training run
/// between its steps (a recruitment round's measurements).
pub(crate) fn training_pool() -> Option<&'static rayon::ThreadPool> {
    pool().filter(|_| training_threads() > 1)
}

/// Fewest windows in a shard: below it a thread costs more than it saves.
const MIN_SHARD: usize = 4;

/// The loss terms of a step as numbers (nats; Ω as is).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StepValues {
    pub total: f64,
    pub ce: f64,
    pub penalty: f64,
    pub anchor: f64,
    pub rule: f64,
}

impl StepValues {
    pub(super) fn add_scaled(&mut self, other: &Self) {
        self.total += other.total;
        self.ce += other.ce;
        self.penalty += other.penalty;
        self.anchor += other.anchor;
        self.rule += other.rule;
    }
}

impl Trainer {
    /// The batch's loss terms and the gradient of its total, over [`Trainer::shard_count`]
    /// shards.
    pub(super) fn loss_and_grads(
        &self,
        batch: &[Window],
        lambda: f64,
    ) -> Result<(StepValues, GradStore), TrainError> {
        let shards = self.shard_count(batch.len());
        let Some(pool) = pool().filter(|_| shards > 1) else {
            return self.shard(batch, lambda, 1.0);
        };
        let size = batch.len().div_ceil(shards);
        let n = batch.len() as f64;
        let results: Vec<Result<(StepValues, GradStore), TrainError>> = pool.install(|| {
            batch
                .par_chunks(size)
                .map(|part| self.shard(part, lambda, part.len() as f64 / n))
                .collect()
        });
        let mut values = StepValues::default();
        let mut grads: Option<GradStore> = None;
        for r in results {
            let (v, g) = r?;
            values.add_scaled(&v);
            match &mut grads {
                Some(all) => all.extend(g)?,
                None => grads = Some(g),
            }
        }
        match grads {
            Some(g) => Ok((values, g)),
            None => Err(TrainError::Invalid("an empty batch".into())),
        }
    }

    /// How many shards a batch of `windows` is cut into: [`Trainer::shards`] (by default the
    /// [`training_threads`]), each of at least [`MIN_SHARD`] windows; one on a GPU, or when the
    /// rule penalty is on.
    pub fn shard_count(&self, windows: usize) -> usize {
        let rule_term = self.config.mu_rule > 0.0 && !self.rules.is_empty();
        if !self.model.device.is_cpu() || rule_term {
            return 1;
        }
        let pool_threads = pool().map_or(1, rayon::ThreadPool::current_num_threads);
        self.shards
            .min(pool_threads)
            .min(windows / MIN_SHARD)
            .max(1)
    }

    /// One shard's loss terms, scaled by `weight` (its share of the batch), and the gradient
    /// of its scaled total.
    fn shard(
        &self,
        part: &[Window],
        lambda: f64,
        weight: f64,
    ) -> Result<(StepValues, GradStore), TrainError> {
        let LossTerms {
            total,
            ce,
            penalty,
            anchor,
            rule,
        } = self.batch_terms(part, lambda)?;
        let value = |t: &candle_core::Tensor| -> Result<f64, TrainError> {
            Ok(f64::from(t.to_scalar::<f32>()?) * weight)
        };
        let values = StepValues {
            total: value(&total)?,
            ce: value(&ce)?,
            penalty: value(&penalty)?,
            anchor: value(&anchor)?,
            rule: value(&rule)?,
        };
        let scaled = if weight == 1.0 {
            total
        } else {
            (total * weight)?
        };
        Ok((values, scaled.backward()?))
    }
}
