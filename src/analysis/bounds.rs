//! Derived bounds (SPEC §8): the closed forms the theory panel draws next to measurements.
//!
//! These are **derived bounds**, proved in our SPEC from the shape of the method, not theorems
//! quoted from the papers; the UI must label them that way. A measurement on the wrong side of
//! one of them is a bug, so they must be computed without overflow for any finite input:
//! logistic forms are evaluated in the stable direction and degenerate sizes (no off-block
//! keys, no relevant keys) return the limit the formula tends to.
//!
//! Notation: one row with `n_visible` = N keys, `n_relevant` = n of them relevant, temperature
//! τ, logit margin m.

/// Binary entropy h₂(p) = −p log₂ p − (1 − p) log₂(1 − p), in bits; 0 outside (0, 1).
pub fn binary_entropy_bits(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return 0.0;
    }
    -p * p.log2() - (1.0 - p) * (1.0 - p).log2()
}

/// Logistic 1/(1 + e^{−x}), evaluated without overflow in either direction.
fn logistic(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// Bound 8.1 (concentration): ε ≤ (N − n)e^{−m/τ} / (n + (N − n)e^{−m/τ}).
///
/// Equality holds for two-level logits (every relevant key at one value, every off-block key
/// `m` below it). Evaluated as the logistic of ln((N − n)/n) − m/τ, so huge margins of either
/// sign do not overflow. No off-block keys gives 0; no relevant keys gives 1.
pub fn concentration_eps_bound(n_visible: usize, n_relevant: usize, margin: f64, tau: f64) -> f64 {
    if n_relevant >= n_visible {
        return 0.0;
    }
    if n_relevant == 0 {
        return 1.0;
    }
    let log_ratio = ((n_visible - n_relevant) as f64 / n_relevant as f64).ln();
    logistic(log_ratio - margin / tau)
}

/// Margin needed for a target off-block mass (8.1 inverted): m* = τ·ln((N − n)(1 − ε)/(nε)).
///
/// `eps <= 0` needs an infinite margin; `eps >= 1`, or no off-block keys, needs none
/// (`f64::NEG_INFINITY`); no relevant keys can never reach ε < 1 (`f64::INFINITY`).
pub fn margin_needed(n_visible: usize, n_relevant: usize, eps: f64, tau: f64) -> f64 {
    if eps >= 1.0 || n_relevant >= n_visible {
        return f64::NEG_INFINITY;
    }
    if eps.is_nan() || eps <= 0.0 || n_relevant == 0 {
        return f64::INFINITY;
    }
    let off = (n_visible - n_relevant) as f64;
    tau * ((off * (1.0 - eps)) / (n_relevant as f64 * eps)).ln()
}

/// Bound 8.2 (entropy) given an upper bound `eps` on the off-block mass, in bits:
/// max over ε' ≤ ε of h₂(ε') + (1 − ε')·log₂ n + ε'·log₂(N − n).
///
/// Reading of SPEC §8.2: the formula f(ε) = h₂(ε) + (1 − ε)log₂ n + ε log₂(N − n) bounds the
/// entropy of a row whose off-block mass *is* ε (group the row into "relevant" and "off-block":
/// H = h₂(ε) + (1 − ε)H_in + εH_off, and each conditional entropy is at most the log of its
/// support). When only an upper bound on ε is known (from the margin, 8.1), the bound is the
/// maximum of f over ε' ≤ ε. f rises up to ε' = (N − n)/N, where it equals log₂ N (the
/// uniform row), and falls after it, so the maximum is f(min(ε, (N − n)/N)). For every m ≥ 0
/// the concentration bound is already ≤ (N − n)/N, so this is f(ε(m)) itself and reproduces
/// the SPEC table exactly (N = 256, n = 32: 8.000, 7.365, 5.830, 5.391, 5.172, 5.030).
pub fn entropy_bound_bits(n_visible: usize, n_relevant: usize, eps: f64) -> f64 {
    if n_visible == 0 {
        return 0.0;
    }
    let n = n_relevant.min(n_visible) as f64;
    let off = n_visible as f64 - n;
    let eps = eps.clamp(0.0, 1.0).min(off / n_visible as f64);
    let in_bits = if n > 0.0 { (1.0 - eps) * n.log2() } else { 0.0 };
    let off_bits = if off > 0.0 && eps > 0.0 {
        eps * off.log2()
    } else {
        0.0
    };
    binary_entropy_bits(eps) + in_bits + off_bits
}

/// Bound 8.2 as a function of the margin: [`entropy_bound_bits`] at the ε of
/// [`concentration_eps_bound`]. Falls to log₂ n as m → ∞.
pub fn entropy_bound_at_margin_bits(
    n_visible: usize,
    n_relevant: usize,
    margin: f64,
    tau: f64,
) -> f64 {
    let eps = concentration_eps_bound(n_visible, n_relevant, margin, tau);
    entropy_bound_bits(n_visible, n_relevant, eps)
}

/// Bound 8.3 (pointer fidelity under a rule): PF_mass ≥ t / (t + (N − t)e^{−(m_T + ρ)/τ}),
/// with t targets, content margin m_T of the targets over the other keys, and rule bias ρ.
///
/// This is 1 − (8.1) with n = t and margin m_T + ρ.
pub fn pf_bound(
    n_visible: usize,
    n_targets: usize,
    content_margin: f64,
    rho: f64,
    tau: f64,
) -> f64 {
    1.0 - concentration_eps_bound(n_visible, n_targets, content_margin + rho, tau)
}

/// Rule bias that guarantees PF_mass ≥ 1 − δ (8.3 inverted):
/// ρ* = τ·ln((N − t)(1 − δ)/(tδ)) − m_T.
pub fn rho_needed(
    n_visible: usize,
    n_targets: usize,
    delta: f64,
    content_margin: f64,
    tau: f64,
) -> f64 {
    margin_needed(n_visible, n_targets, delta, tau) - content_margin
}

/// Bound 8.4 (penalty threshold): λ* = G·max_{k≠r} √n_k / w_k. Above λ* the only stationary
/// point of the block-mass model puts all mass on the relevant block `relevant_block`.
///
/// `grad_bound` is G, the bound on the task-gradient advantage (estimated online); a block
/// without a weight gets weight 1, a non-positive weight makes the threshold infinite. With no
/// competing block the threshold is 0.
pub fn penalty_threshold(
    grad_bound: f64,
    block_sizes: &[usize],
    weights: &[f64],
    relevant_block: usize,
) -> f64 {
    let worst = block_sizes
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != relevant_block)
        .map(|(k, &n_k)| {
            let w = weights.get(k).copied().unwrap_or(1.0);
            if w > 0.0 {
                (n_k as f64).sqrt() / w
            } else {
                f64::INFINITY
            }
        })
        .fold(0.0, f64::max);
    grad_bound * worst
}

/// Bound 8.5 (penalty sandwich) read as bounds on ε: Ω(w = 1) ≤ ε ≤ √n_max·Ω(w = 1).
///
/// Returns `(lower, upper)`; the upper end is capped at 1 because ε is a mass.
pub fn eps_range_from_penalty(omega_unit: f64, n_max: usize) -> (f64, f64) {
    let upper = ((n_max as f64).sqrt() * omega_unit).min(1.0);
    (omega_unit, upper)
}

/// Bound 8.6 (recruitment terminates): if every accepted move saves more than `delta_bits`
/// bits from a starting description length `dl0_bits`, at most ⌊DL₀/δ⌋ moves are accepted.
///
/// `None` when `delta_bits <= 0` (no guarantee); a non-positive DL₀ allows no move.
pub fn recruitment_max_moves(dl0_bits: f64, delta_bits: f64) -> Option<u64> {
    if delta_bits.is_nan() || delta_bits <= 0.0 {
        return None;
    }
    if dl0_bits.is_nan() || dl0_bits <= 0.0 {
        return Some(0);
    }
    // `as` saturates for values beyond u64::MAX, which is the right answer here.
    Some((dl0_bits / delta_bits).floor() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_sizes_give_limits() {
        assert_eq!(concentration_eps_bound(10, 10, 0.0, 1.0), 0.0);
        assert_eq!(concentration_eps_bound(10, 0, 5.0, 1.0), 1.0);
        assert!((concentration_eps_bound(10, 1, 1e6, 1.0)).abs() < 1e-300);
        assert!((concentration_eps_bound(10, 1, -1e6, 1.0) - 1.0).abs() < 1e-12);
        // No off-block keys: the row lives on n keys, entropy at most log₂ n.
        assert!((entropy_bound_bits(8, 8, 0.3) - 3.0).abs() < 1e-12);
        // Negative margins cap at the uniform row's log₂ N.
        assert!((entropy_bound_at_margin_bits(256, 32, -50.0, 1.0) - 8.0).abs() < 1e-9);
        assert_eq!(recruitment_max_moves(100.0, 0.0), None);
        assert_eq!(recruitment_max_moves(100.0, 3.0), Some(33));
    }
}
