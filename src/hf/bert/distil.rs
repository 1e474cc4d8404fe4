//! DistilBERT (`distilbert`): BERT's encoder block under other names. Its config names the
//! sizes otherwise (`dim`, `n_layers`, `hidden_dim` …) and has no token types; its layers'
//! weights (`transformer.layer.L.attention.q_lin`, `sa_layer_norm`, `ffn.lin1` …) are read by
//! their own names and kept by BERT's (`encoder.layer.L.attention.self.query` …).

use serde::Deserialize;

use crate::hf::limits::{
    heads_divide, in_range, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH,
};

/// The fields of a DistilBERT `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DistilBertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub dim: usize,
    /// Layers.
    pub n_layers: usize,
    /// Heads.
    pub n_heads: usize,
    /// MLP width.
    pub hidden_dim: usize,
    /// Positions.
    pub max_position_embeddings: usize,
    /// Activation ("gelu": the exact erf form).
    #[serde(default = "gelu")]
    pub activation: String,
    /// The padding token.
    #[serde(default)]
    pub pad_token_id: Option<usize>,
}

/// DistilBERT's names of a layer's weights (after `transformer.layer.L.`) and BERT's (after
/// `encoder.layer.L.`).
const DISTIL_NAMES: [(&str, &str); 8] = [
    ("attention.q_lin.", "attention.self.query."),
    ("attention.k_lin.", "attention.self.key."),
    ("attention.v_lin.", "attention.self.value."),
    ("attention.out_lin.", "attention.output.dense."),
    ("sa_layer_norm.", "attention.output.LayerNorm."),
    ("ffn.lin1.", "intermediate.dense."),
    ("ffn.lin2.", "output.dense."),
    ("output_layer_norm.", "output.LayerNorm."),
];

/// `name` with its layer part renamed from the `from` side of [`DISTIL_NAMES`] to the other
/// (`to_bert`: DistilBERT's to BERT's), under the layer prefixes `from`/`to`; as it is when it
/// is no such name.
pub(super) fn renamed(name: &str, to_bert: bool) -> String {
    let (from, to) = if to_bert {
        ("transformer.layer.", "encoder.layer.")
    } else {
        ("encoder.layer.", "transformer.layer.")
    };
    let Some((l, tail)) = name.strip_prefix(from).and_then(|r| r.split_once('.')) else {
        return name.to_string();
    };
    for (distil, bert) in DISTIL_NAMES {
        let (a, b) = if to_bert {
            (distil, bert)
        } else {
            (bert, distil)
        };
        if let Some(p) = tail.strip_prefix(a) {
            return format!("{to}{l}.{b}{p}");
        }
    }
    name.to_string()
}

/// A weight's name as BERT's forward pass reads it: DistilBERT's layers
/// (`transformer.layer.L.attention.q_lin.weight`, `sa_layer_norm`, `ffn.lin1` …) renamed to
/// BERT's (`encoder.layer.L.attention.self.query.weight` …); every other name as it is.
pub fn bert_name(name: &str) -> String {
    renamed(name, true)
}

impl DistilBertConfig {
    /// Every size by DistilBERT's own key names (`dim`, `n_heads` …), or the first problem in
    /// a sentence; what BERT's check adds is read after the conversion.
    pub fn check(&self) -> Result<(), String> {
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        let d = in_range("dim", self.dim, 1, MAX_WIDTH)?;
        in_range("n_layers", self.n_layers, 1, MAX_LAYERS)?;
        let h = in_range("n_heads", self.n_heads, 1, MAX_HEADS)?;
        in_range("hidden_dim", self.hidden_dim, 1, MAX_FF)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        heads_divide(("dim", d), ("n_heads", h))
    }
}

fn gelu() -> String {
    "gelu".into()
}
