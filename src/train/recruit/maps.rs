//! The block-map edits recruitment tries: a new block, a block removed (merged into another or
//! pruned to "unassigned"), and the tokens of a block.

use crate::model::blocks::BlockMap;

/// `blocks` with `tokens` moved into a new block `name` (appended).
pub fn with_new_block(blocks: &BlockMap, tokens: &[u32], name: &str) -> BlockMap {
    let mut out = blocks.clone();
    let b = out.names.len();
    out.names.push(name.to_string());
    out.relevance.push(b);
    for &id in tokens {
        if let Some(slot) = out.token_block.get_mut(id as usize) {
            *slot = b;
        }
    }
    out
}

/// `blocks` with block `gone` removed: its tokens go to `into` (0 = unassigned) and later
/// block indices shift down by one. Returns the map and `into`'s new index.
pub fn without_block(blocks: &BlockMap, gone: usize, into: usize) -> (BlockMap, usize) {
    let shift = |b: usize| if b > gone { b - 1 } else { b };
    let target = shift(into);
    let mut out = blocks.clone();
    for slot in &mut out.token_block {
        *slot = if *slot == gone { target } else { shift(*slot) };
    }
    if gone < out.names.len() {
        out.names.remove(gone);
    }
    let relevance: Vec<usize> = blocks
        .relevance
        .iter()
        .enumerate()
        .filter(|&(b, _)| b != gone)
        .map(|(_, &r)| if r == gone { target } else { shift(r) })
        .collect();
    out.relevance = relevance;
    (out, target)
}

/// Ids of the tokens in block `b`.
pub(super) fn token_ids_in(blocks: &BlockMap, b: usize) -> Vec<u32> {
    (0u32..)
        .zip(&blocks.token_block)
        .filter(|&(_, &k)| k == b)
        .map(|(id, _)| id)
        .collect()
}
