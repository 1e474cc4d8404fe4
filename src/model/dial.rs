//! The inference dial as attention biases (SPEC §4.2–4.3): no retraining.
//!
//! For each layer this turns the dial setting and one sequence's masks into what the attention
//! kernel needs: an additive bias matrix (−∞ on invisible keys), a temperature, and for mode B
//! the second, local-only bias with its mixing weight. Building this on the CPU in plain Rust
//! keeps the dial exact and testable against `analysis::dial::apply_dial_row`; the tensors that
//! carry it are built once per capture.

use serde::{Deserialize, Serialize};

use crate::analysis::dial::{mode_a_bias, temperature, DialMode, DialParams, LayerSchedule};
use crate::model::blocks::SequenceMasks;

/// Smallest temperature τ: scores are divided by τ in f32, so a τ near 0 turns ordinary scores
/// into infinities (and the softmax into NaN).
pub const MIN_TAU: f64 = 1e-3;
/// Largest temperature τ (beyond it every row is uniform anyway).
pub const MAX_TAU: f64 = 1e3;
/// Largest exponent γ of a `power:GAMMA` schedule.
pub const MAX_GAMMA: f64 = 64.0;

/// A full dial setting: mode and λ_max plus how λ is spread over layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct DialSetting {
    /// Mode, λ (the maximum over layers under a schedule), temperature, σ.
    pub params: DialParams,
    /// Uniform, power schedule, or per layer.
    pub schedule: LayerSchedule,
}

impl DialSetting {
    /// Mode A at λ (uniform over layers, τ = 1).
    pub fn bias(lambda: f64) -> Self {
        Self {
            params: DialParams {
                mode: DialMode::Bias,
                lambda,
                ..DialParams::default()
            },
            schedule: LayerSchedule::Uniform,
        }
    }

    /// The effective parameters of every layer (λ_ℓ from the schedule).
    pub fn per_layer(&self, num_layers: usize) -> Vec<DialParams> {
        self.schedule
            .layer_lambdas(self.params.lambda, num_layers)
            .into_iter()
            .map(|lambda| DialParams {
                lambda,
                ..self.params.clone()
            })
            .collect()
    }

    /// True when every layer's attention is the base attention (λ = 0, τ = 1 or mode without τ).
    pub fn is_identity(&self, num_layers: usize) -> bool {
        self.per_layer(num_layers)
            .iter()
            .all(|p| p.lambda == 0.0 && (temperature(p) - 1.0).abs() < f64::EPSILON)
    }
}

/// Temperature the layer's softmax divides by: [`crate::analysis::dial::temperature`], where it
/// is defined once, under the name the engine's callers use.
pub use crate::analysis::dial::temperature as effective_tau;

/// What one layer's attention kernel needs for one sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerBias {
    /// Additive logit bias, row-major T×T; −∞ on invisible keys.
    pub additive: Vec<f32>,
    /// Softmax temperature.
    pub tau: f32,
    /// Mode B: the mixing weight λ and the local-only bias (−∞ outside R(i)).
    pub mixture: Option<(f32, Vec<f32>)>,
}

/// The causal mask alone: 0 on visible keys, −∞ above the diagonal.
pub fn causal_bias(t: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; t * t];
    for (idx, v) in out.iter_mut().enumerate() {
        if idx % t > idx / t {
            *v = f32::NEG_INFINITY;
        }
    }
    out
}

/// Build the bias of one layer for one sequence.
pub fn layer_bias(masks: &SequenceMasks, p: &DialParams) -> LayerBias {
    let t = masks.len();
    layer_bias_rows(masks, p, 0, t, t)
}

/// Rows `r0..r0 + n` of [`layer_bias`] over keys `0..kt` (row-major n×kt), for a capture that
/// streams the rows of a long text: the same cells, without the T×T table.
pub fn layer_bias_rows(
    masks: &SequenceMasks,
    p: &DialParams,
    r0: usize,
    n: usize,
    kt: usize,
) -> LayerBias {
    let t = masks.len();
    let kt = kt.min(t);
    let mut additive = vec![0.0f32; n * kt];
    if masks.causal {
        for (ii, row) in additive.chunks_mut(kt.max(1)).enumerate() {
            for cell in row.iter_mut().skip(r0 + ii + 1) {
                *cell = f32::NEG_INFINITY;
            }
        }
    }
    let rows_with_relevance = |cells: &mut [f32], f: fn(&mut f32, bool, f32), b: f32| {
        each_cell(masks, (r0, kt), cells, f, b)
    };
    let lam = p.lambda;
    let mut mixture = None;
    match p.mode {
        DialMode::Bias | DialMode::Temperature => {
            let b = mode_a_bias(lam) as f32;
            if b != 0.0 {
                let off_block = |cell: &mut f32, relevant: bool, b: f32| {
                    if cell.is_finite() && !relevant {
                        *cell = b;
                    }
                };
                rows_with_relevance(&mut additive, off_block, b);
            }
        }
        DialMode::Positional => {
            let sigma = if p.sigma > 0.0 { p.sigma } else { 4.0 };
            for (idx, cell) in additive.iter_mut().enumerate() {
                let (i, j) = (r0 + idx / kt.max(1), idx % kt.max(1));
                if cell.is_finite() {
                    *cell = (-lam * (i.abs_diff(j)) as f64 / sigma) as f32;
                }
            }
        }
        DialMode::Mixture => {
            if lam > 0.0 {
                let mut local = additive.clone();
                let local_only = |cell: &mut f32, relevant: bool, _: f32| {
                    if !relevant {
                        *cell = f32::NEG_INFINITY;
                    }
                };
                rows_with_relevance(&mut local, local_only, 0.0);
                mixture = Some((lam as f32, local));
            }
        }
    }
    LayerBias {
        additive,
        tau: temperature(p) as f32,
        mixture,
    }
}

/// `f(cell, whether its key is in R(i), b)` over rows `r0..` of `cells` (row-major, `kt` keys a
/// row), R(i) read from the masks (no copy of the T×T table: the trainer builds every layer's
/// bias on every step).
#[inline(always)]
fn each_cell(
    masks: &SequenceMasks,
    (r0, kt): (usize, usize),
    cells: &mut [f32],
    f: fn(&mut f32, bool, f32),
    b: f32,
) {
    for (ii, row) in cells.chunks_mut(kt.max(1)).enumerate() {
        let rel = masks
            .relevant_row(r0 + ii)
            .iter()
            .chain(std::iter::repeat(&false));
        row.iter_mut().zip(rel).for_each(|(cell, &r)| f(cell, r, b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_a_bias_only_off_block_and_causal() {
        let masks = SequenceMasks::new(vec![0, 1, 2], vec![0, 1, 1], 3);
        let lb = layer_bias(&masks, &DialSetting::bias(0.5).params);
        let ln_half = 0.5f64.ln() as f32;
        // Row 2 (relevant block 1): key 0 is BOS (relevant), key 1 is block 1, key 2 self.
        assert_eq!(&lb.additive[6..9], &[0.0, 0.0, 0.0]);
        // Row 1: key 0 BOS relevant, key 2 invisible.
        assert_eq!(lb.additive[3], 0.0);
        assert_eq!(lb.additive[5], f32::NEG_INFINITY);
        let masks2 = SequenceMasks::new(vec![0, 2, 1], vec![0, 2, 1], 3);
        let lb2 = layer_bias(&masks2, &DialSetting::bias(0.5).params);
        assert_eq!(lb2.additive[7], ln_half);
    }

    #[test]
    fn rows_of_the_bias_are_the_rows_of_the_whole() {
        let masks = SequenceMasks::new(vec![0, 1, 2, 1, 2, 1], vec![0, 1, 2, 1, 1, 2], 3);
        for mode in [
            DialMode::Bias,
            DialMode::Temperature,
            DialMode::Positional,
            DialMode::Mixture,
        ] {
            let p = DialParams {
                mode,
                lambda: 0.7,
                ..DialParams::default()
            };
            let whole = layer_bias(&masks, &p);
            // Rows 2..5 over keys 0..5 (row 4 sees key 4; key 5 is future to all three).
            let part = layer_bias_rows(&masks, &p, 2, 3, 5);
            for ii in 0..3 {
                for j in 0..5 {
                    let (a, b) = (part.additive[ii * 5 + j], whole.additive[(2 + ii) * 6 + j]);
                    assert!(
                        a == b || (a.is_nan() && b.is_nan()),
                        "{mode:?} ({ii},{j}): {a} {b}"
                    );
                    if let (Some((_, pl)), Some((_, wl))) = (&part.mixture, &whole.mixture) {
                        assert_eq!(pl[ii * 5 + j], wl[(2 + ii) * 6 + j]);
                    }
                }
            }
            assert_eq!(part.tau, whole.tau);
        }
    }

    #[test]
    fn schedule_spreads_lambda() {
        let s = DialSetting {
            params: DialParams {
                lambda: 1.0,
                ..DialParams::default()
            },
            schedule: LayerSchedule::Power { gamma: 1.0 },
        };
        let l: Vec<f64> = s.per_layer(3).iter().map(|p| p.lambda).collect();
        assert_eq!(l, vec![0.0, 0.5, 1.0]);
        assert!(DialSetting::bias(0.0).is_identity(2));
    }
}
