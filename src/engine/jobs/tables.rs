//! The Markdown tables the jobs' results are printed as: evaluations (of a checkpoint and of
//! an imported model), per-rule measurements, and an audit report's rules.

use crate::engine::audit::AuditReport;
use crate::engine::figures::{or_dash, TableWriter};
use crate::engine::jobs::rules::RuleEval;
use crate::hf::eval::RealEvalRow;
use crate::train::eval::EvalReport;

/// A perplexity to three decimals, or in powers of ten past a million (a damaged model's
/// perplexity printed in full was 110 digits).
pub fn perplexity_text(p: f64) -> String {
    if p.abs() >= 1e6 {
        format!("{p:.3e}")
    } else {
        format!("{p:.3}")
    }
}

/// A checkpoint's evaluations, one row per λ; `mode` names the dial mode.
pub fn eval_table(reports: &[EvalReport], mode: &str) -> String {
    let mut t = TableWriter::markdown([
        "λ_inf",
        "mode",
        "perplexity",
        "top-1",
        "entropy (bits)",
        "ε",
        "PF_mass",
        "PF_top1",
        "PF true",
    ]);
    for r in reports {
        t.row([
            // + 0.0: a λ typed as -0 prints as 0.00.
            format!("{:.2}", r.lambda + 0.0),
            mode.to_string(),
            perplexity_text(r.perplexity),
            format!("{:.1}%", 100.0 * r.top1_accuracy),
            format!("{:.3}", r.entropy_bits),
            format!("{:.4}", r.off_block_mass),
            format!("{:.4}", r.pf_mass),
            format!("{:.4}", r.pf_top1),
            or_dash(r.pf_true_mass, 4),
        ]);
    }
    t.finish()
}

/// An imported model's curve, one row per λ.
pub fn imported_eval_table(rows: &[RealEvalRow], mode: &str) -> String {
    let mut t = TableWriter::markdown([
        "λ_inf",
        "mode",
        "tokens",
        "perplexity",
        "entropy (bits)",
        "ε",
    ]);
    for r in rows {
        t.row([
            format!("{:.2}", r.lambda),
            mode.to_string(),
            r.tokens.to_string(),
            r.perplexity
                .map(|p| format!("{p:.3}"))
                .unwrap_or_else(|| "– (encoder)".into()),
            format!("{:.3}", r.entropy_bits),
            format!("{:.4}", r.epsilon),
        ]);
    }
    t.finish()
}

/// Per-rule results, one row per (λ, rule).
pub fn rule_table(rows: &[RuleEval]) -> String {
    let mut t = TableWriter::markdown([
        "λ_inf",
        "rule",
        "rows fired",
        "PF_mass",
        "PF_top1",
        "target",
        "windows passing",
    ]);
    for r in rows {
        t.row([
            format!("{:.2}", r.lambda),
            r.id.clone(),
            r.fired.to_string(),
            or_dash(r.pf_mass, 4),
            or_dash(r.pf_top1, 4),
            r.target
                .map(|t| t.to_string())
                .unwrap_or_else(|| "–".into()),
            r.pass_rate
                .map(|p| format!("{:.0}%", 100.0 * p))
                .unwrap_or_else(|| "–".into()),
        ]);
    }
    t.finish()
}

/// An audit report's rules: whether on, trigger and target, rows fired, PF_mass, the target
/// and pass or FAIL.
pub fn audit_rule_table(report: &AuditReport) -> String {
    let mut t = TableWriter::markdown([
        "rule", "on", "trigger", "target", "fired", "PF_mass", "target", "result",
    ]);
    for r in &report.rules {
        t.row([
            r.id.clone(),
            (if r.enabled { "on" } else { "off" }).to_string(),
            r.trigger.clone(),
            r.target.clone(),
            r.report.fired.len().to_string(),
            r.report
                .pf_mass
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "-".into()),
            r.report
                .target_pf
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            match r.report.pass {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "-",
            }
            .to_string(),
        ]);
    }
    t.finish()
}
