//! The co-occurrence profile candidates are drawn from, measured once on the training text:
//! which tokens carry information about their neighbours (content words) and which do not
//! (function words), and positive-PMI rows over the content words.
//!
//! **Why function words are set apart.** A function word ("the", "of", "and") stands between
//! words of every topic, so its neighbours are distributed like the corpus as a whole: the
//! divergence KL(neighbours of w ‖ corpus) is near 0 bits, while a topic word's neighbours come
//! from its topic (about log₂ K bits). The divergence is the mean of the left and the right
//! neighbours' (a word that opens or closes its topic's segments has one informative side; by
//! the symmetric count it looked like a function word); a token is function-like when neither
//! side reaches the cut (README "Markers of short segments"). Measured on the topic family
//! (2–8 topics, 0–40% function words, markers first or last) the two groups are far apart, so
//! Otsu's threshold on the divergences separates them; it is used only when the split is
//! clear (Otsu's separability η = σ²_between/σ²_total ≥ [`SEPARABILITY`]; measured 0.92–0.99 with
//! function words, 0.48 without, and a uniform spread scores 0.75; or, on small texts whose
//! content tokens spread widely, a gap between the classes at least as wide as the upper
//! class's standard deviation; or, where Otsu's cut falls among the content tokens, the widest
//! gap below which the fewer tokens lie: see [`threshold`]), so a corpus without function
//! words loses nothing; where the only token set apart is the line break between documents,
//! that is what it is: its neighbours are the first and last words of documents of every
//! topic. Function words neither join a candidate nor serve as co-occurrence features: their
//! PMI with everything is noise around 0, and its positive part made every token look a little
//! alike (candidates such as `and·zuka`).
//! They stay unassigned, where queries keep all context (SPEC §9); a block of them would still
//! be judged by the same test in bits if a rule declared one.

use std::collections::BTreeMap;

use crate::data::tokenizer::{Tokenizer, UNK_TOKEN};
use crate::train::recruit::cohesion::cohesive_rows;
use crate::train::recruit::community::communities;
use crate::train::recruit::split::threshold;
pub use crate::train::recruit::split::{otsu_separability, Written, SEPARABILITY};

/// Most tokens profiled (the most frequent): bounds the m×m co-occurrence table.
pub const MAX_PROFILED: usize = 1500;

/// Most training tokens read for the profile.
pub const MAX_PROFILE_TOKENS: usize = 1 << 18;

/// Co-occurrence facts of the training text.
#[derive(Clone, Debug, Default)]
pub struct Profile {
    /// Profiled tokens (count ≥ c_min, the most frequent first), and their row index.
    pub index: BTreeMap<u32, usize>,
    /// KL(neighbours ‖ corpus) of each profiled token, bits (by row).
    pub divergence_bits: Vec<f64>,
    /// Function-like tokens (by row): the low-divergence Otsu class when the split is clear.
    pub function_like: Vec<bool>,
    /// The divergence below which a token is function-like (None: no clear split).
    pub threshold_bits: Option<f64>,
    /// Otsu's separability of the divergences (of the split by occurrences where that one
    /// was taken).
    pub separability: f64,
    /// The split was taken over the running text, each token weighed by its count
    /// ([`occurrence_split`]), as the split over the vocabulary was not clear.
    pub by_occurrences: bool,
    /// Tokens below the cut read as content again: they follow each other (`cohesion.rs`).
    pub cohesive: usize,
    /// Positive-PMI rows over the content tokens' columns (by row).
    pub ppmi: Vec<Vec<f64>>,
    /// Boundary tokens (by row): content tokens whose left and right neighbours disagree (a
    /// marker that opens its topic's segments follows another topic), the low class of the
    /// left/right cosine when the split is clear. They join no cluster; each is offered alone,
    /// for an extension move to place in bits.
    pub boundary: Vec<bool>,
    /// The community of each content token that is not a boundary (by row; None for the
    /// others): modularity communities of their PPMI rows' nearest-neighbour graph
    /// ([`community`](crate::train::recruit::community)). Candidates are drawn from them.
    pub community: Vec<Option<usize>>,
}

impl Profile {
    /// Profile `ids` (at most [`MAX_PROFILE_TOKENS`] of them) with a ±`window` co-occurrence
    /// window; tokens seen fewer than `min_count` times are left out.
    pub fn measure(ids: &[u32], window: usize, min_count: usize) -> Self {
        Self::measure_with(ids, window, min_count, &Written::default())
    }

    /// The profile of a text read with `tok`, as recruitment and `blocks --communities` take
    /// it: what its writing says of function tokens ([`Written::of`]) is used, and `<unk>` is
    /// set aside ([`Profile::set_aside`]).
    pub fn of_text(ids: &[u32], window: usize, min_count: usize, tok: &dyn Tokenizer) -> Self {
        let head = ids.get(..ids.len().min(MAX_PROFILE_TOKENS)).unwrap_or(ids);
        let written = Written::of(&head.iter().copied().collect(), tok);
        let mut profile = Self::measure_with(ids, window, min_count, &written);
        profile.set_aside(tok.token_id(UNK_TOKEN));
        profile
    }

    /// [`Profile::measure`], with the function tokens `written` names.
    pub fn measure_with(ids: &[u32], window: usize, min_count: usize, written: &Written) -> Self {
        let ids = ids.get(..ids.len().min(MAX_PROFILE_TOKENS)).unwrap_or(ids);
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for &id in ids {
            *counts.entry(id).or_insert(0) += 1;
        }
        let mut ranked: Vec<(u32, usize)> = counts
            .into_iter()
            .filter(|&(_, c)| c >= min_count.max(1))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(MAX_PROFILED);
        let index: BTreeMap<u32, usize> = ranked
            .iter()
            .enumerate()
            .map(|(i, &(id, _))| (id, i))
            .collect();
        let right = cooccurrence(ids, &index, window.max(1));
        let left = transpose(&right);
        let sides: Vec<(f64, f64)> = divergences(&right)
            .into_iter()
            .zip(divergences(&left))
            .collect();
        let divergence_bits: Vec<f64> = sides.iter().map(|(r, l)| 0.5 * (r + l)).collect();
        let co: Vec<Vec<f64>> = right
            .iter()
            .zip(&left)
            .map(|(r, l)| r.iter().zip(l).map(|(a, b)| a + b).collect())
            .collect();
        // The split is read on the tokens that are not the capitalised form of another
        // ([`Written`]); those follow their lower-case form.
        let split: Vec<(f64, f64, bool)> = ranked
            .iter()
            .zip(&divergence_bits)
            .filter(|((id, _), _)| !written.is_twin(*id, &index))
            .map(|(&(id, c), &d)| (d, c as f64, written.marks.contains(&id)))
            .collect();
        let (threshold_bits, separability, by_occurrences) = threshold(&split);
        // Function-like: neither side reaches the cut (a marker's one informative side does).
        let mut by_split: Vec<bool> = (sides.iter())
            .map(|&(r, l)| threshold_bits.is_some_and(|t| r.max(l) < t))
            .collect();
        // A topic read as function words is content again (`cohesion.rs`).
        let fixed: Vec<bool> = (ranked.iter())
            .map(|&(id, _)| written.marks.contains(&id) || written.is_twin(id, &index))
            .collect();
        let cohesive = cohesive_rows(&co, &by_split, &fixed);
        (cohesive.iter()).for_each(|&r| by_split.get_mut(r).into_iter().for_each(|f| *f = false));
        let function_like = written.apply(&index, &by_split);
        let ppmi = ppmi_rows(&co, &function_like);
        let (boundary, community) =
            boundaries_and_communities(&left, &right, &ppmi, &function_like, &index, written);
        Self {
            index,
            divergence_bits,
            function_like,
            threshold_bits,
            separability,
            by_occurrences,
            cohesive: cohesive.len(),
            ppmi,
            boundary,
            community,
        }
    }

    /// Keep `id` out of every community and of the boundary tokens offered alone, so that it
    /// is never a candidate: `<unk>`, which stands for every word the tokenizer does not know
    /// and so for no one group (on a text with many rare words it is among the most frequent
    /// tokens). It stays a feature of the others' co-occurrence rows.
    pub fn set_aside(&mut self, id: Option<u32>) {
        if let Some(&i) = id.and_then(|id| self.index.get(&id)) {
            if let Some(c) = self.community.get_mut(i) {
                *c = None;
            }
            if let Some(b) = self.boundary.get_mut(i) {
                *b = false;
            }
        }
    }

    /// True when `id` is a profiled boundary token.
    pub fn is_boundary(&self, id: u32) -> bool {
        self.index
            .get(&id)
            .is_some_and(|&i| self.boundary.get(i).copied().unwrap_or(false))
    }

    /// The community of `id` (None when it is not profiled, function-like or a boundary).
    pub fn community_of(&self, id: u32) -> Option<usize> {
        self.index
            .get(&id)
            .and_then(|&i| self.community.get(i).copied().flatten())
    }

    /// True when `id` is profiled and not function-like.
    pub fn is_content(&self, id: u32) -> bool {
        self.index
            .get(&id)
            .is_some_and(|&i| !self.function_like.get(i).copied().unwrap_or(true))
    }

    /// The PPMI row of `id`, if it is profiled.
    pub fn row(&self, id: u32) -> Option<&[f64]> {
        self.index
            .get(&id)
            .and_then(|&i| self.ppmi.get(i))
            .map(Vec::as_slice)
    }

    /// The function-like tokens, most frequent first.
    pub fn function_tokens(&self) -> Vec<u32> {
        let mut out: Vec<(usize, u32)> = self
            .index
            .iter()
            .filter(|&(_, &i)| self.function_like.get(i).copied().unwrap_or(false))
            .map(|(&id, &i)| (i, id))
            .collect();
        out.sort_unstable();
        out.into_iter().map(|(_, id)| id).collect()
    }
}

/// Right co-occurrence counts of the tokens in `index`: `[a][b]` counts b within `window`
/// positions after a.
fn cooccurrence(ids: &[u32], index: &BTreeMap<u32, usize>, window: usize) -> Vec<Vec<f64>> {
    let m = index.len();
    let rows: Vec<Option<usize>> = ids.iter().map(|id| index.get(id).copied()).collect();
    let mut co = vec![vec![0f64; m]; m];
    for (i, a) in rows.iter().enumerate() {
        let Some(ia) = *a else { continue };
        for b in rows.iter().skip(i + 1).take(window).flatten() {
            if let Some(c) = co.get_mut(ia).and_then(|r| r.get_mut(*b)) {
                *c += 1.0;
            }
        }
    }
    co
}

/// The transpose of a square table.
fn transpose(m: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..m.len())
        .map(|b| m.iter().map(|r| r.get(b).copied().unwrap_or(0.0)).collect())
        .collect()
}

/// KL(row ‖ column marginal) of each row of `co`, bits.
fn divergences(co: &[Vec<f64>]) -> Vec<f64> {
    let col: Vec<f64> = co.iter().map(|r| r.iter().sum()).collect();
    let total: f64 = col.iter().sum::<f64>().max(1.0);
    co.iter()
        .zip(&col)
        .map(|(r, &s)| {
            if s <= 0.0 {
                return 0.0;
            }
            r.iter()
                .zip(&col)
                .filter(|(&c, &q)| c > 0.0 && q > 0.0)
                .map(|(&c, &q)| (c / s) * ((c / s) / (q / total)).log2())
                .sum()
        })
        .collect()
}

/// Positive-PMI rows of `co`, over the columns that are not function-like.
fn ppmi_rows(co: &[Vec<f64>], function_like: &[bool]) -> Vec<Vec<f64>> {
    let row: Vec<f64> = co.iter().map(|r| r.iter().sum()).collect();
    let total: f64 = row.iter().sum::<f64>().max(1.0);
    let keep: Vec<usize> = (0..co.len())
        .filter(|&b| !function_like.get(b).copied().unwrap_or(false))
        .collect();
    co.iter()
        .zip(&row)
        .map(|(r, &ra)| {
            keep.iter()
                .map(|&b| {
                    let c = r.get(b).copied().unwrap_or(0.0);
                    let rb = row.get(b).copied().unwrap_or(0.0);
                    if c <= 0.0 || ra <= 0.0 || rb <= 0.0 {
                        0.0
                    } else {
                        (c * total / (ra * rb)).log2().max(0.0)
                    }
                })
                .collect()
        })
        .collect()
}

/// The content tokens whose left and right PPMI rows disagree: the low class of their cosine,
/// when Otsu's split of the content tokens' cosines is clear.
fn boundaries(left: &[Vec<f64>], right: &[Vec<f64>], function_like: &[bool]) -> Vec<bool> {
    let (l, r) = (
        ppmi_rows(left, function_like),
        ppmi_rows(right, function_like),
    );
    let agree: Vec<Option<f64>> = l
        .iter()
        .zip(&r)
        .zip(function_like)
        .map(|((a, b), &f)| (!f).then(|| crate::train::recruit::cluster::cosine(a, b)))
        .collect();
    let mut sorted: Vec<f64> = agree.iter().flatten().copied().collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (cut, separability) = otsu_separability(&sorted);
    let Some(&bar) = sorted.get(cut.saturating_sub(1)) else {
        return vec![false; agree.len()];
    };
    // A few (at most a quarter of the content tokens) can be boundaries.
    let clear = separability >= SEPARABILITY && 4 * (sorted.len() - cut) <= sorted.len();
    agree
        .iter()
        .map(|a| clear && a.is_some_and(|v| v < bar))
        .collect()
}

/// The boundary tokens and communities of the content rows. A capitalised form joins the
/// community of its lower-case form (and is a boundary when that form is): one candidate for
/// both, and the rarer rows out of the graph.
fn boundaries_and_communities(
    left: &[Vec<f64>],
    right: &[Vec<f64>],
    ppmi: &[Vec<f64>],
    function_like: &[bool],
    index: &BTreeMap<u32, usize>,
    written: &Written,
) -> (Vec<bool>, Vec<Option<usize>>) {
    let twin_rows: Vec<(usize, usize)> = index
        .iter()
        .filter_map(|(&id, &row)| Some((row, written.lower_row(id, index)?)))
        .collect();
    let mut apart = function_like.to_vec();
    for &(row, _) in &twin_rows {
        if let Some(a) = apart.get_mut(row) {
            *a = true;
        }
    }
    let mut boundary = boundaries(left, right, &apart);
    let mut community = content_communities(ppmi, &apart, &boundary);
    for &(row, lower) in &twin_rows {
        let content = !function_like.get(row).copied().unwrap_or(true);
        let (b, c) = (boundary.get(lower).copied(), community.get(lower).copied());
        if let (true, Some(b), Some(c)) = (content, b, c) {
            if let (Some(rb), Some(rc)) = (boundary.get_mut(row), community.get_mut(row)) {
                (*rb, *rc) = (b, c);
            }
        }
    }
    (boundary, community)
}

/// The communities of the content tokens that are not boundaries (by row).
fn content_communities(
    ppmi: &[Vec<f64>],
    function_like: &[bool],
    boundary: &[bool],
) -> Vec<Option<usize>> {
    let rows: Vec<usize> = (0..ppmi.len())
        .filter(|&i| {
            !function_like.get(i).copied().unwrap_or(true)
                && !boundary.get(i).copied().unwrap_or(false)
        })
        .collect();
    let views: Vec<&[f64]> = rows
        .iter()
        .filter_map(|&i| ppmi.get(i).map(Vec::as_slice))
        .collect();
    let mut out = vec![None; ppmi.len()];
    for (&i, c) in rows.iter().zip(communities(&views)) {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token set aside joins no community and is not offered alone; the others keep theirs.
    #[test]
    fn a_token_set_aside_is_in_no_community() {
        // Two topics (ids 10..16 and 20..26) in documents of six words.
        let mut ids = Vec::new();
        for doc in 0..400u32 {
            let base = if doc % 2 == 0 { 10 } else { 20 };
            ids.extend((0..6).map(|k| base + (doc * 7 + k * 3) % 6));
        }
        let mut p = Profile::measure(&ids, 4, 5);
        let before: Vec<Option<usize>> = (10..16)
            .chain(20..26)
            .map(|id| p.community_of(id))
            .collect();
        assert!(before.iter().all(Option::is_some), "{before:?}");
        p.set_aside(Some(10));
        p.set_aside(None);
        assert_eq!(p.community_of(10), None);
        assert!(!p.is_boundary(10));
        let after: Vec<Option<usize>> = (10..16)
            .chain(20..26)
            .map(|id| p.community_of(id))
            .collect();
        assert_eq!(&before[1..], &after[1..]);
    }
}
