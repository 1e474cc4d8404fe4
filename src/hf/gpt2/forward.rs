//! The forward pass of GPT-2: token plus learned position embeddings, then per block
//! LayerNorm, causal attention from one fused q/k/v projection under the dial's and rules'
//! biases ([`biased_attention`]), and a GELU MLP; a final LayerNorm and the head. Incremental
//! over a [`KvCache`], and streamed over chunks of query rows for long captures, as the LLaMA
//! decoders are. GPT-NeoX's differences: RoPE on part of each head's q and k instead of learned
//! positions, and the MLP reading the block's input beside attention.

use candle_core::{Tensor, D};

use crate::hf::gpt2::{Affine, Block, Gpt2, Rotary};
use crate::model::attention::{biased_attention, AttentionBias};
use crate::model::backend::{KvCache, RowStream};
use crate::model::dial::causal_bias;
use crate::model::fused::matmul_last;
use crate::model::transformer::{ForwardOutput, ModelError};

/// `x` [1,n,in] through a `Conv1D` (weight [in,out], bias [out]): [1,n,out].
fn conv1d(x: &Tensor, (w, b): &Affine) -> candle_core::Result<Tensor> {
    matmul_last(x, w)?.broadcast_add(b)
}

impl Gpt2 {
    fn layer_norm(&self, x: &Tensor, (w, b): &Affine) -> candle_core::Result<Tensor> {
        candle_nn::ops::layer_norm(x, w, b, self.config.layer_norm_epsilon as f32)
    }

    /// Embeddings of `ids` at positions p..p+n: [1,n,d].
    fn embed(&self, ids: &[u32], p: usize) -> Result<Tensor, ModelError> {
        let n = ids.len();
        if n == 0 {
            return Err(ModelError::Input("empty input".into()));
        }
        if p + n > self.config.n_positions {
            return Err(ModelError::TooLong(p + n, self.config.n_positions));
        }
        let input = Tensor::from_vec(ids.to_vec(), n, &self.device)?;
        let x = self.wte.embedding(&input)?;
        let x = match &self.project {
            Some(project) => x.matmul(&project.input)?,
            None => x,
        };
        let x = match &self.wpe {
            Some(wpe) => x.broadcast_add(&wpe.narrow(0, p, n)?)?,
            None => x,
        };
        let x = match &self.embed_norm {
            Some(norm) => self.layer_norm(&x, norm)?,
            None => x,
        };
        Ok(x.unsqueeze(0)?)
    }

    /// ALiBi's bias [1,H,1,kt] over keys 0..kt (slope · key position), when positions are
    /// ALiBi's: each row's softmax sees slope · (j − i) up to a constant.
    pub(super) fn alibi_bias(&self, kt: usize) -> candle_core::Result<Option<Tensor>> {
        let Some(alibi) = &self.alibi else {
            return Ok(None);
        };
        let h = alibi.slopes.len();
        let rows: Vec<f32> = (0..h)
            .flat_map(|hh| (0..kt).map(move |j| alibi.at(hh, j)))
            .collect();
        Ok(Some(Tensor::from_vec(rows, (1, h, 1, kt), &self.device)?))
    }

    /// Scaled scores q·kᵀ/√d_h (or unscaled, GPT-Neo) of queries `q` [1,H,n,d_h] against keys
    /// `k` [1,H,kt,d_h] from position 0, with ALiBi's bias where the model has it.
    fn scores(&self, q: &Tensor, k: &Tensor) -> candle_core::Result<Tensor> {
        let s = (q.matmul(&k.t()?)? * self.scale())?;
        match self.alibi_bias(k.dim(2)?)? {
            Some(b) => s.broadcast_add(&b),
            None => Ok(s),
        }
    }

    /// RoPE's tables (cos, sin) [n, dims/2] of positions p..p+n, when positions are rotary.
    pub(super) fn rope_tables(
        &self,
        p: usize,
        n: usize,
    ) -> candle_core::Result<Option<(Tensor, Tensor)>> {
        let Some(Rotary { inv_freq, .. }) = &self.rotary else {
            return Ok(None);
        };
        let half = inv_freq.len();
        let inv = Tensor::from_vec(inv_freq.clone(), (1, half), &self.device)?;
        let pos = Tensor::arange(p as u32, (p + n) as u32, &self.device)?
            .to_dtype(candle_core::DType::F32)?
            .reshape((n, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        Ok(Some((freqs.cos()?, freqs.sin()?)))
    }

    /// `x` [B,H,n,d_h] with RoPE applied to its first `dims` dimensions by candle's fused op
    /// for inference, or its composed one where gradients must flow (`grad`).
    pub(super) fn rotate(
        &self,
        x: Tensor,
        tables: Option<&(Tensor, Tensor)>,
        grad: bool,
    ) -> candle_core::Result<Tensor> {
        let (Some(r), Some((cos, sin))) = (&self.rotary, tables) else {
            return Ok(x);
        };
        let dh = x.dim(D::Minus1)?;
        let turned = r.op(grad)(&x.narrow(D::Minus1, 0, r.dims)?.contiguous()?, cos, sin)?;
        if r.dims == dh {
            return Ok(turned);
        }
        Tensor::cat(
            &[&turned, &x.narrow(D::Minus1, r.dims, dh - r.dims)?],
            D::Minus1,
        )?
        .contiguous()
    }

    /// q, k and v of the normed input `hx` [1,n,d], each [1,H,n,d_h], with q and k rotated at
    /// their positions by `tables` when positions are rotary.
    fn qkv(
        &self,
        block: &Block,
        hx: &Tensor,
        tables: Option<&(Tensor, Tensor)>,
    ) -> candle_core::Result<[Tensor; 3]> {
        let (h, d) = (self.config.n_head, self.config.n_embd);
        let n = hx.dim(1)?;
        let fused = conv1d(hx, &block.c_attn)?;
        let head = |i: usize| -> candle_core::Result<Tensor> {
            fused
                .narrow(D::Minus1, i * d, d)?
                .reshape((1, n, h, d / h))?
                .transpose(1, 2)?
                .contiguous()
        };
        Ok([
            self.rotate(head(0)?, tables, false)?,
            self.rotate(head(1)?, tables, false)?,
            head(2)?,
        ])
    }

    /// What attention reads of a block's input `x`: `x` normed by the block's `ln_1`, or `x`
    /// itself where the norm follows the sub-layer (OPT-350m's).
    fn attention_input(&self, x: &Tensor, block: &Block) -> candle_core::Result<Tensor> {
        match self.post_norm {
            true => Ok(x.clone()),
            false => self.layer_norm(x, &block.ln_1),
        }
    }

    /// The rest of a block once attention's output `y` [1,n,d] (heads merged) is known: the
    /// MLP reads the block's input `x` beside attention (GPT-NeoX's parallel residual) or what
    /// attention made of it (GPT-2); where the norms follow the sub-layers (OPT-350m), `ln_1`
    /// norms the sum after attention and `ln_2` the sum after the MLP.
    fn finish_block(&self, block: &Block, x: Tensor, y: &Tensor) -> candle_core::Result<Tensor> {
        let mut attended = (&x + conv1d(y, &block.c_proj)?)?;
        if self.post_norm {
            attended = self.layer_norm(&attended, &block.ln_1)?;
        }
        let mlp_in = if self.parallel { &x } else { &attended };
        let hx = match self.post_norm {
            true => mlp_in.clone(),
            false => self.layer_norm(mlp_in, &block.ln_2)?,
        };
        let f = conv1d(&hx, &block.c_fc)?;
        let f = self.config.activate(&f, Tensor::gelu)?;
        let out = (attended + conv1d(&f, &block.mlp_proj)?)?;
        match self.post_norm {
            true => self.layer_norm(&out, &block.ln_2),
            false => Ok(out),
        }
    }

    /// The last block's output `x` [1,n,d] as the head reads it: through the final LayerNorm
    /// where the model has one, and projected out to the embeddings' width where they are
    /// narrower (OPT-350m's).
    fn head_input(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = match &self.ln_f {
            Some(norm) => self.layer_norm(x, norm)?,
            None => x.clone(),
        };
        match &self.project {
            Some(project) => matmul_last(&x, &project.output),
            None => Ok(x),
        }
    }

    pub(super) fn scale(&self) -> f64 {
        if self.config.scale_attn_weights {
            1.0 / ((self.config.n_embd / self.config.n_head) as f64).sqrt()
        } else {
            1.0
        }
    }

    /// Forward over the new tokens `ids` at positions P..P+n, where P is what `cache` already
    /// holds, appending their keys and values to it. Each bias covers rows P..P+n and keys
    /// 0..P+n. Returns logits \[1,n,V\] (empty \[1,n,0\] unless `logits`) and attention
    /// [1,H,n,P+n] per layer (and the biased scores when `keep_scores`).
    pub fn forward_cached(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
        cache: &mut KvCache,
        logits: bool,
    ) -> Result<ForwardOutput, ModelError> {
        let (p, n) = (cache.len(), ids.len());
        let mut x = self.embed(ids, p)?;
        let tables = self.rope_tables(p, n)?;
        let t = p + n;
        let causal = if biases.len() < self.config.n_layer {
            let rows = causal_bias(t).get(p * t..).unwrap_or_default().to_vec();
            Some(Tensor::from_vec(rows, (1, 1, n, t), &self.device)?)
        } else {
            None
        };
        let mut out = ForwardOutput {
            logits: x.clone(),
            attention: Vec::with_capacity(self.blocks.len()),
            scores: Vec::new(),
            queries: Vec::new(),
        };
        cache.layers.resize_with(self.blocks.len(), || None);
        for ((l, block), slot) in self.blocks.iter().enumerate().zip(&mut cache.layers) {
            let hx = self.attention_input(&x, block)?;
            let [q, k_new, v_new] = self.qkv(block, &hx, tables.as_ref())?;
            let (k, v) = match slot.take() {
                Some((k0, v0)) => (
                    Tensor::cat(&[&k0, &k_new], 2)?,
                    Tensor::cat(&[&v0, &v_new], 2)?,
                ),
                None => (k_new, v_new),
            };
            let s = self.scores(&q, &k)?;
            let (a, z) = biased_attention(&s, biases.get(l), causal.as_ref(), |z| {
                crate::model::fused::softmax_rows(z)
            })?;
            let y = merge_heads(&a.matmul(&v)?)?;
            *slot = Some((k, v));
            x = self.finish_block(block, x, &y)?;
            out.attention.push(a);
            if keep_scores {
                out.scores.push(z);
            }
        }
        cache.len = t;
        out.logits = if logits {
            let x = self.head_input(&x)?;
            let logits = x.squeeze(0)?.matmul(&self.head_t)?;
            match &self.head_bias {
                Some(b) => logits.broadcast_add(b)?.unsqueeze(0)?,
                None => logits.unsqueeze(0)?,
            }
        } else {
            Tensor::zeros((1, n, 0), candle_core::DType::F32, &self.device)?
        };
        Ok(out)
    }

    /// The forward of a streamed capture: per block, the queries of `chunk_rows` positions at
    /// a time against the keys they can see (rows r0..r0+n see keys 0..r0+n), each chunk's
    /// attention handed to `stream` and dropped. No logits.
    pub fn forward_rows(
        &self,
        ids: &[u32],
        chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        let mut x = self.embed(ids, 0)?;
        let t = ids.len();
        let tables = self.rope_tables(0, t)?;
        let chunk = chunk_rows.max(1);
        for (l, block) in self.blocks.iter().enumerate() {
            let hx = self.attention_input(&x, block)?;
            let [q, k, v] = self.qkv(block, &hx, tables.as_ref())?;
            let mut ys = Vec::with_capacity(t.div_ceil(chunk));
            for r0 in (0..t).step_by(chunk) {
                let n = chunk.min(t - r0);
                let kt = r0 + n;
                let kc = k.narrow(2, 0, kt)?.contiguous()?;
                let s = self.scores(&q.narrow(2, r0, n)?, &kc)?;
                let bias = stream.bias(l, r0, n, kt)?;
                let (a, z) = biased_attention(&s, Some(&bias), None, |z| {
                    crate::model::fused::softmax_rows(z)
                })?;
                ys.push(a.matmul(&v.narrow(2, 0, kt)?.contiguous()?)?);
                stream.rows(l, r0, &a, &z)?;
            }
            let y = merge_heads(&Tensor::cat(&ys, 2)?)?;
            x = self.finish_block(block, x, &y)?;
            stream.layer_done(l)?;
        }
        Ok(())
    }
}

/// Heads [1,H,n,d_h] back to [1,n,H·d_h].
fn merge_heads(y: &Tensor) -> candle_core::Result<Tensor> {
    let (_, h, n, dh) = y.dims4()?;
    y.transpose(1, 2)?.contiguous()?.reshape((1, n, h * dh))
}
