//! What the Compare panel draws for one side: the matrix (one head, or the mean of a layer's
//! heads), its statistics, and its CPU texture when the shader is not in use.

use egui::{ColorImage, TextureHandle, TextureOptions};

use crate::engine::figures::Colormap;
use crate::engine::AttentionLayout;
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

/// Which cells of layer `layer`'s full matrix of `cap` hold no weight the model can give:
/// (causal, a local layer's window), for [`AttentionLayout::masked`].
pub(super) fn mask_of(cap: &Capture, layer: usize) -> (bool, Option<usize>) {
    (cap.causal, cap.window(layer))
}

/// A CPU texture of one side's `t` × `t` matrix (masked cells dark grey, `mask` as
/// [`AttentionLayout::masked`] reads it).
pub(super) fn texture(
    ctx: &egui::Context,
    name: &str,
    values: &[f32],
    t: usize,
    mask: (bool, Option<usize>),
    cm: Colormap,
) -> TextureHandle {
    matrix_texture(ctx, name, values, t, mask, |v| cm.rgb(v))
}

/// A CPU texture of a `t` × `t` matrix, each value coloured by `px` (masked cells dark grey,
/// `mask` as [`AttentionLayout::masked`] reads it).
pub(super) fn matrix_texture(
    ctx: &egui::Context,
    name: &str,
    values: &[f32],
    t: usize,
    mask: (bool, Option<usize>),
    px: impl Fn(f32) -> [u8; 3],
) -> TextureHandle {
    let rgb = matrix_pixels(values, t, mask, px);
    ctx.load_texture(
        name,
        ColorImage::from_rgb([t, t], &rgb),
        TextureOptions::NEAREST,
    )
}

/// The RGB pixels of [`matrix_texture`].
fn matrix_pixels(
    values: &[f32],
    t: usize,
    mask: (bool, Option<usize>),
    px: impl Fn(f32) -> [u8; 3],
) -> Vec<u8> {
    let lay = AttentionLayout::full(t);
    let mut rgb = Vec::with_capacity(t * t * 3);
    for i in 0..t {
        for j in 0..t {
            let c = if lay.masked(i, j, mask) {
                crate::engine::figures::MASKED
            } else {
                px(values.get(i * t + j).copied().unwrap_or(0.0))
            };
            rgb.extend_from_slice(&c);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A causal side greys the keys after each query; an encoder's local layer the keys
    /// farther than its window; both together the union.
    #[test]
    fn the_compare_maps_grey_what_the_layout_masks() {
        let grey = |mask: (bool, Option<usize>)| -> Vec<bool> {
            let rgb = matrix_pixels(&[0.5; 16], 4, mask, |_| [1, 2, 3]);
            rgb.chunks(3)
                .map(|c| c == crate::engine::figures::MASKED)
                .collect()
        };
        let cells = |f: fn(usize, usize) -> bool| -> Vec<bool> {
            (0..16).map(|k| f(k / 4, k % 4)).collect()
        };
        assert_eq!(grey((false, None)), vec![false; 16]);
        assert_eq!(grey((true, None)), cells(|i, j| j > i));
        assert_eq!(grey((false, Some(1))), cells(|i, j| i.abs_diff(j) > 1));
        assert_eq!(grey((true, Some(1))), cells(|i, j| j > i || i > j + 1));
    }
}
