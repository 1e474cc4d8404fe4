//! The anchor keys of a changed block map (SPEC §9 step 3): a new block's key starts as the
//! normalised centroid of its queries, a removed block's row is dropped, and the anchor loss
//! says how well the keys classify the queries.

use candle_core::Tensor;

use crate::model::blocks::BlockMap;
use crate::model::transformer::{anchor_name, LocalistModel};
use crate::train::recruit::buffer::BufferStats;
use crate::train::trainer::{TrainError, TrainerSnapshot};

/// Each buffer position's target block (by relevance) under the new and the old map, and the
/// positions whose target is the new block.
struct AnchorTargets {
    new: Vec<usize>,
    old: Vec<usize>,
    mine: Vec<usize>,
}

/// Sums of the anchor loss over layers and heads, under the old keys and with the new one.
#[derive(Default)]
struct AnchorLoss {
    before: f64,
    after: f64,
    count: usize,
}

/// Each buffer position's target block under `m`: its query token's block, by relevance.
fn targets_of(stats: &BufferStats, m: &BlockMap) -> Vec<usize> {
    stats
        .query_ids
        .iter()
        .map(|&id| {
            let b = m.token_block.get(id as usize).copied().unwrap_or(0);
            m.relevance.get(b).copied().unwrap_or(b)
        })
        .collect()
}

/// The anchor keys of `map` (`old_map` plus one block): the existing rows, and for the new last
/// block the normalised centroid of its queries (SPEC §9 step 3). Returns the per-layer tensors
/// [H,K+1,d_h] and a note with the anchor loss under the old map and keys, then the new ones.
pub(super) fn init_anchors(
    model: &LocalistModel,
    stats: &BufferStats,
    old_map: &BlockMap,
    map: &BlockMap,
) -> Result<(Vec<Tensor>, String), TrainError> {
    let new = map.num_blocks() - 1;
    let targets = targets_of(stats, map);
    let mine: Vec<usize> = (0..)
        .zip(&targets)
        .filter(|&(_, &t)| t == new)
        .map(|(p, _)| p)
        .collect();
    let targets = AnchorTargets {
        new: targets,
        old: targets_of(stats, old_map),
        mine,
    };
    let mut loss = AnchorLoss::default();
    let mut out = Vec::with_capacity(model.config.num_layers);
    for l in 0..model.config.num_layers {
        out.push(layer_anchors(
            model,
            l,
            stats,
            &targets,
            map.num_blocks(),
            &mut loss,
        )?);
    }
    let c = loss.count.max(1) as f64;
    Ok((
        out,
        format!(
            "anchor key = query centroid; anchor loss {:.3} then {:.3} nats",
            loss.before / c,
            loss.after / c
        ),
    ))
}

/// Layer `l`'s anchor keys [H,k_new,d_h]: its existing rows and the new block's query
/// centroid, each head's anchor loss before and after added to `loss`.
fn layer_anchors(
    model: &LocalistModel,
    l: usize,
    stats: &BufferStats,
    targets: &AnchorTargets,
    k_new: usize,
    loss: &mut AnchorLoss,
) -> Result<Tensor, TrainError> {
    let (heads, dh) = (model.config.num_heads, model.config.head_dim());
    let scale = 1.0 / (dh as f32).sqrt();
    let old = model.params.get(&anchor_name(l))?; // [H,K,d_h]
    let old_k = old.dim(1)?;
    let old_v = old.flatten_all()?.to_vec1::<f32>()?;
    let mut data = Vec::with_capacity(heads * k_new * dh);
    for h in 0..heads {
        let q = stats
            .queries
            .get(l)
            .and_then(|ql| ql.get(h))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let mut rows: Vec<Vec<f32>> = (0..old_k)
            .map(|k| {
                let o = (h * old_k + k) * dh;
                old_v
                    .get(o..o + dh)
                    .map(<[f32]>::to_vec)
                    .unwrap_or(vec![0.0; dh])
            })
            .collect();
        rows.push(query_centroid(q, &targets.mine, dh));
        // The anchor loss of the old keys under the old map, then with the new key.
        loss.before += anchor_ce(rows.get(..old_k).unwrap_or(&[]), q, &targets.old, dh, scale);
        loss.after += anchor_ce(&rows, q, &targets.new, dh, scale);
        loss.count += 1;
        for r in rows {
            data.extend(r);
        }
    }
    Ok(Tensor::from_vec(data, (heads, k_new, dh), &model.device)?)
}

/// The normalised mean of the queries (`q`, position-major rows of `dh`) at `positions`.
fn query_centroid(q: &[f32], positions: &[usize], dh: usize) -> Vec<f32> {
    let mut centroid = vec![0f32; dh];
    for &p in positions {
        if let Some(qp) = q.get(p * dh..(p + 1) * dh) {
            for (c, &x) in centroid.iter_mut().zip(qp) {
                *c += x;
            }
        }
    }
    let norm = centroid.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    centroid.iter_mut().for_each(|c| *c /= norm);
    centroid
}

/// Mean anchor loss: cross-entropy of classifying each position's query (`q`, position-major
/// rows of `dh`) onto its target block's key among `rows`.
fn anchor_ce(rows: &[Vec<f32>], q: &[f32], targets: &[usize], dh: usize, scale: f32) -> f64 {
    let mut loss = 0.0f64;
    let mut logits = vec![0f32; rows.len()];
    for (p, &tgt) in targets.iter().enumerate() {
        let Some(qp) = q.get(p * dh..(p + 1) * dh) else {
            continue;
        };
        for (lg, r) in logits.iter_mut().zip(rows) {
            *lg = r.iter().zip(qp).map(|(a, b)| a * b).sum::<f32>() * scale;
        }
        let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let z: f32 = logits.iter().map(|&x| (x - m).exp()).sum();
        loss += f64::from(m + z.ln() - logits.get(tgt).copied().unwrap_or(0.0));
    }
    loss / targets.len().max(1) as f64
}

/// Anchor keys of a snapshot without block `gone`'s row, per layer (all rows when `gone` is
/// out of range).
pub(super) fn drop_anchor(
    snap: &TrainerSnapshot,
    layers: usize,
    gone: usize,
) -> Result<Vec<Tensor>, TrainError> {
    let mut out = Vec::with_capacity(layers);
    for l in 0..layers {
        let a = snap
            .params
            .get(&anchor_name(l))
            .ok_or_else(|| TrainError::Invalid(format!("no anchor keys for layer {l}")))?;
        let k = a.dim(1)?;
        if gone >= k {
            out.push(a.copy()?);
            continue;
        }
        let mut parts = Vec::new();
        if gone > 0 {
            parts.push(a.narrow(1, 0, gone)?);
        }
        if gone + 1 < k {
            parts.push(a.narrow(1, gone + 1, k - gone - 1)?);
        }
        out.push(Tensor::cat(&parts, 1)?.contiguous()?);
    }
    Ok(out)
}
