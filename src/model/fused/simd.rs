//! Row kernels compiled three times, for AVX-512, for AVX2 with FMA and for any x86-64 (or
//! other) CPU, and chosen at run time: the release binary targets baseline x86-64 (SSE2), so
//! without this a LayerNorm or GELU pass runs four floats at a time on a CPU that takes sixteen.
//! [`simd_dispatch!`] wraps an `#[inline(always)]` body; reductions in the bodies use
//! [`sum_lanes`] and [`dot_lanes`] (16 partial sums) so that they vectorise too.

/// True when the CPU has the AVX-512 subsets the kernels are compiled for (cached by std).
#[inline]
pub fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512dq")
            && has_avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU has AVX2 and FMA.
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `$vis fn $name(args) -> ret` running `$body(args)` built for the best instruction set the
/// CPU has.
macro_rules! simd_dispatch {
    ($(#[$doc:meta])* $vis:vis fn $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                if $crate::model::fused::simd::has_avx512() {
                    // SAFETY: the CPU has every feature `v4` is compiled for (checked above).
                    return unsafe { v4($($arg),*) };
                }
                if $crate::model::fused::simd::has_avx2() {
                    // SAFETY: the CPU has AVX2 and FMA (checked above).
                    return unsafe { v3($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// Σ x in 16 partial sums (vectorises; the order differs from a plain loop's by rounding).
#[inline(always)]
pub fn sum_lanes(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v;
        }
    }
    let tail: f32 = chunks.remainder().iter().sum();
    tree_sum(lanes) + tail
}

/// The 16 partial sums added pairwise, halves first (a few vector adds instead of sixteen
/// dependent scalar ones: a 64-key softmax row spent as long here as on its exps).
#[inline(always)]
pub fn tree_sum(mut lanes: [f32; 16]) -> f32 {
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            lanes[i] += lanes[i + w];
        }
    }
    lanes[0]
}

/// The largest of 16 partial maxima, pairwise like [`tree_sum`].
#[inline(always)]
pub fn tree_max(mut lanes: [f32; 16]) -> f32 {
    for w in [8, 4, 2, 1] {
        for i in 0..w {
            lanes[i] = lanes[i].max(lanes[i + w]);
        }
    }
    lanes[0]
}

/// The largest value (−∞ for none; NaNs are passed over, as by `f32::max`), in 16 lanes: the
/// same value as a plain fold, since max is exact in any order.
#[inline(always)]
pub fn max_lanes(x: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l = l.max(*v);
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    tree_max(lanes).max(tail)
}

/// Σ a·b in 16 partial sums.
#[inline(always)]
pub fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (a.get(..n).unwrap_or(&[]), b.get(..n).unwrap_or(&[]));
    let mut lanes = [0f32; 16];
    let (mut ca, mut cb) = (a.chunks_exact(16), b.chunks_exact(16));
    for (x, y) in (&mut ca).zip(&mut cb) {
        for ((l, p), q) in lanes.iter_mut().zip(x).zip(y) {
            *l += p * q;
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(p, q)| p * q)
        .sum();
    tree_sum(lanes) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_match_plain_sums() {
        let x: Vec<f32> = (0..53).map(|i| (i as f32 * 0.7).sin()).collect();
        let y: Vec<f32> = (0..53).map(|i| (i as f32 * 0.3).cos()).collect();
        let plain: f64 = x.iter().map(|&v| f64::from(v)).sum();
        let dot: f64 = x
            .iter()
            .zip(&y)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        assert!((f64::from(sum_lanes(&x)) - plain).abs() < 1e-5);
        assert!((f64::from(dot_lanes(&x, &y)) - dot).abs() < 1e-5);
        assert_eq!(sum_lanes(&[]), 0.0);
    }
}
