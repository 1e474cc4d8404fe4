//! A GPT-2 `config.json`: the fields the forward pass needs, checked before anything is built
//! from them (sizes within [`crate::hf::limits`], heads dividing the width, an activation we
//! compute, no attention scaling our forward lacks), and the tensors the forward reads with
//! the shapes the config implies ([`Gpt2Config::expected_shapes`]). GPT-2 stores its
//! projections as `Conv1D`, [in, out]: the transpose of a `Linear`'s weight.

use serde::Deserialize;

use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

/// The fields of a GPT-2 `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Gpt2Config {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Positions.
    pub n_positions: usize,
    /// Width d.
    pub n_embd: usize,
    /// Layers.
    pub n_layer: usize,
    /// Heads.
    pub n_head: usize,
    /// MLP width (4d when null).
    #[serde(default)]
    pub n_inner: Option<usize>,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_epsilon: f64,
    /// "gelu_new" (tanh approximation, GPT-2's own), "gelu_pytorch_tanh" (the same) or
    /// "gelu" (the exact erf form).
    #[serde(default = "gelu_new")]
    pub activation_function: String,
    /// Scores divided by √d_h (GPT-2 does).
    #[serde(default = "yes")]
    pub scale_attn_weights: bool,
    /// Scores further divided by the layer number (not supported).
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Whether the output head is the token embedding (GPT-2's is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn ln_eps() -> f64 {
    1e-5
}
fn gelu_new() -> String {
    "gelu_new".into()
}
fn yes() -> bool {
    true
}

impl Gpt2Config {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(
            self.activation_function.as_str(),
            "gelu_new" | "gelu_pytorch_tanh" | "gelu" | "relu"
        ) {
            return Err(format!(
                "activation_function {:?} is not supported (gelu_new, gelu_pytorch_tanh, gelu \
                 or relu)",
                self.activation_function
            ));
        }
        if self.scale_attn_by_inverse_layer_idx {
            return Err("scale_attn_by_inverse_layer_idx = true is not supported".into());
        }
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range("n_positions", self.n_positions, 1, MAX_POSITIONS)?;
        in_range("n_embd", self.n_embd, 1, MAX_WIDTH)?;
        in_range("n_layer", self.n_layer, 1, MAX_LAYERS)?;
        in_range("n_head", self.n_head, 1, MAX_HEADS)?;
        in_range("n_inner", self.ff(), 1, MAX_FF)?;
        positive_eps("layer_norm_epsilon", self.layer_norm_epsilon)?;
        heads_divide(("n_embd", self.n_embd), ("n_head", self.n_head))
    }

    /// MLP width.
    pub fn ff(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// The MLP's activation: the exact (erf) GELU, ReLU (OPT's), or else the tanh GELU —
    /// `tanh_gelu` (candle's op for inference, our fused one with its backward for training).
    pub fn activate(
        &self,
        f: &candle_core::Tensor,
        tanh_gelu: impl Fn(&candle_core::Tensor) -> candle_core::Result<candle_core::Tensor>,
    ) -> candle_core::Result<candle_core::Tensor> {
        match self.activation_function.as_str() {
            "gelu" => f.gelu_erf(),
            "relu" => f.relu(),
            _ => tanh_gelu(f),
        }
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with the
    /// shape this config implies.
    pub fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (self.n_embd, self.ff());
        let mut want = vec![
            ("wte.weight".to_string(), vec![self.vocab_size, d]),
            ("wpe.weight".to_string(), vec![self.n_positions, d]),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![self.vocab_size, d]));
        }
        for l in 0..self.n_layer {
            for (name, shape) in [
                ("ln_1.weight", vec![d]),
                ("ln_1.bias", vec![d]),
                ("attn.c_attn.weight", vec![d, 3 * d]),
                ("attn.c_attn.bias", vec![3 * d]),
                ("attn.c_proj.weight", vec![d, d]),
                ("attn.c_proj.bias", vec![d]),
                ("ln_2.weight", vec![d]),
                ("ln_2.bias", vec![d]),
                ("mlp.c_fc.weight", vec![d, f]),
                ("mlp.c_fc.bias", vec![f]),
                ("mlp.c_proj.weight", vec![f, d]),
                ("mlp.c_proj.bias", vec![d]),
            ] {
                want.push((format!("h.{l}.{name}"), shape));
            }
        }
        want
    }
}
