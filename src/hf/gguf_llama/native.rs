//! The view forward of a LLaMA-family decoder on the CPU without candle's per-op tensors: one
//! sequence (no KV cache) under one bias per layer, every layer's attention and biased scores,
//! and the logits when asked. The studio's captures of SmolLM2 take this path on a dial change.
//!
//! Activations are feature-major, [features, T], as in our own model's view pass
//! ([`crate::model::native::infer`]): each projection is W·xᵀ with W as the file stores it,
//! which gemm reads without packing; RoPE rotates pairs of rows; heads are read in place; the
//! residual stream accumulates the attention and MLP outputs. The arithmetic is candle's
//! (`GgufLlama::forward_candle`), checked against it in `tests/native_llama.rs`.

use candle_core::Tensor;

pub(super) use crate::hf::gguf_llama::native_cols::embed;
use crate::hf::gguf_llama::native_cols::rope;
use crate::hf::gguf_llama::native_fast::FastWeights;
use crate::hf::gguf_llama::native_layer::layer_tensors;
pub(super) use crate::hf::gguf_llama::native_layer::{
    layer_slices, Buffers, LayerSlices, Shape, W,
};
use crate::hf::gguf_llama::GgufLlama;
use crate::model::attention::AttentionBias;
use crate::model::native::cols::{bias_rows, rms_norm_cols, silu_mul, transpose};
use crate::model::native::gemm::{weight_product, View, ViewMut};
use crate::model::native::heads::{
    attend, with_kept_scratch, HeadScratch, HeadViews, HostBias, Values, KEEP_HEAD_CELLS,
};
use crate::model::native_view::host_bias;
use crate::model::transformer::{ForwardOutput, ModelError};

/// One head's share of a layer's outputs: its index, attention and scores [T, T], and its
/// rows of the attention output [d_h, T].
type HeadOut<'a> = (usize, ((&'a mut [f32], &'a mut [f32]), &'a mut [f32]));

impl GgufLlama {
    /// The native view forward of `ids` under `biases` (one per layer; none: the plain model
    /// under the causal mask), or None where it does not apply (another device, weights not
    /// f32): the caller then runs candle's forward ([`GgufLlama::forward_candle`]).
    pub fn forward_native(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
        logits: bool,
    ) -> Option<Result<ForwardOutput, ModelError>> {
        self.forward_native_in(ids, biases, (keep_scores, logits), None)
    }

    /// [`forward_native`](Self::forward_native) (`keep_scores`, `logits`), its weight products
    /// in bf16 when `fast` is given (a preview: see [`super::native_fast`]).
    pub(super) fn forward_native_in(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        (keep_scores, logits): (bool, bool),
        fast: Option<&FastWeights>,
    ) -> Option<Result<ForwardOutput, ModelError>> {
        let c = &self.config;
        let plain = biases.is_empty();
        // Gemma's and OLMo 2's differences are in the exact pass, not the bf16 preview; Gemma
        // 2's soft caps in candle's passes only.
        if !self.device.is_cpu()
            || !(plain || biases.len() == c.layers)
            || ids.is_empty()
            || !c.native_view()
            || (c.candle_only() && fast.is_some())
        {
            return None;
        }
        let t = ids.len();
        if t > c.context {
            return Some(Err(ModelError::TooLong(t, c.context)));
        }
        crate::model::native::awake::with_pool_awake(|| {
            self.with_weights(|w, starts| {
                self.run(ids, biases, (keep_scores, logits), (w, starts), fast)
            })
        })
    }

    /// `f` over the weights' f32 slices, as `[embed, out_norm, head, layer 0's (see
    /// [`LayerSlices`]), layer 1's, ...]`, with each layer's first index; None when a weight
    /// is not f32 on the CPU.
    pub(super) fn with_weights<R>(&self, f: impl FnOnce(&[&[f32]], &[usize]) -> R) -> Option<R> {
        let mut tensors: Vec<&Tensor> = vec![&self.embed, &self.out_norm, self.head.w()];
        let mut starts = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            starts.push(tensors.len());
            tensors.extend(layer_tensors(l));
        }
        let guards: Vec<_> = tensors.iter().map(|t| t.storage_and_layout()).collect();
        let mut slices = Vec::with_capacity(guards.len());
        for (storage, layout) in &guards {
            let candle_core::Storage::Cpu(cpu) = &**storage else {
                return None;
            };
            slices.push(crate::model::fused::slice(cpu, layout, "weights").ok()?);
        }
        Some(f(&slices, &starts))
    }

    /// The sizes of a pass over `t` positions.
    pub(super) fn shape(&self, t: usize) -> Shape {
        let c = &self.config;
        Shape {
            t,
            d: c.d_model,
            h: c.heads,
            kvh: c.kv_heads.max(1),
            dh: c.head_dim,
            qd: c.q_width(),
            f: c.ff,
            eps: c.rms_eps as f32,
            pre_norm: c.pre_norms(),
            gelu: c.gemma.is_some(),
            q_scale: (c.score_scale() * (c.head_dim as f64).sqrt()) as f32,
        }
    }

    /// [`forward_native`](Self::forward_native) over the weights' slices.
    fn run(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        (keep_scores, want_logits): (bool, bool),
        (w, starts): (&[&[f32]], &[usize]),
        fast: Option<&FastWeights>,
    ) -> Result<ForwardOutput, ModelError> {
        let c = &self.config;
        let sh = self.shape(ids.len());
        let t = sh.t;
        // No biases: the plain model, under the causal mask.
        let host: Vec<HostBias> = if biases.is_empty() {
            let causal = HostBias {
                additive: crate::model::dial::causal_bias(t),
                tau: 1.0,
                mixture: None,
                extra: None,
            };
            vec![causal; c.layers]
        } else {
            biases
                .iter()
                .map(|b| host_bias(b, t, sh.h))
                .collect::<Result<_, _>>()?
        };
        let get = |i: usize| w.get(i).copied().unwrap_or_default();
        let mut b = Buffers::new(&sh, HeadScratch::new(t));
        embed(get(0), ids, sh.d, &mut b.a)?;
        transpose(&b.a, t, sh.d, &mut b.x);
        if let Some(g) = &c.gemma {
            let s = g.embed_scale as f32;
            b.x.iter_mut().for_each(|v| *v *= s);
        }
        let (cos, sin) = self.rope_cols(t);
        // Gemma 3's sliding layers turn RoPE at a base of their own.
        let local = (0..c.layers)
            .find_map(|l| c.local_base(l))
            .map(|base| self.rope_cols_at(t, c.rope_inv_freq_at(base)));
        let (mut attention, mut scores) = (Vec::new(), Vec::new());
        let layers = host.iter().zip(starts).zip(&self.layers).enumerate();
        for (l, ((bias, &start), layer)) in layers {
            let lw = layer_slices(w, start, layer, fast.and_then(|f| f.layer(l)));
            // Without logits nothing reads the last layer's output: its attention is all.
            let out = want_logits || l + 1 < self.layers.len();
            let tables = match (&local, c.local_base(l)) {
                (Some((lc, ls)), Some(_)) => (lc.as_slice(), ls.as_slice()),
                _ => (cos.as_slice(), sin.as_slice()),
            };
            let (a, z) = attention_layer(&lw, &sh, bias, (tables, c.rope_half, out), &mut b)?;
            if out {
                mlp_layer(&lw, &sh, &mut b)?;
            }
            let dev = &self.device;
            attention.push(Tensor::from_vec(a, (1, sh.h, t, t), dev)?);
            if keep_scores {
                scores.push(Tensor::from_vec(z, (1, sh.h, t, t), dev)?);
            }
        }
        let logits = if want_logits {
            rms_norm_cols(&b.x, get(1), sh.eps, t, &mut b.a, &mut b.sum);
            let head = get(2);
            let v = head.len() / sh.d.max(1);
            let mut lt = vec![0f32; v * t];
            weight_product(&mut lt, head, sh.d, View::full(&b.a, sh.d, t))?;
            let mut out = vec![0f32; t * v];
            transpose(&lt, v, t, &mut out);
            Tensor::from_vec(out, (1, t, v), &self.device)?
        } else {
            Tensor::zeros((1, t, 0), candle_core::DType::F32, &self.device)?
        };
        Ok(ForwardOutput {
            logits,
            attention,
            scores,
            queries: Vec::new(),
        })
    }

    /// RoPE's cos and sin of positions 0..T, [d_h/2, T] (as [`GgufLlama::rope_tables`]
    /// computes them: f32 position times f32 inverse frequency).
    pub(super) fn rope_cols(&self, t: usize) -> (Vec<f32>, Vec<f32>) {
        self.rope_cols_at(t, self.config.rope_inv_freq())
    }

    /// [`rope_cols`](Self::rope_cols) of the inverse frequencies `inv_freq` [d_h/2].
    fn rope_cols_at(&self, t: usize, inv_freq: Vec<f32>) -> (Vec<f32>, Vec<f32>) {
        let dh = self.config.head_dim;
        let (mut cos, mut sin) = (vec![0f32; dh / 2 * t], vec![0f32; dh / 2 * t]);
        for (i, inv) in inv_freq.into_iter().enumerate() {
            for p in 0..t {
                let f = p as f32 * inv;
                cos[i * t + p] = f.cos();
                sin[i * t + p] = f.sin();
            }
        }
        (cos, sin)
    }
}

/// The layer's queries, keys and values of RMSNorm(x) into `b.q`, `b.k`, `b.v`, RoPE applied.
pub(super) fn project_qkv(
    lw: &LayerSlices<'_>,
    sh: &Shape,
    tables: (&[f32], &[f32]),
    half: bool,
    b: &mut Buffers,
) -> Result<(), ModelError> {
    let Shape {
        t,
        d,
        h,
        kvh,
        dh,
        eps,
        ..
    } = *sh;
    pre_norm(sh, lw.attn_norm, b);
    let a = View::full(&b.a, d, t);
    let packed = lw.pack(&mut b.pk, a);
    let bias = |i: usize| lw.qkv_bias.and_then(|bs| bs.get(i).copied());
    let project = |dst: &mut [f32], w: W, i: usize| match bias(i) {
        Some(bv) => {
            bias_rows(dst, bv, t, false);
            lw.product(w, dst, (d, a), packed, true)
        }
        None => lw.product(w, dst, (d, a), packed, false),
    };
    // On a pool of several threads, side by side: the queries on one thread (cut further
    // when large), the keys and values on another (too small to cut: a short text left them
    // to one thread while the others waited). On one thread they stay on the calling thread
    // (the pool's would take the data to another core: 15% slower measured).
    let kv = |k: &mut [f32], v: &mut [f32]| project(k, W::K, 1).and_then(|()| project(v, W::V, 2));
    let (q, k, v) = (&mut b.q, &mut b.k, &mut b.v);
    if rayon::current_num_threads() > 1 {
        let (rq, rkv) = rayon::join(|| project(q, W::Q, 0), || kv(k, v));
        rq?;
        rkv?;
    } else {
        project(q, W::Q, 0)?;
        kv(k, v)?;
    }
    if let Some([qn, kn]) = lw.qk_norm {
        // Each head's (a [d_h] weight), or all heads' at once (OLMo 2's [heads·d_h]).
        let width = |w: &[f32]| if w.len() == dh { dh } else { w.len() };
        head_norms(&mut b.q, qn, (width(qn), t, eps), (&mut b.hn, &mut b.sum));
        head_norms(&mut b.k, kn, (width(kn), t, eps), (&mut b.hn, &mut b.sum));
    }
    rope(&mut b.q, h, dh, t, tables, half);
    rope(&mut b.k, kvh, dh, t, tables, half);
    if sh.q_scale != 1.0 {
        b.q.iter_mut().for_each(|v| *v *= sh.q_scale);
    }
    Ok(())
}

/// `b.a` ← the residual stream `b.x` as a sub-layer reads it: through the RMSNorm of weight
/// `w`, or as it is (OLMo 2).
fn pre_norm(sh: &Shape, w: &[f32], b: &mut Buffers) {
    if sh.pre_norm {
        rms_norm_cols(&b.x, w, sh.eps, sh.t, &mut b.a, &mut b.sum);
    } else {
        b.a.copy_from_slice(&b.x);
    }
}

/// x ← x + the product of weight `w` with `input` ([k, T]), through the post-norm `post` [d]
/// where the layer has one (Gemma 2 and 3, OLMo 2).
fn add_output(
    lw: &LayerSlices<'_>,
    (w, k, input): (W, usize, View<'_>),
    packed: Option<&crate::model::native::bf16::Packed>,
    (sh, post): (&Shape, Option<&[f32]>),
    (x, p, sum): (&mut [f32], &mut Vec<f32>, &mut [f32]),
) -> Result<(), ModelError> {
    let Some(post) = post else {
        return lw.product(w, x, (k, input), packed, true);
    };
    let cells = sh.d * sh.t;
    p.resize(2 * cells, 0.0);
    let (raw, normed) = p.split_at_mut(cells);
    lw.product(w, raw, (k, input), packed, false)?;
    rms_norm_cols(raw, post, sh.eps, sh.t, normed, sum);
    x.iter_mut().zip(normed.iter()).for_each(|(x, n)| *x += n);
    Ok(())
}

/// Each head's vector at each position of `x` ([heads·d_h, T]) through an RMSNorm of weight
/// `w` [d_h] (Qwen3's q_norm and k_norm), with `hn` and `sum` as scratch.
fn head_norms(
    x: &mut [f32],
    w: &[f32],
    (dh, t, eps): (usize, usize, f32),
    (hn, sum): (&mut Vec<f32>, &mut [f32]),
) {
    hn.resize(dh * t, 0.0);
    for head in x.chunks_mut((dh * t).max(1)) {
        rms_norm_cols(head, w, eps, t, hn, sum);
        head.copy_from_slice(hn.get(..head.len()).unwrap_or_default());
    }
}

/// x ← x + attention(RMSNorm(x)) (Gemma, OLMo 2: the sum post-normed; x unchanged without
/// `out`: nothing reads it); returns the layer's attention and scores [H, T, T].
fn attention_layer(
    lw: &LayerSlices<'_>,
    sh: &Shape,
    bias: &HostBias,
    (tables, half, out): ((&[f32], &[f32]), bool, bool),
    b: &mut Buffers,
) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
    let Shape {
        t, h, kvh, dh, qd, ..
    } = *sh;
    project_qkv(lw, sh, tables, half, b)?;
    let (mut att, mut z) = (vec![0f32; h * t * t], vec![0f32; h * t * t]);
    let rep = (h / kvh).max(1);
    let (q, k, v) = (&b.q, &b.k, &b.v);
    let one = |s: &mut HeadScratch, (hh, ((ah, zh), yh)): HeadOut<'_>| {
        let g = hh / rep;
        let views = HeadViews {
            q: View::rows(q, hh * dh * t, dh, t, t).t(),
            k: View::rows(k, g * dh * t, dh, t, t),
            v: Values::Features(View::rows(v, g * dh * t, dh, t, t)),
        };
        attend(
            views,
            hh,
            (t, t),
            bias,
            s,
            ah,
            zh,
            ViewMut::rows(yh, 0, dh, t, t),
        )
    };
    let heads = att
        .chunks_mut(t * t)
        .zip(z.chunks_mut(t * t))
        .zip(b.y.chunks_mut(dh * t));
    if rayon::current_num_threads() > 1 {
        // The heads side by side, each thread on its kept scratch.
        use rayon::prelude::*;
        let heads: Vec<_> = heads.enumerate().collect();
        heads
            .into_par_iter()
            .try_for_each(|x| with_kept_scratch((t, t), KEEP_HEAD_CELLS, |s| one(s, x)))?;
    } else {
        heads.enumerate().try_for_each(|x| one(&mut b.head, x))?;
    }
    if out {
        let y = View::full(&b.y, qd, t);
        let packed = lw.pack(&mut b.pk, y);
        let post = lw.post_norms.map(|[a, _]| a);
        let outs = (&mut b.x[..], &mut b.p, &mut b.sum[..]);
        add_output(lw, (W::O, qd, y), packed, (sh, post), outs)?;
    }
    Ok((att, z))
}

/// x ← x + down(SiLU(gate(RMSNorm(x)))·up(RMSNorm(x))) (Gemma: GELU for SiLU, the sum
/// post-normed; OLMo 2: x read without the norm, the sum post-normed).
pub(super) fn mlp_layer(
    lw: &LayerSlices<'_>,
    sh: &Shape,
    b: &mut Buffers,
) -> Result<(), ModelError> {
    let Shape { t, d, f, .. } = *sh;
    pre_norm(sh, lw.ffn_norm, b);
    let a = View::full(&b.a, d, t);
    let packed = lw.pack(&mut b.pk, a);
    lw.product(W::Gate, &mut b.g, (d, a), packed, false)?;
    lw.product(W::Up, &mut b.u, (d, a), packed, false)?;
    if sh.gelu {
        // Gemma's gate: the tanh GELU, candle's formula.
        b.g.iter_mut()
            .zip(&b.u)
            .for_each(|(g, u)| *g = crate::model::gelu::gelu_value(*g) * u);
    } else {
        silu_mul(&mut b.g, &b.u);
    }
    let g = View::full(&b.g, f, t);
    let packed = lw.pack(&mut b.pk, g);
    let post = lw.post_norms.map(|[_, m]| m);
    let outs = (&mut b.x[..], &mut b.p, &mut b.sum[..]);
    add_output(lw, (W::Down, f, g), packed, (sh, post), outs)?;
    Ok(())
}
