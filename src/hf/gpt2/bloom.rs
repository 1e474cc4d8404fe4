//! BLOOM decoders (BigScience's BLOOM and BLOOMZ, `model_type` `bloom`: bloom-560m to 176b)
//! from a Hugging Face folder: `config.json`, `model.safetensors` (names with or without the
//! `transformer.` prefix) and its byte-level BPE `tokenizer.json`. BLOOM is GPT-2's
//! pre-LayerNorm block with GPT-NeoX's fused q/k/v projection (interleaved per head; reordered
//! at load), a tanh-GELU MLP, a LayerNorm of the embeddings, a tied head and no position
//! embeddings at all: ALiBi adds slope_h · (key position) to every score of head h, the
//! slopes a geometric sequence (transformers' `build_alibi_tensor`). Within a row that is
//! slope_h · (j − i) plus a constant, so the dial's bias and the rules' add to it as to any
//! score. BLOOM has no trained context limit; its training length (`seq_length`, 2,048 when
//! the config names none) is taken as the context.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::alibi::alibi_slopes;
use crate::hf::gpt2::neox::{read_fused_block, FusedNames};
use crate::hf::gpt2::{load_core, Alibi, Gpt2, Gpt2Config, Variant};
use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

/// The fields of a BLOOM `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BloomConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    #[serde(alias = "n_embed")]
    pub hidden_size: usize,
    /// Layers.
    #[serde(alias = "num_hidden_layers")]
    pub n_layer: usize,
    /// Heads.
    #[serde(alias = "num_attention_heads")]
    pub n_head: usize,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_epsilon: f64,
    /// The residual taken after the LayerNorm (no release does; refused).
    #[serde(default)]
    pub apply_residual_connection_post_layernorm: bool,
    /// The length it was trained on, taken as the context (2,048 when absent).
    #[serde(default)]
    pub seq_length: Option<usize>,
    /// Whether the head is the token embedding (BLOOM's is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn ln_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

/// BLOOM's training length, where the config names none.
const DEFAULT_CONTEXT: usize = 2048;

impl BloomConfig {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        if self.apply_residual_connection_post_layernorm {
            return Err("apply_residual_connection_post_layernorm = true is not supported".into());
        }
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        let d = in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("n_layer", self.n_layer, 1, MAX_LAYERS)?;
        let h = in_range("n_head", self.n_head, 1, MAX_HEADS)?;
        in_range("seq_length", self.context(), 1, MAX_POSITIONS)?;
        positive_eps("layer_norm_epsilon", self.layer_norm_epsilon)?;
        heads_divide(("hidden_size", d), ("n_head", h))?;
        self.gpt2_config().check()
    }

    /// The positions a text may take.
    fn context(&self) -> usize {
        self.seq_length.unwrap_or(DEFAULT_CONTEXT)
    }

    /// The same model as [`Gpt2`] reads its sizes (MLP 4d, tanh GELU).
    fn gpt2_config(&self) -> Gpt2Config {
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.context(),
            n_embd: self.hidden_size,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_inner: Some(4 * self.hidden_size),
            layer_norm_epsilon: self.layer_norm_epsilon,
            activation_function: "gelu_pytorch_tanh".into(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with the
    /// shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, v) = (self.hidden_size, self.vocab_size);
        let mut want = vec![
            ("word_embeddings.weight".to_string(), vec![v, d]),
            ("word_embeddings_layernorm.weight".to_string(), vec![d]),
            ("word_embeddings_layernorm.bias".to_string(), vec![d]),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.n_layer {
            for (name, shape) in [
                ("input_layernorm.weight", vec![d]),
                ("input_layernorm.bias", vec![d]),
                ("self_attention.query_key_value.weight", vec![3 * d, d]),
                ("self_attention.query_key_value.bias", vec![3 * d]),
                ("self_attention.dense.weight", vec![d, d]),
                ("self_attention.dense.bias", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("post_attention_layernorm.bias", vec![d]),
                ("mlp.dense_h_to_4h.weight", vec![4 * d, d]),
                ("mlp.dense_h_to_4h.bias", vec![4 * d]),
                ("mlp.dense_4h_to_h.weight", vec![d, 4 * d]),
                ("mlp.dense_4h_to_h.bias", vec![d]),
            ] {
                want.push((format!("h.{l}.{name}"), shape));
            }
        }
        want
    }
}

/// A tensor name without the `transformer.` prefix of `BloomForCausalLM` exports.
fn unprefixed(name: &str) -> &str {
    name.strip_prefix("transformer.").unwrap_or(name)
}

impl Gpt2 {
    /// Open the folder `dir` of a BLOOM model. The config is checked against the limits and the
    /// safetensors header before any weight is read; every weight is checked finite.
    pub fn open_bloom(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let bloom: BloomConfig = folder::read_config(&cfg_path, "BLOOM")?;
        bloom
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = bloom.gpt2_config();
        let want = bloom.expected_shapes();
        let names = FusedNames {
            layers: "h",
            attention: "self_attention",
        };
        let shape = (bloom.hidden_size, bloom.n_head, true);
        let block = |t: &mut HashMap<String, Tensor>, l, file: &Path| {
            read_fused_block(t, (l, file), names, shape)
        };
        let core_names = [
            "word_embeddings.weight",
            "ln_f.weight",
            "ln_f.bias",
            "lm_head.weight",
        ];
        let mut read = load_core(dir, device, (&config, &want, unprefixed), core_names, block)?;
        let embed_norm = (
            read.take("word_embeddings_layernorm.weight")?,
            read.take("word_embeddings_layernorm.bias")?,
        );
        let variant = Variant {
            family: Family::Bloom,
            wpe: None,
            rotary: None,
            parallel: false,
            head_bias: None,
            alibi: Some(Alibi {
                slopes: alibi_slopes(bloom.n_head),
                divisor: 1.0,
                bf16: false,
            }),
            embed_norm: Some(embed_norm),
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}
