//! Lexicon files: the preferred source of the block map (SPEC §3).
//!
//! A lexicon names, for each word, the semantic block its key belongs to. It is written by
//! people (or by the synthetic generator) and reviewed by auditors, so the format is plain text
//! and every error points at `path:line`.
//!
//! # Format
//!
//! UTF-8, one entry per line: `word<TAB>block name`. When the word has no spaces, a run of
//! spaces may separate it from the block instead of a tab. The block name is the rest of the line
//! (trimmed; it may contain spaces). Blank lines and lines whose first non-blank character is `#`
//! are ignored. In the word column, `\n`, `\t`, `\r`, `\s`, `\\` and `\#` stand for newline, tab,
//! carriage return, space, backslash and `#`, so every token (including the newline token) can be written. The
//! same word may be listed twice only with the same block. Block names are numbered in order of
//! first appearance.

use std::path::{Path, PathBuf};

use super::corpus::line_column;
use super::lexicon_escape::{escape, unescape};
use super::tokenizer::{Tokenizer, UNK_TOKEN};
use crate::files::{read_bytes, FileError, MAX_DOCUMENT_BYTES};

/// Why a lexicon could not be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum LexiconError {
    /// The file could not be read: missing, not a regular file, too large or unreadable. The
    /// cause names the file and is not repeated as an error source.
    #[error("cannot read the lexicon: {cause}")]
    Io {
        /// The lexicon path.
        path: PathBuf,
        /// Why (it names the path).
        cause: FileError,
    },
    /// The file is not valid UTF-8.
    #[error("{}:{line}: lexicon is not UTF-8 (invalid byte at column {column})", path.display())]
    NotUtf8 {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based byte column of the first invalid byte.
        column: usize,
    },
    /// A line has a word but no block name.
    #[error("{}:{line}: missing block name (expected `word<TAB>block`), got {text:?}", path.display())]
    MissingBlock {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A line has a block name but no word (it starts with the tab).
    #[error("{}:{line}: missing word (expected `word<TAB>block`; a word of spaces is written \\s), got {text:?}", path.display())]
    MissingWord {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending line.
        text: String,
    },
    /// A backslash escape in the word column is not one of `\n \t \r \s \\ \#`.
    #[error("{}:{line}: bad escape in word {word:?} (allowed: \\n \\t \\r \\s \\\\ \\#)", path.display())]
    BadEscape {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The word column as written.
        word: String,
    },
    /// The same word is assigned to two different blocks.
    #[error(
        "{}:{line}: word {word:?} assigned to block {block:?}, but line {first_line} assigned it to {first_block:?}",
        path.display()
    )]
    ConflictingBlock {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line of the second assignment.
        line: usize,
        /// The word.
        word: String,
        /// Its block on this line.
        block: String,
        /// Line of the first assignment.
        first_line: usize,
        /// Its block there.
        first_block: String,
    },
    /// No word assigned at all (only comments or blank lines).
    #[error(
        "{}: assigns no word to a block (only comments or blank lines): every token would stay \
         unassigned, and the metrics of such a map read as perfectly localist",
        path.display()
    )]
    Empty {
        /// The lexicon path.
        path: PathBuf,
    },
    /// A block named like the reserved block of unassigned tokens.
    #[error(
        "{}:{line}: block name \"unassigned\" is reserved for the tokens no block holds; give \
         the block another name",
        path.display()
    )]
    ReservedBlock {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
    },
    /// A block name holding a character that changes how the text around it is shown.
    #[error("{}:{line}: the block name holds {found}; remove it", path.display())]
    HiddenCharacter {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The character, named ([`crate::files::hidden_in`]).
        found: String,
    },
    /// A lexicon word is not a token of the tokenizer (or is `<unk>`).
    #[error("{}:{line}: word {word:?} is not in the tokenizer's vocabulary", path.display())]
    UnknownToken {
        /// The lexicon path.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The word.
        word: String,
    },
}

/// One `word → block` assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexiconEntry {
    /// The word, with escapes decoded.
    pub word: String,
    /// The block name.
    pub block: String,
    /// 1-based line it came from (for error messages).
    pub line: usize,
}

/// A parsed lexicon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lexicon {
    /// Where it came from; named in every error.
    pub path: PathBuf,
    /// Entries in file order, without repeated words.
    pub entries: Vec<LexiconEntry>,
    /// Block names in order of first appearance; entry blocks index into this.
    pub block_names: Vec<String>,
}

/// What a lexicon has seen while it is built: each word's entry, each block's index.
#[derive(Default)]
struct Seen {
    words: std::collections::HashMap<String, usize>,
    blocks: std::collections::HashMap<String, usize>,
}

impl Lexicon {
    /// Read and parse a lexicon file.
    pub fn load(path: &Path) -> Result<Self, LexiconError> {
        let bytes = read_bytes(path, MAX_DOCUMENT_BYTES, "a lexicon").map_err(|cause| {
            LexiconError::Io {
                path: path.to_path_buf(),
                cause,
            }
        })?;
        let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => rest.to_vec(),
            None => bytes,
        };
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                let (line, column) = line_column(err.as_bytes(), err.utf8_error().valid_up_to());
                return Err(LexiconError::NotUtf8 {
                    path: path.to_path_buf(),
                    line,
                    column,
                });
            }
        };
        Self::parse(&text, path)
    }

    /// Parse lexicon text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, LexiconError> {
        let mut lexicon = Lexicon {
            path: path.to_path_buf(),
            entries: Vec::new(),
            block_names: Vec::new(),
        };
        let mut seen = Seen::default();
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let content = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = content.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let missing = || LexiconError::MissingBlock {
                path: path.to_path_buf(),
                line,
                text: content.to_string(),
            };
            // The word column is read before trimming: "\tdose" has a block and no word.
            let before_tab = content.split_once('\t').map(|(w, _)| w.trim());
            if before_tab == Some("") {
                return Err(LexiconError::MissingWord {
                    path: path.to_path_buf(),
                    line,
                    text: content.to_string(),
                });
            }
            let (word_col, block) = match trimmed.split_once('\t') {
                Some((w, b)) => (w.trim(), b.trim()),
                None => trimmed
                    .split_once(' ')
                    .map(|(w, b)| (w, b.trim()))
                    .ok_or_else(missing)?,
            };
            if block.is_empty() || word_col.is_empty() {
                return Err(missing());
            }
            let word = unescape(word_col).ok_or_else(|| LexiconError::BadEscape {
                path: path.to_path_buf(),
                line,
                word: word_col.to_string(),
            })?;
            lexicon.add(&mut seen, word, block, line)?;
        }
        if lexicon.entries.is_empty() {
            return Err(LexiconError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(lexicon)
    }

    fn add(
        &mut self,
        seen: &mut Seen,
        word: String,
        block: &str,
        line: usize,
    ) -> Result<(), LexiconError> {
        if block == "unassigned" {
            return Err(LexiconError::ReservedBlock {
                path: self.path.clone(),
                line,
            });
        }
        if let Some(found) = crate::files::hidden_in_name(block) {
            let path = self.path.clone();
            return Err(LexiconError::HiddenCharacter { path, line, found });
        }
        // Indexed: a search of the earlier entries per line took minutes on a lexicon of a
        // million lines (within the 16 MB limit).
        if let Some(first) = seen.words.get(&word).and_then(|&i| self.entries.get(i)) {
            if first.block == block {
                return Ok(());
            }
            return Err(LexiconError::ConflictingBlock {
                path: self.path.clone(),
                line,
                word,
                block: block.to_string(),
                first_line: first.line,
                first_block: first.block.clone(),
            });
        }
        if !seen.blocks.contains_key(block) {
            seen.blocks
                .insert(block.to_string(), self.block_names.len());
            self.block_names.push(block.to_string());
        }
        seen.words.insert(word.clone(), self.entries.len());
        self.entries.push(LexiconEntry {
            word,
            block: block.to_string(),
            line,
        });
        Ok(())
    }

    /// Write the lexicon in its file format (one `word<TAB>block` line per entry, no header), so
    /// `parse(to_tsv())` gives back the same entries and line numbers when these came from
    /// [`Lexicon::from_pairs`].
    pub fn to_tsv(&self) -> String {
        let mut out = String::new();
        for entry in &self.entries {
            out.push_str(&escape(&entry.word));
            out.push('\t');
            out.push_str(&entry.block);
            out.push('\n');
        }
        out
    }

    /// Build a lexicon from `(word, block)` pairs, numbering them as lines 1, 2, … of the
    /// [`Lexicon::to_tsv`] output; `path` is used in error messages.
    pub fn from_pairs<W: AsRef<str>, B: AsRef<str>>(
        pairs: &[(W, B)],
        path: &Path,
    ) -> Result<Self, LexiconError> {
        let mut lexicon = Lexicon {
            path: path.to_path_buf(),
            entries: Vec::new(),
            block_names: Vec::new(),
        };
        let mut seen = Seen::default();
        for (index, (word, block)) in pairs.iter().enumerate() {
            lexicon.add(
                &mut seen,
                word.as_ref().to_string(),
                block.as_ref(),
                index + 1,
            )?;
        }
        Ok(lexicon)
    }

    /// Map every entry to `(token id, index into block_names)`, in entry order. A word that is
    /// not exactly one vocabulary token (or is `<unk>`) is an error naming its line.
    pub fn resolve(&self, tok: &dyn Tokenizer) -> Result<Vec<(u32, usize)>, LexiconError> {
        let blocks: std::collections::HashMap<&str, usize> = self
            .block_names
            .iter()
            .enumerate()
            .map(|(i, b)| (b.as_str(), i))
            .collect();
        self.entries
            .iter()
            .map(|entry| {
                let unknown = || LexiconError::UnknownToken {
                    path: self.path.clone(),
                    line: entry.line,
                    word: entry.word.clone(),
                };
                if entry.word == UNK_TOKEN {
                    return Err(unknown());
                }
                let id = tok.token_id(&entry.word).ok_or_else(unknown)?;
                let block = *blocks.get(entry.block.as_str()).ok_or_else(unknown)?;
                Ok((id, block))
            })
            .collect()
    }
}
