//! Anchor tokens of each block (SPEC §5), measured on a token stream.
//!
//! Every position contributes one observation (token w, block label k): the key block of the
//! token there (for positional windows, the window of its position inside a T-token row).
//! Anchors are tokens with purity H(B | w) ≤ 0.2 bits and at least `c_min` occurrences, ranked
//! by PMI(w; k); the coverage I(B; A) says how much of the block label the anchors explain.
//! With a fixed semantic map every mapped token is pure; the statistic becomes informative
//! when labels come from windows, clustering or recruitment.

use serde::{Deserialize, Serialize};

use crate::analysis::anchors::{coverage_bits, select_anchors};
use crate::data::tokenizer::Tokenizer;
use crate::model::blocks::BlockMap;

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
