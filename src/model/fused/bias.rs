//! Bias addition over the last axis, whose backward pass for the bias is one column sum.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Shape, Tensor};

use crate::model::fused::{fused_ok, last_dim, slice};

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
