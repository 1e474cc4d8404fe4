//! Model configuration and its named presets.
//!
//! The configuration is a plain serde struct so that it can travel next to the weights in a
//! checkpoint's `config.json`; presets give the two shapes the SPEC names (`tiny`, `small`).
//! `tiny` matches the PyTorch reference exactly (tanh-GELU, untied head, biases everywhere),
//! which the parity test relies on.

use serde::{Deserialize, Serialize};

/// The non-linearity of the MLP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Activation {
    /// GELU with the tanh approximation (the PyTorch reference's choice).
    #[default]
    GeluTanh,
    /// ReLU: about 10x cheaper than tanh-GELU on CPU.
    Relu,
}

/// Shape and options of a decoder-only localist transformer (SPEC §2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Name of the preset this config came from (informational).
    pub preset: String,
    /// Vocabulary size (set from the tokenizer).
    pub vocab_size: usize,
    /// Number of transformer layers L.
    pub num_layers: usize,
    /// Model width d.
    pub d_model: usize,
    /// Heads per layer H (d = H·d_h).
    pub num_heads: usize,
    /// Maximum sequence length T (learned positions).
    pub max_seq_len: usize,
    /// MLP hidden width as a multiple of d.
    pub mlp_ratio: usize,
    /// Share the output head with the token embedding.
    pub tied_head: bool,
    /// MLP activation.
    pub activation: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            preset: "tiny".into(),
            vocab_size: 96,
            num_layers: 2,
            d_model: 128,
            num_heads: 4,
            max_seq_len: 64,
            mlp_ratio: 4,
            tied_head: false,
            activation: Activation::GeluTanh,
            layer_norm_eps: 1e-5,
        }
    }
}

/// Errors from choosing or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The preset name is not one we know.
    #[error("unknown preset '{0}': the presets are tiny, small")]
    UnknownPreset(String),
    /// The configuration is inconsistent.
    #[error("invalid model config: {0}")]
    Invalid(String),
}

/// Names of the built-in presets.
pub const PRESETS: [&str; 2] = ["tiny", "small"];

impl ModelConfig {
    /// A named preset (`tiny`: L=2, d=128, H=4, T=64; `small`: L=4, d=256, H=8, T=256).
    pub fn preset(name: &str, vocab_size: usize) -> Result<Self, ConfigError> {
        let base = Self {
            vocab_size,
            ..Self::default()
        };
        let cfg = match name {
            "tiny" => base,
            "small" => Self {
                preset: "small".into(),
                num_layers: 4,
                d_model: 256,
                num_heads: 8,
                max_seq_len: 256,
                ..base
            },
            other => return Err(ConfigError::UnknownPreset(other.to_string())),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Head width d_h = d / H.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.num_heads.max(1)
    }

    /// Check that the shape is usable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.to_string()));
        if self.num_heads == 0 || self.d_model % self.num_heads != 0 {
            return bad("d_model must be a positive multiple of num_heads");
        }
        if self.num_layers == 0 || self.vocab_size == 0 || self.max_seq_len < 2 {
            return bad("num_layers, vocab_size must be positive and max_seq_len at least 2");
        }
        if self.mlp_ratio == 0 {
            return bad("mlp_ratio must be positive");
        }
        Ok(())
    }

    /// Number of trainable parameters of the transformer (anchor keys excluded).
    pub fn num_parameters(&self) -> usize {
        let d = self.d_model;
        let f = self.mlp_ratio * d;
        let per_layer = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * f + f) + (f * d + d);
        let head = if self.tied_head {
            self.vocab_size
        } else {
            d * self.vocab_size + self.vocab_size
        };
        self.vocab_size * d + self.max_seq_len * d + self.num_layers * per_layer + 2 * d + head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_matches_reference_parameter_count() {
        // The PyTorch reference README states 429,664 parameters for the tiny preset.
        let cfg = ModelConfig::preset("tiny", 96).unwrap_or_default();
        assert_eq!(cfg.num_parameters(), 429_664);
        assert!(ModelConfig::preset("huge", 96).is_err());
    }
}
