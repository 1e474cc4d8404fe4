//! The dial on an imported decoder, without retraining: blocks by k-means over its embedding
//! rows, mode A or C biases from our own dial code, and per λ the perplexity, mean attention
//! entropy and off-block mass ε on a held-out text.

use anyhow::{bail, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::analysis::dial::DialMode;
use crate::analysis::kmeans::kmeans;
use crate::analysis::metrics::{entropy_bits, mass_on};
use crate::hf::gguf_llama::GgufLlama;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::dial::{layer_bias, DialSetting};

/// One λ of the curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RealEvalRow {
    /// λ_inf.
    pub lambda: f64,
    /// Tokens scored.
    pub tokens: usize,
    /// 2^(bits per token).
    pub perplexity: f64,
    /// Mean attention entropy, bits, over rows, heads and layers.
    pub entropy_bits: f64,
    /// Mean attention mass outside R(i).
    pub epsilon: f64,
}

/// A block map of `k` clusters of the model's input-embedding rows (SPEC §3, source 2), named
/// after the first few tokens of each cluster.
pub fn kmeans_blocks(m: &GgufLlama, k: usize, seed: u64) -> Result<BlockMap> {
    let rows = m.embedding_rows()?;
    let labels = kmeans(&rows, k, 8, seed);
    let mut names = vec![String::new(); k];
    for (id, &c) in labels.iter().enumerate() {
        if let Some(n) = names.get_mut(c) {
            if n.chars().count() < 18 {
                let t = m.decode(&[id as u32]).unwrap_or_default();
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
    Ok(map)
}

/// The additive score bias [1,1,T,T] of every layer for one sequence's masks under `dial`
/// (modes A and C; mode B's mixture and mode D's temperature are not carried).
pub fn dial_biases(
    masks: &SequenceMasks,
    dial: &DialSetting,
    layers: usize,
    device: &Device,
) -> candle_core::Result<Vec<Tensor>> {
    let t = masks.len();
    dial.per_layer(layers)
        .iter()
        .map(|p| Tensor::from_vec(layer_bias(masks, p).additive, (1, 1, t, t), device))
        .collect()
}

/// Evaluate `ids` in consecutive windows of `window` tokens (at most `windows` of them) at each λ
/// of `dials`. Modes A (bias) and C (positional) act through additive biases; the others are
/// refused for now.
pub fn eval_decoder(
    m: &GgufLlama,
    blocks: &BlockMap,
    ids: &[u32],
    dials: &[DialSetting],
    window: usize,
    windows: usize,
) -> Result<Vec<RealEvalRow>> {
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
    let layers = m.config.layers;
    let mut out = Vec::with_capacity(dials.len());
    for dial in dials {
        if !matches!(dial.params.mode, DialMode::Bias | DialMode::Positional) {
            bail!(
                "dial mode {} is not supported on imported models yet (use A or C)",
                dial.params.mode.label()
            );
        }
        let (mut bits, mut n) = (0.0f64, 0usize);
        let (mut ent, mut eps, mut rows) = (0.0f64, 0.0f64, 0usize);
        for &s in &starts {
            let x = &ids[s..s + t];
            let y = &ids[s + 1..s + t + 1];
            let masks = blocks.masks(x);
            let biases = dial_biases(&masks, dial, layers, &m.device)?;
            let fwd = m.forward(x, Some(&biases))?;
            let logp = candle_nn::ops::log_softmax(&fwd.logits, 1)?;
            let yt = Tensor::from_vec(y.to_vec(), (t, 1), &m.device)?;
            let picked = logp.gather(&yt, 1)?.flatten_all()?.to_vec1::<f32>()?;
            bits -= picked.iter().map(|&v| f64::from(v)).sum::<f64>() / std::f64::consts::LN_2;
            n += t;
            for a in &fwd.attention {
                let a = a.squeeze(0)?.to_vec3::<f32>()?;
                for head in &a {
                    for (i, row) in head.iter().enumerate() {
                        let row = &row[..=i];
                        ent += entropy_bits(row);
                        eps += 1.0 - mass_on(row, masks.relevant_row(i));
                        rows += 1;
                    }
                }
            }
        }
        out.push(RealEvalRow {
            lambda: dial.params.lambda,
            tokens: n,
            perplexity: 2f64.powf(bits / n.max(1) as f64),
            entropy_bits: ent / rows.max(1) as f64,
            epsilon: (eps / rows.max(1) as f64).max(0.0),
        });
    }
    Ok(out)
}

/// The curve as a markdown table.
pub fn table(rows: &[RealEvalRow], mode: &str) -> String {
    let mut s = String::from(
        "| λ_inf | mode | tokens | perplexity | entropy (bits) | ε |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {:.2} | {mode} | {} | {:.3} | {:.3} | {:.4} |\n",
            r.lambda, r.tokens, r.perplexity, r.entropy_bits, r.epsilon
        ));
    }
    s
}
