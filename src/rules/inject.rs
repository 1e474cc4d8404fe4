//! Injection: a capture with rules in force, and each rule's pointer fidelity against bound 8.3.
//!
//! Where a rule fires on query i, ρ is added to the scores of its targets in the layers and
//! heads of its scope, and R(i) becomes the targets (plus S(i) = {i, 0}), so the dial follows
//! the rule. With `fidelity F`, ρ is solved per row from bound 8.3 as
//! ρ* = τ·ln((N − t)(1 − δ)/(tδ)) − m_T with δ = 1 − F, from the row's content margin m_T
//! (lowest target score minus highest other score, without the rule's bias). Scores of layer ℓ
//! depend on the biases of the layers before it only, so the per-row ρ are found by passes
//! that each fix one more layer: at most L + 1 forward passes, exact.
//!
//! With no rule firing on a target, the capture is the plain one: removing (or switching off)
//! every rule gives logits bit-identical to never having had rules (SPEC §11 item 10).
//! Output constraints act on the next-token logits at fired positions: `forbid` sets them to
//! −∞, `boost` adds its amount.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::analysis::bounds::{pf_bound, rho_needed};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::capture::{capture, capture_masked, masks_for, Capture, Scores};
use crate::model::dial::{effective_tau, DialSetting};
use crate::model::transformer::ModelError;
use crate::rules::ast::Strength;
use crate::rules::check::{fire, Firing, ResolvedRule};

/// Pointer fidelity of one rule in one layer and head, over the rows where it fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HeadFidelity {
    /// Layer.
    pub layer: usize,
    /// Head.
    pub head: usize,
    /// Whether the rule acts on this layer and head.
    pub in_scope: bool,
    /// Mean PF_mass: attention on the targets.
    pub pf_mass: f64,
    /// Fraction of rows whose largest weight is on a target.
    pub pf_top1: f64,
    /// Mean ρ added (0 out of scope).
    pub rho: f64,
    /// Mean lower bound 8.3 on PF_mass at the ρ used and the measured content margin.
    pub pf_bound: f64,
    /// Mean ρ* that 8.3 asks for the rule's target (`fidelity`), or for 0.95 (`bias` rules).
    pub rho_star: f64,
}

/// What one rule did on the text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleReport {
    /// Rule id.
    pub id: String,
    /// Whether it was switched on.
    pub enabled: bool,
    /// Queries where it fired.
    pub fired: Vec<usize>,
    /// Queries where it fired but no target was visible.
    pub without_target: Vec<usize>,
    /// Per layer and head (empty when it fired nowhere with a target).
    pub heads: Vec<HeadFidelity>,
    /// The PF target: the rule's `fidelity`, or `None` for `bias` rules.
    pub target_pf: Option<f64>,
    /// Mean PF_mass over the heads in scope.
    pub pf_mass: Option<f64>,
    /// Pass (PF_mass ≥ target in scope) for `fidelity` rules that fired; `None` otherwise.
    pub pass: Option<bool>,
}

/// A capture with rules, and what each rule did.
#[derive(Clone, Debug)]
pub struct RuleCapture {
    /// The capture (R(i) moved to the targets where a rule fired).
    pub capture: Capture,
    /// Every firing.
    pub firings: Vec<Firing>,
    /// One report per rule, in rule order.
    pub reports: Vec<RuleReport>,
}

/// The PF target used for ρ* of `bias` rules in reports.
pub const NOMINAL_PF: f64 = 0.95;

/// Capture `ids` under `dial` with `rules` in force.
pub fn capture_with_rules(
    model: &dyn AttentionModel,
    blocks: &BlockMap,
    ids: &[u32],
    dial: &DialSetting,
    rules: &[ResolvedRule],
) -> Result<RuleCapture, ModelError> {
    let t = ids.len();
    let dims = model.dims();
    let (layers, heads) = (dims.layers, dims.heads);
    let masks = masks_for(model, blocks, ids);
    let firings = fire(rules, ids, &masks);
    let active: Vec<&Firing> = firings.iter().filter(|f| !f.targets.is_empty()).collect();
    if active.is_empty() {
        let cap = capture(model, blocks, ids, dial)?;
        let reports = reports(rules, &firings, &cap, &Vec::new(), &Vec::new());
        return Ok(RuleCapture {
            capture: cap,
            firings,
            reports,
        });
    }
    // The dial follows the rules: R(i) = targets ∪ S(i) where a rule fires.
    let mut masks = masks;
    for f in &active {
        let i = f.query;
        if let Some(row) = masks.relevant.get_mut(i * t..(i + 1) * t) {
            let causal = masks.causal;
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = (j <= i || !causal) && (j == i || j == 0 || f.targets.contains(&j));
            }
        }
        if let Some(b) = rules.get(f.rule).and_then(|r| r.target_block) {
            if let Some(rb) = masks.relevant_blocks.get_mut(i) {
                *rb = b;
            }
        }
    }
    let taus: Vec<f64> = dial.per_layer(layers).iter().map(effective_tau).collect();
    // ρ per firing, layer and head: [firing][layer][head].
    let mut rho: Vec<Vec<Vec<f64>>> = active
        .iter()
        .map(|f| {
            let r = rules.get(f.rule);
            (0..layers)
                .map(|l| {
                    (0..heads)
                        .map(|h| match r {
                            Some(r) if r.layers.contains(l) && r.heads.contains(h) => {
                                match r.strength {
                                    Strength::Bias { rho } => rho,
                                    // Solved below from the scores.
                                    Strength::Fidelity { .. } => 0.0,
                                }
                            }
                            _ => 0.0,
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let solve = active.iter().any(|f| {
        rules
            .get(f.rule)
            .is_some_and(|r| matches!(r.strength, Strength::Fidelity { .. }))
    });
    let mut passes = 0;
    let (mut cap, margins) = loop {
        let extra = extra_tensors(model, t, &active, &rho)?;
        let (cap, scores) = capture_masked(model, blocks, ids, &masks, dial, Some(&extra))?;
        passes += 1;
        let margins = content_margins(&active, &rho, &scores);
        if !solve || passes > layers {
            break (cap, margins);
        }
        let mut changed = false;
        for (k, f) in active.iter().enumerate() {
            let Some(r) = rules.get(f.rule) else { continue };
            let Strength::Fidelity { target } = r.strength else {
                continue;
            };
            for l in r.layers.indices(layers) {
                for h in r.heads.indices(heads) {
                    let m = margins[k][l][h];
                    let n = f.query + 1;
                    let tau = taus.get(l).copied().unwrap_or(1.0);
                    let want = rho_needed(n, f.targets.len(), 1.0 - target, m, tau).max(0.0);
                    let want = if want.is_finite() { want } else { 0.0 };
                    if let Some(cell) = rho
                        .get_mut(k)
                        .and_then(|v| v.get_mut(l))
                        .and_then(|v| v.get_mut(h))
                    {
                        if (*cell - want).abs() > 1e-9 {
                            *cell = want;
                            changed = true;
                        }
                    }
                }
            }
        }
        if !changed {
            break (cap, margins);
        }
    };
    apply_output_constraints(&mut cap, rules, &active, dims.vocab);
    let reports = reports(
        rules,
        &firings,
        &cap,
        &rho_index(&active, &rho),
        &margins_index(&active, &margins),
    );
    Ok(RuleCapture {
        capture: cap,
        firings,
        reports,
    })
}

/// Per layer, the summed rule biases [1,H,T,T].
fn extra_tensors(
    model: &dyn AttentionModel,
    t: usize,
    active: &[&Firing],
    rho: &[Vec<Vec<f64>>],
) -> Result<Vec<Tensor>, ModelError> {
    let dims = model.dims();
    let (layers, heads) = (dims.layers, dims.heads);
    let mut out = Vec::with_capacity(layers);
    for l in 0..layers {
        let mut v = vec![0f32; heads * t * t];
        for (k, f) in active.iter().enumerate() {
            for h in 0..heads {
                let r = rho
                    .get(k)
                    .and_then(|x| x.get(l))
                    .and_then(|x| x.get(h))
                    .copied()
                    .unwrap_or(0.0);
                if r == 0.0 {
                    continue;
                }
                for &j in &f.targets {
                    if let Some(cell) = v.get_mut(h * t * t + f.query * t + j) {
                        *cell += r as f32;
                    }
                }
            }
        }
        out.push(Tensor::from_vec(v, (1, heads, t, t), model.device())?);
    }
    Ok(out)
}

/// m_T per firing, layer and head: lowest target score minus highest other visible score,
/// both without this firing's own bias (+∞ when every visible key is a target).
fn content_margins(
    active: &[&Firing],
    rho: &[Vec<Vec<f64>>],
    scores: &Scores,
) -> Vec<Vec<Vec<f64>>> {
    active
        .iter()
        .enumerate()
        .map(|(k, f)| {
            scores
                .iter()
                .enumerate()
                .map(|(l, layer)| {
                    layer
                        .iter()
                        .enumerate()
                        .map(|(h, head)| {
                            let own = rho
                                .get(k)
                                .and_then(|x| x.get(l))
                                .and_then(|x| x.get(h))
                                .copied()
                                .unwrap_or(0.0);
                            let row = head.get(f.query).map(Vec::as_slice).unwrap_or(&[]);
                            let (mut lo_t, mut hi_o) = (f64::INFINITY, f64::NEG_INFINITY);
                            for (j, &z) in row.iter().enumerate().take(f.query + 1) {
                                let z = z as f64;
                                if f.targets.contains(&j) {
                                    lo_t = lo_t.min(z - own);
                                } else {
                                    hi_o = hi_o.max(z);
                                }
                            }
                            lo_t - hi_o
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// Rows of (rule, query) → ρ [layer][head], for the reports.
type PerRow = Vec<((usize, usize), Vec<Vec<f64>>)>;

fn rho_index(active: &[&Firing], rho: &[Vec<Vec<f64>>]) -> PerRow {
    active
        .iter()
        .zip(rho)
        .map(|(f, r)| ((f.rule, f.query), r.clone()))
        .collect()
}

fn margins_index(active: &[&Firing], m: &[Vec<Vec<f64>>]) -> PerRow {
    rho_index(active, m)
}

fn apply_output_constraints(
    cap: &mut Capture,
    rules: &[ResolvedRule],
    active: &[&Firing],
    vocab: usize,
) {
    for f in active {
        let Some(r) = rules.get(f.rule) else { continue };
        let row = f.query * vocab;
        for &id in &r.forbid {
            if let Some(x) = cap.logits.get_mut(row + id as usize) {
                *x = f32::NEG_INFINITY;
            }
        }
        if let Some((ids, by)) = &r.boost {
            for &id in ids {
                if let Some(x) = cap.logits.get_mut(row + id as usize) {
                    *x += *by as f32;
                }
            }
        }
    }
}

fn reports(
    rules: &[ResolvedRule],
    firings: &[Firing],
    cap: &Capture,
    rho: &PerRow,
    margins: &PerRow,
) -> Vec<RuleReport> {
    let (layers, heads) = (cap.num_layers, cap.num_heads);
    let t = cap.len();
    let taus: Vec<f64> = cap
        .dial
        .per_layer(layers)
        .iter()
        .map(effective_tau)
        .collect();
    rules
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let mine: Vec<&Firing> = firings.iter().filter(|f| f.rule == k).collect();
            let with: Vec<&&Firing> = mine.iter().filter(|f| !f.targets.is_empty()).collect();
            let target_pf = match r.strength {
                Strength::Fidelity { target } => Some(target),
                Strength::Bias { .. } => None,
            };
            let mut hf = Vec::new();
            if !with.is_empty() {
                for l in 0..layers {
                    for h in 0..heads {
                        let Some(hc) = cap.head(l, h) else { continue };
                        let (mut mass, mut top, mut rsum, mut bsum, mut ssum) =
                            (0.0, 0.0, 0.0, 0.0, 0.0);
                        for f in &with {
                            let row = hc
                                .attention
                                .get(f.query * t..(f.query + 1) * t)
                                .unwrap_or(&[]);
                            mass += f
                                .targets
                                .iter()
                                .map(|&j| row.get(j).copied().unwrap_or(0.0) as f64)
                                .sum::<f64>();
                            let arg = row
                                .iter()
                                .take(f.query + 1)
                                .enumerate()
                                .max_by(|a, b| a.1.total_cmp(b.1))
                                .map(|(j, _)| j);
                            if arg.is_some_and(|j| f.targets.contains(&j)) {
                                top += 1.0;
                            }
                            let lookup = |tab: &PerRow| {
                                tab.iter()
                                    .find(|(key, _)| *key == (k, f.query))
                                    .and_then(|(_, v)| v.get(l).and_then(|x| x.get(h)))
                                    .copied()
                            };
                            let rh = lookup(rho).unwrap_or(0.0);
                            let m = lookup(margins).unwrap_or(f64::INFINITY);
                            let tau = taus.get(l).copied().unwrap_or(1.0);
                            let n = f.query + 1;
                            rsum += rh;
                            bsum += pf_bound(n, f.targets.len(), m, rh, tau);
                            let goal = target_pf.unwrap_or(NOMINAL_PF);
                            let star = rho_needed(n, f.targets.len(), 1.0 - goal, m, tau).max(0.0);
                            ssum += if star.is_finite() { star } else { 0.0 };
                        }
                        let c = with.len() as f64;
                        hf.push(HeadFidelity {
                            layer: l,
                            head: h,
                            in_scope: r.layers.contains(l) && r.heads.contains(h),
                            pf_mass: mass / c,
                            pf_top1: top / c,
                            rho: rsum / c,
                            pf_bound: bsum / c,
                            rho_star: ssum / c,
                        });
                    }
                }
            }
            let scoped: Vec<&HeadFidelity> = hf.iter().filter(|x| x.in_scope).collect();
            let pf_mass = (!scoped.is_empty())
                .then(|| scoped.iter().map(|x| x.pf_mass).sum::<f64>() / scoped.len() as f64);
            let pass = match (target_pf, pf_mass) {
                (Some(goal), Some(pf)) => Some(pf + 1e-9 >= goal),
                _ => None,
            };
            RuleReport {
                id: r.id.clone(),
                enabled: r.enabled,
                fired: mine.iter().map(|f| f.query).collect(),
                without_target: mine
                    .iter()
                    .filter(|f| f.targets.is_empty())
                    .map(|f| f.query)
                    .collect(),
                heads: hf,
                target_pf,
                pf_mass,
                pass,
            }
        })
        .collect()
}
