//! What fine-tuning needs of a decoder, whatever its family: its projections by name (read and
//! replaced as [out, in] matrices), a differentiable forward over a batch with what training
//! adds to each projection ([`ProjectionDelta`]), and its attention and queries for the
//! locality, anchor and rule terms. LLaMA-family decoders (GGUF, LLaMA and Qwen2 folders) and
//! GPT-2 implement it ([`TrainableDecoder`]).

use candle_core::{Device, Tensor, D};
use serde::{Deserialize, Serialize};

use crate::model::attention::{biased_attention, fused_biased_attention};
use crate::model::backend::AttentionModel;
use crate::model::transformer::ModelError;

/// A weight matrix of a decoder layer, named as GGUF files name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Projection {
    /// Queries.
    Q,
    /// Keys.
    K,
    /// Values.
    V,
    /// The attention's output.
    O,
    /// The MLP's gate.
    Gate,
    /// The MLP's up projection.
    Up,
    /// The MLP's down projection.
    Down,
}

impl Projection {
    /// Every projection, in layer order.
    pub const ALL: [Projection; 7] = [
        Self::Q,
        Self::K,
        Self::V,
        Self::O,
        Self::Gate,
        Self::Up,
        Self::Down,
    ];

    /// The GGUF name ("attn_q", ...), as in `blk.3.attn_q.weight`.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Self::Q => "attn_q",
            Self::K => "attn_k",
            Self::V => "attn_v",
            Self::O => "attn_output",
            Self::Gate => "ffn_gate",
            Self::Up => "ffn_up",
            Self::Down => "ffn_down",
        }
    }

    /// The projection a GGUF name ("attn_q") or a Hugging Face one ("q_proj") names.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "attn_q" | "q_proj" | "q" => Self::Q,
            "attn_k" | "k_proj" | "k" => Self::K,
            "attn_v" | "v_proj" | "v" => Self::V,
            "attn_output" | "o_proj" | "o" => Self::O,
            "ffn_gate" | "gate_proj" | "gate" => Self::Gate,
            "ffn_up" | "up_proj" | "up" => Self::Up,
            "ffn_down" | "down_proj" | "down" => Self::Down,
            _ => return None,
        })
    }
}

/// What fine-tuning adds to a decoder's projections.
pub trait ProjectionDelta {
    /// The addition to projection `p` of layer `l` for its input `x` [B,T,in], or None.
    fn delta(&self, l: usize, p: Projection, x: &Tensor) -> candle_core::Result<Option<Tensor>>;
}

/// No change: the base model.
pub struct NoDelta;

impl ProjectionDelta for NoDelta {
    fn delta(&self, _: usize, _: Projection, _: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(None)
    }
}

/// A training forward's results.
pub struct TrainForward {
    /// Next-token logits [B·T, V].
    pub logits: Tensor,
    /// Attention of every layer [B,H,T,T].
    pub attention: Vec<Tensor>,
    /// Queries of every layer as attention scores them [B,H,T,d_h] (after RoPE where the
    /// family has it): what the anchor loss classifies.
    pub queries: Vec<Tensor>,
}

/// A decoder that can be fine-tuned: adapters read, replace and add to its projections.
pub trait TrainableDecoder: AttentionModel {
    /// The family, as errors name it ("LLaMA-family decoder", "GPT-2").
    fn family(&self) -> &'static str;
    /// Number of layers.
    fn num_layers(&self) -> usize;
    /// Longest window it takes.
    fn context(&self) -> usize;
    /// Projection `p`'s weight [out, in] in layer `l` (an error naming what the family has
    /// when it has no such projection).
    fn projection(&self, l: usize, p: Projection) -> candle_core::Result<Tensor>;
    /// Replace projection `p` of layer `l` by `w` [out, in] (of the same shape).
    fn replace_projection(&mut self, l: usize, p: Projection, w: Tensor)
        -> candle_core::Result<()>;
    /// The forward over a batch `ids` [B,T] with `delta` added to the projections:
    /// differentiable in whatever `delta` holds, the base weights frozen.
    fn train_forward(
        &self,
        ids: &Tensor,
        delta: &dyn ProjectionDelta,
    ) -> Result<TrainForward, ModelError>;
    /// Itself as a model to capture, dial and evaluate.
    fn as_model(&self) -> &dyn AttentionModel;
    /// Where its tensors live.
    fn tensor_device(&self) -> &Device {
        self.as_model().device()
    }
}

/// An error when a replacement `new` for projection `p` of layer `l` of a `family` model does
/// not have the shape of the weight it replaces, `old`.
pub fn check_replacement(
    family: &str,
    l: usize,
    p: Projection,
    old: &Tensor,
    new: &Tensor,
) -> candle_core::Result<()> {
    if old.dims() != new.dims() {
        candle_core::bail!(
            "{family} layer {l} {}: the new weight is {:?}, the old {:?}",
            p.gguf_name(),
            new.dims(),
            old.dims()
        )
    }
    Ok(())
}

/// Attention of the training forwards: softmax(raw·scale + causal) over the keys, fused where
/// the fused op applies (it carries its own backward), else composed.
pub fn causal_attention(raw: &Tensor, causal: &Tensor, scale: f64) -> candle_core::Result<Tensor> {
    match fused_biased_attention(raw, None, Some(causal), scale)? {
        Some(a) => Ok(a),
        None => Ok(biased_attention(&(raw * scale)?, None, Some(causal), |z| {
            candle_nn::ops::softmax(z, D::Minus1)
        })?
        .0),
    }
}

/// (B, T) of a training batch `ids` [B,T], or the error for an empty window or one longer than
/// the model's `context`.
pub fn batch_dims(ids: &Tensor, context: usize) -> Result<(usize, usize), ModelError> {
    let (b, t) = ids.dims2()?;
    if t == 0 {
        return Err(ModelError::Input("empty input".into()));
    }
    if t > context {
        return Err(ModelError::TooLong(t, context));
    }
    Ok((b, t))
}
