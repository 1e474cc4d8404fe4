//! PNG encoding of 8-bit RGB and RGBA pixel buffers, the one place the `png` crate is called.

use anyhow::{Context, Result};

/// PNG bytes of an RGBA image (a region of a screenshot: a plot or a heatmap as drawn).
pub fn rgba_png(width: usize, height: usize, rgba: &[u8]) -> Result<Vec<u8>> {
    encode(width, height, png::ColorType::Rgba, rgba)
}

/// PNG bytes of an RGB image (a rendered heatmap).
pub fn rgb_png(width: usize, height: usize, rgb: &[u8]) -> Result<Vec<u8>> {
    encode(width, height, png::ColorType::Rgb, rgb)
}

fn encode(width: usize, height: usize, colour: png::ColorType, data: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(colour);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().context("PNG header")?;
        writer.write_image_data(data).context("PNG data")?;
    }
    Ok(out)
}
