//! The native backward pass of [`super::forward`]: the gradient of
//! `ce_weight`·CE + Σ_l term_l(attention_l) with respect to every parameter, each weight's
//! gradient written by one product (no zero-fill, no per-op tensors) and the attention term's
//! gradient added where the softmax's backward reads it.

use crate::model::fused::attention::softmax_grad_rows;
use crate::model::fused::layer_norm::layer_norm_grad_rows;
use crate::model::native::causal::{self, Dst};
use crate::model::native::gemm::{column_sums, matmul, mul_rows, View, ViewMut};
use crate::model::native::params::{LayerRefs, LayerSet, ParamRefs, ParamSet};
use crate::model::native::workspace::{Dims, LayerActs, Workspace};
use crate::model::native::{AttentionTerm, NativeBatch, NativeError};

/// Gradients into `grads` (every vector overwritten) after [`super::forward`] ran on the same
/// `ws` and `batch`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    p: &ParamRefs<'_>,
    eps: f32,
    ws: &mut Workspace,
    batch: &NativeBatch<'_>,
    ce_weight: f32,
    term: Option<&dyn AttentionTerm>,
    grads: &mut ParamSet,
) -> Result<(), NativeError> {
    let dims = ws.dims;
    let (n, d, v) = (dims.n(), dims.d, dims.v);
    // dCE/dlogits = (softmax − onehot)/N, times the weight of the term.
    let scale = ce_weight / n.max(1) as f32;
    for (row, &y) in ws.probs.chunks_mut(v).zip(batch.targets) {
        if let Some(x) = row.get_mut(y as usize) {
            *x -= 1.0;
        }
        for x in row.iter_mut() {
            *x *= scale;
        }
    }
    let tied = p.head_w.is_empty();
    let head = if tied { &p.tok } else { &p.head_w };
    column_sums(&ws.probs, v, &mut grads.head_b);
    // A tied head's gradient is the first written into tok (the embedding's is added later).
    if !tied {
        grads.tok.fill(0.0);
    }
    let dhead = if tied {
        &mut grads.tok
    } else {
        &mut grads.head_w
    };
    matmul(
        ViewMut::full(dhead, v, d),
        View::full(&ws.probs, n, v).t(),
        View::full(&ws.af, n, d),
        false,
    )?;
    matmul(
        ViewMut::full(&mut ws.da, n, d),
        View::full(&ws.probs, n, v),
        View::full(head, v, d),
        false,
    )?;
    ws.dh.fill(0.0);
    grads.ln_f_w.fill(0.0);
    grads.ln_f_b.fill(0.0);
    layer_norm_grad_rows(
        &ws.h_last,
        p.ln_f_w,
        &ws.da,
        eps,
        d,
        &mut ws.dh,
        &mut grads.ln_f_w,
        &mut grads.ln_f_b,
    );
    for l in (0..dims.layers).rev() {
        let (Some(lp), Some(acts), Some(lg)) =
            (p.layers.get(l), ws.layers.get(l), grads.layers.get_mut(l))
        else {
            return Err(NativeError::Shape(format!("layer {l} is missing")));
        };
        let mut bufs = Scratch {
            dh: &mut ws.dh,
            da: &mut ws.da,
            dy: &mut ws.dy,
            dqkv: &mut ws.dqkv,
            du: &mut ws.du,
            datt: &mut ws.datt,
            scores: &mut ws.scores,
        };
        mlp_backward(lp, &dims, eps, acts, lg, &mut bufs)?;
        attention_backward(lp, &dims, eps, batch, acts, l, term, lg, &mut bufs)?;
    }
    embed_backward(&dims, batch, &ws.dh, grads)
}

/// The backward pass's scratch buffers, borrowed from the workspace.
struct Scratch<'a> {
    dh: &'a mut [f32],
    da: &'a mut [f32],
    dy: &'a mut [f32],
    dqkv: &'a mut [f32],
    du: &'a mut [f32],
    datt: &'a mut [f32],
    scores: &'a mut [f32],
}

/// dh (gradient of the layer's output) → dh (gradient of hmid), MLP gradients into `lg`.
fn mlp_backward(
    lp: &LayerRefs<'_>,
    dims: &Dims,
    eps: f32,
    acts: &LayerActs,
    lg: &mut LayerSet,
    s: &mut Scratch<'_>,
) -> Result<(), NativeError> {
    let (n, d, f) = (dims.n(), dims.d, dims.f);
    column_sums(s.dh, d, &mut lg.fc2_b);
    matmul(
        ViewMut::full(&mut lg.fc2_w, d, f),
        View::full(s.dh, n, d).t(),
        View::full(&acts.g, n, f),
        false,
    )?;
    matmul(
        ViewMut::full(s.du, n, f),
        View::full(s.dh, n, d),
        View::full(lp.fc2_w, d, f),
        false,
    )?;
    mul_rows(s.du, &acts.slope);
    column_sums(s.du, f, &mut lg.fc1_b);
    matmul(
        ViewMut::full(&mut lg.fc1_w, f, d),
        View::full(s.du, n, f).t(),
        View::full(&acts.a2, n, d),
        false,
    )?;
    matmul(
        ViewMut::full(s.da, n, d),
        View::full(s.du, n, f),
        View::full(lp.fc1_w, f, d),
        false,
    )?;
    lg.ln2_w.fill(0.0);
    lg.ln2_b.fill(0.0);
    layer_norm_grad_rows(
        &acts.hmid,
        lp.ln2_w,
        s.da,
        eps,
        d,
        s.dh,
        &mut lg.ln2_w,
        &mut lg.ln2_b,
    );
    Ok(())
}

/// dh (gradient of hmid) → dh (gradient of the layer's input), attention gradients into `lg`.
#[allow(clippy::too_many_arguments)]
fn attention_backward(
    lp: &LayerRefs<'_>,
    dims: &Dims,
    eps: f32,
    batch: &NativeBatch<'_>,
    acts: &LayerActs,
    layer: usize,
    term: Option<&dyn AttentionTerm>,
    lg: &mut LayerSet,
    s: &mut Scratch<'_>,
) -> Result<(), NativeError> {
    let (n, d, h) = (dims.n(), dims.d, dims.h);
    column_sums(s.dh, d, &mut lg.proj_b);
    matmul(
        ViewMut::full(&mut lg.proj_w, d, d),
        View::full(s.dh, n, d).t(),
        View::full(&acts.y, n, d),
        false,
    )?;
    matmul(
        ViewMut::full(s.dy, n, d),
        View::full(s.dh, n, d),
        View::full(lp.proj_w, d, d),
        false,
    )?;
    let with_term = match term {
        Some(term) => {
            s.datt.fill(0.0);
            term.add_grad(layer, &acts.att, h, s.datt);
            true
        }
        None => false,
    };
    let factor = 1.0 / ((dims.dh as f32).sqrt() * batch.tau);
    let t = dims.t;
    for bi in 0..dims.b {
        let bias = batch.bias.get(bi * t * t..(bi + 1) * t * t).unwrap_or(&[]);
        let blocks = causal::blocks(bias, t);
        for hh in 0..dims.h {
            head_backward(dims, acts, (bi, hh, blocks), factor, with_term, s)?;
        }
    }
    if let Some(term) = term {
        term.add_query_grad(layer, s.dqkv);
    }
    column_sums(s.dqkv, 3 * d, &mut lg.qkv_b);
    matmul(
        ViewMut::full(&mut lg.qkv_w, 3 * d, d),
        View::full(s.dqkv, n, 3 * d).t(),
        View::full(&acts.a1, n, d),
        false,
    )?;
    matmul(
        ViewMut::full(s.da, n, d),
        View::full(s.dqkv, n, 3 * d),
        View::full(lp.qkv_w, 3 * d, d),
        false,
    )?;
    lg.ln1_w.fill(0.0);
    lg.ln1_b.fill(0.0);
    layer_norm_grad_rows(
        &acts.hin,
        lp.ln1_w,
        s.da,
        eps,
        d,
        s.dh,
        &mut lg.ln1_w,
        &mut lg.ln1_b,
    );
    Ok(())
}

/// One head of one sequence: the gradients of its values, queries and keys (into dqkv) from
/// the attention output's gradient (dy) and the attention term's gradient already in datt
/// (`with_term`), through the softmax (`factor` = 1/(√d_h·τ)). `at` is (sequence, head, the
/// causal row blocks of [`causal::blocks`]).
fn head_backward(
    dims: &Dims,
    acts: &LayerActs,
    at: (usize, usize, Option<usize>),
    factor: f32,
    with_term: bool,
    s: &mut Scratch<'_>,
) -> Result<(), NativeError> {
    let Dims { t, d, h, dh, .. } = *dims;
    let (bi, hh, blocks) = at;
    let row0 = bi * t * 3 * d;
    let m = (bi * h + hh) * t * t;
    let a = View::rows(&acts.att, m, t, t, t);
    let dyh = View::rows(s.dy, bi * t * d + hh * dh, t, dh, d);
    let v = View::rows(&acts.qkv, row0 + 2 * d + hh * dh, t, dh, 3 * d);
    let q = View::rows(&acts.qkv, row0 + hh * dh, t, dh, 3 * d);
    let k = View::rows(&acts.qkv, row0 + d + hh * dh, t, dh, 3 * d);
    let Some(da) = s.datt.get_mut(m..m + t * t) else {
        return Err(NativeError::Shape("attention gradient buffer".into()));
    };
    let mut dad = Dst {
        data: da,
        off: 0,
        ld: t,
    };
    causal::square(&mut dad, dyh, v, with_term, blocks)?;
    let mut dqkv = Dst {
        data: s.dqkv,
        off: row0 + 2 * d + hh * dh,
        ld: 3 * d,
    };
    // dv = Aᵀ·dy, then dq = dS·k and dk = dSᵀ·q, each into its columns of dqkv.
    causal::lower_t(&mut dqkv, a, dyh, blocks)?;
    let att = acts.att.get(m..m + t * t).unwrap_or(&[]);
    softmax_grad_rows(att, da, t, factor, s.scores);
    let ds = View::full(s.scores, t, t);
    dqkv.off = row0 + hh * dh;
    causal::lower(&mut dqkv, ds, k, blocks)?;
    dqkv.off = row0 + d + hh * dh;
    causal::lower_t(&mut dqkv, ds, q, blocks)
}

/// Token embeddings gather rows, so their gradient scatters them back (added to what the
/// tied head left there); positions sum over the batch.
fn embed_backward(
    dims: &Dims,
    batch: &NativeBatch<'_>,
    dh: &[f32],
    grads: &mut ParamSet,
) -> Result<(), NativeError> {
    let (d, t) = (dims.d, dims.t);
    grads.pos.fill(0.0);
    for (r, (row, &id)) in dh.chunks(d).zip(batch.ids).enumerate() {
        let Some(tok) = grads.tok.get_mut(id as usize * d..(id as usize + 1) * d) else {
            return Err(NativeError::Input(format!(
                "token id {id} is outside the vocabulary"
            )));
        };
        for (g, x) in tok.iter_mut().zip(row) {
            *g += x;
        }
        if let Some(pos) = grads.pos.get_mut((r % t) * d..(r % t + 1) * d) {
            for (g, x) in pos.iter_mut().zip(row) {
                *g += x;
            }
        }
    }
    Ok(())
}
