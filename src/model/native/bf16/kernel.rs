//! The x86-64 kernel of the bf16 weight products ([`super`]): `vdpbf16ps` on tiles of 6 rows
//! × 64 columns.

use std::arch::x86_64::*;

use super::Packed;

/// dst [rows, T] (+)= w [rows, kp pairs] · a, tile by tile.
///
/// # Safety
/// The CPU has AVX-512 F and BF16; `dst.len() == (w.len() / kp) * a.t`.
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn rows_product(
    dst: &mut [f32],
    w: &[u32],
    kp: usize,
    a: &Packed,
    accumulate: bool,
) {
    let rows = w.len() / kp;
    let mut r = 0;
    while r < rows {
        let n = (rows - r).min(6);
        let mut c = 0;
        while c < a.t {
            let v = (a.t - c).div_ceil(16).min(4);
            let wr = &w[r * kp..(r + n) * kp];
            let d = &mut dst[r * a.t..(r + n) * a.t];
            // SAFETY: the tile's rows and columns lie inside `wr`, `d` and `a.lanes`.
            unsafe {
                match (n, v) {
                    (6, 4) => tile::<6, 4>(d, wr, kp, a, c, accumulate),
                    (6, 3) => tile::<6, 3>(d, wr, kp, a, c, accumulate),
                    (6, 2) => tile::<6, 2>(d, wr, kp, a, c, accumulate),
                    (6, _) => tile::<6, 1>(d, wr, kp, a, c, accumulate),
                    (_, 4) => by_rows::<4>(d, wr, n, kp, a, c, accumulate),
                    (_, 3) => by_rows::<3>(d, wr, n, kp, a, c, accumulate),
                    (_, 2) => by_rows::<2>(d, wr, n, kp, a, c, accumulate),
                    _ => by_rows::<1>(d, wr, n, kp, a, c, accumulate),
                }
            }
            c += v * 16;
        }
        r += n;
    }
}

/// Fewer than 6 rows, one at a time.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn by_rows<const V: usize>(
    d: &mut [f32],
    w: &[u32],
    n: usize,
    kp: usize,
    a: &Packed,
    c: usize,
    accumulate: bool,
) {
    for i in 0..n {
        let (dr, wr) = (&mut d[i * a.t..(i + 1) * a.t], &w[i * kp..(i + 1) * kp]);
        // SAFETY: as the caller's.
        unsafe { tile::<1, V>(dr, wr, kp, a, c, accumulate) }
    }
}

/// R rows × V vectors of 16 columns from column `c`; columns past T are computed on the
/// packed zeros and not stored.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile<const R: usize, const V: usize>(
    d: &mut [f32],
    w: &[u32],
    kp: usize,
    a: &Packed,
    c: usize,
    accumulate: bool,
) {
    let mut acc = [[_mm512_setzero_ps(); V]; R];
    let (ap, wp) = (a.lanes.as_ptr(), w.as_ptr());
    for i in 0..kp {
        let mut av = [_mm512_setzero_si512(); V];
        for (v, x) in av.iter_mut().enumerate() {
            // SAFETY: lanes [i·tp + c + 16v, +16) lie inside the packed buffer (tp is
            // a multiple of 16 and c + 16v < T ≤ tp).
            *x = unsafe { _mm512_loadu_si512(ap.add(i * a.tp + c + 16 * v).cast()) };
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: row r's pair i lies inside `w` (R rows of kp pairs).
            let wb = _mm512_set1_epi32(unsafe { *wp.add(r * kp + i) } as i32);
            for (x, &y) in row.iter_mut().zip(&av) {
                *x = _mm512_dpbf16_ps(*x, m512bh(wb), m512bh(y));
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (v, &x) in row.iter().enumerate() {
            let col = c + 16 * v;
            let left = a.t - col;
            let mask: __mmask16 = if left >= 16 {
                0xFFFF
            } else {
                (1u16 << left) - 1
            };
            let o = &mut d[r * a.t + col..];
            // SAFETY: the masked lanes are columns col.. < T of row r inside `d`.
            unsafe {
                let p = o.as_mut_ptr();
                let sum = if accumulate {
                    _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), x)
                } else {
                    x
                };
                _mm512_mask_storeu_ps(p, mask, sum);
            }
        }
    }
}

/// A vector of 32 bf16 as the instruction's operand type.
#[inline(always)]
fn m512bh(x: __m512i) -> __m512bh {
    // SAFETY: both are 512 bits of plain data.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(x) }
}
