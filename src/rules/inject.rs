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

use crate::analysis::bounds::rho_needed;
use crate::analysis::dial::temperature;
use crate::model::backend::AttentionModel;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::capture::{capture, capture_masked, masks_for, Capture, Scores};
use crate::model::dial::DialSetting;
use crate::model::transformer::ModelError;
use crate::rules::ast::Strength;
use crate::rules::check::{fire, Firing, ResolvedRule};
use crate::rules::fidelity::{margins_index, reports, rho_index};
/// Re-exported from [`crate::rules::fidelity`], where the reports are computed.
pub use crate::rules::fidelity::{HeadFidelity, RuleReport, NOMINAL_PF};

/// A value per active firing, layer and head: [firing][layer][head].
type PerFiring = Vec<Vec<Vec<f64>>>;

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
    let mut masks = masks_for(model, blocks, ids);
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
    follow_rules(&mut masks, rules, &active, t);
    let taus: Vec<f64> = dial
        .per_layer(dims.layers)
        .iter()
        .map(temperature)
        .collect();
    let mut rho = initial_rho(rules, &active, dims.layers, dims.heads);
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
        if !solve || passes > dims.layers {
            break (cap, margins);
        }
        let solver = Solver {
            rules,
            active: &active,
            taus: &taus,
            layers: dims.layers,
            heads: dims.heads,
        };
        if !solver.step(&margins, &mut rho) {
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

/// The dial follows the rules: R(i) = targets ∪ S(i) where a rule fires.
fn follow_rules(masks: &mut SequenceMasks, rules: &[ResolvedRule], active: &[&Firing], t: usize) {
    for f in active {
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
}

/// ρ per firing, layer and head before solving: a `bias` rule's ρ in its scope, 0 elsewhere
/// and for `fidelity` rules (solved from the scores).
fn initial_rho(
    rules: &[ResolvedRule],
    active: &[&Firing],
    layers: usize,
    heads: usize,
) -> PerFiring {
    active
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
                                    // Solved later from the scores.
                                    Strength::Fidelity { .. } => 0.0,
                                }
                            }
                            _ => 0.0,
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

/// What one solving pass of `fidelity` rules reads.
struct Solver<'a> {
    rules: &'a [ResolvedRule],
    active: &'a [&'a Firing],
    taus: &'a [f64],
    layers: usize,
    heads: usize,
}

impl Solver<'_> {
    /// Set each `fidelity` firing's ρ to what bound 8.3 asks for at the measured content
    /// `margins`; true when any ρ changed (another pass is needed).
    fn step(&self, margins: &PerFiring, rho: &mut PerFiring) -> bool {
        let mut changed = false;
        for (k, f) in self.active.iter().enumerate() {
            let Some(r) = self.rules.get(f.rule) else {
                continue;
            };
            let Strength::Fidelity { target } = r.strength else {
                continue;
            };
            for l in r.layers.indices(self.layers) {
                for h in r.heads.indices(self.heads) {
                    let m = margins[k][l][h];
                    let n = f.query + 1;
                    let tau = self.taus.get(l).copied().unwrap_or(1.0);
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
        changed
    }
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
