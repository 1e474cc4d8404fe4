//! One sequence through the native pass for a view (a capture, code lengths, generation):
//! every layer's attention and biased scores under its own bias (the dial's additive bias and
//! temperature, mode B's mixture, the rules' per-head bias), the queries, and the logits when
//! asked. The same arithmetic as the candle forward (`LocalistModel::forward`), without its
//! per-op tensors: a 64-token capture of the tiny model is a few dozen small products.
//!
//! Activations are kept feature-major, [features, T] ([`crate::model::native::cols`]): each
//! product is W·aᵀ with the weight as stored ([out, in]), which gemm reads without packing it,
//! and the residual stream accumulates the attention and MLP outputs in place.

use crate::model::config::Activation;
use crate::model::gelu::gelu_in_place;
use crate::model::native::cols::{bias_rows, layer_norm_cols, transpose};
use crate::model::native::forward::embed;
use crate::model::native::gemm::{weight_product_hooked, PartHook, View, ViewMut, SPLIT_WORK};
use crate::model::native::heads::{
    attend, with_kept_scratch, HeadScratch, HeadViews, HostBias, Values, KEEP_HEAD_CELLS,
};
use crate::model::native::params::{LayerRefs, ParamRefs};
use crate::model::native::NativeError;

/// What [`infer`] returns, per layer: attention and scores [H, T, T], queries [H, T, d_h];
/// logits [T, V]. A pass without logits (a view's) leaves them and each layer's queries empty.
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
    let layout = if want_logits {
        Logits::RowMajor
    } else {
        Logits::None
    };
    infer_with(p, cfg, ids, biases, layout)
}

/// [`infer`] with the logits left as the head's product makes them, feature-major [V, T]
/// (logit of token u at position i at `u·T + i`): a reader that goes over every position's
/// whole row at once (the recruitment buffer's code lengths) saves the transpose, 30% of the
/// logits' time at an 8,192-word vocabulary.
pub fn infer_feature_major(
    p: &ParamRefs<'_>,
    cfg: &crate::model::config::ModelConfig,
    ids: &[u32],
    biases: &[HostBias],
) -> Result<Inferred, NativeError> {
    infer_with(p, cfg, ids, biases, Logits::FeatureMajor)
}

/// Which logits a pass returns.
#[derive(Clone, Copy, PartialEq)]
enum Logits {
    None,
    RowMajor,
    FeatureMajor,
}

fn infer_with(
    p: &ParamRefs<'_>,
    cfg: &crate::model::config::ModelConfig,
    ids: &[u32],
    biases: &[HostBias],
    layout: Logits,
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
    let mut buf = Buffers::take(&sh);
    embed(p, sh.d, t, ids, &mut buf.a)?;
    transpose(&buf.a, t, sh.d, &mut buf.x);
    let mut out = Inferred::default();
    let layers = p.layers.len();
    for (l, (lp, bias)) in p.layers.iter().zip(biases).enumerate() {
        // Without logits nothing reads the last layer's output: its values, its heads'
        // attention·v, its projection and its MLP are left out.
        let read = layout != Logits::None || l + 1 < layers;
        let queries = layout != Logits::None;
        let (a, z, q) = attention_layer(lp, &sh, eps, (bias, read, queries), &mut buf)?;
        out.attention.push(a);
        out.scores.push(z);
        out.queries.push(q);
        if read {
            mlp_layer(lp, &sh, eps, cfg.activation, &mut buf)?;
        }
    }
    if layout != Logits::None {
        out.logits = logits(p, &sh, eps, &mut buf, layout == Logits::RowMajor)?;
    }
    buf.give_back();
    Ok(out)
}

/// Products of at least this many multiply-adds are cut over the pool's threads in a pass
/// whose partners are kept awake (the tiny model's 64-token products are 1–4 million).
const SPLIT_AWAKE: usize = 1 << 18;

/// dst = w · a + bias (`add`: dst += …), then `after` on each finished part: cut over the
/// pool's threads when the product is large enough for its pass, each part's bias and `after`
/// on the thread that computes it.
fn product(
    dst: &mut [f32],
    w: &[f32],
    k: usize,
    a: View<'_>,
    (bias, add): (&[f32], bool),
    after: &PartHook<'_>,
) -> Result<(), NativeError> {
    let min = if crate::model::native::awake::in_pass() {
        SPLIT_AWAKE
    } else {
        SPLIT_WORK
    };
    let t = a.cols();
    let before = |r0: usize, rows: &mut [f32]| {
        let b = bias.get(r0..).unwrap_or_default();
        bias_rows(rows, b, t, add);
    };
    weight_product_hooked(dst, w, k, a, min, (&before, after))
}

/// No work after a product.
fn nothing(_: usize, _: &mut [f32]) {}

/// Next-token logits from the last residual stream: [T, V] with `row_major`, else [V, T].
fn logits(
    p: &ParamRefs<'_>,
    sh: &Shape,
    eps: f32,
    b: &mut Buffers,
    row_major: bool,
) -> Result<Vec<f32>, NativeError> {
    let Shape { t, d, v, .. } = *sh;
    b.norm(p.ln_f_w, p.ln_f_b, eps, t);
    let head = if p.head_w.is_empty() { p.tok } else { p.head_w };
    let mut lt = vec![0f32; v * t];
    product(
        &mut lt,
        head,
        d,
        View::full(&b.a, d, t),
        (p.head_b, false),
        &nothing,
    )?;
    if !row_major {
        return Ok(lt);
    }
    let mut logits = vec![0f32; t * v];
    transpose(&lt, v, t, &mut logits);
    Ok(logits)
}

/// Scratch of one pass; activations are [features, T].
struct Buffers {
    /// T, d and f these were made for.
    shape: (usize, usize, usize),
    /// The residual stream [d, T].
    x: Vec<f32>,
    /// A LayerNorm's output [d, T] (also the embedding's row-major scratch).
    a: Vec<f32>,
    qkv: Vec<f32>,
    y: Vec<f32>,
    u: Vec<f32>,
    head: HeadScratch,
    /// LayerNorm's scratch [18, T].
    moments: Vec<f32>,
}

thread_local! {
    /// The last pass's scratch on this thread, kept for the next pass of the same shape (a
    /// capture per dial change would otherwise allocate and zero-fill it every time).
    static SCRATCH: std::cell::RefCell<Option<Buffers>> = const { std::cell::RefCell::new(None) };
}

/// Scratch larger than this (in floats) is not kept between passes.
const KEEP_SCRATCH: usize = 16 << 20;

impl Buffers {
    /// This thread's kept scratch when it was made for `sh`, else fresh scratch.
    fn take(sh: &Shape) -> Self {
        SCRATCH
            .with(|s| s.borrow_mut().take())
            .filter(|b| b.shape == (sh.t, sh.d, sh.f))
            .unwrap_or_else(|| Self::new(sh))
    }

    /// Keeps this scratch for the thread's next pass (when it is not too large).
    fn give_back(self) {
        let (t, d, f) = self.shape;
        if t * (4 * t + 6 * d + f + 18) <= KEEP_SCRATCH {
            SCRATCH.with(|s| *s.borrow_mut() = Some(self));
        }
    }

    fn new(sh: &Shape) -> Self {
        let (t, d) = (sh.t, sh.d);
        Self {
            shape: (t, d, sh.f),
            x: vec![0.0; t * d],
            a: vec![0.0; t * d],
            qkv: vec![0.0; t * 3 * d],
            y: vec![0.0; t * d],
            u: vec![0.0; t * sh.f],
            head: HeadScratch::new(t),
            moments: vec![0.0; 18 * t],
        }
    }

    /// a = LayerNorm(x), column by column.
    fn norm(&mut self, w: &[f32], b: &[f32], eps: f32, t: usize) {
        layer_norm_cols(&self.x, w, b, eps, t, &mut self.a, &mut self.moments);
    }
}

type LayerViews = (Vec<f32>, Vec<f32>, Vec<f32>);

/// One head's index and its slices: attention and scores [T, T], values out [d_h, T] and
/// queries [T, d_h].
type HeadSlices<'a> = (
    usize,
    (
        (&'a mut [f32], &'a mut [f32]),
        (&'a mut [f32], &'a mut [f32]),
    ),
);

/// Sequences up to this length run their heads side by side in a pass whose threads are awake
/// (each thread keeps one head's scratch, 3·T² floats).
const PARALLEL_HEADS_UP_TO: usize = 512;

/// x ← x + attention(LN1(x)); returns the layer's attention, scores and queries (empty
/// without `queries`). With `read` false nothing reads the layer's output: only its queries
/// and keys are made, and x is left as it was.
fn attention_layer(
    lp: &LayerRefs<'_>,
    sh: &Shape,
    eps: f32,
    (bias, read, queries): (&HostBias, bool, bool),
    b: &mut Buffers,
) -> Result<LayerViews, NativeError> {
    let Shape { t, d, h, dh, .. } = *sh;
    b.norm(lp.ln1_w, lp.ln1_b, eps, t);
    let a = View::full(&b.a, d, t);
    // The weight's rows are the queries', the keys' and the values' ([3d, d]).
    let rows = if read { 3 * d } else { 2 * d };
    let (w, dst) = (lp.qkv_w.get(..rows * d), b.qkv.get_mut(..rows * t));
    let (Some(w), Some(dst)) = (w, dst) else {
        return Err(NativeError::Shape(
            "a QKV weight smaller than its model".into(),
        ));
    };
    product(dst, w, d, a, (lp.qkv_b, false), &nothing)?;
    let (mut att, mut z, mut q) = (
        vec![0f32; h * t * t],
        vec![0f32; h * t * t],
        vec![0f32; if queries { h * t * dh } else { 0 }],
    );
    let qkv = &b.qkv;
    // One head: its scores, softmax and values into its own slices of the outputs.
    let one = |s: &mut HeadScratch, (hh, ((ah, zh), (yh, qh))): HeadSlices<'_>| {
        let views = HeadViews {
            q: View::rows(qkv, hh * dh * t, dh, t, t).t(),
            k: View::rows(qkv, (d + hh * dh) * t, dh, t, t),
            v: if read {
                Values::Features(View::rows(qkv, (2 * d + hh * dh) * t, dh, t, t))
            } else {
                Values::Unread
            },
            softcap: None,
        };
        attend(views, hh, (t, t), bias, s, ah, zh, ViewMut::full(yh, dh, t))?;
        if queries {
            let src = qkv.get(hh * dh * t..(hh + 1) * dh * t).unwrap_or_default();
            transpose(src, dh, t, qh);
        }
        Ok::<(), NativeError>(())
    };
    // Without queries each head's slice of them is empty.
    let q_heads = q
        .chunks_mut(t * dh)
        .chain(std::iter::repeat_with(|| &mut [][..]));
    let heads = att
        .chunks_mut(t * t)
        .zip(z.chunks_mut(t * t))
        .zip(b.y.chunks_mut(dh * t).zip(q_heads))
        .enumerate();
    if crate::model::native::awake::in_pass() && t <= PARALLEL_HEADS_UP_TO {
        // The heads side by side on a pass whose threads are awake (a 64-token capture at two
        // threads ran them all on one thread while the other waited), each thread on its kept
        // scratch.
        use rayon::prelude::*;
        let heads: Vec<_> = heads.collect();
        heads
            .into_par_iter()
            .try_for_each(|x| with_kept_scratch((t, t), KEEP_HEAD_CELLS, |s| one(s, x)))?;
    } else {
        for x in heads {
            one(&mut b.head, x)?;
        }
    }
    if read {
        let y = View::full(&b.y, d, t);
        product(&mut b.x, lp.proj_w, d, y, (lp.proj_b, true), &nothing)?;
    }
    Ok((att, z, q))
}

/// x ← x + MLP(LN2(x)).
fn mlp_layer(
    lp: &LayerRefs<'_>,
    sh: &Shape,
    eps: f32,
    act: Activation,
    b: &mut Buffers,
) -> Result<(), NativeError> {
    let Shape { t, d, f, .. } = *sh;
    b.norm(lp.ln2_w, lp.ln2_b, eps, t);
    let gelu = |_: usize, rows: &mut [f32]| gelu_in_place(rows);
    let relu = |_: usize, rows: &mut [f32]| rows.iter_mut().for_each(|g| *g = g.max(0.0));
    let act: &PartHook<'_> = match act {
        Activation::GeluTanh => &gelu,
        Activation::Relu => &relu,
    };
    // The hidden units with their activation, each part's on the thread that made it.
    product(
        &mut b.u,
        lp.fc1_w,
        d,
        View::full(&b.a, d, t),
        (lp.fc1_b, false),
        act,
    )?;
    let u = View::full(&b.u, f, t);
    product(&mut b.x, lp.fc2_w, f, u, (lp.fc2_b, true), &nothing)
}
