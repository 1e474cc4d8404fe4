//! Fused CPU ops with hand-written backward passes: row softmax, LayerNorm and bias addition.
//!
//! candle differentiates softmax and LayerNorm through chains of small tensor ops, and the
//! gradient of a broadcast bias through a generic reduction that does a division per element;
//! together they made a tiny-model training step several times slower than PyTorch's. Each op
//! here is one pass forward and one pass backward over contiguous f32 rows, with the forward
//! arithmetic of the composed version (so the PyTorch parity test still holds). On other
//! devices or dtypes the callers fall back to composed candle ops.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Shape, Tensor, D};

/// The contiguous f32 data of a CPU tensor, or an error naming `op`.
pub(crate) fn slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{op}: expected f32 storage")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: expected a contiguous tensor")
    };
    v.get(start..end)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: layout out of range")))
}

fn last_dim(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

/// True when the fused CPU path applies.
pub fn fused_ok(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

struct Softmax;
struct SoftmaxGrad;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = last_dim(l);
        let mut out = vec![0f32; x.len()];
        for (row, o) in x.chunks(n).zip(out.chunks_mut(n)) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (v, y) in row.iter().zip(o.iter_mut()) {
                *y = (*v - max).exp();
                sum += *y;
            }
            for y in o.iter_mut() {
                *y /= sum;
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(
        &self,
        _arg: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(
            res.apply_op2_no_bwd(&grad.contiguous()?, &SoftmaxGrad)?,
        ))
    }
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-softmax-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (y, g) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let n = last_dim(l1);
        let mut out = vec![0f32; y.len()];
        for ((yr, gr), o) in y.chunks(n).zip(g.chunks(n)).zip(out.chunks_mut(n)) {
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for ((d, a), b) in o.iter_mut().zip(yr).zip(gr) {
                *d = a * (b - dot);
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// Softmax over the last axis (differentiable).
pub fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    if fused_ok(x) {
        x.contiguous()?.apply_op1(Softmax)
    } else {
        candle_nn::ops::softmax(x, D::Minus1)
    }
}

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

struct AddBias;
struct ColumnSum;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "fused-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, b) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let n = last_dim(l1);
        let mut out = x.to_vec();
        for row in out.chunks_mut(n) {
            for (v, bi) in row.iter_mut().zip(b) {
                *v += bi;
            }
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let db = grad.contiguous()?.apply_op1_no_bwd(&ColumnSum)?;
        Ok((Some(grad.clone()), Some(db)))
    }
}

impl CustomOp1 for ColumnSum {
    fn name(&self) -> &'static str {
        "fused-column-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = slice(s, l, self.name())?;
        let n = last_dim(l);
        let mut out = vec![0f32; n];
        for row in g.chunks(n) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(n)))
    }
}

/// x + b over the last axis (differentiable; the bias gradient is a column sum).
pub fn add_bias(x: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    if fused_ok(x) {
        x.contiguous()?.apply_op2(&b.contiguous()?, AddBias)
    } else {
        x.broadcast_add(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn var(shape: (usize, usize), seed: u64) -> Var {
        let mut rng = crate::analysis::rng::SplitMix64::new(seed);
        let data: Vec<f32> = (0..shape.0 * shape.1)
            .map(|_| rng.normal() as f32)
            .collect();
        Var::from_vec(data, shape, &Device::Cpu).unwrap_or_else(|_| unreachable!())
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap_or(f32::INFINITY)
    }

    /// Compare value and gradients of the fused and composed versions of one function.
    fn check(
        f_fused: impl Fn(&[Tensor]) -> Tensor,
        f_ref: impl Fn(&[Tensor]) -> Tensor,
        vars: &[Var],
    ) {
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let weights = var((vars[0].dims()[0], vars[0].dims()[1]), 99);
        let loss = |y: Tensor| {
            (y * weights.as_tensor())
                .and_then(|t| t.sum_all())
                .unwrap_or_else(|_| unreachable!())
        };
        let (yf, yr) = (f_fused(&ts), f_ref(&ts));
        assert!(
            max_diff(&yf, &yr) < 1e-5,
            "forward differs by {}",
            max_diff(&yf, &yr)
        );
        let (gf, gr) = (loss(yf).backward(), loss(yr).backward());
        let (gf, gr) = (
            gf.unwrap_or_else(|_| unreachable!()),
            gr.unwrap_or_else(|_| unreachable!()),
        );
        for v in vars {
            let (a, b) = (gf.get(v.as_tensor()), gr.get(v.as_tensor()));
            let (Some(a), Some(b)) = (a, b) else {
                panic!("missing gradient")
            };
            assert!(
                max_diff(a, b) < 1e-4,
                "gradient differs by {}",
                max_diff(a, b)
            );
        }
    }

    #[test]
    fn fused_ops_match_composed_candle_ops_and_their_gradients() {
        let x = var((6, 16), 1);
        check(
            |t| softmax_last(&t[0]).unwrap_or_else(|_| unreachable!()),
            |t| candle_nn::ops::softmax(&t[0], D::Minus1).unwrap_or_else(|_| unreachable!()),
            std::slice::from_ref(&x),
        );
        let w = Var::from_tensor(
            &(var((1, 16), 2)
                .as_tensor()
                .flatten_all()
                .unwrap_or_else(|_| unreachable!())
                + 1.0)
                .unwrap_or_else(|_| unreachable!()),
        )
        .unwrap_or_else(|_| unreachable!());
        let b = Var::from_tensor(
            &var((1, 16), 3)
                .as_tensor()
                .flatten_all()
                .unwrap_or_else(|_| unreachable!()),
        )
        .unwrap_or_else(|_| unreachable!());
        check(
            |t| layer_norm(&t[0], &t[1], &t[2], 1e-5).unwrap_or_else(|_| unreachable!()),
            |t| {
                let x = &t[0];
                let mean = x.mean_keepdim(D::Minus1).unwrap_or_else(|_| unreachable!());
                let xc = x.broadcast_sub(&mean).unwrap_or_else(|_| unreachable!());
                let var = xc
                    .sqr()
                    .and_then(|v| v.mean_keepdim(D::Minus1))
                    .unwrap_or_else(|_| unreachable!());
                let xn = xc
                    .broadcast_div(
                        &(var + 1e-5)
                            .and_then(|v| v.sqrt())
                            .unwrap_or_else(|_| unreachable!()),
                    )
                    .unwrap_or_else(|_| unreachable!());
                xn.broadcast_mul(&t[1])
                    .and_then(|v| v.broadcast_add(&t[2]))
                    .unwrap_or_else(|_| unreachable!())
            },
            &[x.clone(), w, b.clone()],
        );
        check(
            |t| add_bias(&t[0], &t[1]).unwrap_or_else(|_| unreachable!()),
            |t| t[0].broadcast_add(&t[1]).unwrap_or_else(|_| unreachable!()),
            &[x, b],
        );
    }
}
