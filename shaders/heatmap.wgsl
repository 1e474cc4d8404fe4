// One attention heatmap: a rows x cols grid of f32 values (T x T attention, or T x K block
// masses) coloured by viridis or cividis, with nearest-cell sampling and no blur.
//
// Drawn by `src/studio/gpu_heatmap.rs` through an egui_wgpu paint callback. The values live in
// an R32Float texture read with `textureLoad` (no sampler), uploaded once per capture; each draw
// only picks a slot of a small uniform buffer (its rectangle and colormap) and draws one
// triangle. The colormap polynomials are the ones in `src/studio/colormap.rs`; a unit test
// parses the tables below and checks them against the Rust colormap.

struct Draw {
    // The heatmap's rectangle in framebuffer pixels: x, y, width, height. Cells are found from
    // the fragment position, so a heatmap partly scrolled out of view stays in place.
    rect_px: vec4<f32>,
    rows: u32,
    cols: u32,
    // 0: viridis, 1: cividis.
    colormap: u32,
    // Bit 0: causal mask (cells whose keys all come after all their queries are dark grey).
    // Bit 1: the framebuffer is sRGB, so write linear colour.
    flags: u32,
    // The grid's first query and first key, and the positions per cell side: a cell (i, j)
    // holds queries row0 + i·stride … and keys key0 + j·stride … (a pooled or zoomed grid).
    row0: u32,
    key0: u32,
    stride: u32,
    // A local layer's window + 1 (0: none): cells whose keys all lie farther than the window
    // from all their queries are dark grey. Below 2^30, so the sums below cannot overflow.
    window: u32,
    // The grid's last query and last key + 1 (the last row's and column's cells may be cut
    // short), or 0xFFFFFFFF for no cut; then two words of padding to 64 bytes.
    row_end: u32,
    key_end: u32,
    pad0: u32,
    pad1: u32,
};

@group(0) @binding(0) var<uniform> draw: Draw;
@group(1) @binding(0) var values: texture_2d<f32>;

// Degree-6 polynomial per channel, constant term first.
const VIRIDIS = array<vec3<f32>, 7>(
    vec3<f32>(0.2777273, 0.005407344, 0.3340998),
    vec3<f32>(0.10509304, 1.4046135, 1.3845902),
    vec3<f32>(-0.33086183, 0.21484756, 0.09509516),
    vec3<f32>(-4.6342305, -5.799101, -19.332441),
    vec3<f32>(6.22827, 14.179934, 56.69055),
    vec3<f32>(4.776385, -13.745146, -65.35303),
    vec3<f32>(-5.435456, 4.6458526, 26.312435),
);

const CIVIDIS = array<vec3<f32>, 7>(
    vec3<f32>(-0.008973, 0.136756, 0.294170),
    vec3<f32>(-0.384689, 0.639494, 2.982654),
    vec3<f32>(15.42921, 0.385562, -22.36376),
    vec3<f32>(-58.97703, -1.404197, 74.86356),
    vec3<f32>(102.37049, 2.600914, -121.30316),
    vec3<f32>(-83.18724, -2.14075, 93.97422),
    vec3<f32>(25.77607, 0.688122, -28.262533),
);

// Masked cells (keys after the query, or outside a local window): (40, 40, 40) in sRGB bytes.
const MASKED = vec3<f32>(0.15686275, 0.15686275, 0.15686275);

struct VertexOut {
    @builtin(position) position: vec4<f32>,
};

// One triangle that covers the whole viewport, which egui sets to the heatmap's rectangle.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let x = f32((index << 1u) & 2u);
    let y = f32(index & 2u);
    var out: VertexOut;
    out.position = vec4<f32>(x * 2.0 - 1.0, 1.0 - y * 2.0, 0.0, 1.0);
    return out;
}

// Horner's rule in the same order as `colormap.rs`: ((c6 t + c5) t + ...) t + c0.
fn viridis(t: f32) -> vec3<f32> {
    let c = VIRIDIS;
    return (((((c[6] * t + c[5]) * t + c[4]) * t + c[3]) * t + c[2]) * t + c[1]) * t + c[0];
}

fn cividis(t: f32) -> vec3<f32> {
    let c = CIVIDIS;
    return (((((c[6] * t + c[5]) * t + c[4]) * t + c[3]) * t + c[2]) * t + c[1]) * t + c[0];
}

fn linear_from_gamma(srgb: vec3<f32>) -> vec3<f32> {
    let lower = srgb / 12.92;
    let higher = pow((srgb + 0.055) / 1.055, vec3<f32>(2.4));
    return select(higher, lower, srgb < vec3<f32>(0.04045));
}

@fragment
fn fs_main(in: VertexOut) -> @location(0) vec4<f32> {
    let rel = (in.position.xy - draw.rect_px.xy) / max(draw.rect_px.zw, vec2<f32>(1.0));
    let rows = max(draw.rows, 1u);
    let cols = max(draw.cols, 1u);
    let i = min(u32(max(rel.y, 0.0) * f32(rows)), rows - 1u);
    let j = min(u32(max(rel.x, 0.0) * f32(cols)), cols - 1u);
    // The cell's queries q0..q1 and keys k0..k1 in the model's positions.
    let s = max(draw.stride, 1u);
    let q0 = draw.row0 + i * s;
    let q1 = min(q0 + s - 1u, max(draw.row_end, 1u) - 1u);
    let k0 = draw.key0 + j * s;
    let k1 = min(k0 + s - 1u, max(draw.key_end, 1u) - 1u);
    var hidden = (draw.flags & 1u) != 0u && k0 > q1;
    if draw.window != 0u {
        let w = draw.window - 1u;
        hidden = hidden || k0 > q1 + w || q0 > k1 + w;
    }
    var rgb: vec3<f32>;
    if hidden {
        rgb = MASKED;
    } else {
        let t = clamp(textureLoad(values, vec2<u32>(j, i), 0).r, 0.0, 1.0);
        if draw.colormap == 1u {
            rgb = cividis(t);
        } else {
            rgb = viridis(t);
        }
        rgb = clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0));
    }
    if (draw.flags & 2u) != 0u {
        rgb = linear_from_gamma(rgb);
    }
    return vec4<f32>(rgb, 1.0);
}
