//! The capture: what one forward pass shows about attention (SPEC §2, §7).
//!
//! Per layer and head: the attention matrix, block masses p_k(i), off-block mass ε(i),
//! entropy in bits and the logit margin m(i). A capture is a plain value computed from the
//! forward's tensors once; the UI and the CLI only read it.
//!
//! Two refusals guard it: a sequence whose T×T tables would need more memory than the limit
//! ([`crate::model::capture_memory`]) is refused before anything is allocated, and NaN or ±∞ in
//! a layer's attention or in the logits ([`crate::model::finite`]) is an error naming the layer
//! and head, never a capture whose metrics read as a perfect score.

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::analysis::metrics::argmax;
use crate::model::attention::AttentionBias;
use crate::model::backend::AttentionModel;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture_memory::check_capture_memory;
use crate::model::capture_stream::{empty_heads, softmax_tau, with_f32, AttentionLayout, Chunk};
use crate::model::dial::{layer_bias, DialSetting};
use crate::model::finite::check_logits;
use crate::model::transformer::ModelError;

/// One head of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadCapture {
    /// Layer index ℓ.
    pub layer: usize,
    /// Head index.
    pub head: usize,
    /// Attention weights a_ij, row-major T×T.
    pub attention: Vec<f32>,
    /// Block masses p_k(i), row-major T×K.
    pub block_mass: Vec<f32>,
    /// Off-block mass ε(i) per query.
    pub off_block_mass: Vec<f32>,
    /// Row entropy in bits per query.
    pub entropy_bits: Vec<f32>,
    /// Logit margin m(i) per query (+∞ when nothing is off-block).
    pub margin: Vec<f32>,
}

/// Everything captured for one sequence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    /// Token ids.
    pub ids: Vec<u32>,
    /// b(x_j) per key.
    pub key_blocks: Vec<usize>,
    /// r(i) per query.
    pub relevant_blocks: Vec<usize>,
    /// Block names (index = block).
    pub block_names: Vec<String>,
    /// Layers L.
    pub num_layers: usize,
    /// Heads per layer H.
    pub num_heads: usize,
    /// Heads, layer-major (index ℓ·H + h).
    pub heads: Vec<HeadCapture>,
    /// Next-token logits at every position, row-major T×V.
    pub logits: Vec<f32>,
    /// The dial the capture was taken under.
    pub dial: DialSetting,
    /// Causal attention (a decoder); false for a bidirectional encoder.
    #[serde(default = "yes")]
    pub causal: bool,
    /// Where each head's kept attention lies when it is not the whole T×T table at full
    /// resolution (a streamed capture of a long text: [`crate::model::capture_stream`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layout: Option<AttentionLayout>,
    /// Queries per row of [`HeadCapture::block_mass`] (1: one row per query; more: the mean
    /// over groups of this many queries, for long texts).
    #[serde(default = "one")]
    pub block_stride: usize,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

impl Capture {
    /// Sequence length T.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for an empty capture.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Where each head's kept attention lies ([`AttentionLayout::full`] unless streamed).
    pub fn attention_layout(&self) -> AttentionLayout {
        self.layout
            .unwrap_or_else(|| AttentionLayout::full(self.len()))
    }

    /// Rows of each head's block masses.
    pub fn block_rows(&self) -> usize {
        self.len().div_ceil(self.block_stride.max(1))
    }

    /// Row `i` of head `hc`'s attention over keys 0..T, when the capture holds it at full
    /// resolution (a dense capture, or a streamed one whose kept rows and keys include it).
    pub fn dense_row<'a>(&self, hc: &'a HeadCapture, i: usize) -> Option<&'a [f32]> {
        let t = self.len();
        let lay = self.attention_layout();
        if lay.stride != 1 || lay.keys.0 != 0 || i < lay.rows.0 || i >= lay.rows.1 {
            return None;
        }
        let w = lay.keys.1;
        let r = i - lay.rows.0;
        let row = hc.attention.get(r * w..(r + 1) * w)?;
        Some(if w == t { row } else { row.get(..w)? })
    }

    /// Number of blocks K.
    pub fn num_blocks(&self) -> usize {
        self.block_names.len()
    }

    /// The head capture of layer `l`, head `h`.
    pub fn head(&self, l: usize, h: usize) -> Option<&HeadCapture> {
        self.heads.get(l * self.num_heads + h)
    }

    fn mean_over(&self, layer: Option<usize>, f: impl Fn(&HeadCapture) -> &[f32]) -> f64 {
        let (mut sum, mut n) = (0.0f64, 0usize);
        for hc in self
            .heads
            .iter()
            .filter(|hc| layer.is_none_or(|l| l == hc.layer))
        {
            for &v in f(hc) {
                sum += v as f64;
                n += 1;
            }
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }

    /// Mean attention entropy in bits over queries, heads and layers (or one layer).
    pub fn mean_entropy_bits(&self, layer: Option<usize>) -> f64 {
        self.mean_over(layer, |h| &h.entropy_bits)
    }

    /// Mean off-block mass ε (or one layer's).
    pub fn mean_off_block_mass(&self, layer: Option<usize>) -> f64 {
        self.mean_over(layer, |h| &h.off_block_mass)
    }

    /// Pointer fidelity against explicit targets: per query the earlier position it must point
    /// to. Returns (mean PF_mass, mean PF_top1) over queries with a target, heads and layers,
    /// or `None` when no query has a target.
    pub fn pointer_fidelity(&self, targets: &[Option<usize>]) -> Option<(f64, f64)> {
        let t = self.len();
        let (mut mass, mut top1, mut n) = (0.0f64, 0.0f64, 0usize);
        for hc in &self.heads {
            for (i, target) in targets.iter().enumerate().take(t) {
                let (Some(j), Some(row)) = (target, self.dense_row(hc, i)) else {
                    continue;
                };
                let Some(&aj) = row.get(*j) else { continue };
                mass += aj as f64;
                let seen = if self.causal { row.get(..=i) } else { None };
                let best = argmax(seen.unwrap_or(row));
                top1 += f64::from(u8::from(best == Some(*j)));
                n += 1;
            }
        }
        (n > 0).then(|| (mass / n as f64, top1 / n as f64))
    }
}

/// The masks of one sequence for this model (bidirectional for an encoder).
pub fn masks_for(model: &dyn AttentionModel, blocks: &BlockMap, ids: &[u32]) -> SequenceMasks {
    blocks.masks_with(ids, model.dims().causal)
}

/// Build the per-layer bias tensors of one sequence under a dial.
pub fn sequence_biases(
    model: &dyn AttentionModel,
    masks: &SequenceMasks,
    dial: &DialSetting,
    device: &Device,
) -> candle_core::Result<Vec<AttentionBias>> {
    let t = masks.len();
    dial.per_layer(model.dims().layers)
        .iter()
        .map(|p| {
            let lb = layer_bias(masks, p);
            AttentionBias::from_rows(&[&lb], t, device)
        })
        .collect()
}

/// Run the model on one sequence under a dial and capture attention and metrics.
///
/// Refused, before anything is allocated, when the capture would need more memory than the
/// limit; an error naming the layer and head when the attention (or the logits) hold NaN or ±∞.
pub fn capture(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
) -> Result<Capture, ModelError> {
    capture_of(model, blocks, ids, dial, true)
}

/// [`capture`] for views of attention only: the logits may be left out (an empty
/// [`Capture::logits`]), which spares a pretrained model its output head. The studio's
/// captures take this path; `localist capture` and evaluation keep the logits.
pub fn capture_attention(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
) -> Result<Capture, ModelError> {
    capture_of(model, blocks, ids, dial, false)
}

/// [`capture`] (`logits`) or [`capture_attention`]: the sequence's masks, then the capture
/// (which checks the memory it needs before any T×T allocation).
fn capture_of(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
    logits: bool,
) -> Result<Capture, ModelError> {
    let masks = masks_for(model, blocks, ids);
    Ok(capture_with(model, blocks, ids, &masks, dial, None, logits)?.0)
}

/// Biased scores z = s + β (+ extra) of every layer, head and row: [L][H][T][T].
pub type Scores = Vec<Vec<Vec<Vec<f32>>>>;

/// [`capture`] with given masks (a rule may move R(i)) and an optional extra per-head bias
/// per layer, [1,H,T,T] (rules); also returns the biased scores.
pub fn capture_masked(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    masks: &SequenceMasks,
    dial: &DialSetting,
    extra: Option<&[Tensor]>,
) -> Result<(Capture, Scores), ModelError> {
    capture_with(model, blocks, ids, masks, dial, extra, true)
}

/// [`capture_masked`], with the logits only when `logits` (and the scores as plain rows only
/// when `extra` biases are given: the rules read them).
fn capture_with(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    masks: &SequenceMasks,
    dial: &DialSetting,
    extra: Option<&[Tensor]>,
    logits: bool,
) -> Result<(Capture, Scores), ModelError> {
    let dims = model.dims();
    check_capture_memory(dims.layers, dims.heads, ids.len())?;
    let device = model.device();
    let mut biases = sequence_biases(model, masks, dial, device)?;
    let want_scores = extra.is_some();
    if let Some(extra) = extra {
        for (b, e) in biases.iter_mut().zip(extra) {
            b.extra = Some(e.clone());
        }
    }
    let out = if logits {
        model.forward_biased(ids, &biases, true)?
    } else {
        model.forward_attention(ids, &biases, true)?
    };
    let (t, k, h) = (ids.len(), blocks.num_blocks(), dims.heads);
    let layout = AttentionLayout::full(t);
    let keep = vec![true; dims.layers * h];
    let mut heads = empty_heads((dims.layers, h), t, k, &layout, &keep, 1);
    let mut scores = Vec::with_capacity(if want_scores { dims.layers } else { 0 });
    let params = dial.per_layer(dims.layers);
    for (l, (att, sc)) in out.attention.iter().zip(&out.scores).enumerate() {
        // Rules add a per-head bias before the temperature; the row is still softmax(z/τ).
        let chunk = Chunk {
            masks,
            layout: &layout,
            k,
            block_stride: 1,
            r0: 0,
            n: t,
            kt: t,
            tau: softmax_tau(params.get(l)),
        };
        let layer_heads = heads.get_mut(l * h..(l + 1) * h).unwrap_or_default();
        with_f32(att, |av| {
            with_f32(sc, |zv| chunk.heads(layer_heads, &keep, av, zv, l))
        })???;
        if want_scores {
            scores.push(sc.squeeze(0)?.to_vec3::<f32>()?);
        }
    }
    let logits = out.logits.squeeze(0)?.flatten_all()?.to_vec1::<f32>()?;
    check_logits(&logits, out.logits.dims().last().copied().unwrap_or(0))?;
    Ok((
        Capture {
            ids: ids.to_vec(),
            key_blocks: masks.key_blocks.clone(),
            relevant_blocks: masks.relevant_blocks.clone(),
            block_names: blocks.names.clone(),
            num_layers: dims.layers,
            num_heads: h,
            heads,
            logits,
            dial: dial.clone(),
            causal: dims.causal,
            layout: None,
            block_stride: 1,
        },
        scores,
    ))
}
