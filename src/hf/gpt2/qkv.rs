//! A fused q/k/v projection's rows in GPT-2's order — every head's query, then every head's
//! key, then every value [3d, …] — from the orders the families built on GPT-2's block store
//! them in, so that one forward reads them all.

use candle_core::Tensor;

/// `x`, a fused projection's weight [rows, d] or bias [rows] of a model of width `d` and `h`
/// query heads, in GPT-2's order. `groups` None: each head's q, k and v in turn [h, 3, d_h]
/// (GPT-NeoX, BLOOM, Falcon-RW, GPT-BigCode without `multi_query`). `groups` Some(kv): kv
/// groups, each its h/kv queries then one key and one value [kv, h/kv + 2, d_h] (Falcon's new
/// architecture; one group is all queries then one shared key and value, falcon-7b's and
/// GPT-BigCode's multi-query layout): each key and value repeated for the queries of its group.
pub(super) fn gpt2_order(
    x: &Tensor,
    (d, h): (usize, usize),
    groups: Option<usize>,
) -> candle_core::Result<Tensor> {
    let dh = d / h.max(1);
    let tail = x.dims().get(1..).unwrap_or_default().to_vec();
    let shaped = |dims: &[usize]| -> Vec<usize> { dims.iter().chain(&tail).copied().collect() };
    let Some(kv) = groups else {
        // (head, part, d_h) → (part, head, d_h).
        let x = x
            .reshape(shaped(&[h, 3, dh]))?
            .transpose(0, 1)?
            .contiguous()?;
        return x.reshape(shaped(&[3 * d]));
    };
    let g = h / kv.max(1);
    let x = x.reshape(shaped(&[kv, g + 2, dh]))?;
    let part = |at: usize, n: usize, times: usize| -> candle_core::Result<Tensor> {
        let p = x.narrow(1, at, n)?;
        Tensor::cat(&vec![&p; times], 1)?.reshape(shaped(&[d]))
    };
    Tensor::cat(&[part(0, g, 1)?, part(g, 1, g)?, part(g + 1, 1, g)?], 0)
}

/// `x`, a fused projection's weight [rows, d] or bias [rows] in llama.cpp's order — every query
/// head, then `kv` key heads, then `kv` value heads [d + 2·kv·d_h] (Falcon's `jploski` layout,
/// GPT-BigCode's, and GPT-2's own where kv = h) — in GPT-2's order: each key and value head
/// repeated for the h/kv query heads of its group (heads g·j … g·j + g − 1 share head j).
pub(super) fn repeat_kv(
    x: &Tensor,
    (d, h): (usize, usize),
    kv: usize,
) -> candle_core::Result<Tensor> {
    if kv == h {
        return Ok(x.clone());
    }
    let dh = d / h.max(1);
    let g = h / kv.max(1);
    let tail = x.dims().get(1..).unwrap_or_default().to_vec();
    let shaped = |dims: &[usize]| -> Vec<usize> { dims.iter().chain(&tail).copied().collect() };
    let part = |at: usize| -> candle_core::Result<Tensor> {
        let p = x.narrow(0, at, kv * dh)?.reshape(shaped(&[kv, 1, dh]))?;
        Tensor::cat(&vec![&p; g], 1)?.reshape(shaped(&[d]))
    };
    Tensor::cat(&[x.narrow(0, 0, d)?, part(d)?, part(d + kv * dh)?], 0)
}
