//! The off-block group lasso of one layer in one pass forward and one backward (CPU, f32).
//!
//! Ω = mean over (b, h, i) of Σ_k w_{b,i,k}·√(Σ_{j ∈ keep(i), block(j) = k} a_ij² + ε), and
//! ∂Ω/∂a_ij = w_{b,i,k}·a_ij / √(…) / N for the kept keys j of block k. The composed version
//! ([`super::penalty::group_lasso`]) makes eight tensors forward and as many backward, four of
//! them [B,H,T,T]; this one reads the attention once forward and writes its gradient once.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

use crate::analysis::penalty::BlockWeighting as GroupWeights;
use crate::model::blocks::SequenceMasks;
use crate::model::fused::simd::simd_dispatch;
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
    /// Each sequence's keys as runs of consecutive positions in one block, in order; the
    /// runs of sequence b are `runs[run_at[b]..run_at[b + 1]]`.
    runs: Vec<KeyRun>,
    run_at: Vec<usize>,
}

/// Keys `start..end` of one sequence, all in block `block`.
#[derive(Clone, Copy, Debug)]
struct KeyRun {
    start: usize,
    end: usize,
    block: usize,
}

impl PenaltyHost {
    /// The block structure of a batch of sequences (all of length T, same K): each key's
    /// block, and each query's group weights w_k where k ≠ r(i) (0 for its own block, unless
    /// its block is isolated; 0 for every block when its block is open). With
    /// `exempt_always_visible` the keys of S(i) are left out of every group.
    pub fn new(
        batch: &[SequenceMasks],
        num_blocks: usize,
        weights: GroupWeights,
        exempt_always_visible: bool,
    ) -> Self {
        let b = batch.len();
        let t = batch.first().map(SequenceMasks::len).unwrap_or(0);
        let k = num_blocks.max(1);
        let mut host = Self {
            b,
            t,
            k,
            key_block: vec![0u32; b * t],
            off: vec![0f32; b * t * k],
            exempt: exempt_always_visible,
            runs: Vec::new(),
            run_at: vec![0],
        };
        let mut counts = vec![0usize; k];
        for (bi, m) in batch.iter().enumerate() {
            for (j, &kb) in m.key_blocks.iter().enumerate().take(t) {
                let kb = kb.min(k - 1);
                if let Some(c) = host.key_block.get_mut(bi * t + j) {
                    *c = kb as u32;
                }
                match host.runs.last_mut() {
                    Some(r) if r.block == kb && r.end == j => r.end = j + 1,
                    _ => host.runs.push(KeyRun {
                        start: j,
                        end: j + 1,
                        block: kb,
                    }),
                }
            }
            host.run_at.push(host.runs.len());
            for i in 0..t {
                counts.fill(0);
                for j in host.keys(i) {
                    if let Some(&kb) = m.key_blocks.get(j) {
                        if let Some(n) = counts.get_mut(kb.min(k - 1)) {
                            *n += 1;
                        }
                    }
                }
                let r = m.relevant_blocks.get(i).copied().unwrap_or(0).min(k - 1);
                let (isolated, open) = (m.row_isolated(i), m.row_open(i));
                for (kk, &n) in counts.iter().enumerate() {
                    let w = match weights {
                        GroupWeights::Unit => 1.0,
                        GroupWeights::SqrtSize => (n as f32).sqrt(),
                    };
                    if let Some(c) = host.off.get_mut((bi * t + i) * k + kk) {
                        *c = if open || (kk == r && !isolated) {
                            0.0
                        } else {
                            w
                        };
                    }
                }
            }
        }
        host
    }

    /// The kept keys of query i.
    pub(crate) fn keys(&self, i: usize) -> std::ops::Range<usize> {
        if self.exempt {
            1.min(i)..i
        } else {
            0..i + 1
        }
    }

    /// The runs of sequence `bi`.
    fn runs_of(&self, bi: usize) -> &[KeyRun] {
        let (from, to) = (self.run_at.get(bi), self.run_at.get(bi + 1));
        match (from, to) {
            (Some(&f), Some(&t)) => self.runs.get(f..t).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The kept keys of query i in sequence `bi`, run by run: (block, keys of the run).
    fn kept_runs(
        &self,
        bi: usize,
        i: usize,
    ) -> impl Iterator<Item = (usize, std::ops::Range<usize>)> + '_ {
        let keys = self.keys(i);
        self.runs_of(bi)
            .iter()
            .take_while(move |r| r.start < keys.end)
            .filter_map(move |r| {
                let (lo, hi) = (r.start.max(keys.start), r.end.min(keys.end));
                (lo < hi).then_some((r.block, lo..hi))
            })
    }

    /// Σ over (b, h, i) of Ω_i for attention `a` [B,H,T,T] with `h` heads (not yet a mean).
    pub fn omega_sum(&self, a: &[f32], h: usize, eps: f32) -> f64 {
        let mut scales = vec![0f32; a.len() / self.t.max(1) * self.k];
        self.omega_sum_with_scales(a, h, eps, &mut scales)
    }

    /// [`PenaltyHost::omega_sum`], keeping per query row and block the gradient's scale
    /// w_k/√(s_k + ε) (0 where w_k = 0) in `scales` [B·H·T·K] for
    /// [`PenaltyHost::add_grad_from_scales`].
    pub fn omega_sum_with_scales(&self, a: &[f32], h: usize, eps: f32, scales: &mut [f32]) -> f64 {
        omega_rows(self, a, h, eps, scales)
    }

    /// Adds factor·∂Ω_i/∂a_ij (Ω_i summed, not averaged) to `out` for every kept key, from
    /// attention `a` [B,H,T,T] with `h` heads.
    pub fn add_grad(&self, a: &[f32], h: usize, eps: f32, factor: f32, out: &mut [f32]) {
        let mut scales = vec![0f32; a.len() / self.t.max(1) * self.k];
        self.omega_sum_with_scales(a, h, eps, &mut scales);
        self.add_grad_from_scales(a, h, &scales, factor, out);
    }

    /// [`PenaltyHost::add_grad`] from the scales [`PenaltyHost::omega_sum_with_scales`] kept.
    pub fn add_grad_from_scales(
        &self,
        a: &[f32],
        h: usize,
        scales: &[f32],
        factor: f32,
        out: &mut [f32],
    ) {
        grad_rows(self, a, h, scales, factor, out);
    }

    fn check(&self, l: &Layout, name: &str) -> candle_core::Result<usize> {
        match l.dims() {
            [b, h, t, t2] if *b == self.b && *t == self.t && *t2 == self.t => Ok(*h),
            d => candle_core::bail!("{name}: attention {d:?} does not fit the batch's blocks"),
        }
    }
}

simd_dispatch! {
    /// Σ Ω_i over the rows of `a` [B,H,T,T], with the gradient's scales (see
    /// [`PenaltyHost::omega_sum_with_scales`]). Keys are summed run by run, so a block's sum
    /// is a short vector sum instead of one dependent add per key.
    fn omega_rows => omega_rows_any(p: &PenaltyHost, a: &[f32], h: usize, eps: f32, scales: &mut [f32]) -> f64
}

#[inline(always)]
fn omega_rows_any(p: &PenaltyHost, a: &[f32], h: usize, eps: f32, scales: &mut [f32]) -> f64 {
    let (t, k) = (p.t, p.k);
    let mut total = 0f64;
    for (r, (row, sc)) in a.chunks(t).zip(scales.chunks_mut(k)).enumerate() {
        let (bi, i) = (r / t / h.max(1), r % t);
        sc.fill(0.0);
        for (block, keys) in p.kept_runs(bi, i) {
            if let (Some(s), Some(x)) = (sc.get_mut(block), row.get(keys)) {
                *s += sum_squares(x);
            }
        }
        let off = p
            .off
            .get((bi * t + i) * k..(bi * t + i + 1) * k)
            .unwrap_or(&[]);
        let mut omega = 0f32;
        for (s, w) in sc.iter_mut().zip(off) {
            if *w == 0.0 {
                *s = 0.0;
            } else {
                let norm = (*s + eps).sqrt();
                omega += w * norm;
                *s = w / norm;
            }
        }
        total += f64::from(omega);
    }
    total
}

/// Σ x² in 8 partial sums (a run of keys is often 8 long: windows of 8).
#[inline(always)]
fn sum_squares(x: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let mut chunks = x.chunks_exact(8);
    for c in &mut chunks {
        for (l, v) in lanes.iter_mut().zip(c) {
            *l += v * v;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    let [a0, a1, a2, a3, a4, a5, a6, a7] = lanes;
    ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)) + tail
}

simd_dispatch! {
    /// factor·∂Ω_i/∂a_ij added to `out` for every kept key (see
    /// [`PenaltyHost::add_grad_from_scales`]): key by key, the scale looked up by its block
    /// (run by run was slower: a run of 8 keys is shorter than one AVX-512 vector).
    fn grad_rows => grad_rows_any(p: &PenaltyHost, a: &[f32], h: usize, scales: &[f32], factor: f32, out: &mut [f32])
}

#[inline(always)]
fn grad_rows_any(
    p: &PenaltyHost,
    a: &[f32],
    h: usize,
    scales: &[f32],
    factor: f32,
    out: &mut [f32],
) {
    let (t, k) = (p.t, p.k);
    let rows = a.chunks(t).zip(out.chunks_mut(t)).zip(scales.chunks(k));
    for (r, ((row, orow), sc)) in rows.enumerate() {
        let (bi, i) = (r / t / h.max(1), r % t);
        let kb = p.key_block.get(bi * t..(bi + 1) * t).unwrap_or(&[]);
        let keys = p.keys(i);
        let (Some(o), Some(x), Some(kb)) = (
            orow.get_mut(keys.clone()),
            row.get(keys.clone()),
            kb.get(keys),
        ) else {
            continue;
        };
        for ((o, &av), &kj) in o.iter_mut().zip(x).zip(kb) {
            *o += factor * sc.get(kj as usize).copied().unwrap_or(0.0) * av;
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
        let total = p.omega_sum(a, h, self.eps);
        let t = p.t;
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
        let mut out = vec![0f32; a.len()];
        p.add_grad(a, h, self.eps, self.factor, &mut out);
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
