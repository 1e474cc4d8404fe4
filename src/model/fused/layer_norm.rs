//! LayerNorm over the last axis (biased variance, as PyTorch), with its backward pass for the
//! input, the gain and the bias.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor, D};

use crate::model::fused::{fused_ok, last_dim, slice};

struct LayerNorm(f32);
struct LayerNormGrad(f32);

/// Mean and reciprocal standard deviation of a row (biased variance, as PyTorch).
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len().max(1) as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

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
        for (row, o) in x.chunks(n).zip(out.chunks_mut(n)) {
            let (mean, rstd) = moments(row, self.0);
            for (((y, v), wi), bi) in o.iter_mut().zip(row).zip(w).zip(b) {
                *y = (v - mean) * rstd * wi + bi;
            }
        }
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
        let mut xhat = vec![0f32; n];
        let mut dxhat = vec![0f32; n];
        for ((row, gr), dx) in x.chunks(n).zip(g.chunks(n)).zip(dx_all.chunks_mut(n)) {
            let (mean, rstd) = moments(row, self.0);
            let (mut mean_d, mut mean_dx) = (0f32, 0f32);
            for (k, ((v, gi), wi)) in row.iter().zip(gr).zip(w).enumerate() {
                let xh = (v - mean) * rstd;
                let dh = gi * wi;
                if let (Some(a), Some(b)) = (xhat.get_mut(k), dxhat.get_mut(k)) {
                    *a = xh;
                    *b = dh;
                }
                mean_d += dh;
                mean_dx += dh * xh;
                if let (Some(a), Some(b)) = (dw.get_mut(k), db.get_mut(k)) {
                    *a += gi * xh;
                    *b += gi;
                }
            }
            mean_d /= n as f32;
            mean_dx /= n as f32;
            for ((d, xh), dh) in dx.iter_mut().zip(&xhat).zip(&dxhat) {
                *d = rstd * (dh - mean_d - xh * mean_dx);
            }
        }
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
