//! A pretrained model's frozen linear map, W [out, in] as checkpoints store it.
//!
//! Where the products run matters more than how the weight is stored, as long as it is read
//! the way gemm wants it. The views of a short text (a capture over a few dozen positions) go
//! through the native pass ([`crate::hf::gguf_llama::native`]), which keeps activations
//! feature-major and computes W·xᵀ: W is then gemm's right operand, read in place, never
//! packed (measured on SmolLM2's 64-row products, one thread, AVX-512: 64×576×1536 in 0.53 ms
//! against 0.73 ms for x·Wᵀ with Wᵀ stored [in, out], which gemm packs per call, and 0.86 ms
//! with W [out, in] read row-major). candle's path here (x·Wᵀ, for generation over the KV
//! cache, long streamed texts and fine-tuning) reads W as a matrix-vector product for one row
//! and packs it once per product over hundreds of rows, where that costs little. A tied head
//! shares the embedding's storage.

use candle_core::Tensor;

use crate::model::fused::matmul_last;

/// y = x·Wᵀ with the weight kept as W [out, in].
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    w: Tensor,
}

impl Dense {
    /// From a weight `w` [out, in], as checkpoints store it (shared, not copied, when it is
    /// contiguous already).
    pub(crate) fn new(w: &Tensor) -> candle_core::Result<Self> {
        w.dims2()?;
        Ok(Self { w: w.contiguous()? })
    }

    /// The weight [out, in].
    pub(crate) fn weight(&self) -> candle_core::Result<Tensor> {
        Ok(self.w.clone())
    }

    /// The stored weight [out, in], contiguous.
    pub(crate) fn w(&self) -> &Tensor {
        &self.w
    }

    /// x [.., in] · Wᵀ: [.., out] through candle.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        matmul_last(x, &self.w.t()?)
    }
}

/// Below this many rows two products with the same input run side by side (one thread each)
/// when there are threads to spare: at 64 rows gemm splits a product poorly over two threads.
const PAIRED_ROWS: usize = 256;

/// (x·Aᵀ, x·Bᵀ): side by side on rayon's threads for a few rows when there are threads to
/// spare, else one after the other.
pub(crate) fn forward_pair(
    a: &Dense,
    b: &Dense,
    x: &Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let rows = x.elem_count() / x.dims().last().copied().unwrap_or(1).max(1);
    let (ya, yb) = if rows <= PAIRED_ROWS && candle_core::utils::get_num_threads() > 1 {
        rayon::join(|| a.forward(x), || b.forward(x))
    } else {
        (a.forward(x), b.forward(x))
    };
    Ok((ya?, yb?))
}
