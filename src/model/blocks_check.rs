//! Checking a block map read from a file (`blocks.json`) against the vocabulary and itself.
//!
//! Every user of a [`BlockMap`] indexes with its block ids, so a map with an id past its
//! names, a per-token table shorter than the vocabulary or a relevance entry naming block 42
//! would silently mis-measure (or, for a map with no names, panic). A checkpoint refuses such a
//! map at load, so a resumed run can never save it again.

use std::collections::HashSet;

use crate::model::blocks::{BlockKind, BlockMap};

/// Most blocks a map may declare besides what its kind implies (a semantic map has at most one
/// block per vocabulary token plus "unassigned").
pub const MAX_BLOCKS: usize = 65_536;

/// What is wrong with a block map.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidBlocks {
    /// No block names at all.
    #[error("names is empty: a map needs at least the block \"unassigned\"")]
    NoBlocks,
    /// More blocks than allowed.
    #[error("{found} blocks is more than the {max} allowed here")]
    TooManyBlocks {
        /// Blocks declared.
        found: usize,
        /// The limit.
        max: usize,
    },
    /// An empty (or blank) block name.
    #[error("names[{0}] is empty")]
    EmptyName(usize),
    /// A block name holding a character that changes how the text around it is shown.
    #[error("names[{index}] holds {found}; remove it")]
    HiddenCharacter {
        /// The block.
        index: usize,
        /// The character, named ([`crate::files::hidden_in`]).
        found: String,
    },
    /// Two blocks with one name.
    #[error("names[{second}] repeats the name {name:?} of names[{first}]")]
    DuplicateName {
        /// The name.
        name: String,
        /// Its first index.
        first: usize,
        /// Its second index.
        second: usize,
    },
    /// A semantic map's token table does not cover the vocabulary exactly.
    #[error("token_block has {found} entries but the vocabulary has {vocab_size} tokens")]
    TokenCount {
        /// Entries present.
        found: usize,
        /// Tokens in the vocabulary.
        vocab_size: usize,
    },
    /// A positional map with a per-token table.
    #[error("token_block must be empty for positional windows (found {0} entries)")]
    WindowTokens(usize),
    /// Fewer window names than windows over the model's positions.
    #[error(
        "names {found} windows of width {width}, but the model's {positions} positions need \
         {needed}: every later position would fall into the last window"
    )]
    TooFewWindows {
        /// Names given.
        found: usize,
        /// Window width.
        width: usize,
        /// The model's positions.
        positions: usize,
        /// Windows those positions need.
        needed: usize,
    },
    /// More window names than windows: the width does not match the names (a map of 8
    /// windows of 8 with its width set to 64 read as one window, perfectly local).
    #[error(
        "names {found} windows of width {width}, but the model's {positions} positions make \
         {needed}: the width does not match the names"
    )]
    TooManyWindows {
        /// Names given.
        found: usize,
        /// Window width.
        width: usize,
        /// The model's positions.
        positions: usize,
        /// Windows those positions make.
        needed: usize,
    },
    /// A window width of zero.
    #[error("window width must be at least 1")]
    ZeroWidth,
    /// A token mapped to a block that does not exist.
    #[error("token_block[{token}] = {block}, but there are only {num_blocks} blocks")]
    TokenBlock {
        /// Token id.
        token: usize,
        /// The block id given.
        block: usize,
        /// Blocks declared.
        num_blocks: usize,
    },
    /// The relevance map does not have one entry per block.
    #[error("relevance has {found} entries for {num_blocks} blocks")]
    RelevanceCount {
        /// Entries present.
        found: usize,
        /// Blocks declared.
        num_blocks: usize,
    },
    /// Both ways of treating unassigned tokens at once (open won, unsaid).
    #[error(
        "isolate_unassigned and open_unassigned are both true: unassigned tokens are either \
         isolated or open, not both"
    )]
    IsolatedAndOpen,
    /// A relevance entry pointing at a block that does not exist.
    #[error("relevance[{from}] = {to}, but there are only {num_blocks} blocks")]
    RelevanceTarget {
        /// Query block.
        from: usize,
        /// The block it points at.
        to: usize,
        /// Blocks declared.
        num_blocks: usize,
    },
}

impl BlockMap {
    /// Check the map against a model with `vocab_size` tokens and `max_seq_len` positions:
    /// names non-empty and unique, one block per vocabulary token (semantic maps), every block
    /// id and relevance entry naming an existing block.
    pub fn validate(&self, vocab_size: usize, max_seq_len: usize) -> Result<(), InvalidBlocks> {
        let k = self.names.len();
        let max = match self.kind {
            BlockKind::Semantic => vocab_size.saturating_add(1).min(MAX_BLOCKS),
            BlockKind::Windows { .. } => max_seq_len.clamp(1, MAX_BLOCKS),
        };
        if k == 0 {
            return Err(InvalidBlocks::NoBlocks);
        }
        if k > max {
            return Err(InvalidBlocks::TooManyBlocks { found: k, max });
        }
        if self.isolate_unassigned && self.open_unassigned {
            return Err(InvalidBlocks::IsolatedAndOpen);
        }
        check_names(&self.names)?;
        match self.kind {
            BlockKind::Semantic => self.check_tokens(vocab_size)?,
            BlockKind::Windows { width } => {
                if width == 0 {
                    return Err(InvalidBlocks::ZeroWidth);
                }
                if !self.token_block.is_empty() {
                    return Err(InvalidBlocks::WindowTokens(self.token_block.len()));
                }
                let needed = max_seq_len.div_ceil(width).clamp(1, MAX_BLOCKS);
                if k > needed {
                    return Err(InvalidBlocks::TooManyWindows {
                        found: k,
                        width,
                        positions: max_seq_len,
                        needed,
                    });
                }
                if k < needed {
                    return Err(InvalidBlocks::TooFewWindows {
                        found: k,
                        width,
                        positions: max_seq_len,
                        needed,
                    });
                }
            }
        }
        self.check_relevance()
    }

    fn check_tokens(&self, vocab_size: usize) -> Result<(), InvalidBlocks> {
        let num_blocks = self.names.len();
        if self.token_block.len() != vocab_size {
            return Err(InvalidBlocks::TokenCount {
                found: self.token_block.len(),
                vocab_size,
            });
        }
        match self.token_block.iter().position(|&b| b >= num_blocks) {
            None => Ok(()),
            Some(token) => Err(InvalidBlocks::TokenBlock {
                token,
                block: self.token_block.get(token).copied().unwrap_or(0),
                num_blocks,
            }),
        }
    }

    fn check_relevance(&self) -> Result<(), InvalidBlocks> {
        let num_blocks = self.names.len();
        if self.relevance.len() != num_blocks {
            return Err(InvalidBlocks::RelevanceCount {
                found: self.relevance.len(),
                num_blocks,
            });
        }
        match self.relevance.iter().position(|&b| b >= num_blocks) {
            None => Ok(()),
            Some(from) => Err(InvalidBlocks::RelevanceTarget {
                from,
                to: self.relevance.get(from).copied().unwrap_or(0),
                num_blocks,
            }),
        }
    }
}

fn check_names(names: &[String]) -> Result<(), InvalidBlocks> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return Err(InvalidBlocks::EmptyName(i));
        }
        if let Some(found) = crate::files::hidden_in_name(name) {
            return Err(InvalidBlocks::HiddenCharacter { index: i, found });
        }
        if !seen.insert(name.as_str()) {
            let first = names.iter().position(|n| n == name).unwrap_or(0);
            return Err(InvalidBlocks::DuplicateName {
                name: name.clone(),
                first,
                second: i,
            });
        }
    }
    Ok(())
}
