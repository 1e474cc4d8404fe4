//! llama.cpp's 4-bit non-linear quantizations, which candle does not read, dequantized to f32 as
//! ggml's `dequantize_row_iq4_nl` and `dequantize_row_iq4_xs` do: each 4-bit index picks one of
//! sixteen signed levels (denser near 0), scaled by the block's f16 scale (IQ4_NL, blocks of
//! 32) or by the super-block's f16 scale times a 6-bit scale of each 32 (IQ4_XS, blocks of 256,
//! the scale stored less 32). `IQ4_XS` files are among the common downloads of small models.

use std::io::{Read, Seek, SeekFrom};

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use half::f16;

use crate::hf::gguf_llama::ggml_type::TensorType;
use crate::hf::gguf_llama::header::{GgufHeader, TensorEntry};

/// The sixteen levels (`kvalues_iq4nl` in ggml).
const LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// Append the 32 values of one run of 16 index bytes (low nibbles first, then high) at scale `d`.
fn run_of_32(d: f32, qs: &[u8], out: &mut Vec<f32>) {
    out.extend(
        qs.iter()
            .map(|q| d * f32::from(LEVELS[usize::from(q & 0xf)])),
    );
    out.extend(
        qs.iter()
            .map(|q| d * f32::from(LEVELS[usize::from(q >> 4)])),
    );
}

fn scale(b: &[u8]) -> f32 {
    f16::from_le_bytes([b[0], b[1]]).to_f32()
}

/// The values of `data`, whole blocks of `kind` (IQ4_NL or IQ4_XS).
pub fn dequantize(kind: TensorType, data: &[u8]) -> Vec<f32> {
    let mut out = Vec::with_capacity(data.len() / kind.type_size() * kind.block_size());
    for b in data.chunks_exact(kind.type_size()) {
        match kind {
            TensorType::Iq4Nl => run_of_32(scale(b), &b[2..18], &mut out),
            _ => {
                let d = scale(b);
                let high = u16::from_le_bytes([b[2], b[3]]);
                let (low, qs) = (&b[4..8], &b[8..136]);
                for (i, run) in qs.chunks_exact(16).enumerate() {
                    let l = (low[i / 2] >> (4 * (i % 2))) & 0xf;
                    let h = ((high >> (2 * i)) & 3) as u8;
                    let ls = i32::from(l | (h << 4)) - 32;
                    run_of_32(d * ls as f32, run, &mut out);
                }
            }
        }
    }
    out
}

/// Read tensor `t` (of an IQ4 type, checked placed in the file by the header check) from `file`
/// and dequantize it.
pub fn read(
    file: &mut (impl Read + Seek),
    t: &TensorEntry,
    device: &Device,
) -> anyhow::Result<Tensor> {
    let mut data = vec![0u8; usize::try_from(t.bytes)?];
    file.seek(SeekFrom::Start(t.start))?;
    file.read_exact(&mut data)?;
    Ok(Tensor::from_vec(
        dequantize(t.dtype, &data),
        t.shape.as_slice(),
        device,
    )?)
}

/// candle's reading of the file's metadata and tensor table. Where a tensor is of a type candle
/// does not know (IQ4), its reader refuses the whole file, so it reads a copy of the header
/// with those types written over as F32; those tensors are read by [`read`], never by candle.
pub fn content(
    file: &mut (impl Read + Seek),
    header: &GgufHeader,
) -> anyhow::Result<gguf_file::Content> {
    file.seek(SeekFrom::Start(0))?;
    let ours: Vec<u64> = (header.tensors.iter())
        .filter(|t| t.dtype.candle().is_none())
        .map(|t| t.type_at)
        .collect();
    if ours.is_empty() {
        return Ok(gguf_file::Content::read(file)?);
    }
    let mut head = vec![0u8; usize::try_from(header.data_offset)?];
    file.read_exact(&mut head)?;
    for at in ours {
        let at = usize::try_from(at)?;
        head[at..at + 4].copy_from_slice(&0u32.to_le_bytes());
    }
    Ok(gguf_file::Content::read(&mut std::io::Cursor::new(head))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_iq4_nl_block_reads_its_levels_scaled() {
        let mut b = vec![0u8; 18];
        b[..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        b[2] = 0xf0; // value 0: level 0 (-127); value 16: level 15 (113)
        let v = dequantize(TensorType::Iq4Nl, &b);
        assert_eq!(v.len(), 32);
        assert_eq!((v[0], v[16], v[1], v[17]), (-63.5, 56.5, -63.5, -63.5));
    }

    #[test]
    fn iq4_xs_scales_each_run_by_its_six_bits_less_32() {
        let mut b = vec![0u8; 136];
        b[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
        // Run 0: low 4 bits 1, high 2 bits 2 → 33 − 32 = 1. Run 1: low 0, high 0 → −32.
        b[4] = 0x01;
        b[2] = 0b10;
        b[8..136].fill(0x88); // level 8 (1) everywhere
        let v = dequantize(TensorType::Iq4Xs, &b);
        assert_eq!(v.len(), 256);
        assert_eq!((v[0], v[31], v[32], v[63]), (1.0, 1.0, -32.0, -32.0));
    }
}
