//! A differentiable forward of a LLaMA-family decoder over a batch, for fine-tuning: the same
//! computation as [`GgufLlama::forward_with`] at the plain model (causal mask, no dial), built
//! from ops that carry gradients (candle's fused RMSNorm and RoPE drop them silently; see
//! STACK.md), with frozen weights that get none ([`frozen_linear`]) and what fine-tuning adds
//! to each projection ([`ProjectionDelta`]).

use candle_core::Tensor;

use crate::hf::dense::Dense;
use crate::hf::gguf_llama::gemma;
use crate::hf::gguf_llama::norm::{clip as clip_of, norm as norm_of};
use crate::hf::gguf_llama::{GgufLlama, Layer};
use crate::hf::trainable::{
    batch_dims, causal_attention, check_replacement, Projection, ProjectionDelta, TrainForward,
    TrainableDecoder,
};
use crate::model::attention::causal_tensor;
use crate::model::backend::AttentionModel;
use crate::model::fused::frozen_linear;
use crate::model::gelu::gelu_tanh;
use crate::model::transformer::ModelError;

/// A layer's projections applied with what fine-tuning adds to them.
type Lin<'a> = &'a dyn Fn(Projection, &Tensor) -> candle_core::Result<Tensor>;

impl GgufLlama {
    /// The forward over a batch `ids` [B,T] with `delta` added to the projections:
    /// differentiable in whatever `delta` holds, the base weights frozen.
    pub fn forward_train(
        &self,
        ids: &Tensor,
        delta: &dyn ProjectionDelta,
    ) -> Result<TrainForward, ModelError> {
        let c = &self.config;
        let (b, t) = batch_dims(ids, c.context)?;
        let rope = self.rope_set(0, t)?;
        let causal = causal_tensor(b, t, &self.device)?;
        let embedded = self.embed.embedding(&ids.flatten_all()?)?;
        let mut x = gemma::embed(c, embedded)?.reshape((b, t, c.d_model))?;
        let mut attention = Vec::with_capacity(c.layers);
        let mut queries = Vec::with_capacity(c.layers);
        let eps = c.rms_eps as f32;
        for (l, layer) in self.layers.iter().enumerate() {
            let lin = |p: Projection, input: &Tensor| {
                let y = linear(layer, l, p, input, delta)?;
                match p {
                    Projection::Q | Projection::K | Projection::V => clip_of(c, y),
                    _ => Ok(y),
                }
            };
            let norm = |t: &Tensor, w: &Tensor| candle_nn::ops::rms_norm_slow(t, w, eps);
            let pre =
                |i: usize| move |t: &Tensor, w: &Tensor| norm_of(c, t, w, layer.norm_bias(i), true);
            let hx = gemma::pre_norm(c, &x, &layer.attn_norm, pre(0))?;
            let tables = rope.for_layer(c, l);
            let (y, a, q) = self.train_attention(&hx, tables, &causal, (layer, &lin))?;
            let o = gemma::post_norm(layer, 0, lin(Projection::O, &y)?, norm)?;
            x = (x + gemma::residual(c, o)?)?;
            let hx = gemma::pre_norm(c, &x, &layer.ffn_norm, pre(1))?;
            let g = gemma::activate(c, &lin(Projection::Gate, &hx)?, gelu_tanh)?;
            let f = lin(Projection::Down, &(g * lin(Projection::Up, &hx)?)?)?;
            x = (x + gemma::residual(c, gemma::post_norm(layer, 1, f, norm)?)?)?;
            attention.push(a);
            queries.push(q);
        }
        let x = norm_of(c, &x, &self.out_norm, self.out_norm_bias.as_ref(), true)?;
        let logits = frozen_linear(&x, self.head.w())?.reshape((b * t, c.vocab))?;
        let logits = gemma::finish_logits(c, logits)?;
        Ok(TrainForward {
            logits,
            attention,
            queries,
        })
    }

    /// One layer's attention over the normed input `hx` [B,T,d] under the causal mask (`lin`
    /// applies the layer's projections):
    /// (output [B,T,d] before its projection, attention [B,H,T,T], queries [B,H,T,d_h]).
    fn train_attention(
        &self,
        hx: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        causal: &Tensor,
        (layer, lin): (&Layer, Lin<'_>),
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let c = &self.config;
        let (b, t, _) = hx.dims3()?;
        let (h, kvh) = (c.heads, c.kv_heads.max(1));
        let dh = c.head_dim;
        let split = |p: Projection, heads: usize| -> candle_core::Result<Tensor> {
            let x = lin(p, hx)?.reshape((b, t, heads, dh))?;
            // The q/k norms (the slow op: it carries gradients).
            let eps = c.rms_eps as f32;
            let norm = |t: &Tensor, w: &Tensor| candle_nn::ops::rms_norm_slow(t, w, eps);
            let x = match p {
                Projection::Q => gemma::qk_norm(layer, 0, x, norm)?,
                Projection::K => gemma::qk_norm(layer, 1, x, norm)?,
                _ => x,
            };
            x.transpose(1, 2)?.contiguous()
        };
        let rot = |x: &Tensor| -> candle_core::Result<Tensor> {
            if c.rope_half {
                candle_nn::rotary_emb::rope_slow(x, cos, sin)
            } else {
                candle_nn::rotary_emb::rope_i_slow(x, cos, sin)
            }
        };
        let rep = h / kvh;
        let expand = |x: Tensor| -> candle_core::Result<Tensor> {
            if rep == 1 {
                return Ok(x);
            }
            x.unsqueeze(2)?
                .expand((b, kvh, rep, t, dh))?
                .reshape((b, h, t, dh))
        };
        let q = rot(&split(Projection::Q, h)?)?;
        let k = expand(rot(&split(Projection::K, kvh)?)?)?;
        let v = expand(split(Projection::V, kvh)?)?;
        let a = match c.gemma.as_ref().and_then(|g| g.attn_softcap) {
            // Soft-capped scores: the cap between the scale and the mask, composed.
            Some(_) => {
                let s = gemma::cap_scores(c, (q.matmul(&k.t()?)? * c.score_scale())?)?;
                causal_attention(&s, causal, 1.0)?
            }
            None => causal_attention(&q.matmul(&k.t()?)?, causal, c.score_scale())?,
        };
        let y = a
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, c.q_width()))?;
        Ok((y, a, q))
    }

    /// Projection `p`'s weight [out, in] in layer `l`.
    pub fn projection_weight(&self, l: usize, p: Projection) -> candle_core::Result<Tensor> {
        let layer = self
            .layers
            .get(l)
            .ok_or_else(|| candle_core::Error::Msg(format!("no layer {l}")))?;
        layer.matrix(p).weight()
    }

    /// Replace projection `p` of layer `l` by `w` [out, in] (of the same shape).
    pub fn set_projection(
        &mut self,
        l: usize,
        p: Projection,
        w: Tensor,
    ) -> candle_core::Result<()> {
        check_replacement(self.family(), l, p, &self.projection_weight(l, p)?, &w)?;
        if let Some(layer) = self.layers.get_mut(l) {
            *layer.matrix_mut(p) = Dense::new(&w)?;
        }
        // The bf16 copies of the weights (a preview's) are of the old ones.
        self.fast = std::sync::OnceLock::new();
        Ok(())
    }
}

impl TrainableDecoder for GgufLlama {
    fn family(&self) -> &'static str {
        "LLaMA-family decoder"
    }

    fn num_layers(&self) -> usize {
        self.config.layers
    }

    fn context(&self) -> usize {
        self.config.context
    }

    fn projection(&self, l: usize, p: Projection) -> candle_core::Result<Tensor> {
        self.projection_weight(l, p)
    }

    fn replace_projection(
        &mut self,
        l: usize,
        p: Projection,
        w: Tensor,
    ) -> candle_core::Result<()> {
        self.set_projection(l, p, w)
    }

    fn train_forward(
        &self,
        ids: &Tensor,
        delta: &dyn ProjectionDelta,
    ) -> Result<TrainForward, ModelError> {
        self.forward_train(ids, delta)
    }

    fn as_model(&self) -> &dyn AttentionModel {
        self
    }
}

impl Layer {
    /// The matrix of projection `p`.
    fn matrix(&self, p: Projection) -> &Dense {
        match p {
            Projection::Q => &self.q,
            Projection::K => &self.k,
            Projection::V => &self.v,
            Projection::O => &self.o,
            Projection::Gate => &self.gate,
            Projection::Up => &self.up,
            Projection::Down => &self.down,
        }
    }

    /// The matrix of projection `p`, to replace.
    fn matrix_mut(&mut self, p: Projection) -> &mut Dense {
        match p {
            Projection::Q => &mut self.q,
            Projection::K => &mut self.k,
            Projection::V => &mut self.v,
            Projection::O => &mut self.o,
            Projection::Gate => &mut self.gate,
            Projection::Up => &mut self.up,
            Projection::Down => &mut self.down,
        }
    }
}

/// Projection `p` of layer `l` applied to `x`: the frozen weight, the layer's bias (Qwen2's
/// q, k, v) and the delta.
fn linear(
    layer: &Layer,
    l: usize,
    p: Projection,
    x: &Tensor,
    delta: &dyn ProjectionDelta,
) -> candle_core::Result<Tensor> {
    let mut y = frozen_linear(x, layer.matrix(p).w())?;
    let bias_index = match p {
        Projection::Q => Some(0),
        Projection::K => Some(1),
        Projection::V => Some(2),
        _ => None,
    };
    if let Some(bias) = bias_index.and_then(|i| layer.qkv_bias.as_ref().and_then(|bs| bs.get(i))) {
        y = y.broadcast_add(bias)?;
    }
    if let Some(d) = delta.delta(l, p, x)? {
        y = (y + d)?;
    }
    Ok(y)
}
