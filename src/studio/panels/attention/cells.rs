//! What the Attention panel draws over and around a heatmap cell by cell: the grid's shape, the
//! axis labels (tokens, or a pooled grid's first tokens), the hovered row and column, the block
//! colour bars, and the hover text.

use egui::Color32;

use crate::engine::{Capture, HeadCapture};

/// Outline the hovered cell's row and column, so both tokens can be followed to the axes.
pub(super) fn highlight(
    ui: &egui::Ui,
    rect: egui::Rect,
    (rows, cols): (usize, usize),
    rel: (f32, f32),
) {
    let (rows, cols) = (rows.max(1) as f32, cols.max(1) as f32);
    let r = (rel.1 * rows).floor().clamp(0.0, rows - 1.0);
    let c = (rel.0 * cols).floor().clamp(0.0, cols - 1.0);
    let (h, w) = (rect.height() / rows, rect.width() / cols);
    let stroke = egui::Stroke::new(1.0, Color32::from_white_alpha(170));
    let row = egui::Rect::from_min_size(
        egui::pos2(rect.left(), rect.top() + r * h),
        egui::vec2(rect.width(), h),
    );
    let col = egui::Rect::from_min_size(
        egui::pos2(rect.left() + c * w, rect.top()),
        egui::vec2(w, rect.height()),
    );
    let p = ui.painter();
    p.rect_stroke(row, 0.0, stroke, egui::StrokeKind::Inside);
    p.rect_stroke(col, 0.0, stroke, egui::StrokeKind::Inside);
}

/// A categorical colour per block (the same block, the same colour, in every view).
pub(super) fn block_colour(b: usize) -> Color32 {
    const PALETTE: [(u8, u8, u8); 10] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ];
    let (r, g, b) = PALETTE[b % PALETTE.len()];
    Color32::from_rgb(r, g, b)
}

/// The blocks along an enlarged heatmap: left of each row a bar in the colour of the query's
/// relevant block r(i), above each column one in the colour of the key's block b(x_j) (a pooled
/// cell takes its first token's), so where attention stays inside its block shows at a glance.
pub(in crate::studio::panels) fn block_strips(ui: &egui::Ui, rect: egui::Rect, cap: &Capture) {
    block_strips_sized(ui, rect, cap, 4.0);
}

/// [`block_strips`] `thick` points wide, 1 point off the map (a thumbnail's are thinner).
pub(super) fn block_strips_sized(ui: &egui::Ui, rect: egui::Rect, cap: &Capture, thick: f32) {
    let lay = cap.attention_layout();
    let (rows, cols) = lay.grid();
    let (h, w) = (
        rect.height() / rows.max(1) as f32,
        rect.width() / cols.max(1) as f32,
    );
    let p = ui.painter();
    for r in 0..rows {
        let (i, _) = lay.origin(r, 0);
        if let Some(&b) = cap.relevant_blocks.get(i) {
            let y = rect.top() + r as f32 * h;
            p.rect_filled(
                egui::Rect::from_min_size(
                    egui::pos2(rect.left() - thick - 1.0, y),
                    egui::vec2(thick, h),
                ),
                0.0,
                block_colour(b),
            );
        }
    }
    for c in 0..cols {
        let (_, j) = lay.origin(0, c);
        if let Some(&b) = cap.key_blocks.get(j) {
            let x = rect.left() + c as f32 * w;
            p.rect_filled(
                egui::Rect::from_min_size(
                    egui::pos2(x, rect.top() - thick - 1.0),
                    egui::vec2(w, thick),
                ),
                0.0,
                block_colour(b),
            );
        }
    }
}

/// Rows and columns of a heatmap: the attention grid (T × T, or a long text's pooled grid),
/// or block masses (rows × K).
pub(super) fn grid_shape(cap: &Capture, aggregated: bool) -> (usize, usize) {
    if aggregated {
        (cap.block_rows(), cap.num_blocks())
    } else {
        cap.attention_layout().grid()
    }
}

/// The labels of a heatmap's rows (`rows`) or key columns: one token per position, or for a
/// pooled grid the first token of each cell with its position.
pub(super) fn axis_labels(
    cap: &Capture,
    tokens: &[String],
    aggregated: bool,
    rows: bool,
) -> Vec<String> {
    let lay = cap.attention_layout();
    let (stride, start, n) = match (aggregated, rows) {
        (true, true) => (cap.block_stride.max(1), 0, cap.block_rows()),
        (_, true) => (lay.stride, lay.rows.0, lay.grid().0),
        (_, false) => (lay.stride, lay.keys.0, lay.grid().1),
    };
    if stride == 1 && start == 0 && n == tokens.len() {
        return tokens.to_vec();
    }
    (0..n)
        .map(|c| {
            let p = start + c * stride;
            let tok = tokens.get(p).map(String::as_str).unwrap_or_default();
            if stride == 1 {
                tok.to_string()
            } else {
                format!("{p}:{tok}")
            }
        })
        .collect()
}

/// What the cell under the pointer (`rel`: 0..1 across and down) holds.
pub(super) fn hover_text(
    cap: &Capture,
    hc: &HeadCapture,
    tokens: &[String],
    aggregated: bool,
    rel: (f32, f32),
) -> String {
    let (rows, cols) = grid_shape(cap, aggregated);
    let r = ((rel.1 * rows as f32) as usize).min(rows.saturating_sub(1));
    let c = ((rel.0 * cols as f32) as usize).min(cols.saturating_sub(1));
    let block = |b: Option<&usize>| {
        b.and_then(|&b| cap.block_names.get(b))
            .cloned()
            .unwrap_or_default()
    };
    let tok = |k: usize| tokens.get(k).map(|s| format!("{s:?}")).unwrap_or_default();
    let t = cap.len();
    if aggregated {
        let bs = cap.block_stride.max(1);
        let (i0, i1) = (r * bs, ((r + 1) * bs).min(t));
        let mass = hc.block_mass.get(r * cols + c).copied().unwrap_or(0.0);
        return if bs == 1 {
            format!(
                "query {r} {} (relevant block: {})\nblock {}: mass {mass:.4}",
                tok(r),
                block(cap.relevant_blocks.get(r)),
                block(Some(&c)),
            )
        } else {
            format!(
                "queries {i0}–{} (from {})\nblock {}: mean mass {mass:.4}",
                i1 - 1,
                tok(i0),
                block(Some(&c))
            )
        };
    }
    let lay = cap.attention_layout();
    let (i, j) = lay.origin(r, c);
    let w = hc.attention.get(r * cols + c).copied().unwrap_or(0.0);
    if lay.masked(r, c, (cap.causal, None)) {
        format!("query {i} {} cannot see key {j} (causal mask)", tok(i))
    } else if let Some(w) = cap.window(hc.layer).filter(|_| cap.masked(hc.layer, r, c)) {
        format!(
            "query {i} {} cannot see key {j}: layer {} is a local one, whose queries see \
             only the keys within {w} positions",
            tok(i),
            hc.layer
        )
    } else if lay.stride > 1 {
        let s = lay.stride;
        format!(
            "mean row mass {w:.4}\nqueries {i}–{} (from {})\nkeys {j}–{} (from {})",
            (i + s).min(lay.rows.1) - 1,
            tok(i),
            (j + s).min(lay.keys.1) - 1,
            tok(j)
        )
    } else {
        format!(
            "weight {w:.4}\nquery {i} {} [{}]\nkey {j} {} [{}]",
            tok(i),
            block(cap.relevant_blocks.get(i)),
            tok(j),
            block(cap.key_blocks.get(j)),
        )
    }
}

/// The mean of a head's per-query values (0 for none).
pub(super) fn mean(v: &[f32]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
    }
}
