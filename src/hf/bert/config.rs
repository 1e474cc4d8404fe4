//! A BERT `config.json`: the fields the forward pass needs, read with the size limit of a
//! config ([`crate::files::MAX_CONFIG_BYTES`]) and checked before anything is built from them:
//! every size within [`crate::hf::limits`], the heads dividing the width, and then every
//! tensor the forward pass reads present in the safetensors header with the shape and a float
//! dtype the config implies ([`BertConfig::file_shapes`]). `num_hidden_layers: 1000000000`
//! ends here, naming the file and the key. RoBERTa-family configs (`roberta`, `xlm-roberta`,
//! `camembert`) are BERT's with positions counted from `pad_token_id + 1`; DistilBERT's
//! (`distilbert`) name the same sizes otherwise ([`DistilBertConfig`](super::DistilBertConfig))
//! and have no token types.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

use super::distil::{renamed, DistilBertConfig};

/// Most token types (BERT has 2).
const MAX_TYPE_VOCAB: usize = 1024;

/// Which encoder family a config is: the same block, read from other names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EncoderKind {
    /// BERT (`bert`): positions from 0, token types.
    #[default]
    Bert,
    /// RoBERTa, XLM-RoBERTa, CamemBERT: positions from `pad_token_id + 1` (the pad token's
    /// own position is `pad_token_id`), one token type.
    Roberta,
    /// DistilBERT: no token types; weights under other names ([`bert_name`](super::bert_name)).
    DistilBert,
    /// ModernBERT: a pre-LayerNorm block with RoPE, local layers and a GeGLU MLP
    /// ([`super::modern`]).
    ModernBert,
}

impl EncoderKind {
    /// The kind of a config whose `model_type` is `t` or, when it has none, whose first
    /// architecture is `arch`; None for any other family.
    pub fn of(t: Option<&str>, arch: Option<&str>) -> Option<Self> {
        match (t, arch) {
            (Some("bert"), _) => Some(Self::Bert),
            (Some("roberta" | "xlm-roberta" | "camembert"), _) => Some(Self::Roberta),
            (Some("distilbert"), _) => Some(Self::DistilBert),
            (Some("modernbert"), _) => Some(Self::ModernBert),
            (Some(_), _) => None,
            (None, Some(a)) if a.starts_with("Bert") => Some(Self::Bert),
            (None, Some(a))
                if ["Roberta", "XLMRoberta", "Camembert"]
                    .iter()
                    .any(|p| a.starts_with(p)) =>
            {
                Some(Self::Roberta)
            }
            (None, Some(a)) if a.starts_with("DistilBert") => Some(Self::DistilBert),
            (None, Some(a)) if a.starts_with("ModernBert") => Some(Self::ModernBert),
            _ => None,
        }
    }

    /// Its name in a label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Roberta => "roberta",
            Self::DistilBert => "distilbert",
            Self::ModernBert => "modernbert",
        }
    }
}

/// The fields of a BERT `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Which family it is (from `model_type`).
    #[serde(skip)]
    pub kind: EncoderKind,
    /// The padding token, whose id sets where a RoBERTa's positions begin (1 when absent).
    #[serde(default)]
    pub pad_token_id: Option<usize>,
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
    /// ModernBERT's own settings (None for the others).
    #[serde(skip)]
    pub modern: Option<super::modern::ModernSettings>,
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
    /// BERT-family model, sizes within the limits.
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::files::read_text(path, crate::files::MAX_CONFIG_BYTES, "a config.json")?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a BERT config", path.display()))?;
        let text_of = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(String::from);
        let model_type = text_of(json.get("model_type"));
        let arch = text_of(json.get("architectures").and_then(|v| v.get(0)));
        let kind = EncoderKind::of(model_type.as_deref(), arch.as_deref());
        let config = if kind == Some(EncoderKind::ModernBert) {
            let modern = serde_json::from_value::<super::modern::ModernBertConfig>(json)
                .with_context(|| format!("{}: not a ModernBERT config", path.display()))?;
            modern
                .check()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            modern.bert_config()
        } else if kind == Some(EncoderKind::DistilBert) {
            let distil = serde_json::from_value::<DistilBertConfig>(json)
                .with_context(|| format!("{}: not a DistilBERT config", path.display()))?;
            distil
                .check()
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            distil.bert_config()
        } else {
            let mut c: Self = serde_json::from_value(json)
                .with_context(|| format!("{}: not a BERT config", path.display()))?;
            c.kind = kind.unwrap_or_default();
            if kind.is_none() {
                // Named below as the family it is not.
                c.model_type = model_type.or(arch).unwrap_or_default();
                c.architectures.clear();
            }
            c
        };
        config
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// The architecture and every size, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        let known = EncoderKind::of(
            Some(self.model_type.as_str()).filter(|t| !t.is_empty()),
            self.architectures.first().map(String::as_str),
        );
        if known != Some(self.kind) {
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
        if !matches!(self.kind, EncoderKind::DistilBert | EncoderKind::ModernBert) {
            in_range("type_vocab_size", self.type_vocab_size, 1, MAX_TYPE_VOCAB)?;
        }
        let first = self.position_offset();
        if self.max_position_embeddings <= first {
            return Err(format!(
                "max_position_embeddings {} leaves no position after the first {first} \
                 (pad_token_id + 1)",
                self.max_position_embeddings
            ));
        }
        positive_eps("layer_norm_eps", self.layer_norm_eps)?;
        heads_divide(
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
        )
    }

    /// The row of the position table the first token reads: RoBERTa's `pad_token_id + 1`.
    pub fn position_offset(&self) -> usize {
        match self.kind {
            EncoderKind::Roberta => self.pad_token_id.unwrap_or(1).saturating_add(1),
            _ => 0,
        }
    }

    /// The most tokens a text may have.
    pub fn max_len(&self) -> usize {
        self.max_position_embeddings
            .saturating_sub(self.position_offset())
    }

    /// The position row of each of `ids`: 0, 1, … for BERT; RoBERTa's as transformers counts
    /// them (`create_position_ids_from_input_ids`): the pad token at `pad_token_id`, every other
    /// token at `pad_token_id` + its count among the tokens that are not padding.
    pub fn position_ids(&self, ids: &[u32]) -> Vec<u32> {
        if self.kind != EncoderKind::Roberta {
            return (0..ids.len() as u32).collect();
        }
        let pad = self.pad_token_id.unwrap_or(1);
        let mut seen = 0;
        ids.iter()
            .map(|&id| {
                if id as usize == pad {
                    pad as u32
                } else {
                    seen += 1;
                    (pad + seen) as u32
                }
            })
            .collect()
    }

    /// Every tensor the forward pass reads, with the shape this config implies.
    pub fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        if let Some(m) = &self.modern {
            return super::modern::expected_shapes(self, m);
        }
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
            ("embeddings.LayerNorm.weight".into(), vec![d]),
            ("embeddings.LayerNorm.bias".into(), vec![d]),
        ];
        if self.kind != EncoderKind::DistilBert {
            want.push((
                "embeddings.token_type_embeddings.weight".into(),
                vec![self.type_vocab_size, d],
            ));
        }
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

    /// [`expected_shapes`](Self::expected_shapes) by the names the file of this kind holds
    /// (DistilBERT's own), for checks and errors that name what the file lacks.
    pub fn file_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let mut want = self.expected_shapes();
        if self.kind == EncoderKind::DistilBert {
            for (name, _) in &mut want {
                *name = renamed(name, false);
            }
        }
        want
    }
}

impl DistilBertConfig {
    /// The same encoder as BERT names its sizes (LayerNorm ε 1e-12, DistilBERT's).
    pub(super) fn bert_config(self) -> BertConfig {
        BertConfig {
            kind: EncoderKind::DistilBert,
            pad_token_id: self.pad_token_id,
            architectures: Vec::new(),
            model_type: "distilbert".into(),
            vocab_size: self.vocab_size,
            hidden_size: self.dim,
            num_hidden_layers: self.n_layers,
            num_attention_heads: self.n_heads,
            intermediate_size: self.hidden_dim,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: 0,
            layer_norm_eps: 1e-12,
            hidden_act: self.activation,
            position_embedding_type: None,
            is_decoder: false,
            modern: None,
        }
    }
}
