//! The loss of a batch: cross-entropy, the locality penalty η·λ·Ω, the anchor loss and the
//! rule penalty, each a scalar tensor the optimizer's gradient flows through.

use candle_core::{DType, Tensor, D};

use crate::model::blocks::SequenceMasks;
use crate::model::dial::{layer_bias, DialSetting, LayerBias};
use crate::model::transformer::{
    anchor_name, causal_tensor, AttentionBias, ForwardOptions, ForwardOutput, LocalistModel,
};
use crate::rules::check::{fire, Firing};
use crate::train::dataset::Window;
use crate::train::penalty::{anchor_loss, group_lasso, PenaltyTensors};
use crate::train::rule_penalty::rule_penalty;
use crate::train::trainer::{TrainError, Trainer};

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

impl Trainer {
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

    /// Every loss term of a batch.
    pub fn batch_terms(&self, batch: &[Window], lambda: f64) -> Result<LossTerms, TrainError> {
        let dev = &self.model.device;
        let (b, t) = (batch.len(), self.config.seq_len);
        let x: Vec<u32> = batch.iter().flat_map(|w| w.x.iter().copied()).collect();
        let y: Vec<u32> = batch.iter().flat_map(|w| w.y.iter().copied()).collect();
        let x = Tensor::from_vec(x, (b, t), dev)?;
        let y = Tensor::from_vec(y, b * t, dev)?;
        let biases = self.forward_biases(batch)?;
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
        let (mut total, penalty, anchor) = self.locality_terms(batch, &out, lambda, ce.clone())?;
        let mut rule = Tensor::zeros((), DType::F32, dev)?;
        if let Some(r) = self.rule_penalty(batch, &out)? {
            total = (total + (&r * self.config.mu_rule)?)?;
            rule = r;
        }
        Ok(LossTerms {
            total,
            ce,
            penalty,
            anchor,
            rule,
        })
    }

    /// The attention biases of the forward pass: the mode-A dial at `forward_lambda` when it
    /// is set and positive, else plain causal attention.
    fn forward_biases(&self, batch: &[Window]) -> Result<Vec<AttentionBias>, TrainError> {
        let dev = &self.model.device;
        let (b, t) = (batch.len(), self.config.seq_len);
        let layers = self.model.config.num_layers;
        match self.config.forward_lambda {
            Some(lam) if lam > 0.0 => {
                let masks: Vec<SequenceMasks> =
                    batch.iter().map(|w| self.blocks.masks(&w.x)).collect();
                let p = DialSetting::bias(lam).params;
                let rows: Vec<LayerBias> = masks.iter().map(|m| layer_bias(m, &p)).collect();
                let refs: Vec<&LayerBias> = rows.iter().collect();
                let one = AttentionBias::from_rows(&refs, t, dev)?;
                Ok(vec![one; layers])
            }
            _ => {
                let causal = causal_tensor(b, t, dev)?;
                Ok((0..layers)
                    .map(|_| AttentionBias {
                        additive: causal.clone(),
                        tau: 1.0,
                        mixture: None,
                        extra: None,
                    })
                    .collect())
            }
        }
    }

    /// `total` (the cross-entropy) plus the locality penalty η·λ·Ω and the anchor loss
    /// μ_anc·anchor, when they are on; returns (total, mean Ω, anchor loss), 0 for a term off.
    fn locality_terms(
        &self,
        batch: &[Window],
        out: &ForwardOutput,
        lambda: f64,
        mut total: Tensor,
    ) -> Result<(Tensor, Tensor, Tensor), TrainError> {
        let dev = &self.model.device;
        let zero = Tensor::zeros((), DType::F32, dev)?;
        let use_penalty = lambda > 0.0 && self.config.eta > 0.0;
        let use_anchor = self.config.mu_anchor > 0.0;
        let (mut pen, mut anc) = (zero.clone(), zero);
        if !(use_penalty || use_anchor) {
            return Ok((total, pen, anc));
        }
        let tensors = |masks: &[SequenceMasks], k: usize| {
            PenaltyTensors::new(
                masks,
                k,
                self.config.weights,
                self.config.exempt_always_visible,
                dev,
            )
        };
        let masks: Vec<SequenceMasks> = batch.iter().map(|w| self.blocks.masks(&w.x)).collect();
        let pt = tensors(&masks, self.blocks.num_blocks())?;
        let layers = out.attention.len().max(1) as f64;
        if use_penalty {
            // The penalty's groups may be (or include) the start's positional windows.
            let windows = match self.penalty_windows(batch, &masks) {
                Some((m, k, own_too)) => Some((tensors(&m, k)?, own_too)),
                None => None,
            };
            let groups: Vec<&PenaltyTensors> = match &windows {
                None => vec![&pt],
                Some((w, false)) => vec![w],
                Some((w, true)) => vec![&pt, w],
            };
            let mut acc = Vec::with_capacity(out.attention.len() * groups.len());
            for a in &out.attention {
                for g in &groups {
                    acc.push(group_lasso(a, g, self.config.penalty_eps)?);
                }
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
        Ok((total, pen, anc))
    }

    /// The rule penalty of a batch ([`rule_penalty`]), when `mu_rule` is on and rules are
    /// set.
    fn rule_penalty(
        &self,
        batch: &[Window],
        out: &ForwardOutput,
    ) -> Result<Option<Tensor>, TrainError> {
        if self.config.mu_rule <= 0.0 || self.rules.is_empty() {
            return Ok(None);
        }
        let firings: Vec<Vec<Firing>> = batch
            .iter()
            .map(|w| fire(&self.rules, &w.x, &self.blocks.masks(&w.x)))
            .collect();
        Ok(rule_penalty(&self.rules, &out.attention, &firings)?)
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

/// Mean CE in nats of logits `[N,V]` against labels (helper for evaluation).
pub fn mean_ce(logits: &Tensor, labels: &Tensor) -> candle_core::Result<f32> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    candle_nn::loss::nll(&logp, labels)?.to_scalar::<f32>()
}
