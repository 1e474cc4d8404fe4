//! Column passes of the LLaMA view forward ([`crate::hf::gguf_llama::native`]) that read no
//! weight matrix: the token embedding and RoPE over feature-major activations.

use crate::model::transformer::ModelError;

/// Token rows of the embedding [T, d] into `out`, or an error for an id outside it.
pub(super) fn embed(
    table: &[f32],
    ids: &[u32],
    d: usize,
    out: &mut [f32],
) -> Result<(), ModelError> {
    for (row, &id) in out.chunks_mut(d).zip(ids) {
        let src = table
            .get(id as usize * d..(id as usize + 1) * d)
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "token id {id} is outside the vocabulary of {}",
                    table.len() / d.max(1)
                ))
            })?;
        row.copy_from_slice(src);
    }
    Ok(())
}

/// RoPE on the rows of `x` [heads·d_h, T]: llama.cpp's interleaved pairs (2i, 2i+1), or
/// Hugging Face's halves (i, i + d_h/2) when `half`.
pub(super) fn rope(
    x: &mut [f32],
    heads: usize,
    dh: usize,
    t: usize,
    (cos, sin): (&[f32], &[f32]),
    half: bool,
) {
    use rayon::prelude::*;
    let heads = heads.min(x.len() / (dh * t).max(1));
    let x = x.get_mut(..heads * dh * t).unwrap_or_default();
    let one = |hd: &mut [f32]| {
        for i in 0..dh / 2 {
            let (ra, rb) = if half {
                (i, i + dh / 2)
            } else {
                (2 * i, 2 * i + 1)
            };
            let (lo, hi) = hd.split_at_mut(rb * t);
            let (Some(a), Some(b)) = (lo.get_mut(ra * t..(ra + 1) * t), hi.get_mut(..t)) else {
                continue;
            };
            let (c, s) = (&cos[i * t..(i + 1) * t], &sin[i * t..(i + 1) * t]);
            for (((xa, xb), c), s) in a.iter_mut().zip(b.iter_mut()).zip(c).zip(s) {
                let (va, vb) = (*xa, *xb);
                *xa = va * c - vb * s;
                *xb = va * s + vb * c;
            }
        }
    };
    if !crate::model::native::cols::on_pool(x.len()) {
        x.chunks_mut(dh * t).for_each(one);
    } else {
        x.par_chunks_mut(dh * t).for_each(one);
    }
}
