//! The sizes every LLaMA-family `config.json` names (Gemma's and OLMo 2's too), checked in one
//! place: limits, key/value heads dividing the heads, heads of even width.

use crate::hf::limits::{
    in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH,
};

/// The sizes every LLaMA-family `config.json` names (Gemma's and OLMo 2's too).
pub(super) struct Shape {
    pub(super) vocab: usize,
    pub(super) hidden: usize,
    pub(super) ff: usize,
    pub(super) layers: usize,
    pub(super) heads: usize,
    pub(super) kv_heads: usize,
    /// `head_dim`, when the config names one (else hidden_size / heads, which must be even).
    pub(super) head_dim: Option<usize>,
    pub(super) positions: usize,
    pub(super) eps: f64,
}

/// Each size of `s` within its limit and the sizes consistent (key/value heads dividing the
/// heads, heads of even width), or the first problem in a sentence naming the key.
pub(super) fn check_shape(s: &Shape) -> Result<(), String> {
    in_range("vocab_size", s.vocab, 1, MAX_VOCAB)?;
    in_range("hidden_size", s.hidden, 1, MAX_WIDTH)?;
    in_range("intermediate_size", s.ff, 1, MAX_FF)?;
    in_range("num_hidden_layers", s.layers, 1, MAX_LAYERS)?;
    let h = in_range("num_attention_heads", s.heads, 1, MAX_HEADS)?;
    let kvh = in_range("num_key_value_heads", s.kv_heads, 1, h)?;
    in_range("max_position_embeddings", s.positions, 1, MAX_POSITIONS)?;
    positive_eps("rms_norm_eps", s.eps)?;
    if s.head_dim.is_none() && !s.hidden.is_multiple_of(2 * h) {
        return Err(format!(
            "hidden_size {} is not a multiple of {h} heads (num_attention_heads) of even width",
            s.hidden
        ));
    }
    if h % kvh != 0 {
        return Err(format!(
            "num_attention_heads {h} is not a multiple of num_key_value_heads {kvh}"
        ));
    }
    if let Some(dh) = s.head_dim {
        in_range("head_dim", dh, 2, MAX_WIDTH)?;
        in_range("num_attention_heads × head_dim", h * dh, 2, MAX_WIDTH)?;
        if dh % 2 != 0 {
            return Err(format!("head_dim {dh} is odd (RoPE rotates pairs)"));
        }
    }
    Ok(())
}
