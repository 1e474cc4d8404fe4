//! The Audit panel's pass/fail over a test set: which sentences (the model's held-out windows
//! or a file, one sentence per line), a button that has the worker measure every rule in force
//! over them under the current dial, and per rule the sentences it fired on, its pass rate
//! and its mean PF. The result names what it was measured on and is marked stale when the
//! model, blocks, dial, rules or test set change.

use std::path::PathBuf;

use crate::engine::protocol::{Command, RuleEval, TestSet, TestSetAudit};
use crate::studio::state::{FileRequest, StudioState};
use crate::studio::widgets::verdict_colour;

impl StudioState {
    /// Ask the worker to measure the rules in force over the chosen test set.
    pub fn audit_test_set(&mut self) {
        self.rules.test_pending = true;
        let set = self.rules.test_set.clone();
        self.send(Command::AuditTestSet(set));
    }
}

/// Draw the section.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.strong("pass/fail over a test set");
    choice(ui, state);
    if let Some(why) = state.stale_test_audit() {
        if state.rules.test_audit.is_some() {
            ui.colored_label(
                crate::studio::widgets::WARNING,
                format!("{why}: press Measure to measure again"),
            );
        }
    }
    if state.rules.test_pending {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("measuring every rule over the test set…");
        });
    }
    if let Some(audit) = &state.rules.test_audit {
        let off: Vec<&str> = state
            .rules
            .resolved
            .iter()
            .filter(|r| !r.enabled)
            .map(|r| r.id.as_str())
            .collect();
        table(ui, audit, &off);
    } else if !state.rules.test_pending {
        ui.label(
            "Not measured yet. The table above is one sentence (the text box); Measure runs every \
             rule in force over many.",
        );
    }
}

/// The test set radio buttons, the sentences file and the Measure button.
fn choice(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.horizontal_wrapped(|ui| {
        let held_out = state.rules.test_set == TestSet::HeldOut;
        if ui
            .radio(held_out, "held-out windows")
            .on_hover_text("Windows of the model's held-out text: the tenth of its training corpus it never trained on (a pretrained model: the bundled Shakespeare)")
            .clicked()
        {
            state.rules.test_set = TestSet::HeldOut;
        }
        let typed = PathBuf::from(state.rules.sentences_path.trim());
        if ui
            .radio(!held_out, "sentences file")
            .on_hover_text("A text file with one sentence per line")
            .clicked()
            && !typed.as_os_str().is_empty()
        {
            state.rules.test_set = TestSet::Sentences(typed);
        }
        let edit = egui::TextEdit::singleline(&mut state.rules.sentences_path)
            .hint_text("path to a .txt file, one sentence per line")
            .desired_width(240.0);
        let l = ui.label("file path");
        let field = ui.add(edit).labelled_by(l.id);
        if field.changed() {
            let typed = PathBuf::from(state.rules.sentences_path.trim());
            if !typed.as_os_str().is_empty() {
                state.rules.test_set = TestSet::Sentences(typed);
            }
        }
        if ui
            .button("Open sentences file…")
            .on_hover_text("Choose a text file of sentences, one per line, and measure over it")
            .clicked()
        {
            state.file_request = Some(FileRequest::Sentences);
        }
        let can = !state.rules.resolved.is_empty() && !state.rules.test_pending;
        if ui
            .add_enabled(can, egui::Button::new("Measure"))
            .on_hover_text("Measure every rule in force over the test set, under the current dial")
            .on_disabled_hover_text("Apply rules in the Rules tab first (or wait for the measurement under way)")
            .clicked()
        {
            state.audit_test_set();
        }
    });
}

/// The result: what it was measured over, then one row per rule (`off`: the rules switched
/// off).
fn table(ui: &mut egui::Ui, audit: &TestSetAudit, off: &[&str]) {
    ui.label(format!(
        "{}, mode {}, λ = {:.2}",
        audit.described,
        audit.on.dial.params.mode.label(),
        audit.on.dial.params.lambda
    ));
    egui::ScrollArea::horizontal()
        .id_salt("audit_test_scroll")
        .show(ui, |ui| {
            egui::Grid::new("audit_test_table")
                .striped(true)
                .num_columns(6)
                .show(ui, |ui| {
                    for h in [
                        "rule",
                        "fired on",
                        "pass rate",
                        "mean PF_mass",
                        "target",
                        "result",
                    ] {
                        ui.strong(h);
                    }
                    ui.end_row();
                    for row in &audit.rows {
                        let on = !off.contains(&row.id.as_str());
                        test_row(ui, row, audit.sentences, on);
                        ui.end_row();
                    }
                });
        });
}

/// One rule over the test set.
fn test_row(ui: &mut egui::Ui, r: &RuleEval, sentences: usize, on: bool) {
    ui.label(&r.id);
    ui.label(format!("{} of {sentences}", r.windows_fired))
        .on_hover_text("Sentences (windows) in which the rule fired with its target in view");
    ui.label(
        r.pass_rate
            .map(|p| format!("{:.0}%", p * 100.0))
            .unwrap_or_else(|| "-".into()),
    )
    .on_hover_text("Share of the sentences it fired on where its PF_mass met its target");
    ui.label(
        r.pf_mass
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "-".into()),
    )
    .on_hover_text(
        "Mean attention mass on the targets where it fired, over its layers and heads (0 to 1)",
    );
    ui.label(
        r.target
            .map(|t| format!("{t}"))
            .unwrap_or_else(|| "-".into()),
    );
    match (r.target, r.pass_rate) {
        _ if !on => {
            ui.label("off (switched off in Rules)");
        }
        (None, _) => {
            ui.label("bias rule (no PF target)");
        }
        (Some(_), None) => {
            ui.label("did not fire");
        }
        (Some(_), Some(p)) => {
            let passed = (p * r.windows_fired as f64).round() as usize;
            ui.colored_label(
                verdict_colour(ui, p >= 1.0),
                format!("passed on {passed} of {}", r.windows_fired),
            );
        }
    }
}
