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
    product_parts(
        dst,
        w,
        k,
        a,
        (accumulate, min_work),
        (&|_, _| {}, &|_, _| {}),
    )
}

/// Work on some rows of a product's output: the index of their first row, and the rows.
pub type PartHook<'h> = dyn Fn(usize, &mut [f32]) + Sync + 'h;

/// [`weight_product`] cut over the pool's threads from `min_work` multiply-adds (a pass whose
/// partners are kept awake, [`crate::model::native::awake`], hands a part over in
/// microseconds, so a smaller product pays for the cut), with `before` run on each part's rows
/// of `dst` before the product is added to them and `after` once it is in, by the thread that
/// computes the part: a bias and an activation without passes of their own over the whole
/// output (on one thread, between the products of a pass cut over two).
pub fn weight_product_hooked(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
    min_work: usize,
    (before, after): (&PartHook<'_>, &PartHook<'_>),
) -> Result<(), NativeError> {
    product_parts(dst, w, k, a, (true, min_work), (before, after))
}

/// The products above: cut by rows of the weight into one part per thread when the product
/// has at least `min_work` multiply-adds, each part between its hooks.
fn product_parts(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
    (accumulate, min_work): (bool, usize),
    (before, after): (&PartHook<'_>, &PartHook<'_>),
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
    let rows = if parts == 1 || dst.len() != out * t || k == 0 {
        out.max(1)
    } else {
        out.div_ceil(parts)
    };
    if rows >= out {
        before(0, dst);
        matmul(
            ViewMut::full(dst, out, t),
            View::full(w, out, k),
            a,
            accumulate,
        )?;
        after(0, dst);
        return Ok(());
    }
    dst.par_chunks_mut(rows * t)
        .zip(w.par_chunks(rows * k))
        .enumerate()
        .try_for_each(|(i, (dc, wc))| {
            let r = wc.len() / k;
            before(i * rows, dc);
            matmul(ViewMut::full(dc, r, t), View::full(wc, r, k), a, accumulate)?;
            after(i * rows, dc);
            Ok(())
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
#[path = "gemm_tests.rs"]
mod tests;
