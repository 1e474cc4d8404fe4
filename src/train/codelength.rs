//! Code length of a text under a model, in bits: Σ −log₂ p(x_t | x_<t). It is L(d | M) of the
//! description-length tests (SPEC §9, §10): routing documents to specialists and recruiting
//! them compare these numbers.

use candle_core::Tensor;

use crate::model::blocks::BlockMap;
use crate::model::capture::sequence_biases;
use crate::model::dial::DialSetting;
use crate::model::transformer::{ForwardOptions, LocalistModel, ModelError};

/// Bits to code `ids[1..]` given the ones before, under `dial`, in consecutive windows of at
/// most the model's positions (each window restarts its context; the first token of the text
/// is not coded). Returns (bits, tokens coded).
pub fn code_length_bits(
    model: &LocalistModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
) -> Result<(f64, usize), ModelError> {
    let t_max = model.config.max_seq_len.max(2);
    let v = model.config.vocab_size;
    let (mut bits, mut coded) = (0.0f64, 0usize);
    let mut start = 0usize;
    while start + 1 < ids.len() {
        let end = (start + t_max + 1).min(ids.len());
        let x = ids.get(start..end - 1).unwrap_or_default();
        let y = ids.get(start + 1..end).unwrap_or_default();
        let t = x.len();
        let masks = blocks.masks(x);
        let biases = sequence_biases(model, &masks, dial, &model.device)?;
        let input = Tensor::from_vec(x.to_vec(), (1, t), &model.device)?;
        let out = model.forward(&input, &biases, ForwardOptions::default())?;
        let logits = out.logits.reshape((t, v))?;
        let logp = candle_nn::ops::log_softmax(&logits, 1)?.to_vec2::<f32>()?;
        for (row, &target) in logp.iter().zip(y) {
            let lp = row
                .get(target as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY) as f64;
            bits -= lp / std::f64::consts::LN_2;
        }
        coded += y.len();
        start = end - 1;
    }
    Ok((bits, coded))
}
