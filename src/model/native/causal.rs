//! One head's attention products by row blocks under a causal mask. The queries of one block
//! of rows see no key past it: their scores there are masked (−∞ in the bias), so their
//! weights are exactly 0 and so are their softmax gradients. Each t×t product of a head (the
//! forward's q·kᵀ and A·v, the backward's dy·vᵀ, Aᵀ·dy, dS·k and dSᵀ·q) then skips the blocks
//! above the diagonal (a quarter of the work by halves, 3/8 by quarters). The skipped terms
//! are exact zeros that the whole product would have added last, so the numbers are the whole
//! products' (checked in the tests below and by the native pass's tests against autograd).

use crate::model::native::gemm::{matmul, View, ViewMut};
use crate::model::native::NativeError;

/// The smallest row block. Measured A/B in one process on a training step (one thread, Zen 4):
/// the tiny preset at T = 64 gained nothing from halves (68.2 against 68.8 ms, within noise);
/// the small preset gained 0.7–1% at T = 128 by halves and 2.5% at T = 256 by quarters of 64
/// rows (quarters of 32 rows: 1.3%).
pub(crate) const MIN_BLOCK: usize = 64;

/// The row-block size b (a quarter of `t`, at least [`MIN_BLOCK`]) when `bias` [t, t] hides
/// from every query of rows `r·b..(r+1)·b` every key past them (−∞), as a causal mask does;
/// `None` for a sequence shorter than two blocks or a bias that shows any of those keys.
pub(crate) fn blocks(bias: &[f32], t: usize) -> Option<usize> {
    if t < 2 * MIN_BLOCK || bias.len() != t * t {
        return None;
    }
    let b = (t / 4).max(MIN_BLOCK);
    let hidden = bias.chunks(t).enumerate().all(|(i, row)| {
        let end = (i / b + 1) * b;
        row.iter().skip(end).all(|&x| x == f32::NEG_INFINITY)
    });
    hidden.then_some(b)
}

/// Where a product writes: rows `ld` apart from `off` in `data`.
pub(crate) struct Dst<'a> {
    pub data: &'a mut [f32],
    pub off: usize,
    pub ld: usize,
}

impl Dst<'_> {
    fn rows(&mut self, r0: usize, rows: usize, cols: usize) -> ViewMut<'_> {
        ViewMut::rows(self.data, self.off + r0 * self.ld, rows, cols, self.ld)
    }
}

/// The row blocks of `t` rows by `b`: (first row, rows).
fn row_blocks(t: usize, b: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..t).step_by(b.max(1)).map(move |r0| (r0, b.min(t - r0)))
}

/// dst [t, t] = a [t, k] · b [t, k]ᵀ (q·kᵀ, dy·vᵀ), added with `accumulate`. With row blocks
/// of `blocks`, each block's rows only against b's rows up to the block's end; their other
/// columns are set to 0, or left as they are with `accumulate` (the caller masks them).
pub(crate) fn square(
    dst: &mut Dst<'_>,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
    blocks: Option<usize>,
) -> Result<(), NativeError> {
    let (t, k) = (a.rows_count(), a.cols());
    let Some(bs) = blocks.filter(|&bs| bs > 0 && bs < t) else {
        return matmul(dst.rows(0, t, t), a, b.t(), accumulate);
    };
    for (r0, rows) in row_blocks(t, bs) {
        let end = r0 + rows;
        matmul(
            dst.rows(r0, rows, end),
            a.block(r0, rows, 0, k),
            b.block(0, end, 0, k).t(),
            accumulate,
        )?;
        if !accumulate && end < t {
            for r in r0..end {
                let start = dst.off + r * dst.ld;
                if let Some(row) = dst.data.get_mut(start + end..start + t) {
                    row.fill(0.0);
                }
            }
        }
    }
    Ok(())
}

/// dst [t, c] = w [t, t] · x [t, c] for a `w` that is 0 past each row block (A·v, dS·k): a
/// block's rows read w's columns and x's rows up to the block's end.
pub(crate) fn lower(
    dst: &mut Dst<'_>,
    w: View<'_>,
    x: View<'_>,
    blocks: Option<usize>,
) -> Result<(), NativeError> {
    let (t, c) = (w.rows_count(), x.cols());
    let Some(bs) = blocks.filter(|&bs| bs > 0 && bs < t) else {
        return matmul(dst.rows(0, t, c), w, x, false);
    };
    for (r0, rows) in row_blocks(t, bs) {
        let end = r0 + rows;
        matmul(
            dst.rows(r0, rows, c),
            w.block(r0, rows, 0, end),
            x.block(0, end, 0, c),
            false,
        )?;
    }
    Ok(())
}

/// dst [t, c] = w [t, t]ᵀ · x [t, c] for a `w` that is 0 past each row block (Aᵀ·dy, dSᵀ·q):
/// the result's rows of one block read w's and x's rows from that block on.
pub(crate) fn lower_t(
    dst: &mut Dst<'_>,
    w: View<'_>,
    x: View<'_>,
    blocks: Option<usize>,
) -> Result<(), NativeError> {
    let (t, c) = (w.rows_count(), x.cols());
    let Some(bs) = blocks.filter(|&bs| bs > 0 && bs < t) else {
        return matmul(dst.rows(0, t, c), w.t(), x, false);
    };
    for (r0, rows) in row_blocks(t, bs) {
        matmul(
            dst.rows(r0, rows, c),
            w.block(r0, t - r0, r0, rows).t(),
            x.block(r0, t - r0, 0, c),
            false,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A causal t×t weight matrix and two t×k operands of an LCG, the products whole and by
    /// row blocks (64, 64 and a last block of 32): the same numbers, bit for bit.
    #[test]
    fn blocks_give_the_whole_products() {
        let (t, k, ld) = (160usize, 20usize, 70usize);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let a: Vec<f32> = (0..t * ld).map(|_| next()).collect();
        let b: Vec<f32> = (0..t * ld).map(|_| next()).collect();
        let mut w: Vec<f32> = (0..t * t).map(|_| next()).collect();
        for (i, row) in w.chunks_mut(t).enumerate() {
            for (j, x) in row.iter_mut().enumerate() {
                if j > i {
                    *x = 0.0;
                }
            }
        }
        let bias: Vec<f32> = (0..t * t)
            .map(|c| {
                if c % t > c / t {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
            .collect();
        let bs = blocks(&bias, t);
        assert_eq!(bs, Some(64));
        let av = View::rows(&a, 3, t, k, ld);
        let bv = View::rows(&b, 5, t, k, ld);
        let wv = View::full(&w, t, t);
        type Product =
            fn(&mut Dst<'_>, View<'_>, View<'_>, Option<usize>) -> Result<(), NativeError>;
        let run = |f: Product, x: View<'_>, y: View<'_>, bs: Option<usize>, cols: usize| {
            let mut out = vec![f32::NAN; t * cols];
            let mut dst = Dst {
                data: &mut out,
                off: 0,
                ld: cols,
            };
            f(&mut dst, x, y, bs).unwrap_or_else(|e| panic!("{e}"));
            out
        };
        let sq = |d: &mut Dst<'_>, x: View<'_>, y: View<'_>, bs| square(d, x, y, false, bs);
        let whole = run(sq, av, bv, None, t);
        let by_blocks = run(sq, av, bv, bs, t);
        for (i, (x, y)) in whole.iter().zip(&by_blocks).enumerate() {
            let (r, c) = (i / t, i % t);
            if c >= (r / 64 + 1) * 64 {
                assert_eq!(*y, 0.0, "masked ({r}, {c}) not cleared");
            } else {
                assert_eq!(x.to_bits(), y.to_bits(), "q·kᵀ ({r}, {c})");
            }
        }
        for f in [lower as Product, lower_t as Product] {
            let whole = run(f, wv, av, None, k);
            let by_blocks = run(f, wv, av, bs, k);
            assert_eq!(whole, by_blocks);
        }
        let mut visible = bias.clone();
        if let Some(x) = visible.get_mut(t - 1) {
            *x = 0.0;
        }
        assert_eq!(
            blocks(&visible, t),
            None,
            "a visible key past the first block"
        );
        let short: Vec<f32> = bias.iter().take(64 * 64).copied().collect();
        assert_eq!(blocks(&short, 64), None, "one block: multiplied whole");
    }
}
