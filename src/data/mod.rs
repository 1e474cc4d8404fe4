//! Data: tokenizers, corpora, lexicons and the synthetic corpus generator.
//!
//! Everything here turns files and text into what the model and the block map consume (token
//! ids, `word → block` tables, batch offsets), and nothing here knows about tensors, so it can be
//! tested quickly and reused by the CLI, the trainer and the studio alike.

pub mod corpus;
pub mod lexicon;
mod lexicon_escape;
pub mod synthetic;
pub mod synthetic_vocab;
pub mod tokenizer;
pub mod topics;
pub mod words;

pub use corpus::{load_corpus, sequential_offsets, train_val_split, CorpusError};
pub use lexicon::{Lexicon, LexiconEntry, LexiconError};
pub use synthetic::{Domain, SyntheticCorpus, SyntheticSpec};
pub use tokenizer::{
    join_words, split_words, split_words_with, CharTokenizer, Tokenizer, TokenizerError,
    TokenizerSpec, WordSplit, WordTokenizer, NEWLINE_TOKEN, UNK_TOKEN,
};
