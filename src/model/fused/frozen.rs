//! A product with a frozen weight, y = x·Wᵀ, whose backward pass gives x its gradient and
//! computes nothing for W. candle's matmul backward always computes both operands' gradients,
//! so fine-tuning a few projections of a pretrained model paid for a gradient of every frozen
//! matrix it passed through (the output head's alone is V×d, 28M values for SmolLM2, each step).
//!
//! The product itself is candle's, on a detached input; the op only carries it through and
//! routes the gradient: dx = dy·W (dy·Wᵀ for a weight stored [in, out], as GPT-2's `Conv1D`).

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};

use crate::model::fused::{fused_ok, slice};

/// Passes the detached product through; its backward is dy·W, or dy·Wᵀ when `in_out`.
struct GradThrough {
    /// The frozen weight: [out, in], or [in, out] when `in_out`.
    w: Tensor,
    /// Whether `w` is stored [in, out].
    in_out: bool,
}

impl CustomOp2 for GradThrough {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        _s1: &CpuStorage,
        _l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let y = slice(s2, l2, self.name())?;
        Ok((CpuStorage::F32(y.to_vec()), l2.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        _y: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (out, w) = if self.in_out {
            (self.w.dim(1)?, self.w.t()?)
        } else {
            (self.w.dim(0)?, self.w.clone())
        };
        let rows = grad.elem_count() / out.max(1);
        let dx = grad
            .contiguous()?
            .reshape((rows, out))?
            .matmul(&w)?
            .reshape(x.shape())?;
        Ok((Some(dx), None))
    }
}

/// x [.., in] · Wᵀ for a weight `w` [out, in] that gets no gradient (differentiable in x).
/// Off the CPU, or for other dtypes, candle's product (which also differentiates W).
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    frozen_product(x, w, false)
}

/// x [.., in] · W for a weight `w` stored [in, out] (GPT-2's `Conv1D`) that gets no gradient.
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    frozen_product(x, w, true)
}

/// x [.., in] · w for `w` [in, out] (a view of a transposed weight will do): the leading axes
/// flattened into one 2-D product, then restored. An error names both shapes when x's last
/// axis is not `in`.
pub fn matmul_last(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    let (inp, out) = w.dims2()?;
    let mut dims = x.dims().to_vec();
    match dims.last_mut() {
        Some(last) if *last == inp => *last = out,
        _ => candle_core::bail!(
            "linear: input of shape {:?} against a weight {inp}×{out} ([in, out])",
            x.dims()
        ),
    }
    let rows = x.elem_count() / inp.max(1);
    x.contiguous()?
        .reshape((rows, inp))?
        .matmul(w)?
        .reshape(dims)
}

/// The product of `x` with a frozen `w`: [out, in] (x·Wᵀ), or [in, out] when `in_out` (x·W).
fn frozen_product(x: &Tensor, w: &Tensor, in_out: bool) -> candle_core::Result<Tensor> {
    let wt = if in_out { w.clone() } else { w.t()? };
    if !(fused_ok(x) && fused_ok(w)) {
        return matmul_last(x, &wt);
    }
    let y = matmul_last(&x.detach(), &wt)?;
    x.contiguous()?.apply_op2(
        &y,
        GradThrough {
            w: w.contiguous()?,
            in_out,
        },
    )
}
