//! The streamed forward of a LLaMA-family decoder on the CPU without candle's per-op tensors
//! (a long text's capture): per layer, the queries of `chunk_rows` positions at a time against
//! the keys they can see, each chunk's attention and scores handed to the stream and dropped,
//! so memory grows with T·chunk instead of T². The projections and the MLP are the native view
//! pass's ([`super::native`]); the heads of a chunk run in parallel on the pool's threads. The
//! arithmetic is candle's streamed forward's (`GgufLlama::forward_rows_candle`), checked
//! against it in `tests/native_llama.rs`.

use std::cell::RefCell;

use rayon::prelude::*;

use super::native::{embed, layer_slices, mlp_layer, project_qkv, Buffers, LayerSlices, Shape};
use crate::hf::gguf_llama::GgufLlama;
use crate::model::backend::{ChunkSink, RowStream};
use crate::model::native::cols::transpose;
use crate::model::native::gemm::{weight_product, View, ViewMut};
use crate::model::native::heads::{attend, HeadScratch, HeadViews, HostBias};
use crate::model::transformer::ModelError;

thread_local! {
    /// One head's scratch on this thread, grown to the largest chunk seen and kept (a chunk
    /// of a long text needs megabytes, every chunk of every layer).
    static SCRATCH: RefCell<HeadScratch> = RefCell::new(HeadScratch::rows(0, 0));
}

impl GgufLlama {
    /// The streamed forward ([`GgufLlama::forward_rows_candle`]) natively, or None where it does not
    /// apply (another device, weights not f32): the caller then runs candle's.
    pub fn forward_rows_native(
        &self,
        ids: &[u32],
        chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Option<Result<(), ModelError>> {
        if !self.device.is_cpu() || ids.is_empty() || ids.len() > self.config.context {
            return None;
        }
        self.with_weights(|w, starts| self.run_rows(ids, chunk_rows.max(1), stream, (w, starts)))
    }

    /// [`forward_rows_native`](Self::forward_rows_native) over the weights' slices.
    fn run_rows(
        &self,
        ids: &[u32],
        chunk: usize,
        stream: &mut dyn RowStream,
        (w, starts): (&[&[f32]], &[usize]),
    ) -> Result<(), ModelError> {
        let sh = self.shape(ids.len());
        let mut b = Buffers::new(&sh, HeadScratch::rows(0, 0));
        embed(w.first().copied().unwrap_or_default(), ids, sh.d, &mut b.a)?;
        transpose(&b.a, sh.t, sh.d, &mut b.x);
        let (cos, sin) = self.rope_cols(sh.t);
        // One chunk's attention and scores, reused by every chunk of every layer (each cell
        // a chunk reads is written first).
        let most = sh.h * chunk.min(sh.t) * sh.t;
        let mut tables = (vec![0f32; most], vec![0f32; most]);
        for (l, (&start, layer)) in starts.iter().zip(&self.layers).enumerate() {
            let lw = layer_slices(w, start, layer);
            project_qkv(&lw, &sh, (&cos, &sin), self.config.rope_half, &mut b)?;
            self.native_attention_rows(&lw, &sh, (&mut b, &mut tables), (l, chunk), stream)?;
            mlp_layer(&lw, &sh, &mut b)?;
            stream.layer_done(l)?;
        }
        Ok(())
    }

    /// Layer `l`'s attention over the projected `b.q`, `b.k`, `b.v` in chunks of query rows,
    /// each chunk's weights and scores handed to `stream`; then x ← x + o·y.
    fn native_attention_rows(
        &self,
        lw: &LayerSlices<'_>,
        sh: &Shape,
        (b, (att, z)): (&mut Buffers, &mut (Vec<f32>, Vec<f32>)),
        (l, chunk): (usize, usize),
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        let (t, h) = (sh.t, sh.h);
        for r0 in (0..t).step_by(chunk) {
            let n = chunk.min(t - r0);
            let kt = r0 + n;
            let bias = stream.bias_host(l, r0, n, kt, h)?;
            let (att, z) = (&mut att[..h * n * kt], &mut z[..h * n * kt]);
            // Each head to the stream as it is done, or the whole chunk after.
            let sink = stream.chunk_sink(l, r0, (h, n, kt));
            chunk_heads(
                sh,
                b,
                &bias,
                (r0, n, kt),
                (&mut *att, &mut *z),
                sink.as_deref(),
            )?;
            let whole = sink.is_none();
            drop(sink);
            if whole {
                stream.rows_host(l, r0, (h, n, kt), att, z)?;
            }
        }
        weight_product(&mut b.x, lw.o, sh.d, View::full(&b.y, sh.d, t))?;
        Ok(())
    }
}

/// Every head of query rows `r0..r0 + n` over keys `0..kt`: attention and scores into `att`
/// and `z` ([H, n, kt]), the heads' outputs into columns `r0..r0 + n` of `b.y`; each head
/// handed to `sink` on its thread as soon as it is done.
fn chunk_heads(
    sh: &Shape,
    b: &mut Buffers,
    bias: &HostBias,
    (r0, n, kt): (usize, usize, usize),
    (att, z): (&mut [f32], &mut [f32]),
    sink: Option<&dyn ChunkSink>,
) -> Result<(), ModelError> {
    let Shape { t, kvh, dh, .. } = *sh;
    let rep = (sh.h / kvh).max(1);
    let (q, k, v) = (&b.q, &b.k, &b.v);
    let cells = n * kt;
    att.par_chunks_mut(cells)
        .zip(z.par_chunks_mut(cells))
        .zip(b.y.par_chunks_mut(dh * t))
        .enumerate()
        .try_for_each(|(hh, ((ah, zh), yh))| {
            let g = hh / rep;
            let views = HeadViews {
                q: View::rows(q, hh * dh * t + r0, dh, n, t).t(),
                k: View::rows(k, g * dh * t, dh, kt, t),
                v: View::rows(v, g * dh * t, dh, kt, t),
            };
            let y = ViewMut::rows(yh, r0, dh, n, t);
            SCRATCH.with(|cell| {
                let mut s = cell.borrow_mut();
                if !s.fits(n, kt) {
                    *s = HeadScratch::rows(n, kt);
                }
                attend(views, hh, (n, kt), bias, &mut s, ah, zh, y).map_err(ModelError::from)
            })?;
            sink.map_or(Ok(()), |sink| sink.head(hh, ah, zh))
        })
}
