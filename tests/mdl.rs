//! SPEC §11 items 11 and 13 (the arithmetic): description length in bits, the acceptance test,
//! the termination bound, and re-routing that never increases DL_total.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use localist::analysis::mdl::{
    block_header_bits, decide, dl_total, map_bits, max_accepted_moves, parameter_bits, reroute,
    route, ModelBits, PoolCosts, Verdict,
};
use localist::analysis::rng::SplitMix64;
use proptest::prelude::*;

#[test]
fn the_spec_facts() {
    // n = 10^6 tokens, p_new = 4096 parameters: 40,819.9 bits of model cost.
    let bits = parameter_bits(4096, 1_000_000);
    assert!((bits - 40_819.9).abs() < 0.05, "{bits}");
    let model = ModelBits {
        parameter_bits: bits,
        header_bits: 0.0,
        map_bits: 0.0,
    };
    // Saving 0.05 bits/token over 10^6 tokens (50,000 bits) is accepted; 0.03 is rejected.
    let n = 1_000_000.0;
    let base = 2.0 * n;
    let yes = decide("save 0.05", base, base - 0.05 * n, model, 1.0, 0.0);
    assert_eq!(yes.verdict, Verdict::Accepted);
    assert!((yes.delta_dl - (-50_000.0 + bits)).abs() < 1e-6);
    let no = decide("save 0.03", base, base - 0.03 * n, model, 1.0, 0.0);
    assert_eq!(no.verdict, Verdict::Rejected);
    // The header: log₂ K_max + 32; map entries: log₂ V + log₂ K_max each.
    assert_eq!(block_header_bits(64), 38.0);
    assert_eq!(map_bits(3, 1024, 64), 3.0 * 16.0);
    // A margin δ: the same saving is rejected when it does not beat δ.
    let tight = decide(
        "save 0.05, δ = 10k",
        base,
        base - 0.05 * n,
        model,
        1.0,
        10_000.0,
    );
    assert_eq!(tight.verdict, Verdict::Rejected);
    // Removing a block saves its model bits: a merge that costs 1,000 data bits but frees a
    // block of 40,819.9 bits is accepted.
    let merge = decide("merge", base, base + 1_000.0, model, -1.0, 0.0);
    assert_eq!(merge.verdict, Verdict::Accepted);
    assert!((merge.delta_dl - (1_000.0 - bits)).abs() < 1e-6);
}

#[test]
fn accepted_moves_are_bounded_by_dl0_over_delta() {
    assert_eq!(max_accepted_moves(1000.0, 3.0), 333);
    assert_eq!(max_accepted_moves(1000.0, 0.0), 0);
    // Any sequence of accepted moves, each saving more than δ from a DL that stays ≥ 0, has at
    // most ⌊DL₀/δ⌋ moves: simulate greedy random moves until no saving > δ is possible.
    let mut rng = SplitMix64::new(7);
    for _ in 0..200 {
        let dl0 = 100.0 + 900.0 * rng.next_f64();
        let delta = 0.5 + 20.0 * rng.next_f64();
        let (mut dl, mut accepted) = (dl0, 0usize);
        for _ in 0..10_000 {
            let saving = dl * rng.next_f64();
            let after = dl - saving;
            let d = decide(
                "move",
                dl,
                after,
                ModelBits {
                    parameter_bits: 0.0,
                    header_bits: 0.0,
                    map_bits: 0.0,
                },
                1.0,
                delta,
            );
            if d.verdict == Verdict::Accepted {
                dl = after;
                accepted += 1;
            }
        }
        assert!(
            accepted <= max_accepted_moves(dl0, delta),
            "{accepted} moves from {dl0} with δ {delta}"
        );
    }
}

fn pool() -> impl Strategy<Value = (Vec<Vec<f64>>, Vec<usize>, Vec<usize>)> {
    (1usize..5, 1usize..12).prop_flat_map(|(j, d)| {
        (
            prop::collection::vec(prop::collection::vec(10.0f64..5_000.0, j), d),
            prop::collection::vec(5usize..2_000, d),
            prop::collection::vec(0usize..20_000, j),
        )
    })
}

proptest! {
    /// Alternating re-routing with refits (new code lengths, kept only when DL_total falls)
    /// never increases DL_total.
    #[test]
    fn rerouting_and_refitting_never_increase_dl_total((bits, tokens, params) in pool(), seed in 0u64..1000) {
        let costs = PoolCosts { added_params: params, header_bits: 64.0 };
        let j = costs.added_params.len();
        let mut assignment: Vec<usize> = (0..bits.len()).map(|d| d % j).collect();
        let mut bits = bits;
        let mut dl = dl_total(&bits, &tokens, &assignment, &costs);
        let mut rng = SplitMix64::new(seed);
        for _ in 0..6 {
            let r = reroute(&bits, &tokens, &costs, &assignment);
            prop_assert!(r.dl_total <= dl + 1e-9);
            assignment = r.assignment;
            dl = r.dl_total;
            // A refit: each specialist's code lengths for its own documents shrink a little
            // (training on them), others may grow; kept only if DL_total falls.
            let mut refit = bits.clone();
            for (d, row) in refit.iter_mut().enumerate() {
                for (jj, b) in row.iter_mut().enumerate() {
                    let f = if assignment[d] == jj { 0.9 } else { 1.0 + 0.2 * rng.next_f64() };
                    *b *= f;
                }
            }
            let after = dl_total(&refit, &tokens, &assignment, &costs);
            if after < dl {
                bits = refit;
                dl = after;
            }
        }
        // The greedy routing alone minimises the data bits.
        let g = route(&bits, &tokens, &costs);
        for (d, &jj) in g.assignment.iter().enumerate() {
            let best = bits[d].iter().cloned().fold(f64::INFINITY, f64::min);
            prop_assert_eq!(bits[d][jj], best);
        }
    }
}
