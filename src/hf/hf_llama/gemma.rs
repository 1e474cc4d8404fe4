//! Gemma folders (`model_type` `gemma`, `gemma2`, `gemma3_text`: Gemma, Gemma 2 — Gemma Scope's
//! models — and the text-only Gemma 3, e.g. gemma-3-270m): the `config.json` fields, checked,
//! turned into the LLaMA decoder's config with [`GemmaSettings`], and each layer's weights.
//! Gemma's RMSNorms scale by (1 + w): the 1 is folded into every norm weight here. Gemma 2's
//! `post_attention_layernorm` is the norm of attention's output (Gemma 1's is the MLP's input
//! norm, as LLaMA's). A layer that attends within a sliding window makes the window the
//! model's context (as Mistral's): within it such a layer attends as a global one.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Tensor;
use serde::Deserialize;

use crate::hf::dense::Dense;
use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gguf_llama::gemma::GemmaSettings;
use crate::hf::gguf_llama::{Layer, LlamaConfig};
use crate::hf::hf_llama::config::{check_shape, Shape};
use crate::hf::limits::{in_range, MAX_POSITIONS};

/// The fields of a Gemma `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GemmaConfig {
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
    /// Key/value heads (the query heads when absent).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Width of a head (256, transformers' default, when absent).
    #[serde(default)]
    pub head_dim: Option<usize>,
    /// Positions.
    pub max_position_embeddings: usize,
    /// RMSNorm ε.
    #[serde(default = "eps")]
    pub rms_norm_eps: f64,
    /// The MLP's GELU ("gelu_pytorch_tanh", Gemma's).
    #[serde(default)]
    pub hidden_activation: Option<String>,
    /// Gemma 1 configs name `hidden_act` "gelu" and are run with the tanh form, as transformers.
    #[serde(default)]
    pub hidden_act: Option<String>,
    /// Whether the head is the embedding (Gemma's is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
    /// Biases on the attention projections (no Gemma release has them; refused).
    #[serde(default)]
    pub attention_bias: bool,
    /// Scores are scaled by this^-½ (d_h when absent).
    #[serde(default)]
    pub query_pre_attn_scalar: Option<f64>,
    /// Gemma 2's cap on the scores.
    #[serde(default)]
    pub attn_logit_softcapping: Option<f64>,
    /// Gemma 2's cap on the logits.
    #[serde(default)]
    pub final_logit_softcapping: Option<f64>,
    /// The window of the sliding layers.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// Each layer's kind: "sliding_attention" or "full_attention".
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Gemma 3 configs before `layer_types`: every n-th layer global.
    #[serde(default)]
    pub sliding_window_pattern: Option<usize>,
    /// RoPE base (older configs).
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// Gemma 3's sliding layers' RoPE base (older configs).
    #[serde(default)]
    pub rope_local_base_freq: Option<f64>,
    /// RoPE as transformers 5 writes it: flat, or per layer kind (Gemma 3).
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    /// RoPE scaling (older configs; only none is run).
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Gemma 3's bidirectional attention (an encoder's; refused).
    #[serde(default)]
    pub use_bidirectional_attention: Option<bool>,
    /// Whether the config is a multimodal Gemma 3's `text_config` (its weights under
    /// `language_model.model.` or `model.language_model.`).
    #[serde(skip)]
    pub multimodal: bool,
}

fn eps() -> f64 {
    1e-6
}
fn yes() -> bool {
    true
}

impl GemmaConfig {
    /// Width of a head.
    fn dh(&self) -> usize {
        self.head_dim.unwrap_or(256)
    }

    /// Key/value heads.
    fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// Per layer: whether it attends within the sliding window. Gemma 1: none; Gemma 2: every
    /// other one from the first; Gemma 3: all but every sixth — unless `layer_types` says.
    fn sliding(&self, family: Family) -> Result<Vec<bool>, String> {
        let n = self.num_hidden_layers;
        if let Some(types) = &self.layer_types {
            if types.len() != n {
                return Err(format!(
                    "layer_types names {} layers, but num_hidden_layers is {n}",
                    types.len()
                ));
            }
            return types
                .iter()
                .map(|t| match t.as_str() {
                    "sliding_attention" => Ok(true),
                    "full_attention" => Ok(false),
                    other => Err(format!("layer_types names a layer kind {other:?}")),
                })
                .collect();
        }
        let every = match family {
            Family::Gemma2 => 2,
            Family::Gemma3 => self.sliding_window_pattern.unwrap_or(6).max(1),
            _ => return Ok(vec![false; n]),
        };
        Ok((0..n).map(|i| (i + 1) % every != 0).collect())
    }

    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self, family: Family) -> Result<(), String> {
        if self.attention_bias {
            return Err("attention_bias = true is not supported".into());
        }
        if self.use_bidirectional_attention == Some(true) {
            return Err("use_bidirectional_attention = true is not supported".into());
        }
        let act = self.activation();
        if !matches!(act, "gelu_pytorch_tanh" | "gelu_new" | "gelu") {
            return Err(format!(
                "hidden_activation {act:?} is not supported (gelu_pytorch_tanh or gelu)"
            ));
        }
        self.linear_factor()?;
        check_shape(&Shape {
            vocab: self.vocab_size,
            hidden: self.hidden_size,
            ff: self.intermediate_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.kv_heads(),
            head_dim: Some(self.dh()),
            positions: self.max_position_embeddings,
            eps: self.rms_norm_eps,
        })?;
        let sliding = self.sliding(family)?;
        if sliding.iter().any(|&s| s) {
            let w = self
                .sliding_window
                .ok_or("sliding layers without a sliding_window")?;
            in_range("sliding_window", w, 1, MAX_POSITIONS)?;
        }
        let (global, local) = self.rope_bases(family);
        for base in std::iter::once(global).chain(local) {
            if !(base.is_finite() && base > 1.0) {
                return Err(format!(
                    "the RoPE base {base} must be a finite number above 1"
                ));
            }
        }
        let positive = |key: &str, v: Option<f64>| match v {
            Some(x) if !(x.is_finite() && x > 0.0) => {
                Err(format!("{key} = {x} must be a finite number above 0"))
            }
            _ => Ok(()),
        };
        positive("query_pre_attn_scalar", self.query_pre_attn_scalar)?;
        positive("attn_logit_softcapping", self.attn_logit_softcapping)?;
        positive("final_logit_softcapping", self.final_logit_softcapping)
    }

    /// The MLP's activation as named.
    fn activation(&self) -> &str {
        match (&self.hidden_activation, &self.hidden_act) {
            (Some(a), _) => a,
            // transformers runs Gemma 1's "gelu" as the tanh form.
            _ => "gelu_pytorch_tanh",
        }
    }

    /// The decoder's hyper-parameters (RoPE in the half-rotation layout), Gemma's settings
    /// among them; [`check`](Self::check) first.
    pub fn decoder_config(&self, family: Family) -> LlamaConfig {
        let sliding = self.sliding(family).unwrap_or_default();
        let window = self
            .sliding_window
            .filter(|_| sliding.iter().any(|&s| s))
            .unwrap_or(usize::MAX);
        let (rope_base, local_rope_base) = self.rope_bases(family);
        let factor = self.linear_factor().ok().flatten();
        let scalar = self.query_pre_attn_scalar.unwrap_or(self.dh() as f64);
        LlamaConfig {
            layers: self.num_hidden_layers,
            d_model: self.hidden_size,
            heads: self.num_attention_heads,
            head_dim: self.dh(),
            kv_heads: self.kv_heads(),
            ff: self.intermediate_size,
            vocab: self.vocab_size,
            rms_eps: self.rms_norm_eps,
            rope_base,
            context: self.max_position_embeddings.min(window),
            rope_half: true,
            arch: family.model_type(),
            rope_factors: factor.map(|f| vec![f as f32; self.dh() / 2]),
            rope_long: None,
            rope_dims: self.dh(),
            rope_scale: 1.0,
            layer_norm: false,
            qkv_biased: false,
            clip_qkv: None,
            no_rope: None,
            sliding_rope: None,
            granite: None,
            gemma: Some(GemmaSettings {
                embed_scale: (self.hidden_size as f64).sqrt(),
                score_scale: 1.0 / scalar.sqrt(),
                attn_softcap: self.attn_logit_softcapping,
                final_softcap: self.final_logit_softcapping,
                exact_gelu: self.activation() == "gelu",
                sliding,
                local_rope_base,
            }),
        }
    }

    /// Every tensor the forward pass of `family` reads, with the shape this config implies.
    pub fn expected_shapes(&self, family: Family) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let dh = self.dh();
        let (qd, kv) = (self.num_attention_heads * dh, self.kv_heads() * dh);
        let mut want = vec![
            ("model.embed_tokens.weight".to_string(), vec![v, d]),
            ("model.norm.weight".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.num_hidden_layers {
            let mut layer = vec![
                ("input_layernorm.weight", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("self_attn.q_proj.weight", vec![qd, d]),
                ("self_attn.k_proj.weight", vec![kv, d]),
                ("self_attn.v_proj.weight", vec![kv, d]),
                ("self_attn.o_proj.weight", vec![d, qd]),
                ("mlp.gate_proj.weight", vec![f, d]),
                ("mlp.up_proj.weight", vec![f, d]),
                ("mlp.down_proj.weight", vec![d, f]),
            ];
            if family != Family::Gemma {
                layer.push(("pre_feedforward_layernorm.weight", vec![d]));
                layer.push(("post_feedforward_layernorm.weight", vec![d]));
            }
            if family == Family::Gemma3 {
                layer.push(("self_attn.q_norm.weight", vec![dh]));
                layer.push(("self_attn.k_norm.weight", vec![dh]));
            }
            let p = format!("model.layers.{l}");
            want.extend(layer.into_iter().map(|(n, s)| (format!("{p}.{n}"), s)));
        }
        want
    }
}

/// A Gemma norm weight w as LLaMA's RMSNorm reads it: 1 + w.
pub fn one_plus(w: Tensor) -> Result<Tensor> {
    Ok((w + 1.0)?)
}

/// Layer `l` of a `family` Gemma model out of `t` (checked present and shaped by the header
/// check), its norms as 1 + w.
pub(crate) fn read_layer(
    t: &mut HashMap<String, Tensor>,
    l: usize,
    family: Family,
    file: &Path,
) -> Result<Layer> {
    let p = format!("model.layers.{l}");
    let mut take = |name: &str| {
        folder::take(t, &format!("{p}.{name}"), file).with_context(|| format!("layer {l}"))
    };
    let mut norm = |name: &str| one_plus(take(name)?);
    let attn_norm = norm("input_layernorm.weight")?;
    let (ffn_norm, post_norms) = if family == Family::Gemma {
        (norm("post_attention_layernorm.weight")?, None)
    } else {
        let post_attn = norm("post_attention_layernorm.weight")?;
        let post_ffn = norm("post_feedforward_layernorm.weight")?;
        (
            norm("pre_feedforward_layernorm.weight")?,
            Some([post_attn, post_ffn]),
        )
    };
    let qk_norm = if family == Family::Gemma3 {
        Some([
            norm("self_attn.q_norm.weight")?,
            norm("self_attn.k_norm.weight")?,
        ])
    } else {
        None
    };
    let mut dense = |name: &str| -> Result<Dense> { Ok(Dense::new(&take(name)?)?) };
    Ok(Layer {
        attn_norm,
        q: dense("self_attn.q_proj.weight")?,
        k: dense("self_attn.k_proj.weight")?,
        v: dense("self_attn.v_proj.weight")?,
        qkv_bias: None,
        qk_norm,
        post_norms,
        o: dense("self_attn.o_proj.weight")?,
        ffn_norm,
        norm_bias: None,
        gate: dense("mlp.gate_proj.weight")?,
        up: dense("mlp.up_proj.weight")?,
        down: dense("mlp.down_proj.weight")?,
    })
}
