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

use std::sync::Arc;

use candle_core::Tensor;

use crate::analysis::dial::DialParams;
use crate::model::attention::AttentionBias;
use crate::model::backend::{AttentionModel, ChunkSink, RowStream};
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture_data::{empty_heads, masks_for, softmax_tau, Capture, HeadCapture};
use crate::model::capture_memory::{check_stream_memory, StreamShape, BIAS_CACHE_BYTES};
use crate::model::dial::{layer_bias_rows, DialSetting, LayerBias};
use crate::model::native::HostBias;
use crate::model::transformer::ModelError;

pub use crate::model::capture_layout::{AttentionLayout, CapturePlan, STUDIO_GRID};
pub(crate) use crate::model::capture_rows::{with_f32, Chunk, HeadSink};

/// At most this many block-mass values are kept over all heads (128 MiB); above it the rows
/// are pooled.
const BLOCK_MASS_BUDGET: usize = 32 << 20;

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
    biases: BiasCache,
    progress: &'a mut dyn FnMut(usize) -> bool,
}

/// The dial's bias of each chunk of query rows, built for the first layer and handed again to
/// every later layer whose dial is the same (a uniform dial, the usual case, would otherwise
/// build the same bias once per layer: about 0.25 s of 2,048 tokens on SmolLM2, on one
/// thread). At most [`BIAS_CACHE_BYTES`]; past that a chunk's bias is built each time.
#[derive(Default)]
struct BiasCache {
    chunks: Vec<KeptBias>,
    bytes: usize,
}

/// The bias of one chunk (r0, n, kt) under one dial.
struct KeptBias {
    chunk: (usize, usize, usize),
    dial: DialParams,
    bias: Arc<HostBias>,
}

impl BiasCache {
    /// The bias kept for this chunk under dial `p`, if any.
    fn get(&self, p: &DialParams, chunk: (usize, usize, usize)) -> Option<Arc<HostBias>> {
        self.chunks
            .iter()
            .find(|k| k.chunk == chunk && k.dial == *p)
            .map(|k| Arc::clone(&k.bias))
    }

    /// Keep `b`, the bias of this chunk under `p`, when it fits (replacing one of another dial).
    fn put(&mut self, p: DialParams, chunk: (usize, usize, usize), b: &Arc<HostBias>) {
        if let Some(i) = self.chunks.iter().position(|k| k.chunk == chunk) {
            let old = self.chunks.swap_remove(i);
            self.bytes = self.bytes.saturating_sub(bias_bytes(&old.bias));
        }
        let bytes = bias_bytes(b);
        if self.bytes + bytes <= BIAS_CACHE_BYTES {
            self.bytes += bytes;
            self.chunks.push(KeptBias {
                chunk,
                dial: p,
                bias: Arc::clone(b),
            });
        }
    }
}

/// Bytes a chunk's bias holds.
fn bias_bytes(b: &HostBias) -> usize {
    let cells = b.additive.len() + b.mixture.as_ref().map_or(0, |(_, l)| l.len());
    cells * std::mem::size_of::<f32>()
}

impl Collector<'_> {
    /// Layer `layer`'s dial bias over query rows `r0..r0 + n` and keys `0..kt`.
    fn layer_bias(&self, layer: usize, r0: usize, n: usize, kt: usize) -> LayerBias {
        let p = self.params.get(layer).cloned().unwrap_or_default();
        layer_bias_rows(self.masks, &p, r0, n, kt)
    }

    /// Query rows `r0..r0 + n` over keys `0..kt` of layer `layer`, with the captures of its
    /// first `h` heads and whether each keeps its attention.
    fn chunk(
        &mut self,
        layer: usize,
        r0: usize,
        (h, n, kt): (usize, usize, usize),
    ) -> (Chunk<'_>, &mut [HeadCapture], &[bool]) {
        let first = layer * self.num_heads;
        let span = first..first + h.min(self.num_heads);
        let chunk = Chunk {
            masks: self.masks,
            layout: &self.layout,
            k: self.k,
            block_stride: self.block_stride,
            r0,
            n,
            kt,
            tau: softmax_tau(self.params.get(layer)),
        };
        let heads = self.heads.get_mut(span.clone()).unwrap_or_default();
        (chunk, heads, self.keep.get(span).unwrap_or_default())
    }
}

impl RowStream for Collector<'_> {
    fn bias(
        &mut self,
        layer: usize,
        r0: usize,
        n: usize,
        kt: usize,
    ) -> candle_core::Result<AttentionBias> {
        AttentionBias::from_layer(&self.layer_bias(layer, r0, n, kt), n, kt, &self.device)
    }

    fn bias_host(
        &mut self,
        layer: usize,
        r0: usize,
        n: usize,
        kt: usize,
        _heads: usize,
    ) -> Result<Arc<HostBias>, ModelError> {
        let p = self.params.get(layer).cloned().unwrap_or_default();
        if let Some(b) = self.biases.get(&p, (r0, n, kt)) {
            return Ok(b);
        }
        let lb = layer_bias_rows(self.masks, &p, r0, n, kt);
        let b = Arc::new(HostBias {
            additive: lb.additive,
            tau: lb.tau,
            mixture: lb.mixture,
            extra: None,
        });
        self.biases.put(p, (r0, n, kt), &b);
        Ok(b)
    }

    fn rows(
        &mut self,
        layer: usize,
        r0: usize,
        attention: &Tensor,
        scores: &Tensor,
    ) -> Result<(), ModelError> {
        let (_, h, n, kt) = attention.dims4()?;
        with_f32(attention, |av| {
            with_f32(scores, |zv| self.rows_host(layer, r0, (h, n, kt), av, zv))
        })??
    }

    fn rows_host(
        &mut self,
        layer: usize,
        r0: usize,
        (h, n, kt): (usize, usize, usize),
        av: &[f32],
        zv: &[f32],
    ) -> Result<(), ModelError> {
        let (chunk, heads, keep) = self.chunk(layer, r0, (h, n, kt));
        chunk.heads(heads, keep, av, zv, layer, true)
    }

    fn chunk_sink(
        &mut self,
        layer: usize,
        r0: usize,
        (h, n, kt): (usize, usize, usize),
    ) -> Option<Box<dyn ChunkSink + '_>> {
        let (chunk, heads, keep) = self.chunk(layer, r0, (h, n, kt));
        Some(Box::new(HeadSink {
            chunk,
            heads: heads.iter_mut().map(std::sync::Mutex::new).collect(),
            keep,
            layer,
        }))
    }

    fn layer_done(&mut self, layer: usize) -> Result<(), ModelError> {
        if (self.progress)(layer + 1) {
            Ok(())
        } else {
            Err(ModelError::Cancelled)
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
        biases: BiasCache::default(),
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
        windows: model.layer_windows(),
        layout: (!layout.is_full(t)).then_some(layout),
        block_stride,
        weak_map: blocks.weak_on(ids),
    })
}
