//! The labels around the Attention panel's heatmaps: query tokens down the left and key tokens
//! (or block names) under an enlarged map, and the colormap legend.

use egui::{Color32, Sense, Vec2};

use crate::engine::figures::Colormap;
use crate::engine::Capture;

/// Width of the query labels' column: eight monospace characters at 12 points.
pub(crate) const TOKEN_AXIS_WIDTH: f32 = 64.0;

/// Query labels down the left of an enlarged heatmap (one per row, when they fit).
pub(crate) fn token_axis(ui: &mut egui::Ui, tokens: &[String], side: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(TOKEN_AXIS_WIDTH, side), Sense::hover());
    let n = tokens.len().max(1);
    let row_h = side / n as f32;
    if row_h < 7.0 {
        return;
    }
    let font = egui::FontId::monospace((row_h * 0.8).min(12.0));
    for (i, t) in tokens.iter().enumerate() {
        let y = rect.top() + (i as f32 + 0.5) * row_h;
        ui.painter().text(
            egui::pos2(rect.right() - 2.0, y),
            egui::Align2::RIGHT_CENTER,
            printable(t),
            font.clone(),
            ui.visuals().text_color(),
        );
    }
}

/// Key labels (one per column: tokens, or a pooled grid's cells) or block names, written
/// vertically under an enlarged heatmap.
pub(super) fn key_axis(
    ui: &mut egui::Ui,
    resp: &egui::Response,
    cap: &Capture,
    keys: &[String],
    aggregated: bool,
) {
    let labels: Vec<String> = if aggregated {
        cap.block_names.clone()
    } else {
        keys.iter().map(|t| printable(t)).collect()
    };
    key_labels(ui, resp.rect, &labels);
}

/// `labels` written vertically under `rect`, one per column, when they fit.
pub(crate) fn key_labels(ui: &mut egui::Ui, rect: egui::Rect, labels: &[String]) {
    let n = labels.len().max(1);
    let col_w = rect.width() / n as f32;
    if col_w < 7.0 {
        return;
    }
    let font = egui::FontId::monospace((col_w * 0.8).min(12.0));
    let colour = ui.visuals().text_color();
    for (j, t) in labels.iter().enumerate() {
        let x = rect.left() + (j as f32 + 0.5) * col_w;
        let galley = ui.painter().layout_no_wrap(t.clone(), font.clone(), colour);
        let pos = egui::pos2(
            x - galley.size().y / 2.0,
            rect.bottom() + 4.0 + galley.size().x,
        );
        ui.painter().add(
            egui::epaint::TextShape::new(pos, galley, colour)
                .with_angle(-std::f32::consts::FRAC_PI_2),
        );
    }
}

/// A token as it can be drawn: a newline as \n, a space as a middle dot, at most 8 chars.
pub(crate) fn printable(t: &str) -> String {
    match t {
        "\n" => "\\n".into(),
        " " => "·".into(),
        _ => t.chars().take(8).collect(),
    }
}

/// The colormap from 0 to 1, with what it encodes.
pub(crate) fn legend(ui: &mut egui::Ui, cm: Colormap) {
    ui.horizontal(|ui| {
        ui.label("0");
        colour_bar(ui, |x| cm.rgb(x));
        ui.label("1  attention weight (dark grey: masked)");
    });
}

/// A 160 × 12 pt bar of 32 steps coloured by `colour_at(x)` for x from 0 to 1.
pub(crate) fn colour_bar(ui: &mut egui::Ui, colour_at: impl Fn(f32) -> [u8; 3]) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(160.0, 12.0), Sense::hover());
    let n = 32;
    for k in 0..n {
        let [r, g, b] = colour_at(k as f32 / (n - 1) as f32);
        let x0 = rect.left() + rect.width() * k as f32 / n as f32;
        let x1 = rect.left() + rect.width() * (k + 1) as f32 / n as f32;
        ui.painter().rect_filled(
            egui::Rect::from_min_max(egui::pos2(x0, rect.top()), egui::pos2(x1, rect.bottom())),
            0.0,
            Color32::from_rgb(r, g, b),
        );
    }
}
