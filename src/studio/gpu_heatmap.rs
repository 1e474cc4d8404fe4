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

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use eframe::egui_wgpu::{self, wgpu};

use crate::studio::colormap::Colormap;

/// The shader source, compiled once in [`register`].
pub const SHADER_WGSL: &str = include_str!("../../shaders/heatmap.wgsl");

/// Bytes of the shader's `Draw` uniform: a vec4 rectangle and four u32.
const DRAW_BYTES: u64 = 32;

/// Draw slots the uniform buffer starts with (it grows by doubling).
const INITIAL_SLOTS: u32 = 16;

/// A callback that has not been prepared yet.
const NO_SLOT: u32 = u32::MAX;

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
    /// Grey out cells above the diagonal (key after query: the causal mask).
    pub masked: bool,
}

/// Paint `data` into `rect` with the shader. Call only when [`is_active`] holds; otherwise the
/// callback finds no pipeline and draws nothing.
pub fn paint(painter: &egui::Painter, rect: egui::Rect, data: &HeatmapData) {
    painter.add(egui_wgpu::Callback::new_paint_callback(
        rect,
        HeatmapCallback {
            rect,
            data: data.clone(),
            slot: AtomicU32::new(NO_SLOT),
        },
    ));
}

/// One heatmap in one frame.
struct HeatmapCallback {
    rect: egui::Rect,
    data: HeatmapData,
    /// Its slot in the draw uniform buffer, assigned in `prepare`.
    slot: AtomicU32,
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
    let flags = u32::from(data.masked) | (u32::from(srgb_target) << 1);
    let ints = [to_u32(data.rows), to_u32(data.cols), colormap, flags];
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

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One heatmap's values on the GPU.
struct GpuMap {
    version: u64,
    bind_group: wgpu::BindGroup,
}

/// The pipeline, the per-frame draw slots and one texture per heatmap; lives in egui_wgpu's
/// `callback_resources`.
struct HeatmapResources {
    pipeline: wgpu::RenderPipeline,
    values_layout: wgpu::BindGroupLayout,
    draw_layout: wgpu::BindGroupLayout,
    /// Write linear colour (the framebuffer converts to sRGB).
    srgb_target: bool,
    /// Bytes between draw slots (the device's uniform offset alignment).
    stride: u64,
    draw_buffer: wgpu::Buffer,
    draw_bind_group: wgpu::BindGroup,
    /// Slots in `draw_buffer`.
    capacity: u32,
    /// Draws of the frame being prepared, in slot order.
    pending: Vec<[u8; DRAW_BYTES as usize]>,
    /// The newest data version seen; older maps are dropped when a newer one arrives.
    newest_version: u64,
    maps: HashMap<(usize, usize), GpuMap>,
}

impl HeatmapResources {
    fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("heatmap.wgsl"),
            source: wgpu::ShaderSource::Wgsl(SHADER_WGSL.into()),
        });
        let draw_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("heatmap draw"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: true,
                    min_binding_size: NonZeroU64::new(DRAW_BYTES),
                },
                count: None,
            }],
        });
        let values_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("heatmap values"),
            entries: &[wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::FRAGMENT,
                ty: wgpu::BindingType::Texture {
                    sample_type: wgpu::TextureSampleType::Float { filterable: false },
                    view_dimension: wgpu::TextureViewDimension::D2,
                    multisampled: false,
                },
                count: None,
            }],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("heatmap"),
            bind_group_layouts: &[Some(&draw_layout), Some(&values_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("heatmap"),
            layout: Some(&layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState::default(),
            // egui's pass has no depth buffer and one sample (eframe's and kittest's defaults).
            depth_stencil: None,
            multisample: wgpu::MultisampleState::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target_format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let align = u64::from(device.limits().min_uniform_buffer_offset_alignment).max(1);
        let stride = DRAW_BYTES.div_ceil(align) * align;
        let (draw_buffer, draw_bind_group) =
            draw_slots(device, &draw_layout, stride, INITIAL_SLOTS);
        Self {
            pipeline,
            values_layout,
            draw_layout,
            srgb_target: target_format.is_srgb(),
            stride,
            draw_buffer,
            draw_bind_group,
            capacity: INITIAL_SLOTS,
            pending: Vec::new(),
            newest_version: 0,
            maps: HashMap::new(),
        }
    }

    /// Upload `data`'s values unless the GPU already holds this version.
    fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, data: &HeatmapData) {
        if data.version > self.newest_version {
            self.newest_version = data.version;
            self.maps.retain(|_, m| m.version >= data.version);
        }
        if self
            .maps
            .get(&data.key)
            .is_some_and(|m| m.version == data.version)
        {
            return;
        }
        let (w, h) = (data.cols.max(1), data.rows.max(1));
        let size = wgpu::Extent3d {
            width: to_u32(w),
            height: to_u32(h),
            depth_or_array_layers: 1,
        };
        let texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("heatmap values"),
            size,
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R32Float,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let bytes: Vec<u8> = (0..w * h)
            .flat_map(|k| data.values.get(k).copied().unwrap_or(0.0).to_le_bytes())
            .collect();
        queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(to_u32(4 * w)),
                rows_per_image: Some(to_u32(h)),
            },
            size,
        );
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("heatmap values"),
            layout: &self.values_layout,
            entries: &[wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::TextureView(&view),
            }],
        });
        self.maps.insert(
            data.key,
            GpuMap {
                version: data.version,
                bind_group,
            },
        );
    }

    /// Write the frame's draw slots in one go, growing the buffer when the frame needs more.
    fn flush_draws(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) {
        if self.pending.is_empty() {
            return;
        }
        let needed = to_u32(self.pending.len());
        if needed > self.capacity {
            let capacity = needed.next_power_of_two();
            let (buffer, bind_group) = draw_slots(device, &self.draw_layout, self.stride, capacity);
            self.draw_buffer = buffer;
            self.draw_bind_group = bind_group;
            self.capacity = capacity;
        }
        let stride = usize::try_from(self.stride).unwrap_or(usize::MAX);
        let mut bytes = vec![0u8; self.pending.len() * stride];
        for (chunk, draw) in bytes.chunks_mut(stride).zip(&self.pending) {
            if let Some(dst) = chunk.get_mut(..draw.len()) {
                dst.copy_from_slice(draw);
            }
        }
        queue.write_buffer(&self.draw_buffer, 0, &bytes);
        self.pending.clear();
    }
}

/// A uniform buffer of `slots` draw slots and its bind group (bound with a dynamic offset).
fn draw_slots(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    stride: u64,
    slots: u32,
) -> (wgpu::Buffer, wgpu::BindGroup) {
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("heatmap draws"),
        size: stride * u64::from(slots),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("heatmap draws"),
        layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &buffer,
                offset: 0,
                size: NonZeroU64::new(DRAW_BYTES),
            }),
        }],
    });
    (buffer, bind_group)
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

    #[test]
    fn a_draw_uniform_holds_the_rectangle_in_pixels_and_the_flags() {
        let data = HeatmapData {
            key: (0, 1),
            version: 1,
            values: Arc::from(vec![0.5f32; 6]),
            rows: 2,
            cols: 3,
            colormap: Colormap::Cividis,
            masked: true,
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
    }
}
