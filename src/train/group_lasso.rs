//! The off-block group lasso of one layer in one pass forward and one backward (CPU, f32).
//!
//! Ω = mean over (b, h, i) of Σ_k w_{b,i,k}·√(Σ_{j ∈ keep(i), block(j) = k} a_ij² + ε), and
//! ∂Ω/∂a_ij = w_{b,i,k}·a_ij / √(…) / N for the kept keys j of block k. The composed version
//! ([`super::penalty::group_lasso`]) makes eight tensors forward and as many backward, four of
//! them [B,H,T,T]; this one reads the attention once forward and writes its gradient once.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::model::fused::{fused_ok, slice};

/// The batch's block structure as plain data, for the fused op.
#[derive(Debug)]
pub struct PenaltyHost {
    /// Sequences B and positions T.
    pub b: usize,
    /// Positions T.
    pub t: usize,
    /// Blocks K.
    pub k: usize,
    /// Key block of each position [B·T], clamped below K.
    pub key_block: Vec<u32>,
    /// Group weight where k ≠ r(i), else 0 [B·T·K].
    pub off: Vec<f32>,
    /// Keys 1..i instead of 0..=i (S(i) exempt).
    pub exempt: bool,
}

impl PenaltyHost {
    /// The kept keys of query i.
    fn keys(&self, i: usize) -> std::ops::Range<usize> {
        if self.exempt {
            1.min(i)..i
        } else {
            0..i + 1
        }
    }

    /// Per-block sums of squares of one attention row into `acc` (length K).
    fn block_sums(&self, bi: usize, i: usize, row: &[f32], acc: &mut [f32]) {
        acc.fill(0.0);
        let kb = &self.key_block[bi * self.t..(bi + 1) * self.t];
        for j in self.keys(i) {
            if let (Some(&a), Some(&k)) = (row.get(j), kb.get(j)) {
                if let Some(s) = acc.get_mut(k as usize) {
                    *s += a * a;
                }
            }
        }
    }

    fn check(&self, l: &Layout, name: &str) -> candle_core::Result<usize> {
        match l.dims() {
            [b, h, t, t2] if *b == self.b && *t == self.t && *t2 == self.t => Ok(*h),
            d => candle_core::bail!("{name}: attention {d:?} does not fit the batch's blocks"),
        }
    }
}

struct GroupLasso {
    host: Arc<PenaltyHost>,
    eps: f32,
}

struct GroupLassoGrad {
    host: Arc<PenaltyHost>,
    eps: f32,
    factor: f32,
}

impl CustomOp1 for GroupLasso {
    fn name(&self) -> &'static str {
        "fused-group-lasso"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let a = slice(s, l, self.name())?;
        let p = &self.host;
        let h = p.check(l, self.name())?;
        let (t, k) = (p.t, p.k);
        let mut acc = vec![0f32; k];
        let mut total = 0f64;
        for (m, head) in a.chunks(t * t).enumerate() {
            let bi = m / h;
            for (i, row) in head.chunks(t).enumerate() {
                p.block_sums(bi, i, row, &mut acc);
                let off = &p.off[(bi * t + i) * k..(bi * t + i + 1) * k];
                let omega: f32 = acc
                    .iter()
                    .zip(off)
                    .filter(|(_, w)| **w != 0.0)
                    .map(|(s, w)| w * (s + self.eps).sqrt())
                    .sum();
                total += f64::from(omega);
            }
        }
        let n = (p.b * h * t).max(1) as f64;
        Ok((CpuStorage::F32(vec![(total / n) as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let g = grad.to_dtype(candle_core::DType::F32)?.to_vec0::<f32>()?;
        let (b, h, t, _) = arg.dims4()?;
        let op = GroupLassoGrad {
            host: self.host.clone(),
            eps: self.eps,
            factor: g / (b * h * t).max(1) as f32,
        };
        Ok(Some(arg.apply_op1_no_bwd(&op)?))
    }
}

impl CustomOp1 for GroupLassoGrad {
    fn name(&self) -> &'static str {
        "fused-group-lasso-grad"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let a = slice(s, l, self.name())?;
        let p = &self.host;
        let h = p.check(l, self.name())?;
        let (t, k) = (p.t, p.k);
        let mut out = vec![0f32; a.len()];
        let mut acc = vec![0f32; k];
        for (m, (head, ohead)) in a.chunks(t * t).zip(out.chunks_mut(t * t)).enumerate() {
            let bi = m / h;
            let kb = &p.key_block[bi * t..(bi + 1) * t];
            for (i, (row, orow)) in head.chunks(t).zip(ohead.chunks_mut(t)).enumerate() {
                p.block_sums(bi, i, row, &mut acc);
                let off = &p.off[(bi * t + i) * k..(bi * t + i + 1) * k];
                // w_k / √(s_k + ε) per block, times the upstream factor.
                for (s, w) in acc.iter_mut().zip(off) {
                    *s = if *w == 0.0 {
                        0.0
                    } else {
                        self.factor * w / (*s + self.eps).sqrt()
                    };
                }
                for j in p.keys(i) {
                    if let (Some(o), Some(&av), Some(&kj)) =
                        (orow.get_mut(j), row.get(j), kb.get(j))
                    {
                        *o = acc.get(kj as usize).copied().unwrap_or(0.0) * av;
                    }
                }
            }
        }
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// Mean Ω of one layer's attention [B,H,T,T] through the fused op, or None when it does not
/// apply (not an f32 CPU tensor).
pub fn fused_group_lasso(
    attention: &Tensor,
    host: &Arc<PenaltyHost>,
    eps: f64,
) -> candle_core::Result<Option<Tensor>> {
    if !fused_ok(attention) {
        return Ok(None);
    }
    let op = GroupLasso {
        host: host.clone(),
        eps: eps as f32,
    };
    Ok(Some(attention.contiguous()?.apply_op1(op)?))
}

#[cfg(test)]
#[path = "group_lasso_tests.rs"]
mod tests;
