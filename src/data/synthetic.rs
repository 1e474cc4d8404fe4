//! A seeded generator of synthetic regulated-domain text: clinical notes and payments.
//!
//! Real clinical and payment records cannot ship with the studio, yet they are exactly where
//! localist attention matters: an auditor wants to see that a dose was read off *its* drug and an
//! amount off *its* currency. This generator writes short records in both domains with a known
//! answer for every such pointer, a lexicon that puts every word in a named block, and ground
//! truth aligned token-for-token with [`split_words`](super::tokenizer::split_words). Templates vary the distance (1–5 words)
//! between pointer and target, and many add a distractor of the target's category earlier in the
//! record ("switched from atenolol to lisinopril at 20 mg": the dose points at lisinopril).
//!
//! Output is a pure function of [`SyntheticSpec`]: same seed, byte-identical files.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::lexicon::{Lexicon, LexiconError};
use super::tokenizer::join_words;
use crate::analysis::rng::SplitMix64;
use crate::files::write_all_atomic;

use super::synthetic_vocab::{
    cat, ACCOUNTS, AMOUNTS, CATEGORIES, CONDITIONS, CURRENCIES, CURRENCY_AMOUNT_GAPS, DATES, DOSES,
    DRUGS, DRUG_DOSE_GAPS, FREQUENCIES, RAILS, UNITS,
};

/// Most records of one synthetic corpus (about 18 million words, 110 MB of text): the
/// corpus is built in memory, and a billion records once asked for 8 GB and aborted.
pub const MAX_RECORDS: usize = 1_000_000;

/// Which kind of record a record is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Domain {
    /// A clinical note (drugs, doses, conditions).
    Clinical,
    /// A payment record (amounts, currencies, accounts).
    Payment,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyntheticSpec {
    /// Seed of the whole corpus.
    pub seed: u64,
    /// Number of records.
    pub num_records: usize,
    /// Probability that a record is clinical (clamped to [0, 1]); the rest are payments.
    pub clinical_fraction: f64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        Self {
            seed: 0,
            num_records: 2000,
            clinical_fraction: 0.5,
        }
    }
}

/// A generated corpus with its ground truth. All per-token vectors have `tokens.len()` entries.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticCorpus {
    /// The corpus text; `split_words(&text) == tokens`.
    pub text: String,
    /// The word tokens of `text`, in order.
    pub tokens: Vec<String>,
    /// Category (block) names: drug, dose, unit, condition, amount, currency, account, date,
    /// function.
    pub categories: Vec<String>,
    /// `(word, category)` for every distinct token of `text`, grouped by category in
    /// `categories` order, then in order of first appearance.
    pub lexicon: Vec<(String, String)>,
    /// Per token, the index into `categories` of its category.
    pub token_categories: Vec<usize>,
    /// Per token, the index of the earlier token it must point to: a dose's drug, an amount's
    /// currency; `None` for every other token.
    pub pointer_targets: Vec<Option<usize>>,
    /// Token index of the first token of each record.
    pub record_starts: Vec<usize>,
    /// Domain of each record.
    pub record_domain: Vec<Domain>,
}

/// Accumulates tokens with their category and pointer target.
struct Builder {
    tokens: Vec<&'static str>,
    categories: Vec<usize>,
    targets: Vec<Option<usize>>,
}

impl Builder {
    fn push(&mut self, word: &'static str, category: usize, target: Option<usize>) -> usize {
        self.tokens.push(word);
        self.categories.push(category);
        self.targets.push(target);
        self.tokens.len() - 1
    }

    fn words(&mut self, words: &[&'static str]) {
        for word in words {
            self.push(word, cat::FUNCTION, None);
        }
    }
}

/// A uniformly chosen entry of a non-empty constant list.
fn pick<T: Copy + Default>(rng: &mut SplitMix64, items: &[T]) -> T {
    rng.choose(items).copied().unwrap_or_default()
}

/// Two different indices into a list of length `n >= 2`.
fn two_distinct(rng: &mut SplitMix64, n: usize) -> (usize, usize) {
    let a = rng.below(n);
    let b = (a + 1 + rng.below(n.saturating_sub(1))) % n.max(1);
    (a, b)
}

fn word_at(items: &[&'static str], i: usize) -> &'static str {
    items.get(i).copied().unwrap_or_default()
}

/// The canonical unit of a drug: each drug is always dosed in one unit, so predicting the
/// unit after a dose needs the drug — the reason a dose should point at its drug.
fn drug_unit(drug: &str) -> &'static str {
    let i = DRUGS.iter().position(|d| *d == drug).unwrap_or(0);
    word_at(&UNITS, i % UNITS.len())
}

/// `<gap> <dose> <unit>` after the drug at token `drug`; the dose points at it.
fn dose_after(b: &mut Builder, rng: &mut SplitMix64, drug: usize) {
    let unit = drug_unit(b.tokens.get(drug).copied().unwrap_or_default());
    b.words(pick(rng, &DRUG_DOSE_GAPS));
    b.push(pick(rng, &DOSES), cat::DOSE, Some(drug));
    b.push(unit, cat::UNIT, None);
}

/// `<currency> <gap> <amount>`; the amount points at the currency.
fn priced(b: &mut Builder, rng: &mut SplitMix64, currency: &'static str) {
    let cur = b.push(currency, cat::CURRENCY, None);
    b.words(pick(rng, &CURRENCY_AMOUNT_GAPS));
    b.push(pick(rng, &AMOUNTS), cat::AMOUNT, Some(cur));
    let rail = CURRENCIES.iter().position(|c| *c == currency).unwrap_or(0);
    b.push(word_at(&RAILS, rail), cat::RAIL, None);
}

fn clinical_record(b: &mut Builder, rng: &mut SplitMix64) {
    b.words(&["note"]);
    b.push(pick(rng, &DATES), cat::DATE, None);
    b.words(&[":"]);
    let (i, j) = two_distinct(rng, DRUGS.len());
    let (drug_a, drug_b) = (word_at(&DRUGS, i), word_at(&DRUGS, j));
    let cond = pick(rng, &CONDITIONS);
    match rng.below(7) {
        0 => {
            b.words(&["patient", "with"]);
            b.push(cond, cat::CONDITION, None);
            b.words(&["started", "on"]);
            let d = b.push(drug_a, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[pick(rng, &FREQUENCIES)]);
        }
        1 => {
            b.words(&["switched", "from"]);
            b.push(drug_a, cat::DRUG, None);
            b.words(&["to"]);
            let d = b.push(drug_b, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[pick(rng, &FREQUENCIES)]);
        }
        2 => {
            b.words(&["stopped"]);
            let d = b.push(drug_a, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[";", "started"]);
            let d = b.push(drug_b, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&["for"]);
            b.push(cond, cat::CONDITION, None);
        }
        3 => {
            b.words(&["for"]);
            b.push(cond, cat::CONDITION, None);
            b.words(&["give"]);
            let d = b.push(drug_a, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[pick(rng, &FREQUENCIES), "and", "review", "on"]);
            b.push(pick(rng, &DATES), cat::DATE, None);
        }
        4 => {
            b.push(cond, cat::CONDITION, None);
            b.words(&[",", "continue"]);
            let d = b.push(drug_a, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[",", "add"]);
            let d = b.push(drug_b, cat::DRUG, None);
            dose_after(b, rng, d);
        }
        5 => {
            b.words(&["history", "of"]);
            b.push(cond, cat::CONDITION, None);
            b.words(&["on"]);
            b.push(drug_a, cat::DRUG, None);
            b.words(&[";", "now", "prescribed"]);
            let d = b.push(drug_b, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[pick(rng, &FREQUENCIES)]);
        }
        _ => {
            b.push(drug_a, cat::DRUG, None);
            b.words(&["not", "tolerated", ","]);
            let d = b.push(drug_b, cat::DRUG, None);
            dose_after(b, rng, d);
            b.words(&[pick(rng, &FREQUENCIES), "instead"]);
        }
    }
}

fn payment_record(b: &mut Builder, rng: &mut SplitMix64) {
    b.words(&["txn"]);
    b.push(pick(rng, &DATES), cat::DATE, None);
    b.words(&[":"]);
    let (i, j) = two_distinct(rng, CURRENCIES.len());
    let (cur_a, cur_b) = (word_at(&CURRENCIES, i), word_at(&CURRENCIES, j));
    let (k, l) = two_distinct(rng, ACCOUNTS.len());
    let (acc_a, acc_b) = (word_at(&ACCOUNTS, k), word_at(&ACCOUNTS, l));
    match rng.below(7) {
        0 => {
            b.words(&["pay"]);
            priced(b, rng, cur_a);
            b.words(&["to"]);
            b.push(acc_a, cat::ACCOUNT, None);
            b.words(&["on"]);
            b.push(pick(rng, &DATES), cat::DATE, None);
        }
        1 => {
            b.words(&["refund", "of"]);
            priced(b, rng, cur_a);
            b.words(&["reversed", ";", "charged"]);
            priced(b, rng, cur_b);
            b.words(&["to"]);
            b.push(acc_a, cat::ACCOUNT, None);
        }
        2 => {
            b.words(&["transfer", "from"]);
            b.push(acc_a, cat::ACCOUNT, None);
            b.words(&["to"]);
            b.push(acc_b, cat::ACCOUNT, None);
            b.words(&["in"]);
            priced(b, rng, cur_a);
        }
        3 => {
            b.words(&["invoice", "billed", "in"]);
            b.push(cur_a, cat::CURRENCY, None);
            b.words(&[",", "settled", "in"]);
            priced(b, rng, cur_b);
        }
        4 => {
            b.words(&["fee"]);
            priced(b, rng, cur_a);
            b.words(&["charged", "to"]);
            b.push(acc_a, cat::ACCOUNT, None);
            b.words(&[",", "balance"]);
            priced(b, rng, cur_b);
        }
        5 => {
            b.words(&["received"]);
            priced(b, rng, cur_a);
            b.words(&["from"]);
            b.push(acc_a, cat::ACCOUNT, None);
            b.words(&["for", "invoice", "dated"]);
            b.push(pick(rng, &DATES), cat::DATE, None);
        }
        _ => {
            b.words(&["converted"]);
            b.push(cur_a, cat::CURRENCY, None);
            b.words(&["to"]);
            priced(b, rng, cur_b);
            b.words(&["for"]);
            b.push(acc_a, cat::ACCOUNT, None);
        }
    }
}

impl SyntheticCorpus {
    /// Generate the corpus described by `spec`; deterministic in `spec`.
    pub fn generate(spec: &SyntheticSpec) -> Self {
        let mut rng = SplitMix64::new(spec.seed);
        let mut b = Builder {
            tokens: Vec::new(),
            categories: Vec::new(),
            targets: Vec::new(),
        };
        let mut record_starts = Vec::with_capacity(spec.num_records);
        let mut record_domain = Vec::with_capacity(spec.num_records);
        let clinical_fraction = spec.clinical_fraction.clamp(0.0, 1.0);
        for _ in 0..spec.num_records {
            record_starts.push(b.tokens.len());
            let domain = if rng.next_f64() < clinical_fraction {
                clinical_record(&mut b, &mut rng);
                Domain::Clinical
            } else {
                payment_record(&mut b, &mut rng);
                Domain::Payment
            };
            record_domain.push(domain);
            b.words(&[".", "\n"]);
        }
        let lexicon = build_lexicon(&b.tokens, &b.categories);
        Self {
            text: join_words(&b.tokens),
            tokens: b.tokens.iter().map(|w| w.to_string()).collect(),
            categories: CATEGORIES.iter().map(|c| c.to_string()).collect(),
            lexicon,
            token_categories: b.categories,
            pointer_targets: b.targets,
            record_starts,
            record_domain,
        }
    }

    /// The lexicon as a [`Lexicon`] (block names in category order, for categories that occur).
    pub fn to_lexicon(&self) -> Result<Lexicon, LexiconError> {
        Lexicon::from_pairs(&self.lexicon, Path::new("lexicon.tsv"))
    }

    /// Write `corpus.txt` (the text), `lexicon.tsv` (see the lexicon module for the format) and
    /// `targets.json` into `dir`, creating it if needed. Each file is written to a temporary name
    /// and renamed, so a reader never sees a half-written file.
    ///
    /// `targets.json` is `{"format": "localist-pointer-targets", "version": 1, "num_tokens": N,
    /// "targets": [[token_index, target_index], ...]}`, ascending by token index, with indices
    /// into `split_words(corpus.txt)`.
    pub fn write_to_dir(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let lexicon = self.to_lexicon().map_err(io::Error::other)?;
        let pairs: Vec<[usize; 2]> = self
            .pointer_targets
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|j| [i, j]))
            .collect();
        let targets = serde_json::json!({
            "format": "localist-pointer-targets",
            "version": 1,
            "num_tokens": self.tokens.len(),
            "targets": pairs,
        });
        let targets_text = serde_json::to_string(&targets).map_err(io::Error::other)?;
        // All three or none: a full disk left a folder of corpus.txt alone, which a later
        // synth then refused as not its own.
        let paths = [
            dir.join("corpus.txt"),
            dir.join("lexicon.tsv"),
            dir.join("targets.json"),
        ];
        let (lexicon, targets) = (lexicon.to_tsv(), targets_text + "\n");
        let contents = [self.text.as_bytes(), lexicon.as_bytes(), targets.as_bytes()];
        let files: Vec<(&Path, &[u8])> = paths.iter().map(PathBuf::as_path).zip(contents).collect();
        write_all_atomic(&files).map_err(|(k, e)| {
            io::Error::new(e.kind(), format!("{}: {e}", paths[k.min(2)].display()))
        })
    }
}

/// Every distinct token with its category, grouped by category then first appearance.
fn build_lexicon(tokens: &[&'static str], categories: &[usize]) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut by_category: Vec<Vec<&str>> = vec![Vec::new(); CATEGORIES.len()];
    for (&word, &c) in tokens.iter().zip(categories) {
        if seen.insert(word) {
            if let Some(list) = by_category.get_mut(c) {
                list.push(word);
            }
        }
    }
    CATEGORIES
        .iter()
        .zip(by_category)
        .flat_map(|(c, words)| {
            words
                .into_iter()
                .map(move |w| (w.to_string(), c.to_string()))
        })
        .collect()
}
