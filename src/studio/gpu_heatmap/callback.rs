//! The per-frame part of the GPU heatmaps: one small paint callback per heatmap, which
//! uploads its values when they are new, takes a slot of the frame's draw uniforms and draws
//! one triangle.

use std::sync::atomic::{AtomicU32, Ordering};

use eframe::egui_wgpu::{self, wgpu};

use crate::engine::figures::Colormap;

use super::resources::HeatmapResources;
use super::{to_u32, HeatmapData, DRAW_BYTES};

/// A callback that has not been prepared yet.
const NO_SLOT: u32 = u32::MAX;

/// One heatmap in one frame.
pub(super) struct HeatmapCallback {
    rect: egui::Rect,
    data: HeatmapData,
    /// Its slot in the draw uniform buffer, assigned in `prepare`.
    slot: AtomicU32,
}

impl HeatmapCallback {
    /// The callback that paints `data` into `rect`; its slot is assigned in `prepare`.
    pub(super) fn new(rect: egui::Rect, data: HeatmapData) -> Self {
        Self {
            rect,
            data,
            slot: AtomicU32::new(NO_SLOT),
        }
    }
}

impl egui_wgpu::CallbackTrait for HeatmapCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        if let Some(res) = resources.get_mut::<HeatmapResources>() {
            res.upload(device, queue, &self.data);
            let slot = res.pending.len() as u32;
            res.pending.push(draw_uniform(
                self.rect,
                screen.pixels_per_point,
                &self.data,
                res.srgb_target,
            ));
            self.slot.store(slot, Ordering::Relaxed);
        }
        Vec::new()
    }

    fn finish_prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        // Called for every callback after all prepares: the first call writes the frame's slots.
        if let Some(res) = resources.get_mut::<HeatmapResources>() {
            res.flush_draws(device, queue);
        }
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        render_pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let slot = self.slot.load(Ordering::Relaxed);
        let Some(res) = resources.get::<HeatmapResources>() else {
            return;
        };
        let Some(map) = res.maps.get(&self.data.key) else {
            return;
        };
        if slot == NO_SLOT || slot >= res.capacity {
            return;
        }
        let Ok(offset) = u32::try_from(u64::from(slot) * res.stride) else {
            return;
        };
        render_pass.set_pipeline(&res.pipeline);
        render_pass.set_bind_group(0, &res.draw_bind_group, &[offset]);
        render_pass.set_bind_group(1, &map.bind_group, &[]);
        render_pass.draw(0..3, 0..1);
    }
}

/// A grid's end for the shader: its last position + 1, or no cut (`u32::MAX`) for 0.
fn end(e: usize) -> u32 {
    match e {
        0 => u32::MAX,
        e => to_u32(e.min(1 << 30)),
    }
}

/// The shader's `Draw` uniform for one heatmap.
fn draw_uniform(
    rect: egui::Rect,
    pixels_per_point: f32,
    data: &HeatmapData,
    srgb_target: bool,
) -> [u8; DRAW_BYTES as usize] {
    let r = [
        rect.min.x * pixels_per_point,
        rect.min.y * pixels_per_point,
        rect.width() * pixels_per_point,
        rect.height() * pixels_per_point,
    ];
    let colormap = match data.colormap {
        Colormap::Viridis => 0u32,
        Colormap::Cividis => 1,
    };
    let m = &data.mask;
    let flags = u32::from(m.causal) | (u32::from(srgb_target) << 1);
    // The window + 1 (0: none), kept below 2^30 so that the shader's sums cannot overflow.
    let window = m.window.map_or(0, |w| to_u32(w.min((1 << 30) - 2)) + 1);
    let ints = [
        to_u32(data.rows),
        to_u32(data.cols),
        colormap,
        flags,
        to_u32(m.origin.0.min(1 << 30)),
        to_u32(m.origin.1.min(1 << 30)),
        to_u32(m.stride.clamp(1, 1 << 30)),
        window,
        end(m.end.0),
        end(m.end.1),
        0,
        0,
    ];
    let mut out = [0u8; DRAW_BYTES as usize];
    let words = r
        .iter()
        .map(|v| v.to_le_bytes())
        .chain(ints.iter().map(|v| v.to_le_bytes()));
    for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_draw_uniform_holds_the_rectangle_in_pixels_and_the_flags() {
        let data = HeatmapData {
            key: (0, 1),
            version: 1,
            values: Arc::from(vec![0.5f32; 6]),
            rows: 2,
            cols: 3,
            colormap: Colormap::Cividis,
            mask: crate::studio::gpu_heatmap::CellMask {
                causal: true,
                window: Some(4),
                origin: (7, 5),
                stride: 2,
                end: (11, 0),
            },
        };
        let rect = egui::Rect::from_min_size(egui::pos2(10.0, 20.0), egui::vec2(30.0, 40.0));
        let u = draw_uniform(rect, 2.0, &data, true);
        let word = |k: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&u[4 * k..4 * k + 4]);
            w
        };
        assert_eq!(f32::from_le_bytes(word(0)), 20.0);
        assert_eq!(f32::from_le_bytes(word(3)), 80.0);
        assert_eq!(u32::from_le_bytes(word(4)), 2);
        assert_eq!(u32::from_le_bytes(word(5)), 3);
        assert_eq!(u32::from_le_bytes(word(6)), 1);
        assert_eq!(u32::from_le_bytes(word(7)), 0b11);
        let rest: Vec<u32> = (8..16).map(|k| u32::from_le_bytes(word(k))).collect();
        assert_eq!(
            rest,
            [7, 5, 2, 5, 11, u32::MAX, 0, 0],
            "origin, stride, window + 1, ends"
        );
    }
}
