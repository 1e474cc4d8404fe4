//! The selected rule's details in the Rules panel: where it fired on the current text and its
//! fidelity per layer and head.

use egui::Color32;

use crate::engine::protocol::RuleReport;
use crate::studio::state::StudioState;

/// Draw the details of rule `id`.
pub(super) fn details(ui: &mut egui::Ui, state: &StudioState, id: &str) {
    let Some(k) = state.rules.resolved.iter().position(|r| r.id == id) else {
        return;
    };
    let Some(r) = state.rules.resolved.get(k) else {
        return;
    };
    ui.strong(&r.id);
    if !r.description.is_empty() {
        ui.label(&r.description);
    }
    ui.label(format!(
        "trigger {}  ->  target {}",
        r.trigger_label, r.target_label
    ));
    let fired = fired_lines(state, k);
    if fired.is_empty() {
        ui.label("it does not fire on the current text");
        return;
    }
    ui.label(format!("fired on the current text ({}):", fired.len()));
    for f in &fired {
        ui.monospace(f);
    }
    let Some(rep) = state.current_reports().iter().find(|x| x.id == id) else {
        return;
    };
    if rep.heads.is_empty() {
        return;
    }
    fidelity_grid(ui, rep);
}

/// Where rule `k` fired on the current text, one line per query with its targets.
fn fired_lines(state: &StudioState, k: usize) -> Vec<String> {
    let tokens = state
        .capture
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let tok = |i: usize| tokens.get(i).cloned().unwrap_or_default();
    state
        .rules
        .firings
        .iter()
        .filter(|f| f.rule == k)
        .map(|f| {
            let targets: Vec<String> = f
                .targets
                .iter()
                .map(|&j| format!("{j} {:?}", tok(j)))
                .collect();
            format!(
                "query {} {:?} -> {}",
                f.query,
                tok(f.query),
                if targets.is_empty() {
                    "no target visible".to_string()
                } else {
                    targets.join(", ")
                }
            )
        })
        .collect()
}

/// Per layer and head: PF_mass, PF_top1, ρ used, ρ* and bound 8.3 of one rule's report.
fn fidelity_grid(ui: &mut egui::Ui, rep: &RuleReport) {
    egui::Grid::new("rule_fidelity")
        .striped(true)
        .num_columns(7)
        .show(ui, |ui| {
            for h in [
                "layer",
                "head",
                "PF_mass",
                "PF_top1",
                "ρ used",
                "ρ* (8.3)",
                "bound 8.3",
            ] {
                ui.strong(h);
            }
            ui.end_row();
            for hf in &rep.heads {
                let dim = |ui: &mut egui::Ui, s: String| {
                    if hf.in_scope {
                        ui.label(s)
                    } else {
                        ui.weak(s)
                    }
                };
                dim(ui, format!("{}", hf.layer));
                dim(ui, format!("{}", hf.head));
                let fail = hf.in_scope && rep.target_pf.is_some_and(|t| hf.pf_mass + 1e-9 < t);
                if fail {
                    ui.colored_label(Color32::LIGHT_RED, format!("{:.3}", hf.pf_mass));
                } else {
                    dim(ui, format!("{:.3}", hf.pf_mass));
                }
                dim(ui, format!("{:.2}", hf.pf_top1));
                dim(ui, format!("{:.2}", hf.rho));
                dim(ui, format!("{:.2}", hf.rho_star));
                dim(ui, format!("{:.3}", hf.pf_bound));
                ui.end_row();
            }
        })
        .response
        .on_hover_text(
            "Per layer and head, over the rows where the rule fired: PF_mass, the attention mass \
             on the targets; PF_top1, the fraction of rows whose largest weight is on a target; \
             ρ used, the logit bias added (0 out of scope, greyed); ρ*, the bias bound 8.3 asks \
             for the rule's fidelity target (0.95 for bias rules); bound 8.3, the guaranteed \
             PF_mass at the ρ used.",
        );
}
