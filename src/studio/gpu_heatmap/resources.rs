//! What the GPU heatmaps keep on the GPU: the pipeline built once from the shader, a uniform
//! buffer of per-frame draw slots, and one R32Float texture per heatmap. It lives in
//! egui_wgpu's `callback_resources`.

use std::collections::HashMap;
use std::num::NonZeroU64;

use eframe::egui_wgpu::wgpu;

use super::{to_u32, HeatmapData, DRAW_BYTES, SHADER_WGSL};

/// Draw slots the uniform buffer starts with (it grows by doubling).
const INITIAL_SLOTS: u32 = 16;

/// One heatmap's values on the GPU.
pub(super) struct GpuMap {
    version: u64,
    /// The bind group of its values texture.
    pub(super) bind_group: wgpu::BindGroup,
}

/// The pipeline, the per-frame draw slots and one texture per heatmap; lives in egui_wgpu's
/// `callback_resources`.
pub(super) struct HeatmapResources {
    pub(super) pipeline: wgpu::RenderPipeline,
    values_layout: wgpu::BindGroupLayout,
    draw_layout: wgpu::BindGroupLayout,
    /// Write linear colour (the framebuffer converts to sRGB).
    pub(super) srgb_target: bool,
    /// Bytes between draw slots (the device's uniform offset alignment).
    pub(super) stride: u64,
    draw_buffer: wgpu::Buffer,
    pub(super) draw_bind_group: wgpu::BindGroup,
    /// Slots in `draw_buffer`.
    pub(super) capacity: u32,
    /// Draws of the frame being prepared, in slot order.
    pub(super) pending: Vec<[u8; DRAW_BYTES as usize]>,
    /// The newest data version seen; older maps are dropped when a newer one arrives.
    newest_version: u64,
    pub(super) maps: HashMap<(usize, usize), GpuMap>,
}

impl HeatmapResources {
    /// Build the pipeline from the shader for `target_format`, with the first draw slots.
    pub(super) fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let draw_layout = draw_layout(device);
        let values_layout = values_layout(device);
        let pipeline = pipeline(device, target_format, &draw_layout, &values_layout);
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
    pub(super) fn upload(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        data: &HeatmapData,
    ) {
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
    pub(super) fn flush_draws(&mut self, device: &wgpu::Device, queue: &wgpu::Queue) {
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

/// Bind group 0: the frame's draw slots, one uniform per heatmap at a dynamic offset.
fn draw_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
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
    })
}

/// Bind group 1: one heatmap's values, an R32Float texture read with `textureLoad`.
fn values_layout(device: &wgpu::Device) -> wgpu::BindGroupLayout {
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
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
    })
}

/// The render pipeline of `shaders/heatmap.wgsl`: one full-rectangle triangle per heatmap.
fn pipeline(
    device: &wgpu::Device,
    target_format: wgpu::TextureFormat,
    draw_layout: &wgpu::BindGroupLayout,
    values_layout: &wgpu::BindGroupLayout,
) -> wgpu::RenderPipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("heatmap.wgsl"),
        source: wgpu::ShaderSource::Wgsl(SHADER_WGSL.into()),
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("heatmap"),
        bind_group_layouts: &[Some(draw_layout), Some(values_layout)],
        immediate_size: 0,
    });
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
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
    })
}
