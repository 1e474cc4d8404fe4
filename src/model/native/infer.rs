//! One sequence through the native pass for a view (a capture, code lengths, generation):
//! every layer's attention and biased scores under its own bias (the dial's additive bias and
//! temperature, mode B's mixture, the rules' per-head bias), the queries, and the logits when
//! asked. The same arithmetic as the candle forward (`LocalistModel::forward`), without its
//! per-op tensors: a 64-token capture of the tiny model is a few dozen small products.

use crate::model::config::Activation;
use crate::model::fused::attention::biased_softmax_rows;
use crate::model::fused::layer_norm::layer_norm_rows;
use crate::model::gelu::gelu_bias_rows;
use crate::model::native::forward::{embed, fill_rows};
use crate::model::native::gemm::{add_residual, matmul, View, ViewMut};
use crate::model::native::params::{LayerRefs, ParamRefs};
use crate::model::native::NativeError;

/// One layer's bias for one sequence of T positions, as host data.
#[derive(Clone, Debug)]
pub struct HostBias {
    /// Additive bias [T, T] (−∞ on invisible keys).
    pub additive: Vec<f32>,
    /// Softmax temperature τ.
    pub tau: f32,
    /// Mode B: λ and the local-only bias [T, T].
    pub mixture: Option<(f32, Vec<f32>)>,
    /// Rules: a per-head bias [H, T, T] added before τ.
    pub extra: Option<Vec<f32>>,
}

/// What [`infer`] returns, per layer: attention and scores [H, T, T], queries [H, T, d_h];
/// logits [T, V] (empty when not asked for).
#[derive(Debug, Default)]
pub struct Inferred {
    /// Attention weights per layer.
    pub attention: Vec<Vec<f32>>,
    /// Biased scores z = q·kᵀ/√d_h + bias (+ rules), before τ, per layer.
    pub scores: Vec<Vec<f32>>,
    /// Queries per layer.
    pub queries: Vec<Vec<f32>>,
    /// Next-token logits.
    pub logits: Vec<f32>,
}

/// Sizes of one inference pass.
#[derive(Clone, Copy)]
struct Shape {
    t: usize,
    d: usize,
    h: usize,
    dh: usize,
    f: usize,
    v: usize,
}

/// The forward pass of `ids` under one bias per layer.
pub fn infer(
    p: &ParamRefs<'_>,
    cfg: &crate::model::config::ModelConfig,
    ids: &[u32],
    biases: &[HostBias],
    want_logits: bool,
) -> Result<Inferred, NativeError> {
    let t = ids.len();
    let sh = Shape {
        t,
        d: cfg.d_model,
        h: cfg.num_heads,
        dh: cfg.head_dim(),
        f: cfg.mlp_ratio * cfg.d_model,
        v: cfg.vocab_size,
    };
    if t > cfg.max_seq_len || biases.len() != cfg.num_layers {
        return Err(NativeError::Shape(format!(
            "{t} tokens and {} layer biases for a model of {} positions and {} layers",
            biases.len(),
            cfg.max_seq_len,
            cfg.num_layers
        )));
    }
    let eps = cfg.layer_norm_eps as f32;
    let mut x = vec![0f32; t * sh.d];
    embed(p, sh.d, t, ids, &mut x)?;
    let mut out = Inferred::default();
    let mut buf = Buffers::new(&sh);
    for (lp, bias) in p.layers.iter().zip(biases) {
        let (a, z, q) = attention_layer(lp, &sh, eps, bias, &mut x, &mut buf)?;
        out.attention.push(a);
        out.scores.push(z);
        out.queries.push(q);
        mlp_layer(lp, &sh, eps, cfg.activation, &mut x, &mut buf)?;
    }
    if want_logits {
        layer_norm_rows(&x, p.ln_f_w, p.ln_f_b, eps, sh.d, &mut buf.a);
        let head = if p.head_w.is_empty() { p.tok } else { p.head_w };
        out.logits = vec![0f32; t * sh.v];
        fill_rows(&mut out.logits, p.head_b);
        matmul(
            ViewMut::full(&mut out.logits, t, sh.v),
            View::full(&buf.a, t, sh.d),
            View::full(head, sh.v, sh.d).t(),
            true,
        )?;
    }
    Ok(out)
}

/// Scratch of one pass.
struct Buffers {
    a: Vec<f32>,
    qkv: Vec<f32>,
    y: Vec<f32>,
    o: Vec<f32>,
    u: Vec<f32>,
    g: Vec<f32>,
    raw: Vec<f32>,
    bias: Vec<f32>,
    zrow: Vec<f32>,
    local: Vec<f32>,
}

impl Buffers {
    fn new(sh: &Shape) -> Self {
        let (t, d) = (sh.t, sh.d);
        Self {
            a: vec![0.0; t * d],
            qkv: vec![0.0; t * 3 * d],
            y: vec![0.0; t * d],
            o: vec![0.0; t * d],
            u: vec![0.0; t * sh.f],
            g: vec![0.0; t * sh.f],
            raw: vec![0.0; t * t],
            bias: vec![0.0; t * t],
            zrow: vec![0.0; t],
            local: vec![0.0; t * t],
        }
    }
}

type LayerViews = (Vec<f32>, Vec<f32>, Vec<f32>);

/// x ← x + attention(LN1(x)); returns the layer's attention, scores and queries.
fn attention_layer(
    lp: &LayerRefs<'_>,
    sh: &Shape,
    eps: f32,
    bias: &HostBias,
    x: &mut [f32],
    b: &mut Buffers,
) -> Result<LayerViews, NativeError> {
    let Shape { t, d, h, dh, .. } = *sh;
    layer_norm_rows(x, lp.ln1_w, lp.ln1_b, eps, d, &mut b.a);
    fill_rows(&mut b.qkv, lp.qkv_b);
    matmul(
        ViewMut::full(&mut b.qkv, t, 3 * d),
        View::full(&b.a, t, d),
        View::full(lp.qkv_w, 3 * d, d).t(),
        true,
    )?;
    let (mut att, mut z, mut q) = (
        vec![0f32; h * t * t],
        vec![0f32; h * t * t],
        vec![0f32; h * t * dh],
    );
    let scale = 1.0 / (dh as f32).sqrt();
    for hh in 0..h {
        let qv = View::rows(&b.qkv, hh * dh, t, dh, 3 * d);
        let kv = View::rows(&b.qkv, d + hh * dh, t, dh, 3 * d);
        let vv = View::rows(&b.qkv, 2 * d + hh * dh, t, dh, 3 * d);
        matmul(ViewMut::full(&mut b.raw, t, t), qv, kv.t(), false)?;
        let extra = bias
            .extra
            .as_ref()
            .and_then(|e| e.get(hh * t * t..(hh + 1) * t * t));
        let combine = |base: &[f32], out: &mut [f32]| match extra {
            Some(e) => out
                .iter_mut()
                .zip(base)
                .zip(e)
                .for_each(|((o, a), x)| *o = a + x),
            None => out.copy_from_slice(base.get(..out.len()).unwrap_or(&[])),
        };
        combine(&bias.additive, &mut b.bias);
        let range = hh * t * t..(hh + 1) * t * t;
        let (Some(ah), Some(zh)) = (att.get_mut(range.clone()), z.get_mut(range)) else {
            return Err(NativeError::Shape("attention buffer".into()));
        };
        for ((zo, r), bv) in zh.iter_mut().zip(&b.raw).zip(&b.bias) {
            *zo = r * scale + bv;
        }
        biased_softmax_rows(&b.raw, &b.bias, t, scale, bias.tau, &mut b.zrow, ah);
        if let Some((lam, local)) = &bias.mixture {
            let mut mixed = vec![0f32; t * t];
            combine(local, &mut b.local);
            biased_softmax_rows(
                &b.raw,
                &b.local,
                t,
                scale,
                bias.tau,
                &mut b.zrow,
                &mut mixed,
            );
            for (a, m) in ah.iter_mut().zip(&mixed) {
                *a = *a * (1.0 - lam) + m * lam;
            }
        }
        matmul(
            ViewMut::rows(&mut b.y, hh * dh, t, dh, d),
            View::full(ah, t, t),
            vv,
            false,
        )?;
        for (r, row) in q.chunks_mut(dh).skip(hh * t).take(t).enumerate() {
            if let Some(src) = b.qkv.get(r * 3 * d + hh * dh..r * 3 * d + (hh + 1) * dh) {
                row.copy_from_slice(src);
            }
        }
    }
    matmul(
        ViewMut::full(&mut b.o, t, d),
        View::full(&b.y, t, d),
        View::full(lp.proj_w, d, d).t(),
        false,
    )?;
    add_residual(&mut b.o, x, lp.proj_b);
    x.copy_from_slice(&b.o);
    Ok((att, z, q))
}

/// x ← x + MLP(LN2(x)).
fn mlp_layer(
    lp: &LayerRefs<'_>,
    sh: &Shape,
    eps: f32,
    act: Activation,
    x: &mut [f32],
    b: &mut Buffers,
) -> Result<(), NativeError> {
    let Shape { t, d, f, .. } = *sh;
    layer_norm_rows(x, lp.ln2_w, lp.ln2_b, eps, d, &mut b.a);
    matmul(
        ViewMut::full(&mut b.u, t, f),
        View::full(&b.a, t, d),
        View::full(lp.fc1_w, f, d).t(),
        false,
    )?;
    match act {
        Activation::GeluTanh => gelu_bias_rows(&b.u, lp.fc1_b, &mut b.g),
        Activation::Relu => {
            for (ur, gr) in b.u.chunks(f).zip(b.g.chunks_mut(f)) {
                for ((g, x), bias) in gr.iter_mut().zip(ur).zip(lp.fc1_b) {
                    *g = (x + bias).max(0.0);
                }
            }
        }
    }
    matmul(
        ViewMut::full(&mut b.o, t, d),
        View::full(&b.g, t, f),
        View::full(lp.fc2_w, d, f).t(),
        false,
    )?;
    add_residual(&mut b.o, x, lp.fc2_b);
    x.copy_from_slice(&b.o);
    Ok(())
}
