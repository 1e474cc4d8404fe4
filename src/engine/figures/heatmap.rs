//! Heatmap pixels of one attention head in a colormap, and the same as a PNG enlarged with
//! nearest-neighbour pixels so cells stay sharp. The studio's CPU textures, its PNG export and
//! the audit report's figures all come from here, so they show the same colours.

use anyhow::Result;

use crate::engine::figures::colormap::Colormap;
use crate::engine::figures::png::rgb_png;
use crate::engine::{Capture, HeadCapture};

/// Colour of masked (future) cells.
pub const MASKED: [u8; 3] = [40, 40, 40];

/// RGB pixels of one head: its attention grid (T × T, or the pooled grid of a long text's
/// capture), or its block masses (rows × K) when `aggregated`. Returns (width, height, pixels).
pub fn head_pixels(
    cap: &Capture,
    hc: &HeadCapture,
    cm: Colormap,
    aggregated: bool,
) -> (usize, usize, Vec<u8>) {
    let lay = cap.attention_layout();
    let (h, w, values): (usize, usize, &[f32]) = if aggregated {
        (cap.block_rows(), cap.num_blocks(), &hc.block_mass)
    } else {
        let (gr, gc) = lay.grid();
        (gr, gc, &hc.attention)
    };
    let mut rgb = Vec::with_capacity(w * h * 3);
    let mask = (cap.causal, cap.window(hc.layer));
    for i in 0..h {
        for j in 0..w {
            let px = if !aggregated && lay.masked(i, j, mask) {
                MASKED
            } else {
                cm.rgb(values.get(i * w + j).copied().unwrap_or(0.0))
            };
            rgb.extend_from_slice(&px);
        }
    }
    (w, h, rgb)
}

/// PNG bytes of one head's heatmap, each cell `scale` × `scale` pixels.
pub fn head_png(
    cap: &Capture,
    hc: &HeadCapture,
    cm: Colormap,
    aggregated: bool,
    scale: usize,
) -> Result<Vec<u8>> {
    let (w, h, rgb) = head_pixels(cap, hc, cm, aggregated);
    let scale = scale.max(1);
    let (sw, sh) = (w * scale, h * scale);
    let mut big = Vec::with_capacity(sw * sh * 3);
    for y in 0..sh {
        for x in 0..sw {
            let src = ((y / scale) * w + x / scale) * 3;
            big.extend_from_slice(rgb.get(src..src + 3).unwrap_or(&[0, 0, 0]));
        }
    }
    rgb_png(sw, sh, &big)
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::DialSetting;

    #[test]
    fn head_png_has_the_scaled_size_and_the_colormap_colours() {
        // A 2-token capture, one head: row 0 = [1, masked], row 1 = [0.25, 0.75].
        let hc = HeadCapture {
            layer: 0,
            head: 0,
            attention: vec![1.0, 0.0, 0.25, 0.75],
            block_mass: vec![1.0, 1.0],
            off_block_mass: vec![0.0, 0.0],
            entropy_bits: vec![0.0, 0.811],
            margin: vec![f32::INFINITY; 2],
        };
        let cap = Capture {
            ids: vec![1, 2],
            key_blocks: vec![0, 0],
            relevant_blocks: vec![0, 0],
            block_names: vec!["unassigned".into()],
            num_layers: 1,
            num_heads: 1,
            heads: vec![hc.clone()],
            logits: Vec::new(),
            causal: true,
            windows: Vec::new(),
            dial: DialSetting::default(),
            layout: None,
            block_stride: 1,
            weak_map: None,
        };
        let bytes = head_png(&cap, &hc, Colormap::Viridis, false, 4).unwrap_or_default();
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap_or_else(|_| unreachable!());
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .unwrap_or_else(|_| unreachable!());
        assert_eq!((info.width, info.height), (8, 8));
        let px = |x: usize, y: usize| {
            buf.get((y * 8 + x) * 3..(y * 8 + x) * 3 + 3)
                .map(<[u8]>::to_vec)
        };
        assert_eq!(px(0, 0), Some(Colormap::Viridis.rgb(1.0).to_vec()));
        assert_eq!(px(7, 0), Some(vec![40, 40, 40]), "masked cell");
        assert_eq!(px(5, 6), Some(Colormap::Viridis.rgb(0.75).to_vec()));
    }
}
