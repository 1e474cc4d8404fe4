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
    fn splits_at(&self, i0: usize) -> bool {
        let i = self.chunk.r0 + i0;
        let lay = self.chunk.layout;
        let in_grid = i > lay.rows.0 && i < lay.rows.1;
        let grid_ok = !in_grid || (i - lay.rows.0).is_multiple_of(lay.stride.max(1));
        grid_ok && i.is_multiple_of(self.chunk.block_stride.max(1))
    }

    fn head(&self, hh: usize, i0: usize, a: &[f32], z: &[f32]) -> Result<(), ModelError> {
        let Some(slot) = self.heads.get(hh) else {
            return Ok(());
        };
        let mut hc = slot
            .lock()
            .map_err(|_| ModelError::Input("a capture thread panicked".into()))?;
        let kept = self.keep.get(hh).copied().unwrap_or(false);
        let mut masses = vec![0.0f64; self.chunk.k];
        self.chunk
            .head(&mut hc, kept, (i0, a, z), &mut masses)
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
    /// uses when `across` (the metrics would otherwise run on one core while the others wait);
    /// without it, on this thread (the caller already runs chunks side by side).
    pub(crate) fn heads(
        &self,
        heads: &mut [HeadCapture],
        keep: &[bool],
        av: &[f32],
        zv: &[f32],
        layer: usize,
        across: bool,
    ) -> Result<(), ModelError> {
        let per_head = self.n * self.kt;
        let threads = if !across || per_head * heads.len() < THREADED_WEIGHTS {
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
            self.head(hc, kept, (0, a, z), &mut masses)
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

    /// Chunk rows `i0..` of one head (`a`, `z`: [rows, kt] from row i0): summaries, block
    /// masses and, when `kept`, weights. An error names the first non-finite weight (query,
    /// key, value).
    fn head(
        &self,
        hc: &mut HeadCapture,
        kept: bool,
        (i0, a, z): (usize, &[f32], &[f32]),
        masses: &mut [f64],
    ) -> Result<(), (usize, usize, f32)> {
        let (kt, k, bs, t) = (self.kt, self.k, self.block_stride, self.masks.len());
        let mut grid = kept.then(|| GridRows::new(&mut hc.attention, self.layout));
        let rows = (a.len().min(z.len()) / kt.max(1)).min(self.n.saturating_sub(i0));
        for ii in 0..rows {
            let i = self.r0 + i0 + ii;
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
            if let Some(g) = grid.as_mut() {
                g.add(i, row);
            }
        }
        if let Some(g) = grid.as_mut() {
            g.flush();
        }
        Ok(())
    }
}

/// A head's kept grid, filled query by query ([`GridRows::add`]). With a stride s > 1 the
/// queries of one grid row are first added key by key (a pass the compiler vectorises), and
/// the sum is pooled into the row's cells once ([`GridRows::flush`]) rather than once per
/// query: s times fewer sums across keys.
struct GridRows<'g> {
    grid: &'g mut [f32],
    layout: &'g AttentionLayout,
    /// Keys k0.. of the grid row being filled; `used` of them written.
    acc: Vec<f32>,
    used: usize,
    /// The grid row in `acc`.
    row: Option<usize>,
}

impl<'g> GridRows<'g> {
    fn new(grid: &'g mut [f32], layout: &'g AttentionLayout) -> Self {
        let keys = if layout.stride > 1 {
            layout.keys.1 - layout.keys.0
        } else {
            0
        };
        Self {
            grid,
            layout,
            acc: vec![0.0; keys],
            used: 0,
            row: None,
        }
    }

    /// Query `i`'s visible weights `row` (keys 0..row.len()).
    fn add(&mut self, i: usize, row: &[f32]) {
        let (r0, r1) = self.layout.rows;
        let (k0, k1) = self.layout.keys;
        let hi = k1.min(row.len());
        if i < r0 || i >= r1 || hi <= k0 {
            return;
        }
        let s = self.layout.stride.max(1);
        let (_, gc) = self.layout.grid();
        let r = (i - r0) / s;
        if s == 1 {
            if let Some(d) = self.grid.get_mut(r * gc..r * gc + hi - k0) {
                d.copy_from_slice(&row[k0..hi]);
            }
            return;
        }
        if self.row != Some(r) {
            self.flush();
            self.row = Some(r);
        }
        for (a, v) in self.acc.iter_mut().zip(&row[k0..hi]) {
            *a += v;
        }
        self.used = self.used.max(hi - k0);
    }

    /// Pool the grid row being filled into its cells: the mean over its queries of the weight
    /// each cell's keys hold.
    fn flush(&mut self) {
        let Some(r) = self.row.take() else {
            return;
        };
        let s = self.layout.stride.max(1);
        let (_, gc) = self.layout.grid();
        let w = 1.0 / self.layout.rows_in(r) as f32;
        let acc = self.acc.get_mut(..self.used).unwrap_or_default();
        if let Some(dst) = self.grid.get_mut(r * gc..(r + 1) * gc) {
            for (cell, keys) in dst.iter_mut().zip(acc.chunks(s)) {
                *cell += keys.iter().sum::<f32>() * w;
            }
        }
        acc.fill(0.0);
        self.used = 0;
    }
}
