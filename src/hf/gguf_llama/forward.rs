//! The forward pass of a LLaMA-family decoder: embeddings, then per layer RMSNorm, grouped-query
//! attention (with Qwen2's q/k/v biases when present) and RoPE (llama.cpp's interleaved layout
//! for GGUF files, Hugging Face's half-rotation one for safetensors folders) under the dial's
//! and rules' biases ([`biased_attention`]), and a SiLU-gated MLP; incremental over a
//! [`KvCache`].

use candle_core::Tensor;

use crate::hf::dense::{forward_pair, Dense};
use crate::hf::gguf_llama::gemma;
use crate::hf::gguf_llama::norm::{clip, norm};
use crate::hf::gguf_llama::rope::RopeTables;
use crate::hf::gguf_llama::{GgufLlama, Layer};
use crate::model::attention::{biased_attention, AttentionBias};
use crate::model::backend::{KvCache, RowStream};
use crate::model::dial::causal_bias;
use crate::model::transformer::{ForwardOutput, ModelError};

/// What every layer of one step shares: positions, RoPE tables and the default mask.
struct Step<'a> {
    /// New positions.
    n: usize,
    /// Positions in all, cached ones included.
    t: usize,
    /// RoPE cos and sin of the new positions.
    rope: RopeTables,
    /// The causal rows of the new positions, for layers given no bias.
    causal: Option<Tensor>,
    biases: &'a [AttentionBias],
}

impl GgufLlama {
    /// Forward over `ids` with one [`AttentionBias`] per layer (an empty slice: the plain model,
    /// causal mask only): logits [1,T,V], attention per layer [1,H,T,T] and, when
    /// `keep_scores`, the biased scores.
    ///
    /// On the CPU this is the native pass ([`GgufLlama::forward_native`]); elsewhere, and
    /// where it does not apply, candle's ([`GgufLlama::forward_candle`]).
    pub fn forward_with(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        match self.forward_native(ids, biases, keep_scores, true) {
            Some(out) => out,
            None => self.forward_candle(ids, biases, keep_scores),
        }
    }

    /// [`forward_with`](Self::forward_with) through candle's ops, whatever the device (the
    /// reference the native pass is checked against).
    pub fn forward_candle(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.forward_cached(ids, biases, keep_scores, &mut KvCache::default(), true)
    }

    /// [`forward_with`](Self::forward_with) without the output norm and head: the logits come
    /// back empty [1,T,0] (views of attention need none, and the head is most of the work at
    /// short texts).
    pub fn forward_attention_only(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.forward_cached(ids, biases, keep_scores, &mut KvCache::default(), false)
    }

    /// Forward over the new tokens `ids` at positions P..P+n, where P is what `cache` already
    /// holds (0 for an empty cache), appending their keys and values to it. Each bias covers
    /// rows P..P+n and keys 0..P+n ([`AttentionBias::rows`] cuts them from a whole sequence's).
    /// Returns logits [1,n,V] and attention [1,H,n,P+n] per layer. Over one step at a time
    /// this is the same computation as one forward over the whole sequence (rows are causal),
    /// at a fraction of the cost.
    pub fn forward_cached(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
        cache: &mut KvCache,
        logits: bool,
    ) -> Result<ForwardOutput, ModelError> {
        let c = &self.config;
        let step = self.step(ids.len(), cache.len(), biases)?;
        let input = Tensor::from_vec(ids.to_vec(), step.n, &self.device)?;
        let mut x = gemma::embed(c, self.embed.embedding(&input)?)?.unsqueeze(0)?; // [1,n,d]
        let mut out = ForwardOutput {
            logits: x.clone(),
            attention: Vec::with_capacity(c.layers),
            scores: Vec::new(),
            queries: Vec::new(),
        };
        cache.layers.resize_with(c.layers, || None);
        for ((l, layer), slot) in self.layers.iter().enumerate().zip(&mut cache.layers) {
            let hx = gemma::pre_norm(c, &x, &layer.attn_norm, |t, w| {
                norm(c, t, w, layer.norm_bias(0), false)
            })?;
            let (y, a, z) = self.attention(layer, &hx, slot, &step, l)?;
            x = self.mlp_residual(layer, self.attention_residual(layer, x, &y)?)?;
            out.attention.push(a);
            if keep_scores {
                out.scores.push(z);
            }
        }
        cache.len = step.t;
        out.logits = if logits {
            let x = norm(c, &x, &self.out_norm, self.out_norm_bias.as_ref(), false)?;
            gemma::finish_logits(c, self.head.forward(&x)?)?
        } else {
            Tensor::zeros((1, step.n, 0), candle_core::DType::F32, &self.device)?
        };
        Ok(out)
    }

    /// The forward of a streamed capture ([`AttentionModel::forward_streamed`]): per layer,
    /// the queries of `chunk_rows` positions at a time against the keys they can see (a chunk
    /// of rows r0..r0+n sees keys 0..r0+n, so the causal half is never computed), each chunk's
    /// attention handed to `stream` and dropped. No logits.
    ///
    /// [`AttentionModel::forward_streamed`]: crate::model::backend::AttentionModel::forward_streamed
    pub fn forward_rows_candle(
        &self,
        ids: &[u32],
        chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        let c = &self.config;
        let n = ids.len();
        if n == 0 {
            return Err(ModelError::Input("empty input".into()));
        }
        if n > c.context {
            return Err(ModelError::TooLong(n, c.context));
        }
        let rope = self.rope_set(0, n)?;
        let input = Tensor::from_vec(ids.to_vec(), n, &self.device)?;
        let mut x = gemma::embed(c, self.embed.embedding(&input)?)?.unsqueeze(0)?;
        for (l, layer) in self.layers.iter().enumerate() {
            let hx = gemma::pre_norm(c, &x, &layer.attn_norm, |t, w| {
                norm(c, t, w, layer.norm_bias(0), false)
            })?;
            let tables = rope.for_layer(c, l);
            let y = self.attention_rows(layer, &hx, tables, l, chunk_rows.max(1), stream)?;
            x = self.mlp_residual(layer, self.attention_residual(layer, x, &y)?)?;
            stream.layer_done(l)?;
        }
        Ok(())
    }

    /// The residual stream `x` [1,n,d] plus attention's output `y` (heads merged) through the
    /// output projection (and Gemma's post-norm).
    fn attention_residual(
        &self,
        layer: &Layer,
        x: Tensor,
        y: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let eps = self.config.rms_eps as f32;
        let o = layer.o.forward(y)?;
        let o = gemma::post_norm(layer, 0, o, |t, w| candle_nn::ops::rms_norm(t, w, eps))?;
        x + gemma::residual(&self.config, o)?
    }

    /// The residual stream `x` [1,n,d] plus the gated MLP of its norm (and Gemma's post-norm).
    fn mlp_residual(&self, layer: &Layer, x: Tensor) -> candle_core::Result<Tensor> {
        let c = &self.config;
        let eps = c.rms_eps as f32;
        let hx = gemma::pre_norm(c, &x, &layer.ffn_norm, |t, w| {
            norm(c, t, w, layer.norm_bias(1), false)
        })?;
        let (g, u) = forward_pair(&layer.gate, &layer.up, &hx)?;
        let g = gemma::activate(c, &g, |t| t.gelu())?;
        let f = layer.down.forward(&(g * u)?)?;
        let f = gemma::post_norm(layer, 1, f, |t, w| candle_nn::ops::rms_norm(t, w, eps))?;
        x + gemma::residual(c, f)?
    }

    /// Layer `l`'s attention over the normed input `hx` [1,T,d] in chunks of query rows, each
    /// chunk's weights and scores handed to `stream`: the output [1,T,d] before projection.
    fn attention_rows(
        &self,
        layer: &Layer,
        hx: &Tensor,
        (cos, sin): (&Tensor, &Tensor),
        l: usize,
        chunk: usize,
        stream: &mut dyn RowStream,
    ) -> Result<Tensor, ModelError> {
        let c = &self.config;
        let (h, kvh) = (c.heads, c.kv_heads);
        let t = hx.dim(1)?;
        let dh = c.head_dim;
        let split = |m: &Dense, b: usize, heads: usize| -> candle_core::Result<Tensor> {
            let x = clip(c, project(layer, m, b, hx)?)?.reshape((1, t, heads, dh))?;
            head_norm(layer, b, x, c.rms_eps)?
                .transpose(1, 2)?
                .contiguous()
        };
        let rot = |x: &Tensor| rope(x, cos, sin, c.rope_half);
        let q = rot(&split(&layer.q, 0, h)?)?;
        let rep = h / kvh.max(1);
        let expand = |x: Tensor| -> candle_core::Result<Tensor> {
            if rep == 1 {
                return Ok(x);
            }
            x.unsqueeze(2)?
                .expand((1, kvh, rep, t, dh))?
                .reshape((1, h, t, dh))
        };
        let k = expand(rot(&split(&layer.k, 1, kvh)?)?)?;
        let v = expand(split(&layer.v, 2, kvh)?)?;
        let scale = c.score_scale();
        let mut ys = Vec::with_capacity(t.div_ceil(chunk));
        for r0 in (0..t).step_by(chunk) {
            let n = chunk.min(t - r0);
            let kt = r0 + n;
            let qc = q.narrow(2, r0, n)?;
            let kc = k.narrow(2, 0, kt)?.contiguous()?;
            let vc = v.narrow(2, 0, kt)?.contiguous()?;
            let s = gemma::cap_scores(c, (qc.matmul(&kc.t()?)? * scale)?)?;
            let bias = stream.bias(l, r0, n, kt)?;
            let (a, z) = biased_attention(&s, Some(&bias), None, |z| {
                crate::model::fused::softmax_rows(z)
            })?;
            ys.push(a.matmul(&vc)?);
            stream.rows(l, r0, &a, &z)?;
        }
        Ok(Tensor::cat(&ys, 2)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((1, t, c.q_width()))?)
    }

    /// The shared part of a step of `n` new positions after `p` cached ones.
    fn step<'a>(
        &self,
        n: usize,
        p: usize,
        biases: &'a [AttentionBias],
    ) -> Result<Step<'a>, ModelError> {
        let t = p + n;
        if n == 0 {
            return Err(ModelError::Input("empty input".into()));
        }
        if t > self.config.context {
            return Err(ModelError::TooLong(t, self.config.context));
        }
        let rope = self.rope_set(p, n)?;
        let causal = if biases.len() < self.config.layers {
            let full = causal_bias(t);
            let rows = full.get(p * t..).unwrap_or_default().to_vec();
            Some(Tensor::from_vec(rows, (1, 1, n, t), &self.device)?)
        } else {
            None
        };
        Ok(Step {
            n,
            t,
            rope,
            causal,
            biases,
        })
    }

    /// Layer `l`'s attention over the normed input `hx` [1,n,d], its keys and values appended
    /// to `slot`: (output [1,n,d] before the projection, attention, biased scores).
    fn attention(
        &self,
        layer: &Layer,
        hx: &Tensor,
        slot: &mut Option<(Tensor, Tensor)>,
        step: &Step,
        l: usize,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let c = &self.config;
        let (h, kvh, n, t) = (c.heads, c.kv_heads, step.n, step.t);
        let dh = c.head_dim;
        let split = |m: &Dense, b: usize, heads: usize| -> candle_core::Result<Tensor> {
            let x = clip(c, project(layer, m, b, hx)?)?.reshape((1, n, heads, dh))?;
            head_norm(layer, b, x, c.rms_eps)?
                .transpose(1, 2)?
                .contiguous()
        };
        let (cos, sin) = step.rope.for_layer(c, l);
        let rot = |x: &Tensor| rope(x, cos, sin, c.rope_half);
        let q = rot(&split(&layer.q, 0, h)?)?;
        let k_new = rot(&split(&layer.k, 1, kvh)?)?;
        let v_new = split(&layer.v, 2, kvh)?;
        let (k, v) = match slot.take() {
            Some((k0, v0)) => (
                Tensor::cat(&[&k0, &k_new], 2)?,
                Tensor::cat(&[&v0, &v_new], 2)?,
            ),
            None => (k_new, v_new),
        };
        *slot = Some((k.clone(), v.clone()));
        // Grouped-query attention: each key/value head serves h / kvh query heads.
        let rep = h / kvh.max(1);
        let expand = |x: Tensor| -> candle_core::Result<Tensor> {
            if rep == 1 {
                return Ok(x);
            }
            x.unsqueeze(2)?
                .expand((1, kvh, rep, t, dh))?
                .reshape((1, h, t, dh))
        };
        let (k, v) = (expand(k)?, expand(v)?);
        let s = gemma::cap_scores(c, (q.matmul(&k.t()?)? * c.score_scale())?)?;
        let (a, z) = biased_attention(&s, step.biases.get(l), step.causal.as_ref(), |z| {
            crate::model::fused::softmax_rows(z)
        })?;
        let y = a
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((1, n, c.q_width()))?;
        Ok((y, a, z))
    }

    /// The logits of the token after `ids` [V] (the plain model).
    pub fn next_logits(&self, ids: &[u32]) -> anyhow::Result<Vec<f32>> {
        let out = self.forward_with(ids, &[], false)?;
        let t = ids.len();
        Ok(out
            .logits
            .squeeze(0)?
            .narrow(0, t - 1, 1)?
            .squeeze(0)?
            .to_vec1::<f32>()?)
    }
}

/// The projection `m` of `hx`, plus the layer's bias `b` (0, 1, 2: q, k, v) when it has them.
fn project(layer: &Layer, m: &Dense, b: usize, hx: &Tensor) -> candle_core::Result<Tensor> {
    let y = m.forward(hx)?;
    match layer.qkv_bias.as_ref().and_then(|bs| bs.get(b)) {
        Some(bias) => y.broadcast_add(bias),
        None => Ok(y),
    }
}

/// `x` [1,T,H,d_h] of projection `b` (0, 1, 2: q, k, v), each head's vector through the
/// layer's RMSNorm for it when it has them (Qwen3's `q_norm` and `k_norm`, before RoPE).
fn head_norm(layer: &Layer, b: usize, x: Tensor, eps: f64) -> candle_core::Result<Tensor> {
    gemma::qk_norm(layer, b, x, |t, w| {
        candle_nn::ops::rms_norm(t, w, eps as f32)
    })
}

/// RoPE on `x` [1,H,T,d_h]: Hugging Face's half-rotation layout when `half`, else llama.cpp's
/// interleaved one.
fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor, half: bool) -> candle_core::Result<Tensor> {
    if half {
        candle_nn::rotary_emb::rope(x, cos, sin)
    } else {
        candle_nn::rotary_emb::rope_i(x, cos, sin)
    }
}
