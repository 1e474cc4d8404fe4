//! What Gemma (1, 2 and 3: Google's open decoders) changes in the LLaMA-family decoder, carried
//! by [`GemmaSettings`] in the config and applied by the candle forward passes (inference and
//! training; the native f32 passes and the bf16 preview step aside for Gemma, so candle's run
//! them): the embeddings multiplied by √d; scores scaled by `query_pre_attn_scalar`^-½ rather
//! than d_h^-½ and, in Gemma 2, soft-capped (`cap · tanh(s / cap)`) before the mask and the
//! dial's bias; a GELU-gated MLP; Gemma 2's and 3's norms of each sub-layer's output before it
//! joins the residual stream (`post_norms`); the logits soft-capped (Gemma 2); and Gemma 3's
//! sliding-window layers turning RoPE at a base of their own. Its RMSNorms scale by (1 + w): the
//! loader folds the 1 into the weights, so every norm here is LLaMA's.

use candle_core::Tensor;

pub use crate::hf::gguf_llama::metadata::GemmaSettings;
use crate::hf::gguf_llama::metadata::LlamaConfig;
use crate::hf::gguf_llama::Layer;

impl LlamaConfig {
    /// The scale of the scores q·k: Gemma's, or 1/√d_h.
    pub fn score_scale(&self) -> f64 {
        match &self.gemma {
            Some(g) => g.score_scale,
            None => 1.0 / (self.head_dim as f64).sqrt(),
        }
    }

    /// The RoPE base of layer `l` when it is not the model's one (Gemma 3's sliding layers).
    pub fn local_base(&self, l: usize) -> Option<f64> {
        let g = self.gemma.as_ref()?;
        g.local_rope_base
            .filter(|_| g.sliding.get(l).copied().unwrap_or(false))
    }
}

/// The embeddings `x` as the first layer reads them (×√d for Gemma).
pub fn embed(c: &LlamaConfig, x: Tensor) -> candle_core::Result<Tensor> {
    match &c.gemma {
        Some(g) => x * g.embed_scale,
        None => Ok(x),
    }
}

/// The scaled scores `s` soft-capped where the model caps them (Gemma 2).
pub fn cap_scores(c: &LlamaConfig, s: Tensor) -> candle_core::Result<Tensor> {
    cap(c.gemma.as_ref().and_then(|g| g.attn_softcap), s)
}

/// The logits soft-capped where the model caps them (Gemma 2).
pub fn cap_logits(c: &LlamaConfig, logits: Tensor) -> candle_core::Result<Tensor> {
    cap(c.gemma.as_ref().and_then(|g| g.final_softcap), logits)
}

/// `cap · tanh(x / cap)`, or `x`.
fn cap(cap: Option<f64>, x: Tensor) -> candle_core::Result<Tensor> {
    match cap {
        Some(k) => (x / k)?.tanh()? * k,
        None => Ok(x),
    }
}

/// The MLP's activation of the gate: SiLU, or Gemma's GELU (`gelu_tanh`: the tanh form with a
/// gradient, for training graphs).
pub fn activate(
    c: &LlamaConfig,
    g: &Tensor,
    gelu_tanh: fn(&Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    match &c.gemma {
        None => g.silu(),
        Some(s) if s.exact_gelu => g.gelu_erf(),
        Some(_) => gelu_tanh(g),
    }
}

/// A sub-layer's output `y` through its post-norm (`which`: 0 after attention, 1 after the
/// MLP) where the layer has them (Gemma 2 and 3); `norm` is the RMSNorm to use (fused, or the
/// slow one that carries gradients).
pub(crate) fn post_norm(
    layer: &Layer,
    which: usize,
    y: Tensor,
    norm: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    match layer.post_norms.as_ref().and_then(|n| n.get(which)) {
        Some(w) => norm(&y, w),
        None => Ok(y),
    }
}

/// RoPE's tables (cos, sin) of some positions: the model's, and Gemma 3's sliding layers' at
/// their own base.
pub struct RopeTables {
    /// At the model's base.
    pub global: (Tensor, Tensor),
    /// At the sliding layers' base, where it differs.
    pub local: Option<(Tensor, Tensor)>,
}

impl RopeTables {
    /// The tables layer `l` turns its queries and keys by.
    pub fn for_layer(&self, c: &LlamaConfig, l: usize) -> (&Tensor, &Tensor) {
        match (&self.local, c.local_base(l)) {
            (Some((cos, sin)), Some(_)) => (cos, sin),
            _ => (&self.global.0, &self.global.1),
        }
    }
}
