//! Semantic blocks: the partition of attention keys by the class of the key token (SPEC §3).
//!
//! A [`BlockMap`] is a vocabulary-sized table token → block plus block names; block 0 is the
//! catch-all "unassigned" block. It also carries the *relevance map* (query block → the block
//! the query should attend to), which defaults to the identity and is how a block-level rule
//! such as "a dose attends to its drug" sets r(i). Fixed positional windows are offered for
//! comparison with fixed-window localisation; they are not semantic and say so in their name.
//!
//! From the map and a token sequence [`BlockMap::masks`] derives the masks every other part
//! uses (`masks.rs`): visible keys (causal), R(i) (relevant keys: earlier keys in r(i), plus
//! S(i) = self and the sequence start).

use serde::{Deserialize, Serialize};

pub use crate::model::masks::SequenceMasks;

/// How the key partition is defined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum BlockKind {
    /// Semantic: key j is in block `token_block[x_j]`.
    Semantic,
    /// Positional windows of `width` keys: key j in ⌊j/w⌋, r(i) = ⌊i/w⌋ (not semantic).
    Windows {
        /// Window width w.
        width: usize,
    },
}

/// Token → block table with names and a relevance map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockMap {
    /// How keys are assigned to blocks.
    pub kind: BlockKind,
    /// Block names; index 0 is "unassigned".
    pub names: Vec<String>,
    /// Block of each vocabulary id (semantic maps); empty for windows.
    pub token_block: Vec<usize>,
    /// Relevant block for a query of each block (identity by default).
    pub relevance: Vec<usize>,
    /// Where the map came from, shown in the UI ("lexicon assets/x.tsv", "k-means k=8", ...).
    pub source: String,
    /// Unassigned tokens belong to no semantic block: a query whose relevant block is 0 has
    /// R(i) = S(i) only, and the penalty counts every group of its row as off-block. This is how
    /// recruitment starts (SPEC §9): before any block is recruited, the localist model sees only
    /// itself and the sequence start, and a recruited block is what lets its tokens attend to
    /// each other. Off (the default) keeps block 0 an ordinary catch-all block.
    #[serde(default)]
    pub isolate_unassigned: bool,
    /// Unassigned tokens keep all context: a query whose relevant block is 0 has every visible
    /// key in R(i) (the dial never narrows it), and the penalty leaves its row alone. This is
    /// how recruitment starts (SPEC §9: the dial separates recruited blocks; it never isolates
    /// the unassigned tokens from all context): before any block is recruited the model is the
    /// distributed one, and a recruited block narrows only its own queries' view.
    #[serde(default)]
    pub open_unassigned: bool,
    /// With [`isolate_unassigned`](Self::isolate_unassigned): the unassigned tokens (by
    /// vocabulary id) whose queries take the relevant block of the nearest token before them
    /// that is not one of these (a function word reads the block of the content word it
    /// follows); isolated when that word is unassigned too, or when there is none.
    /// Recruitment's localist view (`train::recruit::localist_view`); never saved.
    #[serde(default, skip_serializing)]
    pub inheriting: Vec<bool>,
}

/// Errors building a block map.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    /// A relevance entry names a block that does not exist.
    #[error("relevance map names unknown block '{0}' (blocks: {1})")]
    UnknownBlock(String, String),
    /// A window width of zero.
    #[error("window width must be at least 1")]
    ZeroWidth,
    /// A window as wide as the context or wider: one block holding every position.
    #[error(
        "windows of {width} positions: the model sees at most {positions}, so one window would \
         hold every position and nothing would be local; choose a width below {positions}, or \
         `single` for one block on purpose"
    )]
    WiderThanContext {
        /// The width asked for.
        width: usize,
        /// The model's positions.
        positions: usize,
    },
}

impl BlockMap {
    /// One block holding every token ("unassigned" only): the distributed baseline.
    pub fn single(vocab_size: usize) -> Self {
        Self {
            kind: BlockKind::Semantic,
            names: vec!["unassigned".into()],
            token_block: vec![0; vocab_size],
            relevance: vec![0],
            source: "single block".into(),
            isolate_unassigned: false,
            open_unassigned: false,
            inheriting: Vec::new(),
        }
    }

    /// Fixed positional windows of `width` keys over sequences of at most `max_seq_len`.
    pub fn windows(width: usize, max_seq_len: usize) -> Result<Self, BlockError> {
        if width == 0 {
            return Err(BlockError::ZeroWidth);
        }
        if width >= max_seq_len {
            return Err(BlockError::WiderThanContext {
                width,
                positions: max_seq_len,
            });
        }
        let k = max_seq_len.div_ceil(width).max(1);
        Ok(Self {
            kind: BlockKind::Windows { width },
            names: (0..k)
                .map(|b| format!("window {}-{}", b * width, (b + 1) * width - 1))
                .collect(),
            token_block: Vec::new(),
            relevance: (0..k).collect(),
            source: format!("positional windows of {width} (not semantic)"),
            isolate_unassigned: false,
            open_unassigned: false,
            inheriting: Vec::new(),
        })
    }

    /// A semantic map from `(token id, block name)` pairs; unlisted tokens are "unassigned".
    pub fn from_assignments(vocab_size: usize, pairs: &[(u32, String)], source: &str) -> Self {
        let mut names = vec!["unassigned".to_string()];
        let mut token_block = vec![0; vocab_size];
        for (id, name) in pairs {
            let b = match names.iter().position(|n| n == name) {
                Some(b) => b,
                None => {
                    names.push(name.clone());
                    names.len() - 1
                }
            };
            if let Some(slot) = token_block.get_mut(*id as usize) {
                *slot = b;
            }
        }
        let relevance = (0..names.len()).collect();
        Self {
            kind: BlockKind::Semantic,
            names,
            token_block,
            relevance,
            source: source.to_string(),
            isolate_unassigned: false,
            open_unassigned: false,
            inheriting: Vec::new(),
        }
    }

    /// Make queries of block `from` attend to block `to` (by name).
    pub fn set_relevance(&mut self, from: &str, to: &str) -> Result<(), BlockError> {
        let find = |n: &str| {
            self.index_of(n)
                .ok_or_else(|| BlockError::UnknownBlock(n.to_string(), self.names.join(", ")))
        };
        let (f, t) = (find(from)?, find(to)?);
        if let Some(slot) = self.relevance.get_mut(f) {
            *slot = t;
        }
        Ok(())
    }

    /// Index of a block by name.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Why the map cannot tell localist attention from distributed, when it cannot: a
    /// semantic map whose tokens all share one block (k-means with k = 1, one community, every
    /// token unassigned). Every key is then in the query's own block, so ε is 0 and PF 1
    /// whatever the model does. None for windows and for maps of two blocks or more.
    pub fn degenerate(&self) -> Option<String> {
        if !matches!(self.kind, BlockKind::Semantic) {
            return None;
        }
        let first = *self.token_block.first()?;
        if self.token_block.iter().any(|&b| b != first) {
            return None;
        }
        Some(format!(
            "every token of the block map ({}) is in one block, '{}', so every key is in the \
             query's own block: ε reads 0 and PF 1 whatever the model does",
            self.source,
            self.name(first)
        ))
    }

    /// Number of blocks K.
    pub fn num_blocks(&self) -> usize {
        self.names.len()
    }

    /// Name of block `b` ("?" if out of range).
    pub fn name(&self, b: usize) -> &str {
        self.names.get(b).map(String::as_str).unwrap_or("?")
    }

    /// Block of the key at position `pos` holding token `id`.
    pub fn key_block(&self, id: u32, pos: usize) -> usize {
        match self.kind {
            BlockKind::Windows { width } => (pos / width.max(1)).min(self.names.len() - 1),
            BlockKind::Semantic => self.token_block.get(id as usize).copied().unwrap_or(0),
        }
    }

    /// Relevant block r(i) of the query at `pos` holding token `id`.
    pub fn relevant_block(&self, id: u32, pos: usize) -> usize {
        let own = self.key_block(id, pos);
        self.relevance.get(own).copied().unwrap_or(own)
    }

    /// Per-sequence masks: key blocks, relevant blocks and R(i) (row-major T×T, causal).
    pub fn masks(&self, ids: &[u32]) -> SequenceMasks {
        self.masks_with(ids, true)
    }

    /// [`masks`](Self::masks) for a causal model, or for a bidirectional encoder (`causal`
    /// false: every key is visible and R(i) spans the whole sequence).
    pub fn masks_with(&self, ids: &[u32], causal: bool) -> SequenceMasks {
        let key_blocks: Vec<usize> = ids
            .iter()
            .enumerate()
            .map(|(j, &id)| self.key_block(id, j))
            .collect();
        let mut relevant_blocks: Vec<usize> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| self.relevant_block(id, i))
            .collect();
        if self.kind == BlockKind::Semantic && self.isolate_unassigned {
            let inherits = |i: usize| {
                let id = ids.get(i).map_or(usize::MAX, |&id| id as usize);
                self.inheriting.get(id).copied().unwrap_or(false)
            };
            inherit_unassigned(&mut relevant_blocks, &key_blocks, inherits);
        }
        let mut masks = SequenceMasks::new(key_blocks, relevant_blocks, self.num_blocks());
        if !causal {
            masks = masks.bidirectional();
        }
        if self.kind != BlockKind::Semantic {
            masks
        } else if self.open_unassigned {
            masks.open(0)
        } else if self.isolate_unassigned {
            masks.isolate(0)
        } else {
            masks
        }
    }

    /// Number of vocabulary tokens in each block (semantic maps).
    pub fn block_sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.num_blocks()];
        for &b in &self.token_block {
            if let Some(s) = sizes.get_mut(b) {
                *s += 1;
            }
        }
        sizes
    }
}

/// Give each unassigned query (relevant block 0) at a position where `inherits` holds the
/// relevant block of the nearest token before it that does not inherit, when that token is
/// assigned (key block ≠ 0): a function word after an unrecruited content word stays isolated
/// rather than reading the block of an earlier, other topic ([`BlockMap::inheriting`]).
fn inherit_unassigned(
    relevant_blocks: &mut [usize],
    key_blocks: &[usize],
    inherits: impl Fn(usize) -> bool,
) {
    let mut last = 0;
    for (i, (r, &k)) in relevant_blocks.iter_mut().zip(key_blocks).enumerate() {
        if k != 0 {
            last = *r;
        } else if !inherits(i) {
            last = 0;
        } else if *r == 0 {
            *r = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relevant_set_includes_self_and_start() {
        let map = BlockMap::from_assignments(4, &[(1, "a".into()), (2, "b".into())], "t");
        let m = map.masks(&[2, 1, 2, 1, 3]);
        // Query 3 (token 1, block a): relevant keys are BOS, key 1 (a) and self.
        assert_eq!(m.relevant_row(3), &[true, true, false, true, false]);
        // Query 4 (unassigned): BOS, self only (no earlier unassigned key).
        assert_eq!(m.relevant_row(4), &[true, false, false, false, true]);
    }

    #[test]
    fn windows_and_relevance_map() {
        let w = BlockMap::windows(8, 64).unwrap_or_else(|_| BlockMap::single(1));
        assert_eq!(w.num_blocks(), 8);
        assert_eq!(w.key_block(5, 17), 2);
        let mut map = BlockMap::from_assignments(4, &[(1, "drug".into()), (2, "dose".into())], "t");
        assert!(map.set_relevance("dose", "drug").is_ok());
        assert_eq!(map.relevant_block(2, 3), map.index_of("drug").unwrap_or(99));
        assert!(map.set_relevance("dose", "nothing").is_err());
    }
}
