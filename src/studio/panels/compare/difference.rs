//! The difference view: side B minus side A, cell by cell, for the shown layer and head (or the
//! mean of the layer's heads), on a diverging colormap centred on zero (red: B attends more,
//! blue: A attends more, white: the same), with token labels on both axes and a legend that
//! says what the colours mean and the scale.

use egui::{Sense, TextureHandle, Vec2};

use super::side_matrix;
use crate::engine::compare::CompareView;
use crate::engine::Capture;
use crate::studio::panels::attention::axes::{colour_bar, key_labels, printable, token_axis};
use crate::studio::panels::attention::block_strips;

/// The blue end of the diverging colormap (A attends more), ColorBrewer RdBu.
const BLUE: [u8; 3] = [33, 102, 172];
/// The middle (no difference).
const WHITE: [u8; 3] = [247, 247, 247];
/// The red end (B attends more).
const RED: [u8; 3] = [178, 24, 43];

/// B minus A for `layer` and `head` (`None`: the mean of the layer's heads), row-major
/// `t` × `t`; `None` when the two sides do not have the same number of tokens.
pub fn difference_matrix(
    a: &Capture,
    b: &Capture,
    layer: usize,
    head: Option<usize>,
) -> Option<Vec<f32>> {
    if a.len() != b.len() {
        return None;
    }
    let (ma, mb) = (side_matrix(a, layer, head), side_matrix(b, layer, head));
    (ma.len() == mb.len()).then(|| mb.iter().zip(&ma).map(|(y, x)| y - x).collect())
}

/// The colour of a difference `d` on a scale of ±`scale`: blue below zero, white at zero, red
/// above, linear in between.
pub fn diverging(d: f32, scale: f32) -> [u8; 3] {
    let x = if scale > 0.0 {
        (d / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (end, w) = if x < 0.0 { (BLUE, -x) } else { (RED, x) };
    let mix = |k: usize| {
        let (m, e) = (WHITE[k] as f32, end[k] as f32);
        (m + (e - m) * w).round() as u8
    };
    [mix(0), mix(1), mix(2)]
}

/// The colour scale: the largest |B − A| (at least 0.01, so noise is not blown up).
pub fn scale_of(diff: &[f32]) -> f32 {
    diff.iter().fold(0.01f32, |m, d| m.max(d.abs()))
}

/// A texture of the difference (masked cells dark grey, `mask` as
/// [`crate::engine::AttentionLayout::masked`] reads it).
pub(super) fn texture(
    ctx: &egui::Context,
    diff: &[f32],
    t: usize,
    mask: (bool, Option<usize>),
    scale: f32,
) -> TextureHandle {
    super::maps::matrix_texture(ctx, "compare-difference", diff, t, mask, |d| {
        diverging(d, scale)
    })
}

/// What the colours mean: blue, white, red with the scale.
pub(super) fn legend(ui: &mut egui::Ui, scale: f32) {
    ui.horizontal_wrapped(|ui| {
        ui.label(format!("−{scale:.2}"));
        colour_bar(ui, |x| diverging((2.0 * x - 1.0) * scale, scale));
        ui.label(format!("+{scale:.2}"));
        ui.label(
            "attention weight of B minus A: red, B attends more; blue, A attends more; white, \
             the same (dark grey: masked)",
        );
    });
}

/// Draw the difference with token labels on both axes and a hover readout; `tex` is the
/// texture of `diff`.
pub(super) fn show(
    ui: &mut egui::Ui,
    tex: &TextureHandle,
    diff: &[f32],
    views: [&CompareView; 2],
    side: f32,
) -> egui::Rect {
    let [a, b] = views;
    let t = a.capture.len().max(1);
    let tokens: Vec<String> = a.tokens.iter().map(|s| printable(s)).collect();
    let mut rect = egui::Rect::NOTHING;
    ui.add_space(6.0);
    ui.horizontal(|ui| {
        token_axis(ui, &tokens, side);
        let resp = ui.add(
            egui::Image::new(tex)
                .fit_to_exact_size(Vec2::splat(side))
                .sense(Sense::hover()),
        );
        rect = resp.rect;
        key_labels(ui, resp.rect, &tokens);
        // Side A's blocks along both axes, as on every heatmap.
        block_strips(ui, resp.rect, &a.capture);
        if let Some(pos) = resp.hover_pos() {
            let rel = (pos - resp.rect.min) / resp.rect.size();
            let i = ((rel.y * t as f32) as usize).min(t - 1);
            let j = ((rel.x * t as f32) as usize).min(t - 1);
            let d = diff.get(i * t + j).copied().unwrap_or(0.0);
            let tok = |k: usize| {
                a.tokens
                    .get(k)
                    .map(|s| format!("{s:?}"))
                    .unwrap_or_default()
            };
            resp.on_hover_text_at_pointer(format!(
                "query {i} {}  key {j} {}\nB − A = {d:+.4}\nA: {}\nB: {}",
                tok(i),
                tok(j),
                a.label,
                b.label
            ));
        }
    });
    ui.add_space(64.0);
    rect
}
