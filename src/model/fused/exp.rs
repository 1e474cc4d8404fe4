//! exp without a library call, so that loops over rows vectorise: Cephes' `expf` (a degree-7
//! polynomial after reducing by ln 2; about one ulp, checked against `f32::exp` below), and a
//! row pass `exp(x − shift)` compiled for AVX-512 or AVX2 where the CPU has them.
//!
//! glibc's `expf` is a call per element that the compiler cannot vectorise: 11% of a 2,048-token
//! SmolLM2 capture and 6% of a tiny training step were spent in it.

/// e^x for one value: 0 below −87.3 (so −∞ gives exactly 0, as the masks need), NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5·2²³: adding it rounds to an integer in the low bits
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(-87.3, 88.3);
    let big = xc * LOG2E + MAGIC;
    let n = big - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let p = p * r * r + r + 1.0;
    let e = big.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let scale = f32::from_bits(((e + 127) << 23) as u32);
    if x < -87.3 {
        0.0
    } else {
        p * scale
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// out = exp(x − shift), element by element; the sum of `out` is returned.
    pub(crate) fn exp_shifted => exp_shifted_any(x: &[f32], shift: f32, out: &mut [f32]) -> f32
}

/// The portable body: the exp loop vectorises, the sum runs in 16 lanes.
#[inline(always)]
fn exp_shifted_any(x: &[f32], shift: f32, out: &mut [f32]) -> f32 {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = exp_f32(v - shift);
    }
    let n = x.len().min(out.len());
    crate::model::fused::simd::sum_lanes(out.get(..n).unwrap_or(&[]))
}

/// x = exp(x − shift) in place, and the sum, in 16 lanes ([`sum_lanes`](crate::model::fused::simd::sum_lanes)).
/// A loop that adds as it goes is one dependent add per element and keeps the exps from
/// vectorising: over an 8,192-word vocabulary's logits the training's cross-entropy spent 22%
/// of a step so.
#[inline(always)]
pub(crate) fn exp_in_place(x: &mut [f32], shift: f32) -> f32 {
    for v in x.iter_mut() {
        *v = exp_f32(*v - shift);
    }
    crate::model::fused::simd::sum_lanes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_library_exp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let (ours, lib) = (f64::from(exp_f32(x)), f64::from(x.exp()));
            worst = worst.max(((ours - lib) / lib).abs());
            x += 0.001_37;
        }
        assert!(worst < 4e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-1e30), 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!(exp_f32(1e30).is_finite());
    }

    #[test]
    fn exp_in_place_gives_the_values_and_their_sum() {
        for n in [0usize, 5, 16, 37, 8_203] {
            let x: Vec<f32> = (0..n).map(|i| -0.0097 * i as f32 + 3.0).collect();
            let mut y = x.clone();
            let sum = exp_in_place(&mut y, 3.5);
            let mut want = 0f64;
            for (o, v) in y.iter().zip(&x) {
                let e = f64::from(v - 3.5).exp();
                assert!((f64::from(*o) - e).abs() <= 4e-7 * e, "{o} against {e}");
                want += e;
            }
            assert!(
                (f64::from(sum) - want).abs() <= 1e-6 * want.max(1.0),
                "{sum} against {want}"
            );
        }
        let mut nan_row = [1.0, f32::NAN, 0.5];
        assert!(exp_in_place(&mut nan_row, 0.0).is_nan());
    }

    #[test]
    fn row_pass_gives_the_values_and_their_sum() {
        let x: Vec<f32> = (0..37).map(|i| -0.37 * i as f32).collect();
        let mut out = vec![0f32; x.len()];
        let sum = exp_shifted(&x, 0.5, &mut out);
        let mut want = 0f32;
        for (o, v) in out.iter().zip(&x) {
            assert!((o - (v - 0.5).exp()).abs() <= 1e-7 * o.max(1e-30) * 4.0);
            want += o;
        }
        assert!((sum - want).abs() < 1e-6);
        let mut nan_row = [1.0, f32::NAN];
        let copy = nan_row;
        assert!(exp_shifted(&copy, 0.0, &mut nan_row).is_nan());
    }
}
