//! GPT-2 (`gpt2`) and GPT-BigCode (`starcoder`: SantaCoder, StarCoderBase, tiny_starcoder) from
//! a `.gguf` file, as llama.cpp's converter writes them: GPT-2's block with learned positions
//! (`position_embd`), its weights under llama.cpp's names (`attn_norm`, `attn_qkv`,
//! `attn_output`, `ffn_norm`, `ffn_up`, `ffn_down`; `output` or the embedding as the head), the
//! fused projection's rows every query, then the keys, then the values — for GPT-BigCode one
//! key and one value shared by every head (`attention.head_count_kv` 1), repeated for each at
//! load as its folder's reader does — and a tanh GELU MLP.

use std::path::Path;

use anyhow::Result;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

use super::{conv, core, layer_pair, sized, Opened};
use crate::hf::family::Family;
use crate::hf::gguf_llama::meta_read::{meta_f64, meta_usize, optional};
use crate::hf::gpt2::qkv::gpt2_order;
use crate::hf::gpt2::{Block, Gpt2, Gpt2Config, Variant};
use crate::hf::limits::{MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_WIDTH};

/// A file's sizes as [`Gpt2Config`] names them, and whether its key and value are one head
/// shared by all (GPT-BigCode's multi-query attention).
fn sizes(
    c: &gguf_file::Content,
    arch: &str,
    vocab: usize,
    file: &Path,
) -> Result<(Gpt2Config, bool)> {
    let key = |k: &str| format!("{arch}.{k}");
    let size = |k: &str, max: usize| sized(c, &key(k), max, file);
    let heads = size("attention.head_count", MAX_HEADS)?;
    let config = Gpt2Config {
        vocab_size: vocab,
        n_positions: size("context_length", MAX_POSITIONS)?,
        n_embd: size("embedding_length", MAX_WIDTH)?,
        n_layer: size("block_count", MAX_LAYERS)?,
        n_head: heads,
        n_inner: Some(size("feed_forward_length", MAX_FF)?),
        layer_norm_epsilon: meta_f64(c, &key("attention.layer_norm_epsilon"), file)?,
        activation_function: "gelu_new".into(),
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        tie_word_embeddings: true,
    };
    config.check().map_err(|e| {
        anyhow::anyhow!("{}: {e} (read from its {arch}.* metadata)", file.display())
    })?;
    let kv = optional(c, &key("attention.head_count_kv"), file, meta_usize)?.unwrap_or(heads);
    // The projection's rows are every query, then kv keys, then kv values: one shared key and
    // value (kv = 1) or one per head are read; kv groups in between would need their own order.
    if kv != heads && kv != 1 {
        anyhow::bail!(
            "{}: metadata {arch}.attention.head_count_kv = {kv} of {heads} heads: only 1 (one key \
             and value shared by every head) or {heads} is supported",
            file.display()
        );
    }
    Ok((config, kv == 1 && heads > 1))
}

/// Every tensor the forward pass reads, with the shape (outermost first) `s` implies; the
/// fused projection `qkv` rows long.
fn expected_shapes(s: &Gpt2Config, qkv: usize, tied: bool) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (s.n_embd, s.ff(), s.vocab_size);
    let mut want = vec![
        ("token_embd.weight".to_string(), vec![v, d]),
        ("position_embd.weight".to_string(), vec![s.n_positions, d]),
        ("output_norm.weight".to_string(), vec![d]),
        ("output_norm.bias".to_string(), vec![d]),
    ];
    if !tied {
        want.push(("output.weight".to_string(), vec![v, d]));
    }
    for l in 0..s.n_layer {
        for (name, shape) in [
            ("attn_norm", vec![d]),
            ("attn_qkv", vec![qkv, d]),
            ("attn_output", vec![d, d]),
            ("ffn_norm", vec![d]),
            ("ffn_up", vec![f, d]),
            ("ffn_down", vec![d, f]),
        ] {
            // A bias as long as the weight's output (a norm's: its width).
            let out = shape.first().copied().unwrap_or(d);
            want.push((format!("blk.{l}.{name}.weight"), shape));
            want.push((format!("blk.{l}.{name}.bias"), vec![out]));
        }
    }
    want
}

/// Open the `gpt2` or `starcoder` file `path` (the caller read its architecture `arch`).
pub(super) fn open(path: &Path, arch: &str, device: &Device) -> Result<Gpt2> {
    let mut f = Opened::new(path)?;
    let (mut config, shared_kv) = sizes(&f.c, arch, f.vocab, path)?;
    let (d, h) = (config.n_embd, config.n_head);
    let kv_rows = if shared_kv { d / h } else { d };
    let tied = f.header.tensor("output.weight").is_none();
    let want = expected_shapes(&config, d + 2 * kv_rows, tied);
    // The shared key and value repeated for each head: this many weights more than the file
    // holds.
    let copies = 2 * (d - kv_rows) * (d + 1) * config.n_layer;
    let tokenizer = f.prepare(&want, (arch, d, tied), copies as u64)?;
    let parameters = f.parameters();
    let mut q = |name: &str| f.tensor(name, device);
    let order = |x: &Tensor| match shared_kv {
        true => gpt2_order(x, (d, h), Some(1)),
        false => Ok(x.clone()),
    };
    let blocks = (0..config.n_layer)
        .map(|l| read_block(&mut q, l, &order))
        .collect::<Result<Vec<_>>>()?;
    let core = core(&mut q, blocks, tied, parameters)?;
    let family = match arch {
        "starcoder" => Family::GptBigCode,
        _ => Family::Gpt2,
    };
    let variant = Variant::learned(family, q("position_embd.weight")?);
    config.tie_word_embeddings = tied;
    Gpt2::assemble(config, path, tokenizer, core, variant)
}

/// Layer `l`'s weights read by `q` as GPT-2's `Conv1D`s ([in, out]), the fused projection's
/// rows put in GPT-2's order by `order`.
fn read_block(
    q: &mut impl FnMut(&str) -> Result<Tensor>,
    l: usize,
    order: &impl Fn(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<Block> {
    let mut pair = |name: &str| layer_pair(q, l, name);
    let (w, b) = pair("attn_qkv")?;
    Ok(Block {
        ln_1: pair("attn_norm")?,
        c_attn: conv((order(&w)?, order(&b)?))?,
        c_proj: conv(pair("attn_output")?)?,
        ln_2: pair("ffn_norm")?,
        c_fc: conv(pair("ffn_up")?)?,
        mlp_proj: conv(pair("ffn_down")?)?,
    })
}
