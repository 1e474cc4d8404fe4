//! Anchor tokens of each block (SPEC §5), measured on a token stream.
//!
//! Every position contributes one observation (token w, block label k): the key block of the
//! token there (for positional windows, the window of its position inside a T-token row).
//! Anchors are tokens with purity H(B | w) ≤ 0.2 bits and at least `c_min` occurrences, ranked
//! by PMI(w; k); the coverage I(B; A) says how much of the block label the anchors explain.
//! With a fixed semantic map every mapped token is pure; the statistic becomes informative
//! when labels come from windows, clustering or recruitment.

use serde::{Deserialize, Serialize};

use crate::analysis::anchors::{coherence_matrix, coverage_bits, select_anchors};
use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::corpus::{asset_path, prepare_corpus, CorpusSource, TokenizerKind};
use crate::model::blocks::BlockMap;
use crate::model::transformer::{anchor_name, LocalistModel};
use crate::train::dataset::train_split;

/// Purity ceiling for anchors (bits), per SPEC §5.
pub const MAX_PURITY_BITS: f64 = 0.2;

/// One anchor token, readable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnchorRow {
    /// Token text.
    pub token: String,
    /// PMI(w; k) in bits.
    pub pmi_bits: f64,
    /// Purity H(B | w) in bits.
    pub purity_bits: f64,
    /// Occurrences.
    pub count: u64,
}

/// Anchors of every block plus the coverage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnchorReport {
    /// Per block (name, anchors ranked by PMI).
    pub blocks: Vec<(String, Vec<AnchorRow>)>,
    /// I(B; A) in bits.
    pub coverage_bits: f64,
}

/// Measure anchors on `ids` (rows of `seq_len` tokens for positional labels).
pub fn anchor_report(
    ids: &[u32],
    blocks: &BlockMap,
    tok: &dyn Tokenizer,
    seq_len: usize,
    c_min: u64,
    a_max: usize,
) -> AnchorReport {
    let k = blocks.num_blocks();
    let mut counts = vec![vec![0u64; k]; tok.vocab_size()];
    for (pos, &id) in ids.iter().enumerate() {
        let b = blocks.key_block(id, pos % seq_len.max(1));
        if let Some(c) = counts.get_mut(id as usize).and_then(|row| row.get_mut(b)) {
            *c += 1;
        }
    }
    let anchors = select_anchors(&counts, c_min, MAX_PURITY_BITS, a_max);
    let coverage = coverage_bits(&counts, &anchors);
    AnchorReport {
        blocks: anchors
            .iter()
            .enumerate()
            .map(|(b, list)| {
                let rows = list
                    .iter()
                    .map(|a| AnchorRow {
                        token: tok.token_str(a.token as u32),
                        pmi_bits: a.pmi_bits,
                        purity_bits: a.purity_bits,
                        count: a.count,
                    })
                    .collect();
                (blocks.name(b).to_string(), rows)
            })
            .collect(),
        coverage_bits: coverage,
    }
}

/// The anchor tokens of each block recorded in a checkpoint's training facts (block name,
/// tokens), for rules that target `anchor B`; empty when none were recorded.
pub fn recorded_anchor_tokens(training: &serde_json::Value) -> Vec<(String, Vec<String>)> {
    training
        .get("anchors")
        .and_then(|a| serde_json::from_value::<AnchorReport>(a.clone()).ok())
        .map(|r| {
            r.blocks
                .into_iter()
                .map(|(b, rows)| (b, rows.into_iter().map(|a| a.token).collect()))
                .collect()
        })
        .unwrap_or_default()
}

/// The anchors of a checkpoint: the ones its training facts record, else measured on its
/// training corpus (checkpoints written before anchors were stored), when that corpus can be
/// read or regenerated. `tokenizer` is the checkpoint's tokenizer description.
pub fn checkpoint_anchors(
    training: &serde_json::Value,
    tokenizer: &serde_json::Value,
    blocks: &BlockMap,
) -> Option<AnchorReport> {
    training
        .get("anchors")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .or_else(|| {
            let spec: TokenizerSpec = serde_json::from_value(tokenizer.clone()).ok()?;
            measure_anchors(training, &spec, blocks)
        })
}

/// Anchor tokens measured on the checkpoint's training corpus (only when that corpus can be
/// read or regenerated).
fn measure_anchors(
    training: &serde_json::Value,
    spec: &TokenizerSpec,
    blocks: &BlockMap,
) -> Option<AnchorReport> {
    let source: CorpusSource = serde_json::from_value(training.get("corpus")?.clone()).ok()?;
    let source = match source {
        CorpusSource::File { path } => CorpusSource::File {
            path: asset_path(&path),
        },
        s => s,
    };
    let seq = training
        .get("config")
        .and_then(|c| c.get("seq_len"))
        .and_then(|v| v.as_u64())
        .unwrap_or(64) as usize;
    let corpus = prepare_corpus(&source, TokenizerKind::Char, Some(spec)).ok()?;
    let split = train_split(corpus.stream.len());
    let ids = corpus.stream.ids.get(..split)?;
    Some(anchor_report(
        ids,
        blocks,
        corpus.tokenizer.as_ref(),
        seq,
        5,
        8,
    ))
}

/// Pairwise |cos| of layer 0, head 0's anchor keys (empty if unavailable).
pub fn anchor_coherence(model: &LocalistModel) -> Vec<Vec<f64>> {
    let keys = model
        .params
        .get(&anchor_name(0))
        .and_then(|t| t.get(0))
        .and_then(|t| t.to_vec2::<f32>());
    match keys {
        Ok(rows) => coherence_matrix(&rows)
            .into_iter()
            .map(|r| r.into_iter().map(f64::abs).collect())
            .collect(),
        Err(_) => Vec::new(),
    }
}
