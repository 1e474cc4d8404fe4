//! Matrix products on plain f32 slices through `gemm` (the crate candle's CPU products use),
//! with any row and column strides, so that heads are read in place from a packed q|k|v row
//! and transposes cost nothing. Every view is checked against its slice before the product
//! runs; the product itself is the one `unsafe` call.

use crate::model::native::NativeError;

/// A read-only matrix inside a slice: element (r, c) is `data[off + r·rs + c·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    data: &'a [f32],
    off: usize,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

/// A writable matrix inside a slice (same addressing as [`View`]).
#[derive(Debug)]
pub struct ViewMut<'a> {
    data: &'a mut [f32],
    off: usize,
    rows: usize,
    cols: usize,
    rs: usize,
}

/// Whether (rows, cols) at `off` with strides (rs, cs) stays inside `len` elements.
fn fits(len: usize, off: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    if rows == 0 || cols == 0 {
        return off <= len;
    }
    let last = (rows - 1)
        .checked_mul(rs)
        .and_then(|a| (cols - 1).checked_mul(cs).and_then(|b| a.checked_add(b)))
        .and_then(|a| a.checked_add(off));
    matches!(last, Some(l) if l < len)
}

impl<'a> View<'a> {
    /// `rows`×`cols` row-major at `off`, rows `ld` apart.
    pub fn rows(data: &'a [f32], off: usize, rows: usize, cols: usize, ld: usize) -> Self {
        Self {
            data,
            off,
            rows,
            cols,
            rs: ld,
            cs: 1,
        }
    }

    /// A whole slice as `rows`×`cols` row-major.
    pub fn full(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, 0, rows, cols, cols)
    }

    /// Its number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Its number of rows.
    pub fn rows_count(&self) -> usize {
        self.rows
    }

    /// Row `r` as a slice, when its elements are contiguous and inside the data.
    pub fn row(&self, r: usize) -> Option<&'a [f32]> {
        if self.cs != 1 || r >= self.rows {
            return None;
        }
        let start = self.off + r * self.rs;
        self.data.get(start..start + self.cols)
    }

    /// Element (r, c); 0 outside the slice.
    pub fn at(&self, r: usize, c: usize) -> f32 {
        let i = self.off + r * self.rs + c * self.cs;
        self.data.get(i).copied().unwrap_or(0.0)
    }

    /// Rows `r0..r0 + rows` and columns `c0..c0 + cols` of it (no copy; a product checks that
    /// the block lies inside the slice).
    pub fn block(self, r0: usize, rows: usize, c0: usize, cols: usize) -> Self {
        Self {
            off: self.off + r0 * self.rs + c0 * self.cs,
            rows,
            cols,
            ..self
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
            ..self
        }
    }
}

impl<'a> ViewMut<'a> {
    /// `rows`×`cols` row-major at `off`, rows `ld` apart.
    pub fn rows(data: &'a mut [f32], off: usize, rows: usize, cols: usize, ld: usize) -> Self {
        Self {
            data,
            off,
            rows,
            cols,
            rs: ld,
        }
    }

    /// A whole slice as `rows`×`cols` row-major.
    pub fn full(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        Self::rows(data, 0, rows, cols, cols)
    }
}

/// dst = a·b, or dst += a·b with `accumulate` (dst is then read, never zero-filled first).
pub fn matmul(
    dst: ViewMut<'_>,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
) -> Result<(), NativeError> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || dst.rows != m || dst.cols != n {
        return Err(NativeError::Shape(format!(
            "product of {}×{} and {}×{} into {}×{}",
            a.rows, a.cols, b.rows, b.cols, dst.rows, dst.cols
        )));
    }
    let ok = fits(a.data.len(), a.off, m, k, a.rs, a.cs)
        && fits(b.data.len(), b.off, k, n, b.rs, b.cs)
        && fits(dst.data.len(), dst.off, m, n, dst.rs, 1);
    if !ok {
        return Err(NativeError::Shape(format!(
            "a {m}×{k}·{k}×{n} product reaches outside its buffers"
        )));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    let (ap, bp) = (a.data.as_ptr(), b.data.as_ptr());
    let dp = dst.data.as_mut_ptr();
    // SAFETY: every element gemm reads or writes lies inside its slice (checked by `fits`
    // above, offsets included); `dst` is a unique borrow, so it overlaps neither operand; the
    // strides fit in isize because they index slices that exist.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dp.add(dst.off),
            1,
            dst.rs as isize,
            accumulate,
            ap.add(a.off),
            a.cs as isize,
            a.rs as isize,
            bp.add(b.off),
            b.cs as isize,
            b.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    Ok(())
}

/// Products of at least this many multiply-adds are cut over the pool's threads.
pub const SPLIT_WORK: usize = 1 << 23;

/// dst [out, T] += w [out, k] · a [k, T] with the weight as stored ([out, in], row-major):
/// gemm reads it as its right operand, which it does not pack, so a product over a few
/// dozen positions does not copy the weight first. On a pool of several threads a large
/// product is cut by rows of the weight, one part per thread (each reads its own rows).
pub fn weight_product(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
) -> Result<(), NativeError> {
    weight_product_with(dst, w, k, a, true, SPLIT_WORK)
}

/// [`weight_product`] cut over the pool's threads from `min_work` multiply-adds (a pass whose
/// partners are kept awake, [`crate::model::native::awake`], hands a part over in
/// microseconds, so a smaller product pays for the cut).
pub fn weight_product_from(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
    min_work: usize,
) -> Result<(), NativeError> {
    weight_product_with(dst, w, k, a, true, min_work)
}

/// dst [out, T] = w [out, k] · a [k, T]: [`weight_product`] written, not added (dst need not
/// be zero-filled first).
pub fn weight_product_into(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
) -> Result<(), NativeError> {
    weight_product_with(dst, w, k, a, false, SPLIT_WORK)
}

/// [`weight_product`] (`accumulate`) or [`weight_product_into`].
fn weight_product_with(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
    accumulate: bool,
    min_work: usize,
) -> Result<(), NativeError> {
    use rayon::prelude::*;
    let t = a.cols;
    let out = w.len() / k.max(1);
    let threads = rayon::current_num_threads();
    let parts = if out * k * t >= min_work {
        threads.min(out / 16).max(1)
    } else {
        1
    };
    if parts == 1 || dst.len() != out * t || k == 0 {
        return matmul(
            ViewMut::full(dst, out, t),
            View::full(w, out, k),
            a,
            accumulate,
        );
    }
    let rows = out.div_ceil(parts);
    dst.par_chunks_mut(rows * t)
        .zip(w.par_chunks(rows * k))
        .try_for_each(|(dc, wc)| {
            let r = wc.len() / k;
            matmul(ViewMut::full(dc, r, t), View::full(wc, r, k), a, accumulate)
        })
}

crate::model::fused::simd::simd_dispatch! {
    /// out[c] = Σ_r x[r·cols + c] (a bias gradient), written, not added.
    pub fn column_sums => column_sums_any(x: &[f32], cols: usize, out: &mut [f32])
}

crate::model::fused::simd::simd_dispatch! {
    /// x ← x·y, element by element.
    pub fn mul_rows => mul_rows_any(x: &mut [f32], y: &[f32])
}

crate::model::fused::simd::simd_dispatch! {
    /// x ← x + h + bias (per row): a residual connection after the product that wrote x.
    pub fn add_residual => add_residual_any(x: &mut [f32], h: &[f32], bias: &[f32])
}

#[inline(always)]
fn add_residual_any(x: &mut [f32], h: &[f32], bias: &[f32]) {
    let d = bias.len().max(1);
    for (row, hrow) in x.chunks_mut(d).zip(h.chunks(d)) {
        for ((o, a), b) in row.iter_mut().zip(hrow).zip(bias) {
            *o += a + b;
        }
    }
}

#[inline(always)]
fn mul_rows_any(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a *= b;
    }
}

#[inline(always)]
fn column_sums_any(x: &[f32], cols: usize, out: &mut [f32]) {
    out.fill(0.0);
    for row in x.chunks(cols.max(1)) {
        for (o, v) in out.iter_mut().zip(row) {
            *o += v;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A plain triple loop, the reference.
    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn strided_and_transposed_products_match_a_plain_loop() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let mut got = vec![0f32; m * n];
        matmul(
            ViewMut::full(&mut got, m, n),
            View::full(&a, m, k),
            View::full(&b, k, n),
            false,
        )
        .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        // bᵀ stored [n, k] and read transposed; the result accumulated onto itself doubles it.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        matmul(
            ViewMut::full(&mut got, m, n),
            View::full(&a, m, k),
            View::full(&bt, n, k).t(),
            true,
        )
        .unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - 2.0 * w).abs() < 1e-5, "{g} vs 2·{w}");
        }
        // A column block of a wider matrix: a's columns 2..5 of rows with stride k.
        let mut sub = vec![0f32; m * n];
        let bsub: Vec<f32> = b[2 * n..5 * n].to_vec();
        matmul(
            ViewMut::full(&mut sub, m, n),
            View::rows(&a, 2, m, 3, k),
            View::full(&bsub, 3, n),
            false,
        )
        .unwrap();
        let want_sub: Vec<f32> = (0..m * n)
            .map(|e| {
                (0..3)
                    .map(|p| a[(e / n) * k + 2 + p] * bsub[p * n + e % n])
                    .sum()
            })
            .collect();
        for (g, w) in sub.iter().zip(&want_sub) {
            assert!((g - w).abs() < 1e-5);
        }
    }

    #[test]
    fn views_outside_their_buffers_are_refused() {
        let a = vec![0f32; 10];
        let mut out = vec![0f32; 4];
        let err = matmul(
            ViewMut::full(&mut out, 2, 2),
            View::full(&a, 2, 6),
            View::full(&a, 6, 2),
            false,
        );
        assert!(err.is_err(), "a 2×6 view of 10 floats must be refused");
        let err = matmul(
            ViewMut::full(&mut out, 2, 2),
            View::full(&a, 2, 3),
            View::full(&a, 2, 2),
            false,
        );
        assert!(err.is_err(), "mismatched inner sizes must be refused");
    }
}
