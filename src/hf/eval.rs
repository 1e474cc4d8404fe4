//! The dial on an imported decoder, without retraining: blocks by k-means over its embedding
//! rows, the dial's biases (any mode and schedule) from our own dial code through the same
//! capture as our model, and per λ the perplexity, mean attention entropy and off-block mass ε
//! on a held-out text.

use anyhow::{bail, Result};
use serde::Serialize;

use crate::analysis::kmeans::kmeans;
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::capture;
use crate::model::dial::DialSetting;

/// One λ of the curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RealEvalRow {
    /// λ_inf.
    pub lambda: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// 2^(bits per token) (a decoder; `None` for an encoder, which has no next-token head).
    pub perplexity: Option<f64>,
    /// Mean attention entropy, bits, over rows, heads and layers.
    pub entropy_bits: f64,
    /// Mean attention mass outside R(i).
    pub epsilon: f64,
}

/// A block map of `k` clusters of a model's input-embedding rows (SPEC §3, source 2), each
/// named after the first few whole-word tokens of its cluster (`decode` gives a token's text).
pub fn kmeans_blocks(
    rows: &[Vec<f32>],
    decode: impl Fn(u32) -> String,
    k: usize,
    seed: u64,
) -> BlockMap {
    let labels = kmeans(rows, k, 8, seed);
    let mut names = vec![String::new(); k];
    for (id, &c) in labels.iter().enumerate() {
        if let Some(n) = names.get_mut(c) {
            if n.chars().count() < 18 {
                let t = decode(id as u32);
                let t = t.trim();
                if !t.is_empty() && t.chars().all(|ch| ch.is_alphanumeric()) {
                    if !n.is_empty() {
                        n.push('/');
                    }
                    n.push_str(t);
                }
            }
        }
    }
    let pairs: Vec<(u32, String)> = labels
        .iter()
        .enumerate()
        .map(|(id, &c)| {
            let label = names.get(c).cloned().unwrap_or_default();
            (id as u32, format!("c{c} {label}"))
        })
        .collect();
    let mut map = BlockMap::from_assignments(rows.len(), &pairs, &format!("k-means k={k}"));
    // Every token is in a cluster: nothing is "unassigned".
    map.isolate_unassigned = false;
    map
}

/// Evaluate `ids` in consecutive windows of `window` tokens (at most `windows` of them) at each
/// dial setting of `dials` (any mode and schedule): entropy and ε on any model, perplexity on a
/// decoder with next-token logits.
pub fn eval_imported(
    m: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dials: &[DialSetting],
    window: usize,
    windows: usize,
) -> Result<Vec<RealEvalRow>> {
    let dims = m.dims();
    let scored = dims.has_logits && dims.causal;
    let t = window.max(2);
    let starts: Vec<usize> = (0..windows)
        .map(|w| w * t)
        .take_while(|&s| s + t < ids.len())
        .collect();
    if starts.is_empty() {
        bail!(
            "the text has {} tokens; need more than {} for one window",
            ids.len(),
            t
        );
    }
    let mut out = Vec::with_capacity(dials.len());
    for dial in dials {
        let (mut bits, mut n) = (0.0f64, 0usize);
        let (mut ent, mut eps, mut rows) = (0.0f64, 0.0f64, 0usize);
        for &s in &starts {
            let x = &ids[s..s + t];
            let y = &ids[s + 1..s + t + 1];
            let cap = capture(m, blocks, x, dial)?;
            let v = dims.vocab;
            if scored {
                for (i, &target) in y.iter().enumerate() {
                    let row = cap.logits.get(i * v..(i + 1) * v).unwrap_or(&[]);
                    bits -= log2_softmax_at(row, target as usize);
                }
            }
            n += t;
            ent += cap.mean_entropy_bits(None) * (t * cap.heads.len()) as f64;
            eps += cap.mean_off_block_mass(None) * (t * cap.heads.len()) as f64;
            rows += t * cap.heads.len();
        }
        out.push(RealEvalRow {
            lambda: dial.params.lambda,
            tokens: n,
            perplexity: scored.then(|| 2f64.powf(bits / n.max(1) as f64)),
            entropy_bits: ent / rows.max(1) as f64,
            epsilon: (eps / rows.max(1) as f64).max(0.0),
        });
    }
    Ok(out)
}

/// log₂ softmax(row)[k].
fn log2_softmax_at(row: &[f32], k: usize) -> f64 {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = row
        .iter()
        .map(|&z| (z as f64 - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    let z = row.get(k).copied().unwrap_or(f32::NEG_INFINITY) as f64;
    (z - lse) / std::f64::consts::LN_2
}

/// The curve as a markdown table.
pub fn table(rows: &[RealEvalRow], mode: &str) -> String {
    let mut s = String::from(
        "| λ_inf | mode | tokens | perplexity | entropy (bits) | ε |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {:.2} | {mode} | {} | {} | {:.3} | {:.4} |\n",
            r.lambda,
            r.tokens,
            r.perplexity
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "– (encoder)".into()),
            r.entropy_bits,
            r.epsilon
        ));
    }
    s
}
