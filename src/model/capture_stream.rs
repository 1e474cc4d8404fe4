//! Captures of long texts (SPEC §7 metrics, kept as the rows stream by).
//!
//! A dense capture keeps every head's T×T attention and scores: at 8,192 tokens on SmolLM2
//! (30 layers × 9 heads) that is about 290 GB. A streamed capture runs the model's
//! [`AttentionModel::forward_streamed`], which hands each layer's attention over in chunks of
//! query rows and drops it once read. From each chunk this keeps:
//!
//! - for every head, the per-query summaries: entropy in bits, off-block mass ε and the logit
//!   margin (T each), and the block masses p_k(i) (T×K, or pooled over groups of
//!   [`Capture::block_stride`] queries when T×K over every head would be large);
//! - for the heads the plan names (every head by default), the attention of the rows and keys
//!   the plan asks for, pooled into a grid of at most [`CapturePlan::max_grid`] cells a side:
//!   cell (I, J) is the mean over the queries of row-cell I of the attention they give the keys
//!   of key-cell J, so each grid row still sums to one ([`AttentionLayout`]).
//!
//! Memory is estimated before anything is allocated and refused above the capture limit; the
//! caller's progress callback is told after each layer and may cancel.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::analysis::dial::{DialMode, DialParams};
use crate::analysis::metrics::capture_row;
use crate::model::attention::AttentionBias;
use crate::model::backend::{AttentionModel, RowStream};
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture::{masks_for, Capture, HeadCapture};
use crate::model::capture_memory::{check_stream_memory, StreamShape};
use crate::model::dial::{layer_bias_rows, DialSetting};
use crate::model::finite::NonFinite;
use crate::model::transformer::ModelError;

/// The grid side the studio asks for: a text of up to this many tokens is kept at full
/// resolution, a longer one pooled.
pub const STUDIO_GRID: usize = 256;

/// At most this many block-mass values are kept over all heads (128 MiB); above it the rows
/// are pooled.
const BLOCK_MASS_BUDGET: usize = 32 << 20;

/// What a streamed capture keeps besides every head's summaries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapturePlan {
    /// Heads whose attention is kept, as (layer, head); `None`: every head.
    pub heads: Option<Vec<(usize, usize)>>,
    /// Query rows whose attention is kept (start, end); `None`: every row.
    pub rows: Option<(usize, usize)>,
    /// Keys whose attention is kept (start, end); `None`: every key the rows can see.
    pub keys: Option<(usize, usize)>,
    /// Largest side of a kept head's grid; a longer side is pooled (0: full resolution).
    pub max_grid: usize,
    /// At most this many query rows per chunk (`None`: as many as the memory budget allows).
    pub chunk_rows: Option<usize>,
}

impl CapturePlan {
    /// Every head, pooled to at most [`STUDIO_GRID`] cells a side: what the studio shows.
    pub fn studio() -> Self {
        Self {
            max_grid: STUDIO_GRID,
            ..Self::default()
        }
    }

    /// Where the kept attention lies in a sequence of `t` tokens (`causal`: a decoder, whose
    /// rows see no later key). Ranges are cut to the sequence; an empty one is an error.
    pub fn layout(&self, t: usize, causal: bool) -> Result<AttentionLayout, ModelError> {
        let (r0, r1) = self.rows.unwrap_or((0, t));
        let (r0, r1) = (r0.min(t), r1.min(t));
        let kmax = if causal { r1 } else { t };
        let (k0, k1) = self.keys.unwrap_or((0, kmax));
        let (k0, k1) = (k0.min(kmax), k1.min(kmax));
        if r1 <= r0 || k1 <= k0 {
            return Err(ModelError::Input(format!(
                "the rows {r0}..{r1} and keys {k0}..{k1} asked for hold no attention in a text \
                 of {t} tokens"
            )));
        }
        let side = (r1 - r0).max(k1 - k0);
        let stride = if self.max_grid == 0 {
            1
        } else {
            side.div_ceil(self.max_grid).max(1)
        };
        Ok(AttentionLayout {
            rows: (r0, r1),
            keys: (k0, k1),
            stride,
        })
    }
}

/// Where a capture's kept attention lies: query rows, keys and the pooling stride. Each head's
/// [`HeadCapture::attention`] is then row-major ⌈rows/stride⌉ × ⌈keys/stride⌉.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionLayout {
    /// Query rows (start, end).
    pub rows: (usize, usize),
    /// Keys (start, end).
    pub keys: (usize, usize),
    /// Queries and keys per cell side.
    pub stride: usize,
}

impl AttentionLayout {
    /// The whole T×T table, one cell per weight.
    pub fn full(t: usize) -> Self {
        Self {
            rows: (0, t),
            keys: (0, t),
            stride: 1,
        }
    }

    /// Grid rows and columns.
    pub fn grid(&self) -> (usize, usize) {
        let s = self.stride.max(1);
        (
            (self.rows.1 - self.rows.0).div_ceil(s),
            (self.keys.1 - self.keys.0).div_ceil(s),
        )
    }

    /// The first query of grid row `r` and the first key of grid column `c`.
    pub fn origin(&self, r: usize, c: usize) -> (usize, usize) {
        let s = self.stride.max(1);
        (self.rows.0 + r * s, self.keys.0 + c * s)
    }

    /// Queries in grid row `r`.
    fn rows_in(&self, r: usize) -> usize {
        let s = self.stride.max(1);
        s.min(self.rows.1.saturating_sub(self.rows.0 + r * s))
    }

    /// True when cell (r, c) holds no visible weight (every key later than every query).
    pub fn masked(&self, r: usize, c: usize, causal: bool) -> bool {
        let (q, k) = self.origin(r, c);
        let last_q = q + self.rows_in(r).max(1) - 1;
        causal && k > last_q
    }

    /// True for the whole table at full resolution.
    pub fn is_full(&self, t: usize) -> bool {
        *self == Self::full(t)
    }
}

/// The sink of a streamed forward: biases per chunk, summaries per row.
struct Collector<'a> {
    masks: &'a SequenceMasks,
    params: Vec<DialParams>,
    device: candle_core::Device,
    heads: Vec<HeadCapture>,
    keep: Vec<bool>,
    num_heads: usize,
    k: usize,
    layout: AttentionLayout,
    block_stride: usize,
    progress: &'a mut dyn FnMut(usize) -> bool,
}

impl RowStream for Collector<'_> {
    fn bias(
        &mut self,
        layer: usize,
        r0: usize,
        n: usize,
        kt: usize,
    ) -> candle_core::Result<AttentionBias> {
        let p = self.params.get(layer).cloned().unwrap_or_default();
        let lb = layer_bias_rows(self.masks, &p, r0, n, kt);
        AttentionBias::from_layer(&lb, n, kt, &self.device)
    }

    fn rows(
        &mut self,
        layer: usize,
        r0: usize,
        attention: &Tensor,
        scores: &Tensor,
    ) -> Result<(), ModelError> {
        let (_, h, n, kt) = attention.dims4()?;
        let tau = softmax_tau(self.params.get(layer));
        let h = h.min(self.num_heads);
        let first = layer * self.num_heads;
        let chunk = Chunk {
            masks: self.masks,
            layout: &self.layout,
            k: self.k,
            block_stride: self.block_stride,
            r0,
            n,
            kt,
            tau,
        };
        let heads = self.heads.get_mut(first..first + h).unwrap_or_default();
        let keep = self.keep.get(first..first + h).unwrap_or_default();
        with_f32(attention, |av| {
            with_f32(scores, |zv| chunk.heads(heads, keep, av, zv, layer))
        })??
    }

    fn layer_done(&mut self, layer: usize) -> Result<(), ModelError> {
        if (self.progress)(layer + 1) {
            Ok(())
        } else {
            Err(ModelError::Cancelled)
        }
    }
}

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

/// Empty head captures of a `layers` × `heads` model for `t` tokens and `k` blocks: summaries
/// sized, block masses of ⌈t / block_stride⌉ rows, and a grid of `layout` for each kept head.
pub(crate) fn empty_heads(
    (layers, heads): (usize, usize),
    t: usize,
    k: usize,
    layout: &AttentionLayout,
    keep: &[bool],
    block_stride: usize,
) -> Vec<HeadCapture> {
    let (gr, gc) = layout.grid();
    (0..layers * heads)
        .map(|idx| HeadCapture {
            layer: idx / heads.max(1),
            head: idx % heads.max(1),
            attention: if keep.get(idx).copied().unwrap_or(false) {
                vec![0.0; gr * gc]
            } else {
                Vec::new()
            },
            block_mass: vec![0.0; t.div_ceil(block_stride.max(1)) * k],
            off_block_mass: vec![0.0; t],
            entropy_bits: vec![0.0; t],
            margin: vec![0.0; t],
        })
        .collect()
}

/// The temperature a layer's row is softmax(z/τ) under, or `None` for mode B's mixture (whose
/// row is not one softmax, so its entropy is taken term by term).
pub(crate) fn softmax_tau(p: Option<&DialParams>) -> Option<f64> {
    p.and_then(|p| {
        (p.mode != DialMode::Mixture || p.lambda <= 0.0)
            .then(|| crate::analysis::dial::temperature(p))
    })
}

/// Capture `ids` under `dial` keeping what `plan` asks for, the rows streaming by in chunks;
/// `progress` is told how many layers are done and returns false to cancel. Refused before
/// anything is allocated when the capture would need more memory than the limit.
pub fn capture_streamed(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
    plan: &CapturePlan,
    progress: &mut dyn FnMut(usize) -> bool,
) -> Result<Capture, ModelError> {
    let dims = model.dims();
    let t = ids.len();
    if t == 0 {
        return Err(ModelError::Input("empty input".into()));
    }
    if t > dims.max_len {
        return Err(ModelError::TooLong(t, dims.max_len));
    }
    let layout = plan.layout(t, dims.causal)?;
    let (l, h, k) = (dims.layers, dims.heads, blocks.num_blocks().max(1));
    if let Some(&(bl, bh)) = plan
        .heads
        .iter()
        .flatten()
        .find(|&&(a, b)| a >= l || b >= h)
    {
        return Err(ModelError::Input(format!(
            "head {bl}.{bh} does not exist: the model has {l} layers (0..{}) of {h} heads (0..{})",
            l - 1,
            h.saturating_sub(1)
        )));
    }
    let keep: Vec<bool> = (0..l * h)
        .map(|idx| {
            plan.heads
                .as_ref()
                .is_none_or(|sel| sel.contains(&(idx / h, idx % h)))
        })
        .collect();
    let kept = keep.iter().filter(|&&k| k).count();
    if !model.streams() {
        // Its forward holds every layer's T×T tables at once: the dense capture's limit.
        crate::model::capture_memory::check_capture_memory(l, h, t)?;
    }
    let block_stride = (t * k * l * h).div_ceil(BLOCK_MASS_BUDGET).max(1);
    let chunk = check_stream_memory(&StreamShape {
        layers: l,
        heads: h,
        tokens: t,
        kept_heads: kept,
        grid: layout.grid(),
        blocks: k,
        block_rows: t.div_ceil(block_stride),
    })?;
    let masks = masks_for(model, blocks, ids);
    let heads = empty_heads((l, h), t, k, &layout, &keep, block_stride);
    let mut sink = Collector {
        masks: &masks,
        params: dial.per_layer(l),
        device: model.device().clone(),
        heads,
        keep,
        num_heads: h,
        k,
        layout,
        block_stride,
        progress,
    };
    let chunk = plan.chunk_rows.map_or(chunk, |c| c.clamp(1, chunk));
    model.forward_streamed(ids, chunk, &mut sink)?;
    Ok(Capture {
        ids: ids.to_vec(),
        key_blocks: masks.key_blocks.clone(),
        relevant_blocks: masks.relevant_blocks.clone(),
        block_names: blocks.names.clone(),
        num_layers: l,
        num_heads: h,
        heads: sink.heads,
        logits: Vec::new(),
        dial: dial.clone(),
        causal: dims.causal,
        layout: (!layout.is_full(t)).then_some(layout),
        block_stride,
    })
}
