//! What Gemma (1, 2 and 3: Google's open decoders) changes in the LLaMA-family decoder, carried
//! by [`GemmaSettings`] in the config and applied by the candle forward passes (inference and
//! training) and by the native passes (`native.rs`: view, streamed and bf16 preview; a
//! Gemma with the exact GELU stays on candle's): the embeddings multiplied by √d; scores scaled by `query_pre_attn_scalar`^-½ rather
//! than d_h^-½ and, in Gemma 2, soft-capped (`cap · tanh(s / cap)`) before the mask and the
//! dial's bias; a GELU-gated MLP; Gemma 2's and 3's norms of each sub-layer's output before it
//! joins the residual stream (`post_norms`); the logits soft-capped (Gemma 2); and Gemma 3's
//! sliding-window layers turning RoPE at a base of their own. Its RMSNorms scale by (1 + w): the
//! loader folds the 1 into the weights, so every norm here is LLaMA's.

use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::Tensor;

use crate::hf::gguf_llama::metadata::{meta_f64, meta_usize, optional};

pub use crate::hf::gguf_llama::metadata::GemmaSettings;
use crate::hf::gguf_llama::metadata::LlamaConfig;
use crate::hf::gguf_llama::Layer;

impl LlamaConfig {
    /// The scale of the scores q·k: Gemma's, Granite's, or 1/√d_h.
    pub fn score_scale(&self) -> f64 {
        match (&self.gemma, &self.granite) {
            (Some(g), _) => g.score_scale,
            (_, Some(g)) => g.attention,
            _ => 1.0 / (self.head_dim as f64).sqrt(),
        }
    }

    /// What the embeddings are multiplied by (Gemma's √d, Granite's multiplier), if anything.
    pub fn embed_factor(&self) -> Option<f64> {
        match (&self.gemma, &self.granite) {
            (Some(g), _) => Some(g.embed_scale),
            (_, Some(g)) => Some(g.embedding),
            _ => None,
        }
    }

    /// What each sub-layer's output is multiplied by as it joins the residual stream
    /// (Granite's `residual_multiplier`; 1 for every other family).
    pub fn residual_factor(&self) -> f64 {
        self.granite.map_or(1.0, |g| g.residual)
    }

    /// Whether layer `l` turns no RoPE (SmolLM3's NoPE layers).
    pub fn rope_off(&self, l: usize) -> bool {
        self.no_rope
            .as_ref()
            .is_some_and(|off| off.get(l).copied().unwrap_or(false))
    }

    /// The base of the plain, unscaled rotation layer `l` turns by when it is not the model's
    /// (Gemma 3's and OLMo 3's sliding layers).
    pub fn local_base(&self, l: usize) -> Option<f64> {
        let sliding = |s: &[bool]| s.get(l).copied().unwrap_or(false);
        if let Some((layers, base)) = &self.sliding_rope {
            return sliding(layers).then_some(*base);
        }
        let g = self.gemma.as_ref()?;
        g.local_rope_base.filter(|_| sliding(&g.sliding))
    }
}

/// The embeddings `x` as the first layer reads them (×√d for Gemma, × the multiplier for
/// Granite).
pub fn embed(c: &LlamaConfig, x: Tensor) -> candle_core::Result<Tensor> {
    match c.embed_factor() {
        Some(f) => x * f,
        None => Ok(x),
    }
}

/// A sub-layer's output `y` as it joins the residual stream (× Granite's multiplier).
pub fn residual(c: &LlamaConfig, y: Tensor) -> candle_core::Result<Tensor> {
    match c.granite {
        Some(g) => y * g.residual,
        None => Ok(y),
    }
}

/// The scaled scores `s` soft-capped where the model caps them (Gemma 2).
pub fn cap_scores(c: &LlamaConfig, s: Tensor) -> candle_core::Result<Tensor> {
    cap(c.gemma.as_ref().and_then(|g| g.attn_softcap), s)
}

/// The logits soft-capped where the model caps them (Gemma 2), or divided by Granite's
/// `logits_scaling`.
pub fn finish_logits(c: &LlamaConfig, logits: Tensor) -> candle_core::Result<Tensor> {
    let logits = match c.granite {
        Some(g) => (logits / g.logits)?,
        None => logits,
    };
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

/// The residual stream `x` as a sub-layer reads it: through its norm `w`, or as it is where
/// the model has no pre-norms (OLMo 2).
pub fn pre_norm(
    c: &LlamaConfig,
    x: &Tensor,
    w: &Tensor,
    norm: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    if c.pre_norms() {
        norm(x, w)
    } else {
        Ok(x.clone())
    }
}

/// `x` [B,T,H,d_h] of projection `b` (0: q, 1: k) through the layer's q/k norm where it has
/// one: over each head's d_h (Qwen3's, Gemma 3's) or, when the weight spans all heads, over the
/// whole projection (OLMo 2's). `norm` is the RMSNorm to use.
pub(crate) fn qk_norm(
    layer: &Layer,
    b: usize,
    x: Tensor,
    norm: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    let Some(w) = layer.qk_norm.as_ref().and_then(|ws| ws.get(b)) else {
        return Ok(x);
    };
    let (bs, t, h, dh) = x.dims4()?;
    if w.elem_count() == dh {
        return norm(&x, w);
    }
    norm(&x.reshape((bs, t, h * dh))?, w)?.reshape((bs, t, h, dh))
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

/// Gemma's settings of a GGUF file of architecture `gemma`, `gemma2` or `gemma3` into
/// `config` (nothing for the others), read as llama.cpp reads them: its converter has already
/// added the 1 to every norm weight; Gemma 2's caps default to 50 and 30 and its window to
/// 4,096 over every other layer; Gemma 3's window (when the file names one) covers five layers
/// in six, turning RoPE at `rope.freq_base_swa` (10,000); `attention.sliding_window_pattern`
/// overrides the pattern. The scores are scaled by d_h^-½, or (d/heads)^-½ for the 27B
/// models, as llama.cpp does (the converter writes no `query_pre_attn_scalar`). A window makes
/// the context no longer than it.
pub(crate) fn from_gguf(
    c: &gguf_file::Content,
    file: &Path,
    config: &mut LlamaConfig,
) -> anyhow::Result<()> {
    let arch = config.arch;
    let (pattern, default_window) = match arch {
        "gemma" => (0, None),
        "gemma2" => (2, Some(4096)),
        "gemma3" => (6, None),
        _ => return Ok(()),
    };
    let key = |k: &str| format!("{arch}.{k}");
    let f64_at = |k: &str| optional(c, &key(k), file, meta_f64);
    let window = optional(c, &key("attention.sliding_window"), file, meta_usize)?
        .or(default_window)
        .filter(|w| *w > 0);
    let pattern = optional(
        c,
        &key("attention.sliding_window_pattern"),
        file,
        meta_usize,
    )?
    .unwrap_or(pattern);
    // Sized by the layer count, which `LlamaConfig::from_gguf` has checked within its limit.
    let n = config.layers;
    let sliding: Vec<bool> = match window {
        Some(_) if pattern > 0 => (0..n).map(|l| l % pattern < pattern - 1).collect(),
        Some(_) => vec![true; n],
        None => vec![false; n],
    };
    let big = matches!((arch, n), ("gemma2", 46) | ("gemma3", 62));
    let width = if big && config.heads > 0 {
        config.d_model / config.heads
    } else {
        config.head_dim
    };
    let (attn_softcap, final_softcap) = match arch {
        "gemma2" => (
            Some(f64_at("attn_logit_softcapping")?.unwrap_or(50.0)),
            Some(f64_at("final_logit_softcapping")?.unwrap_or(30.0)),
        ),
        "gemma3" => (None, f64_at("final_logit_softcapping")?),
        _ => (None, None),
    };
    for (name, cap) in [
        ("attn_logit_softcapping", attn_softcap),
        ("final_logit_softcapping", final_softcap),
    ] {
        if let Some(x) = cap.filter(|x| !(x.is_finite() && *x > 0.0)) {
            anyhow::bail!(
                "{}: metadata {arch}.{name} = {x} must be a finite number above 0",
                file.display()
            );
        }
    }
    let local_rope_base = match arch {
        "gemma3" => Some(f64_at("rope.freq_base_swa")?.unwrap_or(10_000.0)),
        _ => None,
    };
    if let Some(b) = local_rope_base.filter(|b| !(b.is_finite() && *b > 1.0)) {
        anyhow::bail!(
            "{}: metadata {arch}.rope.freq_base_swa = {b} must be finite and above 1",
            file.display()
        );
    }
    if let Some(w) = window.filter(|_| sliding.iter().any(|&s| s)) {
        config.context = config.context.min(w);
    }
    config.gemma = Some(GemmaSettings {
        embed_scale: (config.d_model as f64).sqrt(),
        score_scale: 1.0 / (width.max(1) as f64).sqrt(),
        attn_softcap,
        final_softcap: final_softcap.filter(|x| *x > 0.0),
        exact_gelu: false,
        sliding,
        local_rope_base: local_rope_base.filter(|b| *b != config.rope_base),
    });
    Ok(())
}
