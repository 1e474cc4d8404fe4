//! The audit report's figures: for each rule that fired, a heatmap of its first in-scope head
//! on the report's text.

use crate::engine::audit::AuditReport;
use crate::engine::figures::colormap::Colormap;
use crate::engine::figures::heatmap::head_png;
use crate::engine::Capture;

/// A figure: its caption and PNG bytes.
pub type Figure = (String, Vec<u8>);

/// For each rule that fired, a heatmap of its first in-scope head on the report's text (each
/// cell 6 × 6 pixels).
pub fn report_figures(report: &AuditReport, cap: &Capture, colormap: Colormap) -> Vec<Figure> {
    let mut figures = Vec::new();
    for a in &report.rules {
        let Some(hf) = a.report.heads.iter().find(|h| h.in_scope) else {
            continue;
        };
        if let Some(hc) = cap.head(hf.layer, hf.head) {
            if let Ok(png) = head_png(cap, hc, colormap, false, 6) {
                figures.push((
                    format!(
                        "Rule {}: attention of layer {} head {} on the report's text (rows are queries, columns keys), with the rules in force",
                        a.id, hf.layer, hf.head
                    ),
                    png,
                ));
            }
        }
    }
    figures
}
