//! How much of a text a tokenizer can represent, checked before training or evaluating on it.
//!
//! **Why.** The character tokenizer has the reference trainer's 96 symbols (printable ASCII and
//! newline): every other character becomes `?`. Trained on Chinese text, a model saw only `?`
//! and spaces, and reported held-out perplexity 1.36 and top-1 97.6%: a perfect score for
//! nothing. A word vocabulary taken from a checkpoint does the same on a text of other words
//! (everything `<unk>`). So a text whose tokens are mostly unrepresentable is refused with the
//! share, the first such character or word and its line, and what to do instead; above
//! [`WARN_UNKNOWN_FRACTION`] a warning says the same and the run goes on.

use std::collections::HashSet;

use crate::data::tokenizer::{split_words_with, CharTokenizer, TokenizerSpec, MAX_WORD_VOCAB};

/// Share of a text's tokens (newlines and spaces not counted; tabs and CRs are) that a
/// tokenizer cannot represent above which the text is refused.
pub const MAX_UNKNOWN_FRACTION: f64 = 0.5;

/// Share above which a warning is given.
pub const WARN_UNKNOWN_FRACTION: f64 = 0.05;

/// How much of a text a tokenizer represents.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    /// Tokens it cannot represent (characters that become `?`, words that become `<unk>`).
    pub unknown: usize,
    /// Tokens counted (characters other than spaces and newlines; words other than newlines).
    pub total: usize,
    /// The first unrepresentable token and its 1-based line.
    pub first: Option<(String, usize)>,
}

impl Coverage {
    /// The unrepresentable share (0 for an empty text).
    pub fn fraction(&self) -> f64 {
        self.unknown as f64 / self.total.max(1) as f64
    }

    /// A sentence for a person: how much is lost, where it starts, and what to do (`fitted`:
    /// the word vocabulary was fitted on this text, not taken from a model).
    pub fn describe(&self, spec: &TokenizerSpec, fitted: bool) -> String {
        let first = self.first.as_ref().map_or(String::new(), |(t, line)| {
            format!(" (the first, {t:?}, on line {line})")
        });
        let (what, remedy) = match spec {
            TokenizerSpec::Char => (
                "characters outside the character tokenizer's 96 symbols (printable ASCII and \
                 newline) and would all be read as '?'",
                "train with word tokens (--tokenizer word; in the studio, tick \"word tokens\"), which take letters of any script",
            ),
            TokenizerSpec::Word { vocab, .. } if fitted => (
                "words outside the vocabulary fitted on it and would all be read as <unk>",
                if vocab.len() >= MAX_WORD_VOCAB {
                    "the vocabulary keeps the most frequent words only: this text has too many \
                     distinct ones for a word model (try --tokenizer char)"
                } else {
                    "check the text's encoding and contents"
                },
            ),
            TokenizerSpec::Word { .. } => (
                "words outside this model's vocabulary and would all be read as <unk>",
                "use a text in the model's language and domain, or train a new model on this one",
            ),
        };
        format!(
            "{:.1}% of its tokens ({} of {}) are {what}{first}; {remedy}",
            100.0 * self.fraction(),
            self.unknown,
            self.total
        )
    }
}

/// How much of `text` the tokenizer of `spec` represents; `ids` are its tokens (`tok.encode`).
/// A word text is counted from `ids` (id 0 is `<unk>`, id 1 the newline), and its first
/// unknown word is looked for only when there is one, line by line, stopping there: no second
/// token list of a large corpus is made.
pub fn coverage(text: &str, spec: &TokenizerSpec, ids: &[u32]) -> Coverage {
    let mut cov = Coverage {
        unknown: 0,
        total: 0,
        first: None,
    };
    match spec {
        TokenizerSpec::Char => {
            for (n, line) in text.split('\n').enumerate() {
                // Spaces are symbols of their own; every other character, tab and carriage
                // return included (they become '?' too), is counted.
                for c in line.chars().filter(|&c| c != ' ') {
                    cov.total += 1;
                    if c != '?' && CharTokenizer::char_id(c) == CharTokenizer::REPLACEMENT_ID {
                        cov.unknown += 1;
                        cov.first.get_or_insert_with(|| (c.to_string(), n + 1));
                    }
                }
            }
        }
        TokenizerSpec::Word { vocab, split } => {
            cov.unknown = ids.iter().filter(|&&id| id == 0).count();
            cov.total = ids.iter().filter(|&&id| id != 1).count();
            if cov.unknown > 0 {
                let known: HashSet<&str> = vocab.iter().map(String::as_str).collect();
                cov.first = text.split('\n').enumerate().find_map(|(n, line)| {
                    split_words_with(line, *split)
                        .into_iter()
                        .find(|w| !known.contains(w))
                        .map(|w| (w.to_string(), n + 1))
                });
            }
        }
    }
    cov
}

/// The policy on a text's unreadable share, for every command that reads a text: `what` names
/// the text in the sentence. More than [`MAX_UNKNOWN_FRACTION`] unreadable: `Err` with the
/// sentence (the text is refused); more than [`WARN_UNKNOWN_FRACTION`]: `Ok(Some)` with it (a
/// warning); else `Ok(None)`. `fitted` as in [`Coverage::describe`].
pub fn judge(
    text: &str,
    spec: &TokenizerSpec,
    ids: &[u32],
    what: &str,
    fitted: bool,
) -> Result<Option<String>, String> {
    let c = coverage(text, spec, ids);
    if c.fraction() <= WARN_UNKNOWN_FRACTION {
        return Ok(None);
    }
    let said = format!("{what}: {}", c.describe(spec, fitted));
    if c.fraction() > MAX_UNKNOWN_FRACTION {
        Err(said)
    } else {
        Ok(Some(said))
    }
}

/// Documents the base's tokenizer mostly cannot read are refused, as `train`, `eval` and
/// `capture` refuse such text (Chinese on a character model was routed as 100% `?`), with a
/// warning above 5%.
pub fn readable_documents(
    spec: &crate::data::tokenizer::TokenizerSpec,
    texts: &[(String, String)],
    docs: &std::path::Path,
) -> Result<(), anyhow::Error> {
    let all = texts
        .iter()
        .map(|(_, t)| t.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    let ids = spec.build()?.encode(&all);
    let what = format!("the documents in {}", docs.display());
    let said = judge(&all, spec, &ids, &what, false).map_err(anyhow::Error::msg)?;
    if let Some(w) = said {
        eprintln!("warning: {w}");
    }
    Ok(())
}
