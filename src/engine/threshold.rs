//! Estimating the penalty threshold λ* of SPEC §8.4 from a model and a text.
//!
//! In the block-mass model of one attention row, moving mass δ from block k to the relevant
//! block r changes the task loss by δ·(∂L/∂p_r − ∂L/∂p_k) and the group penalty by
//! −δ·η·λ·w_k/√n_k (for a row uniform within block k, ‖a_k‖₂ = p_k/√n_k). When the task's
//! advantage for k, ∂L/∂p_r − ∂L/∂p_k, is at most G everywhere, every λ above
//! λ* = G·max_{k≠r} √n_k / w_k (in units where the penalty weight is η·λ) leaves all mass on
//! the relevant block at a stationary point.
//!
//! The advantage is read off the gradient of the next-token loss with respect to the
//! pre-softmax scores z of each row (a zero per-head bias is added to z and differentiated):
//! with s_ij = ∂L/∂z_ij = a_ij(g_ij − ḡ_i), where g = ∂L/∂a, the derivative of scaling block
//! k's mass with its shape kept is d_k − ḡ = Σ_{j∈k} s_ij / p_k, and ḡ cancels in d_r − d_k.
//!
//! Units: the trainer's loss is the mean cross-entropy over the B·T tokens plus
//! η·λ·(mean over L layers, B batch rows, H heads and T queries of Ω_i). Per row, the penalty
//! weight is therefore η·λ/(L·B·H·T) against a task gradient that is 1/(B·T) of the summed
//! loss's; so G is measured on the summed loss and scaled by L·H, and B and T cancel.

use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::analysis::penalty::BlockWeighting;
use crate::model::blocks::BlockMap;
use crate::model::transformer::{
    causal_tensor, AttentionBias, ForwardOptions, LocalistModel, ModelError,
};

/// The estimate and what it rests on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdEstimate {
    /// G: the largest task advantage of an off-relevant block over the relevant one, per unit
    /// of a row's penalty weight (0 when the task already prefers the relevant block).
    pub grad_bound: f64,
    /// λ* from the largest row: λ > λ* makes full concentration the only stationary point.
    pub lambda_star: f64,
    /// λ* of the 95th-percentile row (a robust companion of the maximum).
    pub lambda_star_q95: f64,
    /// Rows (layer, head, query) measured.
    pub rows: usize,
}

/// Per layer: ∂L/∂z `[H][T][T]` (L the next-token loss summed over the text) and the attention
/// a `[H][T][T]`, from one differentiable forward pass at λ = 0 with a zero bias probe on z.
#[allow(clippy::type_complexity)]
pub fn score_gradients(
    model: &LocalistModel,
    ids: &[u32],
) -> Result<Vec<(Vec<Vec<Vec<f32>>>, Vec<Vec<Vec<f32>>>)>, ModelError> {
    let t = ids.len();
    let dev = &model.device;
    let (layers, heads) = (model.config.num_layers, model.config.num_heads);
    let probes: Vec<Var> = (0..layers)
        .map(|_| Var::zeros((1, heads, t, t), DType::F32, dev))
        .collect::<Result<_, _>>()?;
    let extra: Vec<Tensor> = probes.iter().map(|p| p.as_tensor().clone()).collect();
    let (loss, attention) = summed_loss(model, ids, &extra)?;
    let grads = loss.backward()?;
    let mut out = Vec::with_capacity(layers);
    for (probe, att) in probes.iter().zip(&attention) {
        let s = match grads.get(probe.as_tensor()) {
            Some(g) => g.squeeze(0)?.to_vec3::<f32>()?,
            None => vec![vec![vec![0.0; t]; t]; heads],
        };
        out.push((s, att.squeeze(0)?.to_vec3::<f32>()?));
    }
    Ok(out)
}

/// The next-token loss summed over `ids` (t ≥ 2) with `extra` `[1,H,T,T]` added to each layer's
/// scores (one tensor per layer), and the attention per layer.
pub fn summed_loss(
    model: &LocalistModel,
    ids: &[u32],
    extra: &[Tensor],
) -> Result<(Tensor, Vec<Tensor>), ModelError> {
    let t = ids.len();
    let dev = &model.device;
    let causal = causal_tensor(1, t, dev)?;
    let biases: Vec<AttentionBias> = extra
        .iter()
        .map(|e| AttentionBias {
            additive: causal.clone(),
            tau: 1.0,
            mixture: None,
            extra: Some(e.clone()),
        })
        .collect();
    let input = Tensor::from_vec(ids.to_vec(), (1, t), dev)?;
    let out = model.forward(
        &input,
        &biases,
        ForwardOptions {
            differentiable: true,
            keep_scores: false,
        },
    )?;
    let v = model.config.vocab_size;
    let logits = out.logits.reshape((t, v))?.narrow(0, 0, t - 1)?;
    let targets = Tensor::from_vec(ids.get(1..).unwrap_or_default().to_vec(), t - 1, dev)?;
    let loss = (candle_nn::loss::cross_entropy(&logits, &targets)? * (t - 1) as f64)?;
    Ok((loss, out.attention))
}

/// Estimate λ* on one text (ids) for the penalty weight η and block weighting `weights`.
pub fn estimate_threshold(
    model: &LocalistModel,
    blocks: &BlockMap,
    ids: &[u32],
    eta: f64,
    weights: BlockWeighting,
) -> Result<ThresholdEstimate, ModelError> {
    let t = ids.len().min(model.config.max_seq_len);
    let ids = ids.get(..t).unwrap_or_default();
    if t < 2 {
        return Ok(ThresholdEstimate {
            grad_bound: 0.0,
            lambda_star: 0.0,
            lambda_star_q95: 0.0,
            rows: 0,
        });
    }
    let (layers, heads) = (model.config.num_layers, model.config.num_heads);
    // The differentiable pass keeps about twice a capture's T×T tensors per head (the probe,
    // its gradient and the graph's softmax besides the attention and the plain copies):
    // refuse, saying how much it needs, before allocating.
    crate::model::capture_memory::check_capture_memory(layers, heads.saturating_mul(2), t)?;
    let rows = score_gradients(model, ids)?;
    // `f64::max` skips NaN, and a row without a value is dropped: an overflowing model read as
    // λ* = 0 ("any penalty gives full locality"), in green, beside a capture that failed.
    // The attention first: an overflow in a late layer makes every earlier gradient NaN too.
    for what in ["attention", "loss gradient"] {
        for (l, (s, a)) in rows.iter().enumerate() {
            let values = if what == "attention" { a } else { s };
            if let Some(h) = values
                .iter()
                .position(|v| v.iter().flatten().any(|x| !x.is_finite()))
            {
                return Err(ModelError::Input(format!(
                    "the {what} of layer {l}, head {h} is not finite on this text (the model \
                     overflows f32): no threshold can be estimated"
                )));
            }
        }
    }
    let masks = blocks.masks(ids);
    let k = masks.num_blocks.max(1);
    let scale = (layers * heads) as f64 / eta.max(1e-12);
    let mut per_row = Vec::new();
    let mut g_max: f64 = 0.0;
    for (s, a) in &rows {
        for (s_h, a_h) in s.iter().zip(a) {
            for i in 0..t {
                let r = masks.relevant_blocks.get(i).copied().unwrap_or(0);
                let sums = BlockSums::of_row(s_h, a_h, &masks.key_blocks, i, k);
                if let Some((row_star, g_row)) = sums.row_star(r, scale, weights) {
                    g_max = g_max.max(g_row);
                    per_row.push(row_star);
                }
            }
        }
    }
    per_row.sort_by(|a, b| a.total_cmp(b));
    let q95 = per_row
        .get(((per_row.len() as f64 * 0.95) as usize).min(per_row.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    Ok(ThresholdEstimate {
        grad_bound: g_max,
        lambda_star: per_row.last().copied().unwrap_or(0.0),
        lambda_star_q95: q95,
        rows: per_row.len(),
    })
}

/// One row's scores, attention and key counts summed per key block.
struct BlockSums {
    score: Vec<f64>,
    attention: Vec<f64>,
    count: Vec<usize>,
}

impl BlockSums {
    /// Sum row `i` of one head's scores `s_h` and attention `a_h` over its keys `0..=i`, by
    /// the key's block (clamped to the `k` blocks).
    fn of_row(
        s_h: &[Vec<f32>],
        a_h: &[Vec<f32>],
        key_blocks: &[usize],
        i: usize,
        k: usize,
    ) -> Self {
        let (mut score, mut attention, mut count) = (vec![0.0; k], vec![0.0; k], vec![0; k]);
        for j in 0..=i {
            let b = key_blocks.get(j).copied().unwrap_or(0).min(k - 1);
            let sij = s_h
                .get(i)
                .and_then(|row| row.get(j))
                .copied()
                .unwrap_or(0.0);
            let aij = a_h
                .get(i)
                .and_then(|row| row.get(j))
                .copied()
                .unwrap_or(0.0);
            if let (Some(ss), Some(pp), Some(cc)) =
                (score.get_mut(b), attention.get_mut(b), count.get_mut(b))
            {
                *ss += sij as f64;
                *pp += aij as f64;
                *cc += 1;
            }
        }
        Self {
            score,
            attention,
            count,
        }
    }

    /// The row's λ* and its largest task advantage (of an off-relevant block over the relevant
    /// block `r`), or `None` when the relevant block gets no attention.
    fn row_star(&self, r: usize, scale: f64, weights: BlockWeighting) -> Option<(f64, f64)> {
        let (Some(&p_r), Some(&s_r)) = (self.attention.get(r), self.score.get(r)) else {
            return None;
        };
        if p_r <= 1e-12 {
            return None;
        }
        let d_r = s_r / p_r;
        let w = weights.weights(&self.count);
        let (mut row_star, mut g_row): (f64, f64) = (0.0, 0.0);
        for kk in (0..self.count.len()).filter(|&kk| kk != r) {
            let (Some(&p_k), Some(&n_k), Some(&s_k)) = (
                self.attention.get(kk),
                self.count.get(kk),
                self.score.get(kk),
            ) else {
                continue;
            };
            if n_k == 0 || p_k <= 1e-12 {
                continue;
            }
            let advantage = (d_r - s_k / p_k).max(0.0) * scale;
            g_row = g_row.max(advantage);
            let wk = w.get(kk).copied().unwrap_or(1.0);
            if wk > 0.0 {
                row_star = row_star.max(advantage * (n_k as f64).sqrt() / wk);
            }
        }
        Some((row_star, g_row))
    }
}
