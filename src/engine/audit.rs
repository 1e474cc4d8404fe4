//! The audit trail: an append-only log of rule changes whose entries each carry the hash of
//! the one before, and the audit report (JSON, with a self-contained HTML twin) that holds the
//! model and corpus hashes, the dial, every rule with its measured fidelity, and the log.
//! [`verify_report`] recomputes the hashes and the chain and names what was altered.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::corpus::sha256_hex;
use crate::engine::protocol::RuleView;
use crate::model::dial::DialSetting;
use crate::rules::inject::RuleReport;

/// The hash a first entry points back to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened to a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// A rule appeared.
    Added,
    /// A rule's text changed.
    Edited,
    /// A rule was taken out.
    Removed,
    /// A rule was switched on.
    Enabled,
    /// A rule was switched off.
    Disabled,
}

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 0.
    pub seq: u64,
    /// Seconds since the Unix epoch.
    pub time_unix: u64,
    /// What happened.
    pub action: AuditAction,
    /// The rule's id.
    pub rule_id: String,
    /// The rule's text after the change (before it, for removals).
    pub rule_text: String,
    /// SHA-256 of the model checkpoint the rule ran against ("unsaved" when it had none).
    pub model_sha256: String,
    /// SHA-256 of the model's training corpus ("unknown" when not recorded).
    pub corpus_sha256: String,
    /// The previous entry's hash ([`GENESIS`] for the first).
    pub prev_hash: String,
    /// SHA-256 of this entry's other fields and `prev_hash`.
    pub hash: String,
}

impl AuditEntry {
    /// The hash this entry should carry.
    pub fn compute_hash(&self) -> String {
        let body = serde_json::json!({
            "seq": self.seq,
            "time_unix": self.time_unix,
            "action": self.action,
            "rule_id": self.rule_id,
            "rule_text": self.rule_text,
            "model_sha256": self.model_sha256,
            "corpus_sha256": self.corpus_sha256,
            "prev_hash": self.prev_hash,
        });
        sha256_hex(body.to_string().as_bytes())
    }
}

/// The log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditLog {
    /// Entries, oldest first.
    pub entries: Vec<AuditEntry>,
}

impl AuditLog {
    /// Append an entry, chained to the last one.
    pub fn append(
        &mut self,
        action: AuditAction,
        rule_id: &str,
        rule_text: &str,
        model_sha256: &str,
        corpus_sha256: &str,
    ) {
        let time_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut e = AuditEntry {
            seq: self.entries.len() as u64,
            time_unix,
            action,
            rule_id: rule_id.into(),
            rule_text: rule_text.into(),
            model_sha256: model_sha256.into(),
            corpus_sha256: corpus_sha256.into(),
            prev_hash: self
                .entries
                .last()
                .map(|e| e.hash.clone())
                .unwrap_or_else(|| GENESIS.into()),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        self.entries.push(e);
    }

    /// Log the difference between two rule lists (by id): additions, edits, removals and
    /// switches. Returns how many entries were added.
    pub fn record_change(
        &mut self,
        before: &[RuleView],
        after: &[RuleView],
        model_sha256: &str,
        corpus_sha256: &str,
    ) -> usize {
        let n0 = self.entries.len();
        for r in after {
            match before.iter().find(|b| b.id == r.id) {
                None => self.append(
                    AuditAction::Added,
                    &r.id,
                    &r.text,
                    model_sha256,
                    corpus_sha256,
                ),
                Some(b) => {
                    if b.text != r.text {
                        self.append(
                            AuditAction::Edited,
                            &r.id,
                            &r.text,
                            model_sha256,
                            corpus_sha256,
                        );
                    }
                    if b.enabled != r.enabled {
                        let action = if r.enabled {
                            AuditAction::Enabled
                        } else {
                            AuditAction::Disabled
                        };
                        self.append(action, &r.id, &r.text, model_sha256, corpus_sha256);
                    }
                }
            }
        }
        for b in before {
            if !after.iter().any(|r| r.id == b.id) {
                self.append(
                    AuditAction::Removed,
                    &b.id,
                    &b.text,
                    model_sha256,
                    corpus_sha256,
                );
            }
        }
        self.entries.len() - n0
    }

    /// Check every hash and link; each problem names its entry.
    pub fn verify(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut prev = GENESIS.to_string();
        for (k, e) in self.entries.iter().enumerate() {
            if e.seq != k as u64 {
                problems.push(format!(
                    "log entry {k}: sequence number is {} (entries removed or reordered)",
                    e.seq
                ));
            }
            if e.prev_hash != prev {
                problems.push(format!(
                    "log entry {k} ({:?} {}): its link to entry {} does not match (an entry before it was altered, removed or inserted)",
                    e.action,
                    e.rule_id,
                    k.saturating_sub(1)
                ));
            }
            if e.compute_hash() != e.hash {
                problems.push(format!(
                    "log entry {k} ({:?} {}): its contents were altered after it was written",
                    e.action, e.rule_id
                ));
            }
            prev = e.hash.clone();
        }
        problems
    }
}

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

/// Standard base64 (for images embedded in the HTML report).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                let idx = ((n >> (18 - 6 * k)) & 63) as usize;
                out.push(A.get(idx).map(|&c| c as char).unwrap_or('='));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn short16(s: &str) -> String {
    s.chars().take(16).collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A bar chart (inline SVG) of one rule's PF_mass per layer and head, with its target line.
fn pf_svg(a: &RuleAudit) -> String {
    let heads = &a.report.heads;
    if heads.is_empty() {
        return "<p><em>The rule did not fire on a visible target in this text.</em></p>".into();
    }
    let (w, h, pad) = (34.0 * heads.len() as f64 + 60.0, 160.0, 30.0);
    let y = |v: f64| pad + (1.0 - v.clamp(0.0, 1.0)) * (h - 2.0 * pad);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" \
         aria-label=\"PF_mass per layer and head\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <line x1=\"40\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/>",
        y(0.0),
        w - 10.0,
        y(0.0)
    );
    for (k, hf) in heads.iter().enumerate() {
        let x = 44.0 + 34.0 * k as f64;
        let colour = if !hf.in_scope {
            "#bbb"
        } else if a.report.target_pf.is_some_and(|t| hf.pf_mass + 1e-9 < t) {
            "#c0392b"
        } else {
            "#2a7ab0"
        };
        svg.push_str(&format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"26\" height=\"{}\" fill=\"{colour}\"><title>layer {} head {}: PF_mass {:.3}, bound {:.3}, ρ {:.2}</title></rect>\
             <line x1=\"{x}\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#333\" stroke-dasharray=\"3,2\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">L{}H{}</text>",
            y(hf.pf_mass),
            y(0.0) - y(hf.pf_mass),
            hf.layer,
            hf.head,
            hf.pf_mass,
            hf.pf_bound,
            hf.rho,
            x + 26.0,
            y(hf.pf_bound),
            y(hf.pf_bound),
            x + 13.0,
            h - 10.0,
            hf.layer,
            hf.head
        ));
    }
    if let Some(t) = a.report.target_pf {
        svg.push_str(&format!(
            "<line x1=\"40\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#c0392b\"/><text x=\"2\" y=\"{}\" font-size=\"9\">target {t}</text>",
            w - 10.0,
            y(t),
            y(t),
            y(t) + 3.0
        ));
    }
    svg.push_str(&format!(
        "<text x=\"2\" y=\"{}\" font-size=\"9\">1</text><text x=\"2\" y=\"{}\" font-size=\"9\">0</text></svg>",
        y(1.0) + 3.0,
        y(0.0)
    ));
    svg
}

/// The report as one self-contained HTML page. `figures` are PNG images (title, bytes),
/// embedded as data URIs.
pub fn report_html(report: &AuditReport, figures: &[(String, Vec<u8>)]) -> String {
    let mut h = String::new();
    h.push_str("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Localist audit report</title><style>\
        body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}\
        table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
        th{background:#f3f3f3}.pass{color:#1e7b34;font-weight:bold}.fail{color:#c0392b;font-weight:bold}\
        code,pre{font-family:ui-monospace,monospace;font-size:90%}pre{background:#f7f7f7;padding:.6em;overflow-x:auto}\
        .hash{font-family:ui-monospace,monospace;font-size:80%;word-break:break-all}</style></head><body>");
    h.push_str("<h1>Localist audit report</h1>");
    h.push_str(&format!(
        "<table><tr><th>model</th><td>{}</td></tr><tr><th>model SHA-256</th><td class=\"hash\">{}</td></tr>\
         <tr><th>corpus</th><td>{}</td></tr><tr><th>corpus SHA-256</th><td class=\"hash\">{}</td></tr>\
         <tr><th>dial</th><td>mode {}, λ = {:.3}, τ = {:.2}, schedule {:?}</td></tr>\
         <tr><th>text</th><td><code>{}</code></td></tr><tr><th>generated</th><td>{} (Unix time)</td></tr>\
         <tr><th>report SHA-256</th><td class=\"hash\">{}</td></tr></table>",
        esc(&report.model_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "unsaved model".into())),
        esc(&report.model_sha256),
        esc(&match (&report.corpus_path, report.corpus_sha256.as_str()) {
            (Some(p), _) => p.display().to_string(),
            (None, "unknown") => "not recorded".into(),
            (None, _) => "generated (the synthetic corpus, regenerated from its seed)".into(),
        }),
        esc(&report.corpus_sha256),
        report.dial.params.mode.label(),
        report.dial.params.lambda,
        report.dial.params.tau,
        report.dial.schedule,
        esc(&report.text),
        report.generated_unix,
        esc(&report.report_sha256),
    ));
    h.push_str("<h2>Rule-to-block mapping</h2><table><tr><th>rule</th><th>on</th><th>trigger block</th><th>target</th>\
        <th>layers</th><th>heads</th><th>fired at</th><th>PF_mass (in scope)</th><th>bound 8.3 (mean)</th><th>target</th><th>result</th></tr>");
    for a in &report.rules {
        let scoped: Vec<_> = a.report.heads.iter().filter(|x| x.in_scope).collect();
        let bound = (!scoped.is_empty())
            .then(|| scoped.iter().map(|x| x.pf_bound).sum::<f64>() / scoped.len() as f64);
        let result = match a.report.pass {
            Some(true) => "<span class=\"pass\">pass</span>".to_string(),
            Some(false) => "<span class=\"fail\">fail</span>".to_string(),
            None if a.report.fired.is_empty() => "did not fire".to_string(),
            None => "bias rule (no PF target)".to_string(),
        };
        h.push_str(&format!(
            "<tr><td><b>{}</b><br>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.id),
            esc(&a.description),
            if a.enabled { "on" } else { "off" },
            esc(&a.trigger),
            esc(&a.target),
            esc(&a.layers),
            esc(&a.heads),
            if a.report.fired.is_empty() { "-".to_string() } else { a.report.fired.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ") },
            a.report.pf_mass.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()),
            bound.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into()),
            a.report.target_pf.map(|v| format!("{v}")).unwrap_or_else(|| "-".into()),
            result
        ));
    }
    h.push_str("</table>");
    h.push_str("<h2>Rules</h2>");
    for a in &report.rules {
        h.push_str(&format!(
            "<h3>{}</h3><pre>{}</pre>",
            esc(&a.id),
            esc(&a.text)
        ));
        h.push_str("<p>PF_mass per layer and head (grey: out of scope; dashed: bound 8.3 at the ρ used; red line: the rule's target):</p>");
        h.push_str(&pf_svg(a));
    }
    if !figures.is_empty() {
        h.push_str("<h2>Figures</h2>");
        for (title, png) in figures {
            h.push_str(&format!(
                "<figure><img alt=\"{}\" src=\"data:image/png;base64,{}\" style=\"image-rendering:pixelated;max-width:480px\"><figcaption>{}</figcaption></figure>",
                esc(title),
                base64(png),
                esc(title)
            ));
        }
    }
    h.push_str("<h2>Audit log</h2><table><tr><th>#</th><th>time (Unix)</th><th>action</th><th>rule</th><th>model SHA-256</th><th>corpus SHA-256</th><th>entry hash</th></tr>");
    for e in &report.log.entries {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td class=\"hash\">{}</td><td class=\"hash\">{}</td><td class=\"hash\">{}</td></tr>",
            e.seq,
            e.time_unix,
            e.action,
            esc(&e.rule_id),
            esc(&short16(&e.model_sha256)),
            esc(&short16(&e.corpus_sha256)),
            esc(&short16(&e.hash))
        ));
    }
    h.push_str("</table><p>Verify with <code>localist audit verify REPORT.json</code>: it recomputes the report's hash, the log's hash chain and the model's and corpus's hashes.</p></body></html>");
    h
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
