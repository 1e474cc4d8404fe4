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
    masses: Vec<f64>,
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
        let av = attention.flatten_all()?.to_vec1::<f32>()?;
        let zv = scores.flatten_all()?.to_vec1::<f32>()?;
        let tau = self.params.get(layer).and_then(|p| {
            (p.mode != DialMode::Mixture || p.lambda <= 0.0)
                .then(|| crate::analysis::dial::temperature(p))
        });
        for hh in 0..h.min(self.num_heads) {
            for ii in 0..n {
                let off = (hh * n + ii) * kt;
                let (Some(row), Some(z)) = (av.get(off..off + kt), zv.get(off..off + kt)) else {
                    continue;
                };
                self.row(layer, hh, r0 + ii, row, z, tau)?;
            }
        }
        Ok(())
    }

    fn layer_done(&mut self, layer: usize) -> Result<(), ModelError> {
        if (self.progress)(layer + 1) {
            Ok(())
        } else {
            Err(ModelError::Cancelled)
        }
    }
}

impl Collector<'_> {
    /// One query row of one head: its summaries, its block masses and, when kept, its weights.
    fn row(
        &mut self,
        layer: usize,
        head: usize,
        i: usize,
        row: &[f32],
        z: &[f32],
        tau: Option<f64>,
    ) -> Result<(), ModelError> {
        let vis = if self.masks.causal {
            (i + 1).min(row.len())
        } else {
            row.len()
        };
        let (row, z) = (&row[..vis], &z[..vis]);
        if let Some(j) = row.iter().position(|a| !a.is_finite()) {
            return Err(NonFinite::Attention {
                layer,
                head,
                query: i,
                key: j,
                value: row[j],
            }
            .into());
        }
        let relevant = self.masks.relevant_row(i);
        let relevant = relevant.get(..vis).unwrap_or(relevant);
        let key_blocks = self.masks.key_blocks.get(..vis).unwrap_or(&[]);
        self.masses.iter_mut().for_each(|m| *m = 0.0);
        let s = capture_row(row, z, relevant, key_blocks, tau, &mut self.masses);
        let idx = layer * self.num_heads + head;
        let (k, bs, t) = (self.k, self.block_stride, self.masks.len());
        let Some(hc) = self.heads.get_mut(idx) else {
            return Ok(());
        };
        hc.entropy_bits[i] = s.entropy_bits as f32;
        hc.off_block_mass[i] = s.off_block as f32;
        hc.margin[i] = s.margin as f32;
        let br = i / bs;
        let in_cell = bs.min(t - br * bs) as f64;
        for (dst, &m) in hc.block_mass[br * k..(br + 1) * k].iter_mut().zip(&self.masses) {
            *dst += if bs == 1 { m as f32 } else { (m / in_cell) as f32 };
        }
        if self.keep.get(idx).copied().unwrap_or(false) {
            keep_row(&mut hc.attention, &self.layout, i, row);
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
    if s == 1 {
        if let Some(dst) = grid.get_mut(r * gc..r * gc + (hi - k0)) {
            dst.copy_from_slice(&row[k0..hi]);
        }
        return;
    }
    let w = 1.0 / layout.rows_in(r) as f32;
    let base = r * gc;
    for (j, &a) in row[k0..hi].iter().enumerate() {
        if let Some(cell) = grid.get_mut(base + j / s) {
            *cell += a * w;
        }
    }
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
    let keep: Vec<bool> = (0..l * h)
        .map(|idx| {
            plan.heads
                .as_ref()
                .is_none_or(|sel| sel.contains(&(idx / h, idx % h)))
        })
        .collect();
    let kept = keep.iter().filter(|&&k| k).count();
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
    let (gr, gc) = layout.grid();
    let heads = (0..l * h)
        .map(|idx| HeadCapture {
            layer: idx / h,
            head: idx % h,
            attention: if keep[idx] {
                vec![0.0; gr * gc]
            } else {
                Vec::new()
            },
            block_mass: vec![0.0; t.div_ceil(block_stride) * k],
            off_block_mass: vec![0.0; t],
            entropy_bits: vec![0.0; t],
            margin: vec![0.0; t],
        })
        .collect();
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
        masses: vec![0.0; k],
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
