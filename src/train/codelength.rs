//! Code length of a text under a model, in bits: Σ −log₂ p(x_t | x_<t). It is L(d | M) of the
//! description-length tests (SPEC §9, §10): routing documents to specialists and recruiting
//! them compare these numbers. Any decoder with next-token logits codes text: our own models
//! and imported ones (a pool of adapters on a pretrained base codes with those).

use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::sequence_biases;
use crate::model::dial::DialSetting;
use crate::model::finite::NonFinite;
use crate::model::transformer::ModelError;

/// Longest window a text is coded in. A pretrained model's context (SmolLM2: 8,192) would
/// hold every layer's dense attention at once; at 512 tokens that is about 300 MB for
/// SmolLM2, and our own models' windows (64–256) are shorter anyway.
pub const CODE_WINDOW: usize = 512;

/// Bits to code `ids[1..]` given the ones before, under `dial`, in consecutive windows of at
/// most the model's positions (and [`CODE_WINDOW`]; each window restarts its context; the
/// first token of the text is not coded). Returns (bits, tokens coded). A model without
/// next-token logits (an encoder) cannot code text: an error says so.
pub fn code_length_bits(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
) -> Result<(f64, usize), ModelError> {
    let dims = model.dims();
    if !(dims.has_logits && dims.causal) {
        return Err(ModelError::Input(
            "code lengths need a decoder with next-token logits; this model has none".into(),
        ));
    }
    let t_max = dims.max_len.clamp(2, CODE_WINDOW);
    let v = dims.vocab;
    let (mut bits, mut coded) = (0.0f64, 0usize);
    let mut start = 0usize;
    while start + 1 < ids.len() {
        let end = (start + t_max + 1).min(ids.len());
        let x = ids.get(start..end - 1).unwrap_or_default();
        let y = ids.get(start + 1..end).unwrap_or_default();
        let t = x.len();
        let masks = blocks.masks(x);
        let biases = sequence_biases(model, &masks, dial, model.device())?;
        let out = model.forward_biased(x, &biases, false)?;
        let logits = out.logits.reshape((t, v))?;
        let logp = candle_nn::ops::log_softmax(&logits, 1)?.to_vec2::<f32>()?;
        for (i, (row, &target)) in logp.iter().zip(y).enumerate() {
            let lp = row
                .get(target as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY);
            if lp.is_nan() {
                // Logits with NaN or ±∞ have no code length: say where, not NaN bits.
                return Err(NonFinite::Logits {
                    position: start + i,
                    token: target as usize,
                    value: lp,
                }
                .into());
            }
            bits -= f64::from(lp) / std::f64::consts::LN_2;
        }
        coded += y.len();
        start = end - 1;
    }
    Ok((bits, coded))
}
