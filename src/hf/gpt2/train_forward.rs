//! GPT-2 as a [`TrainableDecoder`]: its projections named as the LLaMA decoders name theirs
//! (q, k and v are the three column slices of the fused `c_attn`; `attn_output` is
//! `attn.c_proj`, `ffn_up` is `mlp.c_fc`, `ffn_down` is `mlp.c_proj`; GPT-2 has no gate), and
//! a differentiable forward over a batch: the same computation as
//! [`Gpt2::forward_cached`] at the plain model, from ops that carry gradients (our LayerNorm
//! and tanh-GELU), frozen weights that get none ([`frozen_matmul`]) and the delta added to
//! each projection's output.

use candle_core::{Tensor, D};

use crate::hf::family::Family;
use crate::hf::gpt2::{Affine, Block, Gpt2};
use crate::hf::trainable::{
    batch_dims, causal_attention, check_replacement, Projection, ProjectionDelta, TrainForward,
    TrainableDecoder,
};
use crate::model::attention::causal_tensor;
use crate::model::backend::AttentionModel;
use crate::model::fused::{frozen_linear, frozen_matmul, layer_norm};
use crate::model::gelu::gelu_tanh;
use crate::model::transformer::ModelError;

/// What GPT-2 has, for errors.
const GPT2_PROJECTIONS: &str = "attn_q, attn_k, attn_v (slices of attn.c_attn), attn_output \
                                (attn.c_proj), ffn_up (mlp.c_fc), ffn_down (mlp.c_proj)";
/// What GPT-Neo has, for errors.
const NEO_PROJECTIONS: &str = "attn_q, attn_k, attn_v (attn.attention.q_proj, k_proj, v_proj), \
                               attn_output (attn.attention.out_proj), ffn_up (mlp.c_fc), \
                               ffn_down (mlp.c_proj)";
/// What Phi has, for errors.
const PHI_PROJECTIONS: &str = "attn_q, attn_k, attn_v (self_attn.q_proj, k_proj, v_proj), \
                               attn_output (self_attn.dense), ffn_up (mlp.fc1), ffn_down \
                               (mlp.fc2)";
/// What OPT has, for errors.
const OPT_PROJECTIONS: &str = "attn_q, attn_k, attn_v (self_attn.q_proj, k_proj, v_proj), \
                               attn_output (self_attn.out_proj), ffn_up (fc1), ffn_down (fc2)";
/// What BLOOM has, for errors.
const BLOOM_PROJECTIONS: &str = "attn_q, attn_k, attn_v (parts of \
                                 self_attention.query_key_value), attn_output \
                                 (self_attention.dense), ffn_up (mlp.dense_h_to_4h), ffn_down \
                                 (mlp.dense_4h_to_h)";
/// What GPT-NeoX has, for errors.
/// What GPT-J has, for errors.
const GPTJ_PROJECTIONS: &str = "attn_q, attn_k, attn_v (attn.q_proj, k_proj, v_proj), \
                                attn_output (attn.out_proj), ffn_up (mlp.fc_in), ffn_down \
                                (mlp.fc_out)";
/// What CodeGen has, for errors.
const CODEGEN_PROJECTIONS: &str = "attn_q, attn_k, attn_v (parts of attn.qkv_proj), \
                                   attn_output (attn.out_proj), ffn_up (mlp.fc_in), ffn_down \
                                   (mlp.fc_out)";
/// What StarCoder2 has, for errors.
const STARCODER2_PROJECTIONS: &str = "attn_q, attn_k, attn_v (self_attn.q_proj, k_proj, \
                                      v_proj), attn_output (self_attn.o_proj), ffn_up \
                                      (mlp.c_fc), ffn_down (mlp.c_proj)";
/// What MPT has, for errors.
const MPT_PROJECTIONS: &str = "attn_q, attn_k, attn_v (slices of attn.Wqkv), attn_output \
                               (attn.out_proj), ffn_up (ffn.up_proj), ffn_down (ffn.down_proj)";
const NEOX_PROJECTIONS: &str = "attn_q, attn_k, attn_v (parts of attention.query_key_value), \
                                attn_output (attention.dense), ffn_up (mlp.dense_h_to_4h), \
                                ffn_down (mlp.dense_4h_to_h)";

impl Gpt2 {
    /// Block `l`, or an error naming it.
    fn block(&self, l: usize) -> candle_core::Result<&Block> {
        self.blocks
            .get(l)
            .ok_or_else(|| candle_core::Error::Msg(format!("{}: no layer {l}", self.family_name())))
    }

    /// The `Conv1D` holding projection `p` and, for q/k/v, which third of its columns.
    fn conv_of<'a>(
        &self,
        block: &'a Block,
        p: Projection,
    ) -> candle_core::Result<(&'a Affine, Option<usize>)> {
        Ok(match p {
            Projection::Q => (&block.c_attn, Some(0)),
            Projection::K => (&block.c_attn, Some(1)),
            Projection::V => (&block.c_attn, Some(2)),
            Projection::O => (&block.c_proj, None),
            Projection::Up => (&block.c_fc, None),
            Projection::Down => (&block.mlp_proj, None),
            Projection::Gate => candle_core::bail!(
                "{} has no {}: its projections are {}",
                self.family_name(),
                p.gguf_name(),
                match self.family {
                    Family::GptNeox => NEOX_PROJECTIONS,
                    Family::GptNeo => NEO_PROJECTIONS,
                    Family::Phi => PHI_PROJECTIONS,
                    Family::Opt => OPT_PROJECTIONS,
                    Family::Bloom => BLOOM_PROJECTIONS,
                    Family::Mpt => MPT_PROJECTIONS,
                    Family::GptJ => GPTJ_PROJECTIONS,
                    Family::CodeGen => CODEGEN_PROJECTIONS,
                    Family::Starcoder2 => STARCODER2_PROJECTIONS,
                    _ => GPT2_PROJECTIONS,
                }
            ),
        })
    }

    /// LayerNorm with a backward pass (candle's fused one has none).
    fn norm_train(&self, x: &Tensor, (w, b): &Affine) -> candle_core::Result<Tensor> {
        layer_norm(x, w, b, self.config.layer_norm_epsilon)
    }

    /// `Conv1D` `c` applied to `x` [B,T,in], frozen, plus `delta`'s addition for `p`.
    fn conv_train(c: &Affine, x: &Tensor, add: Option<Tensor>) -> candle_core::Result<Tensor> {
        let y = frozen_matmul(x, &c.0)?.broadcast_add(&c.1)?;
        match add {
            Some(d) => y + d,
            None => Ok(y),
        }
    }

    /// One block over `x` [B,T,d]: (its output, attention [B,H,T,T], queries [B,H,T,d_h]).
    fn block_train(
        &self,
        l: usize,
        x: Tensor,
        (causal, tables): (&Tensor, Option<&(Tensor, Tensor)>),
        delta: &dyn ProjectionDelta,
    ) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
        let block = self.block(l)?;
        let (b, t, d) = x.dims3()?;
        let h = self.config.n_head;
        let hx = match self.post_norm {
            true => x.clone(),
            false => self.norm_train(&x, &block.ln_1)?,
        };
        let fused = frozen_matmul(&hx, &block.c_attn.0)?.broadcast_add(&block.c_attn.1)?;
        let head = |i: usize, p: Projection| -> candle_core::Result<Tensor> {
            let mut y = fused.narrow(D::Minus1, i * d, d)?;
            if let Some(add) = delta.delta(l, p, &hx)? {
                y = (y + add)?;
            }
            y.reshape((b, t, h, d / h))?.transpose(1, 2)?.contiguous()
        };
        let (q, k, v) = (
            self.rotate(head(0, Projection::Q)?, tables, true)?,
            self.rotate(head(1, Projection::K)?, tables, true)?,
            head(2, Projection::V)?,
        );
        let mut raw = q.matmul(&k.t()?)?;
        if let Some(alibi) = self.alibi_bias(t)? {
            // causal_attention scales what it is given: ALiBi's bias enters unscaled.
            raw = raw.broadcast_add(&(alibi / self.scale())?)?;
        }
        let a = causal_attention(&raw, causal, self.scale())?;
        let y = a
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, t, d))?;
        let mut attended =
            (&x + Self::conv_train(&block.c_proj, &y, delta.delta(l, Projection::O, &y)?)?)?;
        if self.post_norm {
            attended = self.norm_train(&attended, &block.ln_1)?;
        }
        let mlp_in = if self.parallel { &x } else { &attended };
        let hx = match self.post_norm {
            true => mlp_in.clone(),
            false => self.norm_train(mlp_in, &block.ln_2)?,
        };
        let f = Self::conv_train(&block.c_fc, &hx, delta.delta(l, Projection::Up, &hx)?)?;
        let f = self.config.activate(&f, gelu_tanh)?;
        let down = delta.delta(l, Projection::Down, &f)?;
        let mut x = (attended + Self::conv_train(&block.mlp_proj, &f, down)?)?;
        if self.post_norm {
            x = self.norm_train(&x, &block.ln_2)?;
        }
        Ok((x, a, q))
    }
}

impl TrainableDecoder for Gpt2 {
    fn family(&self) -> &'static str {
        self.family_name()
    }

    fn num_layers(&self) -> usize {
        self.config.n_layer
    }

    fn context(&self) -> usize {
        self.config.n_positions
    }

    fn projection(&self, l: usize, p: Projection) -> candle_core::Result<Tensor> {
        let (conv, third) = self.conv_of(self.block(l)?, p)?;
        let w = match third {
            Some(i) => {
                let d = self.config.n_embd;
                conv.0.narrow(1, i * d, d)?
            }
            None => conv.0.clone(),
        };
        w.t()?.contiguous()
    }

    fn replace_projection(
        &mut self,
        l: usize,
        p: Projection,
        w: Tensor,
    ) -> candle_core::Result<()> {
        check_replacement(self.family(), l, p, &self.projection(l, p)?, &w)?;
        let d = self.config.n_embd;
        let block = self.block(l)?;
        let (conv, third) = self.conv_of(block, p)?;
        let new = match third {
            Some(i) => {
                let mut parts: Vec<Tensor> = (0..3)
                    .map(|j| conv.0.narrow(1, j * d, d))
                    .collect::<candle_core::Result<_>>()?;
                parts[i] = w.t()?;
                Tensor::cat(&parts, 1)?.contiguous()?
            }
            None => w.t()?.contiguous()?,
        };
        let family = self.family_name();
        let block = self
            .blocks
            .get_mut(l)
            .ok_or_else(|| candle_core::Error::Msg(format!("{family}: no layer {l}")))?;
        let slot = match p {
            Projection::Q | Projection::K | Projection::V => &mut block.c_attn,
            Projection::O => &mut block.c_proj,
            Projection::Up => &mut block.c_fc,
            Projection::Down | Projection::Gate => &mut block.mlp_proj,
        };
        slot.0 = new;
        // The native pass's copy of the weights is made again from these.
        self.native.take();
        Ok(())
    }

    fn train_forward(
        &self,
        ids: &Tensor,
        delta: &dyn ProjectionDelta,
    ) -> Result<TrainForward, ModelError> {
        let c = &self.config;
        let (b, t) = batch_dims(ids, c.n_positions)?;
        let causal = causal_tensor(b, t, &self.device)?;
        let mut x = self.wte.embedding(&ids.flatten_all()?)?;
        if let Some(project) = &self.project {
            x = frozen_matmul(&x, &project.input)?;
        }
        let mut x = x.reshape((b, t, c.n_embd))?;
        if let Some(wpe) = &self.wpe {
            x = x.broadcast_add(&wpe.narrow(0, 0, t)?)?;
        }
        if let Some(norm) = &self.embed_norm {
            x = self.norm_train(&x, norm)?;
        }
        let tables = self.rope_tables(0, t)?;
        let mut attention = Vec::with_capacity(c.n_layer);
        let mut queries = Vec::with_capacity(c.n_layer);
        for l in 0..self.blocks.len() {
            let (next, a, q) = self.block_train(l, x, (&causal, tables.as_ref()), delta)?;
            x = next;
            attention.push(a);
            queries.push(q);
        }
        if let Some(norm) = &self.ln_f {
            x = self.norm_train(&x, norm)?;
        }
        if let Some(project) = &self.project {
            x = frozen_matmul(&x, &project.output)?;
        }
        let mut logits = frozen_linear(&x, &self.head)?.reshape((b * t, c.vocab_size))?;
        if let Some(bias) = &self.head_bias {
            logits = logits.broadcast_add(bias)?;
        }
        Ok(TrainForward {
            logits,
            attention,
            queries,
        })
    }

    fn as_model(&self) -> &dyn AttentionModel {
        self
    }
}
