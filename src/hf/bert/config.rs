//! A BERT `config.json`: the fields the forward pass needs, read with the size limit of a
//! config ([`crate::files::MAX_CONFIG_BYTES`]) and checked before anything is built from them:
//! every size within [`crate::hf::limits`], the heads dividing the width, and then every
//! tensor the forward pass reads present in the safetensors header with the shape and a float
//! dtype the config implies ([`BertConfig::check_tensors`]). `num_hidden_layers: 1000000000`
//! ends here, naming the file and the key.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::hf::limits::{
    in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH,
};
use crate::hf::safetensors_header::TensorDecl;

/// Most token types (BERT has 2).
const MAX_TYPE_VOCAB: usize = 1024;

/// The fields of a BERT `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Architectures named by the file (must include a BERT model).
    #[serde(default)]
    pub architectures: Vec<String>,
    /// `model_type` (must be "bert").
    #[serde(default)]
    pub model_type: String,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Positions.
    pub max_position_embeddings: usize,
    /// Token-type vocabulary.
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    /// Activation ("gelu": the exact erf form).
    #[serde(default = "gelu")]
    pub hidden_act: String,
    /// Position embeddings: only "absolute" (relative keys change every score).
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// A BERT used as a decoder (causal self-attention): not supported.
    #[serde(default)]
    pub is_decoder: bool,
}

fn two() -> usize {
    2
}
fn ln_eps() -> f64 {
    1e-12
}
fn gelu() -> String {
    "gelu".into()
}

impl BertConfig {
    /// Read and check the `config.json` at `path`: a regular file within the size limit, a
    /// BERT model, sizes within the limits.
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::files::read_text(path, crate::files::MAX_CONFIG_BYTES, "a config.json")?;
        let config: Self = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a BERT config", path.display()))?;
        config
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// The architecture and every size, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        let is_bert =
            self.model_type == "bert" || self.architectures.iter().any(|a| a.starts_with("Bert"));
        if !is_bert {
            return Err(format!(
                "model_type {:?} ({:?}) is not supported here: BERT-family encoders only",
                self.model_type, self.architectures
            ));
        }
        if self.hidden_act != "gelu" {
            return Err(format!(
                "hidden_act {:?} is not supported (only \"gelu\")",
                self.hidden_act
            ));
        }
        if let Some(kind) = self
            .position_embedding_type
            .as_deref()
            .filter(|k| *k != "absolute")
        {
            return Err(format!(
                "position_embedding_type {kind:?} is not supported (only \"absolute\")"
            ));
        }
        if self.is_decoder {
            return Err("is_decoder = true (causal self-attention) is not supported".into());
        }
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        in_range("intermediate_size", self.intermediate_size, 1, MAX_FF)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        in_range("type_vocab_size", self.type_vocab_size, 1, MAX_TYPE_VOCAB)?;
        positive_eps("layer_norm_eps", self.layer_norm_eps)?;
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "hidden_size {} is not a multiple of {} heads (num_attention_heads)",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }

    /// Every tensor the forward pass reads, with the shape this config implies.
    pub fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (self.hidden_size, self.intermediate_size);
        let mut want: Vec<(String, Vec<usize>)> = vec![
            (
                "embeddings.word_embeddings.weight".into(),
                vec![self.vocab_size, d],
            ),
            (
                "embeddings.position_embeddings.weight".into(),
                vec![self.max_position_embeddings, d],
            ),
            (
                "embeddings.token_type_embeddings.weight".into(),
                vec![self.type_vocab_size, d],
            ),
            ("embeddings.LayerNorm.weight".into(), vec![d]),
            ("embeddings.LayerNorm.bias".into(), vec![d]),
        ];
        for l in 0..self.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            for (name, shape) in [
                ("attention.self.query", vec![d, d]),
                ("attention.self.key", vec![d, d]),
                ("attention.self.value", vec![d, d]),
                ("attention.output.dense", vec![d, d]),
                ("intermediate.dense", vec![f, d]),
                ("output.dense", vec![d, f]),
            ] {
                let out = shape.first().copied().unwrap_or(d);
                want.push((format!("{p}.{name}.weight"), shape));
                want.push((format!("{p}.{name}.bias"), vec![out]));
            }
            for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
                want.push((format!("{p}.{norm}.weight"), vec![d]));
                want.push((format!("{p}.{norm}.bias"), vec![d]));
            }
        }
        want
    }

    /// Check the tensors declared in the safetensors header (`tensors`, names without a
    /// `bert.` prefix) of `file` against this config: each one present, of a float dtype,
    /// with the expected shape.
    pub fn check_tensors(&self, tensors: &BTreeMap<String, TensorDecl>, file: &Path) -> Result<()> {
        crate::hf::folder::check_declared(tensors, &self.expected_shapes(), file)
    }
}
