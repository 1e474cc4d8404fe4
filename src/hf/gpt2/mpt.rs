//! MPT decoders (`model_type` `mpt`: MosaicML's mpt-7b, mpt-7b-instruct, mpt-7b-storywriter,
//! mpt-30b) from a Hugging Face folder: GPT-2's pre-LayerNorm block with no biases anywhere
//! (its LayerNorms have a weight only), one fused `Wqkv` projection (every query, then the keys,
//! then the values: GPT-2's order), an MLP of the exact GELU (`up_proj`, `down_proj`), a head
//! tied to the embedding, and ALiBi for positions with MPT's own slopes
//! ([`mpt_alibi_slopes`]). transformers' MPT runs only that shape; what it would ignore is
//! refused naming the key, since running it as if absent would measure another model: q/k
//! LayerNorms (`qk_ln`), clipping (`clip_qkv`), a scaled softmax or logits, biases (`no_bias`
//! false), learned positions instead of ALiBi, an RMSNorm.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::alibi::{mpt_alibi_slopes, Alibi};
use crate::hf::gpt2::{load_core, Affine, Block, CoreNames, Gpt2, Gpt2Config, Variant};
use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

/// The fields of an MPT `config.json` the forward pass needs, with MPT's defaults.
#[derive(Clone, Debug, Deserialize)]
pub struct MptConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub d_model: usize,
    /// Heads.
    pub n_heads: usize,
    /// Layers.
    pub n_layers: usize,
    /// Positions (the context).
    #[serde(default = "positions")]
    pub max_seq_len: usize,
    /// The MLP's width over d.
    #[serde(default = "four")]
    pub expansion_ratio: usize,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_epsilon: f64,
    /// No bias on any projection or norm.
    #[serde(default = "yes")]
    pub no_bias: bool,
    /// "low_precision_layernorm" or "layernorm" (both a LayerNorm in f32 here).
    #[serde(default = "layernorm")]
    pub norm_type: String,
    /// A factor on the logits (refused unless absent).
    #[serde(default)]
    pub logit_scale: Option<serde_json::Value>,
    /// Attention's settings.
    #[serde(default)]
    pub attn_config: AttnConfig,
    /// Whether the output head is the token embedding (MPT's always is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

/// MPT's `attn_config`.
#[derive(Clone, Debug, Deserialize)]
pub struct AttnConfig {
    /// ALiBi for positions (else learned positions, which transformers' MPT does not run).
    #[serde(default = "yes")]
    pub alibi: bool,
    /// ALiBi's largest exponent b (slopes 2^(−b·i/n)).
    #[serde(default = "eight")]
    pub alibi_bias_max: f64,
    /// Clipping of q, k and v.
    #[serde(default)]
    pub clip_qkv: Option<f64>,
    /// LayerNorms of the queries and keys.
    #[serde(default)]
    pub qk_ln: bool,
    /// The scores' scale (1/√d_h when absent).
    #[serde(default)]
    pub softmax_scale: Option<f64>,
}

impl Default for AttnConfig {
    fn default() -> Self {
        Self {
            alibi: true,
            alibi_bias_max: 8.0,
            clip_qkv: None,
            qk_ln: false,
            softmax_scale: None,
        }
    }
}

fn positions() -> usize {
    2048
}
fn four() -> usize {
    4
}
fn eight() -> f64 {
    8.0
}
fn ln_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}
fn layernorm() -> String {
    "low_precision_layernorm".into()
}

impl MptConfig {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        let d = in_range("d_model", self.d_model, 1, MAX_WIDTH)?;
        in_range("n_layers", self.n_layers, 1, MAX_LAYERS)?;
        let h = in_range("n_heads", self.n_heads, 1, MAX_HEADS)?;
        heads_divide(("d_model", d), ("n_heads", h))?;
        in_range("expansion_ratio × d_model", self.ff(), 1, MAX_FF)?;
        in_range("max_seq_len", self.max_seq_len, 1, MAX_POSITIONS)?;
        positive_eps("layer_norm_epsilon", self.layer_norm_epsilon)?;
        let a = &self.attn_config;
        let refused = |what: &str| Err(format!("{what} is not supported for MPT"));
        if !a.alibi {
            return refused("attn_config.alibi = false (learned positions)");
        }
        if !(a.alibi_bias_max.is_finite() && a.alibi_bias_max > 0.0) {
            return Err(format!(
                "attn_config.alibi_bias_max = {} must be a finite number above 0",
                a.alibi_bias_max
            ));
        }
        if a.qk_ln {
            return refused("attn_config.qk_ln = true (LayerNorms of q and k)");
        }
        if let Some(c) = a.clip_qkv {
            return refused(&format!("attn_config.clip_qkv = {c}"));
        }
        let dh = (d / h) as f64;
        if a.softmax_scale
            .is_some_and(|s| (s - 1.0 / dh.sqrt()).abs() > 1e-9)
        {
            return refused("attn_config.softmax_scale other than 1/√d_h");
        }
        if !self.no_bias {
            return refused("no_bias = false (biases)");
        }
        if self.logit_scale.as_ref().is_some_and(|v| !v.is_null()) {
            return refused("logit_scale");
        }
        if !matches!(
            self.norm_type.as_str(),
            "low_precision_layernorm" | "layernorm"
        ) {
            return refused(&format!("norm_type {:?}", self.norm_type));
        }
        if !self.tie_word_embeddings {
            return refused("tie_word_embeddings = false");
        }
        self.gpt2_config().check()
    }

    /// MLP width.
    fn ff(&self) -> usize {
        self.expansion_ratio.saturating_mul(self.d_model)
    }

    /// The same model as [`Gpt2`] reads its sizes.
    fn gpt2_config(&self) -> Gpt2Config {
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.max_seq_len,
            n_embd: self.d_model,
            n_layer: self.n_layers,
            n_head: self.n_heads,
            n_inner: Some(self.ff()),
            layer_norm_epsilon: self.layer_norm_epsilon,
            activation_function: "gelu".into(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: true,
        }
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with the
    /// shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.d_model, self.ff(), self.vocab_size);
        let mut want = vec![
            ("wte.weight".to_string(), vec![v, d]),
            ("norm_f.weight".to_string(), vec![d]),
        ];
        for l in 0..self.n_layers {
            for (name, shape) in [
                ("norm_1.weight", vec![d]),
                ("attn.Wqkv.weight", vec![3 * d, d]),
                ("attn.out_proj.weight", vec![d, d]),
                ("norm_2.weight", vec![d]),
                ("ffn.up_proj.weight", vec![f, d]),
                ("ffn.down_proj.weight", vec![d, f]),
            ] {
                want.push((format!("blocks.{l}.{name}"), shape));
            }
        }
        want
    }
}

/// A tensor name without the `transformer.` prefix of `MptForCausalLM` exports.
fn unprefixed(name: &str) -> &str {
    name.strip_prefix("transformer.").unwrap_or(name)
}

impl Gpt2 {
    /// Open the folder `dir` of an MPT model. The config is checked against the limits and the
    /// safetensors header before any weight is read; every weight is checked finite.
    pub fn open_mpt(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let mpt: MptConfig = folder::read_config(&cfg_path, "MPT")?;
        mpt.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = mpt.gpt2_config();
        let want = mpt.expected_shapes();
        // The final norm has no bias: zeros.
        let names = CoreNames {
            embed: "wte.weight",
            norm: Some(("norm_f.weight", None)),
            head: "lm_head.weight",
        };
        let read = load_core(
            dir,
            device,
            (&config, &want, unprefixed),
            names,
            read_mpt_block,
        )?;
        let variant = Variant {
            family: Family::Mpt,
            wpe: None,
            rotary: None,
            parallel: false,
            head_bias: None,
            alibi: Some(Alibi {
                slopes: mpt_alibi_slopes(mpt.n_heads, mpt.attn_config.alibi_bias_max),
                divisor: 1.0,
                bf16: false,
            }),
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]) with zero biases.
fn read_mpt_block(t: &mut HashMap<String, Tensor>, l: usize, file: &Path) -> Result<Block> {
    let mut take = |name: &str| -> Result<Affine> {
        let w = folder::take(t, &format!("blocks.{l}.{name}.weight"), file)?;
        let b = Tensor::zeros(w.dim(0)?, DType::F32, w.device())?;
        match w.rank() {
            2 => Ok((w.t()?.contiguous()?, b)),
            _ => Ok((w, b)),
        }
    };
    Ok(Block {
        ln_1: take("norm_1")?,
        c_attn: take("attn.Wqkv")?,
        c_proj: take("attn.out_proj")?,
        ln_2: take("norm_2")?,
        c_fc: take("ffn.up_proj")?,
        mlp_proj: take("ffn.down_proj")?,
    })
}
