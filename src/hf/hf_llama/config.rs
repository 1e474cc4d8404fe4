//! The `config.json` of a Hugging Face LLaMA, Mistral, Phi-3, Qwen2 or Qwen3 folder: the fields the
//! forward pass needs, checked before anything is built from them (sizes within
//! [`crate::hf::limits`], key/value heads dividing the heads, heads of even width, no feature
//! our forward lacks: RoPE scaling transformers does not know ([`super::rope`]), biases LLaMA
//! does not have, a partial rotation outside Phi-3), and the
//! tensors the forward reads with the shapes the config implies
//! ([`HfLlamaConfig::expected_shapes`]). A sliding window (Mistral's, Phi-3's, Qwen's with
//! `use_sliding_window`) is honoured by taking it as the context: a text no longer than the
//! window is attended exactly as the model does.

use serde::Deserialize;

use crate::hf::gguf_llama::metadata::GraniteScales;
use crate::hf::gguf_llama::LlamaConfig;
use crate::hf::limits::{in_range, MAX_LAYERS, MAX_POSITIONS};

pub use super::rope::RopeParameters;
pub(super) use super::shape::{check_shape, Shape};

/// The fields of a LLaMA, Mistral, Phi-3, Qwen2 or Qwen3 `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct HfLlamaConfig {
    /// `model_type` ("llama", "mistral", "phi3", "qwen2" or "qwen3").
    #[serde(default)]
    pub model_type: String,
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
    /// Key/value heads (grouped-query attention); the query heads when absent.
    pub num_key_value_heads: Option<usize>,
    /// Width of a head; hidden_size / num_attention_heads when absent (Qwen3 names its own).
    pub head_dim: Option<usize>,
    /// Positions.
    pub max_position_embeddings: usize,
    /// The norms' ε (`rms_norm_eps`, StableLM's `layer_norm_eps`; OLMo 1 names none: 1e-5).
    #[serde(default, alias = "layer_norm_eps")]
    pub rms_norm_eps: Option<f64>,
    /// RoPE base (older configs).
    pub rope_theta: Option<f64>,
    /// RoPE scaling (older configs): none, or "llama3".
    #[serde(default)]
    pub rope_scaling: Option<RopeParameters>,
    /// RoPE settings (transformers 5).
    #[serde(default)]
    pub rope_parameters: Option<RopeParameters>,
    /// Activation of the gated MLP ("silu").
    #[serde(default = "silu")]
    pub hidden_act: String,
    /// Whether the output head is the embedding matrix.
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// LLaMA's optional biases on every attention projection (not supported).
    #[serde(default)]
    pub attention_bias: bool,
    /// LLaMA's optional MLP biases (not supported).
    #[serde(default)]
    pub mlp_bias: bool,
    /// Qwen2's and Qwen3's sliding-window attention (on some layers; its window is then taken
    /// as the context, as Mistral's).
    #[serde(default)]
    pub use_sliding_window: bool,
    /// Mistral's and Phi-3's attention window (null: none). Qwen configs name one too, used
    /// only with `use_sliding_window`.
    #[serde(default)]
    pub sliding_window: Option<usize>,
    /// The share of each head's dimensions RoPE rotates (older configs; Phi-3 only).
    #[serde(default)]
    pub partial_rotary_factor: Option<f64>,
    /// The context the model was first trained on, where a config names it at the top level
    /// (Phi-3's; transformers gives it priority over the scaling's own).
    #[serde(default)]
    pub original_max_position_embeddings: Option<f64>,
    /// SmolLM3's layers with RoPE (1) and without (0: "NoPE").
    #[serde(default)]
    pub no_rope_layers: Option<Vec<u64>>,
    /// SmolLM3: every this-many-th layer has no RoPE when `no_rope_layers` names none (4).
    #[serde(default)]
    pub no_rope_layer_interval: Option<usize>,
    /// Granite: the embeddings' factor.
    #[serde(default)]
    pub embedding_multiplier: Option<f64>,
    /// Granite: the scores' scale (in place of 1/√d_h).
    #[serde(default)]
    pub attention_multiplier: Option<f64>,
    /// Granite: the factor of each sub-layer's output as it joins the residual stream.
    #[serde(default)]
    pub residual_multiplier: Option<f64>,
    /// Granite: the logits' divisor.
    #[serde(default)]
    pub logits_scaling: Option<f64>,
    /// StableLM: biases on q, k and v.
    #[serde(default)]
    pub use_qkv_bias: bool,
    /// Each layer's kind (OLMo 3's `sliding_attention` or `full_attention`; read for OLMo 3
    /// only).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// StableLM 2 12B: a LayerNorm of each head's queries and keys (not supported).
    #[serde(default)]
    pub qk_layernorm: bool,
    /// StableLM: attention and the MLP side by side (not supported; StableLM 2 1.6B and
    /// StableLM-3B-4E1T have it false).
    #[serde(default)]
    pub use_parallel_residual: bool,
    /// OLMo 1: q, k and v clipped to ±this (OLMo-7B-0424's 8; OLMo-1B-hf has none).
    #[serde(default)]
    pub clip_qkv: Option<f64>,
}

fn silu() -> String {
    "silu".into()
}

impl HfLlamaConfig {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        let unsupported = |what: &str| Err(format!("{what} is not supported"));
        if self.hidden_act != "silu" {
            return unsupported(&format!("hidden_act {:?} (only \"silu\")", self.hidden_act));
        }
        if self.attention_bias || self.mlp_bias {
            return unsupported("attention_bias or mlp_bias = true");
        }
        for (set, what) in [
            (
                self.qk_layernorm,
                "qk_layernorm = true (per-head LayerNorms of q and k)",
            ),
            (self.use_parallel_residual, "use_parallel_residual = true"),
        ] {
            if set {
                return unsupported(what);
            }
        }
        if let Some(m) = self.clip_qkv.filter(|m| !(m.is_finite() && *m > 0.0)) {
            return Err(format!("clip_qkv = {m} must be a finite number above 0"));
        }
        if self.rms_norm_eps.is_none() && self.model_type != "olmo" {
            return Err("rms_norm_eps (the norms' ε) is missing".into());
        }
        if self.use_sliding_window && self.sliding_window.is_none() {
            return Err("use_sliding_window = true without a sliding_window".into());
        }
        self.rotary_dims()?;
        self.check_olmo3()?;
        if self.rope_scaling.is_some() && self.scaling().is_some_and(|k| k.kind().is_none()) {
            return unsupported("rope_scaling without a rope_type");
        }
        check_shape(&Shape {
            vocab: self.vocab_size,
            hidden: self.hidden_size,
            ff: self.intermediate_size,
            layers: self.num_hidden_layers,
            heads: self.num_attention_heads,
            kv_heads: self.kv_heads(),
            head_dim: self.head_dim,
            positions: self.max_position_embeddings,
            eps: self.eps(),
        })?;
        if let Some(w) = self.window() {
            in_range("sliding_window", w, 1, MAX_POSITIONS)?;
        }
        let base = self.rope_base();
        if !(base.is_finite() && base > 1.0) {
            return Err(format!(
                "rope_theta = {base} must be a finite number above 1"
            ));
        }
        self.no_rope()?;
        for (key, v) in [
            ("embedding_multiplier", self.embedding_multiplier),
            ("attention_multiplier", self.attention_multiplier),
            ("residual_multiplier", self.residual_multiplier),
            ("logits_scaling", self.logits_scaling),
        ] {
            if let Some(x) = v.filter(|x| !(x.is_finite() && *x > 0.0)) {
                return Err(format!("{key} = {x} must be a finite number above 0"));
            }
        }
        self.rope_scaled().map(|_| ())
    }

    /// Granite's four multipliers (1 where the config names none); None for other models.
    fn granite(&self) -> Option<GraniteScales> {
        (self.model_type == "granite").then(|| GraniteScales {
            embedding: self.embedding_multiplier.unwrap_or(1.0),
            attention: self
                .attention_multiplier
                .unwrap_or(1.0 / (self.head_width() as f64).sqrt()),
            residual: self.residual_multiplier.unwrap_or(1.0),
            logits: self.logits_scaling.unwrap_or(1.0),
        })
    }

    /// SmolLM3's layers without RoPE, as transformers reads them: `no_rope_layers` (1: RoPE,
    /// 0: none), or every `no_rope_layer_interval`-th layer (4); None for other models and
    /// where every layer turns.
    pub fn no_rope(&self) -> Result<Option<Vec<bool>>, String> {
        if self.model_type != "smollm3" {
            return Ok(None);
        }
        let n = self.num_hidden_layers;
        let off = match &self.no_rope_layers {
            Some(list) if list.len() != n => {
                return Err(format!(
                    "no_rope_layers names {} layers, but num_hidden_layers is {n}",
                    list.len()
                ))
            }
            Some(list) => list
                .iter()
                .map(|&v| match v {
                    0 => Ok(true),
                    1 => Ok(false),
                    other => Err(format!("no_rope_layers holds {other} (only 0 or 1)")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => {
                let every = in_range(
                    "no_rope_layer_interval",
                    self.no_rope_layer_interval.unwrap_or(4),
                    1,
                    MAX_LAYERS,
                )?;
                (0..n).map(|i| (i + 1) % every == 0).collect()
            }
        };
        Ok(off.iter().any(|&o| o).then_some(off))
    }

    /// The RoPE settings that scale: `rope_parameters`, or the older `rope_scaling` when
    /// those say nothing but "default".
    pub(super) fn scaling(&self) -> Option<&RopeParameters> {
        match (self.rope_params(), &self.rope_scaling) {
            (Some(p), _) if p.kind().is_some_and(|k| k != "default") => Some(p),
            (_, Some(s)) => Some(s),
            (p, None) => p,
        }
    }

    /// The norms' ε: the config's, or OLMo 1's fixed 1e-5.
    pub fn eps(&self) -> f64 {
        match self.model_type.as_str() {
            "olmo" => 1e-5,
            _ => self.rms_norm_eps.unwrap_or(0.0),
        }
    }

    /// The width of a head: `head_dim`, or hidden_size / num_attention_heads.
    pub fn head_width(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }

    /// Mistral's and Phi-3's attention window, and Qwen's where `use_sliding_window` is true
    /// (Qwen configs name a `sliding_window` they do not use otherwise).
    fn window(&self) -> Option<usize> {
        match self.model_type.as_str() {
            "mistral" | "phi3" => self.sliding_window,
            "olmo3" => self
                .sliding_window
                .filter(|_| self.olmo3_layers().iter().any(|&s| s)),
            _ if self.use_sliding_window => self.sliding_window,
            _ => None,
        }
    }

    /// The positions a text may take: `max_position_embeddings`, or Mistral's window when that
    /// is shorter (within it, sliding-window attention is plain causal attention; beyond it
    /// this forward would attend to keys the model does not see).
    pub fn context(&self) -> usize {
        let window = self.window().unwrap_or(usize::MAX);
        let scaled = (self.rope_scaled().ok()).and_then(|s| s.context);
        (self.max_position_embeddings.min(window)).min(scaled.unwrap_or(usize::MAX))
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The RoPE base (10,000 when the config names none).
    pub fn rope_base(&self) -> f64 {
        self.rope_params()
            .and_then(|r| r.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// The architecture as the decoder names it (`qwen2`, `qwen3`, or `llama` for every
    /// other).
    fn arch(&self) -> &'static str {
        match self.model_type.as_str() {
            "qwen2" => "qwen2",
            "qwen3" => "qwen3",
            "olmo2" | "olmo3" => "olmo2",
            "olmo" => "olmo",
            "stablelm" => "stablelm",
            _ => "llama",
        }
    }

    /// The decoder's hyper-parameters (RoPE in the half-rotation layout).
    pub fn decoder_config(&self) -> LlamaConfig {
        let scaled = self.rope_scaled().unwrap_or_default();
        LlamaConfig {
            layers: self.num_hidden_layers,
            d_model: self.hidden_size,
            heads: self.num_attention_heads,
            head_dim: self.head_width(),
            kv_heads: self.kv_heads(),
            ff: self.intermediate_size,
            vocab: self.vocab_size,
            rms_eps: self.eps(),
            layer_norm: matches!(self.model_type.as_str(), "stablelm" | "olmo"),
            clip_qkv: self.clip_qkv,
            qkv_biased: self.model_type == "qwen2"
                || (self.model_type == "stablelm" && self.use_qkv_bias),
            rope_base: self.rope_base(),
            context: self.context(),
            rope_half: true,
            arch: self.arch(),
            // Checked by `check` before the decoder is built.
            rope_dims: self.rotary_dims().unwrap_or(self.head_width()),
            rope_factors: scaled.divisors,
            rope_long: scaled.long,
            rope_scale: scaled.attention,
            no_rope: self.no_rope().unwrap_or_default(),
            sliding_rope: self.sliding_rope(),
            gemma: None,
            granite: self.granite(),
        }
    }
}
