//! Phi-2 (and phi-1, phi-1.5) from a `.gguf` file (`general.architecture` `phi2`), as
//! llama.cpp's converter writes it: the same parallel block as a Phi folder
//! ([`crate::hf::gpt2::phi`]), its
//! weights under llama.cpp's names (`blk.N.attn_norm`, `attn_q`/`attn_k`/`attn_v` or one fused
//! `attn_qkv` as older converters wrote it, `attn_output`, `ffn_up`, `ffn_down`; `output` with
//! its bias), RoPE on the first `phi2.rope.dimension_count` dimensions of each head, halves
//! rotated (NeoX's, so the converter leaves q and k unpermuted), and the byte-level BPE
//! tokenizer of its metadata. Every size is checked against the limits and every tensor's
//! shape against them before a weight is read; weights are dequantized to f32 and checked
//! finite.

use std::path::Path;

use anyhow::Result;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

use super::{conv, core, layer_pair, sized, Opened};
use crate::hf::family::Family;
use crate::hf::gguf_llama::meta_read::{meta_f64, meta_usize, optional, wrong_type};
use crate::hf::gpt2::phi::PhiConfig;
use crate::hf::gpt2::{Block, Gpt2, Rotary, Variant};
use crate::hf::limits::{MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_WIDTH};

/// The GGUF architecture this file reads.
pub const ARCH: &str = "phi2";

/// The sizes of a `phi2` file: its [`PhiConfig`] and the dimensions RoPE turns.
struct Phi2Sizes {
    config: PhiConfig,
    rope_dims: usize,
    rope_base: f64,
}

/// The sizes in `c`'s metadata (keys `phi2.*`), each within its limit, the vocabulary being
/// `vocab` (the rows of `token_embd.weight`); an error names the file and the key.
fn sizes(c: &gguf_file::Content, vocab: usize, file: &Path) -> Result<Phi2Sizes> {
    let key = |k: &str| format!("{ARCH}.{k}");
    let sized = |k: &str, max: usize| sized(c, &key(k), max, file);
    let layers = sized("block_count", MAX_LAYERS)?;
    let d = sized("embedding_length", MAX_WIDTH)?;
    let heads = sized("attention.head_count", MAX_HEADS)?;
    let ff = sized("feed_forward_length", MAX_FF)?;
    let context = sized("context_length", MAX_POSITIONS)?;
    let kv_heads = optional(c, &key("attention.head_count_kv"), file, meta_usize)?;
    let eps = meta_f64(c, &key("attention.layer_norm_epsilon"), file)?;
    let head = d / heads;
    let rope_dims = sized("rope.dimension_count", MAX_WIDTH)?;
    if head * heads != d || rope_dims > head || rope_dims % 2 == 1 {
        anyhow::bail!(
            "{}: metadata {ARCH}.embedding_length = {d}, attention.head_count = {heads} and \
             rope.dimension_count = {rope_dims} do not fit: the heads must divide the width and \
             RoPE turn an even number of a head's {head} dimensions",
            file.display()
        );
    }
    refuse_rope_scaling(c, file)?;
    let rope_base = optional(c, &key("rope.freq_base"), file, meta_f64)?.unwrap_or(10_000.0);
    let config = PhiConfig {
        vocab_size: vocab,
        hidden_size: d,
        intermediate_size: ff,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        num_key_value_heads: kv_heads,
        max_position_embeddings: context,
        layer_norm_eps: eps,
        hidden_act: "gelu_new".into(),
        tie_word_embeddings: false,
        qk_layernorm: false,
        rope_parameters: None,
        rope_theta: Some(rope_base),
        partial_rotary_factor: Some(rope_dims as f64 / head as f64),
        rope_scaling: None,
    };
    config.check().map_err(|e| {
        anyhow::anyhow!("{}: {e} (read from its {ARCH}.* metadata)", file.display())
    })?;
    Ok(Phi2Sizes {
        config,
        rope_dims,
        rope_base,
    })
}

/// A RoPE scaling other than none is refused by name: Phi-2 has none, and running a stretch
/// as if it were absent would measure another model.
fn refuse_rope_scaling(c: &gguf_file::Content, file: &Path) -> Result<()> {
    let name = format!("{ARCH}.rope.scaling.type");
    let Some(v) = c.metadata.get(&name) else {
        return Ok(());
    };
    let kind = v
        .to_string()
        .map_err(|e| wrong_type(file, &name, "a string", &e))?;
    if kind != "none" {
        anyhow::bail!(
            "{}: metadata {name} = {kind:?}: RoPE scaling is not supported for {ARCH}",
            file.display()
        );
    }
    Ok(())
}

/// Every tensor the forward pass reads, with the shape (outermost first) `s` implies.
fn expected_shapes(s: &PhiConfig, fused_qkv: bool, tied: bool) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (s.hidden_size, s.intermediate_size, s.vocab_size);
    let mut want = vec![
        ("token_embd.weight".to_string(), vec![v, d]),
        ("output_norm.weight".to_string(), vec![d]),
        ("output_norm.bias".to_string(), vec![d]),
        ("output.bias".to_string(), vec![v]),
    ];
    if !tied {
        want.push(("output.weight".to_string(), vec![v, d]));
    }
    let attention: &[(&str, Vec<usize>)] = if fused_qkv {
        &[("attn_qkv", vec![3 * d, d])]
    } else {
        &[
            ("attn_q", vec![d, d]),
            ("attn_k", vec![d, d]),
            ("attn_v", vec![d, d]),
        ]
    };
    let rest = [
        ("attn_norm", vec![d]),
        ("attn_output", vec![d, d]),
        ("ffn_up", vec![f, d]),
        ("ffn_down", vec![d, f]),
    ];
    for l in 0..s.num_hidden_layers {
        for (name, shape) in attention.iter().cloned().chain(rest.clone()) {
            // A bias as long as the weight's output (the norm's: its width).
            let out = shape.first().copied().unwrap_or(d);
            want.push((format!("blk.{l}.{name}.weight"), shape));
            want.push((format!("blk.{l}.{name}.bias"), vec![out]));
        }
    }
    want
}

/// Open the `phi2` file `path` (the caller read its architecture). The header, the metadata's
/// sizes and every tensor's shape are checked before a weight is read, and the weights
/// against the memory free; every weight is checked finite.
pub(super) fn open(mut f: Opened, device: &Device) -> Result<Gpt2> {
    let path = &f.path.clone();
    let s = sizes(&f.c, f.vocab, path)?;
    let tied = f.header.tensor("output.weight").is_none();
    let fused_qkv = f.header.tensor("blk.0.attn_qkv.weight").is_some();
    let want = expected_shapes(&s.config, fused_qkv, tied);
    let tokenizer = f.prepare(&want, (ARCH, s.config.hidden_size, tied), 0)?;
    let parameters = f.parameters();
    let mut q = |name: &str| f.tensor(name, device);
    let blocks = (0..s.config.num_hidden_layers)
        .map(|l| read_block(&mut q, l, fused_qkv))
        .collect::<Result<Vec<_>>>()?;
    let core = core(&mut q, blocks, (tied, true), parameters)?;
    let variant = Variant {
        family: Family::Phi,
        wpe: None,
        rotary: Some(Rotary::new(s.rope_dims, s.rope_base)),
        parallel: true,
        head_bias: Some(q("output.bias")?),
        alibi: None,
        embed_norm: None,
    };
    let mut config = s.config.gpt2_config();
    config.tie_word_embeddings = tied;
    Gpt2::assemble(config, path, tokenizer, core, variant)
}

/// Layer `l`'s weights read by `q` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side
/// (as one fused tensor holds them); the one LayerNorm both attention and the MLP read.
fn read_block(
    q: &mut impl FnMut(&str) -> Result<Tensor>,
    l: usize,
    fused_qkv: bool,
) -> Result<Block> {
    let mut pair = |name: &str| layer_pair(q, l, name);
    let c_attn = if fused_qkv {
        conv(pair("attn_qkv")?)?
    } else {
        let parts = ["attn_q", "attn_k", "attn_v"]
            .iter()
            .map(|p| conv(pair(p)?))
            .collect::<Result<Vec<_>>>()?;
        let ws: Vec<&Tensor> = parts.iter().map(|p| &p.0).collect();
        let bs: Vec<&Tensor> = parts.iter().map(|p| &p.1).collect();
        (Tensor::cat(&ws, 1)?, Tensor::cat(&bs, 0)?)
    };
    let norm = pair("attn_norm")?;
    Ok(Block {
        ln_1: norm.clone(),
        c_attn,
        c_proj: conv(pair("attn_output")?)?,
        ln_2: norm,
        c_fc: conv(pair("ffn_up")?)?,
        mlp_proj: conv(pair("ffn_down")?)?,
    })
}
