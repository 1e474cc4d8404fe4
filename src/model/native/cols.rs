//! Kernels over feature-major activations: a sequence of T positions stored as [features, T],
//! one row per feature (the view forward's layout, [`crate::model::native::infer`]). In this
//! layout a product with a weight stored [out, in] reads the weight as gemm's right operand,
//! which gemm does not pack: a 64-token capture no longer copies every weight matrix per call.
//! A token's LayerNorm runs down a column, so its moments are summed row by row, T lanes at once.

crate::model::fused::simd::simd_dispatch! {
    /// LayerNorm of every column of `x` [n, t] (one token per column) with gain `w` and bias
    /// `b` [n], into `out`; `scratch` holds at least 18·t floats. The same numbers as
    /// [`crate::model::fused::layer_norm::layer_norm_rows`] on the transpose, bit for bit: the
    /// moments are summed in the same 16 lanes (feature r into lane r mod 16, the lanes added
    /// pairwise, the features after the last whole 16 one by one).
    pub(crate) fn layer_norm_cols => layer_norm_cols_any(
        x: &[f32],
        w: &[f32],
        b: &[f32],
        eps: f32,
        t: usize,
        out: &mut [f32],
        scratch: &mut [f32],
    )
}

/// Per column, Σ over rows of `f(value, column)` in the lane order of
/// [`crate::model::fused::simd::sum_lanes`]: lane sums into `lanes` [16, t], then the tail rows
/// into `sum` [t], which ends as the total.
#[inline(always)]
fn column_lane_sums(
    x: &[f32],
    t: usize,
    lanes: &mut [f32],
    sum: &mut [f32],
    f: impl Fn(f32, usize) -> f32,
) {
    let full = x.len() / t / 16 * 16;
    lanes.fill(0.0);
    sum.fill(0.0);
    for (r, row) in x.chunks(t).enumerate() {
        let acc = if r < full {
            lanes
                .get_mut((r % 16) * t..(r % 16 + 1) * t)
                .unwrap_or_default()
        } else {
            &mut *sum
        };
        for (i, (a, v)) in acc.iter_mut().zip(row).enumerate() {
            *a += f(*v, i);
        }
    }
    for w in [8, 4, 2, 1] {
        for l in 0..w {
            let (lo, hi) = lanes.split_at_mut((l + w) * t);
            let (Some(dst), Some(src)) = (lo.get_mut(l * t..(l + 1) * t), hi.get(..t)) else {
                continue;
            };
            dst.iter_mut().zip(src).for_each(|(a, b)| *a += b);
        }
    }
    for (s, l) in sum.iter_mut().zip(lanes.iter()) {
        *s += l; // lanes + tail (IEEE addition commutes exactly)
    }
}

#[inline(always)]
fn layer_norm_cols_any(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    eps: f32,
    t: usize,
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let t = t.max(1);
    let n = w.len().max(1) as f32;
    let (lanes, rest) = scratch.split_at_mut((16 * t).min(scratch.len()));
    let (mean, rest) = rest.split_at_mut(t.min(rest.len()));
    let rstd = rest.get_mut(..t).unwrap_or_default();
    column_lane_sums(x, t, lanes, mean, |v, _| v);
    mean.iter_mut().for_each(|m| *m /= n);
    let m: &[f32] = mean;
    column_lane_sums(x, t, lanes, rstd, |v, i| {
        let d = v - m.get(i).copied().unwrap_or(0.0);
        d * d
    });
    rstd.iter_mut()
        .for_each(|s| *s = 1.0 / (*s / n + eps).sqrt());
    for (((row, o), wi), bi) in x.chunks(t).zip(out.chunks_mut(t)).zip(w).zip(b) {
        for (((y, v), m), r) in o.iter_mut().zip(row).zip(m.iter()).zip(rstd.iter()) {
            *y = (v - m) * r * wi + bi;
        }
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// Row r of `x` [bias.len(), t] set to bias[r] (`add`: bias[r] added instead).
    pub(crate) fn bias_rows => bias_rows_any(x: &mut [f32], bias: &[f32], t: usize, add: bool)
}

#[inline(always)]
fn bias_rows_any(x: &mut [f32], bias: &[f32], t: usize, add: bool) {
    for (row, &b) in x.chunks_mut(t.max(1)).zip(bias) {
        if add {
            row.iter_mut().for_each(|v| *v += b);
        } else {
            row.fill(b);
        }
    }
}

/// Below this many elements an element-wise pass runs on the calling thread: handing parts to
/// the pool would cost more than it saves (SmolLM2's 64-token views, whose MLP has 98,304
/// hidden units, ran 6% slower through the worker with a limit of 65,536).
const PAR_ELEMENTS: usize = 1 << 18;

/// Whether a pass over `len` elements is worth parts on the pool.
pub(crate) fn on_pool(len: usize) -> bool {
    len >= PAR_ELEMENTS && rayon::current_num_threads() > 1
}

/// RMSNorm of every column of `x` [n, t] with gain `w` [n] into `out`, as candle's `rms_norm`
/// computes a row (Σx² summed in order, x / √(Σx²/n + ε) · w); `sum` [t] is scratch. The
/// scaling, most of the work, runs on the pool's threads, rows apart, for a long sequence.
pub(crate) fn rms_norm_cols(
    x: &[f32],
    w: &[f32],
    eps: f32,
    t: usize,
    out: &mut [f32],
    sum: &mut [f32],
) {
    use rayon::prelude::*;
    let t = t.max(1);
    column_rms(x, w.len().max(1) as f32, eps, t, sum);
    let sum: &[f32] = sum;
    if !on_pool(x.len()) {
        return scale_rows(x, w, sum, out);
    }
    let rows = (PAR_ELEMENTS / 4 / t).max(1);
    x.par_chunks(rows * t)
        .zip(out.par_chunks_mut(rows * t))
        .zip(w.par_chunks(rows))
        .for_each(|((xc, oc), wc)| scale_rows(xc, wc, sum, oc));
}

crate::model::fused::simd::simd_dispatch! {
    /// sum[c] ← √(Σ_r x[r, c]² / n + ε), the rows added in order.
    fn column_rms => column_rms_any(x: &[f32], n: f32, eps: f32, t: usize, sum: &mut [f32])
}

#[inline(always)]
fn column_rms_any(x: &[f32], n: f32, eps: f32, t: usize, sum: &mut [f32]) {
    sum.fill(0.0);
    for row in x.chunks(t.max(1)) {
        for (s, v) in sum.iter_mut().zip(row) {
            *s += v * v;
        }
    }
    sum.iter_mut().for_each(|s| *s = (*s / n + eps).sqrt());
}

crate::model::fused::simd::simd_dispatch! {
    /// out[r, c] ← x[r, c] / rms[c] · w[r] over the rows of `w`.
    fn scale_rows => scale_rows_any(x: &[f32], w: &[f32], rms: &[f32], out: &mut [f32])
}

#[inline(always)]
fn scale_rows_any(x: &[f32], w: &[f32], rms: &[f32], out: &mut [f32]) {
    let t = rms.len().max(1);
    for ((row, o), wi) in x.chunks(t).zip(out.chunks_mut(t)).zip(w) {
        for ((y, v), m) in o.iter_mut().zip(row).zip(rms) {
            *y = v / m * wi;
        }
    }
}

/// g ← SiLU(g)·u, element by element (a gated MLP's hidden units); a long pass in parts on
/// the pool's threads.
pub(crate) fn silu_mul(g: &mut [f32], u: &[f32]) {
    use rayon::prelude::*;
    if !on_pool(g.len()) {
        return silu_mul_part(g, u);
    }
    g.par_chunks_mut(PAR_ELEMENTS / 4)
        .zip(u.par_chunks(PAR_ELEMENTS / 4))
        .for_each(|(gc, uc)| silu_mul_part(gc, uc));
}

crate::model::fused::simd::simd_dispatch! {
    /// [`silu_mul`] on one part.
    fn silu_mul_part => silu_mul_any(g: &mut [f32], u: &[f32])
}

#[inline(always)]
fn silu_mul_any(g: &mut [f32], u: &[f32]) {
    for (a, b) in g.iter_mut().zip(u) {
        *a = *a / (1.0 + crate::model::fused::exp::exp_f32(-*a)) * b;
    }
}

/// out [cols, rows] = the transpose of x [rows, cols].
pub(crate) fn transpose(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    const TILE: usize = 16;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    if let (Some(o), Some(v)) = (out.get_mut(c * rows + r), x.get(r * cols + c)) {
                        *o = *v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::fused::layer_norm::layer_norm_rows;

    #[test]
    fn column_layer_norm_is_the_row_layer_norm_transposed() {
        let (t, n) = (19, 40); // 40 features: two whole lanes of 16 and a tail of 8
        let x: Vec<f32> = (0..t * n)
            .map(|i| ((i * 37 % 101) as f32).sin() * 3.0)
            .collect();
        let w: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 0.01).collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 * -0.02).collect();
        let mut want = vec![0f32; t * n];
        layer_norm_rows(&x, &w, &b, 1e-5, n, &mut want);
        let mut xt = vec![0f32; t * n];
        transpose(&x, t, n, &mut xt);
        let (mut got, mut scratch) = (vec![0f32; t * n], vec![0f32; 18 * t]);
        layer_norm_cols(&xt, &w, &b, 1e-5, t, &mut got, &mut scratch);
        let mut back = vec![0f32; t * n];
        transpose(&got, n, t, &mut back);
        assert_eq!(back, want, "bit for bit");
    }

    #[test]
    fn bias_rows_sets_or_adds_one_value_per_row() {
        let mut x = vec![1f32; 6];
        bias_rows(&mut x, &[2.0, 3.0], 3, true);
        assert_eq!(x, [3.0, 3.0, 3.0, 4.0, 4.0, 4.0]);
        bias_rows(&mut x, &[5.0, 6.0], 3, false);
        assert_eq!(x, [5.0, 5.0, 5.0, 6.0, 6.0, 6.0]);
    }
}
