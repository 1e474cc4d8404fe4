//! What a GGUF file's metadata says of RoPE: the dimensions of a head it turns, a linear
//! stretch (`rope.scaling.type` linear, as llama.cpp's converter writes Gemma 3 4B's and
//! LLaMA-2 long-context files'), and LongRoPE's attention factor. Any other scaling is refused.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;

use super::meta_read::{meta, meta_f64, meta_usize, optional, wrong_type};

/// The dimensions of a head RoPE turns (`{arch}.rope.dimension_count`): all, or for Phi-3
/// (Phi-4-mini) and StableLM files an even part of them; any other count would change every attention row,
/// so a file asking for one is refused rather than run without it.
pub(super) fn check_rope(
    c: &gguf_file::Content,
    file: &Path,
    arch: &str,
    head_dim: usize,
) -> Result<usize> {
    let refuse = |what: String| -> Result<usize> {
        bail!(
            "{}: {what}; this forward rotates every dimension of a head (part of it only \
             in Phi-3 and StableLM files), so its attention would not be the model's",
            file.display()
        )
    };
    let n = optional(c, &format!("{arch}.rope.dimension_count"), file, meta_usize)?;
    match n.unwrap_or(head_dim) {
        // Phi-4-mini's partial rotation: the turned dimensions first (`rope::turned_first`).
        n if matches!(arch, "phi3" | "stablelm") && n >= 2 && n % 2 == 0 && n < head_dim => Ok(n),
        n if n == head_dim => Ok(n),
        n => refuse(format!(
            "metadata {arch}.rope.dimension_count is {n}, not the head width {head_dim}"
        )),
    }
}

/// The linear stretch of the RoPE frequencies (each divided by `{arch}.rope.scaling.factor`)
/// where `{arch}.rope.scaling.type` is "linear" or absent with a factor other than 0 or 1, as
/// llama.cpp applies it (to every layer but Gemma 3's local ones); None without one. YaRN and
/// other kinds are refused: llama.cpp computes them its own way.
pub(super) fn linear_stretch(
    c: &gguf_file::Content,
    file: &Path,
    arch: &str,
) -> Result<Option<f64>> {
    let kind = optional(c, &format!("{arch}.rope.scaling.type"), file, |c, k, f| {
        let text = meta(c, k, f)?.to_string();
        Ok(text.map_err(|e| wrong_type(f, k, "a string", &e))?.clone())
    })?;
    let key = format!("{arch}.rope.scaling.factor");
    let factor = optional(c, &key, file, meta_f64)?.filter(|f| *f != 1.0 && *f != 0.0);
    let refuse = |what: String| -> Result<Option<f64>> {
        bail!(
            "{}: {what}; this forward turns RoPE plainly or stretched linearly, so its \
             attention would not be the model's",
            file.display()
        )
    };
    match (kind.as_deref(), factor) {
        (None | Some("none") | Some("linear"), None) => Ok(None),
        (None | Some("linear"), Some(f)) if f.is_finite() && f > 0.0 => Ok(Some(f)),
        (None | Some("linear"), Some(f)) => refuse(format!("metadata {key} is {f}")),
        (Some("none"), Some(f)) => refuse(format!(
            "metadata {arch}.rope.scaling.type is \"none\" but {key} is {f}"
        )),
        (Some(kind), _) => refuse(format!("metadata {arch}.rope.scaling.type is {kind:?}")),
    }
}

/// The factor on RoPE's cos and sin (`{arch}.rope.scaling.attn_factor`: LongRoPE's, as
/// llama.cpp's converter writes Phi-3.5's); 1 where the file names none.
pub(super) fn attn_factor(c: &gguf_file::Content, file: &Path, arch: &str) -> Result<f64> {
    let key = format!("{arch}.rope.scaling.attn_factor");
    match optional(c, &key, file, meta_f64)? {
        Some(f) if !(f.is_finite() && f > 0.0) => {
            bail!(
                "{}: metadata {key} is {f}, not a finite number above 0",
                file.display()
            )
        }
        f => Ok(f.unwrap_or(1.0)),
    }
}

/// OLMo's clip of q, k and v (`{arch}.attention.clamp_kqv`, as llama.cpp's converter writes
/// OLMo-7B-0424's `clip_qkv`): a finite number above 0, or None where the file names none.
/// (Not RoPE, but read with the other attention settings of the metadata here.)
pub(super) fn clamp_kqv(c: &gguf_file::Content, file: &Path, arch: &str) -> Result<Option<f64>> {
    let key = format!("{arch}.attention.clamp_kqv");
    match optional(c, &key, file, meta_f64)? {
        Some(m) if !(m.is_finite() && m > 0.0) => {
            bail!(
                "{}: metadata {key} is {m}, not a finite number above 0",
                file.display()
            )
        }
        m => Ok(m),
    }
}
