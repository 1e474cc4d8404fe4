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

/// Which vocabulary ids see different keys as queries under `after` than under `before`, in
/// the localist view the data bits are read in: a query of token v sees the tokens of block
/// `relevance[b(v)]`, or only itself and the sequence start when that block is "unassigned".
/// Every id counts as changed when either map is not a vocabulary map.
pub fn changed_views(before: &BlockMap, after: &BlockMap) -> Vec<bool> {
    let n = before.token_block.len();
    if n == 0 || after.token_block.len() != n {
        return vec![true; n.max(after.token_block.len())];
    }
    let members = |m: &BlockMap| -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); m.names.len().max(1)];
        for (id, &b) in (0u32..).zip(&m.token_block) {
            if let Some(list) = out.get_mut(b) {
                list.push(id);
            }
        }
        out
    };
    let (mb, ma) = (members(before), members(after));
    let view = |m: &BlockMap, lists: &[Vec<u32>], id: usize| -> Option<usize> {
        let b = m.token_block.get(id).copied().unwrap_or(0);
        let r = m.relevance.get(b).copied().unwrap_or(b);
        (r != 0 && r < lists.len()).then_some(r)
    };
    let mut same = std::collections::HashMap::new();
    (0..n)
        .map(|id| match (view(before, &mb, id), view(after, &ma, id)) {
            (None, None) => false,
            (Some(x), Some(y)) => !*same.entry((x, y)).or_insert_with(|| mb[x] == ma[y]),
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_queries_whose_keys_change_are_marked() {
        // 0..6; block a = {1, 2}, the rest unassigned.
        let base = BlockMap::from_assignments(6, &[(1, "a".into()), (2, "a".into())], "t");
        let new = with_new_block(&base, &[3, 4], "b");
        assert_eq!(
            changed_views(&base, &new),
            [false, false, false, true, true, false]
        );
        // Extending a with 5: a's queries and 5 see new keys.
        let mut ext = base.clone();
        ext.token_block[5] = 1;
        assert_eq!(
            changed_views(&base, &ext),
            [false, true, true, false, false, true]
        );
        // A merge of b into a: every member of either.
        let (merged, _) = without_block(&new, 2, 1);
        assert_eq!(
            changed_views(&new, &merged),
            [false, true, true, true, true, false]
        );
        assert_eq!(changed_views(&base, &base), [false; 6]);
    }
}
