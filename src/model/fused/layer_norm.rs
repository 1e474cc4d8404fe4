//! LayerNorm over the last axis (biased variance, as PyTorch), with its backward pass for the
//! input, the gain and the bias.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, D};

use crate::model::fused::{fused_ok, last_dim, slice};

struct LayerNorm(f32);
struct LayerNormGrad(f32);

/// Mean and reciprocal standard deviation of a row (biased variance, as PyTorch).
impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "fused-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let (w, b) = (slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let n = last_dim(l1);
        let mut out = vec![0f32; x.len()];
        layer_norm_rows(x, w, b, self.0, n, &mut out);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    #[allow(clippy::type_complexity)]
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = w.dim(0)?;
        let rows = x.elem_count() / d.max(1);
        // One pass returns [rows + 2, d]: dx, then dw, then db.
        let packed =
            x.contiguous()?
                .apply_op3_no_bwd(w, &grad.contiguous()?, &LayerNormGrad(self.0))?;
        let dx = packed.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dw = packed.narrow(0, rows, 1)?.reshape(d)?;
        let db = packed.narrow(0, rows + 1, 1)?.reshape(d)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

impl CustomOp3 for LayerNormGrad {
    fn name(&self) -> &'static str {
        "fused-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let w = slice(s2, l2, self.name())?;
        let g = slice(s3, l3, self.name())?;
        let n = last_dim(l1);
        let rows = x.len() / n;
        let mut out = vec![0f32; (rows + 2) * n];
        let (dx_all, rest) = out.split_at_mut(rows * n);
        let (dw, db) = rest.split_at_mut(n);
        layer_norm_grad_rows(x, w, g, self.0, n, dx_all, dw, db);
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, n))))
    }
}

/// LayerNorm over the last axis with gain `w` and bias `b` (differentiable).
pub fn layer_norm(x: &Tensor, w: &Tensor, b: &Tensor, eps: f64) -> candle_core::Result<Tensor> {
    if fused_ok(x) {
        return x.contiguous()?.apply_op3(
            &w.contiguous()?,
            &b.contiguous()?,
            LayerNorm(eps as f32),
        );
    }
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xn.broadcast_mul(w)?.broadcast_add(b)
}

crate::model::fused::simd::simd_dispatch! {
    /// LayerNorm over rows of `n`: out = (x − mean)/√(var + eps)·w + b.
    pub(crate) fn layer_norm_rows => layer_norm_rows_any(x: &[f32], w: &[f32], b: &[f32], eps: f32, n: usize, out: &mut [f32])
}

crate::model::fused::simd::simd_dispatch! {
    /// LayerNorm's backward over rows of `n` from the input `x`, the gain `w` and the upstream
    /// gradient `g`: dx is *added* to `dx`, dw and db are added to `dw` and `db`.
    pub(crate) fn layer_norm_grad_rows => layer_norm_grad_rows_any(
        x: &[f32],
        w: &[f32],
        g: &[f32],
        eps: f32,
        n: usize,
        dx: &mut [f32],
        dw: &mut [f32],
        db: &mut [f32],
    )
}

/// The 16 values from `c` on, as an array: loops over its lanes compile to vector instructions
/// (a five-way `zip` over 16-value chunks was compiled to scalar loads, one value at a time).
#[inline(always)]
fn a16(s: &[f32], c: usize) -> Option<&[f32; 16]> {
    s.get(c..)?.first_chunk::<16>()
}

#[inline(always)]
fn a16_mut(s: &mut [f32], c: usize) -> Option<&mut [f32; 16]> {
    s.get_mut(c..)?.first_chunk_mut::<16>()
}

/// Mean and 1/√(var + eps) of a row, in 16 lanes (lane l sums values l, l + 16, …; then
/// [`tree_sum`](crate::model::fused::simd::tree_sum) and the tail in order).
#[inline(always)]
fn moments_lanes(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len().max(1) as f32;
    let full = row.len() / 16 * 16;
    let mut sum = [0f32; 16];
    for c in (0..full).step_by(16) {
        let Some(&r) = a16(row, c) else { break };
        sum = std::array::from_fn(|l| sum[l] + r[l]);
    }
    let tail: f32 = row[full..].iter().sum();
    let mean = (crate::model::fused::simd::tree_sum(sum) + tail) / n;
    let mut lanes = [0f32; 16];
    for c in (0..full).step_by(16) {
        let Some(&r) = a16(row, c) else { break };
        lanes = std::array::from_fn(|l| lanes[l] + (r[l] - mean) * (r[l] - mean));
    }
    let tail: f32 = row[full..].iter().map(|v| (v - mean) * (v - mean)).sum();
    let var = (crate::model::fused::simd::tree_sum(lanes) + tail) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

#[inline(always)]
fn layer_norm_rows_any(x: &[f32], w: &[f32], b: &[f32], eps: f32, n: usize, out: &mut [f32]) {
    for (row, o) in x.chunks(n).zip(out.chunks_mut(n)) {
        let (mean, rstd) = moments_lanes(row, eps);
        let m = row.len().min(o.len()).min(w.len()).min(b.len());
        let full = m / 16 * 16;
        for c in (0..full).step_by(16) {
            let (Some(r), Some(wc), Some(bc)) = (a16(row, c), a16(w, c), a16(b, c)) else {
                break;
            };
            let Some(oc) = a16_mut(o, c) else { break };
            for l in 0..16 {
                oc[l] = (r[l] - mean) * rstd * wc[l] + bc[l];
            }
        }
        for k in full..m {
            o[k] = (row[k] - mean) * rstd * w[k] + b[k];
        }
    }
}

/// LayerNorm's backward, a row at a time: one pass for the row's two sums and the gain's and
/// bias's gradients, one for dx. The same operations in the same order as the textbook loops
/// (lane l of the two sums takes values l, l + 16, …; the lanes are then added in order).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn layer_norm_grad_rows_any(
    x: &[f32],
    w: &[f32],
    g: &[f32],
    eps: f32,
    n: usize,
    dx: &mut [f32],
    dw: &mut [f32],
    db: &mut [f32],
) {
    let nf = n as f32;
    for ((row, gr), dxr) in x.chunks(n).zip(g.chunks(n)).zip(dx.chunks_mut(n)) {
        let (mean, rstd) = moments_lanes(row, eps);
        let m = row.len().min(gr.len()).min(dxr.len()).min(w.len());
        let m = m.min(dw.len()).min(db.len());
        let full = m / 16 * 16;
        let (mut sd, mut sdx) = ([0f32; 16], [0f32; 16]);
        for c in (0..full).step_by(16) {
            let (Some(r), Some(gc), Some(wc)) = (a16(row, c), a16(gr, c), a16(w, c)) else {
                break;
            };
            let (Some(dwc), Some(dbc)) = (a16_mut(dw, c), a16_mut(db, c)) else {
                break;
            };
            for l in 0..16 {
                let dh = gc[l] * wc[l];
                sd[l] += dh;
                sdx[l] += dh * (r[l] - mean) * rstd;
                dwc[l] += gc[l] * (r[l] - mean) * rstd;
                dbc[l] += gc[l];
            }
        }
        let (mut td, mut tdx) = (0f32, 0f32);
        for k in full..m {
            let dh = gr[k] * w[k];
            td += dh;
            tdx += dh * (row[k] - mean) * rstd;
            dw[k] += gr[k] * (row[k] - mean) * rstd;
            db[k] += gr[k];
        }
        let (sd, sdx) = (sd.iter().sum::<f32>() + td, sdx.iter().sum::<f32>() + tdx);
        let (mean_d, mean_dx) = (sd / nf, sdx / nf);
        for c in (0..full).step_by(16) {
            let (Some(r), Some(gc), Some(wc)) = (a16(row, c), a16(gr, c), a16(w, c)) else {
                break;
            };
            let Some(dc) = a16_mut(dxr, c) else { break };
            for l in 0..16 {
                let xh = (r[l] - mean) * rstd;
                dc[l] += rstd * (gc[l] * wc[l] - mean_d - xh * mean_dx);
            }
        }
        for k in full..m {
            let xh = (row[k] - mean) * rstd;
            dxr[k] += rstd * (gr[k] * w[k] - mean_d - xh * mean_dx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of many magnitudes and both signs, reproducible.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let u = (s >> 8) as f32 / (1u32 << 24) as f32;
                (u - 0.5) * 2f32.powi((s % 7) as i32 - 3)
            })
            .collect()
    }

    /// The textbook loops, one value at a time, with the sums' lanes as [`moments_lanes`] takes
    /// them: what the chunked kernel must reproduce to the bit.
    fn grad_reference(x: &[f32], w: &[f32], g: &[f32], n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut dx, mut dw, mut db) = (vec![0.5f32; x.len()], vec![0.25f32; n], vec![-1f32; n]);
        let full = n / 16 * 16;
        for (r, (row, gr)) in x.chunks(n).zip(g.chunks(n)).enumerate() {
            let (mean, rstd) = moments_lanes(row, 1e-5);
            let (mut sd, mut sdx) = ([0f32; 16], [0f32; 16]);
            let (mut td, mut tdx) = (0f32, 0f32);
            for k in 0..n {
                let dh = gr[k] * w[k];
                let v = dh * (row[k] - mean) * rstd;
                if k < full {
                    sd[k % 16] += dh;
                    sdx[k % 16] += v;
                } else {
                    td += dh;
                    tdx += v;
                }
                dw[k] += gr[k] * (row[k] - mean) * rstd;
                db[k] += gr[k];
            }
            let (sd, sdx) = (sd.iter().sum::<f32>() + td, sdx.iter().sum::<f32>() + tdx);
            let (mean_d, mean_dx) = (sd / n as f32, sdx / n as f32);
            for k in 0..n {
                let xh = (row[k] - mean) * rstd;
                dx[r * n + k] += rstd * (gr[k] * w[k] - mean_d - xh * mean_dx);
            }
        }
        (dx, dw, db)
    }

    #[test]
    fn grad_rows_match_the_textbook_loops_to_the_bit() {
        for (n, rows) in [(128, 9), (37, 5), (16, 3), (7, 4)] {
            let (x, g, w) = (values(n * rows, 1), values(n * rows, 2), values(n, 3));
            let (dx0, dw0, db0) = grad_reference(&x, &w, &g, n);
            let (mut dx, mut dw, mut db) =
                (vec![0.5f32; x.len()], vec![0.25f32; n], vec![-1f32; n]);
            layer_norm_grad_rows(&x, &w, &g, 1e-5, n, &mut dx, &mut dw, &mut db);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&dx), bits(&dx0), "dx, n = {n}");
            assert_eq!(bits(&dw), bits(&dw0), "dw, n = {n}");
            assert_eq!(bits(&db), bits(&db0), "db, n = {n}");
        }
    }

    #[test]
    fn rows_match_the_textbook_loop_to_the_bit() {
        for n in [128, 37, 16, 7] {
            let (x, w, b) = (values(n * 6, 4), values(n, 5), values(n, 6));
            let mut out = vec![0f32; x.len()];
            layer_norm_rows(&x, &w, &b, 1e-5, n, &mut out);
            for (row, o) in x.chunks(n).zip(out.chunks(n)) {
                let (mean, rstd) = moments_lanes(row, 1e-5);
                for k in 0..n {
                    let want = (row[k] - mean) * rstd * w[k] + b[k];
                    assert_eq!(o[k].to_bits(), want.to_bits(), "n = {n}, k = {k}");
                }
            }
        }
    }
}
