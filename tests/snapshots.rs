//! Heatmaps drawn by the WGSL shader through egui_kittest's wgpu renderer (lavapipe, Mesa's
//! software Vulkan, on CI), compared with committed snapshots under `tests/snapshots/` and,
//! cell by cell, with the CPU colormap. The capture is the bundled tiny model on a fixed
//! sentence, so the images are the same on every run.
//!
//! The tests skip, saying so, only when the machine has no wgpu adapter at all. Refresh the
//! images with `UPDATE_SNAPSHOTS=1 cargo test --test snapshots`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use localist::model::capture_layout::AttentionLayout;
use std::sync::Arc;

use eframe::egui_wgpu::wgpu;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use localist::engine::figures::Colormap;
use localist::engine::{Capture, DialSetting};
use localist::model::capture::capture;
use localist::studio::gpu_heatmap::{self, HeatmapData};
use localist::studio::panels::attention::{self, HeatmapCache};
use localist::studio::state::StudioState;

const TEXT: &str = "To be, or not to be";

/// (40, 40, 40): cells the causal mask hides.
const MASKED: [u8; 3] = [40, 40, 40];

/// True when some wgpu adapter exists; otherwise prints why the test is skipped.
fn have_adapter(test: &str) -> bool {
    let setup = egui_kittest::wgpu::default_wgpu_setup();
    let instance = pollster::block_on(setup.new_instance());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    if adapters.is_empty() {
        eprintln!(
            "SKIPPED {test}: no wgpu adapter on this machine (install mesa-vulkan-drivers for lavapipe)"
        );
        return false;
    }
    true
}

/// The tiny λ_train = 1 Shakespeare model's capture of [`TEXT`] at λ = 0, and its tokens.
fn sample_capture() -> (Capture, Vec<String>) {
    let dir = common::sample("tiny-shakespeare-l1");
    let (ck, tok) = common::load(&dir);
    let ids = tok.encode(TEXT);
    let tokens = ids.iter().map(|&id| tok.token_str(id)).collect();
    let cap = capture(&ck.model, &ck.blocks, &ids, &DialSetting::bias(0.0)).unwrap();
    (cap, tokens)
}

/// Heatmaps at fixed places, drawn only through the shader.
struct Maps {
    maps: Vec<(egui::Rect, HeatmapData)>,
}

impl eframe::App for Maps {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            for (rect, data) in &self.maps {
                gpu_heatmap::paint(ui.painter(), *rect, data);
            }
        });
    }
}

/// A 320 × 320 wgpu harness with the heatmap pipeline registered as `studio::run` does.
fn maps_harness(maps: Vec<(egui::Rect, HeatmapData)>) -> Harness<'static, Maps> {
    Harness::builder()
        .with_size(egui::vec2(320.0, 320.0))
        .wgpu()
        .build_eframe(move |cc| {
            assert!(gpu_heatmap::register(
                &cc.egui_ctx,
                cc.wgpu_render_state.as_ref()
            ));
            Maps { maps }
        })
}

fn data(key: (usize, usize), values: &[f32], rows: usize, cols: usize) -> HeatmapData {
    HeatmapData {
        key,
        version: 1,
        values: Arc::from(values),
        rows,
        cols,
        colormap: Colormap::Viridis,
        mask: Default::default(),
    }
}

/// Every cell whose centre is on screen has the CPU colormap's colour (or the masked grey).
fn assert_cells_match_cpu(img: &image::RgbaImage, rect: egui::Rect, d: &HeatmapData) {
    let mut checked = 0;
    for i in 0..d.rows {
        for j in 0..d.cols {
            let x = rect.left() + (j as f32 + 0.5) * rect.width() / d.cols as f32;
            let y = rect.top() + (i as f32 + 0.5) * rect.height() / d.rows as f32;
            if x < 0.0 || y < 0.0 || x >= img.width() as f32 || y >= img.height() as f32 {
                continue;
            }
            let px = img.get_pixel(x as u32, y as u32).0;
            let m = &d.mask;
            let s = m.stride.max(1);
            let cut = |end: usize, full: usize| if end == 0 { full } else { end.min(full) };
            let lay = AttentionLayout {
                rows: (m.origin.0, cut(m.end.0, m.origin.0 + d.rows * s)),
                keys: (m.origin.1, cut(m.end.1, m.origin.1 + d.cols * s)),
                stride: s,
            };
            let want = if lay.masked(i, j, (m.causal, m.window)) {
                MASKED
            } else {
                d.colormap.rgb(d.values[i * d.cols + j])
            };
            for ch in 0..3 {
                assert!(
                    px[ch].abs_diff(want[ch]) <= 2,
                    "{:?} cell ({i}, {j}) at ({x}, {y}): shader {px:?}, CPU colormap {want:?}",
                    d.key
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no cell of {:?} on screen", d.key);
}

/// `maps` drawn through the shader: every cell on screen has the CPU's colour, and the image
/// is the snapshot `name`.
fn render_and_check(maps: Vec<(egui::Rect, HeatmapData)>, name: &str) {
    let mut h = maps_harness(maps.clone());
    h.run();
    let img = h.render().unwrap();
    for (rect, d) in &maps {
        assert_cells_match_cpu(&img, *rect, d);
    }
    h.snapshot_options(name, &snapshot_options());
}

fn snapshot_options() -> SnapshotOptions {
    // Same driver, same pixels: a low threshold and a handful of edge pixels at most.
    SnapshotOptions::new().threshold(0.6).max_failed_pixels(8)
}

#[test]
fn thumbnails_and_an_enlarged_head_in_viridis_with_the_causal_mask() {
    if !have_adapter("thumbnails_and_an_enlarged_head_in_viridis_with_the_causal_mask") {
        return;
    }
    let (cap, _) = sample_capture();
    let t = cap.len();
    let mut maps = Vec::new();
    // 2 layers × 4 heads as 72-point thumbnails, then layer 1 head 2 enlarged.
    for hc in &cap.heads {
        let rect = egui::Rect::from_min_size(
            egui::pos2(8.0 + 77.0 * hc.head as f32, 8.0 + 77.0 * hc.layer as f32),
            egui::vec2(72.0, 72.0),
        );
        let mut d = data((hc.layer, hc.head), &hc.attention, t, t);
        d.mask.causal = true;
        maps.push((rect, d));
    }
    let big = maps
        .iter()
        .find(|(_, d)| d.key == (1, 2))
        .unwrap()
        .1
        .clone();
    maps.push((
        egui::Rect::from_min_size(egui::pos2(84.0, 164.0), egui::vec2(148.0, 148.0)),
        big,
    ));
    render_and_check(maps, "heatmap_viridis_causal");
}

/// A local layer's window (an encoder's band, |i − j| ≤ 2), a zoomed causal grid whose rows and
/// keys start apart (queries 6.., keys 2.., cells of 2 positions) and a pooled band whose last
/// row is cut short: the shader greys the cells the layout's own test masks, and no other.
#[test]
fn a_local_window_and_a_zoomed_causal_grid_are_greyed_where_the_layout_says() {
    if !have_adapter("a_local_window_and_a_zoomed_causal_grid_are_greyed_where_the_layout_says") {
        return;
    }
    let ramp: Vec<f32> = (0..64).map(|k| (k % 7) as f32 / 6.0).collect();
    let mut band = data((0, 0), &ramp, 8, 8);
    band.mask.window = Some(2);
    let mut zoom = data((0, 1), &ramp, 8, 8);
    zoom.mask = localist::studio::gpu_heatmap::CellMask {
        causal: true,
        window: None,
        origin: (6, 2),
        stride: 2,
        end: (0, 0),
    };
    // Pooled 3 a side over queries 0..16 and keys 0..30 of an encoder's local layer (±2): the
    // last row's cells hold query 15 alone, so key 18 is out of its reach.
    let ramp60: Vec<f32> = (0..60).map(|k| (k % 5) as f32 / 4.0).collect();
    let mut cut = data((0, 2), &ramp60, 6, 10);
    cut.mask = localist::studio::gpu_heatmap::CellMask {
        causal: false,
        window: Some(2),
        origin: (0, 0),
        stride: 3,
        end: (16, 30),
    };
    let maps = vec![
        (
            egui::Rect::from_min_size(egui::pos2(8.0, 8.0), egui::vec2(144.0, 144.0)),
            band,
        ),
        (
            egui::Rect::from_min_size(egui::pos2(160.0, 8.0), egui::vec2(144.0, 144.0)),
            zoom,
        ),
        (
            egui::Rect::from_min_size(egui::pos2(8.0, 160.0), egui::vec2(240.0, 144.0)),
            cut,
        ),
    ];
    render_and_check(maps, "heatmap_window_and_zoom");
}

#[test]
fn block_masses_in_cividis() {
    if !have_adapter("block_masses_in_cividis") {
        return;
    }
    let (cap, _) = sample_capture();
    let (t, k) = (cap.len(), cap.num_blocks());
    let mut maps = Vec::new();
    for (n, hc) in cap.heads.iter().filter(|hc| hc.layer == 1).enumerate() {
        let rect = egui::Rect::from_min_size(
            egui::pos2(8.0 + 77.0 * n as f32, 8.0),
            egui::vec2(72.0, 300.0),
        );
        let mut d = data((hc.layer, hc.head), &hc.block_mass, t, k);
        d.colormap = Colormap::Cividis;
        maps.push((rect, d));
    }
    render_and_check(maps, "heatmap_cividis_blocks");
}

#[test]
fn colour_ramps_stay_in_place_when_partly_off_screen() {
    if !have_adapter("colour_ramps_stay_in_place_when_partly_off_screen") {
        return;
    }
    // 0, 1/15, ..., 1 along even rows and back along odd ones: the whole of both maps, cell by
    // cell, with rows that tell a shifted map from a squeezed one.
    let ramp: Vec<f32> = (0..4 * 16)
        .map(|k| {
            let step = if (k / 16) % 2 == 0 {
                k % 16
            } else {
                15 - k % 16
            };
            step as f32 / 15.0
        })
        .collect();
    let viridis = data((0, 0), &ramp, 4, 16);
    let mut cividis = data((0, 1), &ramp, 4, 16);
    cividis.colormap = Colormap::Cividis;
    // The first map starts 40 points above the window, as when a scroll area clips it: its
    // visible rows must still be rows 1..4, not the whole map squeezed into what is left.
    let maps = vec![
        (
            egui::Rect::from_min_size(egui::pos2(-16.0, -40.0), egui::vec2(320.0, 160.0)),
            viridis,
        ),
        (
            egui::Rect::from_min_size(egui::pos2(16.0, 150.0), egui::vec2(288.0, 160.0)),
            cividis,
        ),
    ];
    render_and_check(maps, "heatmap_ramps");
}

/// The Attention panel itself, on `state`.
struct Panel {
    state: StudioState,
    cache: HeatmapCache,
}

impl eframe::App for Panel {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                attention::show(ui, &mut self.state, &mut self.cache)
            });
        });
    }
}

fn panel_harness(wgpu: bool) -> Harness<'static, Panel> {
    let (cap, tokens) = sample_capture();
    let state = StudioState {
        capture: Some((cap, tokens)),
        capture_generation: 1,
        ..Default::default()
    };
    let builder = Harness::builder().with_size(egui::vec2(900.0, 700.0));
    let builder = if wgpu { builder.wgpu() } else { builder };
    builder.build_eframe(move |cc| {
        gpu_heatmap::register(&cc.egui_ctx, cc.wgpu_render_state.as_ref());
        Panel {
            state,
            cache: HeatmapCache::default(),
        }
    })
}

/// Hover a cell of the layer 1, head 2 thumbnail, then click it: the tooltip names the cell and
/// the head is enlarged.
fn hover_and_click(h: &mut Harness<'static, Panel>) {
    h.run();
    let x = h.get_by_label("head 2").rect().center().x;
    let y = h.get_by_label("layer 1").rect().center().y;
    let pos = egui::pos2(x, y);
    h.hover_at(pos);
    h.run();
    // Only the cell tooltip says "query" ("weight ..., query i ..." or "query i ... cannot see").
    assert!(
        h.query_all_by_label_contains("query ").count() >= 1,
        "no cell tooltip at {pos:?}"
    );
    for pressed in [true, false] {
        h.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
    }
    h.run();
    assert_eq!(h.state().state.focus, Some((1, 2)));
    assert!(h
        .query_by_label_contains("layer 1, head 2: mean entropy")
        .is_some());
}

#[test]
fn the_attention_panel_draws_through_the_shader_and_still_senses_hover_and_clicks() {
    if !have_adapter(
        "the_attention_panel_draws_through_the_shader_and_still_senses_hover_and_clicks",
    ) {
        return;
    }
    let mut h = panel_harness(true);
    h.run();
    assert!(h.state().cache.on_gpu(), "wgpu harness, CPU heatmaps");
    hover_and_click(&mut h);
    h.render().unwrap();
}

#[test]
fn without_wgpu_the_panel_falls_back_to_cpu_textures_and_still_senses_hover_and_clicks() {
    let mut h = panel_harness(false);
    h.run();
    assert!(!h.state().cache.on_gpu());
    hover_and_click(&mut h);
}
