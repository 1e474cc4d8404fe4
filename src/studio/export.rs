//! Exports from the studio: the numbers behind the training plots as CSV. Captures, heatmap
//! PNGs and screenshot regions are written by the engine (`engine::export`,
//! `engine::figures`), the same code the command line uses.

use crate::engine::figures::TableWriter;
use crate::engine::worker::LivePoint;
use crate::studio::state::CurvePoint;

/// The numbers behind the training plots as CSV: one row per step with the loss and Ω, and
/// the live held-out metrics on the steps where they were measured (empty cells elsewhere).
pub fn training_csv(curve: &[CurvePoint], live: &[LivePoint]) -> String {
    use std::collections::BTreeMap;
    let mut rows: BTreeMap<usize, (Option<&CurvePoint>, Option<&LivePoint>)> = BTreeMap::new();
    for c in curve {
        rows.entry(c.step + 1).or_default().0 = Some(c);
    }
    for l in live {
        rows.entry(l.step).or_default().1 = Some(l);
    }
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut out = TableWriter::csv([
        "steps_done",
        "loss_nats",
        "penalty",
        "perplexity",
        "entropy_bits",
        "eps",
        "pf_mass",
        "pf_top1",
        "pf_true_mass",
        "text_eps",
        "text_eps_bound",
        "text_entropy_bits",
        "text_entropy_bound_bits",
    ]);
    for (step, (c, l)) in rows {
        let e = l.map(|l| &l.eval);
        let t = l.and_then(|l| l.theory.as_ref());
        out.row([
            step.to_string(),
            opt(c.map(|c| c.loss_nats)),
            opt(c.map(|c| c.penalty)),
            opt(e.map(|e| e.perplexity)),
            opt(e.map(|e| e.entropy_bits)),
            opt(e.map(|e| e.off_block_mass)),
            opt(e.map(|e| e.pf_mass)),
            opt(e.map(|e| e.pf_top1)),
            opt(e.and_then(|e| e.pf_true_mass)),
            opt(t.map(|t| t.eps)),
            opt(t.and_then(|t| t.eps_bound)),
            opt(t.map(|t| t.entropy_bits)),
            opt(t.and_then(|t| t.entropy_bound_bits)),
        ]);
    }
    out.finish()
}
