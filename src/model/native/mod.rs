//! Our transformer's training pass without candle's autograd: forward and backward written
//! out over plain f32 buffers that live as long as the trainer (CPU).
//!
//! candle builds a graph of a few hundred tensors per step, zero-fills every gradient before
//! adding to it, and hands each small product to gemm through its own layout logic: a tiny
//! training step spent more of its time there than in arithmetic (21k tokens/s against
//! PyTorch's 33k on one thread). Here a step is a fixed sequence of gemm calls on views of a
//! [`Workspace`] made once per batch shape: heads are read in place from the packed q|k|v rows,
//! transposes are strides, each weight gradient is written by the product that makes it, and
//! biases are added by starting the product from them. The row kernels (LayerNorm, biased
//! softmax, tanh-GELU) are the fused candle ops' own, so both paths compute the same numbers;
//! `tests/native_step.rs` checks losses and gradients against the candle path.
//!
//! What it covers: our transformer (any size, GELU or ReLU, tied or untied head) under one
//! additive attention bias per sequence and a temperature (the causal mask, or the mode-A dial
//! during training), cross-entropy, and terms on the attention weights or the queries through
//! [`AttentionTerm`] (the off-block group lasso, the anchor loss). Anything else (the rule
//! penalty, another device) stays on the candle path.

pub mod awake;
mod backward;
pub mod bf16;
mod causal;
pub(crate) mod cols;
mod forward;
pub mod gemm;
pub(crate) mod heads;
mod infer;
mod params;
pub mod pinned;
mod workspace;

pub use backward::backward;
pub use forward::forward;
pub use heads::HostBias;
pub use infer::{infer, infer_feature_major, Inferred};
pub use params::{param_lengths, with_model_refs, LayerRefs, LayerSet, ParamRefs, ParamSet};
pub use workspace::{Dims, Workspace};

/// Errors of the native pass: a shape that does not fit, or input outside the model.
#[derive(Debug, thiserror::Error)]
pub enum NativeError {
    /// A buffer or parameter of the wrong size.
    #[error("native pass: {0}")]
    Shape(String),
    /// Input the model cannot take (a token outside the vocabulary).
    #[error("{0}")]
    Input(String),
    /// Reading the weights from candle failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// One shard's input: token ids and targets [B·T], and the attention bias [B, T, T] (−∞ on
/// invisible keys) applied as softmax((q·kᵀ/√d_h + bias)/τ) in every layer.
#[derive(Clone, Copy, Debug)]
pub struct NativeBatch<'a> {
    /// Input ids [B·T].
    pub ids: &'a [u32],
    /// Next-token targets [B·T].
    pub targets: &'a [u32],
    /// Additive bias [B, T, T].
    pub bias: &'a [f32],
    /// Softmax temperature τ.
    pub tau: f32,
}

impl NativeBatch<'_> {
    fn check(&self, dims: &Dims) -> Result<(), NativeError> {
        let n = dims.n();
        if self.ids.len() != n
            || self.targets.len() != n
            || self.bias.len() != dims.b * dims.t * dims.t
        {
            return Err(NativeError::Shape(format!(
                "a batch of {} ids, {} targets and {} bias cells does not fit B = {}, T = {}",
                self.ids.len(),
                self.targets.len(),
                self.bias.len(),
                dims.b,
                dims.t
            )));
        }
        Ok(())
    }
}

/// A loss term on one layer's attention weights [B, H, T, T] (the locality penalty), with its
/// gradient.
pub trait AttentionTerm: Sync {
    /// Adds ∂term/∂att to `out` for layer `layer`'s attention `att` with `heads` heads (the
    /// caller has measured the term's value on the same attention).
    fn add_grad(&self, layer: usize, att: &[f32], heads: usize, out: &mut [f32]);

    /// Adds ∂term/∂q to the query columns of `dqkv` [N, 3d] for layer `layer` (a term on the
    /// queries, such as the anchor loss); none by default.
    fn add_query_grad(&self, _layer: usize, _dqkv: &mut [f32]) {}
}

impl From<NativeError> for crate::model::transformer::ModelError {
    fn from(e: NativeError) -> Self {
        Self::Input(e.to_string())
    }
}
