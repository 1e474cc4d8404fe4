//! tanh-GELU as one fused CPU op with an analytic derivative.
//!
//! candle's own `gelu` differentiates through about a dozen tensor ops (two `powf`s and a
//! `tanh` among them), which took about a fifth of a tiny-model training step. Here the forward
//! is candle's formula exactly (so parity with PyTorch is untouched) and the backward is one
//! elementwise pass: d/dx = ½(1 + t) + ½·x·(1 − t²)·c·(1 + 3a·x²), t = tanh(c(x + a·x³)).
//! Other devices and dtypes fall back to candle's op.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};

use crate::model::fused::exp::exp_f32;
use crate::model::fused::slice;

const SQRT_TWO_OVER_PI: f32 = 0.797_884_6;
const COEF_A: f32 = 0.044_715;

/// tanh through one `exp`: glibc's `tanhf` (via `expm1f`) cost a sixth of a training step.
/// Absolute error stays below 1e-7, and the ends saturate exactly to ±1.
#[inline(always)]
fn fast_tanh(u: f32) -> f32 {
    1.0 - 2.0 / (exp_f32(2.0 * u) + 1.0)
}

/// tanh-GELU of one value: 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))).
#[inline(always)]
pub(crate) fn gelu_value(v: f32) -> f32 {
    0.5 * v * (1.0 + fast_tanh(SQRT_TWO_OVER_PI * v * (1.0 + COEF_A * v * v)))
}

/// The derivative of [`gelu_value`] at `v`.
#[inline(always)]
pub(crate) fn gelu_slope(v: f32) -> f32 {
    let v2 = v * v;
    let t = fast_tanh(SQRT_TWO_OVER_PI * v * (1.0 + COEF_A * v2));
    0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * SQRT_TWO_OVER_PI * (1.0 + 3.0 * COEF_A * v2)
}

crate::model::fused::simd::simd_dispatch! {
    /// out = tanh-GELU(u), element by element.
    pub(crate) fn gelu_rows => gelu_rows_any(u: &[f32], out: &mut [f32])
}

crate::model::fused::simd::simd_dispatch! {
    /// u ← tanh-GELU(u), element by element ([`gelu_rows`] in place).
    pub(crate) fn gelu_in_place => gelu_in_place_any(u: &mut [f32])
}

#[inline(always)]
fn gelu_in_place_any(u: &mut [f32]) {
    u.iter_mut().for_each(|v| *v = gelu_value(*v));
}

crate::model::fused::simd::simd_dispatch! {
    /// out = tanh-GELU(u + bias) and slope = GELU′(u + bias), element by element (`bias` added
    /// to every row): a training forward keeps the slope so its backward is one multiplication
    /// (no second tanh), and adds the MLP's bias here instead of in a pass of its own.
    pub(crate) fn gelu_bias_rows_with_slope => gelu_bias_rows_with_slope_any(
        u: &[f32],
        bias: &[f32],
        out: &mut [f32],
        slope: &mut [f32],
    )
}

#[inline(always)]
fn gelu_bias_rows_with_slope_any(u: &[f32], bias: &[f32], out: &mut [f32], slope: &mut [f32]) {
    let f = bias.len().max(1);
    let rows = u.chunks(f).zip(out.chunks_mut(f)).zip(slope.chunks_mut(f));
    for ((ur, or), sr) in rows {
        for (((o, s), &x), b) in or.iter_mut().zip(sr.iter_mut()).zip(ur).zip(bias) {
            let v = x + b;
            let v2 = v * v;
            let t = fast_tanh(SQRT_TWO_OVER_PI * v * (1.0 + COEF_A * v2));
            *o = 0.5 * v * (1.0 + t);
            *s = 0.5 * (1.0 + t)
                + 0.5 * v * (1.0 - t * t) * SQRT_TWO_OVER_PI * (1.0 + 3.0 * COEF_A * v2);
        }
    }
}

crate::model::fused::simd::simd_dispatch! {
    /// out = GELU′(u), element by element.
    fn gelu_slope_rows => gelu_slope_rows_any(u: &[f32], out: &mut [f32])
}

#[inline(always)]
fn gelu_rows_any(u: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(u) {
        *o = gelu_value(v);
    }
}

#[inline(always)]
fn gelu_slope_rows_any(u: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(u) {
        *o = gelu_slope(v);
    }
}

struct GeluTanh;
struct GeluTanhGrad;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "gelu-tanh"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(storage, layout, self.name())?;
        let mut out = vec![0f32; x.len()];
        gelu_rows(x, &mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let d = arg.contiguous()?.apply_op1_no_bwd(&GeluTanhGrad)?;
        Ok(Some(grad_res.mul(&d)?))
    }
}

impl CustomOp1 for GeluTanhGrad {
    fn name(&self) -> &'static str {
        "gelu-tanh-grad"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = slice(storage, layout, self.name())?;
        let mut out = vec![0f32; x.len()];
        gelu_slope_rows(x, &mut out);
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// tanh-GELU: the fused op on CPU f32 tensors, candle's `gelu` elsewhere.
pub fn gelu_tanh(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        x.contiguous()?.apply_op1(GeluTanh)
    } else {
        x.gelu()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn matches_candle_forward_and_finite_difference_gradient() {
        let xs: Vec<f32> = (-40..=40).map(|i| i as f32 * 0.1).collect();
        let n = xs.len();
        let x = Var::from_vec(xs.clone(), n, &Device::Cpu).unwrap_or_else(|_| unreachable!());
        let ours = gelu_tanh(x.as_tensor())
            .and_then(|t| t.to_vec1::<f32>())
            .unwrap_or_default();
        let theirs = x
            .as_tensor()
            .gelu()
            .and_then(|t| t.to_vec1::<f32>())
            .unwrap_or_default();
        assert_eq!(ours.len(), n);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let grads = gelu_tanh(x.as_tensor())
            .and_then(|y| y.sum_all())
            .and_then(|s| s.backward())
            .unwrap_or_else(|_| unreachable!());
        let g = grads
            .get(x.as_tensor())
            .and_then(|g| g.to_vec1::<f32>().ok())
            .unwrap_or_default();
        let f = |v: f64| {
            0.5 * v * (1.0 + (0.797_884_560_802_865_4 * (v + 0.044715 * v * v * v)).tanh())
        };
        for (&xv, &gv) in xs.iter().zip(&g) {
            let h = 1e-4;
            let fd = (f(xv as f64 + h) - f(xv as f64 - h)) / (2.0 * h);
            assert!((fd - gv as f64).abs() < 1e-4, "x={xv}: {gv} vs {fd}");
        }
    }
}
