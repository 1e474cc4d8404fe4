//! One attention row of a capture in one pass ([`capture_row`]): entropy, ε, block masses and
//! margin, the same sums as the single metrics of [`crate::analysis::metrics`].

use crate::analysis::metrics::{entropy_term_bits, margin_from_extremes, non_negative};

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
    let (mut az, mut eps, mut ent) = (0.0f64, 0.0f64, 0.0f64);
    // The extremes in f32 (exact: f64::from keeps order), a NaN noted apart, and every
    // update written as a selection: which keys are in R(i) follows no pattern a branch
    // predictor could learn.
    let (mut min_in, mut max_off) = (f32::INFINITY, f32::NEG_INFINITY);
    let (mut nan_in, mut nan_off) = (false, false);
    let (mut best, mut best_j) = (f32::NEG_INFINITY, usize::MAX);
    let mut nan = false;
    let rel = relevant.iter().copied().chain(std::iter::repeat(false));
    for (j, ((&a, &zj), r)) in row.iter().zip(z).zip(rel).enumerate() {
        let a64 = f64::from(a);
        nan |= a.is_nan();
        if a > best {
            (best, best_j) = (a, j);
        }
        if tau.is_some() {
            // x + 0 is x: the same sum as adding only where a > 0 (0·(−∞) would be NaN).
            az += if a > 0.0 { a64 * f64::from(zj) } else { 0.0 };
        } else if a > 0.0 {
            ent += entropy_term_bits(a64);
        }
        if let Some(m) = key_blocks.get(j).and_then(|&k| masses.get_mut(k)) {
            *m += a64;
        }
        eps += if r { 0.0 } else { a64 };
        min_in = if r { min_in.min(zj) } else { min_in };
        max_off = if r { max_off } else { max_off.max(zj) };
        nan_in |= r & zj.is_nan();
        nan_off |= !r & zj.is_nan();
    }
    let extreme = |x: f32, nan: bool| if nan { f64::NAN } else { f64::from(x) };
    let (min_in, max_off) = (extreme(min_in, nan_in), extreme(max_off, nan_off));
    let entropy_bits = match (tau, z.get(best_j)) {
        _ if nan => f64::NAN,
        (Some(tau), Some(&zm)) if best > 0.0 => {
            let lse = f64::from(zm) / tau - f64::from(best).ln();
            non_negative((lse - az / tau) / std::f64::consts::LN_2)
        }
        (Some(_), _) => 0.0,
        (None, _) => ent,
    };
    CaptureRow {
        entropy_bits,
        off_block: non_negative(eps),
        margin: margin_from_extremes(min_in, max_off),
    }
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
}
