//! The theory curve: measured attention against the derived bounds (SPEC §8) over λ_inf.
//!
//! For each λ on a grid, the current text is captured under the current dial mode and
//! schedule, and every row is checked against bound 8.1 (ε at its margin) and bound 8.2
//! (entropy at its margin), with N the visible keys, n = |R(i)| and the layer's temperature.
//! A measurement above its bound would be a bug, and is reported with its row. Mode B mixes
//! two softmaxes, so the margin bounds do not apply to it and are not checked there. The
//! closed-form mode-A curve ε(λ) = (1 − λ)ε₀/(1 − λε₀) is exact for layer 0, whose input does
//! not depend on the dial; it is drawn beside the measured layer-0 ε.

use serde::{Deserialize, Serialize};

use crate::analysis::bounds::{concentration_eps_bound, entropy_bound_at_margin_bits};
use crate::analysis::dial::{mode_a_off_block_mass, DialMode};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::{capture, Capture};
use crate::model::dial::{effective_tau, DialSetting};
use crate::model::transformer::ModelError;

/// One λ of the curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TheoryPoint {
    /// λ_inf (maximum over layers).
    pub lambda: f64,
    /// Mean off-block mass ε over rows, heads and layers.
    pub eps: f64,
    /// Mean ε of layer 0.
    pub eps_layer0: f64,
    /// Closed-form mode-A ε of layer 0 from the λ = 0 rows (mode A only).
    pub eps_layer0_closed_form: Option<f64>,
    /// Mean bound 8.1 on ε at each row's margin (None in mode B).
    pub eps_bound: Option<f64>,
    /// Mean attention entropy in bits.
    pub entropy_bits: f64,
    /// Mean bound 8.2 on entropy at each row's margin (None in mode B).
    pub entropy_bound_bits: Option<f64>,
    /// Rows whose measurement exceeds a bound.
    pub violations: usize,
    /// The first violating row, described.
    pub first_violation: Option<String>,
}

fn mean(sum: f64, n: usize) -> f64 {
    if n == 0 {
        0.0
    } else {
        sum / n as f64
    }
}

/// Check one capture's rows against bounds 8.1 and 8.2.
fn check_bounds(
    cap: &Capture,
    blocks: &BlockMap,
    dial: &DialSetting,
) -> (f64, f64, usize, Option<String>) {
    let masks = blocks.masks_with(&cap.ids, cap.causal);
    let taus: Vec<f64> = dial
        .per_layer(cap.num_layers)
        .iter()
        .map(effective_tau)
        .collect();
    let t = cap.len();
    let (mut eb, mut hb, mut n, mut bad) = (0.0, 0.0, 0usize, 0usize);
    let mut first = None;
    for hc in &cap.heads {
        let tau = taus.get(hc.layer).copied().unwrap_or(1.0);
        for i in 0..t {
            let n_rel = masks.relevant_row(i).iter().filter(|&&r| r).count();
            let m = hc.margin.get(i).copied().unwrap_or(f32::INFINITY) as f64;
            let e_bound = concentration_eps_bound(masks.visible_count(i), n_rel, m, tau);
            let h_bound = entropy_bound_at_margin_bits(masks.visible_count(i), n_rel, m, tau);
            let eps = hc.off_block_mass.get(i).copied().unwrap_or(0.0) as f64;
            let ent = hc.entropy_bits.get(i).copied().unwrap_or(0.0) as f64;
            eb += e_bound;
            hb += h_bound;
            n += 1;
            if eps > e_bound + 1e-4 || ent > h_bound + 1e-3 {
                bad += 1;
                if first.is_none() {
                    first = Some(format!(
                        "layer {} head {} row {i}: ε {eps:.4} (bound {e_bound:.4}), entropy {ent:.3} bits (bound {h_bound:.3})",
                        hc.layer, hc.head
                    ));
                }
            }
        }
    }
    (mean(eb, n), mean(hb, n), bad, first)
}

/// The curve over `lambdas` for one text under the mode and schedule of `dial`.
pub fn theory_curve(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
    lambdas: &[f64],
) -> Result<Vec<TheoryPoint>, ModelError> {
    let at = |lambda: f64| {
        let mut d = dial.clone();
        d.params.lambda = lambda;
        d
    };
    let base = capture(model, blocks, ids, &at(0.0))?;
    let eps0_layer0: Vec<f64> = base
        .heads
        .iter()
        .filter(|h| h.layer == 0)
        .flat_map(|h| h.off_block_mass.iter().map(|&e| e as f64))
        .collect();
    let mut out = Vec::with_capacity(lambdas.len());
    for &lambda in lambdas {
        let d = at(lambda);
        let cap = capture(model, blocks, ids, &d)?;
        let margin_bounds = d.params.mode != DialMode::Mixture;
        let (eb, hb, violations, first_violation) = if margin_bounds {
            check_bounds(&cap, blocks, &d)
        } else {
            (0.0, 0.0, 0, None)
        };
        // Layer 0's λ under the schedule (its input never depends on the dial).
        let l0 = d
            .per_layer(cap.num_layers)
            .first()
            .map(|p| p.lambda)
            .unwrap_or(lambda);
        let closed = (d.params.mode == DialMode::Bias
            && (effective_tau(&d.params) - 1.0).abs() < 1e-12)
            .then(|| {
                mean(
                    eps0_layer0
                        .iter()
                        .map(|&e| mode_a_off_block_mass(e, l0))
                        .sum(),
                    eps0_layer0.len(),
                )
            });
        out.push(TheoryPoint {
            lambda,
            eps: cap.mean_off_block_mass(None),
            eps_layer0: cap.mean_off_block_mass(Some(0)),
            eps_layer0_closed_form: closed,
            eps_bound: margin_bounds.then_some(eb),
            entropy_bits: cap.mean_entropy_bits(None),
            entropy_bound_bits: margin_bounds.then_some(hb),
            violations,
            first_violation,
        });
    }
    Ok(out)
}
