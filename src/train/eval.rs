//! Held-out evaluation under a dial: perplexity, top-1 accuracy, attention entropy in bits,
//! off-block mass ε and pointer fidelity (against R(i), and against ground-truth targets when
//! the corpus provides them).

use candle_core::{Tensor, D};
use serde::{Deserialize, Serialize};

use crate::analysis::metrics::{
    argmax, entropy_bits, max_mean_causal_entropy_bits, non_negative, off_block_mass,
};
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture_memory::batch_that_fits;
use crate::model::dial::{layer_bias, DialSetting, LayerBias};
use crate::model::finite::{check_attention, check_loss};
use crate::model::transformer::{
    AttentionBias, ForwardOptions, ForwardOutput, LocalistModel, ModelError,
};
use crate::train::dataset::{TokenStream, Window};
use crate::train::trainer::{mean_ce, TrainError};

/// Metrics of a model on held-out text under one dial setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The dial λ (maximum over layers).
    pub lambda: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// Mean cross-entropy, nats per token.
    pub ce_nats: f64,
    /// Bits per token (ce / ln 2).
    pub bits_per_token: f64,
    /// Perplexity = 2^(bits per token).
    pub perplexity: f64,
    /// Top-1 next-token accuracy.
    pub top1_accuracy: f64,
    /// Mean attention entropy in bits over queries, heads and layers.
    pub entropy_bits: f64,
    /// Mean entropy per layer.
    pub entropy_bits_per_layer: Vec<f64>,
    /// The ceiling mean_i log₂ i for these windows (SPEC §7).
    pub entropy_ceiling_bits: f64,
    /// Mean off-block mass ε.
    pub off_block_mass: f64,
    /// Mean PF_mass against R(i) (= 1 − ε without rules).
    pub pf_mass: f64,
    /// Mean PF_top1 against R(i).
    pub pf_top1: f64,
    /// PF_mass against ground-truth pointer targets, when known.
    pub pf_true_mass: Option<f64>,
    /// PF_top1 against ground-truth pointer targets, when known.
    pub pf_true_top1: Option<f64>,
}

#[derive(Default)]
struct Acc {
    ce_sum: f64,
    correct: usize,
    tokens: usize,
    ent: Vec<(f64, usize)>,
    eps: (f64, usize),
    pf_top1: (f64, usize),
    true_mass: (f64, usize),
    true_top1: (f64, usize),
}

/// Evaluate on up to `max_windows` non-overlapping windows of `stream`, in batches of `batch`
/// (fewer when a batch's T×T attention would need more memory than the capture limit; an
/// error naming what is needed when not even one window fits). NaN or ±∞ attention or loss is
/// an error naming the layer and head, never a metric.
pub fn evaluate(
    model: &LocalistModel,
    blocks: &BlockMap,
    stream: &TokenStream,
    dial: &DialSetting,
    seq_len: usize,
    max_windows: usize,
    batch: usize,
) -> Result<EvalReport, TrainError> {
    let t = seq_len.min(model.config.max_seq_len);
    // Windows are consecutive, so the first one that does not fit ends the list (and
    // `max_windows` may be `usize::MAX` for "all of them").
    let windows: Vec<Window> = (0..max_windows)
        .map_while(|w| stream.window(w * t, t))
        .collect();
    if windows.is_empty() {
        return Err(TrainError::Invalid(format!(
            "held-out text has {} tokens; need at least {} to evaluate",
            stream.len(),
            t + 1
        )));
    }
    let layers = model.config.num_layers;
    let batch =
        batch_that_fits(layers, model.config.num_heads, t, batch).map_err(ModelError::from)?;
    let per_layer = dial.per_layer(layers);
    let mut acc = Acc {
        ent: vec![(0.0, 0); layers],
        ..Acc::default()
    };
    for chunk in windows.chunks(batch.max(1)) {
        eval_batch(model, blocks, chunk, &per_layer, t, &mut acc)?;
    }
    let ce = acc.ce_sum / acc.tokens.max(1) as f64;
    let bits = ce / std::f64::consts::LN_2;
    if !2f64.powf(bits).is_finite() {
        return Err(TrainError::Invalid(format!(
            "the held-out cross-entropy is {ce:.0} nats per token, so the perplexity e^{ce:.0} \
             is past any float: the output head's logits lie thousands apart (weights or biases \
             near f32's limit?); this model cannot be scored"
        )));
    }
    let mean = |(s, n): (f64, usize)| if n == 0 { 0.0 } else { s / n as f64 };
    let ent_total = acc
        .ent
        .iter()
        .fold((0.0, 0), |a, &(s, n)| (a.0 + s, a.1 + n));
    let eps = mean(acc.eps);
    Ok(EvalReport {
        lambda: dial.params.lambda,
        tokens: acc.tokens,
        ce_nats: ce,
        bits_per_token: bits,
        perplexity: 2f64.powf(bits),
        top1_accuracy: acc.correct as f64 / acc.tokens.max(1) as f64,
        entropy_bits: mean(ent_total),
        entropy_bits_per_layer: acc.ent.iter().map(|&e| mean(e)).collect(),
        entropy_ceiling_bits: max_mean_causal_entropy_bits(t),
        off_block_mass: eps,
        pf_mass: 1.0 - eps,
        pf_top1: mean(acc.pf_top1),
        pf_true_mass: (acc.true_mass.1 > 0).then(|| mean(acc.true_mass)),
        pf_true_top1: (acc.true_top1.1 > 0).then(|| mean(acc.true_top1)),
    })
}

/// Score one batch of windows: an error naming the layer and head whose attention first holds
/// NaN or ±∞, or a non-finite loss, instead of metrics read from them.
fn eval_batch(
    model: &LocalistModel,
    blocks: &BlockMap,
    chunk: &[Window],
    per_layer: &[crate::analysis::dial::DialParams],
    t: usize,
    acc: &mut Acc,
) -> Result<(), TrainError> {
    let b = chunk.len();
    let (masks, out) = forward_chunk(model, blocks, chunk, per_layer, t)?;
    let y: Vec<u32> = chunk.iter().flat_map(|w| w.y.iter().copied()).collect();
    let v = model.config.vocab_size;
    let logits = out.logits.reshape((b * t, v))?;
    let labels = Tensor::from_vec(y.clone(), b * t, &model.device)?;
    let ce = mean_ce(&logits, &labels)? as f64;
    let pred = logits.argmax(D::Minus1)?.to_vec1::<u32>()?;
    for (l, a) in out.attention.iter().enumerate() {
        attention_metrics(l, &flatten4(a)?, &masks, chunk, acc)?;
    }
    // Every layer's attention is finite here, so a bad loss comes from the logits.
    check_loss(ce).map_err(ModelError::from)?;
    acc.ce_sum += ce * (b * t) as f64;
    acc.correct += pred.iter().zip(&y).filter(|(p, y)| p == y).count();
    acc.tokens += b * t;
    Ok(())
}

/// The masks of `chunk`'s windows under `blocks`, and the model's forward pass over them under
/// the dial's per-layer biases.
fn forward_chunk(
    model: &LocalistModel,
    blocks: &BlockMap,
    chunk: &[Window],
    per_layer: &[crate::analysis::dial::DialParams],
    t: usize,
) -> Result<(Vec<SequenceMasks>, ForwardOutput), TrainError> {
    let dev = &model.device;
    let (masks, biases) = chunk_masks_biases(blocks, chunk, per_layer, t, dev)?;
    let x: Vec<u32> = chunk.iter().flat_map(|w| w.x.iter().copied()).collect();
    let out = model.forward(
        &Tensor::from_vec(x, (chunk.len(), t), dev)?,
        &biases,
        ForwardOptions::default(),
    )?;
    Ok((masks, out))
}

/// The masks of `chunk`'s windows under `blocks` and the dial's attention biases over them,
/// one per layer.
pub(crate) fn chunk_masks_biases(
    blocks: &BlockMap,
    chunk: &[Window],
    per_layer: &[crate::analysis::dial::DialParams],
    t: usize,
    dev: &candle_core::Device,
) -> Result<(Vec<SequenceMasks>, Vec<AttentionBias>), TrainError> {
    let masks: Vec<SequenceMasks> = chunk.iter().map(|w| blocks.masks(&w.x)).collect();
    let mut biases = Vec::with_capacity(per_layer.len());
    for p in per_layer {
        let rows: Vec<LayerBias> = masks.iter().map(|m| layer_bias(m, p)).collect();
        let refs: Vec<&LayerBias> = rows.iter().collect();
        biases.push(AttentionBias::from_rows(&refs, t, dev)?);
    }
    Ok((masks, biases))
}

/// ln p(y_i) of each row's target under `logits` [N, V] (natural log), in row order.
pub(crate) fn target_log_probs(logits: &Tensor, y: Vec<u32>) -> candle_core::Result<Vec<f32>> {
    let n = y.len();
    let logp = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = logp.gather(&Tensor::from_vec(y, (n, 1), logits.device())?, 1)?;
    picked.flatten_all()?.to_vec1::<f32>()
}

/// The cross-entropy (nats) of each next token of windows `windows` (by index, as [`evaluate`]
/// numbers them) of `stream` under `dial`, read as [`evaluate`] reads its mean (the same masks,
/// biases and pass): two models compared token by token on the same text. Empty when `stream`
/// has none of those windows; a non-finite loss is an error, as in [`evaluate`].
pub fn token_losses(
    model: &LocalistModel,
    blocks: &BlockMap,
    stream: &TokenStream,
    dial: &DialSetting,
    seq_len: usize,
    windows: std::ops::Range<usize>,
) -> Result<Vec<f32>, TrainError> {
    let t = seq_len.min(model.config.max_seq_len);
    let windows: Vec<Window> = windows.map_while(|w| stream.window(w * t, t)).collect();
    let per_layer = dial.per_layer(model.config.num_layers);
    let batch = batch_that_fits(model.config.num_layers, model.config.num_heads, t, 16)
        .map_err(ModelError::from)?;
    let mut losses = Vec::with_capacity(windows.len() * t);
    for chunk in windows.chunks(batch.max(1)) {
        let (b, v) = (chunk.len(), model.config.vocab_size);
        let (_, out) = forward_chunk(model, blocks, chunk, &per_layer, t)?;
        let y: Vec<u32> = chunk.iter().flat_map(|w| w.y.iter().copied()).collect();
        for lp in target_log_probs(&out.logits.reshape((b * t, v))?, y)? {
            check_loss(f64::from(-lp)).map_err(ModelError::from)?;
            losses.push(-lp);
        }
    }
    Ok(losses)
}

/// Add layer `l`'s attention `a` ([B·H][T][T], the batch and head axes flattened) to the
/// metrics, after checking that every weight is finite.
fn attention_metrics(
    l: usize,
    a: &[Vec<Vec<f32>>],
    masks: &[SequenceMasks],
    chunk: &[Window],
    acc: &mut Acc,
) -> Result<(), TrainError> {
    let heads_per_seq = (a.len() / chunk.len().max(1)).max(1);
    for heads in a.chunks(heads_per_seq) {
        check_attention(l, heads).map_err(ModelError::from)?;
    }
    for (idx, head) in a.iter().enumerate() {
        let (Some(m), Some(w)) = (
            masks.get(idx / heads_per_seq),
            chunk.get(idx / heads_per_seq),
        ) else {
            continue;
        };
        for (i, row) in head.iter().enumerate() {
            let rel = m.relevant_row(i);
            if let Some(e) = acc.ent.get_mut(l) {
                e.0 += entropy_bits(row);
                e.1 += 1;
            }
            acc.eps.0 += non_negative(off_block_mass(row, rel));
            acc.eps.1 += 1;
            let top = argmax(row.get(..=i).unwrap_or(row)).unwrap_or(0);
            acc.pf_top1.0 += f64::from(u8::from(rel.get(top).copied().unwrap_or(false)));
            acc.pf_top1.1 += 1;
            if let Some(Some(j)) = w.targets.get(i) {
                acc.true_mass.0 += row.get(*j).copied().unwrap_or(0.0) as f64;
                acc.true_mass.1 += 1;
                acc.true_top1.0 += f64::from(u8::from(top == *j));
                acc.true_top1.1 += 1;
            }
        }
    }
    Ok(())
}

fn flatten4(a: &Tensor) -> candle_core::Result<Vec<Vec<Vec<f32>>>> {
    let (b, h, t, s) = a.dims4()?;
    a.reshape((b * h, t, s))?.to_vec3::<f32>()
}
