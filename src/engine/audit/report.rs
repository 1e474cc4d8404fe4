//! The audit report: model and corpus hashes, the dial, every rule with its measured fidelity
//! and the log, sealed with its own hash; [`verify_report`] recomputes every hash and names
//! what was altered.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::audit::log::AuditLog;
use crate::engine::corpus::sha256_hex;
use crate::engine::protocol::RuleView;
use crate::model::dial::DialSetting;
use crate::rules::inject::RuleReport;

/// One rule as the report shows it: the rule-to-block mapping and its measured fidelity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuleAudit {
    /// Id.
    pub id: String,
    /// Description.
    pub description: String,
    /// Switched on.
    pub enabled: bool,
    /// The rule's text.
    pub text: String,
    /// Trigger block.
    pub trigger: String,
    /// Target block (or token, positions).
    pub target: String,
    /// Layers, as written.
    pub layers: String,
    /// Heads, as written.
    pub heads: String,
    /// What it did on the report's text.
    pub report: RuleReport,
}

/// The audit report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Always "localist-audit-report".
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// Seconds since the Unix epoch.
    pub generated_unix: u64,
    /// The checkpoint directory.
    pub model_path: Option<PathBuf>,
    /// Its SHA-256 ([`crate::hf::model_sha256`]: a checkpoint's, or an imported model's files).
    pub model_sha256: String,
    /// The training corpus file, when the model records one.
    pub corpus_path: Option<PathBuf>,
    /// Its SHA-256.
    pub corpus_sha256: String,
    /// The dial in force.
    pub dial: DialSetting,
    /// The text the rules were measured on.
    pub text: String,
    /// Every rule.
    pub rules: Vec<RuleAudit>,
    /// The log.
    pub log: AuditLog,
    /// SHA-256 of this report with this field empty: an edit anywhere is detected.
    pub report_sha256: String,
}

/// Report layout version.
pub const REPORT_VERSION: u32 = 1;

impl AuditReport {
    /// The hash the report should carry.
    pub fn compute_hash(&self) -> String {
        let mut copy = self.clone();
        copy.report_sha256 = String::new();
        sha256_hex(serde_json::to_string(&copy).unwrap_or_default().as_bytes())
    }

    /// Seal: set `report_sha256`.
    pub fn seal(mut self) -> Self {
        self.report_sha256 = self.compute_hash();
        self
    }
}

/// The mapping rows of a rule list with their reports.
pub fn rule_audits(rules: &[RuleView], reports: &[RuleReport]) -> Vec<RuleAudit> {
    rules
        .iter()
        .zip(reports)
        .map(|(r, rep)| RuleAudit {
            id: r.id.clone(),
            description: r.description.clone(),
            enabled: r.enabled,
            text: r.text.clone(),
            trigger: r.trigger_label.clone(),
            target: r.target_label.clone(),
            layers: r.layers.clone(),
            heads: r.heads.clone(),
            report: rep.clone(),
        })
        .collect()
}

/// Check a report: its own hash, the log's chain, and (when the files are reachable) the
/// model's and the corpus's hashes. Returns the problems found, each naming what changed;
/// empty means intact.
pub fn verify_report(report: &AuditReport, base: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if report.compute_hash() != report.report_sha256 {
        problems.push(
            "the report's contents were altered after it was written (its SHA-256 does not match)"
                .to_string(),
        );
    }
    problems.extend(report.log.verify());
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    if let Some(p) = &report.model_path {
        let p = resolve(p);
        match crate::hf::model_sha256(&p) {
            Ok(h) if h == report.model_sha256 => {}
            Ok(h) => problems.push(format!(
                "the model at {} has changed: SHA-256 {h}, the report says {}",
                p.display(),
                report.model_sha256
            )),
            Err(e) => problems.push(format!("the model could not be re-hashed: {e:#}")),
        }
    }
    if let Some(p) = &report.corpus_path {
        let p = resolve(p);
        match std::fs::read(&p) {
            Ok(bytes) => {
                let h = sha256_hex(&bytes);
                if h != report.corpus_sha256 {
                    problems.push(format!(
                        "the corpus at {} has changed: SHA-256 {h}, the report says {}",
                        p.display(),
                        report.corpus_sha256
                    ));
                }
            }
            Err(e) => problems.push(format!("the corpus {} could not be read: {e}", p.display())),
        }
    }
    problems
}

/// Assemble and seal a report.
#[allow(clippy::too_many_arguments)]
pub fn make_report(
    model: Option<(PathBuf, String)>,
    corpus: Option<(Option<PathBuf>, String)>,
    dial: &DialSetting,
    text: &str,
    rules: &[RuleView],
    reports: &[RuleReport],
    log: &AuditLog,
) -> AuditReport {
    let (model_path, model_sha256) = match model {
        Some((p, h)) => (Some(p), h),
        None => (None, "unsaved".into()),
    };
    let (corpus_path, corpus_sha256) = match corpus {
        Some((p, h)) => (p, h),
        None => (None, "unknown".into()),
    };
    AuditReport {
        format: "localist-audit-report".into(),
        version: REPORT_VERSION,
        generated_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        model_path,
        model_sha256,
        corpus_path,
        corpus_sha256,
        dial: dial.clone(),
        text: text.to_string(),
        rules: rule_audits(rules, reports),
        log: log.clone(),
        report_sha256: String::new(),
    }
    .seal()
}

/// Read a report's JSON; errors name the file.
pub fn read_report(path: &Path) -> anyhow::Result<AuditReport> {
    use anyhow::Context;
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let report: AuditReport = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an audit report", path.display()))?;
    if report.format != "localist-audit-report" {
        anyhow::bail!(
            "{}: not an audit report (format {:?})",
            path.display(),
            report.format
        );
    }
    Ok(report)
}
