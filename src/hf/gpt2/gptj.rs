//! GPT-J decoders (`model_type` `gptj`: EleutherAI's GPT-J-6B and the models built on it,
//! GPT4All-J, Pygmalion-6B, CodeGen-style finetunes saved as GPT-J) from a Hugging Face folder.
//! Phi's parallel block (one LayerNorm read by attention and the MLP side by side) with q, k
//! and v apart and without biases, an output projection without a bias, RoPE on the first
//! `rotary_dim` dimensions of each head with pairs interleaved (transformers'
//! `rotate_every_two`, not NeoX's halves), a tanh-GELU MLP (`fc_in`, `fc_out`) and an untied
//! head with a bias.
//!
//! CodeGen decoders (`model_type` `codegen`: Salesforce's codegen-350M … 16B, mono, multi and
//! nl) are the same model with q, k and v in one `qkv_proj` laid out for the 4 shards CodeGen
//! was trained on: four blocks of rows, each its share of the heads' queries, then values, then
//! keys ([`codegen_order`]).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::{load_core, unprefixed, Block, Gpt2, Gpt2Config, Rotary, Variant};
use crate::hf::limits::{heads_divide, in_range};

/// The fields of a GPT-J `config.json` beyond GPT-2's.
#[derive(Clone, Debug, Deserialize)]
pub struct GptjConfig {
    /// The sizes, named as GPT-2 names them (`n_embd`, `n_head`, `n_layer`, `n_positions`,
    /// `n_inner`, `activation_function`, `layer_norm_epsilon`, `tie_word_embeddings`).
    #[serde(flatten)]
    pub sizes: Gpt2Config,
    /// Dimensions of each head RoPE turns (all of them when absent).
    #[serde(default)]
    pub rotary_dim: Option<usize>,
}

impl GptjConfig {
    /// Every size, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        let s = &self.sizes;
        self.sizes.check()?;
        heads_divide(("n_embd", s.n_embd), ("n_head", s.n_head))?;
        let head = s.n_embd / s.n_head.max(1);
        let dims = in_range("rotary_dim", self.dims(), 2, head)?;
        if dims % 2 == 1 {
            return Err(format!("rotary_dim = {dims} must be even"));
        }
        Ok(())
    }

    /// Dimensions RoPE turns.
    fn dims(&self) -> usize {
        let s = &self.sizes;
        self.rotary_dim.unwrap_or(s.n_embd / s.n_head.max(1))
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with the
    /// shape this config implies: q, k and v apart (GPT-J) or as CodeGen's one `qkv_proj`.
    fn expected_shapes(&self, fused: bool) -> Vec<(String, Vec<usize>)> {
        let s = &self.sizes;
        let (d, f, v) = (s.n_embd, s.ff(), s.vocab_size);
        let mut want = vec![
            ("wte.weight".to_string(), vec![v, d]),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
            ("lm_head.bias".to_string(), vec![v]),
        ];
        if !s.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        let attention = match fused {
            true => vec![("attn.qkv_proj.weight", vec![3 * d, d])],
            false => vec![
                ("attn.q_proj.weight", vec![d, d]),
                ("attn.k_proj.weight", vec![d, d]),
                ("attn.v_proj.weight", vec![d, d]),
            ],
        };
        for l in 0..s.n_layer {
            for (name, shape) in [("ln_1.weight", vec![d]), ("ln_1.bias", vec![d])]
                .into_iter()
                .chain(attention.iter().cloned())
                .chain([
                    ("attn.out_proj.weight", vec![d, d]),
                    ("mlp.fc_in.weight", vec![f, d]),
                    ("mlp.fc_in.bias", vec![f]),
                    ("mlp.fc_out.weight", vec![d, f]),
                    ("mlp.fc_out.bias", vec![d]),
                ])
            {
                want.push((format!("h.{l}.{name}"), shape));
            }
        }
        want
    }
}

impl Gpt2 {
    /// Open the folder `dir` of a GPT-J model. The config is checked against the limits and
    /// the safetensors header before any weight is read; every weight is checked finite.
    pub fn open_gptj(dir: &Path, device: &Device) -> Result<Self> {
        Self::open_gptj_like(dir, device, Family::GptJ)
    }

    /// Open the folder `dir` of a CodeGen model, checked as [`Gpt2::open_gptj`]'s.
    pub fn open_codegen(dir: &Path, device: &Device) -> Result<Self> {
        Self::open_gptj_like(dir, device, Family::CodeGen)
    }

    /// A GPT-J (`family` [`Family::GptJ`]) or CodeGen folder.
    fn open_gptj_like(dir: &Path, device: &Device, family: Family) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let codegen = family == Family::CodeGen;
        let name = if codegen { "CodeGen" } else { "GPT-J" };
        let gptj: GptjConfig = folder::read_config(&cfg_path, name)?;
        gptj.check()
            .and_then(|()| match codegen {
                true => gptj.check_shards(),
                false => Ok(()),
            })
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = gptj.sizes.clone();
        let want = gptj.expected_shapes(codegen);
        let names = ["wte.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"];
        let spec = (&config, want.as_slice(), unprefixed as fn(&str) -> &str);
        let block = |t: &mut HashMap<String, Tensor>, l: usize, file: &Path| {
            read_gptj_block(t, (l, file), codegen)
        };
        let mut read = load_core(dir, device, spec, names, block)?;
        let variant = Variant {
            family,
            wpe: None,
            rotary: Some(Rotary::interleaved(gptj.dims(), 10_000.0)),
            parallel: true,
            head_bias: Some(read.take("lm_head.bias")?),
            alibi: None,
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// CodeGen's shards: its `qkv_proj` is cut in 4 blocks of rows, each a share of the heads.
const CODEGEN_SHARDS: usize = 4;

impl GptjConfig {
    /// CodeGen's heads fall evenly into its [`CODEGEN_SHARDS`] shards.
    fn check_shards(&self) -> Result<(), String> {
        let h = self.sizes.n_head;
        match h % CODEGEN_SHARDS {
            0 => Ok(()),
            _ => Err(format!(
                "n_head {h} is not a multiple of CodeGen's {CODEGEN_SHARDS} shards"
            )),
        }
    }
}

/// CodeGen's `qkv_proj` weight [3d, d] in GPT-2's order (every query, then every key, then
/// every value): its rows are [`CODEGEN_SHARDS`] blocks, each its h/4 heads' queries, then
/// values, then keys, and head i of shard m is head m·h/4 + i (transformers'
/// `CodeGenAttention`), so each part's shards in turn are that part's heads in order.
fn codegen_order(w: &Tensor) -> candle_core::Result<Tensor> {
    let (rows, d) = w.dims2()?;
    let local = rows / (3 * CODEGEN_SHARDS);
    let parts = w.reshape((CODEGEN_SHARDS, 3, local, d))?;
    let part = |i: usize| parts.narrow(1, i, 1)?.reshape((CODEGEN_SHARDS * local, d));
    Tensor::cat(&[part(0)?, part(2)?, part(1)?], 0)
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side
/// in `c_attn` with zero biases (from CodeGen's `qkv_proj`, reordered, where `codegen`, or
/// GPT-J's three); the one LayerNorm both attention and the MLP read.
fn read_gptj_block(
    t: &mut HashMap<String, Tensor>,
    (l, file): (usize, &Path),
    codegen: bool,
) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("h.{l}.{name}"), file);
    let conv = |w: Tensor| -> Result<Tensor> { Ok(w.t()?.contiguous()?) };
    let ws = match codegen {
        true => vec![conv(codegen_order(&take("attn.qkv_proj.weight")?)?)?],
        false => ["q_proj", "k_proj", "v_proj"]
            .iter()
            .map(|p| conv(take(&format!("attn.{p}.weight"))?))
            .collect::<Result<Vec<_>>>()?,
    };
    let out = conv(take("attn.out_proj.weight")?)?;
    let d = out.dim(0)?;
    let zeros = |n: usize| Tensor::zeros(n, DType::F32, out.device());
    let (qkv_bias, out_bias) = (zeros(3 * d)?, zeros(d)?);
    let norm = (take("ln_1.weight")?, take("ln_1.bias")?);
    Ok(Block {
        ln_1: norm.clone(),
        c_attn: (Tensor::cat(&ws, 1)?, qkv_bias),
        c_proj: (out, out_bias),
        ln_2: norm,
        c_fc: (conv(take("mlp.fc_in.weight")?)?, take("mlp.fc_in.bias")?),
        mlp_proj: (conv(take("mlp.fc_out.weight")?)?, take("mlp.fc_out.bias")?),
    })
}
