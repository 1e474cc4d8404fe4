//! Generation under the dial: a few tokens, greedily, each with the next-token distribution it
//! was chosen from, under the current dial and rules (output constraints included). The same
//! code serves our models and imported decoders.

use anyhow::{bail, Result};
use candle_core::Tensor;

use crate::data::tokenizer::Tokenizer;
pub use crate::engine::protocol::{Candidate, GenStep, Generation};

use crate::model::backend::{AttentionModel, KvCache};
use crate::model::blocks::BlockMap;
use crate::model::capture::{masks_for, sequence_biases};
use crate::model::dial::DialSetting;
use crate::rules::check::ResolvedRule;
use crate::rules::inject::capture_with_rules;

/// The next-token distribution after `ids` under `dial` and `rules` (softmax of the last row's
/// logits, after any `forbid`/`boost` of a rule that fired there). With a `cache` and no rule
/// switched on, a decoder that keeps one ([`AttentionModel::step_cached`]) runs only the
/// positions the cache does not hold yet; the result is the same.
pub fn next_distribution(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
    rules: &[ResolvedRule],
    cache: Option<&mut KvCache>,
) -> Result<Vec<f32>> {
    let dims = model.dims();
    if !dims.has_logits || !dims.causal {
        bail!("generation needs a decoder with a next-token head; this model is an encoder");
    }
    let t = ids.len();
    if t == 0 {
        bail!("the prompt is empty after tokenization");
    }
    let v = dims.vocab;
    let last_row = |logits: Tensor| -> Result<Vec<f32>> {
        let n = logits.dim(1)?;
        Ok(logits
            .squeeze(0)?
            .narrow(0, n - 1, 1)?
            .flatten_all()?
            .to_vec1::<f32>()?)
    };
    let logits: Vec<f32> = if rules.iter().any(|r| r.enabled) {
        let rc = capture_with_rules(model, blocks, ids, dial, rules)?;
        rc.capture
            .logits
            .get((t - 1) * v..t * v)
            .map(<[f32]>::to_vec)
            .unwrap_or_default()
    } else {
        let masks = masks_for(model, blocks, ids);
        let biases = sequence_biases(model, &masks, dial, model.device())?;
        let stepped = match cache {
            Some(cache) if cache.len() < t => {
                let p = cache.len();
                let rows = biases
                    .iter()
                    .map(|b| b.rows(p, t - p))
                    .collect::<candle_core::Result<Vec<_>>>()?;
                model.step_cached(&ids[p..], &rows, cache)
            }
            _ => None,
        };
        match stepped {
            Some(logits) => last_row(logits?)?,
            None => last_row(model.forward_biased(ids, &biases, false)?.logits)?,
        }
    };
    if logits.len() != v {
        bail!("the model returned {} logits, expected {v}", logits.len());
    }
    let logp = crate::analysis::metrics::log_softmax(&logits);
    if logp.iter().all(|l| !l.is_finite()) {
        bail!("every next token is forbidden (or the logits are not finite)");
    }
    Ok(logp.iter().map(|&l| l.exp() as f32).collect())
}

/// Generate `n` tokens greedily after `prompt` (stopping early at the model's length), keeping
/// the `top` most probable candidates of each step.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    tok: &dyn Tokenizer,
    prompt: &[u32],
    dial: &DialSetting,
    rules: &[ResolvedRule],
    n: usize,
    top: usize,
) -> Result<Generation> {
    let started = std::time::Instant::now();
    let max_len = model.dims().max_len;
    let mut ids = prompt.to_vec();
    let mut steps = Vec::with_capacity(n);
    let mut cache = KvCache::default();
    // Each step's text is what it adds to the decoded sequence, so a word tokenizer's spaces
    // (and a BPE's merged pieces) come back: "txn 2024-12-30 : pay", not "txn2024-12-30:pay".
    let mut decoded = tok.decode(&ids);
    while steps.len() < n && ids.len() < max_len {
        let p = next_distribution(model, blocks, &ids, dial, rules, Some(&mut cache))?;
        let mut order: Vec<usize> = (0..p.len()).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let cands: Vec<Candidate> = order
            .iter()
            .take(top.max(1))
            .map(|&i| Candidate {
                id: i as u32,
                text: tok.token_str(i as u32),
                prob: p[i],
            })
            .collect();
        let entropy_bits = p
            .iter()
            .filter(|&&q| q > 0.0)
            .map(|&q| -f64::from(q) * f64::from(q).log2())
            .sum();
        let Some(best) = cands.first().cloned() else {
            break;
        };
        ids.push(best.id);
        let now = tok.decode(&ids);
        let text = match now.strip_prefix(decoded.as_str()) {
            Some(added) => added.to_string(),
            None => best.text,
        };
        decoded = now;
        steps.push(GenStep {
            id: best.id,
            text,
            top: cands,
            entropy_bits,
        });
    }
    let ms_per_token = started.elapsed().as_secs_f64() * 1e3 / steps.len().max(1) as f64;
    Ok(Generation {
        prompt: tok.decode(prompt),
        dial: dial.clone(),
        rules: rules
            .iter()
            .filter(|r| r.enabled)
            .map(|r| r.id.clone())
            .collect(),
        steps,
        ms_per_token,
        measured_on: Default::default(),
    })
}
