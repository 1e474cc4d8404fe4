//! StarCoder2 decoders (`model_type` `starcoder2`: BigCode's StarCoder2-3B, 7B and 15B, and
//! the code models fine-tuned from them) from a Hugging Face folder: `config.json`,
//! `model.safetensors` (names under `model.`) and GPT-2's byte-level BPE `tokenizer.json`.
//! StarCoder2 is GPT-2's pre-LayerNorm block (LayerNorms with biases, a tanh-GELU MLP `c_fc`,
//! `c_proj` with biases) with q, k and v apart (biases where `use_bias`), grouped keys and
//! values (`num_key_value_heads`: each key and value head repeated for the queries of its
//! group at load, as `repeat_kv` does), RoPE on every dimension of each head with the halves
//! turned together (`rope_theta`, about 10⁶ in the releases) and a head tied to the embedding
//! unless the config says not. Its sliding window (4,096 in the releases) is taken as the
//! context, as for Mistral: a text no longer than it is computed exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::qkv::repeat_kv;
use crate::hf::gpt2::rotary::rope_base;
use crate::hf::gpt2::{
    load_core_copying, model_unprefixed, Affine, Block, Gpt2, Gpt2Config, Rotary, Variant,
};
use crate::hf::limits::{
    heads_divide, in_range, kv_groups, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS,
    MAX_VOCAB, MAX_WIDTH,
};

/// The fields of a StarCoder2 `config.json` the forward pass needs.
#[derive(Clone, Debug, Deserialize)]
pub struct Starcoder2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (as many as the query heads when absent).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// The MLP's activation (`gelu_pytorch_tanh` in every release).
    #[serde(default = "gelu_tanh")]
    pub hidden_act: String,
    /// Positions.
    #[serde(default = "positions")]
    pub max_position_embeddings: usize,
    /// LayerNorm ε.
    #[serde(default = "eps")]
    pub norm_epsilon: f64,
    /// RoPE's base, older configs.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// RoPE's settings, transformers 5.
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    /// RoPE scaling, older configs (refused).
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// The sliding window, taken as the context where it is shorter.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Biases on every projection (zeros where absent).
    #[serde(default = "yes")]
    pub use_bias: bool,
    /// Whether the output head is the token embedding.
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn gelu_tanh() -> String {
    "gelu_pytorch_tanh".into()
}
fn positions() -> usize {
    4096
}
fn eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

impl Starcoder2Config {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        let d = in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        let h = in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        heads_divide(("hidden_size", d), ("num_attention_heads", h))?;
        kv_groups("num_key_value_heads", self.kv_heads(), h)?;
        if (d / h) % 2 == 1 {
            return Err(format!(
                "a head of {} dimensions cannot be turned by RoPE",
                d / h
            ));
        }
        in_range("intermediate_size", self.intermediate_size, 1, MAX_FF)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        if let Some(w) = self.sliding_window {
            in_range("sliding_window", w, 1, MAX_POSITIONS)?;
        }
        positive_eps("norm_epsilon", self.norm_epsilon)?;
        if (self.rope_scaling.as_ref()).is_some_and(|v| !v.is_null()) {
            return Err("rope_scaling is not supported for StarCoder2".into());
        }
        self.base()?;
        self.gpt2_config().check()
    }

    /// Key/value heads.
    fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// RoPE's base ([`rope_base`]).
    fn base(&self) -> Result<f64, String> {
        rope_base(self.rope_theta, self.rope_parameters.as_ref(), "StarCoder2")
    }

    /// The same model as [`Gpt2`] reads its sizes, its context the sliding window where that
    /// is shorter.
    fn gpt2_config(&self) -> Gpt2Config {
        let window = self.sliding_window.unwrap_or(usize::MAX);
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.max_position_embeddings.min(window),
            n_embd: self.hidden_size,
            n_layer: self.num_hidden_layers,
            n_head: self.num_attention_heads,
            n_inner: Some(self.intermediate_size),
            layer_norm_epsilon: self.norm_epsilon,
            activation_function: self.hidden_act.clone(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// Every tensor the forward pass reads (names without the `model.` prefix), with the shape
    /// this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let kv_rows = self.kv_heads() * (d / self.num_attention_heads.max(1));
        let mut want = vec![
            ("embed_tokens.weight".to_string(), vec![v, d]),
            ("norm.weight".to_string(), vec![d]),
            ("norm.bias".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.num_hidden_layers {
            let mut layer = Vec::with_capacity(16);
            for (name, out, inp) in [
                ("self_attn.q_proj", d, d),
                ("self_attn.k_proj", kv_rows, d),
                ("self_attn.v_proj", kv_rows, d),
                ("self_attn.o_proj", d, d),
                ("mlp.c_fc", f, d),
                ("mlp.c_proj", d, f),
            ] {
                layer.push((format!("{name}.weight"), vec![out, inp]));
                if self.use_bias {
                    layer.push((format!("{name}.bias"), vec![out]));
                }
            }
            for norm in ["input_layernorm", "post_attention_layernorm"] {
                layer.push((format!("{norm}.weight"), vec![d]));
                layer.push((format!("{norm}.bias"), vec![d]));
            }
            want.extend(
                layer
                    .into_iter()
                    .map(|(n, s)| (format!("layers.{l}.{n}"), s)),
            );
        }
        want
    }
}

impl Gpt2 {
    /// Open the folder `dir` of a StarCoder2 model. The config is checked against the limits
    /// and the safetensors header before any weight is read; every weight is checked finite.
    pub fn open_starcoder2(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let sc: Starcoder2Config = folder::read_config(&cfg_path, "StarCoder2")?;
        let base = sc
            .check()
            .and_then(|()| sc.base())
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = sc.gpt2_config();
        let want = sc.expected_shapes();
        let (d, h, kv) = (sc.hidden_size, sc.num_attention_heads, sc.kv_heads());
        // The shared keys and values repeated for each head: this many weights more than the
        // file holds.
        let copies = 2 * (d - kv * (d / h)) * (d + 1) * sc.num_hidden_layers;
        let names = [
            "embed_tokens.weight",
            "norm.weight",
            "norm.bias",
            "lm_head.weight",
        ];
        let bias = sc.use_bias;
        let read = load_core_copying(
            dir,
            device,
            (&config, &want, model_unprefixed),
            (names, copies as u64),
            |t, l, f| read_starcoder2_block(t, (l, f), (d, h, kv), bias),
        )?;
        let variant = Variant {
            family: Family::Starcoder2,
            wpe: None,
            rotary: Some(Rotary::new(d / h, base)),
            parallel: false,
            head_bias: None,
            alibi: None,
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side
/// in `c_attn`, each of the `kv` key and value heads repeated for the queries of its group;
/// zero biases where the config has none (`bias` false).
fn read_starcoder2_block(
    t: &mut HashMap<String, Tensor>,
    (l, file): (usize, &Path),
    (d, h, kv): (usize, usize, usize),
    bias: bool,
) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("layers.{l}.{name}"), file);
    // A Linear's weight [out, in] and bias [out] (zeros without biases).
    let mut linear = |name: &str| super::linear(&mut take, name, bias);
    let conv = |(w, b): (Tensor, Tensor)| -> Result<Affine> { Ok((w.t()?.contiguous()?, b)) };
    let parts = ["q_proj", "k_proj", "v_proj"]
        .iter()
        .map(|p| linear(&format!("self_attn.{p}")))
        .collect::<Result<Vec<_>>>()?;
    let (ws, bs): (Vec<Tensor>, Vec<Tensor>) = parts.into_iter().unzip();
    let c_attn = (
        repeat_kv(&Tensor::cat(&ws, 0)?, (d, h), kv)?,
        repeat_kv(&Tensor::cat(&bs, 0)?, (d, h), kv)?,
    );
    let c_proj = conv(linear("self_attn.o_proj")?)?;
    let (c_fc, mlp_proj) = (conv(linear("mlp.c_fc")?)?, conv(linear("mlp.c_proj")?)?);
    let mut norm = |name: &str| -> Result<Affine> {
        Ok((
            take(&format!("{name}.weight"))?,
            take(&format!("{name}.bias"))?,
        ))
    };
    Ok(Block {
        ln_1: norm("input_layernorm")?,
        c_attn: conv(c_attn)?,
        c_proj,
        ln_2: norm("post_attention_layernorm")?,
        c_fc,
        mlp_proj,
    })
}
