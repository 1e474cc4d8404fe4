//! RoPE for the families on GPT-2's block: on the first `dims` of each head's dimensions, with
//! the halves rotated together (GPT-NeoX's, Phi's, Falcon's) or neighbouring pairs (GPT-J's
//! `rotate_every_two`).

use candle_core::Tensor;

/// candle's RoPE over [B,H,n,dims] with tables (cos, sin) [n, dims/2].
pub(super) type RopeFn = fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>;

/// RoPE on the first `dims` of each head's dimensions.
pub(super) struct Rotary {
    /// Dimensions rotated (even, at most d_h).
    pub(super) dims: usize,
    /// The inverse frequencies [dims/2].
    pub(super) inv_freq: Vec<f32>,
    /// Pairs (0, 1), (2, 3) … turned together (GPT-J's) instead of (i, i + dims/2).
    pub(super) interleaved: bool,
}

impl Rotary {
    /// RoPE on `dims` dimensions (even) at `base`, halves rotated, with transformers'
    /// frequencies.
    pub(super) fn new(dims: usize, base: f64) -> Self {
        let inv_freq = (0..dims / 2)
            .map(|i| 1.0 / base.powf(2.0 * i as f64 / dims as f64) as f32)
            .collect();
        Self {
            dims,
            inv_freq,
            interleaved: false,
        }
    }

    /// [`Rotary::new`] with neighbouring pairs rotated (GPT-J's).
    pub(super) fn interleaved(dims: usize, base: f64) -> Self {
        Self {
            interleaved: true,
            ..Self::new(dims, base)
        }
    }

    /// candle's op for this layout: the fused one for inference, the composed one where
    /// gradients must flow (`grad`; the fused one drops them).
    pub(super) fn op(&self, grad: bool) -> RopeFn {
        use candle_nn::rotary_emb::{rope, rope_i, rope_i_slow, rope_slow};
        match (self.interleaved, grad) {
            (false, false) => rope,
            (false, true) => rope_slow,
            (true, false) => rope_i,
            (true, true) => rope_i_slow,
        }
    }
}

/// RoPE's base from a config: `rope_parameters`' (transformers 5; the plain rotation only,
/// other kinds refused naming `family`), else `rope_theta` (older configs), else 10,000.
pub(super) fn rope_base(
    rope_theta: Option<f64>,
    rope_parameters: Option<&serde_json::Value>,
    family: &str,
) -> Result<f64, String> {
    let params = rope_parameters.filter(|v| !v.is_null());
    if let Some(kind) = params
        .and_then(|p| p.get("rope_type"))
        .and_then(|t| t.as_str())
    {
        if kind != "default" {
            return Err(format!(
                "rope_type {kind:?} is not supported for {family} (the plain rotation only)"
            ));
        }
    }
    let theta = params
        .and_then(|p| p.get("rope_theta"))
        .and_then(|t| t.as_f64())
        .or(rope_theta)
        .unwrap_or(10_000.0);
    match theta.is_finite() && theta > 1.0 {
        true => Ok(theta),
        false => Err(format!(
            "rope_theta = {theta} must be a finite number above 1"
        )),
    }
}
