//! The hyper-parameters of a GGUF LLaMA checked before anything is built from them: each
//! within sane limits ([`crate::hf::limits`]), consistent with each other (heads divide the
//! width, key/value heads divide the heads), and with the tensors the header lists (every
//! layer's weights present with the shapes the metadata implies). `head_count = 0` (a division
//! by zero) or `block_count = u32::MAX` (a vector of four billion layers) end here with the
//! file and the key named.

use std::collections::HashMap;
use std::path::Path;

use crate::hf::gguf_llama::header::{GgufError, GgufHeader};
use crate::hf::gguf_llama::LlamaConfig;
use crate::hf::limits::{
    in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH,
};

/// Check `config` against the limits and against `header`'s tensors; returns the vocabulary
/// (the rows of `token_embd.weight`).
pub fn check_model(
    config: &LlamaConfig,
    header: &GgufHeader,
    file: &Path,
) -> Result<usize, GgufError> {
    let err = |problem: String| GgufError {
        path: file.to_path_buf(),
        problem,
    };
    check_sizes(config).map_err(|p| err(format!("metadata {p}")))?;
    check_tensors(config, header).map_err(err)
}

/// Every size within its limit, and the sizes consistent.
fn check_sizes(c: &LlamaConfig) -> Result<(), String> {
    let a = c.arch;
    in_range(&format!("{a}.block_count"), c.layers, 1, MAX_LAYERS)?;
    in_range(&format!("{a}.embedding_length"), c.d_model, 1, MAX_WIDTH)?;
    in_range(&format!("{a}.attention.head_count"), c.heads, 1, MAX_HEADS)?;
    in_range(
        &format!("{a}.attention.head_count_kv"),
        c.kv_heads,
        1,
        c.heads,
    )?;
    in_range(&format!("{a}.feed_forward_length"), c.ff, 1, MAX_FF)?;
    in_range(&format!("{a}.context_length"), c.context, 1, MAX_POSITIONS)?;
    let eps_key = match c.layer_norm {
        true => "layer_norm_epsilon",
        false => "layer_norm_rms_epsilon",
    };
    positive_eps(&format!("{a}.attention.{eps_key}"), c.rms_eps)?;
    if c.head_dim == 0 {
        return Err(format!(
            "{a}.embedding_length = {} is not a multiple of {a}.attention.head_count = {} \
             (and no {a}.attention.key_length names the head width)",
            c.d_model, c.heads
        ));
    }
    in_range(
        &format!("{a}.attention.key_length"),
        c.head_dim,
        2,
        MAX_WIDTH,
    )?;
    in_range(
        &format!("{a}.attention.head_count × key_length"),
        c.q_width(),
        2,
        MAX_WIDTH,
    )?;
    if !c.head_dim.is_multiple_of(2) {
        return Err(format!(
            "the head width {} ({a}.attention.key_length, or {a}.embedding_length / \
             {a}.attention.head_count) is odd (RoPE needs an even head width)",
            c.head_dim
        ));
    }
    if !c.heads.is_multiple_of(c.kv_heads) {
        return Err(format!(
            "{a}.attention.head_count = {} is not a multiple of \
             {a}.attention.head_count_kv = {}",
            c.heads, c.kv_heads
        ));
    }
    if !(c.rope_base.is_finite() && c.rope_base > 1.0) {
        return Err(format!(
            "{a}.rope.freq_base = {} must be finite and above 1",
            c.rope_base
        ));
    }
    Ok(())
}

/// Every tensor the forward pass reads, present with the shape the metadata implies.
fn check_tensors(c: &LlamaConfig, header: &GgufHeader) -> Result<usize, String> {
    let embed = header
        .tensor("token_embd.weight")
        .ok_or("tensor token_embd.weight is missing")?;
    let vocab = match embed.shape.as_slice() {
        [v, d] if *d == c.d_model => {
            in_range("the vocabulary (token_embd.weight rows)", *v, 1, MAX_VOCAB)?
        }
        s => {
            return Err(format!(
                "tensor token_embd.weight has shape {s:?}; {}.embedding_length = {} needs \
                 [vocabulary, {}]",
                c.arch, c.d_model, c.d_model
            ))
        }
    };
    let (d, dh) = (c.d_model, c.head_dim);
    // OLMo 1's LayerNorms have no weights; StableLM's have biases.
    let mut want: Vec<(String, Vec<usize>)> = match c.arch {
        "olmo" => vec![],
        "stablelm" => vec![
            ("output_norm.weight".into(), vec![d]),
            ("output_norm.bias".into(), vec![d]),
        ],
        _ => vec![("output_norm.weight".into(), vec![d])],
    };
    for (name, n) in [
        ("rope_freqs.weight", dh / 2),
        ("rope_factors_short.weight", c.rope_dims / 2),
        ("rope_factors_long.weight", c.rope_dims / 2),
    ] {
        if header.tensor(name).is_some() {
            want.push((name.into(), vec![n]));
        }
    }
    if header.tensor("output.weight").is_some() {
        want.push(("output.weight".into(), vec![vocab, d]));
    }
    for l in 0..c.layers {
        want.extend(layer_tensors(c, l));
    }
    let by_name: HashMap<&str, &Vec<usize>> = header
        .tensors
        .iter()
        .map(|t| (t.name.as_str(), &t.shape))
        .collect();
    // A tensor the forward does not read changes nothing in it: extra layers (blk.7.* under
    // block_count 7) ran on part of the model and said nothing.
    if let Some(extra) = header
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .find(|n| *n != "token_embd.weight" && !want.iter().any(|(w, _)| w == n))
    {
        return Err(format!(
            "tensor {extra} is not one this {} forward reads (the metadata says {} layers); \
             refusing to run without it",
            c.arch, c.layers
        ));
    }
    for (name, shape) in want {
        let t = by_name.get(name.as_str()).ok_or_else(|| {
            format!(
                "tensor {name} is missing (the metadata says {} layers)",
                c.layers
            )
        })?;
        if **t != shape {
            return Err(format!(
                "tensor {name} has shape {t:?}, the metadata needs {shape:?}"
            ));
        }
    }
    Ok(vocab)
}

/// Layer `l`'s tensors with the shapes the metadata implies: q, k, v and gate, up apart or
/// fused (Phi-3), the biases of Qwen2 and the q/k norms of Qwen3.
fn layer_tensors(c: &LlamaConfig, l: usize) -> Vec<(String, Vec<usize>)> {
    let (d, ff, dh, qd) = (c.d_model, c.ff, c.head_dim, c.q_width());
    let kv = c.kv_heads * dh;
    let mut want = Vec::new();
    let mut names = vec![("attn_output", vec![d, qd]), ("ffn_down", vec![d, ff])];
    if c.pre_norms() && c.arch != "olmo" {
        names.extend([("attn_norm", vec![d]), ("ffn_norm", vec![d])]);
    }
    if c.arch == "stablelm" {
        for name in ["attn_norm", "ffn_norm"] {
            want.push((format!("blk.{l}.{name}.bias"), vec![d]));
        }
    }
    if c.fused() {
        names.extend([
            ("attn_qkv", vec![qd + 2 * kv, d]),
            ("ffn_up", vec![2 * ff, d]),
        ]);
    } else {
        names.extend([
            ("attn_q", vec![qd, d]),
            ("attn_k", vec![kv, d]),
            ("attn_v", vec![kv, d]),
            ("ffn_gate", vec![ff, d]),
            ("ffn_up", vec![ff, d]),
        ]);
    }
    for (name, shape) in names {
        want.push((format!("blk.{l}.{name}.weight"), shape));
    }
    if c.qkv_bias() {
        for (name, shape) in [("attn_q", qd), ("attn_k", kv), ("attn_v", kv)] {
            want.push((format!("blk.{l}.{name}.bias"), vec![shape]));
        }
    }
    if c.qk_norm() {
        // OLMo 2's span all heads; Qwen3's and Gemma 3's one head.
        let (qn, kn) = if c.pre_norms() { (dh, dh) } else { (qd, kv) };
        for (name, n) in [("attn_q_norm", qn), ("attn_k_norm", kn)] {
            want.push((format!("blk.{l}.{name}.weight"), vec![n]));
        }
    }
    if c.post_norms() {
        for name in ["post_attention_norm", "post_ffw_norm"] {
            want.push((format!("blk.{l}.{name}.weight"), vec![d]));
        }
    }

    want
}
