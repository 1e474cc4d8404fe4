//! What recruitment measures on its held-out buffer: the data bits L(D | M) at the
//! recruitment dial and, for a round, the per-position loss, attention entropy and queries
//! its candidates and anchor keys are drawn from; and DL(M), the data bits plus what the
//! blocks cost.

use candle_core::{Device, Tensor, D};

use crate::analysis::dial::DialParams;
use crate::analysis::mdl::{block_header_bits, map_bits, parameter_bits};
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::dial::{layer_bias, DialSetting, LayerBias};
use crate::model::transformer::{AttentionBias, ForwardOptions, ForwardOutput, LocalistModel};
use crate::train::dataset::{TokenStream, Window};
use crate::train::trainer::{TrainError, Trainer};

/// Per-position facts of the buffer under a map.
#[derive(Clone, Debug, Default)]
pub struct BufferStats {
    /// L(D | M), bits.
    pub data_bits: f64,
    /// Query token of each coded position.
    pub query_ids: Vec<u32>,
    /// Bits of the next token at each position.
    pub loss_bits: Vec<f32>,
    /// Mean attention entropy (bits, over layers and heads) of each position's query.
    pub entropy_bits: Vec<f32>,
    /// Queries per layer and head, position-major: `queries[l][h][pos·d_h ..]`.
    pub queries: Vec<Vec<Vec<f32>>>,
}

/// Data bits of `ids` (and, with `details`, per-position facts) at mode-A dial `lambda`, in
/// non-overlapping windows of `seq_len`.
pub fn buffer_stats(
    model: &LocalistModel,
    blocks: &BlockMap,
    ids: &[u32],
    lambda: f64,
    seq_len: usize,
    details: bool,
) -> Result<BufferStats, TrainError> {
    let view = localist_view(blocks);
    let blocks = &view;
    let t = seq_len.min(model.config.max_seq_len).max(2);
    let stream = TokenStream {
        ids: ids.to_vec(),
        targets: Vec::new(),
    };
    let windows: Vec<Window> = (0..).map_while(|w| stream.window(w * t, t)).collect();
    if windows.is_empty() {
        return Err(TrainError::Invalid(format!(
            "recruitment buffer has {} tokens; need at least {}",
            ids.len(),
            t + 1
        )));
    }
    let (layers, heads) = (model.config.num_layers, model.config.num_heads);
    let per_layer = DialSetting::bias(lambda).per_layer(layers);
    let mut out = BufferStats {
        queries: if details {
            vec![vec![Vec::new(); heads]; layers]
        } else {
            Vec::new()
        },
        ..BufferStats::default()
    };
    for chunk in windows.chunks(16) {
        measure_chunk(model, blocks, chunk, &per_layer, t, details, &mut out)?;
    }
    Ok(out)
}

/// The map the data bits are read under: for a map that keeps unassigned tokens open (how
/// recruitment trains, SPEC §9), the same map with unassigned tokens isolated, so that under
/// the dial a query sees the keys of its recruited block and nothing else. A block then earns
/// its bits by the context it gives its own tokens, read from the model as it was trained.
pub fn localist_view(blocks: &BlockMap) -> BlockMap {
    let mut view = blocks.clone();
    if view.open_unassigned {
        view.open_unassigned = false;
        view.isolate_unassigned = true;
    }
    view
}

/// Add one chunk of windows to `out`: its data bits and, with `details`, its per-position
/// facts.
fn measure_chunk(
    model: &LocalistModel,
    blocks: &BlockMap,
    chunk: &[Window],
    per_layer: &[DialParams],
    t: usize,
    details: bool,
    out: &mut BufferStats,
) -> Result<(), TrainError> {
    let dev = &model.device;
    let b = chunk.len();
    let v = model.config.vocab_size;
    let biases = chunk_biases(blocks, chunk, per_layer, t, dev)?;
    let x: Vec<u32> = chunk.iter().flat_map(|w| w.x.iter().copied()).collect();
    let y: Vec<u32> = chunk.iter().flat_map(|w| w.y.iter().copied()).collect();
    let fwd = model.forward(
        &Tensor::from_vec(x.clone(), (b, t), dev)?,
        &biases,
        ForwardOptions::default(),
    )?;
    let logp = candle_nn::ops::log_softmax(&fwd.logits.reshape((b * t, v))?, 1)?;
    let y_t = Tensor::from_vec(y, (b * t, 1), dev)?;
    let picked = logp.gather(&y_t, 1)?.flatten_all()?.to_vec1::<f32>()?;
    let ln2 = std::f32::consts::LN_2;
    out.data_bits -= picked.iter().map(|&lp| f64::from(lp / ln2)).sum::<f64>();
    if !details {
        return Ok(());
    }
    out.query_ids.extend(x);
    out.loss_bits.extend(picked.iter().map(|&lp| -lp / ln2));
    add_attention_facts(model, &fwd, b * t, out)
}

/// The mode-A attention biases of a chunk of windows under `blocks`, one per layer.
fn chunk_biases(
    blocks: &BlockMap,
    chunk: &[Window],
    per_layer: &[DialParams],
    t: usize,
    dev: &Device,
) -> Result<Vec<AttentionBias>, TrainError> {
    let masks: Vec<SequenceMasks> = chunk.iter().map(|w| blocks.masks(&w.x)).collect();
    let mut biases = Vec::with_capacity(per_layer.len());
    for p in per_layer {
        let rows: Vec<LayerBias> = masks.iter().map(|m| layer_bias(m, p)).collect();
        let refs: Vec<&LayerBias> = rows.iter().collect();
        biases.push(AttentionBias::from_rows(&refs, t, dev)?);
    }
    Ok(biases)
}

/// Append the attention entropy of each of a chunk's `positions` (bits, mean over heads and
/// layers) and its queries per layer and head to `out`.
fn add_attention_facts(
    model: &LocalistModel,
    fwd: &ForwardOutput,
    positions: usize,
    out: &mut BufferStats,
) -> Result<(), TrainError> {
    let (layers, heads, dh) = (
        model.config.num_layers,
        model.config.num_heads,
        model.config.head_dim(),
    );
    let ln2 = std::f32::consts::LN_2;
    let mut ent = vec![0f32; positions];
    for (l, a) in fwd.attention.iter().enumerate() {
        // −Σ a log₂ a per row, mean over heads and layers.
        let h = (a * (a + 1e-12)?.log()?)?
            .sum(D::Minus1)?
            .mean(1)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for (e, hv) in ent.iter_mut().zip(h) {
            *e -= hv / ln2 / layers as f32;
        }
        if let (Some(q), Some(ql)) = (fwd.queries.get(l), out.queries.get_mut(l)) {
            // [B,H,T,d_h] → per head, position-major.
            let qv = q
                .transpose(0, 1)?
                .contiguous()?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let per_head = positions * dh;
            for (hh, dst) in ql.iter_mut().enumerate().take(heads) {
                if let Some(src) = qv.get(hh * per_head..(hh + 1) * per_head) {
                    dst.extend_from_slice(src);
                }
            }
        }
    }
    out.entropy_bits.extend(ent);
    Ok(())
}

/// How much the model uses context, while nothing is recruited (else, or with `min_gain` 0,
/// `None`): the buffer's data bits with every key visible (the dial at 0, how training sees
/// it), against `localist` bits, the same buffer in the localist view (every token isolated),
/// both scaled by `scale`. Returns (open bits, the fraction they save).
pub fn context_use(
    trainer: &Trainer,
    ids: &[u32],
    seq_len: usize,
    localist: f64,
    scale: f64,
    min_gain: f64,
) -> Result<Option<(f64, f64)>, TrainError> {
    if trainer.blocks.num_blocks() != 1 || min_gain <= 0.0 {
        return Ok(None);
    }
    // At λ = 0 mode A adds no bias to any cell, the view's isolated tokens included.
    let bits =
        scale * buffer_stats(&trainer.model, &trainer.blocks, ids, 0.0, seq_len, false)?.data_bits;
    Ok(Some((bits, 1.0 - bits / localist.max(f64::MIN_POSITIVE))))
}

/// Parameters one block owns: its anchor key in every head of every layer.
pub fn block_params(model: &LocalistModel) -> usize {
    model.config.num_layers * model.config.num_heads * model.config.head_dim()
}

/// DL(M) = L(D | M) + Σ_{k ≥ 1} [(p_k/2)·log₂ n + c_blk] + L(b): block 0 is the free catch-all
/// and L(b) prices every assigned token.
pub fn description_length(
    data_bits: f64,
    blocks: &BlockMap,
    params_per_block: usize,
    n: usize,
    k_max: usize,
) -> f64 {
    let k = blocks.num_blocks().saturating_sub(1);
    let assigned = blocks.token_block.iter().filter(|&&b| b != 0).count();
    data_bits
        + k as f64 * (parameter_bits(params_per_block, n) + block_header_bits(k_max))
        + map_bits(assigned, blocks.token_block.len(), k_max)
}
