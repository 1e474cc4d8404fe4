//! The audit report as one self-contained HTML page: the summary, the rule-to-block mapping,
//! each rule's PF bar chart (inline SVG), the figures (PNG data URIs) and the log.

use crate::engine::audit::report::{AuditReport, RuleAudit};

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

/// A figure's markup, in the order written: before its alt text, before its base64 PNG,
/// before its caption, and after the caption. `audit verify` reads the page back with the
/// same pieces ([`crate::engine::audit::page`]), so a figure holds nothing else.
pub(super) const FIGURE_OPEN: &str = "<figure><img alt=\"";
pub(super) const FIGURE_SRC: &str = "\" src=\"data:image/png;base64,";
pub(super) const FIGURE_CAPTION: &str =
    "\" style=\"image-rendering:pixelated;max-width:480px\"><figcaption>";
pub(super) const FIGURE_CLOSE: &str = "</figcaption></figure>";
/// The headings around the figures.
pub(super) const FIGURES_HEADING: &str = "<h2>Figures</h2>";
pub(super) const LOG_HEADING: &str = "<h2>Audit log</h2>";

pub(super) fn esc(s: &str) -> String {
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
    h.push_str(&summary_html(report));
    h.push_str(&mapping_html(report));
    h.push_str(&test_set_html(report));
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
        h.push_str(FIGURES_HEADING);
        for (title, png) in figures {
            let (title, png) = (esc(title), base64(png));
            h.push_str(&format!(
                "{FIGURE_OPEN}{title}{FIGURE_SRC}{png}{FIGURE_CAPTION}{title}{FIGURE_CLOSE}"
            ));
        }
    }
    h.push_str(&log_html(report));
    // The footer as each version wrote it, so that an older page still reads as its JSON.
    let checked = if report.version >= 4 {
        ", each figure's picture checked against the SHA-256 the JSON signs"
    } else {
        " (figures aside)"
    };
    h.push_str(&format!("</table><p>Verify with <code>localist audit verify REPORT.json</code>: it recomputes the report's hash, the log's hash chain and the model's and corpus's hashes, and renders this page again from the signed JSON to compare it{checked}.</p></body></html>"));
    h
}

/// The summary table: model, corpus, dial, text and hashes.
fn summary_html(report: &AuditReport) -> String {
    format!(
        "<table><tr><th>model</th><td>{}</td></tr><tr><th>model SHA-256</th><td class=\"hash\">{}</td></tr>\
         <tr><th>corpus</th><td>{}</td></tr><tr><th>corpus SHA-256</th><td class=\"hash\">{}</td></tr>\
         <tr><th>dial</th><td>mode {}, λ = {:.3}, τ = {:.2}, schedule {:?}</td></tr>\
         <tr><th>text</th><td><code>{}</code></td></tr><tr><th>generated</th><td>{} (UTC)</td></tr>\
         <tr><th>report SHA-256</th><td class=\"hash\">{}</td></tr>\
         <tr><th>signed by (Ed25519 public key)</th><td class=\"hash\">{}</td></tr>\
         <tr><th>signature</th><td class=\"hash\">{}</td></tr></table>",
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
        esc(&report.generated_label()),
        esc(&report.report_sha256),
        esc(if report.public_key.is_empty() { "not signed" } else { &report.public_key }),
        esc(&report.signature),
    )
}

/// The rule-to-block mapping table.
fn mapping_html(report: &AuditReport) -> String {
    let mut h = String::from("<h2>Rule-to-block mapping</h2><table><tr><th>rule</th><th>on</th><th>trigger block</th><th>target</th>\
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
    h
}

/// The rules' pass/fail over a test set, or a line saying none was measured.
fn test_set_html(report: &AuditReport) -> String {
    let Some(t) = &report.test_set else {
        return "<h2>Pass/fail over a test set</h2><p>Not measured under this model, dial and \
                rules: the table above is the one text only.</p>"
            .into();
    };
    let mut h = format!(
        "<h2>Pass/fail over a test set</h2><p>{} ({} in all), under the dial above.</p>\
         <table><tr><th>rule</th><th>on</th><th>fired on</th><th>pass rate</th>\
         <th>mean PF_mass</th><th>target</th><th>result</th></tr>",
        esc(&t.described),
        t.sentences
    );
    for r in &t.rows {
        let result = match (r.enabled, r.target, r.pass_rate) {
            (false, _, _) => "off".to_string(),
            (_, None, _) => "bias rule (no PF target)".to_string(),
            (_, Some(_), None) => "did not fire".to_string(),
            (_, Some(_), Some(p)) => {
                let passed = (p * r.fired_on as f64).round() as usize;
                let class = if p >= 1.0 { "pass" } else { "fail" };
                format!(
                    "<span class=\"{class}\">passed on {passed} of {}</span>",
                    r.fired_on
                )
            }
        };
        let opt = |v: Option<f64>, digits: usize| {
            v.map(|v| format!("{v:.digits$}"))
                .unwrap_or_else(|| "-".into())
        };
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.id),
            if r.enabled { "on" } else { "off" },
            r.fired_on,
            t.sentences,
            r.pass_rate.map(|p| format!("{:.0}%", p * 100.0)).unwrap_or_else(|| "-".into()),
            opt(r.pf_mass, 3),
            r.target.map(|v| format!("{v}")).unwrap_or_else(|| "-".into()),
            result
        ));
    }
    h.push_str("</table>");
    h
}

/// The log's heading and rows (the caller closes the table).
fn log_html(report: &AuditReport) -> String {
    let mut h = String::from(LOG_HEADING);
    h.push_str("<table><tr><th>#</th><th>time (UTC)</th><th>action</th><th>rule</th><th>model SHA-256</th><th>corpus SHA-256</th><th>entry hash</th></tr>");
    for e in &report.log.entries {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td class=\"hash\">{}</td><td class=\"hash\">{}</td><td class=\"hash\">{}</td></tr>",
            e.seq,
            esc(&e.time_label()),
            e.action,
            esc(&e.rule_id),
            esc(&short16(&e.model_sha256)),
            esc(&short16(&e.corpus_sha256)),
            esc(&short16(&e.hash))
        ));
    }
    h
}
