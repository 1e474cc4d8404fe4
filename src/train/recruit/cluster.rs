//! The co-occurrence statistics recruitment clusters tokens by: positive-PMI rows and their
//! cosine, Otsu's threshold on similarities, the lift of a candidate with a recruited block,
//! and the adjusted Rand index that tests compare clusterings with.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::blocks::BlockMap;

/// The recruited blocks (≥ 1) the candidate `tokens` may be a part of, best first (at most
/// `most`): those whose tokens co-occur with them (±`window`), by lift, and for a group of
/// tokens with a lift at least half the group's lift with itself (a separate topic co-occurs
/// far more with itself than with any other block). Which one, if any, is decided in bits.
///
/// The group's lift with itself counts pairs of two of its tokens, not a token with itself:
/// a token's repeats say only how bursty it is (a document's theme words recur), so a single
/// token sets no bar, and a small group of theme words no bar inflated by their repeats.
/// Measured: two topics used 2 : 1, four theme words of the rarer one came as a group of
/// their own, whose lift with the rest of their topic's block was 0.51–0.59 of their lift
/// with themselves counting repeats, and 1.03–1.32 without; so the block was seldom tried as
/// their host, they were recruited apart and the topic stayed two blocks (ARI 0.874).
pub(super) fn affinity_blocks(
    ids: &[u32],
    blocks: &BlockMap,
    tokens: &[u32],
    window: usize,
    most: usize,
) -> Vec<usize> {
    let k = blocks.num_blocks();
    if k < 2 || ids.is_empty() {
        return Vec::new();
    }
    let set: BTreeSet<u32> = tokens.iter().copied().collect();
    // Group k + 1 is the candidate itself.
    let group = |id: u32| {
        if set.contains(&id) {
            k
        } else {
            blocks.token_block.get(id as usize).copied().unwrap_or(0)
        }
    };
    let mut co = vec![0f64; k + 1];
    let mut freq = vec![0f64; k + 1];
    for (i, &a) in ids.iter().enumerate() {
        freq[group(a)] += 1.0;
        if group(a) != k {
            continue;
        }
        let lo = i.saturating_sub(window);
        for (j, &b) in ids.iter().enumerate().take(i + window + 1).skip(lo) {
            if j != i && b != a {
                co[group(b)] += 1.0;
            }
        }
    }
    let n = ids.len() as f64;
    let lift = |g: usize| co[g] / (freq[g] / n).max(1e-12);
    let bar = 0.5 * lift(k);
    let mut hosts: Vec<usize> = (1..k)
        .filter(|&b| freq[b] > 0.0 && co[b] > 0.0 && lift(b) >= bar)
        .collect();
    hosts.sort_by(|&a, &b| lift(b).total_cmp(&lift(a)));
    hosts.truncate(most);
    hosts
}

/// Symmetric co-occurrence counts (±`window` positions) of the tokens in `index`: `[a][b]`
/// counts the times b stands within `window` positions of a.
pub(super) fn symmetric_cooccurrence(
    ids: &[u32],
    index: &BTreeMap<u32, usize>,
    window: usize,
) -> Vec<Vec<f64>> {
    let m = index.len();
    let mut co = vec![vec![0f64; m]; m];
    for (i, a) in ids.iter().enumerate() {
        let Some(&ia) = index.get(a) else { continue };
        for b in ids.iter().skip(i + 1).take(window) {
            if let Some(&ib) = index.get(b) {
                co[ia][ib] += 1.0;
                co[ib][ia] += 1.0;
            }
        }
    }
    co
}

/// Positive-PMI rows of a symmetric co-occurrence table.
pub(super) fn ppmi_rows(co: &[Vec<f64>]) -> Vec<Vec<f64>> {
    let row: Vec<f64> = co.iter().map(|r| r.iter().sum()).collect();
    let total: f64 = row.iter().sum::<f64>().max(1.0);
    co.iter()
        .enumerate()
        .map(|(a, r)| {
            r.iter()
                .enumerate()
                .map(|(b, &c)| {
                    if c <= 0.0 {
                        return 0.0;
                    }
                    let pmi = (c * total / (row[a] * row[b]).max(1e-12)).log2();
                    pmi.max(0.0)
                })
                .collect()
        })
        .collect()
}

/// Cosine similarity of two vectors (0 when either is zero).
pub(crate) fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// How many of the sorted (descending) values form the upper class of the split that maximises
/// the between-class variance n₁·n₂·(m₁ − m₂)² (Otsu's threshold); all when < 2 values.
pub fn otsu_cut(sorted_desc: &[f64]) -> usize {
    let n = sorted_desc.len();
    if n < 2 {
        return n;
    }
    let total: f64 = sorted_desc.iter().sum();
    let mut best = (f64::NEG_INFINITY, n);
    let mut upper = 0.0;
    for i in 1..n {
        upper += sorted_desc[i - 1];
        let (n1, n2) = (i as f64, (n - i) as f64);
        let diff = upper / n1 - (total - upper) / n2;
        let score = n1 * n2 * diff * diff;
        if score > best.0 {
            best = (score, i);
        }
    }
    best.1
}

/// Otsu's split of `(value, weight)` pairs sorted by value descending, each value counted
/// `weight` times: how many pairs form the upper class (maximising w₁·w₂·(m₁ − m₂)² over the
/// weights), and the separability η = σ²_between/σ²_total of that split (0 when the values do
/// not vary or fewer than two pairs weigh anything).
pub fn weighted_otsu(sorted_desc: &[(f64, f64)]) -> (usize, f64) {
    let n = sorted_desc.len();
    let weight: f64 = sorted_desc.iter().map(|&(_, w)| w).sum();
    let sum: f64 = sorted_desc.iter().map(|&(v, w)| v * w).sum();
    if n < 2 || weight <= 0.0 {
        return (n, 0.0);
    }
    let (mut best, mut cut) = (f64::NEG_INFINITY, n);
    let (mut upper_w, mut upper_s) = (0.0, 0.0);
    for (i, &(v, w)) in sorted_desc.iter().enumerate().take(n - 1) {
        upper_w += w;
        upper_s += v * w;
        let lower_w = weight - upper_w;
        if upper_w <= 0.0 || lower_w <= 0.0 {
            continue;
        }
        let diff = upper_s / upper_w - (sum - upper_s) / lower_w;
        let score = upper_w * lower_w * diff * diff;
        if score > best {
            (best, cut) = (score, i + 1);
        }
    }
    let mean = sum / weight;
    let total: f64 = sorted_desc
        .iter()
        .map(|&(v, w)| w * (v - mean).powi(2))
        .sum::<f64>()
        / weight;
    if cut >= n || total <= 0.0 {
        return (cut, 0.0);
    }
    // best = w₁·w₂·(m₁ − m₂)², and σ²_between = (w₁/W)(w₂/W)(m₁ − m₂)².
    (cut, best / (weight * weight) / total)
}

/// Adjusted Rand index between two labelings of the same items.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 1.0;
    }
    let mut table: BTreeMap<(usize, usize), f64> = BTreeMap::new();
    let mut ra: BTreeMap<usize, f64> = BTreeMap::new();
    let mut rb: BTreeMap<usize, f64> = BTreeMap::new();
    for (&x, &y) in a.iter().zip(b).take(n) {
        *table.entry((x, y)).or_insert(0.0) += 1.0;
        *ra.entry(x).or_insert(0.0) += 1.0;
        *rb.entry(y).or_insert(0.0) += 1.0;
    }
    let c2 = |x: f64| x * (x - 1.0) / 2.0;
    let index: f64 = table.values().map(|&v| c2(v)).sum();
    let sa: f64 = ra.values().map(|&v| c2(v)).sum();
    let sb: f64 = rb.values().map(|&v| c2(v)).sum();
    let expected = sa * sb / c2(n as f64);
    let max = (sa + sb) / 2.0;
    if (max - expected).abs() < 1e-12 {
        return 1.0;
    }
    (index - expected) / (max - expected)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::analysis::rng::SplitMix64;

    /// Segments of six words opened by 1: half of topic one (2–6, with its theme words 7–9,
    /// each repeated two or three times where a segment uses them), half of topic two
    /// (10–15).
    fn theme_words_repeated(segments: usize) -> Vec<u32> {
        let mut rng = SplitMix64::new(17);
        let mut next = |n: usize| rng.below(n) as u32;
        let mut ids = Vec::new();
        for _ in 0..segments {
            let mut segment = vec![1];
            if next(2) == 0 {
                let theme = next(2) == 0;
                let (a, b) = (7 + next(3), 7 + next(3));
                for i in 0..6 {
                    segment.push(match (theme, i) {
                        (true, 0..=2) => a,
                        (true, 4..) => b,
                        _ => 2 + next(5),
                    });
                }
            } else {
                segment.extend((0..6).map(|_| 10 + next(6)));
            }
            ids.extend(segment);
        }
        ids
    }

    /// A topic's theme words, recruited apart, have the rest of their topic as a host, not
    /// the other topic: their lift with themselves counts no token's own repeats (counting
    /// them, it was more than twice the lift with their topic's block, and no block was a
    /// host).
    #[test]
    fn theme_words_that_repeat_have_their_topic_as_host() {
        let ids = theme_words_repeated(600);
        let pairs: Vec<(u32, String)> = (2..16)
            .filter(|i| !(7..10).contains(i))
            .map(|i| (i, if i < 7 { "one" } else { "two" }.to_string()))
            .collect();
        let map = BlockMap::from_assignments(16, &pairs, "test");
        assert_eq!(map.num_blocks(), 3);
        assert_eq!(affinity_blocks(&ids, &map, &[7, 8, 9], 4, 2), vec![1]);
        // A single token sets no bar: both blocks it stands beside, best first.
        assert_eq!(affinity_blocks(&ids, &map, &[7], 4, 2), vec![1, 2]);
    }
}
