//! The Attention panel: the text box, a grid of heatmaps (layer × head) and an enlarged view
//! with hover details. Heatmaps are drawn by the WGSL shader (`gpu_heatmap`) when wgpu is the
//! renderer, and as CPU textures otherwise; either is rebuilt only when a new capture arrives,
//! the colormap changes or the block view is toggled.

pub(crate) mod axes;
mod cells;
pub mod heads_table;
mod notes;

use std::collections::HashMap;
use std::sync::Arc;

use egui::{Color32, ColorImage, Sense, TextureHandle, TextureOptions, Vec2};

use crate::engine::export::{capture_csv, capture_json};
use crate::engine::figures::Colormap;
use crate::engine::figures::{head_pixels, head_png};
use crate::engine::worker::Command;
use crate::engine::{Capture, HeadCapture};
use crate::studio::gpu_heatmap::{self, HeatmapData};
use crate::studio::state::StudioState;

use axes::{key_axis, legend, token_axis};
pub(super) use cells::block_strips;
use cells::{axis_labels, block_strips_sized, grid_shape, highlight, hover_text, mean};
pub use notes::stale_note;
use notes::text_notes;

/// Heatmaps of the current capture, keyed by (layer, head).
#[derive(Default)]
pub struct HeatmapCache {
    key: Option<(u64, Colormap, bool)>,
    /// Heads shown as a sortable table of summaries instead of the grid of heatmaps.
    pub table: bool,
    /// The table's order.
    pub sort: heads_table::Sort,
    /// CPU textures, or the values the shader draws (see [`HeatmapCache::on_gpu`]).
    textures: HashMap<(usize, usize), Heatmap>,
}

/// One heatmap ready to draw.
enum Heatmap {
    /// CPU path: an egui texture of [`head_pixels`].
    Texture(TextureHandle),
    /// wgpu path: the values, coloured by `shaders/heatmap.wgsl`.
    Gpu(HeatmapData),
}

impl HeatmapCache {
    /// True when the current heatmaps are drawn by the WGSL shader, false for CPU textures (or
    /// when there is no capture).
    pub fn on_gpu(&self) -> bool {
        self.textures.values().any(|h| matches!(h, Heatmap::Gpu(_)))
    }

    fn refresh(&mut self, ctx: &egui::Context, state: &StudioState) {
        let key = (state.capture_generation, state.colormap, state.aggregated);
        if self.key == Some(key) {
            return;
        }
        self.key = Some(key);
        self.textures.clear();
        let Some((cap, _)) = &state.capture else {
            return;
        };
        if gpu_heatmap::is_active(ctx) {
            let version = gpu_heatmap::next_version();
            for hc in &cap.heads {
                let (rows, cols) = grid_shape(cap, state.aggregated);
                let values = if state.aggregated {
                    &hc.block_mass
                } else {
                    &hc.attention
                };
                let data = HeatmapData {
                    key: (hc.layer, hc.head),
                    version,
                    values: Arc::from(values.as_slice()),
                    rows,
                    cols,
                    colormap: state.colormap,
                    mask: gpu_heatmap::CellMask::of(cap, hc.layer, state.aggregated),
                };
                self.textures
                    .insert((hc.layer, hc.head), Heatmap::Gpu(data));
            }
            return;
        }
        for hc in &cap.heads {
            let (w, h, rgb) = head_pixels(cap, hc, state.colormap, state.aggregated);
            let img = ColorImage::from_rgb([w, h], &rgb);
            let tex = ctx.load_texture(
                format!("head-{}-{}", hc.layer, hc.head),
                img,
                TextureOptions::NEAREST,
            );
            self.textures
                .insert((hc.layer, hc.head), Heatmap::Texture(tex));
        }
    }
}

/// Draw the panel.
pub fn show(ui: &mut egui::Ui, state: &mut StudioState, cache: &mut HeatmapCache) {
    // Measured before the toolbar, which may wrap but must not widen the grid.
    let avail = ui.available_width();
    toolbar(ui, state);
    cache.refresh(ui.ctx(), state);
    let Some((cap, tokens)) = state.capture.clone() else {
        ui.label("no capture yet");
        return;
    };
    if let Some(why) = state.stale_capture() {
        stale_note(ui, &why, "the heatmaps below");
    } else if state.capture_is_preview() {
        notes::preview_note(ui);
    }
    text_notes(ui, state, &cap, &tokens);
    legend(ui, state.colormap);
    ui.horizontal(|ui| {
        ui.label("heads as");
        ui.selectable_value(&mut cache.table, false, "grid")
            .on_hover_text("A heatmap per layer and head");
        ui.selectable_value(&mut cache.table, true, "table")
            .on_hover_text(
                "One row per head with its entropy, ε, queries in block and most attended \
                 block, sortable; click a row to open the head large beside it",
            );
    });
    if cache.table {
        let clicked = ui
            .horizontal_top(|ui| {
                let clicked = ui
                    .vertical(|ui| {
                        // The whole width, or what the enlarged head beside it leaves.
                        let width = if state.focus.is_some() {
                            (avail - 440.0).max(360.0)
                        } else {
                            avail
                        };
                        ui.set_max_width(width);
                        heads_table::show(
                            ui,
                            &cap,
                            state.current_reports(),
                            &mut cache.sort,
                            state.colormap,
                            state.focus,
                        )
                    })
                    .inner;
                if let Some((l, h)) = state.focus {
                    ui.vertical(|ui| enlarged(ui, state, cache, &cap, &tokens, (l, h)));
                }
                clicked
            })
            .inner;
        if let Some(c) = clicked {
            state.focus = Some(c);
        }
        return;
    }
    // The layer labels' column and the grid's spacing come off the width first, so the last
    // head fits; with too many heads for 60-pixel thumbnails the grid scrolls sideways.
    // Thumbnails grow with the window (to 320 points, or 720 in projector mode).
    let heads = cap.num_heads.max(1) as f32;
    let largest = if state.projector { 720.0 } else { 320.0 };
    let thumb = ((avail - 70.0 - 6.0 * heads) / heads).clamp(60.0, largest);
    let clicked = egui::ScrollArea::horizontal()
        .id_salt("heatmap_grid_scroll")
        .show(ui, |ui| grid(ui, state, cache, &cap, &tokens, thumb))
        .inner;
    if let Some(c) = clicked {
        state.focus = Some(c);
    }
    if let Some((l, h)) = state.focus {
        enlarged(ui, state, cache, &cap, &tokens, (l, h));
    }
}

/// The text box, Capture, the colormap, the block view switch and the export menu.
fn toolbar(ui: &mut egui::Ui, state: &mut StudioState) {
    ui.horizontal_wrapped(|ui| {
        let l = ui.label("text");
        let edit = ui
            .add(
                egui::TextEdit::singleline(&mut state.text)
                    .char_limit(crate::studio::text::MAX_TEXT_CHARS)
                    .desired_width(320.0)
                    .hint_text("text to capture"),
            )
            .labelled_by(l.id);
        let edit = edit.on_hover_text(
            "The text whose attention is shown (truncated to the model's positions).",
        );
        if (edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)))
            || ui.button("Capture").clicked()
        {
            let text = state.text.clone();
            state.send(Command::Capture(text));
        }
        egui::ComboBox::from_label("colormap")
            .selected_text(state.colormap.label())
            .show_ui(ui, |ui| {
                for cm in Colormap::ALL {
                    ui.selectable_value(&mut state.colormap, cm, cm.label());
                }
            });
        ui.checkbox(&mut state.aggregated, "blocks [T×K]")
            .on_hover_text("Show block masses p_k(i) instead of the full attention matrix.");
        export_menu(ui, state);
    });
}

/// The layer × head grid of thumbnails, `thumb` points wide; returns the one clicked.
fn grid(
    ui: &mut egui::Ui,
    state: &StudioState,
    cache: &HeatmapCache,
    cap: &Capture,
    tokens: &[String],
    thumb: f32,
) -> Option<(usize, usize)> {
    let (layers, heads) = (cap.num_layers, cap.num_heads);
    let mut clicked = None;
    // Keyed by the shape: a grid remembers its row and column sizes from the last frame, and a
    // model of another shape would otherwise be drawn once with the old sizes (rows squeezed)
    // and left so until the next repaint. A new id lays it out afresh.
    egui::Grid::new(("heatmap_grid", layers, heads, thumb.round() as u32))
        .spacing([6.0, 6.0])
        .show(ui, |ui| {
            ui.label("");
            for h in 0..heads {
                ui.label(format!("head {h}"));
            }
            ui.end_row();
            for l in 0..layers {
                ui.label(format!("layer {l}"));
                for h in 0..heads {
                    if let (Some(tex), Some(hc)) = (cache.textures.get(&(l, h)), cap.head(l, h)) {
                        let selected = state.focus == Some((l, h));
                        let resp = heatmap(
                            ui,
                            tex,
                            Vec2::splat(thumb),
                            cap,
                            hc,
                            tokens,
                            state.aggregated,
                        );
                        if !state.aggregated {
                            // The blocks along the rows and columns, as on the enlarged head.
                            block_strips_sized(ui, resp.rect, cap, 2.5);
                        }
                        if selected {
                            ui.painter().rect_stroke(
                                resp.rect,
                                0.0,
                                (2.0, Color32::LIGHT_RED),
                                egui::StrokeKind::Outside,
                            );
                        }
                        if resp.clicked() {
                            clicked = Some((l, h));
                        }
                    }
                }
                ui.end_row();
            }
        });
    clicked
}

/// The enlarged heatmap of head `(l, h)` with its statistics and token axes.
fn enlarged(
    ui: &mut egui::Ui,
    state: &StudioState,
    cache: &HeatmapCache,
    cap: &Capture,
    tokens: &[String],
    (l, h): (usize, usize),
) {
    let (Some(tex), Some(hc)) = (cache.textures.get(&(l, h)), cap.head(l, h)) else {
        return;
    };
    ui.separator();
    ui.label(format!(
        "layer {l}, head {h}: mean entropy {:.3} bits, mean ε {:.4}",
        mean(&hc.entropy_bits),
        mean(&hc.off_block_mass)
    ));
    // The query labels' column (and spacing) comes off the width first.
    let side = (ui.available_width() - axes::TOKEN_AXIS_WIDTH - 12.0)
        .min(ui.available_height())
        .clamp(200.0, 560.0);
    let lay = cap.attention_layout();
    if lay.stride > 1 {
        ui.label(format!(
            "{} tokens shown as a {}×{} grid: each cell is the attention the queries of its row \
             give the keys of its column ({} × {} tokens), averaged over those queries",
            cap.len(),
            lay.grid().0,
            lay.grid().1,
            lay.stride,
            lay.stride
        ));
    }
    let row_labels = axis_labels(cap, tokens, state.aggregated, true);
    if !state.aggregated {
        // Room for the key blocks' bar painted above the map, clear of the title.
        ui.add_space(6.0);
    }
    ui.horizontal(|ui| {
        token_axis(ui, &row_labels, side);
        let resp = heatmap(
            ui,
            tex,
            Vec2::splat(side),
            cap,
            hc,
            tokens,
            state.aggregated,
        );
        let key_labels = axis_labels(cap, tokens, false, false);
        if !state.aggregated {
            block_strips(ui, resp.rect, cap);
        }
        key_axis(ui, &resp, cap, &key_labels, state.aggregated);
    });
    // Room for the vertical key labels painted under the map.
    ui.add_space(64.0);
}

/// One heatmap (shader or texture) with a hover tooltip naming the cell.
fn heatmap(
    ui: &mut egui::Ui,
    tex: &Heatmap,
    size: Vec2,
    cap: &Capture,
    hc: &HeadCapture,
    tokens: &[String],
    aggregated: bool,
) -> egui::Response {
    let resp = match tex {
        Heatmap::Texture(tex) => ui.add(
            egui::Image::new(tex)
                .fit_to_exact_size(size)
                .sense(Sense::click()),
        ),
        Heatmap::Gpu(data) => {
            let (rect, resp) = ui.allocate_exact_size(size, Sense::click());
            if ui.is_rect_visible(rect) {
                gpu_heatmap::paint(ui.painter(), rect, data);
            }
            resp
        }
    };
    if let Some(pos) = resp.hover_pos() {
        let rel = (pos - resp.rect.min) / resp.rect.size();
        highlight(ui, resp.rect, grid_shape(cap, aggregated), (rel.x, rel.y));
        let text = hover_text(cap, hc, tokens, aggregated, (rel.x, rel.y));
        resp.clone().on_hover_text_at_pointer(text);
    }
    resp
}

/// Export the numbers behind the heatmaps (CSV, JSON) or the selected heatmap (PNG).
fn export_menu(ui: &mut egui::Ui, state: &mut StudioState) {
    let preview = state.capture_is_preview();
    let Some((cap, tokens)) = state.capture.as_ref().filter(|_| !preview) else {
        return;
    };
    ui.menu_button("Export", |ui| {
        if ui.button("numbers as CSV…").clicked() {
            state.pending_export =
                Some(("capture.csv".into(), capture_csv(cap, tokens).into_bytes()));
            ui.close();
        }
        if ui.button("numbers as JSON…").clicked() {
            match capture_json(cap, tokens) {
                Ok(j) => state.pending_export = Some(("capture.json".into(), j.into_bytes())),
                Err(e) => state.error = Some(format!("export failed: {e:#}")),
            }
            ui.close();
        }
        let (l, h) = state.focus.unwrap_or((0, 0));
        if ui.button(format!("layer {l} head {h} as PNG…")).clicked() {
            if let Some(hc) = cap.head(l, h) {
                match head_png(cap, hc, state.colormap, state.aggregated, 8) {
                    Ok(png) => {
                        state.pending_export = Some((format!("attention-l{l}-h{h}.png"), png))
                    }
                    Err(e) => state.error = Some(format!("export failed: {e:#}")),
                }
            }
            ui.close();
        }
    });
}
