//! The native forward pass: embeddings, pre-LN blocks, final LayerNorm, head and
//! cross-entropy, every activation the backward pass needs kept in the [`Workspace`]. The
//! arithmetic is the candle path's (the same fused row kernels), so the two agree to float
//! rounding.

use crate::model::config::Activation;
use crate::model::fused::attention::biased_softmax_rows;
use crate::model::fused::layer_norm::layer_norm_rows;
use crate::model::gelu::gelu_bias_rows_with_slope;
use crate::model::native::causal::{self, Dst};
use crate::model::native::gemm::{add_residual, matmul, View, ViewMut};
use crate::model::native::params::{LayerRefs, ParamRefs};
use crate::model::native::workspace::{Dims, LayerActs, Workspace};
use crate::model::native::{NativeBatch, NativeError};

/// Runs the forward pass of `batch` into `ws`; returns the mean cross-entropy (nats) and
/// leaves the softmax of the logits in `ws.probs`.
pub fn forward(
    p: &ParamRefs<'_>,
    act: Activation,
    eps: f32,
    ws: &mut Workspace,
    batch: &NativeBatch<'_>,
) -> Result<f64, NativeError> {
    let dims = ws.dims;
    batch.check(&dims)?;
    let first = match ws.layers.first_mut() {
        Some(l) => &mut l.hin,
        None => &mut ws.h_last,
    };
    embed(p, dims.d, dims.t, batch.ids, first)?;
    for l in 0..dims.layers {
        let (cur, rest) = ws.layers.split_at_mut(l + 1);
        let (Some(acts), Some(lp)) = (cur.last_mut(), p.layers.get(l)) else {
            return Err(NativeError::Shape(format!("layer {l} is missing")));
        };
        let out = match rest.first_mut() {
            Some(next) => &mut next.hin,
            None => &mut ws.h_last,
        };
        attention_block(lp, &dims, eps, batch, acts, &mut ws.scores, &mut ws.z)?;
        mlp_block(lp, &dims, act, eps, acts, &mut ws.du, out)?;
    }
    layer_norm_rows(&ws.h_last, p.ln_f_w, p.ln_f_b, eps, dims.d, &mut ws.af);
    let head = if p.head_w.is_empty() {
        &p.tok
    } else {
        &p.head_w
    };
    matmul(
        ViewMut::full(&mut ws.probs, dims.n(), dims.v),
        View::full(&ws.af, dims.n(), dims.d),
        View::full(head, dims.v, dims.d).t(),
        false,
    )?;
    cross_entropy(&mut ws.probs, p.head_b, batch.targets)
}

/// h₀ = tok[x] + pos[i mod T] for rows of sequences of `t` positions.
pub(crate) fn embed(
    p: &ParamRefs<'_>,
    d: usize,
    t: usize,
    ids: &[u32],
    h: &mut [f32],
) -> Result<(), NativeError> {
    for (r, (row, &id)) in h.chunks_mut(d).zip(ids).enumerate() {
        let tok = p.tok.get(id as usize * d..(id as usize + 1) * d);
        let pos = p.pos.get((r % t) * d..(r % t + 1) * d);
        let (Some(tok), Some(pos)) = (tok, pos) else {
            return Err(NativeError::Input(format!(
                "token id {id} is outside the vocabulary of {}",
                p.tok.len() / d.max(1)
            )));
        };
        for ((o, a), b) in row.iter_mut().zip(tok).zip(pos) {
            *o = a + b;
        }
    }
    Ok(())
}

crate::model::fused::simd::simd_dispatch! {
    /// Every row of `x` set to `bias` (a product then accumulates onto it).
    pub(crate) fn fill_rows => fill_rows_any(x: &mut [f32], bias: &[f32])
}

crate::model::fused::simd::simd_dispatch! {
    /// Mean cross-entropy of logit rows (the head's bias added first) against `targets`
    /// (None: a target outside the vocabulary); each row becomes its softmax.
    fn cross_entropy_rows => cross_entropy_any(logits: &mut [f32], bias: &[f32], targets: &[u32]) -> Option<f64>
}

#[inline(always)]
fn fill_rows_any(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_mut(bias.len().max(1)) {
        for (o, b) in row.iter_mut().zip(bias) {
            *o = *b;
        }
    }
}

/// LayerNorm 1, q|k|v, every head's biased softmax and values, the projection and the
/// residual: acts.hin → acts.hmid.
fn attention_block(
    lp: &LayerRefs<'_>,
    dims: &Dims,
    eps: f32,
    batch: &NativeBatch<'_>,
    acts: &mut LayerActs,
    scores: &mut [f32],
    z: &mut [f32],
) -> Result<(), NativeError> {
    let Dims { b, t, d, h, dh, .. } = *dims;
    let n = dims.n();
    layer_norm_rows(&acts.hin, lp.ln1_w, lp.ln1_b, eps, d, &mut acts.a1);
    fill_rows(&mut acts.qkv, lp.qkv_b);
    matmul(
        ViewMut::full(&mut acts.qkv, n, 3 * d),
        View::full(&acts.a1, n, d),
        View::full(lp.qkv_w, 3 * d, d).t(),
        true,
    )?;
    let scale = 1.0 / (dh as f32).sqrt();
    for bi in 0..b {
        let bias = batch.bias.get(bi * t * t..(bi + 1) * t * t).unwrap_or(&[]);
        let blocks = causal::blocks(bias, t);
        for hh in 0..h {
            let row0 = bi * t * 3 * d;
            let q = View::rows(&acts.qkv, row0 + hh * dh, t, dh, 3 * d);
            let k = View::rows(&acts.qkv, row0 + d + hh * dh, t, dh, 3 * d);
            let v = View::rows(&acts.qkv, row0 + 2 * d + hh * dh, t, dh, 3 * d);
            let mut sd = Dst {
                data: scores,
                off: 0,
                ld: t,
            };
            causal::square(&mut sd, q, k, false, blocks)?;
            let m = (bi * h + hh) * t * t;
            let Some(a) = acts.att.get_mut(m..m + t * t) else {
                return Err(NativeError::Shape("attention buffer".into()));
            };
            biased_softmax_rows(scores, bias, t, scale, batch.tau, z, a);
            let mut yd = Dst {
                data: &mut acts.y,
                off: bi * t * d + hh * dh,
                ld: d,
            };
            causal::lower(&mut yd, View::full(a, t, t), v, blocks)?;
        }
    }
    matmul(
        ViewMut::full(&mut acts.hmid, n, d),
        View::full(&acts.y, n, d),
        View::full(lp.proj_w, d, d).t(),
        false,
    )?;
    add_residual(&mut acts.hmid, &acts.hin, lp.proj_b);
    Ok(())
}

/// LayerNorm 2, the MLP and the residual: acts.hmid → out.
fn mlp_block(
    lp: &LayerRefs<'_>,
    dims: &Dims,
    act: Activation,
    eps: f32,
    acts: &mut LayerActs,
    u: &mut [f32],
    out: &mut [f32],
) -> Result<(), NativeError> {
    let (n, d, f) = (dims.n(), dims.d, dims.f);
    layer_norm_rows(&acts.hmid, lp.ln2_w, lp.ln2_b, eps, d, &mut acts.a2);
    // u = a2·W1ᵀ, its bias added by the activation's pass (the backward reads only the slope).
    matmul(
        ViewMut::full(u, n, f),
        View::full(&acts.a2, n, d),
        View::full(lp.fc1_w, f, d).t(),
        false,
    )?;
    match act {
        Activation::GeluTanh => {
            gelu_bias_rows_with_slope(u, lp.fc1_b, &mut acts.g, &mut acts.slope)
        }
        Activation::Relu => {
            let rows = u
                .chunks(f)
                .zip(acts.g.chunks_mut(f))
                .zip(acts.slope.chunks_mut(f));
            for ((ur, gr), sr) in rows {
                for (((g, s), x), b) in gr
                    .iter_mut()
                    .zip(sr.iter_mut())
                    .zip(ur.iter())
                    .zip(lp.fc1_b)
                {
                    let v = x + b;
                    *g = v.max(0.0);
                    *s = f32::from(u8::from(v > 0.0));
                }
            }
        }
    }
    matmul(
        ViewMut::full(out, n, d),
        View::full(&acts.g, n, f),
        View::full(lp.fc2_w, d, f).t(),
        false,
    )?;
    add_residual(out, &acts.hmid, lp.fc2_b);
    Ok(())
}

/// [`cross_entropy_rows`], with an error naming a target outside the vocabulary.
fn cross_entropy(logits: &mut [f32], bias: &[f32], targets: &[u32]) -> Result<f64, NativeError> {
    let v = bias.len();
    cross_entropy_rows(logits, bias, targets).ok_or_else(|| {
        let bad = targets
            .iter()
            .find(|&&y| y as usize >= v)
            .copied()
            .unwrap_or(0);
        NativeError::Input(format!("target id {bad} is outside the vocabulary of {v}"))
    })
}

#[inline(always)]
fn cross_entropy_any(logits: &mut [f32], bias: &[f32], targets: &[u32]) -> Option<f64> {
    let v = bias.len();
    let mut total = 0f64;
    let rows = logits.len() / v.max(1);
    for (row, &y) in logits.chunks_mut(v.max(1)).zip(targets) {
        for (x, b) in row.iter_mut().zip(bias) {
            *x += b;
        }
        let max = crate::model::fused::simd::max_lanes(row);
        let picked = *row.get(y as usize)?;
        let sum = crate::model::fused::exp::exp_in_place(row, max);
        total += f64::from(sum.ln() + max - picked);
        let inv = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inv;
        }
    }
    Some(total / rows.max(1) as f64)
}
