//! Tokenizers: the bridge between text and the vocabulary ids a model sees.
//!
//! Semantic blocks (SPEC §3) are defined over *vocabulary tokens*, so the tokenizer decides what a
//! block can contain. Two are offered:
//!
//! - [`CharTokenizer`]: the fixed 96-id character vocabulary used by the reference PyTorch trainer
//!   (id 0 = `'\n'`, id `i` = `chr(31 + i)` for printable ASCII). It must agree with that trainer
//!   byte for byte so imported checkpoints and replayed batches line up.
//! - [`WordTokenizer`]: a vocabulary fitted to a corpus, whose tokens keep numbers, dates and
//!   account codes whole (`1,250.50`, `2024-03-05`, `ACC-4821`). Word-level tokens are what a
//!   lexicon can name, which is what makes localist blocks readable.
//!
//! A checkpoint's `config.json` carries a [`TokenizerSpec`], from which the tokenizer is rebuilt.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub use super::words::{join_words, split_words, split_words_with, WordSplit};

/// The token that unknown words map to; always id 0 of a [`WordTokenizer`].
pub const UNK_TOKEN: &str = "<unk>";

/// Most words a vocabulary fitted on a training corpus keeps (with `<unk>` and the newline).
pub const MAX_WORD_VOCAB: usize = 8192;

/// Longest word (in UTF-8 bytes) a fitted word vocabulary takes; longer ones read as `<unk>`.
/// The vocabulary is stored in the checkpoint's `config.json`: a 5 MB hex string taken as a
/// word made a checkpoint its own loader refused (over the 4 MiB limit of a config).
pub const MAX_WORD_BYTES: usize = 64;

/// The newline token; always id 1 of a [`WordTokenizer`] and id 0 of the [`CharTokenizer`].
pub const NEWLINE_TOKEN: &str = "\n";

/// Text ↔ vocabulary ids. Implementations are immutable and shareable across threads.
pub trait Tokenizer: Send + Sync {
    /// The ids of `text`; characters or words outside the vocabulary map to a fallback id.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// The text of `ids`; ids outside the vocabulary decode to a visible placeholder.
    fn decode(&self, ids: &[u32]) -> String;
    /// Number of ids in the vocabulary.
    fn vocab_size(&self) -> usize;
    /// The surface string of one id (a placeholder when out of range).
    fn token_str(&self, id: u32) -> String;
    /// The id whose surface string is exactly `token`, if there is one.
    fn token_id(&self, token: &str) -> Option<u32>;
    /// Why [`Tokenizer::encode`] gave no ids for `text`, where the tokenizer failed on it
    /// (an imported tokenizer file can); `None` when it did not fail.
    fn encode_error(&self, _text: &str) -> Option<String> {
        None
    }
}

/// Errors building a tokenizer from a stored [`TokenizerSpec`].
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TokenizerError {
    /// A word vocabulary must start with `<unk>` at id 0.
    #[error(
        "word tokenizer vocabulary: id 0 must be \"<unk>\", found {}",
        found.as_ref().map_or("an empty vocabulary".to_string(), |f| format!("{f:?}"))
    )]
    FirstNotUnk {
        /// What id 0 actually was (`None` for an empty vocabulary).
        found: Option<String>,
    },
    /// The same surface string appears at two ids, so `encode` would be ambiguous.
    #[error(
        "word tokenizer vocabulary: token {token:?} appears at id {first_id} and id {second_id}"
    )]
    DuplicateToken {
        /// The repeated token.
        token: String,
        /// Its first id.
        first_id: u32,
        /// Its second id.
        second_id: u32,
    },
    /// An empty string can never be produced by [`split_words`].
    #[error("word tokenizer vocabulary: id {id} is the empty string")]
    EmptyToken {
        /// The offending id.
        id: u32,
    },
    /// More tokens than fit in a `u32` id.
    #[error("word tokenizer vocabulary: {len} tokens do not fit in u32 ids")]
    TooLarge {
        /// The vocabulary length.
        len: usize,
    },
    /// The tokenizer yields ids the model has no embedding row for.
    #[error("the tokenizer has {tokens} tokens but the model's vocab_size is {vocab_size}")]
    LargerThanModel {
        /// Tokens in the tokenizer.
        tokens: usize,
        /// Rows of the model's embedding.
        vocab_size: usize,
    },
}

/// A serialisable description of a tokenizer, stored in a checkpoint's `config.json`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind")]
pub enum TokenizerSpec {
    /// The fixed 96-id [`CharTokenizer`].
    Char,
    /// A [`WordTokenizer`] with this vocabulary, in id order.
    Word {
        /// Surface strings in id order; id 0 is `<unk>`.
        vocab: Vec<String>,
        /// The word rule the vocabulary was fitted with; `ascii` when absent (vocabularies
        /// stored before the Unicode rule existed).
        #[serde(default)]
        split: WordSplit,
    },
}

impl TokenizerSpec {
    /// Rebuild the tokenizer this spec describes; fails when a word vocabulary is malformed.
    pub fn build(&self) -> Result<Box<dyn Tokenizer>, TokenizerError> {
        match self {
            TokenizerSpec::Char => Ok(Box::new(CharTokenizer)),
            TokenizerSpec::Word { vocab, split } => Ok(Box::new(WordTokenizer::from_vocab_with(
                vocab.clone(),
                *split,
            )?)),
        }
    }

    /// Number of ids the tokenizer this spec describes can produce.
    pub fn num_tokens(&self) -> usize {
        match self {
            TokenizerSpec::Char => CharTokenizer::VOCAB_SIZE,
            TokenizerSpec::Word { vocab, .. } => vocab.len(),
        }
    }

    /// The vocabulary-size hook: a model with `vocab_size` embedding rows can take every id
    /// this tokenizer produces (else an id past the table would fail deep inside a forward).
    /// `model::checkpoint` runs the same check on `config.json` at load.
    pub fn check_fits(&self, vocab_size: usize) -> Result<(), TokenizerError> {
        let tokens = self.num_tokens();
        if tokens > vocab_size {
            return Err(TokenizerError::LargerThanModel { tokens, vocab_size });
        }
        Ok(())
    }
}

/// The reference 96-id character vocabulary: id 0 = `'\n'`, id `i` = `chr(31 + i)` for `i` in
/// 1..=95 (printable ASCII 32..=126). Every other character encodes as `'?'` (id 32), exactly as
/// the reference does after `text.encode('ascii', errors='replace')`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CharTokenizer;

impl CharTokenizer {
    /// Number of ids in the character vocabulary.
    pub const VOCAB_SIZE: usize = 96;
    /// The id of `'?'`, which every unrepresentable character becomes.
    pub const REPLACEMENT_ID: u32 = 32;

    /// The spec that rebuilds this tokenizer.
    pub fn spec(&self) -> TokenizerSpec {
        TokenizerSpec::Char
    }

    /// The id of one character.
    pub fn char_id(c: char) -> u32 {
        match c {
            '\n' => 0,
            ' '..='~' => c as u32 - 31,
            _ => Self::REPLACEMENT_ID,
        }
    }

    /// The character of one id, or `None` when the id is out of range.
    pub fn id_char(id: u32) -> Option<char> {
        match id {
            0 => Some('\n'),
            1..=95 => char::from_u32(id + 31),
            _ => None,
        }
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        text.chars().map(Self::char_id).collect()
    }

    /// Out-of-range ids decode to U+FFFD so they stay visible.
    fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&id| Self::id_char(id).unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB_SIZE
    }

    fn token_str(&self, id: u32) -> String {
        Self::id_char(id)
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .to_string()
    }

    fn token_id(&self, token: &str) -> Option<u32> {
        let mut chars = token.chars();
        let c = chars.next()?;
        if chars.next().is_some() {
            return None;
        }
        let id = Self::char_id(c);
        // Only characters that are genuinely in the vocabulary have an id; 'é' does not.
        (Self::id_char(id) == Some(c)).then_some(id)
    }
}

/// A word-level vocabulary fitted to a corpus: id 0 = `<unk>`, id 1 = `"\n"`, then tokens by
/// descending frequency (ties in byte order, so fitting is deterministic).
#[derive(Clone, Debug, PartialEq)]
pub struct WordTokenizer {
    vocab: Vec<String>,
    ids: HashMap<String, u32>,
    split: WordSplit,
}

impl WordTokenizer {
    /// Fit a vocabulary to `text` (tokens of the Unicode rule, [`WordSplit::Unicode`]). Tokens
    /// seen fewer than `min_count` times, or longer than [`MAX_WORD_BYTES`], are left out;
    /// `max_vocab` caps the total size
    /// *including* `<unk>` and `"\n"` (it is raised to 2 if smaller).
    pub fn fit(text: &str, min_count: usize, max_vocab: usize) -> Self {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for word in split_words_with(text, WordSplit::Unicode) {
            if word != NEWLINE_TOKEN && word != UNK_TOKEN {
                *counts.entry(word).or_insert(0) += 1;
            }
        }
        let mut ranked: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|&(w, n)| n >= min_count.max(1) && w.len() <= MAX_WORD_BYTES)
            .collect();
        // BTreeMap iteration is already alphabetical; a stable sort keeps that order for ties.
        ranked.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let room = max_vocab.max(2) - 2;
        let mut vocab = vec![UNK_TOKEN.to_string(), NEWLINE_TOKEN.to_string()];
        vocab.extend(ranked.into_iter().take(room).map(|(w, _)| w.to_string()));
        let ids = index_vocab(&vocab);
        Self {
            vocab,
            ids,
            split: WordSplit::Unicode,
        }
    }

    /// Rebuild from a stored vocabulary (id order) of the Unicode rule, checking it is well
    /// formed.
    pub fn from_vocab(vocab: Vec<String>) -> Result<Self, TokenizerError> {
        Self::from_vocab_with(vocab, WordSplit::Unicode)
    }

    /// Rebuild from a stored vocabulary (id order) fitted with `split`, checking it is well
    /// formed.
    pub fn from_vocab_with(vocab: Vec<String>, split: WordSplit) -> Result<Self, TokenizerError> {
        if vocab.first().map(String::as_str) != Some(UNK_TOKEN) {
            return Err(TokenizerError::FirstNotUnk {
                found: vocab.first().cloned(),
            });
        }
        if u32::try_from(vocab.len()).is_err() {
            return Err(TokenizerError::TooLarge { len: vocab.len() });
        }
        let mut ids: HashMap<String, u32> = HashMap::with_capacity(vocab.len());
        for (id, token) in (0u32..).zip(&vocab) {
            if token.is_empty() {
                return Err(TokenizerError::EmptyToken { id });
            }
            if let Some(&first_id) = ids.get(token) {
                return Err(TokenizerError::DuplicateToken {
                    token: token.clone(),
                    first_id,
                    second_id: id,
                });
            }
            ids.insert(token.clone(), id);
        }
        Ok(Self { vocab, ids, split })
    }

    /// The vocabulary in id order.
    pub fn vocab(&self) -> &[String] {
        &self.vocab
    }

    /// The spec that rebuilds this tokenizer.
    pub fn spec(&self) -> TokenizerSpec {
        TokenizerSpec::Word {
            vocab: self.vocab.clone(),
            split: self.split,
        }
    }
}

fn index_vocab(vocab: &[String]) -> HashMap<String, u32> {
    (0u32..).zip(vocab).map(|(id, w)| (w.clone(), id)).collect()
}

impl Tokenizer for WordTokenizer {
    /// Words outside the vocabulary become id 0 (`<unk>`).
    fn encode(&self, text: &str) -> Vec<u32> {
        split_words_with(text, self.split)
            .into_iter()
            .map(|w| self.ids.get(w).copied().unwrap_or(0))
            .collect()
    }

    /// Tokens joined by [`join_words`]; out-of-range ids decode as `<unk>`.
    fn decode(&self, ids: &[u32]) -> String {
        let words: Vec<&str> = ids
            .iter()
            .map(|&id| {
                self.vocab
                    .get(id as usize)
                    .map_or(UNK_TOKEN, String::as_str)
            })
            .collect();
        join_words(&words)
    }

    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }

    fn token_str(&self, id: u32) -> String {
        self.vocab
            .get(id as usize)
            .map_or(UNK_TOKEN, String::as_str)
            .to_string()
    }

    fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }
}
