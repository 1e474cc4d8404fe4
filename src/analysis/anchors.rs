//! Information-theoretic anchors (SPEC §5): which tokens speak for a block, how much of the
//! block structure they carry, and how the per-block anchor key vectors are laid out.
//!
//! Anchor *tokens* are chosen from co-occurrence counts `counts[w][k]` (how often token w was
//! seen with block label k): a good anchor almost always comes with one block (low purity
//! H(B | w)), is frequent enough to trust (count ≥ c_min), and is much more likely under its
//! block than overall (high PMI). Coverage I(B; A) says, in bits, how much knowing which anchor
//! a position holds tells about its block.
//!
//! Anchor *keys* are one vector per block per head. Orthonormal keys (possible when K ≤ d_h)
//! keep blocks from stealing each other's queries; above d_h the Welch bound says how close
//! the best packing must come, so the UI can show how far a layout is from it.

use super::rng::SplitMix64;

/// One selected anchor token of a block.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Anchor {
    /// Vocabulary index of the token.
    pub token: usize,
    /// PMI(w; k) = log₂ p(k|w)/p(k) with the block it anchors, bits.
    pub pmi_bits: f64,
    /// Purity H(B | w), bits (0 = always seen with one block).
    pub purity_bits: f64,
    /// How often the token was observed (over all blocks).
    pub count: u64,
}

/// Total of a count row, as f64.
fn row_total(row: &[u64]) -> f64 {
    row.iter().map(|&c| c as f64).sum()
}

/// Entropy of the distribution proportional to `counts`, in bits (0 for an all-zero row).
fn count_entropy_bits(counts: &[u64]) -> f64 {
    let total = row_total(counts);
    if total <= 0.0 {
        return 0.0;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// Purity of one token: H(B | w) = −Σ_k p(k|w) log₂ p(k|w), from its count row. A token that
/// was never observed has purity 0 (it is kept out of anchors by the count threshold).
pub fn purity_bits(row: &[u64]) -> f64 {
    // A pure token sums -1·log2(1) = -0.0; report it as 0 bits, not "-0.00".
    let h = count_entropy_bits(row);
    if h <= 0.0 {
        0.0
    } else {
        h
    }
}

/// Per-block totals over all tokens: the counts behind p(k).
fn block_totals(counts: &[Vec<u64>]) -> Vec<f64> {
    let num_blocks = counts.iter().map(Vec::len).max().unwrap_or(0);
    let mut totals = vec![0.0; num_blocks];
    for row in counts {
        for (t, &c) in totals.iter_mut().zip(row) {
            *t += c as f64;
        }
    }
    totals
}

/// PMI(w; k) = log₂ p(k|w)/p(k), in bits; `f64::NEG_INFINITY` when token w was never seen
/// with block k (or does not exist).
pub fn pmi_bits(counts: &[Vec<u64>], w: usize, k: usize) -> f64 {
    let totals = block_totals(counts);
    pmi_with_totals(counts, &totals, w, k)
}

/// PMI with the block totals already computed.
fn pmi_with_totals(counts: &[Vec<u64>], totals: &[f64], w: usize, k: usize) -> f64 {
    let Some(row) = counts.get(w) else {
        return f64::NEG_INFINITY;
    };
    let n_wk = row.get(k).copied().unwrap_or(0) as f64;
    let n_w = row_total(row);
    let n_k = totals.get(k).copied().unwrap_or(0.0);
    let n: f64 = totals.iter().sum();
    if n_wk <= 0.0 || n_w <= 0.0 || n_k <= 0.0 {
        return f64::NEG_INFINITY;
    }
    ((n_wk / n_w) / (n_k / n)).log2()
}

/// Anchor tokens per block (SPEC §5): tokens with count ≥ `c_min` and purity ≤
/// `max_purity_bits` (0.2 in the SPEC), each assigned to the block it is most often seen with,
/// ranked by PMI (ties: higher count, then lower token id), at most `a_max` per block.
///
/// The result has one (possibly empty) list per block, K = the longest count row.
pub fn select_anchors(
    counts: &[Vec<u64>],
    c_min: u64,
    max_purity_bits: f64,
    a_max: usize,
) -> Vec<Vec<Anchor>> {
    let totals = block_totals(counts);
    let mut per_block: Vec<Vec<Anchor>> = vec![Vec::new(); totals.len()];
    for (w, row) in counts.iter().enumerate() {
        let count: u64 = row.iter().sum();
        let purity = purity_bits(row);
        if count < c_min || count == 0 || purity > max_purity_bits {
            continue;
        }
        // Dominant block: the most frequent label (lowest index on ties).
        let Some((k, _)) =
            row.iter()
                .enumerate()
                .fold(None, |best: Option<(usize, u64)>, (k, &c)| match best {
                    Some((_, bc)) if bc >= c => best,
                    _ => Some((k, c)),
                })
        else {
            continue;
        };
        if let Some(list) = per_block.get_mut(k) {
            list.push(Anchor {
                token: w,
                pmi_bits: pmi_with_totals(counts, &totals, w, k),
                purity_bits: purity,
                count,
            });
        }
    }
    for list in &mut per_block {
        list.sort_by(|a, b| {
            b.pmi_bits
                .total_cmp(&a.pmi_bits)
                .then(b.count.cmp(&a.count))
                .then(a.token.cmp(&b.token))
        });
        list.truncate(a_max);
    }
    per_block
}

/// Coverage I(B; A) in bits, where A is the anchor token a position holds, or "none" when it
/// holds a token that is not an anchor of any block. Computed as H(B) − H(B | A) over the
/// joint counts. 0 when there are no counts.
pub fn coverage_bits(counts: &[Vec<u64>], anchors: &[Vec<Anchor>]) -> f64 {
    let mut is_anchor = vec![false; counts.len()];
    for a in anchors.iter().flatten() {
        if let Some(flag) = is_anchor.get_mut(a.token) {
            *flag = true;
        }
    }
    let num_blocks = counts.iter().map(Vec::len).max().unwrap_or(0);
    let mut none_row = vec![0u64; num_blocks];
    let mut conditional_bits = 0.0;
    for (row, &anchor) in counts.iter().zip(&is_anchor) {
        if anchor {
            conditional_bits += row_total(row) * count_entropy_bits(row);
        } else {
            for (t, &c) in none_row.iter_mut().zip(row) {
                *t += c;
            }
        }
    }
    conditional_bits += row_total(&none_row) * count_entropy_bits(&none_row);
    let totals = block_totals(counts);
    let n: f64 = totals.iter().sum();
    if n <= 0.0 {
        return 0.0;
    }
    let h_b: f64 = totals
        .iter()
        .filter(|&&t| t > 0.0)
        .map(|&t| -(t / n) * (t / n).log2())
        .sum();
    (h_b - conditional_bits / n).max(0.0)
}

/// Welch bound √((K − d)/(d(K − 1))): no K unit vectors in d dimensions can all have pairwise
/// |cos| below it. 0 when K ≤ d (orthonormal vectors exist) or d = 0.
pub fn welch_bound(k: usize, d: usize) -> f64 {
    if k <= d || d == 0 {
        return 0.0;
    }
    ((k - d) as f64 / (d as f64 * (k - 1) as f64)).sqrt()
}

/// Cosine of two vectors in f64; 0 when either is zero.
fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum();
    let na: f64 = a.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    if na > 0.0 && nb > 0.0 {
        dot / (na * nb)
    } else {
        0.0
    }
}

/// Largest |cos| over all pairs of distinct vectors (0 with fewer than two).
pub fn max_abs_cosine(vectors: &[Vec<f32>]) -> f64 {
    let mut worst = 0.0f64;
    for (i, a) in vectors.iter().enumerate() {
        for b in vectors.iter().skip(i + 1) {
            worst = worst.max(cosine(a, b).abs());
        }
    }
    worst
}

/// Matrix of pairwise cosines (K × K); the diagonal is 1 for non-zero vectors, 0 otherwise.
pub fn coherence_matrix(vectors: &[Vec<f32>]) -> Vec<Vec<f64>> {
    vectors
        .iter()
        .map(|a| vectors.iter().map(|b| cosine(a, b)).collect())
        .collect()
}

/// A Gaussian vector of length `d`.
fn gaussian(d: usize, rng: &mut SplitMix64) -> Vec<f64> {
    (0..d).map(|_| rng.normal()).collect()
}

/// Scale to unit length in place; returns the norm before scaling.
fn normalise(v: &mut [f64]) -> f64 {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    norm
}

/// `k` unit vectors of length `d` for anchor keys.
///
/// For K ≤ d they are orthonormal: Gram–Schmidt (two passes, for accuracy) on Gaussian
/// vectors, redrawing a vector that falls into the span of the previous ones. For K > d
/// orthogonality is impossible and they are independent random unit vectors. d = 0 gives empty
/// vectors.
pub fn orthonormal_vectors(k: usize, d: usize, rng: &mut SplitMix64) -> Vec<Vec<f32>> {
    let mut basis: Vec<Vec<f64>> = Vec::with_capacity(k);
    while basis.len() < k {
        let mut v = gaussian(d, rng);
        if d == 0 {
            basis.push(v);
            continue;
        }
        if k <= d {
            for _pass in 0..2 {
                for u in &basis {
                    let dot: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(u).for_each(|(a, b)| *a -= dot * b);
                }
            }
        }
        // A tiny residual means v was (nearly) in the span: draw again.
        if normalise(&mut v) > 1e-6 {
            basis.push(v);
        }
    }
    basis
        .into_iter()
        .map(|v| v.into_iter().map(|x| x as f32).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_edges() {
        assert_eq!(welch_bound(4, 8), 0.0);
        assert_eq!(welch_bound(4, 0), 0.0);
        // K = d + 1 = 3 in d = 2: √(1/(2·2)) = 0.5 (three lines at 60°).
        assert!((welch_bound(3, 2) - 0.5).abs() < 1e-12);
    }
}
