//! GPT-Neo decoders (EleutherAI's GPT-Neo, and the TinyStories models teachers use) from a
//! Hugging Face folder: `config.json` (model_type `gpt_neo`), `model.safetensors` (names under
//! `transformer.`) and a byte-level BPE `tokenizer.json` (or GPT-2's `vocab.json` +
//! `merges.txt`). GPT-Neo is GPT-2's block with q, k and v as three `Linear`s without biases
//! (concatenated here into GPT-2's `c_attn`), `Linear` MLP weights, and scores **not** divided
//! by √d_h. Its "local" layers attend only to the last `window_size` positions (256): within
//! that many tokens a local layer is a global one, so the window is taken as the model's
//! context, as for Mistral — a longer text is cut, never attended beyond what the model sees.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::{load_core, Block, Gpt2, Gpt2Config, Variant};
use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

/// The fields of a GPT-Neo `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GptNeoConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Positions (rows of the learned position embedding).
    pub max_position_embeddings: usize,
    /// Width d.
    pub hidden_size: usize,
    /// Layers.
    #[serde(alias = "num_hidden_layers")]
    pub num_layers: usize,
    /// Heads.
    #[serde(alias = "num_attention_heads")]
    pub num_heads: usize,
    /// MLP width (4d when null).
    #[serde(default)]
    pub intermediate_size: Option<usize>,
    /// How far back a "local" layer attends (the query's own position included).
    #[serde(default = "window")]
    pub window_size: usize,
    /// Layer kinds as groups repeated: `[[["global", "local"], 12]]` is 24 layers alternating.
    #[serde(default)]
    pub attention_types: Option<Vec<(Vec<String>, usize)>>,
    /// "gelu_new" (GPT-Neo's), "gelu_pytorch_tanh" or "gelu".
    #[serde(default = "gelu_new")]
    pub activation_function: String,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_epsilon: f64,
    /// Whether the output head is the token embedding (GPT-Neo's is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn window() -> usize {
    256
}
fn gelu_new() -> String {
    "gelu_new".into()
}
fn ln_eps() -> f64 {
    1e-5
}
fn yes() -> bool {
    true
}

impl GptNeoConfig {
    /// Each layer's kind, "global" or "local", from `attention_types` (transformers' default,
    /// alternating from global, when it names none); an error when the groups do not give
    /// exactly `num_layers` layers of those two kinds. Counted before anything is expanded: a
    /// hostile repeat count of 10^18 is a sentence, not an allocation.
    pub fn layer_kinds(&self) -> Result<Vec<bool>, String> {
        let default = vec![(
            vec!["global".to_string(), "local".to_string()],
            self.num_layers.div_ceil(2),
        )];
        let groups = self.attention_types.as_ref().unwrap_or(&default);
        let total = groups.iter().fold(0usize, |n, (kinds, repeat)| {
            n.saturating_add(kinds.len().saturating_mul(*repeat))
        });
        let expected = if self.attention_types.is_some() {
            self.num_layers
        } else {
            total
        };
        if total != expected || total > MAX_LAYERS {
            return Err(format!(
                "attention_types gives {total} layers, but num_layers is {}",
                self.num_layers
            ));
        }
        let mut local = Vec::with_capacity(total);
        for (kinds, repeat) in groups {
            for _ in 0..*repeat {
                for k in kinds {
                    match k.as_str() {
                        "global" => local.push(false),
                        "local" => local.push(true),
                        other => {
                            return Err(format!(
                                "attention_types names a layer kind {other:?} (global or local)"
                            ))
                        }
                    }
                }
            }
        }
        local.truncate(self.num_layers);
        Ok(local)
    }

    /// The positions a text may take: `max_position_embeddings`, or the local layers' window
    /// when there is one and it is shorter.
    pub fn context(&self) -> Result<usize, String> {
        let any_local = self.layer_kinds()?.iter().any(|&l| l);
        Ok(if any_local {
            self.max_position_embeddings.min(self.window_size)
        } else {
            self.max_position_embeddings
        })
    }

    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("num_layers", self.num_layers, 1, MAX_LAYERS)?;
        let h = in_range("num_heads", self.num_heads, 1, MAX_HEADS)?;
        in_range("intermediate_size", self.ff(), 1, MAX_FF)?;
        in_range("window_size", self.window_size, 1, MAX_POSITIONS)?;
        positive_eps("layer_norm_epsilon", self.layer_norm_epsilon)?;
        heads_divide(("hidden_size", self.hidden_size), ("num_heads", h))?;
        self.layer_kinds()?;
        self.gpt2_config()?.check()
    }

    /// MLP width.
    fn ff(&self) -> usize {
        self.intermediate_size.unwrap_or(4 * self.hidden_size)
    }

    /// The same model as [`Gpt2`] reads its sizes: scores not scaled, the window as the
    /// context.
    fn gpt2_config(&self) -> Result<Gpt2Config, String> {
        Ok(Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.context()?,
            n_embd: self.hidden_size,
            n_layer: self.num_layers,
            n_head: self.num_heads,
            n_inner: Some(self.ff()),
            layer_norm_epsilon: self.layer_norm_epsilon,
            activation_function: self.activation_function.clone(),
            scale_attn_weights: false,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        })
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with the
    /// shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.ff(), self.vocab_size);
        let mut want = vec![
            ("wte.weight".to_string(), vec![v, d]),
            (
                "wpe.weight".to_string(),
                vec![self.max_position_embeddings, d],
            ),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.num_layers {
            for (name, shape) in [
                ("ln_1.weight", vec![d]),
                ("ln_1.bias", vec![d]),
                ("attn.attention.q_proj.weight", vec![d, d]),
                ("attn.attention.k_proj.weight", vec![d, d]),
                ("attn.attention.v_proj.weight", vec![d, d]),
                ("attn.attention.out_proj.weight", vec![d, d]),
                ("attn.attention.out_proj.bias", vec![d]),
                ("ln_2.weight", vec![d]),
                ("ln_2.bias", vec![d]),
                ("mlp.c_fc.weight", vec![f, d]),
                ("mlp.c_fc.bias", vec![f]),
                ("mlp.c_proj.weight", vec![d, f]),
                ("mlp.c_proj.bias", vec![d]),
            ] {
                want.push((format!("h.{l}.{name}"), shape));
            }
        }
        want
    }
}

/// A tensor name without the `transformer.` prefix of `GPTNeoForCausalLM` exports.
fn unprefixed(name: &str) -> &str {
    name.strip_prefix("transformer.").unwrap_or(name)
}

impl Gpt2 {
    /// Open the folder `dir` of a GPT-Neo model (TinyStories, GPT-Neo 125M …). The config is
    /// checked against the limits and the safetensors header before any weight is read; every
    /// weight is checked finite; the causal-mask buffers of older exports are not read.
    pub fn open_neo(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let neo: GptNeoConfig = folder::read_config(&cfg_path, "GPT-Neo")?;
        let named = |e: String| anyhow::anyhow!("{}: {e}", cfg_path.display());
        neo.check().map_err(named)?;
        let config = neo.gpt2_config().map_err(named)?;
        let want = neo.expected_shapes();
        let names = ["wte.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"];
        let mut read = load_core(
            dir,
            device,
            (&config, &want, unprefixed),
            names,
            read_neo_block,
        )?;
        let variant = Variant::learned(Family::GptNeo, read.take("wpe.weight")?);
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side in
/// `c_attn` with zero biases (GPT-Neo's have none).
fn read_neo_block(t: &mut HashMap<String, Tensor>, l: usize, file: &Path) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("h.{l}.{name}"), file);
    let conv = |w: Tensor| -> Result<Tensor> { Ok(w.t()?.contiguous()?) };
    let q = take("attn.attention.q_proj.weight")?;
    let k = take("attn.attention.k_proj.weight")?;
    let v = take("attn.attention.v_proj.weight")?;
    let d = q.dim(0)?;
    let c_attn_w = Tensor::cat(&[conv(q)?, conv(k)?, conv(v)?], 1)
        .with_context(|| format!("{}: layer {l}'s q, k and v", file.display()))?;
    let c_attn_b = Tensor::zeros(3 * d, candle_core::DType::F32, c_attn_w.device())?;
    Ok(Block {
        ln_1: (take("ln_1.weight")?, take("ln_1.bias")?),
        c_attn: (c_attn_w, c_attn_b),
        c_proj: (
            conv(take("attn.attention.out_proj.weight")?)?,
            take("attn.attention.out_proj.bias")?,
        ),
        ln_2: (take("ln_2.weight")?, take("ln_2.bias")?),
        c_fc: (conv(take("mlp.c_fc.weight")?)?, take("mlp.c_fc.bias")?),
        mlp_proj: (conv(take("mlp.c_proj.weight")?)?, take("mlp.c_proj.bias")?),
    })
}
