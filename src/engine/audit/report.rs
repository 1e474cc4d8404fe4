//! The audit report: model and corpus hashes, the dial, every rule with its measured fidelity
//! and the log, sealed with its own hash and signed with the user's key (see
//! [`crate::engine::audit::sign`]); [`crate::engine::audit::verify_report`] checks it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::audit::log::AuditLog;
use crate::engine::audit::time::{iso8601_utc, now_iso8601_utc};
use crate::engine::corpus::sha256_hex;
use crate::engine::protocol::RuleView;
use crate::files::{read_text, MAX_DOCUMENT_BYTES};
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
    /// Seconds since the Unix epoch: only in reports of version 1 (before times were ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_unix: Option<u64>,
    /// When it was written, ISO 8601 UTC (`2026-11-30T11:20:05Z`); empty in version 1.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generated_utc: String,
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
    /// Each rule's pass/fail over a test set, when one was measured under exactly this
    /// model, dial and rules (absent otherwise, and in reports before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_set: Option<TestSetSection>,
    /// The HTML page's figures, each by its title and its picture's SHA-256, so that the
    /// signature covers them (version 4 on; absent in earlier reports and without figures).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub figures: Vec<FigureDigest>,
    /// SHA-256 of this report with this field and the signature empty: catches accidental
    /// damage (anyone can re-compute it; the signature is what resists deliberate edits).
    pub report_sha256: String,
    /// The signer's Ed25519 public key, hex (empty in an unsigned, version 1 report).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    /// Ed25519 signature, hex, over everything else ([`crate::engine::audit::signed_bytes`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub signature: String,
}

/// Pass/fail over a test set, as a report carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSetSection {
    /// What was measured, in words ("32 held-out windows of 64 tokens").
    pub described: String,
    /// Sentences (or windows) measured.
    pub sentences: usize,
    /// One row per rule, in file order.
    pub rows: Vec<TestSetRow>,
}

/// One rule over a test set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestSetRow {
    /// Rule id.
    pub id: String,
    /// Whether the rule was switched on.
    pub enabled: bool,
    /// Sentences it fired on with its target in view.
    pub fired_on: usize,
    /// Mean PF_mass over them (its layers and heads).
    pub pf_mass: Option<f64>,
    /// Its PF target (None: a bias rule).
    pub target: Option<f64>,
    /// Share of the sentences it fired on where it met its target.
    pub pass_rate: Option<f64>,
}

/// Report layout version: 2 since reports are signed and their times are ISO 8601, 3 since
/// every log entry is signed as it is logged, 4 since the page's figures are signed by their
/// SHA-256 ([`FigureDigest`]).
pub const REPORT_VERSION: u32 = 4;

/// One figure of the HTML page as the signed JSON records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FigureDigest {
    /// Its title (the page's caption and alt text).
    pub title: String,
    /// SHA-256 of its PNG bytes.
    pub png_sha256: String,
}

/// The digests of `figures` (title, PNG bytes), in order.
pub fn figure_digests(figures: &[(String, Vec<u8>)]) -> Vec<FigureDigest> {
    (figures.iter())
        .map(|(title, png)| FigureDigest {
            title: title.clone(),
            png_sha256: sha256_hex(png),
        })
        .collect()
}

impl AuditReport {
    /// The hash the report should carry.
    pub fn compute_hash(&self) -> String {
        let mut copy = self.clone();
        copy.report_sha256 = String::new();
        copy.signature = String::new();
        sha256_hex(serde_json::to_string(&copy).unwrap_or_default().as_bytes())
    }

    /// When it was written, as ISO 8601 UTC (a version 1 report's Unix time converted).
    pub fn generated_label(&self) -> String {
        match self.generated_unix {
            Some(t) if self.generated_utc.is_empty() => iso8601_utc(t),
            _ => self.generated_utc.clone(),
        }
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

/// Assemble and seal a report (unsigned: [`crate::engine::audit::sign_report`] signs it).
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
        generated_unix: None,
        generated_utc: now_iso8601_utc(),
        model_path,
        model_sha256,
        corpus_path,
        corpus_sha256,
        dial: dial.clone(),
        text: text.to_string(),
        rules: rule_audits(rules, reports),
        log: log.clone(),
        test_set: None,
        figures: Vec::new(),
        report_sha256: String::new(),
        public_key: String::new(),
        signature: String::new(),
    }
    .seal()
}

/// Read a report's JSON (a regular file of at most [`MAX_DOCUMENT_BYTES`]); errors name the
/// file and say whether it is not JSON at all (truncated?) or JSON of another shape.
pub fn read_report(path: &Path) -> anyhow::Result<AuditReport> {
    let text = read_text(path, MAX_DOCUMENT_BYTES, "an audit report")?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not an audit report: not valid JSON ({e}); is the file cut short?",
            path.display()
        )
    })?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != "localist-audit-report" {
        anyhow::bail!(
            "{}: not an audit report (format {format:?}, expected \"localist-audit-report\")",
            path.display()
        );
    }
    let report: AuditReport = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        anyhow::anyhow!(
            "{}: not an audit report: `{}`: {}",
            path.display(),
            e.path(),
            e.inner()
        )
    })?;
    // Read again from the text itself: through a JSON value a key written twice kept its
    // last value unsaid ("pf_mass": 0.1, "pf_mass": 0.988 verified as intact), while a reader
    // that keeps the first would be shown another report.
    let mut direct = serde_json::Deserializer::from_str(&text);
    if let Err(e) = serde_path_to_error::deserialize::<_, AuditReport>(&mut direct) {
        anyhow::bail!(
            "{}: not an audit report as written: `{}`: {} (a key written twice is read \
             differently by different readers, so it is refused)",
            path.display(),
            e.path(),
            e.inner()
        );
    }
    let read_back = serde_json::to_value(&report)?;
    if let Some(key) = unknown_key(&value, &read_back, String::new()) {
        anyhow::bail!(
            "{}: holds `{key}`, which is not part of an audit report: neither its hash nor its \
             signature covers it, so a reader could be shown unsigned text as verified",
            path.display()
        );
    }
    Ok(report)
}

/// The first key (as a path, `rules[3].report.x`) that `read` has and `known` (the same report
/// as the program reads it, written back) does not: a field no part of the program reads.
fn unknown_key(read: &serde_json::Value, known: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match (read, known) {
        (Value::Object(r), Value::Object(k)) => r.iter().find_map(|(name, v)| {
            let here = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            match k.get(name) {
                None => Some(here),
                Some(kv) => unknown_key(v, kv, here),
            }
        }),
        (Value::Array(r), Value::Array(k)) => r
            .iter()
            .zip(k)
            .enumerate()
            .find_map(|(i, (rv, kv))| unknown_key(rv, kv, format!("{at}[{i}]"))),
        _ => None,
    }
}
