//! The auditor's test set as a job: the windows a rule file is measured over (a stream's
//! held-out windows, a pretrained model's bundled text, or a file of sentences, one per line)
//! and each rule's pass/fail over them under one dial setting.

use std::path::Path;

use anyhow::{bail, Result};

use crate::data::tokenizer::Tokenizer;
use crate::engine::corpus::bundled_path;
use crate::engine::jobs::rules::{rule_evals_watched, RuleEval};
use crate::files::{read_text, MAX_DOCUMENT_BYTES};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::dial::DialSetting;
use crate::rules::check::ResolvedRule;
use crate::train::dataset::TokenStream;

/// Held-out windows measured for a model of ours.
pub const HELD_OUT_WINDOWS: usize = 32;
/// Windows of the bundled text measured for a pretrained model (each costs a full forward).
pub const IMPORTED_WINDOWS: usize = 8;
/// Window length, in tokens, of a pretrained model's test windows.
pub const IMPORTED_WINDOW_TOKENS: usize = 64;
/// Sentences read from a file at most (the rest are left out, and the description says so).
pub const MAX_SENTENCES: usize = 2000;

/// The non-empty lines of a sentences file, trimmed, at most [`MAX_SENTENCES`] of them, and
/// how many lines were left out beyond that.
pub fn read_sentences(path: &Path) -> Result<(Vec<String>, usize)> {
    let text = read_text(path, MAX_DOCUMENT_BYTES, "a sentences file")?;
    let all: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if all.is_empty() {
        bail!("{}: no sentences (every line is empty)", path.display());
    }
    let left_out = all.len().saturating_sub(MAX_SENTENCES);
    Ok((all.into_iter().take(MAX_SENTENCES).collect(), left_out))
}

/// Each sentence's token ids, cut to `max_len`; sentences that tokenize to nothing are left
/// out.
pub fn sentence_windows(
    sentences: &[String],
    tok: &dyn Tokenizer,
    max_len: usize,
) -> Vec<Vec<u32>> {
    sentences
        .iter()
        .map(|s| {
            let mut ids = tok.encode(s);
            ids.truncate(max_len);
            ids
        })
        .filter(|ids| !ids.is_empty())
        .collect()
}

/// Up to `n` consecutive windows of `len` tokens from the start of `stream`.
pub fn stream_windows(stream: &TokenStream, len: usize, n: usize) -> Vec<Vec<u32>> {
    (0..n)
        .map_while(|w| stream.window(w * len, len).map(|win| win.x.to_vec()))
        .collect()
}

/// [`IMPORTED_WINDOWS`] windows of [`IMPORTED_WINDOW_TOKENS`] tokens of the bundled
/// Shakespeare, a pretrained model's held-out text (what `localist eval` scores it on).
pub fn imported_windows(tok: &dyn Tokenizer) -> Result<Vec<Vec<u32>>> {
    let path = bundled_path(Path::new("assets/corpora/shakespeare_1mb.txt"));
    let text = crate::data::corpus::load_corpus(&path)?;
    let take: String = text
        .chars()
        .take(IMPORTED_WINDOWS * IMPORTED_WINDOW_TOKENS * 6)
        .collect();
    let ids = tok.encode(&take);
    Ok(ids
        .chunks(IMPORTED_WINDOW_TOKENS)
        .filter(|w| w.len() == IMPORTED_WINDOW_TOKENS)
        .take(IMPORTED_WINDOWS)
        .map(<[u32]>::to_vec)
        .collect())
}

/// Each rule's firings, pass rate and mean PF over `windows` under `dial`; `watch` hears
/// how many windows are done and stops the job by returning false.
pub fn audit_windows(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    rules: &[ResolvedRule],
    windows: &[Vec<u32>],
    dial: &DialSetting,
    watch: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<RuleEval>> {
    if rules.is_empty() {
        bail!("no rules are in force: apply rules in the Rules tab first");
    }
    if windows.is_empty() {
        bail!("the test set has no sentence to measure");
    }
    rule_evals_watched(
        model,
        blocks,
        rules,
        windows,
        std::slice::from_ref(dial),
        watch,
    )
}
