//! The Compare panel, for teaching: the same text under two configurations side by side —
//! the current model at λ = 0 and λ = 1 by default, or two checkpoints (the bundled λ_train = 0
//! and λ_train = 1 models show distributed against localist encodings). Hovering a cell on
//! either side marks the same cell on the other and shows both weights.

mod controls;
mod difference;
mod maps;

use std::path::PathBuf;

use egui::{Color32, Sense, TextureHandle, Vec2};

use crate::engine::compare::{CompareSide, CompareView};
use crate::engine::figures::Colormap;
use crate::studio::gpu_heatmap;
use crate::studio::state::{CompareState, StudioState};

use super::attention::axes::{key_labels, printable, token_axis, TOKEN_AXIS_WIDTH};
use super::attention::block_strips;
/// B minus A and its colours (defined in `compare/difference.rs`).
pub use difference::{difference_matrix, diverging, scale_of};
use maps::texture;
/// One side's matrix and statistics (defined in `compare/maps.rs`).
pub use maps::{side_matrix, side_stats};

/// One side's heatmap: the WGSL shader's values when wgpu renders, else a CPU texture.
#[derive(Clone)]
pub enum SideMap {
    /// A CPU texture.
    Texture(TextureHandle),
    /// Values for the shader.
    Gpu(gpu_heatmap::HeatmapData),
}

/// What the cached heatmaps were built for: views generation, layer, head, colormap.
type CacheKey = (u64, usize, Option<usize>, Colormap);

/// The two sides' heatmaps, rebuilt when the views, the layer/head or the colormap change.
#[derive(Default)]
pub struct CompareCache {
    key: Option<CacheKey>,
    textures: [Option<SideMap>; 2],
    /// The difference view's texture and what it was built for.
    diff: Option<(CacheKey, TextureHandle)>,
}

/// Draw the panel; `models` are the checkpoints offered besides the current model.
pub fn show(
    ui: &mut egui::Ui,
    state: &mut StudioState,
    cache: &mut CompareCache,
    models: &[(String, PathBuf)],
) {
    ui.label(
        "The same text under two configurations. Hover a cell on either side: the other side \
         marks the same query and key, and the tooltip gives both weights.",
    );
    controls::configure(ui, state, models);
    let Some((_, _, views)) = &state.compare.views else {
        ui.label("capturing…");
        return;
    };
    let views = views.clone();
    if let Some(why) = state.stale_compare() {
        super::attention::stale_note(ui, &why, "both sides");
    }
    let (layers, heads) = views
        .iter()
        .filter_map(|v| v.as_ref().ok())
        .map(|v| (v.capture.num_layers, v.capture.num_heads))
        .fold((usize::MAX, usize::MAX), |(l, h), (a, b)| {
            (l.min(a), h.min(b))
        });
    if layers == usize::MAX {
        for v in &views {
            if let Err(e) = v {
                ui.colored_label(Color32::LIGHT_RED, e);
            }
        }
        return;
    }
    let cmp = &mut state.compare;
    cmp.layer = cmp.layer.min(layers.saturating_sub(1));
    cmp.head = cmp.head.filter(|&h| h < heads);
    ui.separator();
    layer_head_choice(ui, cmp, layers, heads);
    let key = (cmp.generation, cmp.layer, cmp.head, state.colormap);
    if cmp.difference {
        show_difference(ui, cache, key, &views);
        return;
    }
    super::attention::axes::legend(ui, state.colormap);
    cache.refresh(ui.ctx(), key, &views);
    let (rects, hovered) = both_sides(ui, state, cache, &views);
    state.compare.hover = hovered;
    state.compare.rects = rects;
    if let [Some(a), Some(b)] = rects {
        if ui
            .button("Export both as PNG…")
            .on_hover_text("The two heatmaps as drawn, side by side")
            .clicked()
        {
            state.screenshot_request = Some(("compare.png".into(), a.union(b).expand(2.0)));
        }
    }
}

/// B minus A, when both sides were captured on the same tokens; else why not.
fn show_difference(
    ui: &mut egui::Ui,
    cache: &mut CompareCache,
    key: CacheKey,
    views: &[Result<CompareView, String>],
) {
    let (Some(Ok(a)), Some(Ok(b))) = (views.first(), views.get(1)) else {
        ui.label("the difference needs both sides captured");
        return;
    };
    if a.tokens != b.tokens {
        ui.label(format!(
            "the difference needs the same tokens on both sides: A has {} tokens, B has {} \
             (models with different tokenizers can only be shown side by side)",
            a.tokens.len(),
            b.tokens.len()
        ));
        return;
    }
    let (_, layer, head, _) = key;
    let Some(diff) = difference_matrix(&a.capture, &b.capture, layer, head) else {
        return;
    };
    let scale = scale_of(&diff);
    if cache.diff.as_ref().is_none_or(|(k, _)| *k != key) {
        let mask = maps::mask_of(&a.capture, layer);
        let tex = difference::texture(ui.ctx(), &diff, a.capture.len(), mask, scale);
        cache.diff = Some((key, tex));
    }
    difference::legend(ui, scale);
    ui.strong(format!("B − A: ({}) minus ({})", b.label, a.label));
    let side = (ui.available_width() - TOKEN_AXIS_WIDTH - 20.0).clamp(160.0, 640.0);
    if let Some((_, tex)) = &cache.diff {
        difference::show(ui, tex, &diff, [a, b], side);
    }
}

/// The layer and head (or mean of heads) shown on both sides, and two sides or their
/// difference.
fn layer_head_choice(ui: &mut egui::Ui, cmp: &mut CompareState, layers: usize, heads: usize) {
    ui.horizontal_wrapped(|ui| {
        ui.selectable_value(&mut cmp.difference, false, "side by side");
        ui.selectable_value(&mut cmp.difference, true, "difference B − A")
            .on_hover_text("One map: side B's attention weight minus side A's, cell by cell");
        ui.label("shown:");
        egui::ComboBox::from_label("layer")
            .selected_text(format!("layer {}", cmp.layer))
            .show_ui(ui, |ui| {
                for l in 0..layers {
                    ui.selectable_value(&mut cmp.layer, l, format!("layer {l}"));
                }
            });
        egui::ComboBox::from_label("head")
            .selected_text(match cmp.head {
                Some(h) => format!("head {h}"),
                None => "mean of heads".into(),
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut cmp.head, None, "mean of heads");
                for h in 0..heads {
                    ui.selectable_value(&mut cmp.head, Some(h), format!("head {h}"));
                }
            });
    });
}

impl CompareCache {
    /// Rebuild both sides' heatmaps when `key` (views, layer, head, colormap) has changed.
    fn refresh(
        &mut self,
        ctx: &egui::Context,
        key: CacheKey,
        views: &[Result<CompareView, String>],
    ) {
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        let (_, layer, head, colormap) = key;
        let gpu = gpu_heatmap::is_active(ctx);
        // One version for both sides: a newer version drops the GPU's older maps, so side B's
        // upload would drop side A's in the same frame.
        let version = gpu_heatmap::next_version();
        for (k, v) in views.iter().enumerate() {
            let tex = v.as_ref().ok().map(|v| {
                let values = side_matrix(&v.capture, layer, head);
                let t = v.capture.len();
                if gpu {
                    SideMap::Gpu(gpu_heatmap::HeatmapData {
                        // Keys apart from the Attention grid's (layer, head) keys.
                        key: (usize::MAX - k, usize::MAX),
                        version,
                        values: std::sync::Arc::from(values.as_slice()),
                        rows: t,
                        cols: t,
                        colormap,
                        mask: gpu_heatmap::CellMask {
                            causal: v.capture.causal,
                            window: v.capture.window(layer),
                            ..Default::default()
                        },
                    })
                } else {
                    SideMap::Texture(texture(
                        ctx,
                        &format!("compare-{k}"),
                        &values,
                        t,
                        maps::mask_of(&v.capture, layer),
                        colormap,
                    ))
                }
            });
            if let Some(slot) = self.textures.get_mut(k) {
                *slot = tex;
            }
        }
    }
}

/// Both sides' heatmaps with their statistics; returns where each was drawn and the cell
/// under the pointer.
fn both_sides(
    ui: &mut egui::Ui,
    state: &StudioState,
    cache: &CompareCache,
    views: &[Result<CompareView, String>],
) -> ([Option<egui::Rect>; 2], Option<(usize, usize)>) {
    let (layer, head) = (state.compare.layer, state.compare.head);
    // Room for the query labels left of each map.
    let side = ((ui.available_width() - 2.0 * TOKEN_AXIS_WIDTH - 50.0) / 2.0).clamp(140.0, 520.0);
    let matrices: Vec<Option<Side>> = views
        .iter()
        .map(|v| {
            v.as_ref().ok().map(|v| {
                (
                    side_matrix(&v.capture, layer, head),
                    v.capture.len(),
                    maps::mask_of(&v.capture, layer),
                )
            })
        })
        .collect();
    let mut hovered = None;
    let mut rects = [None, None];
    ui.columns(2, |cols| {
        for (k, ui) in cols.iter_mut().enumerate() {
            match (views.get(k), cache.textures.get(k).and_then(|t| t.as_ref())) {
                (Some(Ok(view)), Some(tex)) => {
                    let (ent, eps) = side_stats(&view.capture, layer, head);
                    ui.strong(&view.label);
                    ui.label(format!("mean entropy {ent:.3} bits   mean ε {eps:.4}"))
                        .on_hover_text(
                            "Over the shown layer and head(s): attention entropy in bits, and \
                             the off-block mass ε (attention outside each query's relevant \
                             keys R(i)).",
                        );
                    let (rect, cell) = side_heatmap(
                        ui,
                        tex,
                        side,
                        view,
                        &matrices,
                        state.compare.hover,
                        &state.compare.sides,
                    );
                    if let Some(r) = rects.get_mut(k) {
                        *r = Some(rect);
                    }
                    if cell.is_some() {
                        hovered = cell;
                    }
                }
                (Some(Err(e)), _) => {
                    ui.colored_label(Color32::LIGHT_RED, e);
                }
                _ => {}
            }
        }
    });
    (rects, hovered)
}

/// One side's matrix in view, its length and its mask ([`maps::mask_of`]).
type Side = (Vec<f32>, usize, (bool, Option<usize>));

/// One side's heatmap; marks `hover` (from either side) and returns where it was drawn and
/// the cell under the pointer.
fn side_heatmap(
    ui: &mut egui::Ui,
    tex: &SideMap,
    side: f32,
    view: &CompareView,
    matrices: &[Option<Side>],
    hover: Option<(usize, usize)>,
    sides: &[CompareSide; 2],
) -> (egui::Rect, Option<(usize, usize)>) {
    let labels: Vec<String> = view.tokens.iter().map(|s| printable(s)).collect();
    // Room for the key blocks' bar above the map.
    ui.add_space(6.0);
    let resp = ui
        .horizontal(|ui| {
            token_axis(ui, &labels, side);
            let resp = match tex {
                SideMap::Texture(tex) => ui.add(
                    egui::Image::new(tex)
                        .fit_to_exact_size(Vec2::splat(side))
                        .sense(Sense::hover()),
                ),
                SideMap::Gpu(data) => {
                    let (rect, resp) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
                    if ui.is_rect_visible(rect) {
                        gpu_heatmap::paint(ui.painter(), rect, data);
                    }
                    resp
                }
            };
            key_labels(ui, resp.rect, &labels);
            // The blocks along both axes, as on the enlarged head (r(i) left, b(x_j) above).
            block_strips(ui, resp.rect, &view.capture);
            resp
        })
        .inner;
    ui.add_space(64.0);
    let t = view.capture.len().max(1);
    let cell = side / t as f32;
    let mut here = None;
    if let Some(pos) = resp.hover_pos() {
        let rel = (pos - resp.rect.min) / resp.rect.size();
        let i = ((rel.y * t as f32) as usize).min(t - 1);
        let j = ((rel.x * t as f32) as usize).min(t - 1);
        here = Some((i, j));
        let tok = |k: usize| {
            view.tokens
                .get(k)
                .map(|s| format!("{s:?}"))
                .unwrap_or_default()
        };
        let mut text = format!("query {i} {}  key {j} {}", tok(i), tok(j));
        for (k, m) in matrices.iter().enumerate() {
            let name = if k == 0 { "A" } else { "B" };
            let label = sides.get(k).map(|s| s.label()).unwrap_or_default();
            let full = |n: usize| crate::engine::AttentionLayout::full(n);
            match m {
                Some((v, n, mask)) if i < *n && j < *n && !full(*n).masked(i, j, *mask) => {
                    let w = v.get(i * n + j).copied().unwrap_or(0.0);
                    text.push_str(&format!("\n{name} ({label}): weight {w:.4}"));
                }
                Some((_, n, (true, _))) if i < *n && j < *n && j > i => {
                    text.push_str(&format!("\n{name}: masked (key after query)"));
                }
                Some((_, n, (_, Some(w)))) if i < *n && j < *n => text.push_str(&format!(
                    "\n{name}: masked (a local layer: it sees only the keys within {w} positions)"
                )),
                _ => text.push_str(&format!("\n{name}: no such cell")),
            }
        }
        resp.clone().on_hover_text_at_pointer(text);
    }
    if let Some((i, j)) = here.or(hover) {
        if i < t && j < t {
            let r = egui::Rect::from_min_size(
                resp.rect.min + Vec2::new(j as f32 * cell, i as f32 * cell),
                Vec2::splat(cell.max(2.0)),
            );
            ui.painter()
                .rect_stroke(r, 0.0, (2.0, Color32::LIGHT_RED), egui::StrokeKind::Outside);
            // A faint crosshair: the query's row and the key's column.
            let faint = egui::Stroke::new(1.0, Color32::from_white_alpha(90));
            ui.painter().hline(resp.rect.x_range(), r.center().y, faint);
            ui.painter().vline(r.center().x, resp.rect.y_range(), faint);
        }
    }
    (resp.rect, here)
}
