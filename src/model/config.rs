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

/// The largest shapes a model config may declare; anything past them is refused before a
/// tensor is allocated. They are far above the presets and the imported models we run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConfigLimits {
    /// Most transformer layers.
    pub max_layers: usize,
    /// Most heads per layer.
    pub max_heads: usize,
    /// Widest model.
    pub max_d_model: usize,
    /// Largest vocabulary.
    pub max_vocab: usize,
    /// Most positions.
    pub max_positions: usize,
    /// Largest MLP ratio (d_ff = ratio · d).
    pub max_mlp_ratio: usize,
    /// Largest LayerNorm epsilon (it must also be positive).
    pub max_layer_norm_eps: f64,
}

/// The limits [`ModelConfig::validate`] enforces.
pub const LIMITS: ConfigLimits = ConfigLimits {
    max_layers: 256,
    max_heads: 256,
    max_d_model: 16_384,
    max_vocab: 1_000_000,
    max_positions: 65_536,
    max_mlp_ratio: 16,
    max_layer_norm_eps: 1.0,
};

/// `field = value` must lie in `min..=max`.
fn check_range(field: &str, value: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "{field} = {value} is outside the allowed {min}..={max}"
    )))
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

    /// Check that the shape is usable and within [`LIMITS`], naming the first field that is
    /// not. This runs before anything is allocated from the config, so a hostile `config.json`
    /// (`num_layers: 1e9`) is an error rather than a billion-entry table.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let l = &LIMITS;
        check_range("num_layers", self.num_layers, 1, l.max_layers)?;
        check_range("num_heads", self.num_heads, 1, l.max_heads)?;
        check_range("d_model", self.d_model, 1, l.max_d_model)?;
        if !self.d_model.is_multiple_of(self.num_heads) {
            return Err(ConfigError::Invalid(format!(
                "d_model = {} is not a multiple of num_heads = {}",
                self.d_model, self.num_heads
            )));
        }
        check_range("vocab_size", self.vocab_size, 1, l.max_vocab)?;
        check_range("max_seq_len", self.max_seq_len, 2, l.max_positions)?;
        check_range("mlp_ratio", self.mlp_ratio, 1, l.max_mlp_ratio)?;
        let eps = self.layer_norm_eps;
        // Added in f32: below f32's smallest normal number it is 0 or denormal there.
        let least = f64::from(f32::MIN_POSITIVE);
        if !eps.is_finite() || eps < least || eps > l.max_layer_norm_eps {
            return Err(ConfigError::Invalid(format!(
                "layer_norm_eps = {eps:e} must be a number in [{least:e}, {}] (it is added in f32)",
                l.max_layer_norm_eps
            )));
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
