//! A training step through the native pass ([`crate::model::native`]) when it covers the
//! step's loss: cross-entropy plus the off-block group lasso and the anchor loss
//! ([`super::native_terms`]), under the causal mask or the mode-A dial, on the CPU. The batch is cut into the same shards as the candle path
//! ([`super::shards`]); each shard runs on buffers kept from step to step, and the shards'
//! gradients are summed.

use std::collections::HashMap;
use std::sync::Mutex;

use rayon::prelude::*;

use crate::model::blocks::SequenceMasks;
use crate::model::dial::{causal_bias, layer_bias, DialSetting};
use crate::model::native::{
    self, AttentionTerm, Dims, NativeBatch, ParamRefs, ParamSet, Workspace,
};
use crate::model::transformer::anchor_name;
use crate::train::dataset::Window;
use crate::train::group_lasso::PenaltyHost;
use crate::train::trainer::native_terms::{Anchors, Penalty, Terms};
use crate::train::trainer::shards::{pool, StepValues};
use crate::train::trainer::{TrainError, Trainer};

/// Buffers of the native pass kept between steps: one workspace and one gradient set per shard.
#[derive(Debug, Default)]
pub struct NativeBuffers(Mutex<Vec<(Workspace, ParamSet)>>);

impl NativeBuffers {
    fn take(&self, dims: Dims, trainer: &Trainer) -> (Workspace, ParamSet) {
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cfg = &trainer.model.config;
        let fits = |(ws, g): &(Workspace, ParamSet)| ws.dims == dims && g.fits(cfg);
        match kept.iter().position(fits) {
            Some(i) => kept.swap_remove(i),
            None => (Workspace::new(dims), ParamSet::zeros(&trainer.model.config)),
        }
    }

    fn give_back(&self, bufs: Vec<(Workspace, ParamSet)>) {
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.extend(bufs);
        kept.truncate(64);
    }
}

/// One batch's loss terms and gradients through the native pass ([`Trainer::native_gradients`]).
#[derive(Debug)]
pub struct NativeGradients {
    /// The loss minimised (nats).
    pub total: f64,
    /// Cross-entropy (nats).
    pub ce: f64,
    /// Mean Ω over layers (as [`super::StepStats::penalty`]).
    pub penalty: f64,
    /// Anchor loss (nats, mean over layers).
    pub anchor: f64,
    /// Gradient of `total` by parameter name (the anchor keys have none).
    pub grads: HashMap<String, Vec<f32>>,
}

impl Trainer {
    /// Whether a step's loss is one the native pass computes: on the CPU and without the rule
    /// penalty (the training dial is always mode A).
    pub fn native_applies(&self) -> bool {
        let c = &self.config;
        let rule_term = c.mu_rule > 0.0 && !self.rules.is_empty();
        self.native && self.model.device.is_cpu() && !rule_term
    }

    /// The step's loss terms and gradients through the native pass, over the same shards as
    /// the candle path. The summed gradients are in the first buffer's gradient set; hand the
    /// buffers back with [`NativeBuffers::give_back`] after the update.
    pub(super) fn native_loss_and_grads(
        &self,
        batch: &[Window],
        lambda: f64,
    ) -> Result<(StepValues, Vec<(Workspace, ParamSet)>), TrainError> {
        let shards = self.shard_count(batch.len());
        let size = batch.len().div_ceil(shards.max(1)).max(1);
        let n = batch.len() as f64;
        // The weights are read in place; the guards end before the optimizer writes them.
        let results: Vec<_> = native::with_model_refs(&self.model, |params| {
            let run =
                |part: &[Window]| self.native_shard(params, part, lambda, part.len() as f64 / n);
            Ok(match pool().filter(|_| shards > 1) {
                Some(pool) => pool.install(|| batch.par_chunks(size).map(run).collect()),
                None => batch.chunks(size).map(run).collect(),
            })
        })?;
        let mut values = StepValues::default();
        let mut bufs = Vec::with_capacity(results.len());
        for r in results {
            let (v, b) = r?;
            values.add_scaled(&v);
            bufs.push(b);
        }
        if let Some(((_, first), rest)) = bufs.split_first_mut() {
            for (_, g) in rest {
                first.add(g);
            }
        }
        Ok((values, bufs))
    }

    /// The native pass's loss terms (total, cross-entropy, mean Ω; nats) and gradients by
    /// parameter name for `batch`, without updating anything (tests and diagnostics compare
    /// them with candle's autograd).
    pub fn native_gradients(
        &self,
        batch: &[Window],
        lambda: f64,
    ) -> Result<NativeGradients, TrainError> {
        let (values, mut bufs) = self.native_loss_and_grads(batch, lambda)?;
        let grads = match bufs.first_mut() {
            Some((_, g)) => g
                .named_mut()
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, v.clone()))
                .collect(),
            None => HashMap::new(),
        };
        self.native_buffers.give_back(bufs);
        Ok(NativeGradients {
            total: values.total,
            ce: values.ce,
            penalty: values.penalty,
            anchor: values.anchor,
            grads,
        })
    }

    /// Update the weights from the summed gradients of [`Trainer::native_loss_and_grads`].
    pub(super) fn native_update(
        &mut self,
        bufs: Vec<(Workspace, ParamSet)>,
    ) -> Result<(), TrainError> {
        let mut bufs = bufs;
        if let Some((_, grads)) = bufs.first_mut() {
            let named: HashMap<String, &[f32]> = grads
                .named_mut()
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .map(|(k, v)| (k, &v[..]))
                .collect();
            self.optimizer.step_host(&named)?;
        }
        self.native_buffers.give_back(bufs);
        Ok(())
    }

    /// One shard: forward, loss values scaled by `weight`, backward into its gradient set.
    fn native_shard(
        &self,
        params: &ParamRefs<'_>,
        part: &[Window],
        lambda: f64,
        weight: f64,
    ) -> Result<(StepValues, (Workspace, ParamSet)), TrainError> {
        let cfg = &self.model.config;
        let (b, t) = (part.len(), self.config.seq_len);
        let dims = Dims::new(cfg, b, t);
        let ids: Vec<u32> = part.iter().flat_map(|w| w.x.iter().copied()).collect();
        let targets: Vec<u32> = part.iter().flat_map(|w| w.y.iter().copied()).collect();
        let masks: Vec<SequenceMasks> = part.iter().map(|w| self.blocks.masks(&w.x)).collect();
        let (bias, tau) = self.native_bias(&masks, t);
        let batch = NativeBatch {
            ids: &ids,
            targets: &targets,
            bias: &bias,
            tau,
        };
        let c = &self.config;
        let layers = cfg.num_layers.max(1) as f64;
        let rows = (b * cfg.num_heads * t).max(1) as f64;
        let penalty = (lambda > 0.0 && c.eta > 0.0).then(|| {
            let host = |m: &[SequenceMasks], k: usize| {
                PenaltyHost::new(m, k, c.weights, c.exempt_always_visible)
            };
            let hosts = match self.penalty_windows(part, &masks) {
                None => vec![host(&masks, self.blocks.num_blocks())],
                Some((windows, kw, false)) => vec![host(&windows, kw)],
                Some((windows, kw, true)) => {
                    vec![host(&masks, self.blocks.num_blocks()), host(&windows, kw)]
                }
            };
            Penalty {
                hosts,
                eps: c.penalty_eps as f32,
                factor: weight * c.eta * lambda / (layers * rows),
                scales: Vec::new(),
            }
        });
        let anchors = if c.mu_anchor > 0.0 {
            Some(self.native_anchors(&masks, weight * c.mu_anchor / (layers * rows))?)
        } else {
            None
        };
        let mut terms = Terms { penalty, anchors };
        let (mut ws, mut grads) = self.native_buffers.take(dims, self);
        let eps = cfg.layer_norm_eps as f32;
        let ce = native::forward(params, cfg.activation, eps, &mut ws, &batch)?;
        let mut values = StepValues {
            ce: ce * weight,
            total: ce * weight,
            ..StepValues::default()
        };
        if let Some(p) = &mut terms.penalty {
            let term = p.measure(&ws, cfg.num_heads);
            values.penalty = term / (c.eta * lambda);
            values.total += term;
        }
        grads.anchors.clear();
        if let Some(a) = &mut terms.anchors {
            let term = a.measure(&ws, &mut grads.anchors);
            values.anchor = term / c.mu_anchor;
            values.total += term;
        }
        let on = terms.penalty.is_some() || terms.anchors.is_some();
        let term = on.then_some(&terms as &dyn AttentionTerm);
        native::backward(
            params,
            eps,
            &mut ws,
            &batch,
            weight as f32,
            term,
            &mut grads,
        )?;
        Ok((values, (ws, grads)))
    }

    /// The anchor loss of a shard: each layer's keys, each query's relevant block, `factor`.
    fn native_anchors(&self, masks: &[SequenceMasks], factor: f64) -> Result<Anchors, TrainError> {
        let cfg = &self.model.config;
        let k = self.blocks.num_blocks().max(1);
        let keys = (0..cfg.num_layers)
            .map(|l| {
                Ok(self
                    .model
                    .params
                    .get(&anchor_name(l))?
                    .flatten_all()?
                    .to_vec1::<f32>()?)
            })
            .collect::<Result<Vec<_>, TrainError>>()?;
        let (h, dh) = (cfg.num_heads, cfg.head_dim());
        if keys.iter().any(|v| v.len() != h * k * dh) {
            return Err(TrainError::Invalid(format!(
                "anchor keys do not fit {h} heads × {k} blocks × {dh}"
            )));
        }
        let relevant = masks
            .iter()
            .flat_map(|m| {
                (0..m.len()).map(move |i| m.relevant_blocks.get(i).copied().unwrap_or(0).min(k - 1))
            })
            .collect();
        Ok(Anchors {
            keys,
            relevant,
            factor,
            dims: (h, k, dh, cfg.d_model),
            g: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The attention bias of every sequence [B, T, T] and the temperature: the mode-A dial at
    /// `forward_lambda` when it is set and positive, else the causal mask.
    fn native_bias(&self, masks: &[SequenceMasks], t: usize) -> (Vec<f32>, f32) {
        match self.config.forward_lambda {
            Some(lam) if lam > 0.0 => {
                let p = DialSetting::bias(lam).params;
                let mut tau = 1.0;
                let mut out = Vec::with_capacity(masks.len() * t * t);
                for m in masks {
                    let lb = layer_bias(m, &p);
                    tau = lb.tau;
                    out.extend(lb.additive);
                }
                (out, tau)
            }
            _ => {
                let one = causal_bias(t);
                (one.repeat(masks.len()), 1.0)
            }
        }
    }
}
