//! The attention weights of a training step in one pass: a = softmax((c·s + β)/τ) over the
//! last axis, from the raw scores s = q·kᵀ [B,H,T,T] and one additive bias β [B,1,T,T] shared
//! by the heads (the dial's bias, which carries the causal mask). Its backward pass is one pass
//! too: ds = (c/τ)·a ⊙ (g − Σ g⊙a). The composed version (scale, broadcast add, divide, softmax)
//! made four [B,H,T,T] tensors forward and as many backward; the bias is a constant, so it gets
//! no gradient.

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::model::fused::exp::exp_shifted;
use crate::model::fused::simd::{dot_lanes, max_lanes};
use crate::model::fused::{fused_ok, last_dim, slice};

/// Scale c and temperature τ of [`biased_softmax`].
#[derive(Clone, Copy, Debug)]
struct BiasedSoftmax {
    scale: f32,
    tau: f32,
}

/// The attention's gradient with respect to the raw scores.
struct BiasedSoftmaxGrad {
    factor: f32,
}

impl CustomOp2 for BiasedSoftmax {
    fn name(&self) -> &'static str {
        "fused-biased-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (s, bias) = (slice(s1, l1, self.name())?, slice(s2, l2, self.name())?);
        let dims = l1.dims();
        let (b, h) = match dims {
            [b, h, _, _] => (*b, *h),
            _ => candle_core::bail!("{}: expected scores [B,H,T,T]", self.name()),
        };
        let n = last_dim(l1);
        let per_head = s.len() / (b * h).max(1);
        if bias.len() != b * per_head {
            candle_core::bail!("{}: the bias must be [B,1,T,T]", self.name())
        }
        let mut out = vec![0f32; s.len()];
        let mut z = vec![0f32; n];
        for (m, (sm, om)) in s.chunks(per_head).zip(out.chunks_mut(per_head)).enumerate() {
            let bm = bias
                .get((m / h) * per_head..(m / h + 1) * per_head)
                .unwrap_or(&[]);
            biased_softmax_rows(sm, bm, n, self.scale, self.tau, &mut z, om);
        }
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _s: &Tensor,
        _bias: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let op = BiasedSoftmaxGrad {
            factor: self.scale / self.tau,
        };
        let ds = res.apply_op2_no_bwd(&grad.contiguous()?, &op)?;
        Ok((Some(ds), None))
    }
}

impl CustomOp2 for BiasedSoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-biased-softmax-grad"
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
        softmax_grad_rows(y, g, n, self.factor, &mut out);
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }
}

/// softmax((scale·s + bias)/τ) over the last axis, differentiable in `s` [B,H,T,T]; `bias`
/// [B,1,T,T] is a constant. None when the fused path does not apply (not an f32 CPU tensor, or
/// other shapes): the caller composes the ops.
pub fn biased_softmax(
    s: &Tensor,
    bias: &Tensor,
    scale: f64,
    tau: f64,
) -> candle_core::Result<Option<Tensor>> {
    let (Ok((b, _, t, t2)), Ok((bb, 1, bt, bt2))) = (s.dims4(), bias.dims4()) else {
        return Ok(None);
    };
    if !fused_ok(s) || !fused_ok(bias) || (b, t, t2) != (bb, bt, bt2) {
        return Ok(None);
    }
    let op = BiasedSoftmax {
        scale: scale as f32,
        tau: tau as f32,
    };
    Ok(Some(s.contiguous()?.apply_op2(&bias.contiguous()?, op)?))
}

crate::model::fused::simd::simd_dispatch! {
    /// Rows of `n` scores `s` under their bias rows: out = softmax((s·scale + bias)/τ) per row;
    /// a row with nothing visible (every bias −∞) stays zero. `z` is scratch of length `n`.
    pub(crate) fn biased_softmax_rows => biased_softmax_rows_any(
        s: &[f32],
        bias: &[f32],
        n: usize,
        scale: f32,
        tau: f32,
        z: &mut [f32],
        out: &mut [f32],
    )
}

crate::model::fused::simd::simd_dispatch! {
    /// The softmax's backward over rows of `n`: out = factor·y·(g − ⟨y, g⟩) per row, from the
    /// softmax output `y` and the upstream gradient `g`.
    pub(crate) fn softmax_grad_rows => softmax_grad_rows_any(y: &[f32], g: &[f32], n: usize, factor: f32, out: &mut [f32])
}

#[inline(always)]
fn biased_softmax_rows_any(
    s: &[f32],
    bias: &[f32],
    n: usize,
    scale: f32,
    tau: f32,
    z: &mut [f32],
    out: &mut [f32],
) {
    for ((row, brow), o) in s.chunks(n).zip(bias.chunks(n)).zip(out.chunks_mut(n)) {
        if tau == 1.0 {
            // x / 1 is x: the same numbers without a division per score.
            for ((zi, v), bv) in z.iter_mut().zip(row).zip(brow) {
                *zi = v * scale + bv;
            }
        } else {
            for ((zi, v), bv) in z.iter_mut().zip(row).zip(brow) {
                *zi = (v * scale + bv) / tau;
            }
        }
        let max = max_lanes(z);
        if max == f32::NEG_INFINITY {
            // Nothing visible: the row stays zero. But `max` skips NaN, so a row of NaN scores
            // (an overflow upstream) lands here too, and must stay NaN for the checks that
            // refuse it: read as zeros it looked perfectly localist.
            let nan = z.iter().any(|v| v.is_nan());
            o.fill(if nan { f32::NAN } else { 0.0 });
            continue;
        }
        let sum = exp_shifted(z, max, o);
        let inv = 1.0 / sum;
        for y in o.iter_mut() {
            *y *= inv;
        }
    }
}

#[inline(always)]
fn softmax_grad_rows_any(y: &[f32], g: &[f32], n: usize, factor: f32, out: &mut [f32]) {
    for ((yr, gr), o) in y.chunks(n).zip(g.chunks(n)).zip(out.chunks_mut(n)) {
        let dot = dot_lanes(yr, gr);
        for ((d, a), b) in o.iter_mut().zip(yr).zip(gr) {
            *d = factor * a * (b - dot);
        }
    }
}
