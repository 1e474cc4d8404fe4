//! The Rules panel: an editor with syntax colouring and inline errors, apply and revert, undo
//! and redo of applied rule sets, a list of rules with on/off switches, and for the selected
//! rule where it fired in the current text, its PF_mass and PF_top1 per layer and head, and
//! the ρ it used against ρ* from bound 8.3.

mod details;
mod highlight;

use egui::Color32;

use crate::engine::protocol::RulesInForce;
use crate::studio::state::StudioState;

use self::details::details;
pub use self::highlight::highlight;

/// Draw the panel. `example` is the bundled example rule file, for "Load example".
pub fn show(ui: &mut egui::Ui, state: &mut StudioState, example: &str) {
    ui.horizontal_wrapped(|ui| {
        let dirty = state.rules.dirty();
        let apply = ui
            .add_enabled(
                dirty || state.rules.errors.is_some(),
                egui::Button::new("Apply"),
            )
            .on_hover_text(
                "Check the rules and put them in force in the running model (Ctrl+Enter)",
            );
        let ctrl_enter = ui.input(|i| i.modifiers.command && i.key_pressed(egui::Key::Enter));
        if apply.clicked() || (ctrl_enter && dirty) {
            let text = state.rules.editor.clone();
            let off = state.rules.off.clone();
            state.apply_rules(text, off);
        }
        if ui
            .add_enabled(dirty, egui::Button::new("Revert"))
            .on_hover_text("Put the editor back to the rules in force")
            .clicked()
        {
            state.rules.editor = state.rules.applied.clone();
            state.rules.errors = None;
        }
        let can_undo = state.rules.cursor > 0 && !state.rules.history.is_empty();
        if ui
            .add_enabled(can_undo, egui::Button::new("Undo"))
            .on_hover_text("Go back to the rules in force before the last change")
            .clicked()
        {
            step_history(state, -1);
        }
        let can_redo = state.rules.cursor + 1 < state.rules.history.len();
        if ui
            .add_enabled(can_redo, egui::Button::new("Redo"))
            .on_hover_text("Put the undone change back in force")
            .clicked()
        {
            step_history(state, 1);
        }
        if ui
            .button("Load example")
            .on_hover_text(
                "The example rules for the synthetic clinical and payments corpus (assets/rules)",
            )
            .clicked()
        {
            state.rules.editor = example.to_string();
        }
        if ui
            .button("Export JSON…")
            .on_hover_text("The rules in force in their JSON form")
            .clicked()
        {
            // The worker parsed the rules in force and sent their JSON form with them.
            let json = state
                .rules
                .json
                .clone()
                .unwrap_or_else(|| RulesInForce::default().json);
            match json {
                Ok(json) => state.pending_export = Some(("rules.json".into(), json.into_bytes())),
                Err(e) => state.error = Some(format!("export failed: {e}")),
            }
        }
        if state.rules.pending.is_some() {
            ui.spinner();
        }
    });
    ui.columns(2, |cols| {
        if let [left, right] = cols {
            editor(left, state);
            rule_list(right, state);
        }
    });
}

fn step_history(state: &mut StudioState, delta: i64) {
    let target = state.rules.cursor as i64 + delta;
    if target < 0 {
        return;
    }
    let target = target as usize;
    if let Some((text, off)) = state.rules.history.get(target).cloned() {
        state.rules.cursor = target;
        state.rules.editor = text.clone();
        state.apply_rules(text, off);
    }
}

fn editor(ui: &mut egui::Ui, state: &mut StudioState) {
    let dark = ui.visuals().dark_mode;
    let errors = state.rules.errors.clone();
    let mut layouter = |ui: &egui::Ui, buf: &dyn egui::TextBuffer, wrap: f32| {
        let mut job = highlight(buf.as_str(), errors.as_ref(), dark);
        job.wrap.max_width = wrap;
        ui.fonts_mut(|f| f.layout_job(job))
    };
    let label = ui.label("rules").id;
    egui::ScrollArea::vertical()
        .id_salt("rules_editor")
        .max_height(420.0)
        .show(ui, |ui| {
            ui.add(
                egui::TextEdit::multiline(&mut state.rules.editor)
                    .code_editor()
                    .desired_rows(18)
                    .desired_width(f32::INFINITY)
                    .hint_text("rule id \"what it is for\"\n  when query.block = dose\n  target previous block drug\n  fidelity 0.9\nend")
                    .layouter(&mut layouter),
            )
            .labelled_by(label);
        });
    if let Some(e) = &state.rules.errors {
        ui.colored_label(
            Color32::LIGHT_RED,
            format!("{} error(s); nothing was applied:", e.total()),
        );
        error_list(ui, e);
    } else if state.rules.dirty() {
        ui.label("edited: Apply puts these rules in force");
    }
}

fn rule_list(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.label("rules in force");
    if let Some(e) = &state.rules.not_in_force {
        not_in_force(ui, e);
        return;
    }
    if state.rules.resolved.is_empty() {
        ui.label("none: write rules on the left, or load the example, and Apply");
        return;
    }
    let stale = state.stale_reports();
    if let Some(why) = &stale {
        ui.colored_label(
            crate::studio::widgets::WARNING,
            format!("{why}: waiting for the rules to be measured again"),
        );
    }
    // The reports only when measured on what is shown now (a field borrow, so the loop can
    // still select a rule).
    let reports = if stale.is_some() {
        &[][..]
    } else {
        &state.rules.reports[..]
    };
    let mut toggle = None;
    for r in &state.rules.resolved {
        ui.horizontal(|ui| {
            let mut on = r.enabled;
            if ui
                .checkbox(&mut on, &r.id)
                .on_hover_text("Switch the rule on or off in the running model")
                .changed()
            {
                toggle = Some((r.id.clone(), on));
            }
            let report = reports.iter().find(|x| x.id == r.id);
            let status = rule_status(r.enabled, report);
            let selected = state.rules.selected.as_deref() == Some(r.id.as_str());
            let text = if status.contains("FAIL") {
                egui::RichText::new(status).color(Color32::LIGHT_RED)
            } else {
                egui::RichText::new(status)
            };
            if ui
                .selectable_label(selected, text)
                .on_hover_text(format!(
                    "{}\nPF: mean PF_mass over the rows where the rule fired and the layers and \
                     heads in its scope (attention mass on its targets, 0 to 1); pass or FAIL \
                     against its fidelity target. Click for details.",
                    r.description
                ))
                .clicked()
            {
                state.rules.selected = Some(r.id.clone());
            }
        });
    }
    if let Some((id, on)) = toggle {
        let mut off = state.rules.off.clone();
        off.retain(|x| x != &id);
        if !on {
            off.push(id);
        }
        let text = state.rules.applied.clone();
        state.apply_rules(text, off);
    }
    ui.separator();
    let Some(id) = state.rules.selected.clone() else {
        ui.label("select a rule to see where it fired and its fidelity per layer and head");
        return;
    };
    details(ui, state, &id);
}

/// The rules of the file do not resolve on the current model: none of them is in force on
/// it, and no result measured on an earlier model is shown.
pub fn not_in_force(ui: &mut egui::Ui, e: &crate::engine::protocol::RuleErrors) {
    ui.colored_label(
        Color32::LIGHT_RED,
        format!(
            "not in force on this model: the rules do not resolve on its blocks ({} error(s)); \
             they are checked again when another model is opened",
            e.total()
        ),
    );
    error_list(ui, e);
}

/// The first errors of a rule file, then how many more there are (all of them counted, those
/// the parser kept and those it only counted).
fn error_list(ui: &mut egui::Ui, e: &crate::engine::protocol::RuleErrors) {
    const SHOWN: usize = 20;
    for err in e.errors.iter().take(SHOWN) {
        ui.colored_label(Color32::LIGHT_RED, err.to_string());
    }
    let shown = e.errors.len().min(SHOWN);
    if e.total() > shown {
        ui.label(format!("… and {} more", e.total() - shown));
    }
}

/// What the list shows beside a rule: its measured PF and verdict, or why there is none
/// ("details" when it has not been measured on what is shown now).
fn rule_status(enabled: bool, report: Option<&crate::engine::protocol::RuleReport>) -> String {
    match report {
        Some(rep) if !enabled => format!("off ({} firings ignored)", rep.fired.len()),
        Some(rep) if rep.fired.is_empty() => "did not fire".to_string(),
        Some(rep) => match (rep.pass, rep.pf_mass) {
            (Some(true), Some(pf)) => format!("PF {pf:.3} pass"),
            (Some(false), Some(pf)) => format!("PF {pf:.3} FAIL"),
            (_, Some(pf)) => format!("PF {pf:.3}"),
            _ => format!("fired {}x, no target", rep.fired.len()),
        },
        None => "details".to_string(),
    }
}
