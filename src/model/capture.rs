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

use crate::model::attention::AttentionBias;
use crate::model::backend::AttentionModel;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture_data::{empty_heads, softmax_tau};
pub use crate::model::capture_data::{masks_for, Capture, HeadCapture};
use crate::model::capture_layout::AttentionLayout;
use crate::model::capture_memory::check_capture_memory;
use crate::model::capture_rows::{with_f32, Chunk};
use crate::model::dial::{layer_bias, DialSetting};
use crate::model::finite::check_logits;
use crate::model::native::awake::with_pool_awake;
use crate::model::transformer::ModelError;

/// Build the per-layer bias tensors of one sequence under a dial.
pub fn sequence_biases(
    model: &dyn AttentionModel,
    masks: &SequenceMasks,
    dial: &DialSetting,
    device: &Device,
) -> candle_core::Result<Vec<AttentionBias>> {
    let t = masks.len();
    let params = dial.per_layer(model.dims().layers);
    let mut out: Vec<AttentionBias> = Vec::with_capacity(params.len());
    for (l, p) in params.iter().enumerate() {
        // Layers under the same settings (a uniform schedule: all of them) share one bias.
        let same = params
            .get(..l)
            .and_then(|prev| prev.iter().position(|q| q == p));
        let bias = match same.and_then(|i| out.get(i)) {
            Some(b) => b.clone(),
            None => AttentionBias::from_rows(&[&layer_bias(masks, p)], t, device)?,
        };
        out.push(bias);
    }
    Ok(out)
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
/// when `extra` biases are given: the rules read them). The forward and the reading of its
/// layers run as one pass on rayon's pool with its other threads kept awake
/// ([`with_pool_awake`]), when called from outside the pool: at 64 tokens the parts cut over
/// two threads are tens of microseconds, shorter than waking a sleeping thread (the tiny
/// model's 64-token capture at two threads: README, "Speed").
fn capture_with(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    masks: &SequenceMasks,
    dial: &DialSetting,
    extra: Option<&[Tensor]>,
    logits: bool,
) -> Result<(Capture, Scores), ModelError> {
    let pass = || capture_pass(model, blocks, ids, masks, dial, extra, logits);
    // On a thread of the pool (captures run side by side), the others are busy already.
    if rayon::current_thread_index().is_some() {
        pass()
    } else {
        with_pool_awake(pass)
    }
}

/// [`capture_with`]'s pass.
fn capture_pass(
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
    crate::model::capture_memory::check_block_masses(
        dims.layers,
        dims.heads,
        ids.len(),
        blocks.num_blocks(),
    )
    .map_err(ModelError::Input)?;
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
    let params = dial.per_layer(dims.layers);
    let layers: Vec<(&Tensor, &Tensor)> = out.attention.iter().zip(&out.scores).collect();
    let read = |l: usize, (att, sc): (&Tensor, &Tensor), across: bool| {
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
        let keep = vec![true; h];
        let mut heads = empty_heads((1, h), t, k, &layout, &keep, 1);
        heads.iter_mut().for_each(|hc| hc.layer = l);
        with_f32(att, |av| {
            with_f32(sc, |zv| chunk.heads(&mut heads, &keep, av, zv, l, across))
        })???;
        Ok::<_, ModelError>(heads)
    };
    let heads = read_layers(&layers, read)?;
    let mut scores = Vec::with_capacity(if want_scores { dims.layers } else { 0 });
    if want_scores {
        for sc in &out.scores {
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
            windows: model.layer_windows(),
            layout: None,
            block_stride: 1,
            weak_map: blocks.weak_on(ids),
        },
        scores,
    ))
}

/// Every layer's heads through `read(layer, tensors, across)`, in layer order. On a pool of
/// several threads with at least as many layers, the layers are read side by side, each on
/// one thread (`across` false: its heads stay on that thread), so a short text's metrics do
/// not run on one core while the others wait; else each layer splits its own heads
/// (`across` true). An error is the first layer's in order.
fn read_layers<'a, F>(
    layers: &[(&'a Tensor, &'a Tensor)],
    read: F,
) -> Result<Vec<HeadCapture>, ModelError>
where
    F: Fn(usize, (&'a Tensor, &'a Tensor), bool) -> Result<Vec<HeadCapture>, ModelError> + Sync,
{
    use rayon::prelude::*;
    let threads = rayon::current_num_threads();
    let per_layer: Vec<Result<Vec<HeadCapture>, ModelError>> =
        if threads > 1 && layers.len() >= threads {
            layers
                .par_iter()
                .enumerate()
                .map(|(l, &pair)| read(l, pair, false))
                .collect()
        } else {
            layers
                .iter()
                .enumerate()
                .map(|(l, &pair)| read(l, pair, true))
                .collect()
        };
    let mut heads = Vec::new();
    for layer in per_layer {
        heads.extend(layer?);
    }
    Ok(heads)
}
