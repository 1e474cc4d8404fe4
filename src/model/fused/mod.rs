//! Fused CPU ops with hand-written backward passes: row softmax, LayerNorm, bias addition and
//! products with a frozen weight.
//!
//! candle differentiates softmax and LayerNorm through chains of small tensor ops, and the
//! gradient of a broadcast bias through a generic reduction that does a division per element;
//! together they made a tiny-model training step several times slower than PyTorch's. Each op
//! here is one pass forward and one pass backward over contiguous f32 rows, with the forward
//! arithmetic of the composed version (so the PyTorch parity test still holds). On other
//! devices or dtypes the callers fall back to composed candle ops.

pub(crate) mod attention;
mod bias;
pub(crate) mod exp;
mod frozen;
pub(crate) mod layer_norm;
pub mod simd;
mod softmax;
#[cfg(test)]
mod tests;

use candle_core::{CpuStorage, DType, Layout, Tensor};

pub use attention::biased_softmax;
pub use bias::add_bias;
pub use frozen::{frozen_linear, frozen_matmul, matmul_last};
pub use layer_norm::layer_norm;
pub use softmax::{softmax_last, softmax_rows};

/// The contiguous f32 data of a CPU tensor, or an error naming `op`.
pub(crate) fn slice<'a>(
    storage: &'a CpuStorage,
    layout: &Layout,
    op: &str,
) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(v) = storage else {
        candle_core::bail!("{op}: expected f32 storage")
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("{op}: expected a contiguous tensor")
    };
    v.get(start..end)
        .ok_or_else(|| candle_core::Error::Msg(format!("{op}: layout out of range")))
}

/// Length of the last axis (at least 1): the row length of the row-wise ops.
fn last_dim(layout: &Layout) -> usize {
    layout.dims().last().copied().unwrap_or(1).max(1)
}

/// True when the fused CPU path applies.
pub fn fused_ok(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}
