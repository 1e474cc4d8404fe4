//! Corpora as the trainer sees them: text → tokenizer → token stream, plus the block map.
//!
//! A corpus is either a text file or the seeded synthetic regulated-domain generator. Both the
//! command line and the studio go through [`prepare_corpus`] and [`build_blocks`], so a block
//! map or tokenizer is made the same way wherever a model is trained.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::data::corpus::read_corpus_noting;
use crate::data::lexicon::Lexicon;
use crate::data::synthetic::{SyntheticCorpus, SyntheticSpec};
use crate::data::tokenizer::{
    CharTokenizer, Tokenizer, TokenizerSpec, WordTokenizer, MAX_WORD_VOCAB,
};
/// The topic corpus family, as the faces name it (`localist corpus-gen` writes one).
pub use crate::data::topics::{TopicCorpus, TopicSpec, MAX_TOPICS};
use crate::engine::coverage::judge;
use crate::model::blocks::BlockMap;
use crate::train::dataset::TokenStream;

/// Where training text comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum CorpusSource {
    /// A UTF-8 text file.
    File {
        /// Its path.
        path: PathBuf,
    },
    /// The synthetic clinical-and-payments generator.
    Synthetic {
        /// Generator seed.
        seed: u64,
        /// Number of records.
        records: usize,
    },
    /// K* topics with disjoint vocabularies (the recruitment corpus, [`TopicSpec`]).
    Topics {
        /// Generator seed.
        seed: u64,
        /// Number of topics K*.
        topics: usize,
    },
}

impl CorpusSource {
    /// Parse `synthetic`, `synthetic:N` (records) or a file path.
    pub fn parse(s: &str, seed: u64) -> Result<Self> {
        if s.trim().is_empty() {
            bail!("the corpus is empty: give a text file, `synthetic[:N]` or `topics:K`");
        }
        let generator = s == "synthetic" || s.starts_with("synthetic:") || s.starts_with("topics:");
        if generator && std::fs::metadata(s).is_ok_and(|m| m.is_file()) {
            bail!(
                "'{s}' names a built-in generated corpus, and a file of that name is here \
                 too: pass ./{s} to train on the file, or rename it"
            );
        }
        if s == "synthetic" {
            return Ok(Self::Synthetic {
                seed,
                records: 4000,
            });
        }
        if let Some(k) = s.strip_prefix("topics:") {
            let topics: usize = k.parse().with_context(|| {
                format!("'{s}': expected topics:K with K from 2 to {MAX_TOPICS}")
            })?;
            let source = Self::Topics { seed, topics };
            source.check_generated()?;
            return Ok(source);
        }
        if let Some(n) = s.strip_prefix("synthetic:") {
            let records: usize = n
                .parse()
                .with_context(|| format!("'{s}': expected synthetic:RECORDS"))?;
            let source = Self::Synthetic { seed, records };
            source.check_generated()?;
            return Ok(source);
        }
        Ok(Self::File { path: s.into() })
    }

    /// A generated corpus within its generator's sizes, as parsed or as a checkpoint recorded
    /// it (a `config.json` naming 10¹² records was built until memory ran out). Topics: the
    /// range of `corpus-gen --topics` (the generator has 8 topics of real words).
    pub fn check_generated(&self) -> Result<()> {
        let most = crate::data::synthetic::MAX_RECORDS;
        match self {
            Self::Synthetic { records, .. } if !(1..=most).contains(records) => {
                bail!("synthetic:{records}: the synthetic corpus has 1 to {most} records")
            }
            Self::Topics { topics, .. } if !(2..=MAX_TOPICS).contains(topics) => {
                bail!("topics:{topics}: the topic corpus has 2 to {MAX_TOPICS} topics")
            }
            _ => Ok(()),
        }
    }

    /// Short human label.
    pub fn label(&self) -> String {
        match self {
            Self::File { path } => path.display().to_string(),
            Self::Synthetic { seed, records } => {
                format!("synthetic ({records} records, seed {seed})")
            }
            Self::Topics { seed, topics } => format!("{topics} topics (seed {seed})"),
        }
    }
}

/// Which tokenizer to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenizerKind {
    /// The reference's 96-symbol character vocabulary.
    Char,
    /// Words, fitted on the corpus.
    Word,
}

/// A corpus ready for training.
pub struct PreparedCorpus {
    /// Where it came from.
    pub source: CorpusSource,
    /// SHA-256 of the text (hex).
    pub sha256: String,
    /// The tokenizer.
    pub tokenizer: Box<dyn Tokenizer>,
    /// Its serialisable description.
    pub tokenizer_spec: TokenizerSpec,
    /// All tokens with ground-truth pointer targets when known.
    pub stream: TokenStream,
    /// The ground-truth lexicon (synthetic corpora).
    pub lexicon: Option<Lexicon>,
    /// What was found wrong with the text short of refusing it (also printed to stderr).
    pub warnings: Vec<String>,
}

/// The topic corpus of `CorpusSource::Topics` (3,500 documents of 96 words, themes of 3: the
/// 10% held out is a recruitment buffer of about 34,000 tokens).
pub fn topic_corpus(seed: u64, topics: usize) -> TopicCorpus {
    TopicCorpus::generate(&TopicSpec {
        seed,
        topics,
        documents: 3500,
        ..TopicSpec::default()
    })
}

/// Hex SHA-256 of bytes (one function for checkpoints, corpora and audits).
pub use crate::model::checkpoint::sha256_hex;

/// Load and tokenize a corpus. `tokenizer` may be given (a checkpoint's) to reuse its ids. A
/// text the tokenizer mostly cannot represent is refused (see [`super::coverage`]).
pub fn prepare_corpus(
    source: &CorpusSource,
    kind: TokenizerKind,
    tokenizer: Option<&TokenizerSpec>,
) -> Result<PreparedCorpus> {
    prepare_corpus_checked(source, kind, tokenizer, |_| Ok(()))
}

/// [`prepare_corpus`], with `check` given the text's SHA-256 before anything of it is judged
/// or quoted (a recorded corpus naming another file had a word of it quoted in a warning).
pub fn prepare_corpus_checked(
    source: &CorpusSource,
    kind: TokenizerKind,
    tokenizer: Option<&TokenizerSpec>,
    check: impl FnOnce(&str) -> Result<()>,
) -> Result<PreparedCorpus> {
    let mut warnings = Vec::new();
    let (text, targets, lexicon) = match source {
        CorpusSource::File { path } => (read_corpus_noting(path, &mut warnings)?, Vec::new(), None),
        CorpusSource::Synthetic { seed, records } => {
            source.check_generated()?;
            let corpus = SyntheticCorpus::generate(&SyntheticSpec {
                seed: *seed,
                num_records: *records,
                ..SyntheticSpec::default()
            });
            let lex = corpus.to_lexicon().context("synthetic lexicon")?;
            (corpus.text, corpus.pointer_targets, Some(lex))
        }
        CorpusSource::Topics { seed, topics } => {
            source.check_generated()?;
            let corpus = topic_corpus(*seed, *topics);
            let lex = Lexicon::from_pairs(
                &corpus
                    .truth
                    .iter()
                    .map(|(w, t)| (w.clone(), corpus.topic_names[*t].clone()))
                    .collect::<Vec<_>>(),
                std::path::Path::new("topic generator truth"),
            )
            .context("topic lexicon")?;
            (corpus.text, Vec::new(), Some(lex))
        }
    };
    let sha256 = sha256_hex(text.as_bytes());
    check(&sha256)?;
    let spec = match tokenizer {
        Some(spec) => spec.clone(),
        None => match (kind, source) {
            (TokenizerKind::Char, CorpusSource::File { .. }) => CharTokenizer.spec(),
            _ => WordTokenizer::fit(&text, 1, MAX_WORD_VOCAB).spec(),
        },
    };
    let tok = spec.build().context(if tokenizer.is_some() {
        "the tokenizer recorded in the resumed checkpoint's config.json"
    } else {
        "building the tokenizer"
    })?;
    let ids = tok.encode(&text);
    let what = match source {
        CorpusSource::File { path } => format!("corpus {}", path.display()),
        _ => "the generated corpus".to_string(),
    };
    for note in &warnings {
        eprintln!("note: {note}");
    }
    if let Some(said) =
        judge(&text, &spec, &ids, &what, tokenizer.is_none()).map_err(anyhow::Error::msg)?
    {
        eprintln!("warning: {said}");
        warnings.push(said);
    }
    if !targets.is_empty() && targets.len() != ids.len() {
        let (words, read) = (targets.len(), ids.len());
        bail!("the synthetic corpus is {words} words, each with its pointer target, which this tokenizer reads as {read} tokens: a character model cannot be measured on it; give a text file, or a model trained with --tokenizer word");
    }
    Ok(PreparedCorpus {
        source: source.clone(),
        sha256,
        tokenizer: tok,
        tokenizer_spec: spec,
        stream: TokenStream { ids, targets },
        lexicon,
        warnings,
    })
}

/// How to build the block map.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BlockSpec {
    /// One block (distributed baseline).
    Single,
    /// Positional windows of this width (not semantic).
    Windows(usize),
    /// A lexicon file.
    Lexicon(PathBuf),
    /// The corpus's own ground-truth lexicon (synthetic), with dose→drug and amount→currency.
    Corpus,
}

impl BlockSpec {
    /// Parse `single`, `windows:W`, `lexicon:PATH` or `corpus`.
    pub fn parse(s: &str) -> Result<Self> {
        if s == "single" {
            return Ok(Self::Single);
        }
        if s == "corpus" || s == "synthetic" {
            return Ok(Self::Corpus);
        }
        if let Some(w) = s.strip_prefix("windows:") {
            return Ok(Self::Windows(
                w.parse()
                    .with_context(|| format!("'{s}': expected windows:WIDTH"))?,
            ));
        }
        if let Some(p) = s.strip_prefix("lexicon:") {
            return Ok(Self::Lexicon(p.into()));
        }
        bail!("unknown block source '{s}': use single, windows:W, lexicon:PATH or corpus")
    }

    /// The default for a corpus: its lexicon when it has one, else windows of 8.
    pub fn default_for(corpus: &PreparedCorpus) -> Self {
        if corpus.lexicon.is_some() {
            Self::Corpus
        } else {
            Self::Windows(8)
        }
    }
}

fn map_from_lexicon(lex: &Lexicon, tok: &dyn Tokenizer, source: &str) -> Result<BlockMap> {
    let resolved = lex.resolve(tok)?;
    let pairs: Vec<(u32, String)> = resolved
        .into_iter()
        .map(|(id, b)| (id, lex.block_names.get(b).cloned().unwrap_or_default()))
        .collect();
    Ok(BlockMap::from_assignments(tok.vocab_size(), &pairs, source))
}

/// Build the block map for a corpus.
pub fn build_blocks(
    spec: &BlockSpec,
    corpus: &PreparedCorpus,
    max_seq_len: usize,
) -> Result<BlockMap> {
    let vocab = corpus.tokenizer.vocab_size();
    Ok(match spec {
        BlockSpec::Single => BlockMap::single(vocab),
        BlockSpec::Windows(w) => BlockMap::windows(*w, max_seq_len)?,
        BlockSpec::Lexicon(path) => {
            let lex = Lexicon::load(path)?;
            map_from_lexicon(
                &lex,
                corpus.tokenizer.as_ref(),
                &format!("lexicon {}", path.display()),
            )?
        }
        BlockSpec::Corpus => {
            let Some(lex) = &corpus.lexicon else {
                bail!(
                    "corpus {} has no lexicon: choose --blocks windows:W or lexicon:PATH",
                    corpus.source.label()
                );
            };
            let mut map = map_from_lexicon(
                lex,
                corpus.tokenizer.as_ref(),
                "synthetic ground-truth lexicon",
            )?;
            for (from, to) in [("dose", "drug"), ("amount", "currency")] {
                if map.index_of(from).is_some() && map.index_of(to).is_some() {
                    map.set_relevance(from, to)?;
                }
            }
            map
        }
    })
}

/// Resolve a path relative to the crate root when it does not exist as given (so bundled assets
/// are found from any working directory of `cargo run`).
pub fn asset_path(p: &Path) -> PathBuf {
    if p.exists() || p.is_absolute() {
        return p.to_path_buf();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
    if root.exists() {
        root
    } else {
        p.to_path_buf()
    }
}

/// A file the program ships with (a sample model, the example rules, the bundled corpus): the
/// copy in the program's own tree first, so that a folder of the same name under the current
/// folder (a user's own `sample_models/`) does not stand in for it; else as
/// [`asset_path`].
pub fn bundled_path(p: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(p);
    if p.is_relative() && root.exists() {
        root
    } else {
        asset_path(p)
    }
}

/// The training corpus a checkpoint's training facts record: its file (when it is one) and
/// its SHA-256.
pub fn recorded_corpus(training: &serde_json::Value) -> Option<(Option<PathBuf>, String)> {
    let sha = training.get("corpus_sha256")?.as_str()?.to_string();
    let path = training
        .get("corpus")
        .and_then(|c| serde_json::from_value::<CorpusSource>(c.clone()).ok())
        .and_then(|c| match c {
            CorpusSource::File { path } => Some(asset_path(&path)),
            CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => None,
        });
    Some((path, sha))
}

/// The first record of a checkpoint's generated training corpus (synthetic or topics), for
/// display; `None` for a corpus read from a file.
pub fn sample_text(training: &serde_json::Value) -> Option<String> {
    let corpus: CorpusSource = serde_json::from_value(training.get("corpus")?.clone()).ok()?;
    match corpus {
        CorpusSource::Synthetic { seed, .. } => {
            let c = SyntheticCorpus::generate(&SyntheticSpec {
                seed,
                num_records: 1,
                ..SyntheticSpec::default()
            });
            Some(c.text.trim_end().to_string())
        }
        CorpusSource::Topics { seed, topics } => topic_corpus(seed, topics)
            .text
            .lines()
            .next()
            .map(|l| l.split(' ').take(48).collect::<Vec<_>>().join(" ")),
        CorpusSource::File { .. } => None,
    }
}
