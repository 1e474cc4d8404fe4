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

pub(super) use crate::hf::gguf_llama::native_block::{
    add_output, mlp_layer, norm_cols, project_qkv, RopeCols,
};
pub(super) use crate::hf::gguf_llama::native_cols::embed;
use crate::hf::gguf_llama::native_fast::FastWeights;
use crate::hf::gguf_llama::native_layer::layer_tensors;
pub(super) use crate::hf::gguf_llama::native_layer::{
    layer_slices, Buffers, LayerSlices, Shape, W,
};
use crate::hf::gguf_llama::GgufLlama;
use crate::model::attention::AttentionBias;
use crate::model::native::cols::transpose;
use crate::model::native::gemm::{weight_product, View, ViewMut};
use crate::model::native::heads::{
    attend, with_kept_scratch, HeadScratch, HeadViews, HostBias, Values, KEEP_HEAD_CELLS,
};
use crate::model::native_view::host_biases;
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
        // A Gemma with the exact GELU runs on candle's passes only.
        if !self.device.is_cpu()
            || !(plain || biases.len() == c.layers)
            || ids.is_empty()
            || !c.native_view()
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

    /// `f` over the weights' f32 slices, as `[embed, out_norm, head, (out_norm's LayerNorm
    /// bias,) layer 0's (see [`LayerSlices`]), layer 1's, ...]`, with each layer's first
    /// index; None when a weight is not f32 on the CPU.
    pub(super) fn with_weights<R>(&self, f: impl FnOnce(&[&[f32]], &[usize]) -> R) -> Option<R> {
        let mut tensors: Vec<&Tensor> = vec![&self.embed, &self.out_norm, self.head.w()];
        // The final LayerNorm's bias (StableLM, OLMo 1) fourth, before the layers.
        tensors.extend(&self.out_norm_bias);
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
            softcap: c
                .gemma
                .as_ref()
                .and_then(|g| g.attn_softcap)
                .map(|k| k as f32),
            residual: c.residual_factor() as f32,
            layer_norm: c.layer_norm,
            clip: c.clip_qkv.map(|m| m as f32),
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
        let host = host_biases(biases, t, (c.layers, sh.h))?;
        let get = |i: usize| w.get(i).copied().unwrap_or_default();
        let mut b = Buffers::new(&sh, HeadScratch::new(t));
        self.embed_cols(get(0), ids, &sh, &mut b)?;
        let rope = self.rope_layers(t);
        let (mut attention, mut scores) = (Vec::new(), Vec::new());
        let layers = host.iter().zip(starts).zip(&self.layers).enumerate();
        for (l, ((bias, &start), layer)) in layers {
            let lw = layer_slices(w, start, layer, fast.and_then(|f| f.layer(l)));
            // Without logits nothing reads the last layer's output: its attention is all.
            let out = want_logits || l + 1 < self.layers.len();
            let tables = rope.for_layer(c, l);
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
            let bias = self.out_norm_bias.as_ref().map(|_| get(3));
            let scratch = (&mut b.sum[..], &mut b.ln[..]);
            norm_cols(&sh, &b.x, (get(1), bias), &mut b.a, scratch);
            let head = get(2);
            let v = head.len() / sh.d.max(1);
            let mut lt = vec![0f32; v * t];
            weight_product(&mut lt, head, sh.d, View::full(&b.a, sh.d, t))?;
            let mut out = vec![0f32; t * v];
            transpose(&lt, v, t, &mut out);
            if let Some(g) = c.granite {
                // Granite's logits divided by its scaling, as candle's.
                let s = g.logits as f32;
                out.iter_mut().for_each(|x| *x /= s);
            }
            if let Some(cap) = c.gemma.as_ref().and_then(|g| g.final_softcap) {
                // Gemma 2's cap on the logits, as candle's: cap · tanh(x / cap).
                out.iter_mut()
                    .for_each(|x| *x = ((*x as f64 / cap) as f32).tanh() * cap as f32);
            }
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

    /// The embeddings of `ids` into `b.x` [d, T] (via `b.a`), from the table `table`; ×√d
    /// for Gemma.
    pub(super) fn embed_cols(
        &self,
        table: &[f32],
        ids: &[u32],
        sh: &Shape,
        b: &mut Buffers,
    ) -> Result<(), ModelError> {
        embed(table, ids, sh.d, &mut b.a)?;
        transpose(&b.a, sh.t, sh.d, &mut b.x);
        if let Some(f) = self.config.embed_factor() {
            let s = f as f32;
            b.x.iter_mut().for_each(|v| *v *= s);
        }
        Ok(())
    }

    /// RoPE's tables of positions 0..T: the model's, Gemma 3's sliding layers' own, and the
    /// identity of SmolLM3's layers without RoPE.
    pub(super) fn rope_layers(&self, t: usize) -> RopeCols {
        let c = &self.config;
        let global = self.rope_cols(t);
        let none = c.no_rope.as_ref().map(|_| {
            let cells = global.0.len();
            (vec![1f32; cells], vec![0f32; cells])
        });
        RopeCols {
            local: (0..c.layers)
                .find_map(|l| c.local_base(l))
                .map(|base| self.rope_cols_at(t, c.rope_inv_freq_local(base), false)),
            global,
            none,
        }
    }

    /// RoPE's cos and sin of positions 0..T, [d_h/2, T] (as [`GgufLlama::rope_tables`]
    /// computes them: f32 position times f32 inverse frequency, times the attention factor).
    pub(super) fn rope_cols(&self, t: usize) -> (Vec<f32>, Vec<f32>) {
        self.rope_cols_at(t, self.config.rope_inv_freq(t), true)
    }

    /// [`rope_cols`](Self::rope_cols) of the inverse frequencies `inv_freq` [d_h/2], times the
    /// attention factor where `scaled` (the sliding layers' plain rotation has none).
    fn rope_cols_at(&self, t: usize, inv_freq: Vec<f32>, scaled: bool) -> (Vec<f32>, Vec<f32>) {
        let dh = self.config.head_dim;
        let (mut cos, mut sin) = (vec![0f32; dh / 2 * t], vec![0f32; dh / 2 * t]);
        let scales = match scaled {
            true => self.config.rope_col_scales(),
            false => vec![1.0; dh / 2],
        };
        for (i, (inv, scale)) in inv_freq.into_iter().zip(scales).enumerate() {
            for p in 0..t {
                let f = p as f32 * inv;
                cos[i * t + p] = f.cos() * scale;
                sin[i * t + p] = f.sin() * scale;
            }
        }
        (cos, sin)
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
            softcap: sh.softcap,
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
