//! SPEC §11 checks 1–8, 14 and 15 at the level of single attention rows, plus the anchor
//! statistics of §5 on a hand-worked example.
//!
//! Expected numbers come from the SPEC's facts (which we re-derived by hand / with Python's
//! `math` module, as noted next to each) or from a test-side computation that does not use the
//! code under test (e.g. an independent softmax).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use localist::analysis::anchors::{
    coherence_matrix, coverage_bits, max_abs_cosine, orthonormal_vectors, pmi_bits, purity_bits,
    select_anchors, welch_bound,
};
use localist::analysis::bounds::{
    binary_entropy_bits, concentration_eps_bound, entropy_bound_at_margin_bits, entropy_bound_bits,
    eps_range_from_penalty, margin_needed, penalty_threshold, pf_bound, recruitment_max_moves,
    rho_needed,
};
use localist::analysis::dial::{
    apply_dial_row, mode_a_bias, mode_a_off_block_mass, mode_b_off_block_mass, DialMode,
    DialParams, LayerSchedule,
};
use localist::analysis::metrics::{
    block_masses, entropy_bits, logit_margin, mass_on, max_mean_causal_entropy_bits,
    off_block_mass, pointer_fidelity,
};
use localist::analysis::penalty::{group_lasso, group_lasso_grad, group_sizes, BlockWeighting};
use localist::analysis::rng::SplitMix64;
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Test-side helpers, independent of the code under test.

/// Softmax of `z / tau` in f64, written out here so the checks do not trust `apply_dial_row`.
fn softmax(z: &[f64], tau: f64) -> Vec<f32> {
    let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|&x| ((x - max) / tau).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&x| (x / s) as f32).collect()
}

fn params(mode: DialMode, lambda: f64) -> DialParams {
    DialParams {
        mode,
        lambda,
        ..DialParams::default()
    }
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
        .fold(0.0, f64::max)
}

/// A row with base off-block mass exactly 0.8: relevant keys 0..3 hold (0.1, 0.06, 0.04),
/// off-block keys hold 0.8 split unevenly. Scores are the log-probabilities, so the base
/// softmax reproduces the row.
fn eps0_row() -> (Vec<f32>, Vec<bool>) {
    let probs = [0.1, 0.06, 0.04, 0.3, 0.2, 0.1, 0.1, 0.05, 0.05];
    let scores = probs.iter().map(|&p: &f64| p.ln() as f32).collect();
    let relevant = (0..probs.len()).map(|j| j < 3).collect();
    (scores, relevant)
}

// ---------------------------------------------------------------------------------------------
// §11.1: λ = 0 reproduces the base row; λ = 1 in mode A gives ε = 0 and no NaN.

#[test]
fn lambda_zero_reproduces_base_row_in_every_mode() {
    let mut rng = SplitMix64::new(11);
    for trial in 0..50 {
        let n = 2 + rng.below(40);
        let query_pos = rng.below(n);
        let scores: Vec<f32> = (0..n).map(|_| (3.0 * rng.normal()) as f32).collect();
        // Causal visibility from the query; the query itself is always relevant (S(i)).
        let visible: Vec<bool> = (0..n).map(|j| j <= query_pos).collect();
        let relevant: Vec<bool> = (0..n)
            .map(|j| j == query_pos || (j < query_pos && rng.below(2) == 0))
            .collect();
        let vis_scores: Vec<f64> = scores
            .iter()
            .take(query_pos + 1)
            .map(|&s| f64::from(s))
            .collect();
        let mut base = softmax(&vis_scores, 1.0);
        base.resize(n, 0.0);
        for mode in DialMode::ALL {
            let row = apply_dial_row(&scores, &visible, &relevant, query_pos, &params(mode, 0.0));
            let diff = max_abs_diff(&row, &base);
            assert!(diff < 1e-6, "trial {trial} {mode:?}: diff {diff}");
        }
    }
}

#[test]
fn mode_a_at_one_masks_off_block_keys_without_nan() {
    // Off-block keys score far above the relevant ones, including huge values: the hard mask
    // must still give ε = 0 exactly and a finite row that sums to one.
    let scores = [1e4f32, -1e4, 3.0, 50.0, -2.0, f32::MAX / 4.0];
    let visible = [true; 6];
    let relevant = [false, true, true, false, false, false];
    for mode in [DialMode::Bias, DialMode::Temperature] {
        let row = apply_dial_row(&scores, &visible, &relevant, 2, &params(mode, 1.0));
        assert!(row.iter().all(|a| a.is_finite()), "{row:?}");
        assert_eq!(off_block_mass(&row, &relevant), 0.0);
        assert!((mass_on(&row, &relevant) - 1.0).abs() < 1e-6);
    }
    assert_eq!(mode_a_bias(1.0), -1e9);
    assert!(mode_a_bias(1.0).is_finite());
    // ln(1 − 0.75) = −1.386294 (Python: math.log(0.25)).
    assert!((mode_a_bias(0.75) + 1.386_294).abs() < 1e-6);
    assert_eq!(mode_a_bias(0.0), 0.0);
}

// ---------------------------------------------------------------------------------------------
// §11.2: mode A's exact ε(λ) and unchanged in-block distribution; mode B's curve.

#[test]
fn mode_a_curve_matches_spec_table_and_keeps_in_block_shape() {
    let (scores, relevant) = eps0_row();
    let visible = vec![true; scores.len()];
    // SPEC §4 facts for ε₀ = 0.8; (1 − λ)·0.8 / (1 − 0.8λ) by hand: 0.6/0.8, 0.4/0.6, 0.2/0.4,
    // 0.08/0.28.
    let table = [(0.25, 0.75), (0.5, 0.6667), (0.75, 0.5), (0.9, 0.2857)];
    for (lambda, eps_want) in table {
        let row = apply_dial_row(
            &scores,
            &visible,
            &relevant,
            0,
            &params(DialMode::Bias, lambda),
        );
        let eps = off_block_mass(&row, &relevant);
        assert!((eps - eps_want).abs() < 1e-4, "λ={lambda}: ε={eps}");
        assert!((mode_a_off_block_mass(0.8, lambda) - eps_want).abs() < 1e-4);
        // In-block conditional distribution: (0.1, 0.06, 0.04) / 0.2 = (0.5, 0.3, 0.2).
        let rel_mass = mass_on(&row, &relevant);
        for (j, want) in [0.5, 0.3, 0.2].into_iter().enumerate() {
            let got = f64::from(row[j]) / rel_mass;
            assert!((got - want).abs() < 1e-5, "λ={lambda} key {j}: {got}");
        }
    }
    assert_eq!(mode_a_off_block_mass(0.8, 1.0), 0.0);
}

#[test]
fn mode_b_curve_is_linear() {
    let (scores, relevant) = eps0_row();
    let visible = vec![true; scores.len()];
    for lambda in [0.0, 0.25, 0.5, 0.75, 0.9, 1.0] {
        let row = apply_dial_row(
            &scores,
            &visible,
            &relevant,
            0,
            &params(DialMode::Mixture, lambda),
        );
        let eps = off_block_mass(&row, &relevant);
        // (1 − λ)·ε₀ with ε₀ = 0.8.
        let want = (1.0 - lambda) * 0.8;
        assert!((eps - want).abs() < 1e-5, "λ={lambda}: ε={eps}");
        assert!((mode_b_off_block_mass(0.8, lambda) - want).abs() < 1e-12);
        assert!((row.iter().map(|&a| f64::from(a)).sum::<f64>() - 1.0).abs() < 1e-5);
    }
}

// ---------------------------------------------------------------------------------------------
// §11.3: ε non-increasing in λ; entropy can rise.

/// Scores, plus a relevant mask with at least one relevant key.
fn scores_and_relevant() -> impl Strategy<Value = (Vec<f32>, Vec<bool>)> {
    (2usize..40).prop_flat_map(|n| {
        (
            proptest::collection::vec(-8.0f32..8.0, n),
            proptest::collection::vec(any::<bool>(), n),
            0..n,
        )
            .prop_map(|(s, mut r, forced)| {
                r[forced] = true;
                (s, r)
            })
    })
}

proptest! {
    // Mode D is not included: its falling temperature sharpens the base scores too, so an
    // off-block key that already wins can gain mass at small λ.
    #[test]
    fn eps_non_increasing_in_lambda((scores, relevant) in scores_and_relevant()) {
        let visible = vec![true; scores.len()];
        for mode in [DialMode::Bias, DialMode::Mixture] {
            let mut previous = f64::INFINITY;
            for step in 0..=20 {
                let lambda = f64::from(step) / 20.0;
                let row = apply_dial_row(&scores, &visible, &relevant, 0, &params(mode, lambda));
                let eps = off_block_mass(&row, &relevant);
                prop_assert!(eps <= previous + 1e-7, "{mode:?} λ={lambda}: {eps} > {previous}");
                previous = eps;
            }
            prop_assert_eq!(previous, 0.0);
        }
    }
}

#[test]
fn entropy_can_rise_with_lambda() {
    // Two relevant keys at 0.05 each, one off-block key at 0.9:
    // H = 2·0.05·log₂20 + 0.9·log₂(1/0.9) = 0.569 bits. Pulling mass into the relevant block
    // spreads it over two equal keys, so entropy rises (to exactly 1 bit at λ = 1).
    let scores = [0.05f64.ln() as f32, 0.05f64.ln() as f32, 0.9f64.ln() as f32];
    let visible = [true; 3];
    let relevant = [true, true, false];
    let h = |lambda| {
        entropy_bits(&apply_dial_row(
            &scores,
            &visible,
            &relevant,
            0,
            &params(DialMode::Bias, lambda),
        ))
    };
    let (h0, h_mid, h1) = (h(0.0), h(0.9), h(1.0));
    assert!((h0 - 0.569).abs() < 1e-3, "{h0}");
    assert!(h_mid > h0 && h1 > h0, "{h0} {h_mid} {h1}");
    assert!((h1 - 1.0).abs() < 1e-6);
}

// ---------------------------------------------------------------------------------------------
// §11.4 and §11.5: bounds 8.1 and 8.2.

/// A row with N keys, the first n relevant, and an imposed logit margin of at least `m`:
/// off-block logits uniform in [−3, 3], relevant logits max_off + m + uniform[0, 3].
fn margin_row(rng: &mut SplitMix64, n_total: usize, n_rel: usize, m: f64) -> Vec<f64> {
    let off: Vec<f64> = (n_rel..n_total)
        .map(|_| 6.0 * rng.next_f64() - 3.0)
        .collect();
    let max_off = off.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut z: Vec<f64> = (0..n_rel)
        .map(|_| max_off + m + 3.0 * rng.next_f64())
        .collect();
    z.extend(off);
    z
}

proptest! {
    #[test]
    fn bounds_8_1_and_8_2_hold_on_random_rows(
        n_total in 2usize..80,
        rel_frac in 0.0f64..1.0,
        m in 0.0f64..8.0,
        tau in 0.3f64..3.0,
        seed in any::<u64>(),
    ) {
        let n_rel = 1 + ((n_total - 1) as f64 * rel_frac) as usize % (n_total - 1);
        let mut rng = SplitMix64::new(seed);
        let z = margin_row(&mut rng, n_total, n_rel, m);
        let row = softmax(&z, tau);
        let relevant: Vec<bool> = (0..n_total).map(|j| j < n_rel).collect();
        let logits: Vec<f32> = z.iter().map(|&x| x as f32).collect();
        prop_assert!(logit_margin(&logits, &relevant, &vec![true; n_total]) >= m - 1e-4);
        let eps = off_block_mass(&row, &relevant);
        let eps_bound = concentration_eps_bound(n_total, n_rel, m, tau);
        prop_assert!(eps <= eps_bound + 1e-6, "ε {eps} > bound {eps_bound}");
        let h = entropy_bits(&row);
        let h_bound = entropy_bound_at_margin_bits(n_total, n_rel, m, tau);
        prop_assert!(h <= h_bound + 1e-5, "H {h} > bound {h_bound}");
        prop_assert!(h <= entropy_bound_bits(n_total, n_rel, eps) + 1e-5);
    }
}

#[test]
fn bound_8_1_is_tight_on_two_level_rows() {
    for (n_total, n_rel, m, tau) in [(256, 32, 3.0, 1.0), (10, 1, 0.5, 2.0), (64, 63, 7.0, 0.5)] {
        let z: Vec<f64> = (0..n_total)
            .map(|j| if j < n_rel { m } else { 0.0 })
            .collect();
        let relevant: Vec<bool> = (0..n_total).map(|j| j < n_rel).collect();
        let eps = off_block_mass(&softmax(&z, tau), &relevant);
        let bound = concentration_eps_bound(n_total, n_rel, m, tau);
        assert!((eps - bound).abs() < 1e-6, "{eps} vs {bound}");
    }
}

#[test]
fn spec_table_for_bounds_8_1_and_8_2() {
    // SPEC §8 facts, τ = 1, N = 256, n = 32 (re-derived with Python's math module:
    // ε = 224e^{−m}/(32 + 224e^{−m}); H = h₂(ε) + (1 − ε)·5 + ε·log₂224).
    let table = [
        // (m, ε, half a unit in the last printed digit of ε, H)
        (0.0, 0.875, 5e-4, 8.000),
        (2.0, 0.4865, 5e-5, 7.365),
        (4.0, 0.1136, 5e-5, 5.830),
        (5.0, 0.04504, 5e-6, 5.391),
        (6.0, 0.01706, 5e-6, 5.172),
        (8.0, 0.00234, 5e-6, 5.030),
    ];
    for (m, eps_want, eps_tol, h_want) in table {
        let eps = concentration_eps_bound(256, 32, m, 1.0);
        assert!((eps - eps_want).abs() <= eps_tol, "m={m}: ε {eps}");
        let h = entropy_bound_at_margin_bits(256, 32, m, 1.0);
        assert!((h - h_want).abs() < 5e-4, "m={m}: H {h}");
    }
    // m* for ε = 0.01: ln(224·0.99/0.32) = 6.541.
    assert!((margin_needed(256, 32, 0.01, 1.0) - 6.541).abs() < 5e-4);
    // As m → ∞ the entropy bound falls to log₂ 32 = 5.
    assert!((entropy_bound_at_margin_bits(256, 32, 60.0, 1.0) - 5.0).abs() < 1e-9);
    // h₂(0.5) = 1, h₂(0.11) = 0.4999 (standard table value).
    assert!((binary_entropy_bits(0.5) - 1.0).abs() < 1e-12);
    assert!((binary_entropy_bits(0.11) - 0.4999).abs() < 1e-4);
}

// ---------------------------------------------------------------------------------------------
// §11.6: bound 8.3 and ρ*.

#[test]
fn rule_examples_for_bound_8_3() {
    // ρ* = ln(127·0.95/0.05) + 2 = 9.789 (SPEC §8 fact; Python: 9.78863).
    let rho = rho_needed(128, 1, 0.05, -2.0, 1.0);
    assert!((rho - 9.789).abs() < 5e-4, "{rho}");
    // Two-level row at ρ*: target at m_T + ρ*, the other 127 keys at 0.
    let mut z = vec![0.0; 128];
    z[0] = -2.0 + rho;
    let targets: Vec<bool> = (0..128).map(|j| j == 0).collect();
    let pf = pointer_fidelity(&softmax(&z, 1.0), &targets);
    assert!((pf.mass - 0.95).abs() < 5e-5, "{}", pf.mass);
    assert!(pf.top1);
    // Flat logits, ρ = 5: e⁵/(e⁵ + 127) = 0.5389 (SPEC §8 fact).
    let mut z = vec![0.0; 128];
    z[0] = 5.0;
    let pf = pointer_fidelity(&softmax(&z, 1.0), &targets);
    assert!((pf.mass - 0.5389).abs() < 5e-5, "{}", pf.mass);
    assert!((pf_bound(128, 1, 0.0, 5.0, 1.0) - 0.5389).abs() < 5e-5);
}

proptest! {
    #[test]
    fn pf_bound_holds_on_random_rows(
        n_total in 2usize..80,
        t_frac in 0.0f64..1.0,
        m_t in -4.0f64..4.0,
        rho in 0.0f64..10.0,
        tau in 0.3f64..3.0,
        seed in any::<u64>(),
    ) {
        let t = 1 + ((n_total - 1) as f64 * t_frac) as usize % (n_total - 1);
        let mut rng = SplitMix64::new(seed);
        // Content logits with margin ≥ m_T between targets and the rest, then the rule bias.
        let mut z = margin_row(&mut rng, n_total, t, m_t);
        z.iter_mut().take(t).for_each(|x| *x += rho);
        let targets: Vec<bool> = (0..n_total).map(|j| j < t).collect();
        let pf = pointer_fidelity(&softmax(&z, tau), &targets);
        let bound = pf_bound(n_total, t, m_t, rho, tau);
        prop_assert!(pf.mass >= bound - 1e-6, "PF {} < bound {bound}", pf.mass);
    }
}

// ---------------------------------------------------------------------------------------------
// §11.7: group-norm gradient by central finite differences.

#[test]
fn group_lasso_gradient_matches_finite_differences() {
    let mut rng = SplitMix64::new(3);
    for _ in 0..20 {
        let n = 3 + rng.below(30);
        let row: Vec<f32> = (0..n).map(|_| 0.02 + rng.next_f64() as f32).collect();
        let groups: Vec<Option<usize>> = (0..n)
            .map(|_| {
                let g = rng.below(5);
                (g < 4).then_some(g)
            })
            .collect();
        let weights = BlockWeighting::SqrtSize.weights(&group_sizes(&groups));
        for w in [&[][..], &weights[..]] {
            let grad = group_lasso_grad(&row, &groups, w);
            let h = 1e-3f32;
            for j in 0..n {
                let mut plus = row.clone();
                plus[j] += h;
                let mut minus = row.clone();
                minus[j] -= h;
                let actual_step = f64::from(plus[j]) - f64::from(minus[j]);
                let fd = (group_lasso(&plus, &groups, w) - group_lasso(&minus, &groups, w))
                    / actual_step;
                assert!(
                    (fd - grad[j]).abs() < 1e-3,
                    "key {j}: fd {fd} vs {}",
                    grad[j]
                );
            }
        }
        // Unit weights: the gradient is a_j/‖a_B‖₂, computed here directly.
        let grad = group_lasso_grad(&row, &groups, &[]);
        for (j, g) in groups.iter().enumerate() {
            let want = match g {
                None => 0.0,
                Some(k) => {
                    let norm: f64 = row
                        .iter()
                        .zip(&groups)
                        .filter(|(_, gg)| **gg == Some(*k))
                        .map(|(&a, _)| f64::from(a).powi(2))
                        .sum::<f64>()
                        .sqrt();
                    f64::from(row[j]) / norm
                }
            };
            assert!((grad[j] - want).abs() < 1e-9);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// §11.8: penalty sandwich.

proptest! {
    #[test]
    fn penalty_sandwich_on_random_rows(
        scores in proptest::collection::vec(-6.0f64..6.0, 2..64),
        blocks_seed in any::<u64>(),
        num_blocks in 2usize..9,
    ) {
        let mut rng = SplitMix64::new(blocks_seed);
        let n = scores.len();
        let key_blocks: Vec<usize> = (0..n).map(|_| rng.below(num_blocks)).collect();
        let r = key_blocks[0];
        // Key 0 is "self" and in R(i); one more random key joins S(i) whatever its block.
        let extra = rng.below(n);
        let relevant: Vec<bool> =
            (0..n).map(|j| key_blocks[j] == r || j == extra).collect();
        let groups: Vec<Option<usize>> = (0..n)
            .map(|j| (!relevant[j]).then_some(key_blocks[j]))
            .collect();
        let row = softmax(&scores, 1.0);
        let omega = group_lasso(&row, &groups, &[]);
        let eps = off_block_mass(&row, &relevant);
        let n_max = group_sizes(&groups).into_iter().max().unwrap_or(0);
        prop_assert!(omega <= eps + 1e-6, "Ω {omega} > ε {eps}");
        prop_assert!(eps <= (n_max as f64).sqrt() * omega + 1e-6, "ε {eps}, Ω {omega}, n {n_max}");
        let (lo, hi) = eps_range_from_penalty(omega, n_max);
        prop_assert!(lo <= eps + 1e-6 && eps <= hi + 1e-6);
    }
}

#[test]
fn penalty_on_uniform_row() {
    // N = 256, K = 8 blocks of 32, relevant block 0. Each off block: ‖a_B‖₂ = √32/256, so
    // Ω(w = 1) = 7·√32/256 = 0.15468 and with w = √32, Ω = 7·32/256 = 0.875 = ε (SPEC §8).
    let row = vec![1.0f32 / 256.0; 256];
    let key_blocks: Vec<usize> = (0..256).map(|j| j / 32).collect();
    let groups: Vec<Option<usize>> = key_blocks.iter().map(|&k| (k != 0).then_some(k)).collect();
    let relevant: Vec<bool> = key_blocks.iter().map(|&k| k == 0).collect();
    assert!((group_lasso(&row, &groups, &[]) - 0.15468).abs() < 5e-6);
    let sizes = group_sizes(&groups);
    assert_eq!(sizes, vec![0, 32, 32, 32, 32, 32, 32, 32]);
    let w = BlockWeighting::SqrtSize.weights(&sizes);
    let omega = group_lasso(&row, &groups, &w);
    assert!((omega - 0.875).abs() < 1e-6);
    assert!((off_block_mass(&row, &relevant) - 0.875).abs() < 1e-6);
    let masses = block_masses(&row, &key_blocks, 8);
    assert!(masses.iter().all(|&p| (p - 0.125).abs() < 1e-6));
}

#[test]
fn penalty_threshold_and_recruitment_bound_by_hand() {
    // λ* = G·max_{k≠r} √n_k/w_k: G = 0.5, blocks (32, 16, 64) with block 2 relevant → 0.5·√32.
    let t = penalty_threshold(0.5, &[32, 16, 64], &[1.0, 1.0, 1.0], 2);
    assert!((t - 0.5 * 32f64.sqrt()).abs() < 1e-12);
    // With w_k = √n_k every ratio is 1 → λ* = G.
    let w = BlockWeighting::SqrtSize.weights(&[32, 16, 64]);
    assert!((penalty_threshold(0.5, &[32, 16, 64], &w, 2) - 0.5).abs() < 1e-12);
    // ⌊1000/3⌋ = 333.
    assert_eq!(recruitment_max_moves(1000.0, 3.0), Some(333));
}

// ---------------------------------------------------------------------------------------------
// §11.14: schedule, anchor orthonormality, Welch bound.

#[test]
fn power_schedule_values() {
    let l = LayerSchedule::Power { gamma: 5.0 }.layer_lambdas(1.0, 12);
    assert_eq!(l.len(), 12);
    // (6/11)^5 = 0.04828 (SPEC §4 fact).
    assert!((l[6] - 0.0483).abs() < 5e-5, "{}", l[6]);
    assert_eq!(l[0], 0.0);
    assert_eq!(l[11], 1.0);
    assert!(l.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(
        LayerSchedule::Power { gamma: 3.0 }.layer_lambdas(0.7, 1),
        vec![0.7]
    );
    assert_eq!(LayerSchedule::Uniform.layer_lambdas(0.4, 3), vec![0.4; 3]);
    assert_eq!(
        LayerSchedule::PerLayer(vec![0.1, 2.0]).layer_lambdas(0.5, 3),
        vec![0.1, 1.0, 0.5]
    );
}

#[test]
fn anchor_keys_orthonormal_and_welch_bound() {
    let mut rng = SplitMix64::new(5);
    for (k, d) in [(8, 32), (32, 32), (1, 4)] {
        let v = orthonormal_vectors(k, d, &mut rng);
        assert_eq!(v.len(), k);
        assert!(
            max_abs_cosine(&v) < 1e-5,
            "K={k} d={d}: {}",
            max_abs_cosine(&v)
        );
        let c = coherence_matrix(&v);
        for (i, row) in c.iter().enumerate() {
            assert!((row[i] - 1.0).abs() < 1e-6);
        }
        for x in &v {
            let norm: f64 = x.iter().map(|&a| f64::from(a).powi(2)).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-6);
        }
    }
    // √((64 − 32)/(32·63)) = 0.12599 (SPEC §5 fact: 0.126).
    assert!((welch_bound(64, 32) - 0.126).abs() < 5e-4);
    let v = orthonormal_vectors(64, 32, &mut rng);
    assert!(max_abs_cosine(&v) >= welch_bound(64, 32));
    // Hand check of the cosine: (1,0) and (1,1) meet at 45°.
    let pair = vec![vec![1.0f32, 0.0], vec![1.0, 1.0]];
    assert!((max_abs_cosine(&pair) - 0.5f64.sqrt()).abs() < 1e-7);
}

// ---------------------------------------------------------------------------------------------
// §11.15: mean causal entropy ceiling.

/// Mean entropy of causal rows built from `scores(i, j)`.
fn mean_causal_entropy(t: usize, mut scores: impl FnMut(usize, usize) -> f64) -> f64 {
    let total: f64 = (0..t)
        .map(|i| {
            let z: Vec<f64> = (0..=i).map(|j| scores(i, j)).collect();
            entropy_bits(&softmax(&z, 1.0))
        })
        .sum();
    total / t as f64
}

#[test]
fn causal_entropy_ceiling_values() {
    // (1/T)·Σ log₂ i: T = 256 → 6.578, T = 512 → 7.569 (Python; SPEC §7 gives 6.58 and 7.57).
    assert!((max_mean_causal_entropy_bits(256) - 6.58).abs() < 0.01);
    assert!((max_mean_causal_entropy_bits(512) - 7.57).abs() < 0.01);
    assert_eq!(max_mean_causal_entropy_bits(1), 0.0);
    let uniform = mean_causal_entropy(256, |_, _| 0.0);
    assert!(
        (uniform - max_mean_causal_entropy_bits(256)).abs() < 1e-4,
        "{uniform}"
    );
}

proptest! {
    #[test]
    fn random_causal_rows_never_exceed_the_ceiling(t in 1usize..96, seed in any::<u64>()) {
        let mut rng = SplitMix64::new(seed);
        let h = mean_causal_entropy(t, |_, _| 2.0 * rng.normal());
        prop_assert!(h <= max_mean_causal_entropy_bits(t) + 1e-5);
    }
}

// ---------------------------------------------------------------------------------------------
// §5: anchor statistics on a hand-worked example.

/// Two blocks. Token 0 always block 0 (10×), token 1 always block 1 (10×), token 2 split 5/5,
/// token 3 always block 0 but seen only twice. Block totals 17 and 15, 32 in all.
fn anchor_counts() -> Vec<Vec<u64>> {
    vec![vec![10, 0], vec![0, 10], vec![5, 5], vec![2, 0]]
}

#[test]
fn anchor_purity_pmi_and_selection() {
    let c = anchor_counts();
    assert_eq!(purity_bits(&c[0]), 0.0);
    assert!((purity_bits(&c[2]) - 1.0).abs() < 1e-12);
    // PMI = log₂ p(k|w)/p(k): log₂(32/17) = 0.91254, log₂(32/15) = 1.09311,
    // log₂(0.5·32/17) = −0.08746 (Python).
    assert!((pmi_bits(&c, 0, 0) - 0.91254).abs() < 1e-5);
    assert!((pmi_bits(&c, 1, 1) - 1.09311).abs() < 1e-5);
    assert!((pmi_bits(&c, 2, 0) + 0.08746).abs() < 1e-5);
    assert_eq!(pmi_bits(&c, 0, 1), f64::NEG_INFINITY);

    // c_min = 3 drops token 3, purity drops token 2.
    let a = select_anchors(&c, 3, 0.2, 5);
    let tokens: Vec<Vec<usize>> = a
        .iter()
        .map(|l| l.iter().map(|x| x.token).collect())
        .collect();
    assert_eq!(tokens, vec![vec![0], vec![1]]);
    assert_eq!(a[0][0].count, 10);
    // c_min = 2 admits token 3 with the same PMI as token 0; the higher count ranks first, and
    // a_max = 1 keeps only it.
    let a = select_anchors(&c, 2, 0.2, 2);
    assert_eq!(a[0].iter().map(|x| x.token).collect::<Vec<_>>(), vec![0, 3]);
    let a = select_anchors(&c, 2, 0.2, 1);
    assert_eq!(a[0].iter().map(|x| x.token).collect::<Vec<_>>(), vec![0]);
}

#[test]
fn anchor_coverage_by_hand() {
    let c = anchor_counts();
    let a = select_anchors(&c, 3, 0.2, 5);
    // A ∈ {token 0, token 1, none}; "none" pools tokens 2 and 3: counts (7, 5).
    // I(B; A) = H(B) − H(B|A) = h₂(17/32) − (12/32)·h₂(7/12) = 0.99718 − 0.36745 = 0.62973
    // (Python).
    let cov = coverage_bits(&c, &a);
    assert!((cov - 0.62973).abs() < 1e-5, "{cov}");
    // No anchors → A is always "none" and carries no information.
    assert!(coverage_bits(&c, &[Vec::new(), Vec::new()]).abs() < 1e-12);
}
