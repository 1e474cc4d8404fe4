//! Exports from the studio: the current capture as CSV or JSON (the same formats as
//! `localist capture`), and a heatmap as a PNG in the chosen colormap, enlarged with nearest-
//! neighbour pixels so cells stay sharp.

use anyhow::{Context, Result};

use crate::engine::worker::LivePoint;
use crate::engine::{Capture, HeadCapture};
use crate::studio::colormap::Colormap;
use crate::studio::panels::attention::head_pixels;
use crate::studio::state::CurvePoint;

/// PNG bytes of an RGBA image (a region of a screenshot: a plot or a heatmap as drawn).
pub fn rgba_png(width: usize, height: usize, rgba: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("PNG header")?;
        writer.write_image_data(rgba).context("PNG data")?;
    }
    Ok(out)
}

/// The numbers behind the training plots as CSV: one row per step with the loss and Ω, and
/// the live held-out metrics on the steps where they were measured (empty cells elsewhere).
pub fn training_csv(curve: &[CurvePoint], live: &[LivePoint]) -> String {
    use std::collections::BTreeMap;
    let mut rows: BTreeMap<usize, (Option<&CurvePoint>, Option<&LivePoint>)> = BTreeMap::new();
    for c in curve {
        rows.entry(c.step + 1).or_default().0 = Some(c);
    }
    for l in live {
        rows.entry(l.step).or_default().1 = Some(l);
    }
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_default();
    let mut out = String::from(
        "steps_done,loss_nats,penalty,perplexity,entropy_bits,eps,pf_mass,pf_top1,\
         pf_true_mass,text_eps,text_eps_bound,text_entropy_bits,text_entropy_bound_bits\n",
    );
    for (step, (c, l)) in rows {
        let e = l.map(|l| &l.eval);
        let t = l.and_then(|l| l.theory.as_ref());
        out.push_str(&format!(
            "{step},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            opt(c.map(|c| c.loss_nats)),
            opt(c.map(|c| c.penalty)),
            opt(e.map(|e| e.perplexity)),
            opt(e.map(|e| e.entropy_bits)),
            opt(e.map(|e| e.off_block_mass)),
            opt(e.map(|e| e.pf_mass)),
            opt(e.map(|e| e.pf_top1)),
            opt(e.and_then(|e| e.pf_true_mass)),
            opt(t.map(|t| t.eps)),
            opt(t.and_then(|t| t.eps_bound)),
            opt(t.map(|t| t.entropy_bits)),
            opt(t.and_then(|t| t.entropy_bound_bits)),
        ));
    }
    out
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
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, sw as u32, sh as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("PNG header")?;
        writer.write_image_data(&big).context("PNG data")?;
    }
    Ok(out)
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
            dial: DialSetting::default(),
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
