//! The locality dial λ at inference (SPEC §4.2–4.3): its four modes, the per-layer schedule,
//! the closed-form ε(λ) curves and a pure reference implementation on one row.
//!
//! The model applies the dial on tensors; this file is the slice-level reference it is
//! checked against, and the source of the curves the theory panel draws. Keeping both the
//! bias formulas and the reference row here means the numbers in the UI and the tests come from
//! one place.
//!
//! The hard mask at λ = 1 is a large finite bias ([`HARD_MASK_BIAS`]) rather than −∞ for the
//! model's tensors: with the maximum subtracted before `exp` it still gives exact zeros, and a
//! row whose keys are all masked cannot turn into `∞ − ∞ = NaN`. The reference row here goes
//! one step further and drops masked keys from the softmax, so it is exact for any scores.

/// The bias standing in for −∞ where the dial masks a key completely (mode A/D at λ = 1).
pub const HARD_MASK_BIAS: f64 = -1e9;

/// Smallest temperature the reference row will divide by; guards against τ ≤ 0 in settings.
pub const MIN_TEMPERATURE: f64 = 1e-6;

/// How the inference dial acts on attention (SPEC §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DialMode {
    /// Mode A (default): bias ln(1 − λ) on off-block keys; a hard mask at λ = 1.
    Bias,
    /// Mode B: mixture (1 − λ)·A₀ + λ·A_loc of the base row and the row restricted to R(i).
    Mixture,
    /// Mode C: positional bias −λ|i − j|/σ, for comparison with fixed-window locality.
    Positional,
    /// Mode D: mode A plus a temperature falling from τ₀ to τ_min as λ goes to 1.
    Temperature,
}

impl DialMode {
    /// Every mode, in the order A, B, C, D (for menus and sweeps).
    pub const ALL: [DialMode; 4] = [
        DialMode::Bias,
        DialMode::Mixture,
        DialMode::Positional,
        DialMode::Temperature,
    ];

    /// Short label for the UI, e.g. `"A: bias"`.
    pub fn label(self) -> &'static str {
        match self {
            DialMode::Bias => "A: bias",
            DialMode::Mixture => "B: mixture",
            DialMode::Positional => "C: positional",
            DialMode::Temperature => "D: temperature",
        }
    }
}

/// Settings of the inference dial.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DialParams {
    /// Which mode the dial acts through.
    pub mode: DialMode,
    /// λ ∈ [0, 1]: 0 fully distributed (the base model), 1 fully localist.
    pub lambda: f64,
    /// τ₀: the base softmax temperature (1 for an unmodified model).
    pub tau: f64,
    /// τ_min: the temperature mode D reaches at λ = 1.
    pub tau_min: f64,
    /// σ: the distance scale of mode C, in key positions.
    pub sigma: f64,
}

impl Default for DialParams {
    fn default() -> Self {
        Self {
            mode: DialMode::Bias,
            lambda: 0.0,
            tau: 1.0,
            tau_min: 0.25,
            sigma: 4.0,
        }
    }
}

/// How λ is spread over layers (SPEC §4.3).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LayerSchedule {
    /// Every layer gets λ_max.
    #[default]
    Uniform,
    /// λ_ℓ = λ_max·(ℓ/(L − 1))^γ: large γ makes only late layers localist.
    Power {
        /// The exponent γ (1, 3 and 5 are offered).
        gamma: f64,
    },
    /// One slider per layer: the values are the layers' λ themselves (λ_max is not applied);
    /// layers without a value get λ_max.
    PerLayer(Vec<f64>),
}

impl LayerSchedule {
    /// λ for each of `num_layers` layers, each clamped to [0, 1] (NaN reads as 0).
    ///
    /// With one layer, `Power` gives λ_max (the last layer is always fully dialled).
    pub fn layer_lambdas(&self, lambda_max: f64, num_layers: usize) -> Vec<f64> {
        let lambdas: Vec<f64> = match self {
            LayerSchedule::Uniform => vec![lambda_max; num_layers],
            LayerSchedule::Power { gamma } => {
                let last = num_layers.saturating_sub(1);
                (0..num_layers)
                    .map(|l| {
                        if last == 0 {
                            lambda_max
                        } else {
                            lambda_max * (l as f64 / last as f64).powf(*gamma)
                        }
                    })
                    .collect()
            }
            LayerSchedule::PerLayer(values) => (0..num_layers)
                .map(|l| values.get(l).copied().unwrap_or(lambda_max))
                .collect(),
        };
        lambdas.into_iter().map(clamp_unit).collect()
    }
}

/// Clamp to [0, 1], reading NaN as 0.
fn clamp_unit(x: f64) -> f64 {
    if x.is_nan() {
        0.0
    } else {
        x.clamp(0.0, 1.0)
    }
}

/// Mode A's bias on off-block keys: ln(1 − λ), 0 at λ ≤ 0 and [`HARD_MASK_BIAS`] at λ ≥ 1.
pub fn mode_a_bias(lambda: f64) -> f64 {
    let lambda = clamp_unit(lambda);
    if lambda >= 1.0 {
        HARD_MASK_BIAS
    } else {
        (1.0 - lambda).ln().max(HARD_MASK_BIAS)
    }
}

/// The softmax temperature the dial uses: τ(λ) = τ₀(1 − λ) + τ_min·λ in mode D, τ₀ otherwise.
pub fn temperature(params: &DialParams) -> f64 {
    match params.mode {
        DialMode::Temperature => {
            let lambda = clamp_unit(params.lambda);
            params.tau * (1.0 - lambda) + params.tau_min * lambda
        }
        DialMode::Bias | DialMode::Mixture | DialMode::Positional => params.tau,
    }
}

/// Mode A's exact off-block mass: ε(λ) = (1 − λ)ε₀ / (1 − λε₀) for a row with base mass ε₀.
///
/// Off-block weights are scaled by (1 − λ) and the row renormalised; λ ≥ 1 gives 0.
pub fn mode_a_off_block_mass(eps0: f64, lambda: f64) -> f64 {
    let lambda = clamp_unit(lambda);
    let eps0 = eps0.clamp(0.0, 1.0);
    let denom = 1.0 - lambda * eps0;
    if lambda >= 1.0 || denom <= 0.0 {
        return 0.0;
    }
    (1.0 - lambda) * eps0 / denom
}

/// Mode B's exact off-block mass: ε(λ) = (1 − λ)ε₀ (A_loc has none).
pub fn mode_b_off_block_mass(eps0: f64, lambda: f64) -> f64 {
    (1.0 - clamp_unit(lambda)) * eps0.clamp(0.0, 1.0)
}

/// Softmax of `z` over the keys where `keep` is true, divided by `tau`; other keys get 0.
/// All-false gives all zeros.
fn masked_softmax(z: &[f64], keep: &[bool], tau: f64) -> Vec<f64> {
    let max = z
        .iter()
        .zip(keep)
        .filter(|&(_, &k)| k)
        .map(|(&x, _)| x)
        .fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        // `f64::max` skips NaN: a row of NaN scores stays NaN (an overflow, not "nothing
        // visible"), so that the checks downstream refuse it.
        let nan = z.iter().zip(keep).any(|(x, &k)| k && x.is_nan());
        return vec![if nan { f64::NAN } else { 0.0 }; z.len()];
    }
    let exps: Vec<f64> = z
        .iter()
        .zip(keep)
        .map(|(&x, &k)| if k { ((x - max) / tau).exp() } else { 0.0 })
        .collect();
    let total: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

/// The attention row the dial produces from raw scores s (SPEC §4.2), as a reference.
///
/// `visible[j]` says key j can be attended (invisible keys get weight 0); `relevant` marks
/// R(i) and is intersected with `visible`; `query_pos` is i (used by mode C). All softmaxes
/// divide by the dial's [`temperature`] and are computed in `f64` with the maximum subtracted.
/// If no visible key is relevant, modes A, B and D leave the base row unchanged (there is no
/// block to pull attention into); with no visible key at all the row is all zeros.
pub fn apply_dial_row(
    scores: &[f32],
    visible: &[bool],
    relevant: &[bool],
    query_pos: usize,
    params: &DialParams,
) -> Vec<f32> {
    let n = scores.len();
    let vis: Vec<bool> = (0..n)
        .map(|j| visible.get(j).copied().unwrap_or(false))
        .collect();
    let rel: Vec<bool> = (0..n)
        .map(|j| vis.get(j).copied().unwrap_or(false) && relevant.get(j).copied().unwrap_or(false))
        .collect();
    let any_relevant = rel.iter().any(|&r| r);
    let tau = temperature(params).max(MIN_TEMPERATURE);
    let lambda = clamp_unit(params.lambda);
    let s: Vec<f64> = scores.iter().map(|&x| f64::from(x)).collect();
    let row = match params.mode {
        DialMode::Bias | DialMode::Temperature => {
            if !any_relevant {
                masked_softmax(&s, &vis, tau)
            } else if lambda >= 1.0 {
                // The hard mask proper: off-block keys leave the softmax, so even scores that
                // dwarf HARD_MASK_BIAS cannot leak through.
                masked_softmax(&s, &rel, tau)
            } else {
                let bias = mode_a_bias(lambda);
                let z: Vec<f64> = s
                    .iter()
                    .zip(&rel)
                    .map(|(&x, &r)| if r { x } else { x + bias })
                    .collect();
                masked_softmax(&z, &vis, tau)
            }
        }
        DialMode::Mixture => {
            let base = masked_softmax(&s, &vis, tau);
            if any_relevant {
                let local = masked_softmax(&s, &rel, tau);
                base.iter()
                    .zip(&local)
                    .map(|(&b, &l)| (1.0 - lambda) * b + lambda * l)
                    .collect()
            } else {
                base
            }
        }
        DialMode::Positional => {
            let sigma = params.sigma.max(MIN_TEMPERATURE);
            let z: Vec<f64> = s
                .iter()
                .enumerate()
                .map(|(j, &x)| x - lambda * (query_pos.abs_diff(j) as f64) / sigma)
                .collect();
            masked_softmax(&z, &vis, tau)
        }
    };
    row.into_iter().map(|a| a as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_defaults() {
        let labels: Vec<&str> = DialMode::ALL.iter().map(|m| m.label()).collect();
        assert_eq!(
            labels,
            ["A: bias", "B: mixture", "C: positional", "D: temperature"]
        );
        let p = DialParams::default();
        assert_eq!((p.mode, p.lambda, p.tau), (DialMode::Bias, 0.0, 1.0));
        assert_eq!((p.tau_min, p.sigma), (0.25, 4.0));
        // Mode D halfway: 1·0.5 + 0.25·0.5 = 0.625.
        let d = DialParams {
            mode: DialMode::Temperature,
            lambda: 0.5,
            ..DialParams::default()
        };
        assert!((temperature(&d) - 0.625).abs() < 1e-12);
    }

    #[test]
    fn mode_c_prefers_near_keys() {
        // Equal scores, query at 3: weights fall with distance from 3.
        let p = DialParams {
            mode: DialMode::Positional,
            lambda: 1.0,
            ..DialParams::default()
        };
        let row = apply_dial_row(&[0.0; 4], &[true; 4], &[false; 4], 3, &p);
        assert!(row.windows(2).all(|w| w.first() < w.get(1)), "{row:?}");
        // Ratio of neighbours is e^{−1/σ} = e^{−0.25}.
        let ratio = f64::from(row.get(2).copied().unwrap_or(0.0))
            / f64::from(row.get(3).copied().unwrap_or(1.0));
        assert!((ratio - (-0.25f64).exp()).abs() < 1e-6);
    }
}
