//! Description length in bits (SPEC §9 and §10): the arithmetic behind recruiting a block or a
//! specialist, the decision with its full breakdown, the termination bound, and routing
//! documents to specialists by shortest code length.
//!
//! DL(M) = L(D | M) + Σ_k [(p_k/2)·log₂ n + c_blk] + L(b), with L(D | M) the data bits on a
//! held-out buffer of n tokens, p_k the parameters block k owns, c_blk = log₂ K_max + 32 header
//! bits per block and L(b) the bits of the changed block-map entries. A candidate is accepted
//! iff the data bits it saves exceed the model bits it adds by more than δ.

use serde::{Deserialize, Serialize};

/// Bits to state `params` real parameters estimated from `n` tokens: (p/2)·log₂ n.
pub fn parameter_bits(params: usize, n: usize) -> f64 {
    if params == 0 || n <= 1 {
        return 0.0;
    }
    params as f64 / 2.0 * (n as f64).log2()
}

/// Header bits of one block: log₂ K_max + 32.
pub fn block_header_bits(k_max: usize) -> f64 {
    (k_max.max(1) as f64).log2() + 32.0
}

/// Bits of `changed` block-map entries that go to one block, in a vocabulary of `vocab` ids
/// with at most `k_max` blocks: one bit says which of two codes follows, then the shorter of
/// - a list: each entry names its id and its block, log₂ V + log₂ K_max bits;
/// - a set: its size (log₂(V + 1)), which ids (log₂ C(V, n)) and their block (log₂ K_max).
///
/// The list spends log₂ n! bits on an order that says nothing, and names the same block n
/// times: 20 words of a 100-word vocabulary cost 213 bits as a list and 80 as a set. Measured
/// (2026-12-03): with the list, true topics of corpora with 40% function words and short
/// segments saved 80–250 bits too few to pay and stayed unassigned (ARI 0.706 and 0.324 on
/// two of twelve random corpora); with the set, 1.000 and 0.817.
pub fn map_bits(changed: usize, vocab: usize, k_max: usize) -> f64 {
    if changed == 0 {
        return 0.0;
    }
    let v = vocab.max(changed);
    let list = map_list_bits(changed, v, k_max);
    let set = ((v + 1) as f64).log2() + log2_choose(v, changed) + (k_max.max(1) as f64).log2();
    1.0 + list.min(set)
}

/// Bits of `changed` block-map entries coded as a list, each naming its id and its block:
/// log₂ V + log₂ K_max each. The pool of specialists prices block maps so (DL_total of a pool
/// is a sum over its maps, and a merge is one of its moves: with the set code of [`map_bits`]
/// a merge would be credited the bits of two sets over one, and inside a specialist two true
/// topics merged for 2–5 data bits, against 54–92 map bits saved).
pub fn map_list_bits(changed: usize, vocab: usize, k_max: usize) -> f64 {
    changed as f64 * ((vocab.max(1) as f64).log2() + (k_max.max(1) as f64).log2())
}

/// log₂ C(n, k), summed term by term (exact to rounding; k ≤ n).
pub fn log2_choose(n: usize, k: usize) -> f64 {
    let k = k.min(n - k.min(n));
    (0..k)
        .map(|i| ((n - i) as f64 / (i + 1) as f64).log2())
        .sum()
}

/// The model bits of adding one block that owns `params` parameters and moves `changed`
/// map entries.
pub fn block_model_bits(
    params: usize,
    n: usize,
    k_max: usize,
    changed: usize,
    vocab: usize,
) -> ModelBits {
    ModelBits {
        parameter_bits: parameter_bits(params, n),
        header_bits: block_header_bits(k_max),
        map_bits: map_bits(changed, vocab, k_max),
    }
}

/// The model side of a move, in bits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelBits {
    /// (p/2)·log₂ n.
    pub parameter_bits: f64,
    /// c_blk.
    pub header_bits: f64,
    /// L(b) of the changed entries.
    pub map_bits: f64,
}

impl ModelBits {
    /// Their sum.
    pub fn total(&self) -> f64 {
        self.parameter_bits + self.header_bits + self.map_bits
    }
}

/// Accept, or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The move saves more than δ bits.
    Accepted,
    /// It does not; the previous state is restored.
    Rejected,
}

/// One decision with its full breakdown, as logged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// What was tried ("recruit block B from tokens ...", "merge A into B", ...).
    pub what: String,
    /// L(D | M) before, bits.
    pub data_bits_before: f64,
    /// L(D | M') after, bits.
    pub data_bits_after: f64,
    /// Model bits the move adds (negative parts for merges and prunes are in `sign`).
    pub model: ModelBits,
    /// +1 for a move that adds a block (its model bits are paid), −1 for one that removes one
    /// (its model bits are saved).
    pub sign: f64,
    /// ΔDL = DL(M') − DL(M), bits: negative is better.
    pub delta_dl: f64,
    /// The acceptance margin δ, bits.
    pub delta_min: f64,
    /// The standard error of the data-bit difference, bits (scaled like the data bits), when
    /// the move was read at once on the held-out buffer; 0 when not measured. A move so read is
    /// accepted only when −ΔDL > δ + z·SE ([`with_noise_z`]).
    #[serde(default)]
    pub noise_bits: f64,
    /// The z of that margin (2, or more for a removal late in a run: [`removal_z`]); 2 in
    /// logs written before it grew.
    #[serde(default = "two")]
    pub noise_z: f64,
    /// The verdict: accepted iff −ΔDL > δ (+ z·SE when measured).
    pub verdict: Verdict,
}

/// `d` with the standard error `se` of its data-bit difference taken into account: kept only
/// when it saves more than δ + 2·SE, so that a saving within the buffer's sampling noise is
/// not read as evidence (scaled to a large corpus, a fraction of a bit on the buffer becomes
/// hundreds: two true topics of an 8,000-document corpus merged at ΔDL −173 bits whose data
/// difference was 1.5 bits on the buffer).
pub fn with_noise(d: Decision, se: f64) -> Decision {
    with_noise_z(d, se, 2.0)
}

/// [`with_noise`] with the margin δ + z·SE (z below 2 is read as 2).
pub fn with_noise_z(mut d: Decision, se: f64, z: f64) -> Decision {
    if se.is_finite() && se > 0.0 {
        let z = if z.is_finite() { z.max(2.0) } else { 2.0 };
        d.noise_bits = se;
        d.noise_z = z;
        if -d.delta_dl <= d.delta_min + z * se {
            d.verdict = Verdict::Rejected;
        }
    }
    d
}

/// The z of the margin δ + z·SE for the m-th removal read at once in a run: max(2, Φ⁻¹(1 −
/// 0.05/m)), a one-sided Bonferroni bound over the m tries so far, so that the chance of
/// any noise-only saving passing stays near 5% however many rounds try (m = 20: z = 2.81).
/// A recruit is not counted: it is judged after a second look, not at once.
pub fn removal_z(m: usize) -> f64 {
    normal_quantile(1.0 - 0.05 / m.max(1) as f64).max(2.0)
}

/// Φ⁻¹(p), the standard normal quantile (Acklam's rational approximation, relative error
/// below 1.2e-9); ±∞ at 0 and 1, NaN outside [0, 1].
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 || p == 1.0 {
        return if p == 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let low = 0.02425;
    if p < low {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - low {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

fn two() -> f64 {
    2.0
}

/// Decide a move: `sign` = +1 adds a block (pays `model`), −1 removes one (saves it).
pub fn decide(
    what: impl Into<String>,
    data_bits_before: f64,
    data_bits_after: f64,
    model: ModelBits,
    sign: f64,
    delta_min: f64,
) -> Decision {
    let delta_dl = (data_bits_after - data_bits_before) + sign * model.total();
    let verdict = if -delta_dl > delta_min {
        Verdict::Accepted
    } else {
        Verdict::Rejected
    };
    Decision {
        what: what.into(),
        data_bits_before,
        data_bits_after,
        model,
        sign,
        delta_dl,
        delta_min,
        noise_bits: 0.0,
        noise_z: 2.0,
        verdict,
    }
}

impl Decision {
    /// The saving the move needed: δ, plus z·SE where it was read at once (SE 0 otherwise).
    pub fn margin(&self) -> f64 {
        self.delta_min + self.noise_z * self.noise_bits
    }
}

/// The most moves that can be accepted when each saves more than δ > 0 bits from DL₀:
/// ⌊DL₀/δ⌋ (bound 8.6). DL never goes below 0, so the sum of savings is at most DL₀.
pub fn max_accepted_moves(dl0: f64, delta: f64) -> usize {
    if delta <= 0.0 || !dl0.is_finite() || dl0 <= 0.0 {
        return 0;
    }
    (dl0 / delta).floor() as usize
}

/// Routing of documents to specialists by shortest code length, and DL_total (SPEC §10):
/// DL_total = Σ_j [(P_j/2)·log₂ n_j + c_llm + Σ_{d→j} L(d | M_j)] + Σ_d log₂ J.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Routing {
    /// The specialist each document goes to.
    pub assignment: Vec<usize>,
    /// DL_total of this routing, bits.
    pub dl_total: f64,
}

/// A pool's cost side: per specialist, the parameters it adds over its parent and its header.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolCosts {
    /// P_j: parameters specialist j adds over its parent.
    pub added_params: Vec<usize>,
    /// c_llm: bits to name a specialist's architecture and parent.
    pub header_bits: f64,
}

/// DL_total of routing `assignment` given `bits[d][j]` = L(d | M_j) and each document's length
/// in tokens (n_j is the number of tokens routed to j). A specialist with no document costs
/// nothing (it would be pruned).
pub fn dl_total(
    bits: &[Vec<f64>],
    tokens: &[usize],
    assignment: &[usize],
    costs: &PoolCosts,
) -> f64 {
    let j_count = costs.added_params.len().max(1);
    let mut n_j = vec![0usize; j_count];
    let mut data = 0.0;
    for (d, &j) in assignment.iter().enumerate() {
        if let Some(n) = n_j.get_mut(j) {
            *n += tokens.get(d).copied().unwrap_or(0);
        }
        data += bits
            .get(d)
            .and_then(|row| row.get(j))
            .copied()
            .unwrap_or(f64::INFINITY);
    }
    let model: f64 = n_j
        .iter()
        .zip(&costs.added_params)
        .filter(|(&n, _)| n > 0)
        .map(|(&n, &p)| parameter_bits(p, n) + costs.header_bits)
        .sum();
    data + model + assignment.len() as f64 * (j_count as f64).log2()
}

/// Route every document to the specialist that codes it in the fewest bits (ties to the lower
/// index), and price the result. This minimises the data bits; the parameter bits
/// (P_j/2)·log₂ n_j also move with n_j, so [`reroute`] keeps a routing only when DL_total falls.
pub fn route(bits: &[Vec<f64>], tokens: &[usize], costs: &PoolCosts) -> Routing {
    let assignment: Vec<usize> = bits
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0usize, f64::INFINITY), |best, (j, &b)| {
                    if b < best.1 {
                        (j, b)
                    } else {
                        best
                    }
                })
                .0
        })
        .collect();
    let dl = dl_total(bits, tokens, &assignment, costs);
    Routing {
        assignment,
        dl_total: dl,
    }
}

/// One re-routing move from `current`: the shortest-code routing if it lowers DL_total, else
/// `current` unchanged. Alternating this with refits that are kept only when they lower
/// DL_total can never increase DL_total (SPEC §11 item 13).
pub fn reroute(
    bits: &[Vec<f64>],
    tokens: &[usize],
    costs: &PoolCosts,
    current: &[usize],
) -> Routing {
    let now = dl_total(bits, tokens, current, costs);
    let greedy = route(bits, tokens, costs);
    if greedy.dl_total < now {
        greedy
    } else {
        Routing {
            assignment: current.to_vec(),
            dl_total: now,
        }
    }
}
