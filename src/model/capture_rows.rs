//! Reading one chunk of attention rows into the heads' summaries ([`Chunk`]): one pass per row
//! ([`capture_row`]), the block masses, and the kept grid; the heads of a large chunk are split
//! over the threads candle uses. The dense capture hands over whole layers the same way.

use std::sync::Mutex;

use candle_core::Tensor;

use crate::analysis::capture_row::capture_row;
use crate::model::backend::ChunkSink;
use crate::model::blocks::SequenceMasks;
use crate::model::capture_data::HeadCapture;
use crate::model::capture_layout::AttentionLayout;
use crate::model::finite::NonFinite;
use crate::model::transformer::ModelError;

/// `t`'s values as one f32 slice: borrowed from a contiguous CPU tensor, else copied.
pub(crate) fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        {
            if let Some(slice) = cpu.as_slice::<f32>()?.get(a..b) {
                return Ok(f(slice));
            }
        }
    }
    let v = t.flatten_all()?.to_vec1::<f32>()?;
    Ok(f(&v))
}

/// One chunk of rows r0..r0+n of one layer, over keys 0..kt, as the heads read it (the dense
/// capture hands over whole layers: r0 = 0, n = kt = T).
pub(crate) struct Chunk<'a> {
    pub(crate) masks: &'a SequenceMasks,
    pub(crate) layout: &'a AttentionLayout,
    pub(crate) k: usize,
    pub(crate) block_stride: usize,
    pub(crate) r0: usize,
    pub(crate) n: usize,
    pub(crate) kt: usize,
    pub(crate) tau: Option<f64>,
}

/// The heads of one chunk as a [`ChunkSink`]: each head's summaries are taken on the thread
/// that computed it, right after it (one lock per head, never contended).
pub(crate) struct HeadSink<'a> {
    pub(crate) chunk: Chunk<'a>,
    pub(crate) heads: Vec<Mutex<&'a mut HeadCapture>>,
    pub(crate) keep: &'a [bool],
    pub(crate) layer: usize,
}

impl ChunkSink for HeadSink<'_> {
    fn head(&self, hh: usize, a: &[f32], z: &[f32]) -> Result<(), ModelError> {
        let Some(slot) = self.heads.get(hh) else {
            return Ok(());
        };
        let mut hc = slot
            .lock()
            .map_err(|_| ModelError::Input("a capture thread panicked".into()))?;
        let kept = self.keep.get(hh).copied().unwrap_or(false);
        let mut masses = vec![0.0f64; self.chunk.k];
        self.chunk
            .head(&mut hc, kept, a, z, &mut masses)
            .map_err(|(query, key, value)| {
                NonFinite::Attention {
                    layer: self.layer,
                    head: hh,
                    query,
                    key,
                    value,
                }
                .into()
            })
    }
}

/// Below this many weights in a chunk the heads are read on the calling thread (starting
/// threads would cost more than they save).
const THREADED_WEIGHTS: usize = 1 << 18;

impl Chunk<'_> {
    /// Every head of the chunk (`av`, `zv`: [H,n,kt]), the heads split over the threads candle
    /// uses (the metrics would otherwise run on one core while the others wait).
    pub(crate) fn heads(
        &self,
        heads: &mut [HeadCapture],
        keep: &[bool],
        av: &[f32],
        zv: &[f32],
        layer: usize,
    ) -> Result<(), ModelError> {
        let per_head = self.n * self.kt;
        let threads = if per_head * heads.len() < THREADED_WEIGHTS {
            1
        } else {
            candle_core::utils::get_num_threads().clamp(1, heads.len().max(1))
        };
        if threads == 1 {
            return self.heads_on(heads, keep, av, zv, layer, 0);
        }
        let per_thread = heads.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let jobs: Vec<_> = heads
                .chunks_mut(per_thread)
                .enumerate()
                .map(|(c, part)| {
                    let first = c * per_thread;
                    scope.spawn(move || self.heads_on(part, keep, av, zv, layer, first))
                })
                .collect();
            jobs.into_iter().try_for_each(|j| {
                j.join()
                    .unwrap_or_else(|_| Err(ModelError::Input("a capture thread panicked".into())))
            })
        })
    }

    /// Heads `first..first + heads.len()` of the chunk, on this thread.
    fn heads_on(
        &self,
        heads: &mut [HeadCapture],
        keep: &[bool],
        av: &[f32],
        zv: &[f32],
        layer: usize,
        first: usize,
    ) -> Result<(), ModelError> {
        let per_head = self.n * self.kt;
        let mut masses = vec![0.0f64; self.k];
        for (o, hc) in heads.iter_mut().enumerate() {
            let hh = first + o;
            let span = hh * per_head..(hh + 1) * per_head;
            let (Some(a), Some(z)) = (av.get(span.clone()), zv.get(span)) else {
                continue;
            };
            let kept = keep.get(hh).copied().unwrap_or(false);
            self.head(hc, kept, a, z, &mut masses)
                .map_err(|(query, key, value)| NonFinite::Attention {
                    layer,
                    head: hh,
                    query,
                    key,
                    value,
                })?;
        }
        Ok(())
    }

    /// The chunk's rows of one head: summaries, block masses and, when `kept`, weights. An
    /// error names the first non-finite weight (query, key, value).
    fn head(
        &self,
        hc: &mut HeadCapture,
        kept: bool,
        a: &[f32],
        z: &[f32],
        masses: &mut [f64],
    ) -> Result<(), (usize, usize, f32)> {
        let (kt, k, bs, t) = (self.kt, self.k, self.block_stride, self.masks.len());
        for ii in 0..self.n {
            let i = self.r0 + ii;
            let vis = if self.masks.causal {
                (i + 1).min(kt)
            } else {
                kt
            };
            let (row, zr) = (&a[ii * kt..ii * kt + vis], &z[ii * kt..ii * kt + vis]);
            let relevant = self.masks.relevant_row(i);
            let relevant = relevant.get(..vis).unwrap_or(relevant);
            let key_blocks = self.masks.key_blocks.get(..vis).unwrap_or(&[]);
            masses.iter_mut().for_each(|m| *m = 0.0);
            let s = capture_row(row, zr, relevant, key_blocks, self.tau, masses);
            if !s.entropy_bits.is_finite() || !s.off_block.is_finite() {
                if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                    return Err((i, j, row[j]));
                }
            }
            hc.entropy_bits[i] = s.entropy_bits as f32;
            hc.off_block_mass[i] = s.off_block as f32;
            hc.margin[i] = s.margin as f32;
            let br = i / bs;
            let scale = if bs == 1 {
                1.0
            } else {
                1.0 / bs.min(t - br * bs) as f64
            };
            if let Some(dst) = hc.block_mass.get_mut(br * k..(br + 1) * k) {
                for (d, &m) in dst.iter_mut().zip(masses.iter()) {
                    *d += (m * scale) as f32;
                }
            }
            if kept {
                keep_row(&mut hc.attention, self.layout, i, row);
            }
        }
        Ok(())
    }
}

/// Add row `i`'s visible weights into a head's kept grid.
fn keep_row(grid: &mut [f32], layout: &AttentionLayout, i: usize, row: &[f32]) {
    let (r0, r1) = layout.rows;
    if i < r0 || i >= r1 {
        return;
    }
    let (k0, k1) = layout.keys;
    let s = layout.stride.max(1);
    let (_, gc) = layout.grid();
    let r = (i - r0) / s;
    let hi = k1.min(row.len());
    if hi <= k0 {
        return;
    }
    let Some(dst) = grid.get_mut(r * gc..(r + 1) * gc) else {
        return;
    };
    if s == 1 {
        if let Some(d) = dst.get_mut(..hi - k0) {
            d.copy_from_slice(&row[k0..hi]);
        }
        return;
    }
    let w = 1.0 / layout.rows_in(r) as f32;
    for (cell, keys) in dst.iter_mut().zip(row[k0..hi].chunks(s)) {
        *cell += keys.iter().sum::<f32>() * w;
    }
}
