//! What the Compare panel draws for one side: the matrix (one head, or the mean of a layer's
//! heads), its statistics, and its CPU texture when the shader is not in use.

use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::engine::figures::Colormap;
use crate::engine::Capture;

/// The matrix shown for one side: one head's attention, or the mean over the layer's heads.
pub fn side_matrix(cap: &Capture, layer: usize, head: Option<usize>) -> Vec<f32> {
    let t = cap.len();
    match head {
        Some(h) => cap
            .head(layer, h)
            .map(|hc| hc.attention.clone())
            .unwrap_or_default(),
        None => {
            let mut sum = vec![0.0f32; t * t];
            let heads: Vec<_> = (0..cap.num_heads)
                .filter_map(|h| cap.head(layer, h))
                .collect();
            for hc in &heads {
                for (s, a) in sum.iter_mut().zip(&hc.attention) {
                    *s += a;
                }
            }
            let n = heads.len().max(1) as f32;
            sum.iter_mut().for_each(|s| *s /= n);
            sum
        }
    }
}

/// Mean entropy (bits) and ε of the selected layer and head(s) of one side.
pub fn side_stats(cap: &Capture, layer: usize, head: Option<usize>) -> (f64, f64) {
    let heads: Vec<_> = match head {
        Some(h) => cap.head(layer, h).into_iter().collect(),
        None => (0..cap.num_heads)
            .filter_map(|h| cap.head(layer, h))
            .collect(),
    };
    let mean = |f: &dyn Fn(&crate::engine::HeadCapture) -> &[f32]| {
        let (s, n) = heads.iter().fold((0.0, 0usize), |(s, n), hc| {
            let v = f(hc);
            (s + v.iter().map(|&x| x as f64).sum::<f64>(), n + v.len())
        });
        if n == 0 {
            0.0
        } else {
            s / n as f64
        }
    };
    (mean(&|hc| &hc.entropy_bits), mean(&|hc| &hc.off_block_mass))
}

/// A CPU texture of one side's `t` × `t` matrix (masked cells dark grey when `causal`).
pub(super) fn texture(
    ctx: &egui::Context,
    name: &str,
    values: &[f32],
    t: usize,
    causal: bool,
    cm: Colormap,
) -> TextureHandle {
    matrix_texture(ctx, name, values, t, causal, |v| cm.rgb(v))
}

/// A CPU texture of a `t` × `t` matrix, each value coloured by `px` (masked cells dark grey
/// when `causal`).
pub(super) fn matrix_texture(
    ctx: &egui::Context,
    name: &str,
    values: &[f32],
    t: usize,
    causal: bool,
    px: impl Fn(f32) -> [u8; 3],
) -> TextureHandle {
    let mut rgb = Vec::with_capacity(t * t * 3);
    for i in 0..t {
        for j in 0..t {
            let c = if causal && j > i {
                crate::engine::figures::MASKED
            } else {
                px(values.get(i * t + j).copied().unwrap_or(0.0))
            };
            rgb.extend_from_slice(&c);
        }
    }
    ctx.load_texture(
        name,
        ColorImage::from_rgb([t, t], &rgb),
        TextureOptions::NEAREST,
    )
}
