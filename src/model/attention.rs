//! One layer's attention under the dial and the rules, shared by every model (SPEC §4.2, §6):
//! the bias tensors ([`AttentionBias`]) and the softmax that applies them
//! ([`biased_attention`]), so that the dial means the same thing on our transformer and on
//! imported models. The causal mask as a tensor ([`causal_tensor`]) is here too: it is the
//! bias a decoder layer gets when it is given none.

use candle_core::{Device, Tensor};

use crate::model::dial::LayerBias;

/// One layer's attention bias for a batch, as tensors.
#[derive(Clone, Debug)]
pub struct AttentionBias {
    /// Additive bias [B,1,T,T] (−∞ invisible).
    pub additive: Tensor,
    /// Softmax temperature.
    pub tau: f64,
    /// Mode B mixture: λ and the local-only bias [B,1,T,T].
    pub mixture: Option<(f64, Tensor)>,
    /// Extra per-head bias [B,H,T,T] (rules), added before the temperature.
    pub extra: Option<Tensor>,
}

impl AttentionBias {
    /// Rows `start..start + n` of this bias (for a step over the last `n` positions of a
    /// sequence whose earlier keys and values are cached).
    pub fn rows(&self, start: usize, n: usize) -> candle_core::Result<Self> {
        let cut = |t: &Tensor| t.narrow(2, start, n);
        Ok(Self {
            additive: cut(&self.additive)?,
            tau: self.tau,
            mixture: match &self.mixture {
                Some((lam, local)) => Some((*lam, cut(local)?)),
                None => None,
            },
            extra: self.extra.as_ref().map(cut).transpose()?,
        })
    }

    /// One sequence's bias rows `lb` (n×kt, from [`crate::model::dial::layer_bias_rows`]) as
    /// [1,1,n,kt] tensors.
    pub fn from_layer(
        lb: &LayerBias,
        n: usize,
        kt: usize,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let additive = Tensor::from_slice(&lb.additive, (1, 1, n, kt), device)?;
        let mixture = match &lb.mixture {
            Some((lam, local)) => Some((
                *lam as f64,
                Tensor::from_slice(local, (1, 1, n, kt), device)?,
            )),
            None => None,
        };
        Ok(Self {
            additive,
            tau: lb.tau as f64,
            mixture,
            extra: None,
        })
    }

    /// Stack per-sequence layer biases (same temperature and mode) into batch tensors.
    pub fn from_rows(rows: &[&LayerBias], t: usize, device: &Device) -> candle_core::Result<Self> {
        let b = rows.len();
        let additive: Vec<f32> = rows
            .iter()
            .flat_map(|r| r.additive.iter().copied())
            .collect();
        let additive = Tensor::from_vec(additive, (b, 1, t, t), device)?;
        let tau = rows.first().map(|r| r.tau as f64).unwrap_or(1.0);
        let mixture = match rows.first().and_then(|r| r.mixture.as_ref()) {
            Some((lam, _)) => {
                let local: Vec<f32> = rows
                    .iter()
                    .flat_map(|r| match &r.mixture {
                        Some((_, l)) => l.clone(),
                        None => vec![f32::NEG_INFINITY; t * t],
                    })
                    .collect();
                Some((*lam as f64, Tensor::from_vec(local, (b, 1, t, t), device)?))
            }
            None => None,
        };
        Ok(Self {
            additive,
            tau,
            mixture,
            extra: None,
        })
    }
}

/// Attention weights from raw scores `s` = q·kᵀ/√d_h [B,H,T,T] under one layer's bias: the
/// additive bias (which carries the causal mask) and the rules' extra bias are added, the sum is
/// divided by τ, and mode B mixes in the local-only softmax. Without a bias, `default_mask`
/// (the causal mask of a decoder; `None` for an encoder) is added. `softmax` is the fused or
/// the differentiable one. Returns (attention, biased scores z).
pub fn biased_attention(
    s: &Tensor,
    bias: Option<&AttentionBias>,
    default_mask: Option<&Tensor>,
    softmax: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<(Tensor, Tensor)> {
    let z = match (bias, default_mask) {
        (Some(bias), _) => {
            let mut z = s.broadcast_add(&bias.additive)?;
            if let Some(extra) = &bias.extra {
                z = z.broadcast_add(extra)?;
            }
            z
        }
        (None, Some(mask)) => s.broadcast_add(mask)?,
        (None, None) => s.clone(),
    };
    let tau = bias.map(|b| b.tau).unwrap_or(1.0);
    let zt = if (tau - 1.0).abs() > 0.0 {
        (&z / tau)?
    } else {
        z.clone()
    };
    let mut a = softmax(&zt)?;
    if let Some((lam, local)) = bias.and_then(|b| b.mixture.as_ref()) {
        let mut zl = s.broadcast_add(local)?;
        if let Some(extra) = bias.and_then(|b| b.extra.as_ref()) {
            zl = zl.broadcast_add(extra)?;
        }
        let al = softmax(&(zl / tau)?)?;
        a = ((a * (1.0 - lam))? + (al * *lam)?)?;
    }
    Ok((a, z))
}

/// [`biased_attention`] as one fused op for training graphs on the CPU, from the unscaled
/// scores `raw` = q·kᵀ and the score `scale`: Some(attention) when the bias is additive only
/// (no rules' extra bias, no mode-B mixture), else None (compose the ops).
pub fn fused_biased_attention(
    raw: &Tensor,
    bias: Option<&AttentionBias>,
    default_mask: Option<&Tensor>,
    scale: f64,
) -> candle_core::Result<Option<Tensor>> {
    let (additive, tau) = match (bias, default_mask) {
        (Some(b), _) if b.extra.is_none() && b.mixture.is_none() => (&b.additive, b.tau),
        (None, Some(mask)) => (mask, 1.0),
        _ => return Ok(None),
    };
    crate::model::fused::biased_softmax(raw, additive, scale, tau)
}

/// The causal mask as a [B,1,T,T] tensor.
pub fn causal_tensor(b: usize, t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let one = crate::model::dial::causal_bias(t);
    Tensor::from_vec(one, (1, 1, t, t), device)?.repeat((b, 1, 1, 1))
}
