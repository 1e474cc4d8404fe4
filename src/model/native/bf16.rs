//! Weight products in bfloat16 for a quick first look: dst [out, T] (+)= W [out, k] · A [k, T]
//! with W and A rounded to bf16 (8 significant bits, round to nearest even) and every sum kept
//! in f32, on the AVX-512 BF16 dot-product instruction (`vdpbf16ps`), which does two
//! multiply-adds per f32 lane where an f32 FMA does one.
//!
//! Why: on a CPU whose f32 products already run at the core's peak (AMD Zen 4: 103 GFLOP/s
//! through gemm on one thread, double-pumped 512-bit FMAs), the f32 weight products of
//! SmolLM2's view pass alone take 136 ms at 64 tokens, above issue 14's 90 ms. The same
//! products in bf16 take 71 ms. They are not the f32 numbers: the studio shows them as a
//! preview and replaces them with the exact capture as soon as it is done.
//!
//! Layout: W's rows as pairs of bf16 along k (one u32 per pair: the even k in the low half,
//! as `vdpbf16ps` reads it), k padded to even; A packed per pair of rows into u32 lanes
//! [k/2][T rounded up to 16]. A product broadcasts one pair of W per row and multiplies it
//! into 16 columns of A at once; tiles are 6 rows × 64 columns (24 accumulators).
//! [`reference`] computes the same sums in plain f32 arithmetic on every CPU.

use rayon::prelude::*;

use crate::model::native::gemm::View;
use crate::model::native::NativeError;

/// `x` rounded to the nearest bf16 (ties to even); a NaN stays a NaN.
pub fn to_bf16(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// The f32 value of a bf16.
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// Whether this CPU runs the bf16 products natively (otherwise [`Bf16Matrix::product`] would
/// only be the slow [`reference`]: callers then keep f32).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight matrix [rows, k] in bf16 pairs along k.
#[derive(Clone, Debug, Default)]
pub struct Bf16Matrix {
    rows: usize,
    k: usize,
    pairs: Vec<u32>,
}

/// Two bf16 as one lane: `lo` in the low half.
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(to_bf16(lo)) | (u32::from(to_bf16(hi)) << 16)
}

impl Bf16Matrix {
    /// `w` [len / k, k] row-major, rounded to bf16.
    pub fn new(w: &[f32], k: usize) -> Self {
        let k = k.max(1);
        let rows = w.len() / k;
        let kp = k.div_ceil(2);
        let mut pairs = Vec::with_capacity(rows * kp);
        for row in w.chunks_exact(k) {
            pairs.extend(
                row.chunks(2)
                    .map(|p| pair(p[0], p.get(1).copied().unwrap_or(0.0))),
            );
        }
        Self { rows, k, pairs }
    }

    /// dst [rows, T] (+)= self · a, with `a` [k, T] packed first ([`Packed::new`]). The rows
    /// are cut over the pool's threads when the product is large. Errors when the shapes do
    /// not fit.
    pub fn product(
        &self,
        dst: &mut [f32],
        a: &Packed,
        accumulate: bool,
    ) -> Result<(), NativeError> {
        if a.k != self.k || dst.len() != self.rows * a.t {
            return Err(NativeError::Shape(format!(
                "bf16 product of {}×{} and {}×{} into {} values",
                self.rows,
                self.k,
                a.k,
                a.t,
                dst.len()
            )));
        }
        if a.t == 0 || self.rows == 0 {
            return Ok(());
        }
        if !available() {
            reference(dst, self, a, accumulate);
            return Ok(());
        }
        let kp = self.k.div_ceil(2);
        let threads = rayon::current_num_threads();
        let work = self.rows * self.k * a.t;
        let parts = if work >= 1 << 22 { threads } else { 1 };
        let run = |d: &mut [f32], w: &[u32]| {
            // SAFETY: the CPU has AVX-512 F and BF16 (`available`); `d` holds
            // (w.len() / kp) rows of a.t values, as `rows_product` requires.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                kernel::rows_product(d, w, kp, a, accumulate)
            }
        };
        if parts == 1 {
            run(dst, &self.pairs);
            return Ok(());
        }
        // Whole tiles of 6 rows to each part.
        let rows = self.rows.div_ceil(parts).div_ceil(6) * 6;
        dst.par_chunks_mut(rows * a.t)
            .zip(self.pairs.par_chunks(rows * kp))
            .for_each(|(d, w)| run(d, w));
        Ok(())
    }
}

/// A [k, T] packed as bf16 pairs of rows, [k/2][tp] lanes, tp = T rounded up to 16 (zeros
/// past T and past k).
#[derive(Debug, Default)]
pub struct Packed {
    k: usize,
    t: usize,
    tp: usize,
    lanes: Vec<u32>,
}

impl Packed {
    /// `a` packed (its buffer reused when `self` is passed again).
    pub fn pack(&mut self, a: View<'_>) {
        let (k, t) = (a.rows_count(), a.cols());
        let tp = t.div_ceil(16) * 16;
        self.lanes.clear();
        self.lanes.resize(k.div_ceil(2) * tp, 0);
        for (i, lanes) in self.lanes.chunks_exact_mut(tp.max(1)).enumerate() {
            let lanes = &mut lanes[..t];
            // Rows stored contiguously (every input of the view pass): a vector loop.
            let rows = (a.row(2 * i), a.row(2 * i + 1));
            match rows {
                (Some(lo), Some(hi)) => pack_pairs(lo, hi, lanes),
                (Some(lo), None) if 2 * i + 1 >= k => pack_pairs(lo, &vec![0f32; t], lanes),
                _ => {
                    for (c, lane) in lanes.iter_mut().enumerate() {
                        let hi = if 2 * i + 1 < k {
                            a.at(2 * i + 1, c)
                        } else {
                            0.0
                        };
                        *lane = pair(a.at(2 * i, c), hi);
                    }
                }
            }
        }
        (self.k, self.t, self.tp) = (k, t, tp);
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// out[c] = the bf16 pair (lo[c], hi[c]), as [`pair`] makes it.
    fn pack_pairs => pack_pairs_any(lo: &[f32], hi: &[f32], out: &mut [u32])
}

#[inline(always)]
fn pack_pairs_any(lo: &[f32], hi: &[f32], out: &mut [u32]) {
    // `to_bf16` without branches, so that the loop vectorises.
    let bf = |x: f32| {
        let b = x.to_bits();
        let nan = (b & 0x7FFF_FFFF) > 0x7F80_0000;
        let r = b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16;
        if nan {
            (b >> 16) | 0x40
        } else {
            r
        }
    };
    for ((o, &l), &h) in out.iter_mut().zip(lo).zip(hi) {
        *o = bf(l) | (bf(h) << 16);
    }
}

/// The same sums as the native kernel in plain f32 arithmetic: each pair of products added
/// to the running sum as `vdpbf16ps` does (products of bf16 are exact in f32).
pub fn reference(dst: &mut [f32], w: &Bf16Matrix, a: &Packed, accumulate: bool) {
    let kp = w.k.div_ceil(2);
    let halves = |p: u32| (from_bf16(p as u16), from_bf16((p >> 16) as u16));
    for (r, out) in dst.chunks_exact_mut(a.t.max(1)).enumerate() {
        let wr = &w.pairs[r * kp..(r + 1) * kp];
        for (c, o) in out.iter_mut().enumerate() {
            let mut s = 0f32;
            for (i, &wp) in wr.iter().enumerate() {
                let ((w0, w1), (a0, a1)) = (halves(wp), halves(a.lanes[i * a.tp + c]));
                s += w0 * a0 + w1 * a1;
            }
            *o = if accumulate { *o + s } else { s };
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod kernel;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32)
            .map(|x| x / (1u32 << 24) as f32 - 0.5)
            .collect()
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3F80);
        // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even one (1).
        assert_eq!(from_bf16(to_bf16(1.0 + 1.0 / 256.0)), 1.0);
        assert_eq!(from_bf16(to_bf16(1.0 + 3.0 / 256.0)), 1.0 + 4.0 / 256.0);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
    }

    /// The reference against f64 sums of the rounded values, and the native kernel (where the
    /// CPU has it) against the reference, over ragged shapes: rows not a multiple of 6,
    /// columns not a multiple of 16, odd k, accumulate on and off.
    #[test]
    fn products_match_the_reference() {
        for &(rows, k, t) in &[
            (13, 7, 5),
            (6, 64, 64),
            (20, 33, 70),
            (1, 1, 1),
            (64, 576, 17),
        ] {
            let w = data(rows * k, 1);
            let a = data(k * t, 2);
            let m = Bf16Matrix::new(&w, k);
            let mut p = Packed::default();
            p.pack(View::full(&a, k, t));
            let mut want = data(rows * t, 3);
            reference(&mut want, &m, &p, true);
            let start = data(rows * t, 3);
            for r in 0..rows {
                for c in 0..t {
                    let s: f64 = (0..k)
                        .map(|i| {
                            let wr = from_bf16(to_bf16(w[r * k + i])) as f64;
                            wr * from_bf16(to_bf16(a[i * t + c])) as f64
                        })
                        .sum();
                    let got = (want[r * t + c] - start[r * t + c]) as f64;
                    assert!((got - s).abs() < 1e-4 * (1.0 + s.abs()), "{rows}×{k}×{t}");
                }
            }
            for accumulate in [false, true] {
                let mut got = data(rows * t, 3);
                let mut exp = got.clone();
                m.product(&mut got, &p, accumulate).unwrap();
                reference(&mut exp, &m, &p, accumulate);
                for (g, e) in got.iter().zip(&exp) {
                    assert!(
                        (g - e).abs() < 1e-5 * (1.0 + e.abs()),
                        "{rows}×{k}×{t}: {g} {e}"
                    );
                }
            }
        }
    }

    /// A strided view (a transpose) packs to the same lanes as the contiguous one.
    #[test]
    fn strided_and_contiguous_views_pack_alike() {
        let (k, t) = (7, 19);
        let a = data(k * t, 4);
        let mut at = vec![0f32; k * t];
        for r in 0..k {
            for c in 0..t {
                at[c * k + r] = a[r * t + c];
            }
        }
        let (mut p, mut q) = (Packed::default(), Packed::default());
        p.pack(View::full(&a, k, t));
        q.pack(View::full(&at, t, k).t());
        assert_eq!(p.lanes, q.lanes);
        assert_eq!(p.lanes.len(), 4 * 32);
    }

    #[test]
    fn shapes_that_do_not_fit_are_errors() {
        let m = Bf16Matrix::new(&[1.0; 12], 4);
        let mut p = Packed::default();
        p.pack(View::full(&[1.0; 10], 5, 2));
        assert!(m.product(&mut [0.0; 6], &p, false).is_err());
    }
}
