//! The synthetic regulated-domain corpus written to a directory with its ground truth.

pub use crate::data::synthetic::MAX_RECORDS;
use std::path::Path;

use anyhow::{Context, Result};

use crate::data::synthetic::{SyntheticCorpus, SyntheticSpec};

/// What was written.
#[derive(Clone, Copy, Debug)]
pub struct SynthSummary {
    /// Tokens of the corpus.
    pub tokens: usize,
    /// Tokens with a pointer target.
    pub pointer_targets: usize,
    /// Words in the lexicon.
    pub lexicon_words: usize,
}

/// Generate the corpus of `spec` and write corpus.txt, lexicon.tsv and targets.json in `out`.
pub fn write_synthetic(spec: &SyntheticSpec, out: &Path) -> Result<SynthSummary> {
    let corpus = SyntheticCorpus::generate(spec);
    corpus
        .write_to_dir(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(SynthSummary {
        tokens: corpus.tokens.len(),
        pointer_targets: corpus
            .pointer_targets
            .iter()
            .filter(|t| t.is_some())
            .count(),
        lexicon_words: corpus.lexicon.len(),
    })
}
