//! LayerNorm over the last axis (biased variance, as PyTorch), with its backward pass for the
//! input, the gain and the bias.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, D};

use crate::model::fused::simd::sum_lanes;
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

/// Mean and 1/√(var + eps) of a row, in 16 lanes.
#[inline(always)]
fn moments_lanes(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len().max(1) as f32;
    let mean = sum_lanes(row) / n;
    let mut lanes = [0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += (v - mean) * (v - mean);
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|v| (v - mean) * (v - mean))
        .sum();
    let var = (crate::model::fused::simd::tree_sum(lanes) + tail) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

#[inline(always)]
fn layer_norm_rows_any(x: &[f32], w: &[f32], b: &[f32], eps: f32, n: usize, out: &mut [f32]) {
    for (row, o) in x.chunks(n).zip(out.chunks_mut(n)) {
        let (mean, rstd) = moments_lanes(row, eps);
        for (((y, v), wi), bi) in o.iter_mut().zip(row).zip(w).zip(b) {
            *y = (v - mean) * rstd * wi + bi;
        }
    }
}

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
        let (mut sd, mut sdx) = ([0f32; 16], [0f32; 16]);
        let (mut cr, mut cg, mut cw) = (
            row.chunks_exact(16),
            gr.chunks_exact(16),
            w.chunks_exact(16),
        );
        for ((r16, g16), w16) in (&mut cr).zip(&mut cg).zip(&mut cw) {
            for ((((a, b), v), gi), wi) in
                sd.iter_mut().zip(sdx.iter_mut()).zip(r16).zip(g16).zip(w16)
            {
                let dh = gi * wi;
                *a += dh;
                *b += dh * (v - mean) * rstd;
            }
        }
        let (mut td, mut tdx) = (0f32, 0f32);
        for ((v, gi), wi) in cr
            .remainder()
            .iter()
            .zip(cg.remainder())
            .zip(cw.remainder())
        {
            td += gi * wi;
            tdx += gi * wi * (v - mean) * rstd;
        }
        for (((v, gi), dwk), dbk) in row.iter().zip(gr).zip(dw.iter_mut()).zip(db.iter_mut()) {
            *dwk += gi * (v - mean) * rstd;
            *dbk += gi;
        }
        let (sd, sdx) = (sd.iter().sum::<f32>() + td, sdx.iter().sum::<f32>() + tdx);
        let (mean_d, mean_dx) = (sd / nf, sdx / nf);
        for (((d, v), gi), wi) in dxr.iter_mut().zip(row).zip(gr).zip(w) {
            let xh = (v - mean) * rstd;
            *d += rstd * (gi * wi - mean_d - xh * mean_dx);
        }
    }
}
