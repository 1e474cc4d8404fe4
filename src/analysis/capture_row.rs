//! One attention row of a capture in one pass ([`capture_row`]): entropy, ε, block masses and
//! margin, the same sums as the single metrics of [`crate::analysis::metrics`].

use std::cell::RefCell;

use crate::analysis::lanes::{add_block_masses, lane_prefix, lane_total, LANES};
use crate::analysis::metrics::{entropy_term_bits, margin_from_extremes, marked, non_negative};

thread_local! {
    /// The block-mass lanes of [`capture_row`] on this thread (zero between rows).
    static MASS_LANES: RefCell<Vec<[f64; LANES]>> = const { RefCell::new(Vec::new()) };
}

/// What a capture keeps of one attention row besides its weights ([`capture_row`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CaptureRow {
    /// Entropy in bits.
    pub entropy_bits: f64,
    /// Off-block mass ε.
    pub off_block: f64,
    /// Logit margin m(i).
    pub margin: f64,
}

/// Entropy, ε, block masses and margin of one row in one pass over its visible keys: `row`
/// and `z` hold keys 0..n that the query sees (a decoder's row i: n = i + 1; the rest of a
/// causal row is 0 and adds nothing), `relevant` marks R(i) and `key_blocks` gives b(x_j) over
/// the same keys; the block masses are added into `masses` (length K). ε, the masses and the
/// margin are the sums of [`off_block_mass`], [`block_masses`] and [`logit_margin`] in the
/// same order, so they are the same numbers.
///
/// `tau`: when the row is softmax(z/τ) (every mode but B's mixture), the entropy is taken as
/// H = ln Σ exp(z/τ) − Σ a·z/τ with ln Σ exp(z/τ) = z_m/τ − ln a_m at the row's largest weight
/// m, which needs one logarithm per row instead of one per key (a capture of 2,048 tokens has
/// half a billion weights); it agrees with [`entropy_bits`] to about 1e-6 bits. `None` (a
/// mixture, whose row is not one softmax) takes the entropy term by term. NaN in, NaN out.
pub fn capture_row(
    row: &[f32],
    z: &[f32],
    relevant: &[bool],
    key_blocks: &[usize],
    tau: Option<f64>,
    masses: &mut [f64],
) -> CaptureRow {
    let n = row.len().min(z.len());
    let (row, z) = (row.get(..n).unwrap_or(row), z.get(..n).unwrap_or(z));
    MASS_LANES.with(|cell| {
        let mut lanes = cell.borrow_mut();
        if lanes.len() < masses.len() {
            lanes.resize(masses.len(), [0.0; LANES]);
        }
        let k = masses.len();
        add_block_masses(
            row,
            key_blocks,
            lanes.get_mut(..k).unwrap_or_default(),
            masses,
        );
    });
    // The keys the mask covers in whole groups run in lanes, the rest one by one.
    let n0 = lane_prefix(n, relevant.len());
    let lanes = lane_sweep(
        row.get(..n0).unwrap_or_default(),
        z.get(..n0).unwrap_or_default(),
        relevant.get(..n0).unwrap_or_default(),
    );
    let mut w = lanes;
    for (j, (&a, &zj)) in row.iter().zip(z).enumerate().skip(n0) {
        w.key(j, a, zj, marked(relevant, j));
    }
    let entropy_bits = match (tau, z.get(w.best_j)) {
        _ if w.nan => f64::NAN,
        (Some(tau), Some(&zm)) if w.best > 0.0 => {
            let lse = f64::from(zm) / tau - f64::from(w.best).ln();
            non_negative((lse - w.az / tau) / std::f64::consts::LN_2)
        }
        (Some(_), _) => 0.0,
        (None, _) => row
            .iter()
            .filter(|a| **a > 0.0)
            .map(|&a| entropy_term_bits(f64::from(a)))
            .sum(),
    };
    let extreme = |x: f32, nan: bool| if nan { f64::NAN } else { f64::from(x) };
    CaptureRow {
        entropy_bits,
        off_block: non_negative(w.eps),
        margin: margin_from_extremes(extreme(w.min_in, w.nan_in), extreme(w.max_off, w.nan_off)),
    }
}

/// The running sums and extremes of a row: ε, Σ a·z over a > 0, the smallest in-block and
/// largest off-block score (in f32: f64::from keeps order; a NaN noted apart), and the first
/// largest weight. Updates are selections, not branches: which keys are in R(i) follows no
/// pattern a branch predictor could learn.
#[derive(Clone, Copy)]
struct Sweep {
    eps: f64,
    az: f64,
    min_in: f32,
    max_off: f32,
    nan_in: bool,
    nan_off: bool,
    nan: bool,
    best: f32,
    best_j: usize,
}

impl Sweep {
    const START: Self = Self {
        eps: 0.0,
        az: 0.0,
        min_in: f32::INFINITY,
        max_off: f32::NEG_INFINITY,
        nan_in: false,
        nan_off: false,
        nan: false,
        best: f32::NEG_INFINITY,
        best_j: usize::MAX,
    };

    /// Key `j`: weight `a`, score `zj`, whether it is in R(i).
    #[inline(always)]
    fn key(&mut self, j: usize, a: f32, zj: f32, r: bool) {
        let a64 = f64::from(a);
        self.eps += if r { 0.0 } else { a64 };
        // x + 0 is x: the sum over a > 0 only (0·(−∞) would be NaN).
        self.az += if a > 0.0 { a64 * f64::from(zj) } else { 0.0 };
        self.min_in = if r { self.min_in.min(zj) } else { self.min_in };
        self.max_off = if r {
            self.max_off
        } else {
            self.max_off.max(zj)
        };
        self.nan_in |= r & zj.is_nan();
        self.nan_off |= !r & zj.is_nan();
        self.nan |= a.is_nan();
        if a > self.best {
            (self.best, self.best_j) = (a, j);
        }
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// The sweep of keys in whole groups of [`LANES`], lane l taking keys l, l + LANES, ...,
    /// merged into one ([`lanes_total`]).
    fn lane_sweep => lane_sweep_any(row: &[f32], z: &[f32], relevant: &[bool]) -> Sweep
}

/// [`LANES`] sweeps side by side, each quantity an array of lanes (so that it vectorises).
/// Flags are u32 lanes and the largest weight's key a u32 lane (bools and usizes kept the
/// arrays in memory, every group a masked store and a reload).
struct Lanes {
    eps: [f64; LANES],
    az: [f64; LANES],
    min_in: [f32; LANES],
    max_off: [f32; LANES],
    nan_in: [u32; LANES],
    nan_off: [u32; LANES],
    nan: [u32; LANES],
    best: [f32; LANES],
    best_g: [u32; LANES],
}

#[inline(always)]
fn lane_sweep_any(row: &[f32], z: &[f32], relevant: &[bool]) -> Sweep {
    let s = Sweep::START;
    let (mut eps, mut az) = ([s.eps; LANES], [s.az; LANES]);
    let (mut min_in, mut max_off) = ([s.min_in; LANES], [s.max_off; LANES]);
    let (mut nan_in, mut nan_off, mut nan) = ([0u32; LANES], [0u32; LANES], [0u32; LANES]);
    let (mut best, mut best_g) = ([s.best; LANES], [u32::MAX; LANES]);
    let groups = row.chunks_exact(LANES).zip(z.chunks_exact(LANES));
    for (g, ((ac, zc), rc)) in groups.zip(relevant.chunks_exact(LANES)).enumerate() {
        let (Ok(a), Ok(zz), Ok(r)) = (
            <&[f32; LANES]>::try_from(ac),
            <&[f32; LANES]>::try_from(zc),
            <&[bool; LANES]>::try_from(rc),
        ) else {
            continue;
        };
        let g = g as u32;
        for l in 0..LANES {
            let (a, zj, r) = (a[l], zz[l], r[l]);
            let a64 = f64::from(a);
            eps[l] += if r { 0.0 } else { a64 };
            az[l] += if a > 0.0 { a64 * f64::from(zj) } else { 0.0 };
            // min and max pass a NaN over, as the one-key sweep does.
            min_in[l] = min_in[l].min(if r { zj } else { f32::INFINITY });
            max_off[l] = max_off[l].max(if r { f32::NEG_INFINITY } else { zj });
            let zn = u32::from(zj.is_nan());
            nan_in[l] |= u32::from(r) & zn;
            nan_off[l] |= u32::from(!r) & zn;
            nan[l] |= u32::from(a.is_nan());
            // The largest weight as a maximum, not a selection: as `if better { a }` the
            // compiler kept `best` on the stack, a masked store that the next group's compare
            // waited on (70% of this loop's time on 2,048-key rows). max gives the same value
            // (a NaN weight is passed over either way; an equal weight keeps the old group).
            let better = a > best[l];
            best[l] = best[l].max(a);
            best_g[l] = if better { g } else { best_g[l] };
        }
    }
    lanes_total(&Lanes {
        eps,
        az,
        min_in,
        max_off,
        nan_in,
        nan_off,
        nan,
        best,
        best_g,
    })
}

/// One sweep holding every lane: sums added pairwise ([`lane_total`], as [`off_block_mass`]
/// adds them), extremes and flags merged, the first largest weight.
#[inline(always)]
fn lanes_total(w: &Lanes) -> Sweep {
    let mut out = Sweep {
        eps: lane_total(w.eps),
        az: lane_total(w.az),
        ..Sweep::START
    };
    for l in 0..LANES {
        out.min_in = out.min_in.min(w.min_in[l]);
        out.max_off = out.max_off.max(w.max_off[l]);
        out.nan_in |= w.nan_in[l] != 0;
        out.nan_off |= w.nan_off[l] != 0;
        out.nan |= w.nan[l] != 0;
        let j = match w.best_g[l] {
            u32::MAX => usize::MAX,
            g => g as usize * LANES + l,
        };
        let b = w.best[l];
        if b > out.best || (b == out.best && j < out.best_j) {
            (out.best, out.best_j) = (b, j);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::metrics::{block_masses, entropy_bits, logit_margin, off_block_mass};

    #[test]
    fn row_summary_is_the_sum_of_the_single_metrics() {
        let tau = 0.7f64;
        let z: Vec<f32> = vec![1.5, -0.3, 2.2, 0.1, 7.0, -4.0, 0.0];
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = z
            .iter()
            .map(|&v| ((f64::from(v - max)) / tau).exp())
            .collect();
        let sum: f64 = e.iter().sum();
        let row: Vec<f32> = e.iter().map(|v| (v / sum) as f32).collect();
        let relevant = [true, false, true, false, false, true, true];
        let blocks = [0usize, 1, 0, 2, 1, 0, 2];
        let mut masses = vec![0.0; 3];
        let s = capture_row(&row, &z, &relevant, &blocks, Some(tau), &mut masses);
        assert!((s.entropy_bits - entropy_bits(&row)).abs() < 1e-6, "{s:?}");
        assert_eq!(s.off_block, off_block_mass(&row, &relevant));
        assert_eq!(masses, block_masses(&row, &blocks, 3));
        assert_eq!(s.margin, logit_margin(&z, &relevant, &[true; 7]));
        let mut m2 = vec![0.0; 3];
        let exact = capture_row(&row, &z, &relevant, &blocks, None, &mut m2);
        assert_eq!(exact.entropy_bits, entropy_bits(&row));
        // A one-hot row has no entropy; NaN stays NaN.
        let one = capture_row(
            &[1.0, 0.0],
            &[3.0, -50.0],
            &[true, true],
            &[0, 0],
            Some(1.0),
            &mut m2,
        );
        assert!(one.entropy_bits.abs() < 1e-12 && one.margin == f64::INFINITY);
        let bad = capture_row(
            &[f32::NAN, 1.0],
            &[0.0, 0.0],
            &[true, false],
            &[0, 0],
            Some(1.0),
            &mut m2,
        );
        assert!(bad.entropy_bits.is_nan() && bad.off_block == 1.0);
    }

    /// A softmax row of `n` keys at temperature τ from scores that vary without a pattern.
    fn long_row(n: usize, tau: f64) -> (Vec<f32>, Vec<f32>) {
        let z: Vec<f32> = (0..n)
            .map(|j| ((j * 37 % 23) as f32 - 11.0) * 0.41)
            .collect();
        let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f64> = z
            .iter()
            .map(|&v| (f64::from(v - max) / tau).exp())
            .collect();
        let sum: f64 = e.iter().sum();
        (e.iter().map(|v| (v / sum) as f32).collect(), z)
    }

    /// Rows long enough for the lanes and a tail, with a mask shorter than the row (keys past
    /// it are off-block), ties for the largest weight and a NaN score in either set.
    #[test]
    fn long_rows_in_lanes_are_the_single_metrics() {
        for (n, marks) in [(37usize, 30usize), (64, 64), (200, 131), (9, 3)] {
            let tau = 0.9;
            let (row, z) = long_row(n, tau);
            let relevant: Vec<bool> = (0..marks).map(|j| j % 3 == 1 || j == 5).collect();
            let blocks: Vec<usize> = (0..n).map(|j| j % 4).collect();
            let mut masses = vec![0.0; 4];
            let s = capture_row(&row, &z, &relevant, &blocks, Some(tau), &mut masses);
            assert_eq!(s.off_block, off_block_mass(&row, &relevant), "n {n}");
            assert_eq!(masses, block_masses(&row, &blocks, 4));
            assert_eq!(s.margin, logit_margin(&z, &relevant, &vec![true; n]));
            assert!((s.entropy_bits - entropy_bits(&row)).abs() < 1e-6, "{s:?}");
            let mut m2 = vec![0.0; 4];
            let mixture = capture_row(&row, &z, &relevant, &blocks, None, &mut m2);
            assert_eq!(mixture.entropy_bits, entropy_bits(&row));
            for bad in [1usize, n - 1] {
                let mut zb = z.clone();
                zb[bad] = f32::NAN;
                let b = capture_row(&row, &zb, &relevant, &blocks, Some(tau), &mut m2);
                assert!(b.margin.is_nan(), "NaN score at {bad} of {n}");
            }
        }
        // The entropy reads the first largest weight: the same row shifted by a lane holds
        // its ties in other lanes and gives the same entropy.
        let (row, z) = long_row(48, 1.0);
        let one = capture_row(&row, &z, &[], &[], Some(1.0), &mut []);
        let (r2, z2) = (
            [&[0.0f32][..], &row].concat(),
            [&[-1e4f32][..], &z].concat(),
        );
        let two = capture_row(&r2, &z2, &[], &[], Some(1.0), &mut []);
        assert!((one.entropy_bits - two.entropy_bits).abs() < 1e-9);
        assert_eq!(one.off_block, off_block_mass(&row, &[]));
    }
}
