//! The norm a sub-layer reads the residual stream through, in candle's passes: RMSNorm (every
//! LLaMA-family model), or LayerNorm with a weight and a bias where the model has LayerNorms
//! (StableLM; OLMo 1's, which have neither, as weight 1 and bias 0); and OLMo's clip of q, k
//! and v.

use candle_core::Tensor;

use crate::hf::gguf_llama::{Layer, LlamaConfig};

/// `x` through the norm of weight `w` (and bias `b`, LayerNorm's); `train`: the ops that carry
/// gradients (candle's fused RMSNorm drops them; our LayerNorm has its own backward).
pub(crate) fn norm(
    c: &LlamaConfig,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    train: bool,
) -> candle_core::Result<Tensor> {
    match (c.layer_norm, b) {
        (true, Some(b)) => crate::model::fused::layer_norm(x, w, b, c.rms_eps),
        (true, None) => crate::model::fused::layer_norm(x, w, &w.zeros_like()?, c.rms_eps),
        (false, _) if train => candle_nn::ops::rms_norm_slow(x, w, c.rms_eps as f32),
        (false, _) => candle_nn::ops::rms_norm(x, w, c.rms_eps as f32),
    }
}

/// A q, k or v projection's output clipped to ±`clip_qkv` where the model clips them (OLMo's
/// `clip_qkv`, llama.cpp's `attention.clamp_kqv`), before any norm or RoPE.
pub(crate) fn clip(c: &LlamaConfig, y: Tensor) -> candle_core::Result<Tensor> {
    match c.clip_qkv {
        Some(m) => y.clamp(-m as f32, m as f32),
        None => Ok(y),
    }
}

impl Layer {
    /// The bias of pre-norm `i` (0: attention's, 1: the MLP's) where it is a LayerNorm.
    pub(crate) fn norm_bias(&self, i: usize) -> Option<&Tensor> {
        self.norm_bias.as_ref().map(|b| &b[i])
    }
}
