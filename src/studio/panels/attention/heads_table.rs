//! The heads overview: one row per layer and head with its summaries over the text (mean
//! entropy, mean off-block mass ε, the share of queries whose margin is positive, and the block
//! that draws most attention), sortable by any column, coloured by value, and a click opens
//! that head large. It reads only the per-query summaries every capture keeps, so it works for
//! SmolLM2's 270 heads at 2,048 tokens as for the tiny model's 8.

use egui::{Color32, RichText};

use crate::engine::figures::Colormap;
use crate::engine::protocol::RuleReport;
use crate::engine::{Capture, HeadCapture};

/// A column of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Column {
    /// Layer, then head.
    #[default]
    Position,
    /// Mean entropy in bits.
    Entropy,
    /// Mean off-block mass ε.
    Epsilon,
    /// Share of queries with a positive margin.
    InBlock,
    /// Mean mass of the block drawing most attention.
    TopBlock,
    /// Mean PF_mass of the rules in force that act on the head.
    Pf,
}

/// The table's sort order: a column and whether descending.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sort {
    /// Sorted by.
    pub column: Column,
    /// Largest first.
    pub descending: bool,
}

/// One head's summaries.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadRow {
    /// Layer.
    pub layer: usize,
    /// Head.
    pub head: usize,
    /// Mean entropy, bits.
    pub entropy: f64,
    /// Mean ε.
    pub epsilon: f64,
    /// Share of queries whose margin is positive (every relevant key above every other).
    pub in_block: f64,
    /// The block with the largest mean mass, and that mass.
    pub top_block: (usize, f64),
    /// Mean PF_mass over the rules in force that act on this head and fired on the text
    /// (`None`: no rule acts on it).
    pub pf: Option<f64>,
}

/// The mean PF_mass of head `(layer, head)` over the rules switched on that act on it and
/// fired with a target on the text; `None` when none does.
pub fn head_pf(reports: &[RuleReport], layer: usize, head: usize) -> Option<f64> {
    let pfs: Vec<f64> = reports
        .iter()
        .filter(|r| r.enabled)
        .flat_map(|r| &r.heads)
        .filter(|h| h.in_scope && h.layer == layer && h.head == head)
        .map(|h| h.pf_mass)
        .collect();
    (!pfs.is_empty()).then(|| pfs.iter().sum::<f64>() / pfs.len() as f64)
}

fn mean(v: &[f32]) -> f64 {
    let finite: Vec<f64> = v
        .iter()
        .map(|&x| f64::from(x))
        .filter(|x| x.is_finite())
        .collect();
    if finite.is_empty() {
        0.0
    } else {
        finite.iter().sum::<f64>() / finite.len() as f64
    }
}

/// The summaries of one head of `cap`.
pub fn head_row(cap: &Capture, hc: &HeadCapture) -> HeadRow {
    let k = cap.num_blocks().max(1);
    let rows = (hc.block_mass.len() / k).max(1);
    let mut masses = vec![0.0f64; k];
    for r in hc.block_mass.chunks(k) {
        for (m, &v) in masses.iter_mut().zip(r) {
            *m += f64::from(v) / rows as f64;
        }
    }
    let top_block = masses
        .iter()
        .copied()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0, 0.0));
    let positive = hc.margin.iter().filter(|&&m| m > 0.0).count();
    HeadRow {
        layer: hc.layer,
        head: hc.head,
        entropy: mean(&hc.entropy_bits),
        epsilon: mean(&hc.off_block_mass),
        in_block: positive as f64 / hc.margin.len().max(1) as f64,
        top_block,
        pf: None,
    }
}

/// Every head's row, in `sort` order.
pub fn sorted_rows(cap: &Capture, sort: Sort) -> Vec<HeadRow> {
    sorted_rows_with_pf(cap, &[], sort)
}

/// Every head's row with its PF under the rules whose `reports` are given, in `sort` order.
pub fn sorted_rows_with_pf(cap: &Capture, reports: &[RuleReport], sort: Sort) -> Vec<HeadRow> {
    let mut rows: Vec<HeadRow> = cap
        .heads
        .iter()
        .map(|hc| HeadRow {
            pf: head_pf(reports, hc.layer, hc.head),
            ..head_row(cap, hc)
        })
        .collect();
    let key = |r: &HeadRow| -> f64 {
        match sort.column {
            Column::Position => (r.layer * 10_000 + r.head) as f64,
            Column::Entropy => r.entropy,
            Column::Epsilon => r.epsilon,
            Column::InBlock => r.in_block,
            Column::TopBlock => r.top_block.1,
            Column::Pf => r.pf.unwrap_or(-1.0),
        }
    };
    rows.sort_by(|a, b| key(a).total_cmp(&key(b)));
    if sort.descending {
        rows.reverse();
    }
    rows
}

/// Draw the table (with a PF column when rules are in force: `reports` of the current text);
/// returns the head clicked.
pub fn show(
    ui: &mut egui::Ui,
    cap: &Capture,
    reports: &[RuleReport],
    sort: &mut Sort,
    cm: Colormap,
    focus: Option<(usize, usize)>,
) -> Option<(usize, usize)> {
    let rows = sorted_rows_with_pf(cap, reports, *sort);
    let with_pf = !reports.is_empty();
    let max_entropy = rows.iter().map(|r| r.entropy).fold(1e-9, f64::max);
    let mut clicked = None;
    let header = |ui: &mut egui::Ui, sort: &mut Sort, col: Column, label: &str, tip: &str| {
        let mark = match (sort.column == col, sort.descending) {
            (true, true) => " v",
            (true, false) => " ^",
            _ => "",
        };
        if ui
            .button(RichText::new(format!("{label}{mark}")).strong())
            .on_hover_text(format!("{tip} Click to sort; again to reverse."))
            .clicked()
        {
            *sort = Sort {
                column: col,
                descending: sort.column != col || !sort.descending,
            };
        }
    };
    egui::ScrollArea::both()
        .id_salt("heads_table")
        .max_height(ui.available_height().max(240.0))
        .show(ui, |ui| {
            egui::Grid::new("heads_table_grid")
                .striped(true)
                .spacing([14.0, 4.0])
                .show(ui, |ui| {
                    header(ui, sort, Column::Position, "layer.head", "Where the head is.");
                    header(ui, sort, Column::Entropy, "entropy (bits)", "Mean attention entropy over the text's queries: low is focused.");
                    header(ui, sort, Column::Epsilon, "ε", "Mean off-block mass: the share of attention outside each query's relevant block (0 is fully local).");
                    header(ui, sort, Column::InBlock, "queries in block", "Share of queries whose every relevant key scores above every other key (margin > 0).");
                    header(ui, sort, Column::TopBlock, "most attended block", "The block that draws the most attention on average, and its mean mass.");
                    if with_pf {
                        header(ui, sort, Column::Pf, "PF (rules)", "Mean PF_mass of the rules in force that act on this head and fired on the text: the attention mass on their targets (0 to 1).");
                    }
                    ui.end_row();
                    for r in &rows {
                        let here = focus == Some((r.layer, r.head));
                        let name = format!("{}.{}", r.layer, r.head);
                        if ui.selectable_label(here, name).on_hover_text("Open this head large").clicked() {
                            clicked = Some((r.layer, r.head));
                        }
                        cell(ui, cm, r.entropy / max_entropy, format!("{:.3}", r.entropy));
                        cell(ui, cm, r.epsilon, format!("{:.4}", r.epsilon));
                        cell(ui, cm, r.in_block, format!("{:.0}%", r.in_block * 100.0));
                        let block = cap.block_names.get(r.top_block.0).cloned().unwrap_or_default();
                        ui.label(format!("{block} ({:.2})", r.top_block.1));
                        if with_pf {
                            match r.pf {
                                Some(pf) => cell(ui, cm, pf, format!("{pf:.3}")),
                                None => {
                                    ui.label("-").on_hover_text("No rule in force acts on this head (or none fired on the text)");
                                }
                            }
                        }
                        ui.end_row();
                    }
                });
        });
    clicked
}

/// A number on a swatch of the colormap at `t` (0..1).
fn cell(ui: &mut egui::Ui, cm: Colormap, t: f64, text: String) {
    let [r, g, b] = cm.rgb(t.clamp(0.0, 1.0) as f32);
    let bg = Color32::from_rgb(r, g, b);
    let light = u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114 > 128_000;
    let fg = if light {
        Color32::BLACK
    } else {
        Color32::WHITE
    };
    egui::Frame::new()
        .fill(bg)
        .inner_margin(egui::Margin::symmetric(6, 1))
        .show(ui, |ui| ui.label(RichText::new(text).color(fg).monospace()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DialSetting;

    fn head(layer: usize, head: usize, entropy: f32, eps: f32) -> HeadCapture {
        HeadCapture {
            layer,
            head,
            attention: Vec::new(),
            block_mass: vec![0.2, 0.8, 0.6, 0.4],
            off_block_mass: vec![eps, eps],
            entropy_bits: vec![entropy, entropy],
            margin: vec![1.0, -1.0],
        }
    }

    #[test]
    fn rows_summarise_and_sort() {
        let cap = Capture {
            ids: vec![1, 2],
            key_blocks: vec![0, 1],
            relevant_blocks: vec![0, 1],
            block_names: vec!["a".into(), "b".into()],
            num_layers: 1,
            num_heads: 3,
            heads: vec![
                head(0, 0, 2.0, 0.5),
                head(0, 1, 0.5, 0.1),
                head(0, 2, 1.0, 0.9),
            ],
            logits: Vec::new(),
            dial: DialSetting::default(),
            causal: true,
            windows: Vec::new(),
            layout: None,
            block_stride: 1,
            weak_map: None,
        };
        let r = head_row(&cap, &cap.heads[0]);
        assert_eq!(r.top_block.0, 1);
        assert!((r.top_block.1 - 0.6).abs() < 1e-6 && (r.in_block - 0.5).abs() < 1e-12);
        let by = |column, descending| {
            sorted_rows(&cap, Sort { column, descending })
                .iter()
                .map(|r| r.head)
                .collect::<Vec<_>>()
        };
        assert_eq!(by(Column::Entropy, false), [1, 2, 0]);
        assert_eq!(by(Column::Epsilon, true), [2, 0, 1]);
        assert_eq!(by(Column::Position, false), [0, 1, 2]);
    }
}
