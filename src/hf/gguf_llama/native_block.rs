//! One layer's sub-layers in the native passes of a LLaMA-family decoder ([`super::native`],
//! [`super::native_rows`]), over feature-major activations: the q/k/v projections with their
//! norms and RoPE, the MLP, and what Gemma and OLMo 2 change in both (no pre-norm for OLMo 2,
//! post-norms of each sub-layer's output, q/k norms over all heads, the GELU gate, the scaled
//! queries), and the RoPE tables of a pass (Gemma 3's sliding layers turn at a base of their
//! own).

use crate::hf::gguf_llama::metadata::LlamaConfig;
use crate::hf::gguf_llama::native_cols::rope;
use crate::hf::gguf_llama::native_layer::{Buffers, LayerSlices, Shape, W};
use crate::model::native::bf16::Packed;
use crate::model::native::cols::{bias_rows, layer_norm_cols, rms_norm_cols, silu_mul};
use crate::model::native::gemm::View;
use crate::model::transformer::ModelError;

/// RoPE's cos and sin [d_h/2, T] of a pass: the model's, and those of layers that turn at a
/// base of their own (Gemma 3's sliding layers).
pub(super) struct RopeCols {
    pub(super) global: (Vec<f32>, Vec<f32>),
    pub(super) local: Option<(Vec<f32>, Vec<f32>)>,
    /// The identity (cos 1, sin 0), where some layers turn no RoPE (SmolLM3).
    pub(super) none: Option<(Vec<f32>, Vec<f32>)>,
}

impl RopeCols {
    /// Layer `l`'s tables.
    pub(super) fn for_layer(&self, c: &LlamaConfig, l: usize) -> (&[f32], &[f32]) {
        match (&self.none, &self.local, c.local_base(l)) {
            (Some((cos, sin)), _, _) if c.rope_off(l) => (cos, sin),
            (_, Some((cos, sin)), Some(_)) => (cos, sin),
            _ => (&self.global.0, &self.global.1),
        }
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
    pre_norm(sh, (lw.attn_norm, lw.norm_bias.map(|[a, _]| a)), b);
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
    if let Some(m) = sh.clip {
        // OLMo's clip, after the biases and before any norm or RoPE (as candle's passes).
        for x in [&mut b.q, &mut b.k, &mut b.v] {
            x.iter_mut().for_each(|v| *v = v.clamp(-m, m));
        }
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

/// `b.a` ← the residual stream `b.x` as a sub-layer reads it: through its norm of weight `w`
/// (and LayerNorm bias), or as it is (OLMo 2).
pub(super) fn pre_norm(sh: &Shape, w: (&[f32], Option<&[f32]>), b: &mut Buffers) {
    if sh.pre_norm {
        norm_cols(sh, &b.x, w, &mut b.a, (&mut b.sum, &mut b.ln));
    } else {
        b.a.copy_from_slice(&b.x);
    }
}

/// `out` ← each column of `x` [d, T] through a pre-norm or the final norm of weight `w`: a
/// LayerNorm with its bias where the model's are LayerNorms (StableLM, OLMo 1), else an
/// RMSNorm; `sum` [T] and `ln` [18·T] are scratch.
pub(super) fn norm_cols(
    sh: &Shape,
    x: &[f32],
    (w, bias): (&[f32], Option<&[f32]>),
    out: &mut [f32],
    (sum, ln): (&mut [f32], &mut [f32]),
) {
    match bias {
        Some(bias) if sh.layer_norm => layer_norm_cols(x, w, bias, sh.eps, sh.t, out, ln),
        _ => rms_norm_cols(x, w, sh.eps, sh.t, out, sum),
    }
}

/// x ← x + the product of weight `w` with `input` ([k, T]), through the post-norm `post` [d]
/// where the layer has one (Gemma 2 and 3, OLMo 2), times Granite's residual multiplier.
pub(super) fn add_output(
    lw: &LayerSlices<'_>,
    (w, k, input): (W, usize, View<'_>),
    packed: Option<&Packed>,
    (sh, post): (&Shape, Option<&[f32]>),
    (x, p, sum): (&mut [f32], &mut Vec<f32>, &mut [f32]),
) -> Result<(), ModelError> {
    if post.is_none() && sh.residual == 1.0 {
        return lw.product(w, x, (k, input), packed, true);
    }
    let cells = sh.d * sh.t;
    p.resize(2 * cells, 0.0);
    let (raw, normed) = p.split_at_mut(cells);
    lw.product(w, raw, (k, input), packed, false)?;
    let out: &[f32] = match post {
        Some(post) => {
            rms_norm_cols(raw, post, sh.eps, sh.t, normed, sum);
            normed
        }
        None => raw,
    };
    let r = sh.residual;
    x.iter_mut().zip(out).for_each(|(x, n)| *x += n * r);
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

/// x ← x + down(SiLU(gate(RMSNorm(x)))·up(RMSNorm(x))) (Gemma: GELU for SiLU, the sum
/// post-normed; OLMo 2: x read without the norm, the sum post-normed).
pub(super) fn mlp_layer(
    lw: &LayerSlices<'_>,
    sh: &Shape,
    b: &mut Buffers,
) -> Result<(), ModelError> {
    let Shape { t, d, f, .. } = *sh;
    pre_norm(sh, (lw.ffn_norm, lw.norm_bias.map(|[_, m]| m)), b);
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
