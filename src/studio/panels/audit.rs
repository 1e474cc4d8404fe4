//! The Audit panel, for reviewers: the rule-to-block mapping table (rule → trigger block →
//! target → layers and heads → measured PF against the bound → pass or fail at the rule's
//! target), the hash-chained log of rule changes, and the report export (one self-contained
//! HTML file with its figures, plus a JSON twin that `localist audit verify` checks).

use egui::Color32;

use crate::engine::audit::{rule_audits, AuditReport, RuleAudit, TestSetRow, TestSetSection};
use crate::engine::figures::Figure;
use crate::engine::jobs::audit::{report_files, report_with_figures, ReportInputs};
use crate::studio::state::{short, StudioState};
use crate::studio::widgets::verdict_colour;

/// Build the report of the current state: model, corpus, dial, text, rules with their
/// measured fidelity, the log; and the figures for its HTML (the first in-scope head of each
/// rule that fired, as a heatmap).
pub fn build_report(state: &StudioState) -> (AuditReport, Vec<Figure>) {
    let inputs = ReportInputs {
        model: state.checkpoint.clone(),
        corpus: state.summary.as_ref().and_then(|s| s.corpus.clone()),
        dial: &state.dial,
        text: &state.text,
        rules: &state.rules.resolved,
        reports: state.current_reports(),
        log: &state.rules.log,
        test_set: test_set_section(state),
    };
    // Figures from the exact capture only, never from a bf16 preview.
    let preview = state.capture_is_preview();
    let capture = state
        .capture
        .as_ref()
        .filter(|_| !preview)
        .map(|(cap, _)| cap);
    report_with_figures(inputs, capture, state.colormap)
}

/// The test-set table for the report, when it was measured under the current model, blocks,
/// dial and rules (a stale one is left out, not certified).
fn test_set_section(state: &StudioState) -> Option<TestSetSection> {
    if state.stale_test_audit().is_some() {
        return None;
    }
    let audit = state.rules.test_audit.as_ref()?;
    let rows = audit
        .rows
        .iter()
        .map(|r| TestSetRow {
            id: r.id.clone(),
            enabled: state
                .rules
                .resolved
                .iter()
                .find(|v| v.id == r.id)
                .is_none_or(|v| v.enabled),
            fired_on: r.windows_fired,
            pf_mass: r.pf_mass,
            target: r.target,
            pass_rate: r.pass_rate,
        })
        .collect();
    Some(TestSetSection {
        described: audit.described.clone(),
        sentences: audit.sentences,
        rows,
    })
}

/// Why the report cannot be certified now, or `None` when every rule in it was measured on
/// the model, blocks, text and dial it names.
pub fn report_refusal(state: &StudioState) -> Option<String> {
    if state.rules.not_in_force.is_some() {
        return Some(
            "the rules do not resolve on this model, so nothing about them can be certified for \
             it; apply rules written for this model first"
                .into(),
        );
    }
    if state.rules.pending.is_some() {
        return Some("a rule change is still being applied; export again in a moment".into());
    }
    state.stale_reports().map(|why| {
        format!(
            "the rule measurements are {why} (they were taken before the last change); wait for \
             them to be measured again, then export"
        )
    })
}

/// Export the report, or refuse with the reason when it would certify something not measured
/// on what it names.
pub fn export_report(state: &mut StudioState) {
    if let Some(why) = report_refusal(state) {
        state.error = Some(format!("report not exported: {why}"));
        return;
    }
    let (report, figures) = build_report(state);
    match report_files(&report, &figures) {
        Ok(files) => state.pending_report = Some(files),
        Err(e) => state.error = Some(format!("report failed: {e}")),
    }
}

/// Draw the panel.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState) {
    header(ui, state);
    ui.separator();
    mapping(ui, state);
    ui.separator();
    super::audit_test_set::show(ui, state);
    ui.separator();
    log(ui, state);
}

/// The log's state, the export button and the hashes the report names.
fn header(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.horizontal(|ui| {
        let log = &state.rules.log;
        let mut problems = log.verify();
        problems.extend(log.signature_problems());
        if problems.is_empty() {
            let signed = log.entries.iter().filter(|e| !e.signature.is_empty()).count();
            ui.label(format!(
                "audit log: {} entries, hash chain intact, {signed} signed",
                log.entries.len()
            ))
            .on_hover_text("Each entry carries the SHA-256 of the one before it, so an edit after the fact breaks the chain, and is signed with your key as it is logged, so an entry edited and re-hashed no longer matches its signature. An unsigned entry (logged before entries were signed) makes a report of this log fail verification.");
        } else {
            ui.colored_label(Color32::LIGHT_RED, problems.join("; "));
        }
        if ui
            .button("Export report…")
            .on_hover_text("One self-contained HTML file with its figures, and a JSON twin beside it (same name, .json) for `localist audit verify`")
            .clicked()
        {
            export_report(state);
        }
    });
    let (model, corpus) = state.hashes();
    ui.label(format!(
        "model {}  SHA-256 {}…   corpus SHA-256 {}…",
        state
            .checkpoint
            .as_ref()
            .map(|(p, _)| p.display().to_string())
            .unwrap_or_else(|| "unsaved".into()),
        short(&model),
        short(&corpus)
    ));
}

/// The rule-to-block mapping of the rules in force.
fn mapping(ui: &mut egui::Ui, state: &StudioState) {
    ui.strong("rule-to-block mapping");
    if let Some(e) = &state.rules.not_in_force {
        crate::studio::panels::rules::not_in_force(ui, e);
    } else if state.rules.resolved.is_empty() {
        ui.label("no rules in force (the Rules tab applies them)");
    } else {
        if let Some(why) = state.stale_reports() {
            ui.colored_label(
                crate::studio::widgets::WARNING,
                format!("{why}: the measurements are being taken again"),
            );
        }
        let audits = rule_audits(&state.rules.resolved, state.current_reports());
        // Columns never disappear in a narrow window: the table scrolls sideways.
        egui::ScrollArea::horizontal()
            .id_salt("audit_table_scroll")
            .show(ui, |ui| {
                egui::Grid::new("audit_table")
                    .striped(true)
                    .num_columns(9)
                    .show(ui, |ui| {
                        for h in [
                            "rule",
                            "on",
                            "trigger block",
                            "target",
                            "layers",
                            "heads",
                            "PF_mass",
                            "bound 8.3",
                            "result",
                        ] {
                            ui.strong(h);
                        }
                        ui.end_row();
                        for a in &audits {
                            audit_row(ui, a);
                            ui.end_row();
                        }
                    });
            });
    }
}

/// One row of the mapping: the rule, its scope, PF_mass against bound 8.3, and the verdict.
fn audit_row(ui: &mut egui::Ui, a: &RuleAudit) {
    ui.label(&a.id).on_hover_text(&a.text);
    ui.label(if a.enabled { "on" } else { "off" });
    ui.label(&a.trigger);
    ui.label(&a.target);
    ui.label(&a.layers);
    ui.label(&a.heads);
    let scoped: Vec<_> = a.report.heads.iter().filter(|x| x.in_scope).collect();
    ui.label(a.report.pf_mass.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()))
        .on_hover_text("Mean attention mass on the targets where the rule fired, over its layers and heads (0 to 1).");
    let bound = (!scoped.is_empty())
        .then(|| scoped.iter().map(|x| x.pf_bound).sum::<f64>() / scoped.len() as f64);
    ui.label(
        bound
            .map(|v| format!("{v:.3}"))
            .unwrap_or_else(|| "-".into()),
    )
    .on_hover_text(
        "Mean PF_mass guaranteed by bound 8.3 at the ρ used and the measured content margin.",
    );
    match a.report.pass {
        Some(true) => {
            ui.colored_label(
                verdict_colour(ui, true),
                format!("pass (target {})", a.report.target_pf.unwrap_or(0.0)),
            );
        }
        Some(false) => {
            ui.colored_label(
                verdict_colour(ui, false),
                format!("FAIL (target {})", a.report.target_pf.unwrap_or(0.0)),
            );
        }
        None if a.report.fired.is_empty() => {
            ui.label("did not fire");
        }
        None => {
            ui.label("bias rule (no PF target)");
        }
    }
}

/// The audit log, newest first.
fn log(ui: &mut egui::Ui, state: &StudioState) {
    ui.strong("audit log");
    egui::ScrollArea::horizontal()
        .id_salt("audit_log_scroll")
        .show(ui, |ui| log_grid(ui, state));
}

fn log_grid(ui: &mut egui::Ui, state: &StudioState) {
    egui::Grid::new("audit_log")
        .striped(true)
        .num_columns(6)
        .show(ui, |ui| {
            for h in ["#", "time (UTC)", "action", "rule", "model", "entry hash"] {
                ui.strong(h);
            }
            ui.end_row();
            for e in state.rules.log.entries.iter().rev().take(200) {
                ui.label(e.seq.to_string());
                ui.label(e.time_label());
                ui.label(format!("{:?}", e.action));
                ui.label(&e.rule_id).on_hover_text(&e.rule_text);
                ui.label(short(&e.model_sha256));
                ui.label(short(&e.hash))
                    .on_hover_text(format!("previous: {}", e.prev_hash));
                ui.end_row();
            }
        });
}
