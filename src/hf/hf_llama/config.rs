//! The `config.json` of a Hugging Face LLaMA or Qwen2 folder: the fields the forward pass
//! needs, checked before anything is built from them (sizes within [`crate::hf::limits`],
//! heads dividing the width, key/value heads dividing the heads, no feature our forward lacks:
//! RoPE scaling, a sliding window, biases LLaMA does not have), and the tensors the forward
//! reads with the shapes the config implies ([`HfLlamaConfig::expected_shapes`]).

use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::gguf_llama::LlamaConfig;
use crate::hf::limits::{
    in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH,
};

/// RoPE settings as transformers 5 writes them (`rope_parameters`); older configs have
/// `rope_theta` and `rope_scaling` at the top level.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RopeParameters {
    /// The RoPE base.
    pub rope_theta: Option<f64>,
    /// "default" is the only kind supported.
    pub rope_type: Option<String>,
}

/// The fields of a LLaMA or Qwen2 `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct HfLlamaConfig {
    /// `model_type` ("llama" or "qwen2").
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
    /// Width of a head; hidden_size / num_attention_heads when absent (the only value our
    /// forward supports).
    pub head_dim: Option<usize>,
    /// Positions.
    pub max_position_embeddings: usize,
    /// RMSNorm ε.
    pub rms_norm_eps: f64,
    /// RoPE base (older configs).
    pub rope_theta: Option<f64>,
    /// RoPE scaling (older configs): only none is supported.
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
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
    /// Qwen2's sliding-window attention (not supported).
    #[serde(default)]
    pub use_sliding_window: bool,
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
        if self.use_sliding_window {
            return unsupported("use_sliding_window = true (sliding-window attention)");
        }
        let scaled = self.rope_scaling.as_ref().is_some_and(|v| !v.is_null());
        let kind = self
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_type.as_deref());
        if scaled || kind.is_some_and(|k| k != "default") {
            return unsupported("RoPE scaling (rope_scaling, or a rope_type other than default)");
        }
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("intermediate_size", self.intermediate_size, 1, MAX_FF)?;
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        let h = in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        let kvh = in_range("num_key_value_heads", self.kv_heads(), 1, h)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        positive_eps("rms_norm_eps", self.rms_norm_eps)?;
        if !self.hidden_size.is_multiple_of(2 * h) {
            return Err(format!(
                "hidden_size {} is not a multiple of {h} heads (num_attention_heads) of even width",
                self.hidden_size
            ));
        }
        if h % kvh != 0 {
            return Err(format!(
                "num_attention_heads {h} is not a multiple of num_key_value_heads {kvh}"
            ));
        }
        let dh = self.hidden_size / h;
        if self.head_dim.is_some_and(|x| x != dh) {
            return unsupported(&format!(
                "head_dim {:?} other than hidden_size / num_attention_heads = {dh}",
                self.head_dim
            ));
        }
        let base = self.rope_base();
        if !(base.is_finite() && base > 1.0) {
            return Err(format!(
                "rope_theta = {base} must be a finite number above 1"
            ));
        }
        Ok(())
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The RoPE base (10,000 when the config names none).
    pub fn rope_base(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0)
    }

    /// The architecture as the decoder names it (`qwen2`, or `llama` for every other).
    fn arch(&self) -> &'static str {
        match self.model_type.as_str() {
            "qwen2" => "qwen2",
            _ => "llama",
        }
    }

    /// The decoder's hyper-parameters (RoPE in the half-rotation layout).
    pub fn decoder_config(&self) -> LlamaConfig {
        LlamaConfig {
            layers: self.num_hidden_layers,
            d_model: self.hidden_size,
            heads: self.num_attention_heads,
            kv_heads: self.kv_heads(),
            ff: self.intermediate_size,
            vocab: self.vocab_size,
            rms_eps: self.rms_norm_eps,
            rope_base: self.rope_base(),
            context: self.max_position_embeddings,
            rope_half: true,
            arch: self.arch(),
        }
    }

    /// Every tensor the forward pass of `family` reads, with the shape this config implies.
    pub fn expected_shapes(&self, family: Family) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let kv = self.kv_heads() * (d / self.num_attention_heads.max(1));
        let mut want = vec![
            ("model.embed_tokens.weight".to_string(), vec![v, d]),
            ("model.norm.weight".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..self.num_hidden_layers {
            let p = format!("model.layers.{l}");
            let mut layer = vec![
                ("input_layernorm.weight", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("self_attn.q_proj.weight", vec![d, d]),
                ("self_attn.k_proj.weight", vec![kv, d]),
                ("self_attn.v_proj.weight", vec![kv, d]),
                ("self_attn.o_proj.weight", vec![d, d]),
                ("mlp.gate_proj.weight", vec![f, d]),
                ("mlp.up_proj.weight", vec![f, d]),
                ("mlp.down_proj.weight", vec![d, f]),
            ];
            if family == Family::Qwen2 {
                layer.extend([
                    ("self_attn.q_proj.bias", vec![d]),
                    ("self_attn.k_proj.bias", vec![kv]),
                    ("self_attn.v_proj.bias", vec![kv]),
                ]);
            }
            want.extend(layer.into_iter().map(|(n, s)| (format!("{p}.{n}"), s)));
        }
        want
    }
}
