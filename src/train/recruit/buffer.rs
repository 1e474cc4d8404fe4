//! What recruitment measures on its held-out buffer: the data bits L(D | M) at the
//! recruitment dial and, for a round, the per-position loss, attention entropy and queries
//! its candidates and anchor keys are drawn from; and DL(M), the data bits plus what the
//! blocks cost.

use candle_core::{Tensor, D};

use crate::analysis::dial::DialParams;
use crate::analysis::mdl::{block_header_bits, map_bits, parameter_bits};
use crate::model::blocks::BlockMap;
use crate::model::dial::DialSetting;
use crate::model::transformer::{ForwardOptions, ForwardOutput, LocalistModel};
use crate::train::dataset::{TokenStream, Window};
use crate::train::eval::{chunk_masks_biases, target_log_probs};
use crate::train::recruit::buffer_native::{measure_windows, WindowFacts};
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

thread_local! {
    /// Measure through candle's batched ops even on the CPU (set only by the test that
    /// compares both paths).
    static BATCHED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Data bits of `ids` (and, with `details`, per-position facts) at mode-A dial `lambda`, in
/// non-overlapping windows of `seq_len`.
pub fn buffer_stats(
    model: &LocalistModel,
    blocks: &BlockMap,
    inheriting: &[bool],
    ids: &[u32],
    lambda: f64,
    seq_len: usize,
    details: bool,
) -> Result<BufferStats, TrainError> {
    let view = localist_view(blocks, inheriting);
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
    if model.device.is_cpu() && !BATCHED.with(std::cell::Cell::get) {
        let facts = measure_windows(model, blocks, &windows, &per_layer, details)?;
        add_window_facts(&mut out, &windows, facts, details);
        return Ok(out);
    }
    for chunk in windows.chunks(16) {
        measure_chunk(model, blocks, chunk, &per_layer, t, details, &mut out)?;
    }
    Ok(out)
}

/// The map the data bits are read under: for a map that keeps unassigned tokens open (how
/// recruitment trains, SPEC §9), the same map with unassigned tokens isolated, so that under
/// the dial a query sees the keys of its recruited block and nothing else. A block then earns
/// its bits by the context it gives its own tokens, read from the model as it was trained.
/// The tokens marked in `inheriting` (by vocabulary id: the function words, see
/// `RecruitConfig::function_words_inherit`) read instead the block of the content word before
/// them (isolated when that word is unassigned), so a block also earns the context it gives
/// the function words inside its text.
pub fn localist_view(blocks: &BlockMap, inheriting: &[bool]) -> BlockMap {
    let mut view = blocks.clone();
    if view.open_unassigned {
        view.open_unassigned = false;
        view.isolate_unassigned = true;
        view.inheriting = inheriting.to_vec();
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
    let (_, biases) = chunk_masks_biases(blocks, chunk, per_layer, t, dev)?;
    let x: Vec<u32> = chunk.iter().flat_map(|w| w.x.iter().copied()).collect();
    let y: Vec<u32> = chunk.iter().flat_map(|w| w.y.iter().copied()).collect();
    let fwd = model.forward(
        &Tensor::from_vec(x.clone(), (b, t), dev)?,
        &biases,
        ForwardOptions::default(),
    )?;
    let picked = target_log_probs(&fwd.logits.reshape((b * t, v))?, y)?;
    let ln2 = std::f32::consts::LN_2;
    out.data_bits -= picked.iter().map(|&lp| f64::from(lp / ln2)).sum::<f64>();
    if !details {
        return Ok(());
    }
    out.query_ids.extend(x);
    out.loss_bits.extend(picked.iter().map(|&lp| -lp / ln2));
    add_attention_facts(model, &fwd, b * t, out)
}

/// Append the native pass's per-window facts to `out`, in window order.
fn add_window_facts(
    out: &mut BufferStats,
    windows: &[Window],
    facts: Vec<WindowFacts>,
    details: bool,
) {
    for (w, f) in windows.iter().zip(facts) {
        out.data_bits += f.loss_bits.iter().map(|&b| f64::from(b)).sum::<f64>();
        if !details {
            continue;
        }
        out.query_ids.extend_from_slice(&w.x);
        out.loss_bits.extend(f.loss_bits);
        out.entropy_bits.extend(f.entropy_bits);
        for (q, ql) in f.queries.iter().zip(out.queries.iter_mut()) {
            let per_head = q.len() / ql.len().max(1);
            for (hh, dst) in ql.iter_mut().enumerate() {
                dst.extend_from_slice(q.get(hh * per_head..(hh + 1) * per_head).unwrap_or(&[]));
            }
        }
    }
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
    let bits = scale
        * buffer_stats(
            &trainer.model,
            &trainer.blocks,
            &[],
            ids,
            0.0,
            seq_len,
            false,
        )?
        .data_bits;
    Ok(Some((bits, 1.0 - bits / localist.max(f64::MIN_POSITIVE))))
}

/// Parameters one block owns: its anchor key in every head of every layer.
pub fn block_params(model: &LocalistModel) -> usize {
    model.config.num_layers * model.config.num_heads * model.config.head_dim()
}

/// DL(M) = L(D | M) + Σ_{k ≥ 1} [(p_k/2)·log₂ n + c_blk] + L(b): block 0 is the free catch-all
/// and L(b) codes each recruited block's tokens as one move would (`map_bits`).
pub fn description_length(
    data_bits: f64,
    blocks: &BlockMap,
    params_per_block: usize,
    n: usize,
    k_max: usize,
) -> f64 {
    let k = blocks.num_blocks().saturating_sub(1);
    let vocab = blocks.token_block.len();
    let map: f64 = blocks
        .block_sizes()
        .iter()
        .skip(1)
        .map(|&size| map_bits(size, vocab, k_max))
        .sum();
    data_bits + k as f64 * (parameter_bits(params_per_block, n) + block_header_bits(k_max)) + map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::ModelConfig;

    /// The native measurement (each window through `infer`, over the training threads) and the
    /// batched one (candle) agree on a model with blocks, an isolated catch-all and a dial.
    #[test]
    fn the_native_and_batched_measurements_agree() {
        let cfg = ModelConfig::preset("tiny", 12).unwrap_or_else(|e| panic!("{e}"));
        let model = LocalistModel::new_random(&cfg, 3, 5, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut blocks = BlockMap::single(12);
        blocks.names = vec!["unassigned".into(), "a".into(), "b".into()];
        blocks.relevance = vec![0, 1, 2];
        blocks.token_block = (0..12).map(|i| [0, 1, 2][i % 3]).collect();
        blocks.open_unassigned = true;
        let ids: Vec<u32> = (0..700u32).map(|i| (i * 7 + i / 5) % 12).collect();
        let measure = |batched: bool| {
            BATCHED.with(|b| b.set(batched));
            buffer_stats(&model, &blocks, &[], &ids, 0.8, 64, true)
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let (native, batched) = (measure(false), measure(true));
        assert!(native.data_bits > 1000.0, "{}", native.data_bits);
        let rel = (native.data_bits - batched.data_bits).abs() / batched.data_bits;
        assert!(
            rel < 1e-5,
            "{} against {}",
            native.data_bits,
            batched.data_bits
        );
        assert_eq!(native.query_ids, batched.query_ids);
        let close = |a: &[f32], b: &[f32], what: &str| {
            assert_eq!(a.len(), b.len(), "{what}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-3 * (1.0 + y.abs()),
                    "{what}[{i}]: {x} against {y}"
                );
            }
        };
        close(&native.loss_bits, &batched.loss_bits, "loss bits");
        close(&native.entropy_bits, &batched.entropy_bits, "entropy");
        assert!(native.entropy_bits.iter().any(|&e| e > 0.1));
        for (l, (a, b)) in native.queries.iter().zip(&batched.queries).enumerate() {
            for (h, (x, y)) in a.iter().zip(b).enumerate() {
                close(x, y, &format!("queries of layer {l} head {h}"));
            }
        }
        // Only whole windows are measured: 700 tokens are 10 windows of 64.
        assert_eq!(native.loss_bits.len(), 640);
    }

    /// A measurement that reuses the windows kept from an earlier one of the same weights is
    /// exactly a fresh one, after a map change and after the weights change.
    #[test]
    fn kept_windows_give_exactly_a_fresh_measurement() {
        let cfg = ModelConfig::preset("tiny", 12).unwrap_or_else(|e| panic!("{e}"));
        let model = LocalistModel::new_random(&cfg, 3, 9, &candle_core::Device::Cpu)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut blocks = BlockMap::single(12);
        blocks.names = vec!["unassigned".into(), "a".into()];
        blocks.relevance = vec![0, 1];
        blocks.token_block = (0..12).map(|i| usize::from(i < 4)).collect();
        blocks.open_unassigned = true;
        // Token 11 only in the last two windows: moving it changes only their view.
        let ids: Vec<u32> = (0..650u32)
            .map(|i| {
                if i > 520 && i % 9 == 0 {
                    11
                } else {
                    (i * 5 + i / 7) % 11
                }
            })
            .collect();
        let measure = |model: &LocalistModel, blocks: &BlockMap, fresh: bool| {
            if fresh {
                drop(super::super::buffer_native::ForgetKept);
            }
            buffer_stats(model, blocks, &[], &ids, 1.0, 64, true).unwrap_or_else(|e| panic!("{e}"))
        };
        let same = |a: &BufferStats, b: &BufferStats| {
            assert_eq!(a.data_bits.to_bits(), b.data_bits.to_bits());
            assert_eq!(a.loss_bits, b.loss_bits);
            assert_eq!(a.entropy_bits, b.entropy_bits);
            assert_eq!(a.queries, b.queries);
        };
        let before = measure(&model, &blocks, true);
        same(&measure(&model, &blocks, false), &before);
        let mut moved = blocks.clone();
        if let Some(b) = moved.token_block.get_mut(11) {
            *b = 1;
        }
        let kept = measure(&model, &moved, false);
        let fresh = measure(&model, &moved, true);
        same(&kept, &fresh);
        assert_ne!(
            kept.loss_bits, before.loss_bits,
            "the move changes some windows"
        );
        assert_eq!(
            kept.loss_bits[..512],
            before.loss_bits[..512],
            "and not the first 8"
        );
        // New weights: nothing kept for the old ones is used.
        let _ = measure(&model, &blocks, true);
        let tok = model
            .params
            .var("tok.weight")
            .unwrap_or_else(|| panic!("no tok.weight"));
        let shifted = (tok.as_tensor() * 1.5).unwrap_or_else(|e| panic!("{e}"));
        tok.set(&shifted).unwrap_or_else(|e| panic!("{e}"));
        let after_kept = measure(&model, &blocks, false);
        same(&after_kept, &measure(&model, &blocks, true));
        assert_ne!(after_kept.loss_bits, before.loss_bits);
    }
}
