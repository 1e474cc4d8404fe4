//! The buffer's measurement through the native pass ([`crate::model::native::infer`]) when the
//! weights are on the CPU: each window is one sequence, the windows spread over the training
//! threads. A round measures the buffer once per try (48 measurements of 8,192 tokens in an
//! 800-step run on an 8-topic corpus of 2,000 documents), and through candle's batched ops
//! that was 4.7 s of the rounds' 5.8 s. The per-window results are put back in window order,
//! so the sums are the same on any number of threads.
//!
//! Within a round, the tries judged at once share the weights (restored from the round's
//! snapshot; a candidate changes only the anchor keys, which the pass does not read), and a
//! try changes the biases only of the windows that hold its tokens: the others' facts are
//! kept from the round's earlier measurements (up to 64 MiB) and reused, keyed by the
//! window's tokens and biases and a fingerprint of the weights.

use std::cell::RefCell;
use std::collections::HashMap;

use rayon::prelude::*;

use crate::analysis::dial::DialParams;
use crate::model::blocks::BlockMap;
use crate::model::dial::layer_bias;
use crate::model::fused::exp::exp_f32;
use crate::model::native::{
    infer_feature_major, param_lengths, with_model_refs, HostBias, ParamRefs,
};
use crate::model::transformer::LocalistModel;
use crate::train::dataset::Window;
use crate::train::trainer::{training_pool, TrainError};

/// What one window adds to the buffer's statistics.
#[derive(Clone, Default)]
pub(super) struct WindowFacts {
    /// Bits of each position's next token.
    pub loss_bits: Vec<f32>,
    /// Mean attention entropy (bits) of each position's query (with details).
    pub entropy_bits: Vec<f32>,
    /// Queries per layer, [H, T, d_h] (with details).
    pub queries: Vec<Vec<f32>>,
}

/// Measure `windows` under `blocks` at the per-layer dial: each window's facts (with
/// `details`, its entropies and queries too), in window order. A window whose tokens and
/// biases are the same as in an earlier measurement of the same weights is not run again
/// ([`Kept`]): a try judged at once changes the view of only the windows holding its tokens.
pub(super) fn measure_windows(
    model: &LocalistModel,
    blocks: &BlockMap,
    windows: &[Window],
    per_layer: &[DialParams],
    details: bool,
) -> Result<Vec<WindowFacts>, TrainError> {
    let biased: Vec<(Vec<HostBias>, u64)> = windows
        .iter()
        .map(|w| window_biases(blocks, w, per_layer))
        .collect();
    if !details {
        // The bits alone (the context check at λ = 0): nothing a try would reuse.
        let all: Vec<usize> = (0..windows.len()).collect();
        return run_windows(model, windows, &biased, &all, false);
    }
    let weights = weights_fingerprint(model)?;
    KEPT.with(|kept| {
        let mut kept = kept.borrow_mut();
        kept.begin(weights);
        let mut out: Vec<Option<WindowFacts>> = biased
            .iter()
            .map(|(_, key)| kept.facts.get(key).cloned())
            .collect();
        let missing: Vec<usize> = (0..out.len())
            .filter(|&i| out.get(i).is_some_and(Option::is_none))
            .collect();
        let fresh = run_windows(model, windows, &biased, &missing, true)?;
        for (&i, facts) in missing.iter().zip(fresh) {
            if let Some((_, key)) = biased.get(i) {
                kept.keep(*key, facts.clone());
            }
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(facts);
            }
        }
        out.into_iter()
            .map(|f| {
                f.ok_or_else(|| TrainError::Invalid("a buffer window was not measured".into()))
            })
            .collect()
    })
}

/// The windows `which` through the native pass (on the training threads), in that order.
fn run_windows(
    model: &LocalistModel,
    windows: &[Window],
    biased: &[(Vec<HostBias>, u64)],
    which: &[usize],
    details: bool,
) -> Result<Vec<WindowFacts>, TrainError> {
    let facts: Vec<Result<WindowFacts, TrainError>> = with_model_refs(model, |p| {
        let one = |&i: &usize| match (windows.get(i), biased.get(i)) {
            (Some(w), Some((host, _))) => window_facts(model, p, w, host, details),
            _ => Err(TrainError::Invalid("a buffer window out of range".into())),
        };
        Ok(match training_pool() {
            Some(pool) => pool.install(|| which.par_iter().map(one).collect()),
            None => which.iter().map(one).collect(),
        })
    })?;
    facts.into_iter().collect()
}

/// Most bytes of window facts kept between measurements.
const KEPT_BYTES: usize = 64 << 20;

/// Window facts (with details) of the last weights measured, by window key (its tokens and
/// biases).
#[derive(Default)]
struct Kept {
    weights: u64,
    bytes: usize,
    facts: HashMap<u64, WindowFacts>,
}

impl Kept {
    /// Start a measurement of `weights`: what was kept for other weights is dropped.
    fn begin(&mut self, weights: u64) {
        if self.weights != weights {
            *self = Self {
                weights,
                ..Self::default()
            };
        }
    }

    /// Keep `facts` under `key` while the budget allows.
    fn keep(&mut self, key: u64, facts: WindowFacts) {
        let bytes = 4
            * (facts.loss_bits.len()
                + facts.entropy_bits.len()
                + facts.queries.iter().map(Vec::len).sum::<usize>());
        if self.bytes + bytes <= KEPT_BYTES {
            self.bytes += bytes;
            self.facts.insert(key, facts);
        }
    }
}

thread_local! {
    static KEPT: RefCell<Kept> = RefCell::new(Kept::default());
}

/// Drops the kept window facts when it goes (at the end of a round: training then moves the
/// weights, and nothing kept would be of use).
pub(super) struct ForgetKept;

impl Drop for ForgetKept {
    fn drop(&mut self) {
        KEPT.with(|kept| *kept.borrow_mut() = Kept::default());
    }
}

/// 64-bit FNV-1a over words: the key of a window's inputs, the fingerprint of the weights.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, word: u32) {
        self.0 = (self.0 ^ u64::from(word)).wrapping_mul(0x0000_0100_0000_01b3);
    }

    fn add_floats(&mut self, xs: &[f32]) {
        self.add(xs.len() as u32);
        for x in xs {
            self.add(x.to_bits());
        }
    }
}

/// A fingerprint of the values of the parameters the pass reads (not the anchor keys, which
/// only the training's anchor term reads, and which every candidate block changes): two
/// states of the weights share it only if they are the same (a restored snapshot is the same
/// state again).
fn weights_fingerprint(model: &LocalistModel) -> Result<u64, TrainError> {
    let mut h = Fnv::new();
    for (name, _) in param_lengths(&model.config) {
        name.bytes().for_each(|b| h.add(u32::from(b)));
        let var = model
            .params
            .var(&name)
            .ok_or_else(|| TrainError::Invalid(format!("the model has no '{name}'")))?;
        let (storage, layout) = var.as_tensor().storage_and_layout();
        let candle_core::Storage::Cpu(cpu) = &*storage else {
            return Err(TrainError::Invalid(
                "the native measurement reads CPU weights".into(),
            ));
        };
        h.add_floats(crate::model::fused::slice(
            cpu,
            layout,
            "recruitment weights",
        )?);
    }
    Ok(h.0)
}

/// A window's biases, one per layer, and its key (tokens, labels and biases).
fn window_biases(blocks: &BlockMap, w: &Window, per_layer: &[DialParams]) -> (Vec<HostBias>, u64) {
    let masks = blocks.masks(&w.x);
    let mut h = Fnv::new();
    w.x.iter().chain(&w.y).for_each(|&id| h.add(id));
    let host: Vec<HostBias> = per_layer
        .iter()
        .map(|dp| {
            let b = layer_bias(&masks, dp);
            h.add_floats(&b.additive);
            h.add(b.tau.to_bits());
            if let Some((lam, local)) = &b.mixture {
                h.add(lam.to_bits());
                h.add_floats(local);
            }
            HostBias {
                additive: b.additive,
                tau: b.tau,
                mixture: b.mixture,
                extra: None,
            }
        })
        .collect();
    (host, h.0)
}

crate::model::fused::simd::simd_dispatch! {
    /// −log₂ softmax(logits[·, i])[y_i] at each position i of feature-major logits [V, T]
    /// (token u's logit at position i at `u·T + i`): every position's maximum, then its Σ exp
    /// (in f64), one sweep over the rows each, the positions in the vector lanes. With an
    /// 8,192-word vocabulary these are 67 million exps a buffer measurement: a library call
    /// each, position by position after a transpose, was 4% of a recruiting run on the
    /// bundled Shakespeare, the transpose another 3.5%.
    fn next_token_bits_cols => bits_cols_any(logits: &[f32], v: usize, t: usize, y: &[u32]) -> Vec<f32>
}

#[inline(always)]
fn bits_cols_any(logits: &[f32], v: usize, t: usize, y: &[u32]) -> Vec<f32> {
    let t = t.max(1);
    let rows = || logits.chunks_exact(t).take(v);
    let mut max = vec![f32::NEG_INFINITY; t];
    for row in rows() {
        for (m, &x) in max.iter_mut().zip(row) {
            *m = m.max(x);
        }
    }
    let mut sum = vec![0f64; t];
    for row in rows() {
        for ((s, &x), &m) in sum.iter_mut().zip(row).zip(&max) {
            *s += f64::from(exp_f32(x - m));
        }
    }
    // A NaN logit makes its position's sum NaN (exp_f32 keeps it), so its bits are NaN.
    y.iter()
        .zip(sum.iter().zip(&max))
        .enumerate()
        .map(|(i, (&yi, (&s, &m)))| {
            let picked = match logits.get(yi as usize * t + i) {
                Some(&l) if (yi as usize) < v => f64::from(l - m),
                _ => f64::NAN,
            };
            ((s.ln() - picked) / std::f64::consts::LN_2) as f32
        })
        .collect()
}

/// One window through the native pass: its loss bits and, with `details`, its attention
/// entropies (−Σ a·log₂(a + 10⁻¹²) per row, mean over heads and layers, as the batched
/// measurement) and queries.
fn window_facts(
    model: &LocalistModel,
    p: &ParamRefs<'_>,
    w: &Window,
    host: &[HostBias],
    details: bool,
) -> Result<WindowFacts, TrainError> {
    let cfg = &model.config;
    let (t, v, heads) = (w.x.len(), cfg.vocab_size, cfg.num_heads);
    let out =
        infer_feature_major(p, cfg, &w.x, host).map_err(|e| TrainError::Invalid(e.to_string()))?;
    let ln2 = std::f64::consts::LN_2;
    let loss_bits = next_token_bits_cols(&out.logits, v, t, &w.y);
    if !details {
        return Ok(WindowFacts {
            loss_bits,
            ..WindowFacts::default()
        });
    }
    let mut entropy_bits = vec![0f32; t];
    let scale = (ln2 as f32) * heads.max(1) as f32 * out.attention.len().max(1) as f32;
    for a in &out.attention {
        for (i, row) in a.chunks(t.max(1)).enumerate() {
            let e: f32 = row
                .iter()
                .filter(|&&x| x != 0.0)
                .map(|&x| x * (x + 1e-12).ln())
                .sum();
            if let Some(slot) = entropy_bits.get_mut(i % t.max(1)) {
                *slot -= e / scale;
            }
        }
    }
    Ok(WindowFacts {
        loss_bits,
        entropy_bits,
        queries: out.queries,
    })
}

#[cfg(test)]
mod tests {
    use super::next_token_bits_cols;

    /// −log₂ softmax(row)[y] the plain way, in f64.
    fn reference(row: &[f32], y: usize) -> f64 {
        let m = row.iter().map(|&x| f64::from(x)).fold(f64::MIN, f64::max);
        let sum: f64 = row.iter().map(|&x| (f64::from(x) - m).exp()).sum();
        (sum.ln() - (f64::from(row[y]) - m)) / std::f64::consts::LN_2
    }

    /// Rows [T, V] to feature-major [V, T].
    fn columns(rows: &[Vec<f32>]) -> Vec<f32> {
        let (t, v) = (rows.len(), rows[0].len());
        (0..v * t).map(|k| rows[k % t][k / t]).collect()
    }

    #[test]
    fn next_token_bits_are_the_log_softmax_of_each_position() {
        let (v, t) = (8_203, 19); // past multiples of the 16 lanes
        let mut state = 12_345u64;
        let mut rows: Vec<Vec<f32>> = (0..t)
            .map(|_| {
                (0..v)
                    .map(|_| {
                        state = state
                            .wrapping_mul(6_364_136_223_846_793_005)
                            .wrapping_add(1);
                        ((state >> 40) as f32 / (1u64 << 24) as f32) * 30.0 - 15.0
                    })
                    .collect()
            })
            .collect();
        // One position whose largest logit is the last token's, and certain.
        rows[3].iter_mut().for_each(|x| *x = -40.0);
        rows[3][v - 1] = 40.0;
        let mut y: Vec<u32> = (0..t).map(|i| ((i * 977) % v) as u32).collect();
        y[3] = (v - 1) as u32;
        let bits = next_token_bits_cols(&columns(&rows), v, t, &y);
        assert_eq!(bits.len(), t);
        for (i, (&b, &yi)) in bits.iter().zip(&y).enumerate() {
            let want = reference(&rows[i], yi as usize);
            assert!(
                (f64::from(b) - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{i}: {b} against {want}"
            );
        }
        assert!(bits[3].abs() < 1e-6, "{}", bits[3]);
        // A NaN logit is NaN bits at its position only; a target outside the vocabulary too.
        rows[5][100] = f32::NAN;
        y[7] = v as u32;
        let bits = next_token_bits_cols(&columns(&rows), v, t, &y);
        assert!(bits[5].is_nan() && bits[7].is_nan());
        assert!(bits
            .iter()
            .enumerate()
            .all(|(i, b)| i == 5 || i == 7 || b.is_finite()));
    }
}
