//! The streamed forward of a LLaMA-family decoder on the CPU without candle's per-op tensors
//! (a long text's capture): per layer, the queries of `chunk_rows` positions at a time against
//! the keys they can see, each chunk's attention and scores handed to the stream and dropped,
//! so memory grows with T·chunk instead of T². The projections and the MLP are the native view
//! pass's ([`super::native`]); the heads of a chunk run in parallel on the pool's threads. The
//! arithmetic is candle's streamed forward's (`GgufLlama::forward_rows_candle`), checked
//! against it in `tests/native_llama.rs`.

use rayon::prelude::*;

use super::native::{add_output, layer_slices, mlp_layer, project_qkv, Buffers, Shape, W};
use crate::hf::gguf_llama::GgufLlama;
use crate::model::backend::{ChunkSink, RowStream};
use crate::model::native::cols::transpose;
use crate::model::native::gemm::{View, ViewMut};
use crate::model::native::heads::{
    attend_rows, with_kept_scratch, HeadScratch, HeadViews, HostBias, Values,
};
use crate::model::transformer::ModelError;

impl GgufLlama {
    /// The streamed forward ([`GgufLlama::forward_rows_candle`]) natively, or None where it does not
    /// apply (another device, weights not f32): the caller then runs candle's.
    pub fn forward_rows_native(
        &self,
        ids: &[u32],
        chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Option<Result<(), ModelError>> {
        if !self.device.is_cpu()
            || ids.is_empty()
            || ids.len() > self.config.context
            || !self.config.native_view()
        {
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
        self.embed_cols(w.first().copied().unwrap_or_default(), ids, &sh, &mut b)?;
        let rope = self.rope_layers(sh.t);
        let most = sh.h * chunk.min(sh.t) * sh.t;
        let mut tables = ChunkTables {
            att: vec![0f32; most],
            z: vec![0f32; most],
            ys: Vec::new(),
            vt: vec![0f32; sh.kvh * sh.t * sh.dh],
        };
        let last = self.layers.len().saturating_sub(1);
        for (l, (&start, layer)) in starts.iter().zip(&self.layers).enumerate() {
            let lw = layer_slices(w, start, layer, None);
            let turn = rope.for_layer(&self.config, l);
            project_qkv(&lw, &sh, turn, self.config.rope_half, &mut b)?;
            self.native_attention_rows(&sh, (&mut b, &mut tables), (l, chunk), stream)?;
            // Nothing reads the last layer's output (a stream has no logits): its attention is
            // all, so its output product and MLP (3% of the weight products) are left out.
            if l < last {
                let y = View::full(&b.y, sh.qd, sh.t);
                let post = lw.post_norms.map(|[a, _]| a);
                let outs = (&mut b.x[..], &mut b.p, &mut b.sum[..]);
                add_output(&lw, (W::O, sh.qd, y), None, (&sh, post), outs)?;
                mlp_layer(&lw, &sh, &mut b)?;
            }
            stream.layer_done(l)?;
        }
        Ok(())
    }

    /// Layer `l`'s attention over the projected `b.q`, `b.k`, `b.v` in chunks of query rows,
    /// each chunk's weights and scores handed to `stream`, the heads' outputs in `b.y`.
    fn native_attention_rows(
        &self,
        sh: &Shape,
        (b, tables): (&mut Buffers, &mut ChunkTables),
        (l, chunk): (usize, usize),
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        let (t, h) = (sh.t, sh.h);
        // The values position-major, once a layer ([`Values::Positions`]).
        let plane = t * sh.dh;
        for (src, dst) in b.v.chunks(plane).zip(tables.vt.chunks_mut(plane)) {
            transpose(src, sh.dh, t, dst);
        }
        for r0 in (0..t).step_by(chunk) {
            let n = chunk.min(t - r0);
            let kt = r0 + n;
            let bias = stream.bias_host(l, r0, n, kt, h)?;
            let cells = h * n * kt;
            let (Some(att), Some(z)) = (tables.att.get_mut(..cells), tables.z.get_mut(..cells))
            else {
                return Err(ModelError::Input(
                    "chunk tables smaller than the chunk".into(),
                ));
            };
            // Each head to the stream as it is done, or the whole chunk after.
            let sink = stream.chunk_sink(l, r0, (h, n, kt));
            chunk_heads(
                sh,
                b,
                (&bias, &tables.vt),
                (r0, n, kt),
                (&mut *att, &mut *z, &mut tables.ys),
                sink.as_deref(),
            )?;
            let whole = sink.is_none();
            drop(sink);
            if whole {
                stream.rows_host(l, r0, (h, n, kt), att, z)?;
            }
        }
        Ok(())
    }
}

/// One chunk's attention and scores [H, n, kt], reused by every chunk of every layer (each
/// cell a chunk reads is written first), its heads' outputs before they go to `b.y`, and the
/// layer's values position-major [KV heads, T, d_h].
struct ChunkTables {
    att: Vec<f32>,
    z: Vec<f32>,
    ys: Vec<f32>,
    vt: Vec<f32>,
}

/// One part of a chunk's work: rows `i0..i0 + a.len() / kt` of head `hh`, its attention and
/// scores, and its output attention·v [rows, d_h] before it goes to `b.y`.
struct Part<'a> {
    hh: usize,
    i0: usize,
    a: &'a mut [f32],
    z: &'a mut [f32],
    y: &'a mut [f32],
}

/// Every head of query rows `r0..r0 + n` over keys `0..kt`: attention and scores into `att`
/// and `z` ([H, n, kt]), the heads' outputs into columns `r0..r0 + n` of `b.y`; each head
/// handed to `sink` on its thread as soon as it is done. A head's rows may be cut in parts
/// ([`row_cuts`]) so that every thread has the same work: 9 heads on 2 threads would leave
/// one idle for a ninth of the chunk.
fn chunk_heads(
    sh: &Shape,
    b: &mut Buffers,
    (bias, vt): (&HostBias, &[f32]),
    (r0, n, kt): (usize, usize, usize),
    (att, z, ys): (&mut [f32], &mut [f32], &mut Vec<f32>),
    sink: Option<&dyn ChunkSink>,
) -> Result<(), ModelError> {
    let Shape { t, h, kvh, dh, .. } = *sh;
    let rep = (h / kvh).max(1);
    let cuts = row_cuts(n, h, sink);
    ys.resize(h * dh * n, 0.0);
    let parts = split_parts(&cuts, (h, n, kt, dh), att, z, ys)?;
    let (q, k) = (&b.q, &b.k);
    parts.into_par_iter().try_for_each(|p| {
        let rows = p.a.len() / kt.max(1);
        let g = p.hh / rep;
        let views = HeadViews {
            q: View::rows(q, p.hh * dh * t + r0 + p.i0, dh, rows, t).t(),
            k: View::rows(k, g * dh * t, dh, kt, t),
            v: Values::Positions(View::rows(vt, g * t * dh, kt, dh, dh)),
            softcap: sh.softcap,
        };
        let hb = bias.head_rows(p.hh, n, (p.i0, rows), kt)?;
        // Kept whatever its size: a chunk's tables are bounded by the stream's memory budget.
        with_kept_scratch((rows, kt), usize::MAX, |s| {
            let y = ViewMut::full(&mut *p.y, rows, dh);
            attend_rows(views, (rows, kt), &hb, s, p.a, p.z, y)
        })?;
        sink.map_or(Ok(()), |sink| sink.head(p.hh, p.i0, p.a, p.z))
    })?;
    // Each part's output [rows, d_h] into its columns of y [D, T].
    let mut off = 0;
    for hh in 0..h {
        for w in cuts.windows(2) {
            let (i0, rows) = (w[0], w[1] - w[0]);
            let part = ys.get(off..off + rows * dh).unwrap_or_default();
            for c in 0..dh {
                let dst = (hh * dh + c) * t + r0 + i0;
                if let Some(d) = b.y.get_mut(dst..dst + rows) {
                    d.iter_mut()
                        .zip(part.iter().skip(c).step_by(dh))
                        .for_each(|(d, s)| *d = *s);
                }
            }
            off += dh * rows;
        }
    }
    Ok(())
}

/// `att`, `z` ([H, n, kt]) and `ys` cut into the parts of every head (head-major, so that the
/// threads start on different heads and rarely wait on one head's summaries).
fn split_parts<'a>(
    cuts: &[usize],
    (h, n, kt, dh): (usize, usize, usize, usize),
    mut att: &'a mut [f32],
    mut z: &'a mut [f32],
    mut ys: &'a mut [f32],
) -> Result<Vec<Part<'a>>, ModelError> {
    if att.len() < h * n * kt || z.len() < h * n * kt || ys.len() < h * dh * n {
        return Err(ModelError::Input(
            "chunk tables smaller than the chunk".into(),
        ));
    }
    let mut parts = Vec::with_capacity(h * cuts.len());
    for hh in 0..h {
        for w in cuts.windows(2) {
            let (i0, rows) = (w[0], w[1] - w[0]);
            let (a, ra) = std::mem::take(&mut att).split_at_mut(rows * kt);
            let (zz, rz) = std::mem::take(&mut z).split_at_mut(rows * kt);
            let (y, ry) = std::mem::take(&mut ys).split_at_mut(rows * dh);
            (att, z, ys) = (ra, rz, ry);
            parts.push(Part {
                hh,
                i0,
                a,
                z: zz,
                y,
            });
        }
    }
    Ok(parts)
}

/// Where a chunk of n rows of h heads is cut into parts: 0, the cuts, n. As many parts per
/// head as make h·parts spread evenly over the pool's threads (at least 32 rows a part; none
/// when h already does), each cut at a row the sink can take apart.
fn row_cuts(n: usize, h: usize, sink: Option<&dyn ChunkSink>) -> Vec<usize> {
    let threads = rayon::current_num_threads().max(1);
    let most = (n / 32).clamp(1, 8);
    // The parts that give the shortest round: ⌈h·p / threads⌉ / p, fewer parts on a tie.
    let cost = |p: usize| (h * p).div_ceil(threads) as f64 / p as f64;
    let mut best = 1;
    for p in 2..=most {
        if cost(p) < cost(best) - 1e-9 {
            best = p;
        }
    }
    let ok = |i: usize| sink.is_none_or(|s| s.splits_at(i));
    let mut cuts = vec![0];
    for j in 1..best {
        let want = n * j / best;
        let prev = cuts.last().copied().unwrap_or(0);
        let found = (want..n)
            .chain((prev + 1..want).rev())
            .find(|&i| i > prev && ok(i));
        if let Some(i) = found {
            cuts.push(i);
        }
    }
    cuts.push(n);
    cuts
}
