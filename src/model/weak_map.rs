//! Whether ε and PF on a text can tell localist attention from distributed under a block map.
//! [`BlockMap::degenerate`] catches a map whose vocabulary is one block; a map of two blocks or
//! more can still put nearly all of a text in one: a lexicon that names every word of the text
//! for one block (`<unk>` alone unassigned), one word in a block and the rest unassigned, a
//! single community. ε then reads near 0 and PF near 1 whatever the model does, and a NaN-free
//! but meaningless "perfectly localist" reading was shown without a word.

use crate::model::blocks::BlockMap;

/// Tokens of a text that [`BlockMap::weak_on`] reads (the masks are T × T).
pub const WEAK_PROBE_TOKENS: usize = 512;

/// Below this ε of evenly spread attention, ε and PF on a text say little
/// ([`BlockMap::weak_on`]).
pub const WEAK_UNIFORM_EPSILON: f64 = 0.05;

impl BlockMap {
    /// The ε that attention spread evenly over every visible key would read under this map
    /// on `ids` (its first [`WEAK_PROBE_TOKENS`]), averaged over the queries after the first.
    /// Where it is near 0 almost every key is already in its query's relevant set, and ε and
    /// PF read near 0 and 1 whatever the model does.
    pub fn uniform_epsilon(&self, ids: &[u32]) -> f64 {
        let ids = ids.get(..ids.len().min(WEAK_PROBE_TOKENS)).unwrap_or(ids);
        let masks = self.masks(ids);
        let t = masks.len();
        if t < 2 {
            return 1.0;
        }
        let off: f64 = (1..t)
            .map(|i| {
                let relevant = masks.relevant_row(i).iter().filter(|&&r| r).count();
                1.0 - relevant as f64 / masks.visible_count(i).max(1) as f64
            })
            .sum();
        off / (t - 1) as f64
    }

    /// Why ε and PF on the text `ids` cannot tell localist attention from distributed, when a
    /// map of two blocks or more still cannot ([`uniform_epsilon`](Self::uniform_epsilon)
    /// below [`WEAK_UNIFORM_EPSILON`]): a lexicon that puts every word of the text in one
    /// block (`<unk>` in another), one word in a block and the rest unassigned, a single
    /// community. None otherwise, and for a map [`degenerate`](Self::degenerate) already says.
    pub fn weak_on(&self, ids: &[u32]) -> Option<String> {
        if self.degenerate().is_some() || ids.len() < 2 {
            return None;
        }
        let eps = self.uniform_epsilon(ids);
        if eps >= WEAK_UNIFORM_EPSILON {
            return None;
        }
        let mut counts = vec![0usize; self.num_blocks()];
        for (j, &id) in ids.iter().enumerate() {
            if let Some(c) = counts.get_mut(self.key_block(id, j)) {
                *c += 1;
            }
        }
        let (block, n) = (counts.iter().enumerate())
            .max_by_key(|&(_, &n)| n)
            .map_or((0, 0), |(b, &n)| (b, n));
        Some(format!(
            "on this text even attention spread evenly over every visible key would read ε \
             {eps:.4} and PF_mass {:.4} under the block map ({}): {:.1}% of the text's tokens \
             are in block '{}', so ε and PF say little of what the model does; give the map \
             blocks that divide the text",
            1.0 - eps,
            self.source,
            100.0 * n as f64 / ids.len() as f64,
            self.name(block)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map of two blocks whose text lies nearly all in one (every word of the text in 'g',
    /// `<unk>` alone unassigned) reads ε 0 and PF 1 whatever the model does: said. A map that
    /// divides the text is not.
    #[test]
    fn a_map_whose_text_lies_in_one_block_is_weak_on_it() {
        let text: Vec<u32> = (0..200).map(|i| 1 + (i * 7 % 5) as u32).collect();
        let pairs: Vec<(u32, String)> = (1..6).map(|id| (id, "g".to_string())).collect();
        let all_g = BlockMap::from_assignments(6, &pairs, "all in g");
        assert!(
            all_g.degenerate().is_none(),
            "two blocks over the vocabulary"
        );
        assert!(all_g.uniform_epsilon(&text) < 1e-12);
        let why = all_g.weak_on(&text).unwrap_or_default();
        assert!(
            why.contains("100.0% of the text's tokens are in block 'g'"),
            "{why}"
        );
        let halves: Vec<(u32, String)> = (1..6)
            .map(|id| (id, if id < 3 { "a" } else { "b" }.to_string()))
            .collect();
        let divided = BlockMap::from_assignments(6, &halves, "halves");
        assert!(divided.uniform_epsilon(&text) > 0.3);
        assert_eq!(divided.weak_on(&text), None);
    }
}
