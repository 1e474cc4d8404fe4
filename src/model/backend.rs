//! What capture, rules, the theory curve and the studio need from a model, so that our own
//! localist transformer and imported pretrained models (`crate::hf`) are dialled by the same
//! code: one forward pass over one sequence that takes an [`AttentionBias`] per layer (the dial's
//! additive bias, temperature and mode-B mixture, and the rules' per-head bias) and returns every
//! layer's attention and biased scores.
//!
//! The softmax with those biases is [`crate::model::attention::biased_attention`], shared by
//! every implementation, so the dial means the same thing on every model.

use candle_core::{Device, Tensor};

/// Re-exported from [`crate::model::attention`], where it lives, for callers of the old path.
pub use crate::model::attention::biased_attention;
use crate::model::attention::AttentionBias;
use crate::model::native::HostBias;
use crate::model::transformer::{ForwardOptions, ForwardOutput, LocalistModel, ModelError};

/// The shape of a model as the dial sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelDims {
    /// Layers L.
    pub layers: usize,
    /// Query heads per layer H.
    pub heads: usize,
    /// Longest sequence it accepts.
    pub max_len: usize,
    /// Vocabulary size V.
    pub vocab: usize,
    /// Causal (decoder) attention; false for a bidirectional encoder.
    pub causal: bool,
    /// Whether the forward returns next-token logits (an encoder without an LM head does not).
    pub has_logits: bool,
}

/// A model whose attention can be captured and dialled.
pub trait AttentionModel: Sync {
    /// Its shape.
    fn dims(&self) -> ModelDims;
    /// Where its tensors live.
    fn device(&self) -> &Device;
    /// One sequence `ids` with one bias per layer (an empty slice: the plain model). Returns
    /// logits [1,T,V] (an empty [1,T,0] tensor when `has_logits` is false), attention per layer
    /// [1,H,T,T] and, when `keep_scores`, the biased scores z per layer [1,H,T,T].
    fn forward_biased(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError>;

    /// [`forward_biased`](Self::forward_biased) for views that show attention only: the
    /// logits may come back empty ([1,T,0]), so a model whose output head is large (SmolLM2's
    /// is 576 × 49,152) skips it, and the queries may come back empty (no layers). The default
    /// computes both anyway.
    fn forward_attention(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.forward_biased(ids, biases, keep_scores)
    }

    /// Per layer, the distance |i − j| within which a local layer's queries see their keys
    /// (ModernBERT's local layers), None for a layer that sees every key its mask allows; empty
    /// (the default): no local layers. The views grey the cells outside it as masked.
    fn layer_windows(&self) -> Vec<Option<usize>> {
        Vec::new()
    }

    /// Whether [`forward_streamed`](Self::forward_streamed) streams (false: the default, which
    /// holds every layer's T×T tables at once, so its memory is a dense capture's).
    fn streams(&self) -> bool {
        false
    }

    /// The forward over `ids` for a capture that keeps only summaries: each layer's attention
    /// goes to `stream` in chunks of at most `chunk_rows` query rows, and is dropped once the
    /// stream has read it, so no layer's T×T table need exist at once. A decoder's rows
    /// r0..r0+n come with keys 0..r0+n only (the rest are future); an encoder's with every key.
    /// The default runs [`forward_attention`](Self::forward_attention) with every layer's
    /// whole bias and hands each layer over in one chunk, which suits models whose positions
    /// are few; a model that takes long texts overrides it.
    fn forward_streamed(
        &self,
        ids: &[u32],
        _chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        let dims = self.dims();
        let t = ids.len();
        let biases = (0..dims.layers)
            .map(|l| stream.bias(l, 0, t, t))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let out = self.forward_attention(ids, &biases, true)?;
        for (l, (a, z)) in out.attention.iter().zip(&out.scores).enumerate() {
            stream.rows(l, 0, a, z)?;
            stream.layer_done(l)?;
        }
        Ok(())
    }

    /// A decoder's incremental step: the new tokens `ids` after the positions `cache` holds,
    /// with biases cut to their rows ([`AttentionBias::rows`]); returns their logits [1,n,V]
    /// and extends the cache. `None` where the model keeps no cache (callers then run
    /// [`forward_biased`](Self::forward_biased) over the whole sequence).
    fn step_cached(
        &self,
        _ids: &[u32],
        _biases: &[AttentionBias],
        _cache: &mut KvCache,
    ) -> Option<Result<Tensor, ModelError>> {
        None
    }
}

/// Where a streamed forward ([`AttentionModel::forward_streamed`]) gets its biases and puts
/// each chunk of attention rows.
pub trait RowStream {
    /// Layer `layer`'s bias for query rows `r0..r0 + n` over keys `0..kt`, as [1,1,n,kt] (and
    /// [1,H,n,kt] for an extra per-head bias).
    fn bias(
        &mut self,
        layer: usize,
        r0: usize,
        n: usize,
        kt: usize,
    ) -> candle_core::Result<AttentionBias>;
    /// [`bias`](Self::bias) as host data, for a native forward ([`HostBias`], n×kt), shared
    /// so that a stream may hand the same bias to every layer whose dial is the same. By
    /// default read back from the tensors.
    fn bias_host(
        &mut self,
        layer: usize,
        r0: usize,
        n: usize,
        kt: usize,
        heads: usize,
    ) -> Result<std::sync::Arc<HostBias>, ModelError> {
        let b = self.bias(layer, r0, n, kt)?;
        crate::model::native_view::host_bias_rows(&b, (n, kt), heads).map(std::sync::Arc::new)
    }
    /// Rows `r0..r0 + n` of layer `layer`: attention and biased scores, both [1,H,n,kt].
    fn rows(
        &mut self,
        layer: usize,
        r0: usize,
        attention: &Tensor,
        scores: &Tensor,
    ) -> Result<(), ModelError>;
    /// [`rows`](Self::rows) from host data: attention and scores [H, n, kt], row-major, of
    /// query rows `r0..r0 + n` over keys `0..kt` (a native forward's buffers, reused for the
    /// next chunk). By default they are copied into tensors for `rows`.
    fn rows_host(
        &mut self,
        layer: usize,
        r0: usize,
        (h, n, kt): (usize, usize, usize),
        attention: &[f32],
        scores: &[f32],
    ) -> Result<(), ModelError> {
        let dev = candle_core::Device::Cpu;
        let a = Tensor::from_slice(attention, (1, h, n, kt), &dev)?;
        let z = Tensor::from_slice(scores, (1, h, n, kt), &dev)?;
        self.rows(layer, r0, &a, &z)
    }
    /// Where a forward that computes the heads of a chunk in parallel hands each head over as
    /// soon as it is done (its weights still in cache): query rows `r0..r0 + n` of layer
    /// `layer` over `kt` keys, `h` heads. None (the default): the whole chunk comes to
    /// [`rows_host`](Self::rows_host) instead.
    fn chunk_sink(
        &mut self,
        _layer: usize,
        _r0: usize,
        _shape: (usize, usize, usize),
    ) -> Option<Box<dyn ChunkSink + '_>> {
        None
    }
    /// Layer `layer` is done; an error (e.g. [`ModelError::Cancelled`]) stops the forward.
    fn layer_done(&mut self, layer: usize) -> Result<(), ModelError>;
}

/// The heads of one chunk, taken one at a time from the pool's threads
/// ([`RowStream::chunk_sink`]).
pub trait ChunkSink: Sync {
    /// Rows `i0..i0 + n` of the chunk's head `hh`: their attention and biased scores [n, kt],
    /// row-major. A head may come in several parts, in any order, one at a time.
    fn head(
        &self,
        hh: usize,
        i0: usize,
        attention: &[f32],
        scores: &[f32],
    ) -> Result<(), ModelError>;
    /// Whether chunk row `i0` may begin a part of a head (no summary the sink keeps pools it
    /// with the row before, so the parts' order cannot change a sum). By default any row.
    fn splits_at(&self, _i0: usize) -> bool {
        true
    }
}

/// Keys and values of the positions a decoder has seen, per layer ([1,kv_heads,P,d_h] each),
/// so that the next token costs one position's work.
#[derive(Default)]
pub struct KvCache {
    /// Keys and values per layer (None until the layer has run).
    pub layers: Vec<Option<(Tensor, Tensor)>>,
    /// Positions held.
    pub len: usize,
}

impl KvCache {
    /// Positions held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AttentionModel for LocalistModel {
    fn dims(&self) -> ModelDims {
        let c = &self.config;
        ModelDims {
            layers: c.num_layers,
            heads: c.num_heads,
            max_len: c.max_seq_len,
            vocab: c.vocab_size,
            causal: true,
            has_logits: true,
        }
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward_biased(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        view_forward(self, ids, biases, keep_scores, true)
    }

    /// On the CPU without the logits, and so without the last layer's MLP, which only they
    /// read: a third of the tiny model's 64-token pass (the studio's captures take this path).
    fn forward_attention(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        view_forward(self, ids, biases, keep_scores, false)
    }
}

/// Our model's forward for a view: the native pass on the CPU with one bias per layer (the
/// logits and the last layer's MLP only when `logits`), else candle's forward, which computes
/// the logits anyway.
fn view_forward(
    m: &LocalistModel,
    ids: &[u32],
    biases: &[AttentionBias],
    keep_scores: bool,
    logits: bool,
) -> Result<ForwardOutput, ModelError> {
    if m.device.is_cpu() && biases.len() == m.config.num_layers {
        return crate::model::native_view::forward_native(m, ids, biases, keep_scores, logits);
    }
    let input = Tensor::from_vec(ids.to_vec(), (1, ids.len()), &m.device)?;
    m.forward(
        &input,
        biases,
        ForwardOptions {
            differentiable: false,
            keep_scores,
        },
    )
}
