//! Heatmaps drawn by a WGSL shader (`shaders/heatmap.wgsl`) through an egui_wgpu paint callback.
//!
//! Why a shader: a frame shows many heatmaps (every layer × head as a thumbnail, plus an
//! enlarged one), and the colormap is a polynomial the GPU evaluates for free. The values of each
//! (layer, head) go to the GPU once per capture as an R32Float texture; a frame only writes one
//! small uniform slot per heatmap (its rectangle and colormap) and draws one triangle.
//!
//! The pattern is egui's `custom3d_wgpu` demo: [`register`] builds the pipeline once from the
//! app's `wgpu` render state into `callback_resources`, and [`paint`] adds a small
//! [`egui_wgpu::CallbackTrait`] value per heatmap per frame. With the glow renderer, or in a test
//! harness without wgpu, nothing is registered, [`is_active`] is false, and the Attention panel
//! keeps its CPU textures.
//!
//! The parts: `resources.rs` holds what lives on the GPU (pipeline, draw slots, one texture per
//! heatmap), `callback.rs` the per-frame paint callback and its uniform.

mod callback;
mod resources;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use eframe::egui_wgpu;

use crate::engine::figures::Colormap;

use callback::HeatmapCallback;
use resources::HeatmapResources;

/// The shader source, compiled once in [`register`].
pub const SHADER_WGSL: &str = include_str!("../../shaders/heatmap.wgsl");

/// Bytes of the shader's `Draw` uniform: a vec4 rectangle and twelve u32.
const DRAW_BYTES: u64 = 64;

/// Where [`register`] leaves its mark in egui's memory.
fn marker_id() -> egui::Id {
    egui::Id::unique("localist::gpu_heatmap::active")
}

/// Build the heatmap pipeline into `render_state`'s callback resources and mark `ctx` so the
/// panels draw through the shader. Returns false, and changes nothing, when there is no wgpu
/// render state (the glow renderer, or a test harness without wgpu).
pub fn register(ctx: &egui::Context, render_state: Option<&egui_wgpu::RenderState>) -> bool {
    let Some(rs) = render_state else {
        return false;
    };
    let resources = HeatmapResources::new(&rs.device, rs.target_format);
    rs.renderer.write().callback_resources.insert(resources);
    ctx.data_mut(|d| d.insert_temp(marker_id(), true));
    true
}

/// True when [`register`] has set up the shader for this context.
pub fn is_active(ctx: &egui::Context) -> bool {
    ctx.data(|d| d.get_temp::<bool>(marker_id()))
        .unwrap_or(false)
}

/// A fresh data version: give every new set of values one, so the GPU copy is replaced.
pub fn next_version() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The values of one heatmap and how to colour them. Cheap to clone (the values are shared).
#[derive(Clone, Debug)]
pub struct HeatmapData {
    /// Which heatmap, e.g. (layer, head); one GPU texture is kept per key.
    pub key: (usize, usize),
    /// Data version from [`next_version`]; the texture is uploaded again only when it changes.
    pub version: u64,
    /// Row-major `rows × cols` values in [0, 1].
    pub values: Arc<[f32]>,
    /// Rows (queries).
    pub rows: usize,
    /// Columns (keys, or blocks).
    pub cols: usize,
    /// Colormap.
    pub colormap: Colormap,
    /// Which cells are greyed as masked.
    pub mask: CellMask,
}

/// Which cells of a heatmap hold no weight the model can give, greyed: those past the causal
/// mask, and those outside a local layer's window, over a grid whose first query and key are
/// `origin` and whose cells are `stride` positions a side (the same test as
/// [`crate::engine::AttentionLayout::masked`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CellMask {
    /// Keys after every query of a cell are masked.
    pub causal: bool,
    /// A local layer's window: keys farther than this from every query of a cell are masked.
    pub window: Option<usize>,
    /// The grid's first query and first key.
    pub origin: (usize, usize),
    /// Positions per cell side (0 or 1: one weight per cell).
    pub stride: usize,
    /// The grid's last query and last key + 1, which cut its last row's and column's cells
    /// short (0: no cut).
    pub end: (usize, usize),
}

impl CellMask {
    /// The mask of layer `layer`'s heatmap of `cap` (none for block masses, `aggregated`).
    pub fn of(cap: &crate::engine::Capture, layer: usize, aggregated: bool) -> Self {
        if aggregated {
            return Self::default();
        }
        let lay = cap.attention_layout();
        Self {
            causal: cap.causal,
            window: cap.window(layer),
            origin: (lay.rows.0, lay.keys.0),
            stride: lay.stride,
            end: (lay.rows.1, lay.keys.1),
        }
    }
}

/// Paint `data` into `rect` with the shader. Call only when [`is_active`] holds; otherwise the
/// callback finds no pipeline and draws nothing.
pub fn paint(painter: &egui::Painter, rect: egui::Rect, data: &HeatmapData) {
    painter.add(egui_wgpu::Callback::new_paint_callback(
        rect,
        HeatmapCallback::new(rect, data.clone()),
    ));
}

/// `n` as a u32 for the GPU, saturating.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 7 × 3 coefficients of the WGSL constant `name`, read from the shader text.
    fn wgsl_table(name: &str) -> Vec<[f32; 3]> {
        let decl = format!("const {name} = array<vec3<f32>, 7>(");
        let Some(start) = SHADER_WGSL.find(&decl) else {
            panic!("no table {name} in heatmap.wgsl");
        };
        let body = &SHADER_WGSL[start + decl.len()..];
        let Some(end) = body.find(");") else {
            panic!("table {name} is not closed");
        };
        body[..end]
            .split("vec3<f32>(")
            .skip(1)
            .map(|row| {
                let row = row.split(')').next().unwrap_or_default();
                let nums: Vec<f32> = row
                    .split(',')
                    .map(|s| s.trim().parse().unwrap_or(f32::NAN))
                    .collect();
                assert_eq!(nums.len(), 3, "{name}: row {row}");
                [nums[0], nums[1], nums[2]]
            })
            .collect()
    }

    /// The shader's polynomial, evaluated here in f32 as the shader writes it.
    fn eval(table: &[[f32; 3]], t: f32) -> [u8; 3] {
        let mut out = [0u8; 3];
        for (ch, o) in out.iter_mut().enumerate() {
            let v = table.iter().rev().fold(0.0f32, |acc, c| acc * t + c[ch]);
            *o = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        }
        out
    }

    #[test]
    fn the_shader_polynomials_are_the_rust_colormaps() {
        for (name, cm) in [
            ("VIRIDIS", Colormap::Viridis),
            ("CIVIDIS", Colormap::Cividis),
        ] {
            let table = wgsl_table(name);
            assert_eq!(table.len(), 7, "{name}: a degree-6 polynomial has 7 rows");
            // Every byte of both maps at 4097 points, exactly: a coefficient that drifted by
            // more than float rounding would change some of them.
            for k in 0..=4096 {
                let t = k as f32 / 4096.0;
                assert_eq!(eval(&table, t), cm.rgb(t), "{name} at t = {t}");
            }
        }
    }

    #[test]
    fn the_masked_grey_is_40_of_255() {
        assert!(SHADER_WGSL.contains("const MASKED = vec3<f32>(0.15686275"));
        assert_eq!((0.156_862_75f32 * 255.0).round(), 40.0);
    }
}
