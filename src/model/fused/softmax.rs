//! Row softmax over the last axis, with its backward pass: y = softmax(x) and
//! dx = y ⊙ (dy − Σ dy ⊙ y).

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor, D};

use crate::model::fused::exp::exp_shifted;
use crate::model::fused::{fused_ok, last_dim, slice};

struct Softmax;
struct SoftmaxGrad;

/// o = softmax(row): the row's maximum subtracted, the vectorised exp, divided by the sum.
fn softmax_row(row: &[f32], o: &mut [f32]) {
    let max = crate::model::fused::simd::max_lanes(row);
    let sum = exp_shifted(row, max, o);
    for y in o.iter_mut() {
        *y /= sum;
    }
}

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(s, l, self.name())?;
        let n = last_dim(l);
        let mut out = vec![0f32; x.len()];
        for (row, o) in x.chunks(n).zip(out.chunks_mut(n)) {
            softmax_row(row, o);
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

/// Forward-only row softmax for captures and generation, the rows split over rayon's threads
/// when there are many (as candle's `softmax_last_dim`, with the vectorised exp).
struct SoftmaxRows;

/// Below this many values a softmax runs on the calling thread.
const PARALLEL_VALUES: usize = 1 << 15;

impl CustomOp1 for SoftmaxRows {
    fn name(&self) -> &'static str {
        "softmax-rows"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        use rayon::prelude::*;
        let x = slice(s, l, self.name())?;
        let n = last_dim(l).max(1);
        let mut out = vec![0f32; x.len()];
        let row = |(r, o): (&[f32], &mut [f32])| softmax_row(r, o);
        if x.len() >= PARALLEL_VALUES {
            x.par_chunks(n).zip(out.par_chunks_mut(n)).for_each(row);
        } else {
            x.chunks(n).zip(out.chunks_mut(n)).for_each(row);
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Softmax over the last axis without a backward pass (inference): the fused op on CPU f32
/// tensors, candle's elsewhere.
pub fn softmax_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    if fused_ok(x) {
        x.contiguous()?.apply_op1_no_bwd(&SoftmaxRows)
    } else {
        candle_nn::ops::softmax_last_dim(x)
    }
}
