//! A pretrained model's frozen linear map, stored transposed: Wᵀ [in, out], contiguous.
//!
//! candle hands x·Wᵀ to gemm, which computes the row-major result as its transpose (Wx
//! column by column) and so packs W as its left operand. Stored [out, in] as the files keep
//! it, W then arrives row-major and gemm gathers it element by element with a stride: for
//! SmolLM2's 64-row products that packing took as long as the arithmetic (measured: 64×576×
//! 1536 in 0.86 ms against 0.77 ms, 64×1536×576 in 1.07 against 0.72 ms, one thread, AVX-512).
//! Stored [in, out], the same bytes arrive column-major and are copied in order.

use candle_core::Tensor;

use crate::model::fused::matmul_last;

/// y = x·Wᵀ with the weight kept as Wᵀ [in, out].
#[derive(Clone, Debug)]
pub(crate) struct Dense {
    wt: Tensor,
}

impl Dense {
    /// From a weight `w` [out, in], as checkpoints store it (transposed once, here).
    pub(crate) fn new(w: &Tensor) -> candle_core::Result<Self> {
        w.dims2()?;
        Ok(Self {
            wt: w.t()?.contiguous()?,
        })
    }

    /// The weight [out, in] (a transposed view: `.contiguous()` copies it).
    pub(crate) fn weight(&self) -> candle_core::Result<Tensor> {
        self.wt.t()
    }

    /// The stored Wᵀ [in, out].
    pub(crate) fn wt(&self) -> &Tensor {
        &self.wt
    }

    /// x [.., in] · Wᵀ: [.., out].
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        matmul_last(x, &self.wt)
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
