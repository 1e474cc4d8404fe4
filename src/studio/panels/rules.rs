//! The Rules panel: an editor with syntax colouring and inline errors, apply and revert, undo
//! and redo of applied rule sets, a list of rules with on/off switches, and for the selected
//! rule where it fired in the current text, its PF_mass and PF_top1 per layer and head, and
//! the ρ it used against ρ* from bound 8.3.

use egui::text::{LayoutJob, TextFormat};
use egui::{Color32, FontId};

use crate::rules::parse::RuleErrors;
use crate::rules::print::KEYWORDS;
use crate::studio::state::StudioState;

/// Colour the rule language: keywords, condition names, strings, numbers, comments; lines
/// with an error get a red background.
pub fn highlight(text: &str, errors: Option<&RuleErrors>, dark: bool) -> LayoutJob {
    let font = FontId::monospace(13.0);
    let (plain, kw, cond, string, number, comment) = if dark {
        (
            Color32::from_gray(220),
            Color32::from_rgb(110, 170, 255),
            Color32::from_rgb(200, 150, 255),
            Color32::from_rgb(240, 180, 100),
            Color32::from_rgb(140, 220, 140),
            Color32::from_gray(130),
        )
    } else {
        (
            Color32::from_gray(30),
            Color32::from_rgb(20, 80, 200),
            Color32::from_rgb(120, 40, 170),
            Color32::from_rgb(170, 90, 0),
            Color32::from_rgb(20, 120, 40),
            Color32::from_gray(120),
        )
    };
    let bad_lines: Vec<usize> = errors
        .map(|e| e.errors.iter().map(|x| x.pos.line).collect())
        .unwrap_or_default();
    let bad_bg = if dark {
        Color32::from_rgb(90, 30, 30)
    } else {
        Color32::from_rgb(255, 215, 215)
    };
    let mut job = LayoutJob::default();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let bg = if bad_lines.contains(&(n + 1)) {
            bad_bg
        } else {
            Color32::TRANSPARENT
        };
        let fmt = |c: Color32| TextFormat {
            font_id: font.clone(),
            color: c,
            background: bg,
            ..Default::default()
        };
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            let colour = if c == '#' {
                i = chars.len();
                comment
            } else if c == '"' {
                i += 1;
                while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i = (i + 1).min(chars.len());
                string
            } else if c.is_ascii_digit() {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                number
            } else if c.is_alphabetic() || c == '_' {
                while i < chars.len() && (chars[i].is_alphanumeric() || "_-.".contains(chars[i])) {
                    i += 1;
                }
                let w: String = chars[start..i].iter().collect();
                if KEYWORDS.contains(&w.as_str()) {
                    kw
                } else if w.starts_with("query.") || w.starts_with("earlier.") {
                    cond
                } else {
                    plain
                }
            } else {
                i += 1;
                plain
            };
            let piece: String = chars[start..i.min(chars.len())].iter().collect();
            job.append(&piece, 0.0, fmt(colour));
        }
    }
    job
}

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
            match crate::rules::parse_rules(&state.rules.applied).map(|s| s.to_json()) {
                Ok(Ok(json)) => {
                    state.pending_export = Some(("rules.json".into(), json.into_bytes()))
                }
                Ok(Err(e)) => state.error = Some(format!("export failed: {e}")),
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
            format!("{} error(s); nothing was applied:", e.errors.len()),
        );
        for err in &e.errors {
            ui.colored_label(Color32::LIGHT_RED, err.to_string());
        }
    } else if state.rules.dirty() {
        ui.label("edited: Apply puts these rules in force");
    }
}

fn rule_list(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.label("rules in force");
    if state.rules.resolved.is_empty() {
        ui.label("none: write rules on the left, or load the example, and Apply");
        return;
    }
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
            let report = state.rules.reports.iter().find(|x| x.id == r.id);
            let status = match report {
                Some(rep) if !r.enabled => format!("off ({} firings ignored)", rep.fired.len()),
                Some(rep) if rep.fired.is_empty() => "did not fire".to_string(),
                Some(rep) => match (rep.pass, rep.pf_mass) {
                    (Some(true), Some(pf)) => format!("PF {pf:.3} pass"),
                    (Some(false), Some(pf)) => format!("PF {pf:.3} FAIL"),
                    (_, Some(pf)) => format!("PF {pf:.3}"),
                    _ => format!("fired {}x, no target", rep.fired.len()),
                },
                None => String::new(),
            };
            let selected = state.rules.selected.as_deref() == Some(r.id.as_str());
            let status = if status.is_empty() {
                "details".to_string()
            } else {
                status
            };
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

fn details(ui: &mut egui::Ui, state: &StudioState, id: &str) {
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
    let tokens = state
        .capture
        .as_ref()
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let tok = |i: usize| tokens.get(i).cloned().unwrap_or_default();
    let fired: Vec<String> = state
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
        .collect();
    if fired.is_empty() {
        ui.label("it does not fire on the current text");
        return;
    }
    ui.label(format!("fired on the current text ({}):", fired.len()));
    for f in &fired {
        ui.monospace(f);
    }
    let Some(rep) = state.rules.reports.iter().find(|x| x.id == id) else {
        return;
    };
    if rep.heads.is_empty() {
        return;
    }
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
