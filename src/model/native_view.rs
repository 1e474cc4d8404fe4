//! Our transformer's view forward (one sequence, the studio's captures, code lengths and
//! generation) through the native pass ([`crate::model::native::infer`]) on the CPU, returned
//! as the tensors [`crate::model::backend::AttentionModel`] promises. The tensors of each
//! layer's bias are read once into host vectors.

use candle_core::Tensor;

use crate::model::attention::AttentionBias;
use crate::model::native::{infer, with_model_refs, HostBias};
use crate::model::transformer::{ForwardOutput, LocalistModel, ModelError};

/// A bias tensor's values (f32).
fn host(t: &Tensor) -> Result<Vec<f32>, ModelError> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?)
}

/// The biases of a pass over T positions of a model of `layers` layers and `heads` heads, as
/// host data: each of `biases`, or, where there are none, the causal mask alone for every layer
/// (the plain model).
pub(crate) fn host_biases(
    biases: &[AttentionBias],
    t: usize,
    (layers, heads): (usize, usize),
) -> Result<Vec<HostBias>, ModelError> {
    if biases.is_empty() {
        let causal = HostBias {
            additive: crate::model::dial::causal_bias(t),
            tau: 1.0,
            mixture: None,
            extra: None,
        };
        return Ok(vec![causal; layers]);
    }
    biases.iter().map(|b| host_bias(b, t, heads)).collect()
}

/// [`AttentionBias`] of one sequence of `t` positions as host data, or a shape error.
pub(crate) fn host_bias(b: &AttentionBias, t: usize, heads: usize) -> Result<HostBias, ModelError> {
    host_bias_rows(b, (t, t), heads)
}

/// [`host_bias`] for `n` query rows over `kt` keys (a streamed chunk's bias).
pub(crate) fn host_bias_rows(
    b: &AttentionBias,
    (n, kt): (usize, usize),
    heads: usize,
) -> Result<HostBias, ModelError> {
    let additive = host(&b.additive)?;
    let mixture = match &b.mixture {
        Some((lam, local)) => Some((*lam as f32, host(local)?)),
        None => None,
    };
    let extra = b.extra.as_ref().map(host).transpose()?;
    let cells = n * kt;
    let fits = additive.len() == cells
        && mixture.as_ref().is_none_or(|(_, l)| l.len() == cells)
        && extra.as_ref().is_none_or(|e| e.len() == heads * cells);
    if !fits {
        return Err(ModelError::Input(format!(
            "an attention bias does not fit {n} query rows over {kt} keys"
        )));
    }
    Ok(HostBias {
        additive,
        tau: b.tau as f32,
        mixture,
        extra,
    })
}

/// The forward of one sequence under one bias per layer, natively: attention, scores when
/// `keep_scores`, and logits and queries when `logits` (else logits [1, T, 0] and no queries,
/// and the last layer's output, which only the logits read, is left out).
pub fn forward_native(
    model: &LocalistModel,
    ids: &[u32],
    biases: &[AttentionBias],
    keep_scores: bool,
    logits: bool,
) -> Result<ForwardOutput, ModelError> {
    let cfg = &model.config;
    let t = ids.len();
    if t == 0 {
        return Err(ModelError::Input(
            "an empty sequence has no attention".into(),
        ));
    }
    if t > cfg.max_seq_len {
        return Err(ModelError::TooLong(t, cfg.max_seq_len));
    }
    let (h, dh, v) = (cfg.num_heads, cfg.head_dim(), cfg.vocab_size);
    let host: Vec<HostBias> = biases
        .iter()
        .map(|b| host_bias(b, t, h))
        .collect::<Result<_, _>>()?;
    let out = with_model_refs(model, |p| infer(p, cfg, ids, &host, logits))
        .map_err(|e| ModelError::Input(e.to_string()))?;
    let dev = &model.device;
    let per_layer = |data: Vec<Vec<f32>>, last: usize| -> Result<Vec<Tensor>, ModelError> {
        data.into_iter()
            .map(|x| Ok(Tensor::from_vec(x, (1, h, t, last), dev)?))
            .collect()
    };
    Ok(ForwardOutput {
        logits: Tensor::from_vec(out.logits, (1, t, if logits { v } else { 0 }), dev)?,
        attention: per_layer(out.attention, t)?,
        scores: if keep_scores {
            per_layer(out.scores, t)?
        } else {
            Vec::new()
        },
        // A pass without logits makes no queries (nothing that shows attention reads them).
        queries: if logits {
            per_layer(out.queries, dh)?
        } else {
            Vec::new()
        },
    })
}
