//! What each rule did on a text (SPEC §6): where it fired, and per layer and head its pointer
//! fidelity (the attention on its targets) beside bound 8.3 at the ρ used and the ρ* the bound
//! asks for. Computed from a capture with the rules in force ([`crate::rules::inject`]).

use serde::{Deserialize, Serialize};

use crate::analysis::bounds::{pf_bound, rho_needed};
use crate::analysis::dial::temperature;
use crate::analysis::metrics::non_negative;
use crate::model::capture::{Capture, HeadCapture};
use crate::rules::ast::Strength;
use crate::rules::check::{Firing, ResolvedRule};

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

/// The PF target used for ρ* of `bias` rules in reports.
pub const NOMINAL_PF: f64 = 0.95;

/// Rows of (rule, query) → ρ [layer][head], for the reports.
pub(crate) type PerRow = Vec<((usize, usize), Vec<Vec<f64>>)>;

/// The ρ of each active firing, keyed by (rule, query).
pub(crate) fn rho_index(active: &[&Firing], rho: &[Vec<Vec<f64>>]) -> PerRow {
    active
        .iter()
        .zip(rho)
        .map(|(f, r)| ((f.rule, f.query), r.clone()))
        .collect()
}

/// The content margins of each active firing, keyed by (rule, query).
pub(crate) fn margins_index(active: &[&Firing], m: &[Vec<Vec<f64>>]) -> PerRow {
    rho_index(active, m)
}

/// What every rule's report reads: the capture, the layers' temperatures and the per-row ρ and
/// content margins.
struct Tables<'a> {
    cap: &'a Capture,
    taus: Vec<f64>,
    rho: &'a PerRow,
    margins: &'a PerRow,
}

/// Layer `l`, head `h` of firing (rule, query) `key` in `tab`.
fn lookup(tab: &PerRow, key: (usize, usize), l: usize, h: usize) -> Option<f64> {
    tab.iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.get(l).and_then(|x| x.get(h)))
        .copied()
}

/// One report per rule, in rule order, from the capture with rules and the ρ and content
/// margins of each active firing.
pub(crate) fn reports(
    rules: &[ResolvedRule],
    firings: &[Firing],
    cap: &Capture,
    rho: &PerRow,
    margins: &PerRow,
) -> Vec<RuleReport> {
    let taus: Vec<f64> = cap
        .dial
        .per_layer(cap.num_layers)
        .iter()
        .map(temperature)
        .collect();
    let tables = Tables {
        cap,
        taus,
        rho,
        margins,
    };
    rules
        .iter()
        .enumerate()
        .map(|(k, r)| tables.rule_report(k, r, firings))
        .collect()
}

impl Tables<'_> {
    /// The report of rule `k`.
    fn rule_report(&self, k: usize, r: &ResolvedRule, firings: &[Firing]) -> RuleReport {
        let mine: Vec<&Firing> = firings.iter().filter(|f| f.rule == k).collect();
        let with: Vec<&Firing> = mine
            .iter()
            .copied()
            .filter(|f| !f.targets.is_empty())
            .collect();
        let target_pf = match r.strength {
            Strength::Fidelity { target } => Some(target),
            Strength::Bias { .. } => None,
        };
        let mut hf = Vec::new();
        if !with.is_empty() {
            for l in 0..self.cap.num_layers {
                for h in 0..self.cap.num_heads {
                    let Some(hc) = self.cap.head(l, h) else {
                        continue;
                    };
                    let mut head = self.head(k, &with, (l, h), hc, target_pf);
                    head.in_scope = r.layers.contains(l) && r.heads.contains(h);
                    hf.push(head);
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
    }

    /// Rule `k` in layer `l`, head `h` (captured as `hc`), averaged over its firings `with` a
    /// target (`in_scope` is left for the caller).
    fn head(
        &self,
        k: usize,
        with: &[&Firing],
        (l, h): (usize, usize),
        hc: &HeadCapture,
        target_pf: Option<f64>,
    ) -> HeadFidelity {
        let t = self.cap.len();
        let tau = self.taus.get(l).copied().unwrap_or(1.0);
        let (mut mass, mut top, mut rsum, mut bsum, mut ssum) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for f in with {
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
            let rh = lookup(self.rho, (k, f.query), l, h).unwrap_or(0.0);
            let m = lookup(self.margins, (k, f.query), l, h).unwrap_or(f64::INFINITY);
            let n = f.query + 1;
            rsum += rh;
            bsum += pf_bound(n, f.targets.len(), m, rh, tau);
            let goal = target_pf.unwrap_or(NOMINAL_PF);
            // Clamped at 0 and ∞ (no ρ reaches the goal) read as 0, as before; a NaN stays NaN
            // rather than reading as "no ρ needed".
            let star = non_negative(rho_needed(n, f.targets.len(), 1.0 - goal, m, tau));
            ssum += if star.is_infinite() { 0.0 } else { star };
        }
        let c = with.len() as f64;
        HeadFidelity {
            layer: l,
            head: h,
            in_scope: false,
            pf_mass: mass / c,
            pf_top1: top / c,
            rho: rsum / c,
            pf_bound: bsum / c,
            rho_star: ssum / c,
        }
    }
}
