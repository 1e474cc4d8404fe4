//! Phi decoders (Microsoft's phi-1, phi-1.5 and phi-2: `model_type` `phi`) from a Hugging Face
//! folder: `config.json`, `model.safetensors` (names under `model.`) and a byte-level BPE
//! `tokenizer.json`. Phi is GPT-NeoX's parallel block with one LayerNorm read by both
//! attention and the MLP, q, k and v as three `Linear`s with biases (side by side in GPT-2's
//! layout at load), RoPE on the first `partial_rotary_factor` of each head (phi-2: 32 of 80),
//! a GELU MLP and an output head with a bias. Phi-3 is another family (`phi3`, the LLaMA
//! decoder).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::neox::{NeoxRope, PartialRope};
use crate::hf::gpt2::{load_core, model_unprefixed, Block, Gpt2, Gpt2Config, Rotary, Variant};
use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

/// The fields of a Phi `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PhiConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// Key/value heads (every Phi release has as many as heads; others are refused).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Positions.
    pub max_position_embeddings: usize,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    /// "gelu_new" (Phi's), "gelu_pytorch_tanh" or "gelu".
    #[serde(default = "gelu_new")]
    pub hidden_act: String,
    /// Whether the head is the token embedding (Phi's is not).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// A LayerNorm over each head's q and k (no Phi release has it; refused).
    #[serde(default)]
    pub qk_layernorm: bool,
    /// RoPE as transformers 5 writes it.
    #[serde(default)]
    pub rope_parameters: Option<NeoxRope>,
    /// The RoPE base, as older configs name it.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// The share of each head rotated, as older configs name it.
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// RoPE scaling, as older configs name it (only none is run).
    #[serde(default)]
    pub rope_scaling: Option<NeoxRope>,
}

fn ln_eps() -> f64 {
    1e-5
}
fn gelu_new() -> String {
    "gelu_new".into()
}

impl PhiConfig {
    /// Its RoPE: the share rotated (0.5 when the config names none, as transformers) and the
    /// base (10,000).
    fn rope(&self) -> PartialRope {
        let p = self.rope_parameters.as_ref();
        PartialRope {
            share: (p.and_then(|r| r.partial_rotary_factor))
                .or(self.partial_rotary_factor)
                .unwrap_or(0.5),
            base: (p.and_then(|r| r.rope_theta))
                .or(self.rope_theta)
                .unwrap_or(10_000.0),
            head: self.hidden_size / self.num_attention_heads.max(1),
        }
    }

    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.qk_layernorm {
            return Err("qk_layernorm = true is not supported".into());
        }
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        let h = in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        if let Some(kvh) = self.num_key_value_heads.filter(|&k| k != h) {
            return Err(format!(
                "num_key_value_heads {kvh} differs from num_attention_heads {h} (grouped \
                 queries are not supported for Phi)"
            ));
        }
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        in_range("intermediate_size", self.intermediate_size, 1, MAX_FF)?;
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        positive_eps("layer_norm_eps", self.layer_norm_eps)?;
        heads_divide(
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", h),
        )?;
        self.rope()
            .check([&self.rope_parameters, &self.rope_scaling])?;
        self.gpt2_config().check()
    }

    /// The same model as [`Gpt2`] reads its sizes.
    pub(crate) fn gpt2_config(&self) -> Gpt2Config {
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.max_position_embeddings,
            n_embd: self.hidden_size,
            n_layer: self.num_hidden_layers,
            n_head: self.num_attention_heads,
            n_inner: Some(self.intermediate_size),
            layer_norm_epsilon: self.layer_norm_eps,
            activation_function: self.hidden_act.clone(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// Every tensor the forward pass reads (names without the `model.` prefix), with the
    /// shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let mut want = vec![
            ("embed_tokens.weight".to_string(), vec![v, d]),
            ("final_layernorm.weight".to_string(), vec![d]),
            ("final_layernorm.bias".to_string(), vec![d]),
            ("lm_head.bias".to_string(), vec![v]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.num_hidden_layers {
            for (name, shape) in [
                ("input_layernorm.weight", vec![d]),
                ("input_layernorm.bias", vec![d]),
                ("self_attn.q_proj.weight", vec![d, d]),
                ("self_attn.q_proj.bias", vec![d]),
                ("self_attn.k_proj.weight", vec![d, d]),
                ("self_attn.k_proj.bias", vec![d]),
                ("self_attn.v_proj.weight", vec![d, d]),
                ("self_attn.v_proj.bias", vec![d]),
                ("self_attn.dense.weight", vec![d, d]),
                ("self_attn.dense.bias", vec![d]),
                ("mlp.fc1.weight", vec![f, d]),
                ("mlp.fc1.bias", vec![f]),
                ("mlp.fc2.weight", vec![d, f]),
                ("mlp.fc2.bias", vec![d]),
            ] {
                want.push((format!("layers.{l}.{name}"), shape));
            }
        }
        want
    }
}

impl Gpt2 {
    /// Open the folder `dir` of a Phi model (phi-1, phi-1.5, phi-2). The config is checked
    /// against the limits and the safetensors header before any weight is read; every weight
    /// is checked finite.
    pub fn open_phi(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let phi: PhiConfig = folder::read_config(&cfg_path, "Phi")?;
        phi.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = phi.gpt2_config();
        let want = phi.expected_shapes();
        let names = [
            "embed_tokens.weight",
            "final_layernorm.weight",
            "final_layernorm.bias",
            "lm_head.weight",
        ];
        let mut read = load_core(
            dir,
            device,
            (&config, &want, model_unprefixed),
            names,
            read_phi_block,
        )?;
        let variant = Variant {
            family: Family::Phi,
            wpe: None,
            rotary: Some(Rotary::new(phi.rope().dims(), phi.rope().base)),
            parallel: true,
            head_bias: Some(read.take("lm_head.bias")?),
            alibi: None,
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side
/// in `c_attn`; the one LayerNorm both attention and the MLP read, as `ln_1` and `ln_2`.
fn read_phi_block(t: &mut HashMap<String, Tensor>, l: usize, file: &Path) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("layers.{l}.{name}"), file);
    let conv = |w: Tensor| -> Result<Tensor> { Ok(w.t()?.contiguous()?) };
    let mut ws = Vec::with_capacity(3);
    let mut bs = Vec::with_capacity(3);
    for p in ["q_proj", "k_proj", "v_proj"] {
        ws.push(conv(take(&format!("self_attn.{p}.weight"))?)?);
        bs.push(take(&format!("self_attn.{p}.bias"))?);
    }
    let c_attn = (Tensor::cat(&ws, 1)?, Tensor::cat(&bs, 0)?);
    let norm = (
        take("input_layernorm.weight")?,
        take("input_layernorm.bias")?,
    );
    Ok(Block {
        ln_1: norm.clone(),
        c_attn,
        c_proj: (
            conv(take("self_attn.dense.weight")?)?,
            take("self_attn.dense.bias")?,
        ),
        ln_2: norm,
        c_fc: (conv(take("mlp.fc1.weight")?)?, take("mlp.fc1.bias")?),
        mlp_proj: (conv(take("mlp.fc2.weight")?)?, take("mlp.fc2.bias")?),
    })
}
