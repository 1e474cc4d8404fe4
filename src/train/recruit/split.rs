//! Where function words end: the split of the neighbour divergences ([`Profile`]'s) into
//! function-like tokens and content, over the vocabulary and, where that is not clear, over
//! the running text.
//!
//! [`Profile`]: crate::train::recruit::Profile

use std::collections::{BTreeMap, BTreeSet};

use crate::data::tokenizer::Tokenizer;
use crate::train::recruit::cluster::{otsu_cut, weighted_otsu};

/// Otsu's separability η above which the low-divergence class counts as function words.
pub const SEPARABILITY: f64 = 0.85;

/// Least difference between the classes' mean divergences for a split to count (bits).
/// Separability is blind to scale: twelve topic words whose divergences lay within 0.02 bits
/// of each other (1.751–1.773, as the larger of the two sides read them) fell into two tight
/// groups, η above 0.85, and half of them were set apart as function words. Measured gaps
/// between function words and content are 0.5 bits and more (the topic family; Shakespeare's
/// `the` 0.32 against a median word's 2.1).
pub const MIN_SPLIT_BITS: f64 = 0.25;

/// The mean of `v` (0 when empty).
pub(super) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The standard deviation of `v` about its mean (0 when empty).
pub(super) fn spread(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

/// Whether the classes above and below `cut` (of values sorted descending) differ by at least
/// [`MIN_SPLIT_BITS`] in their means.
fn apart(sorted_desc: &[f64], cut: usize) -> bool {
    match (sorted_desc.get(..cut), sorted_desc.get(cut..)) {
        (Some(hi), Some(lo)) if !hi.is_empty() && !lo.is_empty() => {
            mean(hi) - mean(lo) >= MIN_SPLIT_BITS
        }
        _ => false,
    }
}

/// Otsu's cut of values sorted descending and its separability η = σ²_between/σ²_total
/// (0 when the values do not vary).
pub fn otsu_separability(sorted_desc: &[f64]) -> (usize, f64) {
    let cut = otsu_cut(sorted_desc);
    (cut, separability_at(sorted_desc, cut))
}

/// The separability η = σ²_between/σ²_total of the split of `sorted_desc` with `cut` values
/// above (0 when a class is empty or the values do not vary).
fn separability_at(sorted_desc: &[f64], cut: usize) -> f64 {
    let n = sorted_desc.len();
    if n < 2 || cut == 0 || cut >= n {
        return 0.0;
    }
    let (hi, lo) = sorted_desc.split_at(cut);
    let mu = mean(sorted_desc);
    let total = sorted_desc.iter().map(|v| (v - mu).powi(2)).sum::<f64>() / n as f64;
    let (w1, w2) = (hi.len() as f64 / n as f64, lo.len() as f64 / n as f64);
    let between = w1 * w2 * (mean(hi) - mean(lo)).powi(2);
    if total <= 0.0 {
        0.0
    } else {
        between / total
    }
}

/// Whether Otsu's split of the divergences (sorted descending; `cut` of them above) sets a
/// class of function words clearly apart: by its separability (≥ [`SEPARABILITY`]), or by a
/// gap between the classes at least as wide as the spread (standard deviation) of the upper
/// class. The gap matters on small texts: a divergence read from a few dozen neighbours is
/// biased upwards, the more the rarer the token, so content tokens spread widely and the
/// separability falls though the classes do not touch (200 documents, 5,649 tokens: function
/// words 0.25–0.70 bits, topic words 1.43–3.57, separability 0.73). By the gap, the lower
/// class must also be the smaller one.
pub(super) fn clear_split(sorted_desc: &[f64], cut: usize, separability: f64) -> bool {
    if !apart(sorted_desc, cut) {
        return false;
    }
    if separability >= SEPARABILITY {
        return true;
    }
    let (Some(upper), Some(&below)) = (sorted_desc.get(..cut), sorted_desc.get(cut)) else {
        return false;
    };
    let Some(&lowest) = upper.last() else {
        return false;
    };
    let sd = spread(upper);
    // The function words are the fewer: a lower class of most tokens is content split off
    // from a few outliers (two topics with markers: 33 topic words below the 2 markers).
    let fewer = sorted_desc.len() - cut < cut;
    fewer && lowest - below >= sd && lowest > below
}

/// Where function words end, as [`Profile`] reads it from `split`, the (divergence, count,
/// is a mark) of the tokens it splits: Otsu's cut over the vocabulary where it is clear
/// ([`clear_split`]), else the split over the running text ([`occurrence_split`]), else the
/// widest gap ([`gap_split`]) of the tokens that are not marks (the line break, far below the
/// words, was the widest gap of texts whose function words it hid). Returns the threshold
/// (None: no clear split), the separability, and whether the split was over the running text.
///
/// [`Profile`]: crate::train::recruit::Profile
pub(crate) fn threshold(split: &[(f64, f64, bool)]) -> (Option<f64>, f64, bool) {
    let sorted_desc = |words_only: bool| {
        let mut v: Vec<f64> = (split.iter())
            .filter(|s| !(words_only && s.2))
            .map(|s| s.0)
            .collect();
        v.sort_by(|a, b| b.total_cmp(a));
        v
    };
    let sorted = sorted_desc(false);
    let (cut, separability) = otsu_separability(&sorted);
    if clear_split(&sorted, cut, separability) && cut < sorted.len() {
        if let Some(&t) = sorted.get(cut.saturating_sub(1)) {
            return (Some(t), separability, false);
        }
    }
    let pairs: Vec<(f64, f64)> = split.iter().map(|s| (s.0, s.1)).collect();
    if let Some((t, eta)) = occurrence_split(&pairs) {
        return (Some(t), eta, true);
    }
    let words = sorted_desc(true);
    match gap_split(&words) {
        Some((c, eta)) => (words.get(c - 1).copied(), eta, false),
        None => (None, separability, false),
    }
}

/// How many times the lower class's spread (standard deviation) a gap of at least
/// [`MIN_SPLIT_BITS`] must be to set a tight class apart below content that spreads widely.
/// Measured: 8 topics of unequal use (weights 1, 1/2, … 1/8), 30% function words, 500
/// documents: the function words lay at 0.17–0.26 bits (spread 0.02), 0.34 bits below the
/// commonest topic's words, while the rarer topics' words, read from few neighbours, spread the
/// content to 0.60–4 bits (0.68); no function word was set apart, candidates were pairs of
/// them (`in·the`, `this·that`), and nothing was recruited (ARI 0.000). On 271 corpora of the
/// family kept from earlier sweeps (their divergences recomputed apart from this code), the
/// rule set a class apart on 32 where the spread rule did not: function words every time, no
/// topic word.
const TIGHT_GAP: f64 = 8.0;

/// The widest gap of the divergences (sorted descending) below which the fewer tokens lie,
/// where neither Otsu's cut over the vocabulary nor the split over the running text was clear:
/// the cut at that gap, and the separability η of the split there. It counts when the classes'
/// means lie [`MIN_SPLIT_BITS`] apart and the gap is at least as wide as the spread (standard
/// deviation) of each class, or sets a tight class of at least three apart ([`TIGHT_GAP`]).
/// Otsu's cut can fall inside the content tokens when they form two groups themselves: two
/// topics of unequal use (the commoner's words 0.47–0.84 bits, the rarer's 0.77–1.52) and 40%
/// function words (0.05–0.14) on 200 documents put Otsu's cut among the first topic's words
/// (η 0.74), while the function words lay 0.32 bits below every content word; no function word
/// was set apart, one joined a topic's candidate (`grape·it`) and a merge then made both
/// topics one block.
fn gap_split(sorted_desc: &[f64]) -> Option<(usize, f64)> {
    let n = sorted_desc.len();
    // The lower class is the fewer: cuts past the middle.
    let (cut, gap) = (n / 2 + 1..n)
        .filter_map(|c| Some((c, sorted_desc.get(c - 1)? - sorted_desc.get(c)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))?;
    let (upper, lower) = sorted_desc.split_at(cut);
    let wide = gap >= spread(upper) && gap >= spread(lower);
    let tight = lower.len() >= 3 && gap >= MIN_SPLIT_BITS && gap >= TIGHT_GAP * spread(lower);
    let clear = gap > 0.0 && (wide || tight) && apart(sorted_desc, cut);
    clear.then(|| (cut, separability_at(sorted_desc, cut)))
}

/// The split of `(divergence, count)` pairs over the running text, where the split over the
/// vocabulary is not clear: Otsu's threshold with each token weighed by its count, kept when
/// its separability reaches [`SEPARABILITY`] and the function-like class holds the fewer
/// types. A rare token's divergence is read from few neighbours, biased upwards and spread
/// widely, so a text of many rare types can hide the split of the frequent ones. (Measured on a
/// text written in sentences before capitalised forms were read through their lower-case
/// ones: 0.61 over the vocabulary, cut between common and capitalised topic words; 0.87 over
/// the running text, cut below the function words and punctuation at 0.03–0.24 bits.)
/// Returns the threshold (the upper class's lowest value) and the separability.
pub(super) fn occurrence_split(divergence_and_count: &[(f64, f64)]) -> Option<(f64, f64)> {
    let mut pairs = divergence_and_count.to_vec();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (cut, eta) = weighted_otsu(&pairs);
    let fewer = pairs.len().saturating_sub(cut) < cut;
    let (&(t, _), &(below, _)) = (pairs.get(cut.checked_sub(1)?)?, pairs.get(cut)?);
    let values: Vec<f64> = pairs.iter().map(|&(d, _)| d).collect();
    (eta >= SEPARABILITY && fewer && t > below && apart(&values, cut)).then_some((t, eta))
}

/// What a text's writing says of its function tokens before any count: a token with no
/// letter or digit (punctuation, a symbol, the line break) is one, and so is a capitalised
/// form (`The`) whose lower-case form (`the`) the split found to be one. Both matter on text
/// written in sentences: there the divergences of the rarer capitalised forms (1.5–1.9 bits
/// for a topic word seen 20–50 times, 0.6–0.9 for `Was`, whose left neighbour is always a full
/// stop) spread the content class, the split is not clear, and the full stop and comma, left
/// as content, joined topic communities (`,·mkc`) and merges carried every topic into one
/// block.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// Tokens of no letter or digit.
    pub marks: BTreeSet<u32>,
    /// Each token whose lower-case form is another token, and that token.
    pub lower: BTreeMap<u32, u32>,
}

impl Written {
    /// Read the surface strings of `ids` (a text's distinct tokens) in `tok`.
    pub fn of(ids: &BTreeSet<u32>, tok: &dyn Tokenizer) -> Self {
        let mut out = Self::default();
        for &id in ids {
            let s = tok.token_str(id);
            if s.is_empty() {
                continue;
            }
            if !s.chars().any(char::is_alphanumeric) {
                out.marks.insert(id);
                continue;
            }
            let lower = s.to_lowercase();
            if lower != s {
                if let Some(l) = tok.token_id(&lower).filter(|&l| l != id) {
                    out.lower.insert(id, l);
                }
            }
        }
        out
    }

    /// The row (in `index`) of the profiled lower-case form of `id`, when `id` is the
    /// capitalised form of one.
    pub(super) fn lower_row(&self, id: u32, index: &BTreeMap<u32, usize>) -> Option<usize> {
        self.lower.get(&id).and_then(|l| index.get(l)).copied()
    }

    /// True when `id` is the capitalised form of another profiled token (in `index`).
    pub(super) fn is_twin(&self, id: u32, index: &BTreeMap<u32, usize>) -> bool {
        self.lower_row(id, index).is_some()
    }

    /// The function-like rows: those of the split (`by_split`, by row of `index`), the marks,
    /// and for a capitalised form, what its lower-case form is.
    pub(super) fn apply(&self, index: &BTreeMap<u32, usize>, by_split: &[bool]) -> Vec<bool> {
        let mut out = by_split.to_vec();
        for (id, &row) in index {
            let twin = self
                .lower_row(*id, index)
                .and_then(|r| by_split.get(r))
                .copied();
            let function = self.marks.contains(id)
                || twin.unwrap_or(by_split.get(row).copied().unwrap_or(false));
            if let Some(f) = out.get_mut(row) {
                *f = function;
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::data::tokenizer::WordTokenizer;

    /// Two tight groups 0.02 bits apart are one class however separable they look; the same
    /// shape a bit apart is a split.
    #[test]
    fn a_split_of_values_hundredths_of_a_bit_apart_is_not_clear() {
        let tight = [
            1.773, 1.772, 1.768, 1.766, 1.765, 1.765, 1.754, 1.753, 1.752, 1.751,
        ];
        let (cut, eta) = otsu_separability(&tight);
        assert!(eta >= SEPARABILITY, "{eta}");
        assert!(!clear_split(&tight, cut, eta));
        let pairs: Vec<(f64, f64)> = tight.iter().map(|&d| (d, 10.0)).collect();
        assert_eq!(occurrence_split(&pairs), None);
        let apart = [2.4, 2.3, 2.3, 2.2, 2.1, 2.1, 0.3, 0.2, 0.2, 0.1];
        let (cut, eta) = otsu_separability(&apart);
        assert!(clear_split(&apart, cut, eta));
    }

    /// Weighed by counts, a few rare values far off no longer pull the cut: over the types the
    /// cut falls between the common and the rare values, over the occurrences below the low
    /// class; unit weights give Otsu's plain split.
    #[test]
    fn the_occurrence_split_is_ruled_by_the_frequent_values() {
        let mut pairs: Vec<(f64, f64)> = Vec::new();
        pairs.extend((0..6).map(|i| (1.8 + 0.02 * f64::from(i), 20.0)));
        pairs.extend((0..20).map(|i| (1.0 + 0.01 * f64::from(i), 300.0)));
        pairs.extend((0..5).map(|i| (0.1 + 0.01 * f64::from(i), 400.0)));
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (cut, eta) = weighted_otsu(&pairs);
        assert_eq!(cut, 26, "{eta}");
        assert!(eta > 0.85, "{eta}");
        let (t, _) = occurrence_split(&pairs).expect("a clear split");
        assert!((t - 1.0).abs() < 1e-12, "{t}");
        let plain: Vec<(f64, f64)> = pairs.iter().map(|&(v, _)| (v, 1.0)).collect();
        let sorted: Vec<f64> = pairs.iter().map(|&(v, _)| v).collect();
        assert_eq!(weighted_otsu(&plain).0, otsu_cut(&sorted));
        assert_eq!(weighted_otsu(&[]), (0, 0.0));
        assert_eq!(weighted_otsu(&[(1.0, 0.0), (0.0, 0.0)]).1, 0.0);
    }

    /// Three groups (function words, a common topic's words, a rarer topic's): Otsu's cut
    /// falls between the topics and is not clear; the widest gap sets the function words
    /// apart. Values that spread evenly have no such gap, nor do two groups whose gap is
    /// narrower than their spread.
    #[test]
    fn the_widest_gap_sets_function_words_apart_where_otsu_cuts_the_content() {
        let mut v: Vec<f64> = Vec::new();
        v.extend((0..20).map(|i| 0.05 + 0.005 * f64::from(i)));
        v.extend((0..20).map(|i| 0.47 + 0.02 * f64::from(i)));
        v.extend((0..20).map(|i| 0.77 + 0.04 * f64::from(i)));
        v.sort_by(|a, b| b.total_cmp(a));
        let (cut, eta) = otsu_separability(&v);
        assert!(!clear_split(&v, cut, eta), "{cut} {eta}");
        let (cut, eta) = gap_split(&v).expect("a gap");
        assert_eq!(cut, 40, "{eta}");
        assert!((v[cut - 1] - 0.47).abs() < 1e-12);
        let even: Vec<f64> = (0..60).rev().map(|i| 0.03 * f64::from(i)).collect();
        assert_eq!(gap_split(&even), None);
        let mut close: Vec<f64> = (0..30).map(|i| 1.0 + 0.05 * f64::from(i)).collect();
        close.extend((0..10).map(|i| 0.2 + 0.05 * f64::from(i)));
        close.sort_by(|a, b| b.total_cmp(a));
        // A gap of 0.35 bits under a content spread of 0.43 and over a lower spread of 0.14
        // (a third of it): not clear.
        assert_eq!(gap_split(&close), None);
        // A tight class (spread 0.03) 0.34 bits under content spread to 4 bits: clear.
        let mut wide: Vec<f64> = (0..18).map(|i| 0.17 + 0.005 * f64::from(i)).collect();
        wide.extend((0..60).map(|i| 0.60 + 0.06 * f64::from(i)));
        wide.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(gap_split(&wide).map(|g| g.0), Some(60));
        // Two tokens so apart are not a class.
        let two: Vec<f64> = wide.iter().copied().filter(|&v| v > 0.2475).collect();
        assert_eq!(gap_split(&two), None);
        assert_eq!(gap_split(&[]), None);
        assert_eq!(gap_split(&[1.0]), None);
        // A line break far below every word is the widest gap of all the tokens; the
        // threshold reads the words without it.
        let mut split: Vec<(f64, f64, bool)> = v.iter().map(|&d| (d, 100.0, false)).collect();
        split.push((-0.5, 200.0, true));
        let mut all: Vec<f64> = split.iter().map(|s| s.0).collect();
        all.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(gap_split(&all).map(|g| g.0), Some(60));
        let (t, _, over_text) = threshold(&split);
        assert_eq!(t, Some(v[39]));
        assert!(!over_text);
    }

    /// Punctuation and the line break are marks; a capitalised word follows its lower-case
    /// form, either way, whatever its own divergence said.
    #[test]
    fn marks_and_capitalised_forms_are_read_from_the_writing() {
        let tok = WordTokenizer::fit("The the , . Zuka zuka Felo\n", 1, 100);
        let id = |w: &str| tok.token_id(w).expect(w);
        let ids: BTreeSet<u32> = ["The", "the", ",", ".", "Zuka", "zuka", "Felo", "\n"]
            .iter()
            .map(|w| id(w))
            .collect();
        let w = Written::of(&ids, &tok);
        assert_eq!(
            w.marks,
            [",", ".", "\n"]
                .iter()
                .map(|s| id(s))
                .collect::<BTreeSet<u32>>()
        );
        assert_eq!(w.lower.get(&id("The")), Some(&id("the")));
        assert_eq!(w.lower.get(&id("Zuka")), Some(&id("zuka")));
        assert_eq!(w.lower.get(&id("Felo")), None);
        let index: BTreeMap<u32, usize> = ids.iter().enumerate().map(|(r, &i)| (i, r)).collect();
        assert!(w.is_twin(id("The"), &index) && !w.is_twin(id("Felo"), &index));
        // The split: "the" function-like, "Zuka" (wrongly, by its own divergence) too.
        let row = |s: &str| index[&id(s)];
        let mut by_split = vec![false; index.len()];
        by_split[row("the")] = true;
        by_split[row("Zuka")] = true;
        let f = w.apply(&index, &by_split);
        for (s, want) in [
            ("the", true),
            ("The", true),
            (",", true),
            (".", true),
            ("\n", true),
            ("zuka", false),
            ("Zuka", false),
            ("Felo", false),
        ] {
            assert_eq!(f[row(s)], want, "{s:?}");
        }
    }
}
