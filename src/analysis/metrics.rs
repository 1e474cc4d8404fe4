//! Per-row attention metrics (SPEC §7): entropy, off-block mass ε, block masses, logit margin,
//! pointer fidelity, the causal entropy ceiling and the KKT gap.
//!
//! Everything here works on one attention row at a time, as plain slices, so the same code
//! serves the model's capture, the theory panel and the tests. Rows arrive as `f32` (that is
//! what the model produces) but every sum is taken in `f64`: entropies of 512-key rows summed
//! in `f32` drift by more than the tolerances the derived bounds are checked against.
//!
//! Masks are `&[bool]` indexed by key position. A mask shorter than the row reads as `false`
//! beyond its end, so no function here can panic on mismatched lengths.
//!
//! The one-pass row of a capture is in [`crate::analysis::capture_row`].
//!
//! NaN in, NaN out: a NaN weight or logit makes the entropy, ε, margin and KKT gap NaN, never
//! 0 (`f64::max`, `min` and `p > 0.0` all drop NaN, and a NaN entropy read as 0 once showed a
//! broken model as perfectly localist). Callers refuse NaN rows before they get here
//! ([`crate::model::finite`] is the model's check); these functions only never hide one.

use crate::analysis::lanes::{add_block_masses, lane_prefix, lane_total, LANES};

/// Whether `mask` marks key `j`; positions past the end of the mask are unmarked.
pub(crate) fn marked(mask: &[bool], j: usize) -> bool {
    mask.get(j).copied().unwrap_or(false)
}

/// Contribution `−p·log₂ p` of one probability to an entropy, with `0·log 0 = 0` (and NaN for
/// a NaN weight).
pub(crate) fn entropy_term_bits(p: f64) -> f64 {
    if p > 0.0 {
        -p * p.log2()
    } else if p.is_nan() {
        f64::NAN
    } else {
        0.0
    }
}

/// The larger of two values, NaN when either is NaN (`f64::max` drops a NaN).
pub(crate) fn max_or_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// The smaller of two values, NaN when either is NaN (`f64::min` drops a NaN).
pub(crate) fn min_or_nan(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `x` clamped at 0 from below (rounding can make ε = 1 − Σ slightly negative), keeping NaN
/// as NaN where `x.max(0.0)` would turn it into 0.
pub fn non_negative(x: f64) -> f64 {
    if x < 0.0 {
        0.0
    } else {
        x
    }
}

/// Shannon entropy of an attention row, in bits.
///
/// Zero (and negative, i.e. invalid) weights contribute nothing (`0·log 0 = 0`). The row is
/// not renormalised: a row that does not sum to one is a bug upstream and should show as one.
pub fn entropy_bits(row: &[f32]) -> f64 {
    row.iter().map(|&a| entropy_term_bits(f64::from(a))).sum()
}

/// Total weight the row puts on the keys marked in `mask`.
pub fn mass_on(row: &[f32], mask: &[bool]) -> f64 {
    row.iter()
        .enumerate()
        .filter(|&(j, _)| marked(mask, j))
        .map(|(_, &a)| f64::from(a))
        .sum()
}

/// Off-block mass ε = 1 − Σ_{j∈R(i)} a_ij (SPEC §1), `relevant` marking R(i).
///
/// Computed as the sum of the weights on the keys *outside* `relevant`, which equals
/// 1 − mass_on(relevant) for a normalised row but has no cancellation error: ε of 1e-9 stays
/// 1e-9 instead of drowning in the rounding of a sum close to one, and ε is exactly 0 when the
/// off-block weights are exactly 0 (the hard mask at λ = 1).
///
/// The sum runs in [`LANES`] lanes over the keys the mask covers in whole groups of
/// [`LANES`], added pairwise ([`lane_total`]), then key by key over the rest: the order of
/// [`crate::analysis::capture_row`]'s one-pass sum, so the two give the same number.
pub fn off_block_mass(row: &[f32], relevant: &[bool]) -> f64 {
    let n0 = lane_prefix(row.len(), relevant.len());
    let mut lanes = [0.0f64; LANES];
    let groups = row.get(..n0).unwrap_or_default().chunks_exact(LANES);
    for (ac, rc) in groups.zip(relevant.chunks_exact(LANES)) {
        for ((l, &a), &r) in lanes.iter_mut().zip(ac).zip(rc) {
            *l += if r { 0.0 } else { f64::from(a) };
        }
    }
    let mut sum = lane_total(lanes);
    for (j, &a) in row.iter().enumerate().skip(n0) {
        if !marked(relevant, j) {
            sum += f64::from(a);
        }
    }
    sum
}

/// Mass per block: entry `k` is Σ of `row[j]` over keys `j` with `key_blocks[j] == k`.
///
/// Keys without an entry in `key_blocks`, or with a block `>= num_blocks`, are not counted.
///
/// A row of at least 32 keys per block sums the keys in whole groups of [`LANES`] in lanes
/// (key j into lane j mod [`LANES`] of its block, the lanes added pairwise by
/// [`lane_total`]), then the rest key by key; a shorter row key by key: the order of
/// [`crate::analysis::capture_row`]'s one pass, so the two give the same numbers.
pub fn block_masses(row: &[f32], key_blocks: &[usize], num_blocks: usize) -> Vec<f64> {
    let mut masses = vec![0.0; num_blocks];
    let mut lanes = vec![[0.0; LANES]; num_blocks];
    add_block_masses(row, key_blocks, &mut lanes, &mut masses);
    masses
}

/// Logit margin m(i) = min over visible relevant keys of z − max over visible off-block keys
/// of z (SPEC §1), where `logits` are z = s + β before the temperature.
///
/// Returns `f64::INFINITY` when no visible key is off-block (nothing competes with the relevant
/// block, so any margin is met), and `f64::NEG_INFINITY` when there are visible off-block keys
/// but no visible relevant key (S(i) normally prevents that).
pub fn logit_margin(logits: &[f32], relevant: &[bool], visible: &[bool]) -> f64 {
    let mut min_in = f64::INFINITY;
    let mut max_off = f64::NEG_INFINITY;
    for (j, &z) in logits.iter().enumerate() {
        if !marked(visible, j) {
            continue;
        }
        let z = f64::from(z);
        if marked(relevant, j) {
            min_in = min_or_nan(min_in, z);
        } else {
            max_off = max_or_nan(max_off, z);
        }
    }
    margin_from_extremes(min_in, max_off)
}

/// The margin given the smallest relevant and largest off-block logit (±∞ when empty, NaN
/// when either is NaN).
pub(crate) fn margin_from_extremes(min_in: f64, max_off: f64) -> f64 {
    if min_in.is_nan() || max_off.is_nan() {
        f64::NAN
    } else if max_off == f64::NEG_INFINITY {
        f64::INFINITY
    } else if min_in == f64::INFINITY {
        f64::NEG_INFINITY
    } else {
        min_in - max_off
    }
}

/// Pointer fidelity of one row against a target set T(i) (SPEC §6).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PointerFidelity {
    /// PF_mass: total attention on the targets.
    pub mass: f64,
    /// PF_top1: whether the most attended key (first one on ties) is a target.
    pub top1: bool,
}

/// Pointer fidelity of `row` against the keys marked in `targets`.
///
/// An empty row has mass 0 and `top1 == false`.
pub fn pointer_fidelity(row: &[f32], targets: &[bool]) -> PointerFidelity {
    let top = argmax(row);
    PointerFidelity {
        mass: mass_on(row, targets),
        top1: top.is_some_and(|j| marked(targets, j)),
    }
}

/// Natural-log softmax of a row of logits (−∞ logits give −∞; a row without a finite logit
/// gives all −∞).
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if !max.is_finite() {
        return vec![f64::NEG_INFINITY; logits.len()];
    }
    let lse = logits
        .iter()
        .map(|&z| (f64::from(z) - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    logits.iter().map(|&z| f64::from(z) - lse).collect()
}

/// Index of the largest weight (the first on ties), or `None` for an empty row.
pub fn argmax(row: &[f32]) -> Option<usize> {
    let mut argmax: Option<(usize, f32)> = None;
    for (j, &a) in row.iter().enumerate() {
        if argmax.is_none_or(|(_, best)| a > best) {
            argmax = Some((j, a));
        }
    }
    argmax.map(|(j, _)| j)
}

/// The largest possible mean entropy of causal rows over a sequence of length `t`, in bits:
/// (1/t)·Σ_{i=1..t} log₂ i, reached when every query attends uniformly to its i visible keys.
///
/// A measured mean causal entropy above this is a metric bug (SPEC §7). `t = 0` gives 0.
pub fn max_mean_causal_entropy_bits(t: usize) -> f64 {
    if t == 0 {
        return 0.0;
    }
    let total: f64 = (1..=t).map(|i| (i as f64).log2()).sum();
    total / t as f64
}

/// Entropy of the row divided by its maximum log₂ N(i), N(i) = `n_visible`: 0 for a one-hot
/// row, 1 for a uniform one. Rows with at most one visible key have no spread and give 0.
pub fn normalised_entropy(row: &[f32], n_visible: usize) -> f64 {
    if n_visible <= 1 {
        return 0.0;
    }
    entropy_bits(row) / (n_visible as f64).log2()
}

/// KKT gap of a block-mass distribution: max_k p_k·(g_k − min_j g_j), with g = ∂F/∂p (SPEC §7).
///
/// At a stationary point of F on the simplex every block that holds mass has the smallest
/// gradient, so the gap is 0; a large gap says the optimiser has not settled. Pairs beyond the
/// shorter slice are ignored; empty input gives 0.
pub fn kkt_gap(masses: &[f64], grad: &[f64]) -> f64 {
    let n = masses.len().min(grad.len());
    let g_min = grad.iter().take(n).copied().fold(f64::INFINITY, min_or_nan);
    masses
        .iter()
        .zip(grad)
        .map(|(&p, &g)| p * (g - g_min))
        .fold(0.0, max_or_nan)
}

/// The metrics of one attention row, computed together by [`summarise_row`].
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RowStats {
    /// Entropy of the row, bits.
    pub entropy_bits: f64,
    /// Entropy divided by log₂ of the number of visible keys (0 with one visible key).
    pub normalised_entropy: f64,
    /// Off-block mass ε: weight outside the relevant set.
    pub off_block_mass: f64,
    /// Logit margin, when logits were supplied (see [`logit_margin`] for the ±∞ cases).
    pub margin: Option<f64>,
    /// Pointer fidelity against the target set.
    pub pointer_fidelity: PointerFidelity,
    /// Number of visible keys N(i).
    pub n_visible: usize,
}

/// Entropy, ε, margin and pointer fidelity of one row in a single pass over its keys.
///
/// `logits` (z = s + β) are optional because block-aggregated captures keep only weights.
/// Without rules, pass `relevant` as `targets` (then PF_mass = 1 − ε, SPEC §6). Agrees with
/// the separate functions of this module; it exists so capture does not walk each row five
/// times.
pub fn summarise_row(
    row: &[f32],
    logits: Option<&[f32]>,
    visible: &[bool],
    relevant: &[bool],
    targets: &[bool],
) -> RowStats {
    let mut entropy = 0.0;
    let mut eps = 0.0;
    let mut pf_mass = 0.0;
    let mut argmax: Option<(usize, f32)> = None;
    let mut n_visible = 0usize;
    let mut min_in = f64::INFINITY;
    let mut max_off = f64::NEG_INFINITY;
    for (j, &a) in row.iter().enumerate() {
        let p = f64::from(a);
        entropy += entropy_term_bits(p);
        let is_relevant = marked(relevant, j);
        if !is_relevant {
            eps += p;
        }
        if marked(targets, j) {
            pf_mass += p;
        }
        if argmax.is_none_or(|(_, best)| a > best) {
            argmax = Some((j, a));
        }
        if marked(visible, j) {
            n_visible += 1;
            if let Some(&z) = logits.and_then(|l| l.get(j)) {
                let z = f64::from(z);
                if is_relevant {
                    min_in = min_or_nan(min_in, z);
                } else {
                    max_off = max_or_nan(max_off, z);
                }
            }
        }
    }
    let normalised = if n_visible <= 1 {
        0.0
    } else {
        entropy / (n_visible as f64).log2()
    };
    RowStats {
        entropy_bits: entropy,
        normalised_entropy: normalised,
        off_block_mass: eps,
        margin: logits.map(|_| margin_from_extremes(min_in, max_off)),
        pointer_fidelity: PointerFidelity {
            mass: pf_mass,
            top1: argmax.is_some_and(|(j, _)| marked(targets, j)),
        },
        n_visible,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_agrees_with_separate_functions() {
        let row = [0.1f32, 0.4, 0.0, 0.3, 0.2];
        let logits = [0.5f32, 2.0, -9.0, 1.5, 1.0];
        let visible = [true, true, false, true, true];
        let relevant = [false, true, false, true, false];
        let targets = [false, false, false, true, false];
        let s = summarise_row(&row, Some(&logits), &visible, &relevant, &targets);
        assert!((s.entropy_bits - entropy_bits(&row)).abs() < 1e-12);
        assert!((s.off_block_mass - off_block_mass(&row, &relevant)).abs() < 1e-12);
        assert_eq!(s.margin, Some(logit_margin(&logits, &relevant, &visible)));
        // Margin by hand: min(2.0, 1.5) − max(0.5, 1.0) = 0.5.
        assert!((logit_margin(&logits, &relevant, &visible) - 0.5).abs() < 1e-12);
        assert_eq!(s.pointer_fidelity, pointer_fidelity(&row, &targets));
        assert!(!s.pointer_fidelity.top1);
        assert_eq!(s.n_visible, 4);
        assert!((s.normalised_entropy - normalised_entropy(&row, 4)).abs() < 1e-12);
    }

    #[test]
    fn nan_is_never_read_as_zero() {
        let row = [0.5f32, f32::NAN, 0.5];
        let logits = [1.0f32, f32::NAN, 0.0];
        let all = [true, true, true];
        let relevant = [true, false, false];
        assert!(entropy_bits(&row).is_nan());
        assert!(off_block_mass(&row, &relevant).is_nan());
        assert!(logit_margin(&logits, &relevant, &all).is_nan());
        let s = summarise_row(&row, Some(&logits), &all, &relevant, &relevant);
        assert!(s.entropy_bits.is_nan());
        assert!(s.off_block_mass.is_nan());
        assert!(s.margin.is_some_and(f64::is_nan));
        assert!(kkt_gap(&[0.5, 0.5], &[1.0, f64::NAN]).is_nan());
        assert!(non_negative(f64::NAN).is_nan());
        assert_eq!(non_negative(-1e-9), 0.0);
        assert_eq!(non_negative(0.25), 0.25);
        // Finite rows keep their values: entropy of (½, ½) is 1 bit.
        assert!((entropy_bits(&[0.5, 0.5, 0.0]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn kkt_gap_by_hand() {
        // p = (0.5, 0.5, 0), g = (1, 3, 0): min g = 0, gaps 0.5·1 and 0.5·3 → 1.5.
        assert!((kkt_gap(&[0.5, 0.5, 0.0], &[1.0, 3.0, 0.0]) - 1.5).abs() < 1e-12);
        assert_eq!(kkt_gap(&[], &[]), 0.0);
    }
}
