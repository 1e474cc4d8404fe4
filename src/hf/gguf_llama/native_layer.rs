//! The parts of the native view pass of a LLaMA-family decoder ([`super::native`]): one
//! layer's weights read in place (f32, and their bf16 copies when the pass is a preview), the
//! sizes of a pass, its buffers, and the weight products that choose between the two.

use candle_core::Tensor;

use crate::hf::gguf_llama::Layer;
use crate::model::native::bf16::{Bf16Matrix, Packed};
use crate::model::native::gemm::{weight_product, weight_product_into, View};
use crate::model::native::heads::HeadScratch;
use crate::model::transformer::ModelError;

/// One layer's q, k, v, o, gate, up, down in bf16 (the order of [`W`]).
pub(crate) type LayerBf16 = [Bf16Matrix; 7];

/// One layer's weights read in place.
pub(super) struct LayerSlices<'a> {
    pub(super) attn_norm: &'a [f32],
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    o: &'a [f32],
    pub(super) ffn_norm: &'a [f32],
    gate: &'a [f32],
    up: &'a [f32],
    down: &'a [f32],
    pub(super) qkv_bias: Option<[&'a [f32]; 3]>,
    /// The RMSNorm weights of the queries and keys: [d_h], each head's (Qwen3, Gemma 3), or
    /// [heads·d_h], all heads' at once (OLMo 2).
    pub(super) qk_norm: Option<[&'a [f32]; 2]>,
    /// The RMSNorm weights [d] of attention's and the MLP's outputs (Gemma 2 and 3, OLMo 2).
    pub(super) post_norms: Option<[&'a [f32]; 2]>,
    /// The biases [d] of the pre-norms where they are LayerNorms (StableLM; OLMo 1's zeros).
    pub(super) norm_bias: Option<[&'a [f32]; 2]>,
    /// The bf16 copies of q, k, v, o, gate, up, down when the pass is a preview.
    fast: Option<&'a LayerBf16>,
}

/// Which weight of a layer a product reads (the index of its bf16 copy).
#[derive(Clone, Copy)]
pub(super) enum W {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl<'a> LayerSlices<'a> {
    /// The f32 weight `w`.
    fn f32_of(&self, w: W) -> &'a [f32] {
        match w {
            W::Q => self.q,
            W::K => self.k,
            W::V => self.v,
            W::O => self.o,
            W::Gate => self.gate,
            W::Up => self.up,
            W::Down => self.down,
        }
    }

    /// Bf16 copies of q, k, v, o, gate, up, down (in the order of [`W`]), for a model of width
    /// `d`, MLP width `f` and queries of width `qd` (heads·d_h).
    pub(super) fn bf16(&self, d: usize, f: usize, qd: usize) -> LayerBf16 {
        [W::Q, W::K, W::V, W::O, W::Gate, W::Up, W::Down].map(|w| {
            let inputs = match w {
                W::Down => f,
                W::O => qd,
                _ => d,
            };
            Bf16Matrix::new(self.f32_of(w), inputs)
        })
    }

    /// `a` packed into `pk` when this layer's products run in bf16 (None: they run in f32).
    pub(super) fn pack<'p>(&self, pk: &'p mut Packed, a: View<'_>) -> Option<&'p Packed> {
        self.fast.map(|_| {
            pk.pack(a);
            &*pk
        })
    }

    /// dst [out, T] (+)= w · a over `k` inputs: in bf16 when this layer has bf16 copies and
    /// `packed` holds `a` ([`pack`](Self::pack)), else in f32; written, not added, unless
    /// `accumulate`.
    pub(super) fn product(
        &self,
        w: W,
        dst: &mut [f32],
        (k, a): (usize, View<'_>),
        packed: Option<&Packed>,
        accumulate: bool,
    ) -> Result<(), ModelError> {
        if let (Some(fast), Some(p)) = (self.fast, packed) {
            return Ok(fast[w as usize].product(dst, p, accumulate)?);
        }
        let f = self.f32_of(w);
        if accumulate {
            weight_product(dst, f, k, a)?;
        } else {
            weight_product_into(dst, f, k, a)?;
        }
        Ok(())
    }
}

/// The weights of `layer`, whose first slice is `w[start]` (see [`GgufLlama::with_weights`]).
/// `fast`: the layer's bf16 copies, for a preview.
pub(super) fn layer_slices<'a>(
    w: &[&'a [f32]],
    start: usize,
    layer: &Layer,
    fast: Option<&'a LayerBf16>,
) -> LayerSlices<'a> {
    let s = |i: usize| w.get(start + i).copied().unwrap_or_default();
    LayerSlices {
        attn_norm: s(0),
        q: s(1),
        k: s(2),
        v: s(3),
        o: s(4),
        ffn_norm: s(5),
        gate: s(6),
        up: s(7),
        down: s(8),
        qkv_bias: layer.qkv_bias.as_ref().map(|_| [s(9), s(10), s(11)]),
        qk_norm: layer.qk_norm.as_ref().map(|_| {
            let at = if layer.qkv_bias.is_some() { 12 } else { 9 };
            [s(at), s(at + 1)]
        }),
        post_norms: layer.post_norms.as_ref().map(|_| {
            let at = 9
                + 3 * usize::from(layer.qkv_bias.is_some())
                + 2 * usize::from(layer.qk_norm.is_some());
            [s(at), s(at + 1)]
        }),
        norm_bias: layer.norm_bias.as_ref().map(|_| {
            let at = 9
                + 3 * usize::from(layer.qkv_bias.is_some())
                + 2 * usize::from(layer.qk_norm.is_some())
                + 2 * usize::from(layer.post_norms.is_some());
            [s(at), s(at + 1)]
        }),
        fast,
    }
}

/// The tensors of one layer in the order [`LayerSlices`] reads them (biases, then the q/k
/// norms, then the post-norms, then the pre-norms' LayerNorm biases, last).
pub(super) fn layer_tensors(l: &Layer) -> Vec<&Tensor> {
    let mut out = vec![
        &l.attn_norm,
        l.q.w(),
        l.k.w(),
        l.v.w(),
        l.o.w(),
        &l.ffn_norm,
        l.gate.w(),
        l.up.w(),
        l.down.w(),
    ];
    if let Some(b) = &l.qkv_bias {
        out.extend(b.iter());
    }
    if let Some(n) = &l.qk_norm {
        out.extend(n.iter());
    }
    if let Some(n) = &l.post_norms {
        out.extend(n.iter());
    }
    if let Some(n) = &l.norm_bias {
        out.extend(n.iter());
    }
    out
}

/// Sizes of one pass.
#[derive(Clone, Copy)]
pub(super) struct Shape {
    pub(super) t: usize,
    pub(super) d: usize,
    pub(super) h: usize,
    pub(super) kvh: usize,
    pub(super) dh: usize,
    /// heads·d_h: the queries' and the attention output's width.
    pub(super) qd: usize,
    pub(super) f: usize,
    pub(super) eps: f32,
    /// Attention and the MLP read the residual stream through their norms (all but OLMo 2).
    pub(super) pre_norm: bool,
    /// The MLP's gate through the tanh GELU (Gemma's) rather than SiLU.
    pub(super) gelu: bool,
    /// The queries' factor before the scores' 1/√d_h: Gemma's `query_pre_attn_scalar`^-½ · √d_h
    /// (1 for every other model).
    pub(super) q_scale: f32,
    /// Gemma 2's soft cap on the scores.
    pub(super) softcap: Option<f32>,
    /// The factor of each sub-layer's output as it joins the residual stream (Granite's; 1).
    pub(super) residual: f32,
    /// The pre-norms and the final norm are LayerNorms (StableLM, OLMo 1), not RMSNorms.
    pub(super) layer_norm: bool,
    /// q, k and v clipped to ± this after their projections (OLMo's `clip_qkv`).
    pub(super) clip: Option<f32>,
}

/// Activations and scratch of one pass.
pub(super) struct Buffers {
    pub(super) x: Vec<f32>,
    pub(super) a: Vec<f32>,
    pub(super) q: Vec<f32>,
    pub(super) k: Vec<f32>,
    pub(super) v: Vec<f32>,
    pub(super) y: Vec<f32>,
    pub(super) g: Vec<f32>,
    pub(super) u: Vec<f32>,
    pub(super) sum: Vec<f32>,
    /// A LayerNorm's scratch, 18·T (the lane sums and each column's moments).
    pub(super) ln: Vec<f32>,
    /// One head's queries or keys normed (Qwen3), [d_h, T].
    pub(super) hn: Vec<f32>,
    /// A sub-layer's output before its post-norm, [d, T] (Gemma, OLMo 2).
    pub(super) p: Vec<f32>,
    pub(super) head: HeadScratch,
    /// An input packed for bf16 products (unused in f32).
    pub(super) pk: Packed,
}

impl Buffers {
    /// Buffers of one pass, with `head` as the attention's scratch.
    pub(super) fn new(s: &Shape, head: HeadScratch) -> Self {
        let (t, d, kv) = (s.t, s.d, s.kvh * s.dh);
        Self {
            x: vec![0.0; d * t],
            a: vec![0.0; d * t],
            q: vec![0.0; s.qd * t],
            k: vec![0.0; kv * t],
            v: vec![0.0; kv * t],
            y: vec![0.0; s.qd * t],
            g: vec![0.0; s.f * t],
            u: vec![0.0; s.f * t],
            sum: vec![0.0; t],
            ln: if s.layer_norm {
                vec![0.0; 18 * t]
            } else {
                Vec::new()
            },
            hn: Vec::new(),
            p: Vec::new(),
            head,
            pk: Packed::default(),
        }
    }
}
