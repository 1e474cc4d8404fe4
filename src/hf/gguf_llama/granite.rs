//! IBM Granite's GGUF files (`general.architecture` `granite`), read as llama.cpp reads them:
//! LLaMA's tensors and keys (RoPE in the interleaved layout: the converter permutes q and k as
//! for LLaMA) and four scales, `granite.embedding_scale`, `granite.attention.scale`,
//! `granite.residual_scale` and `granite.logit_scale` (the config's multipliers under other
//! names). As in llama.cpp, a scale that is absent or 0 is none (1; the scores' 1/√d_h).

use std::path::Path;

use candle_core::quantized::gguf_file;

use crate::hf::gguf_llama::metadata::{meta_f64, optional, GraniteScales, LlamaConfig};

/// Granite's scales of a GGUF file into `config` (nothing for other architectures); a scale
/// that is not a finite number at least 0 is refused naming its key.
pub(crate) fn from_gguf(
    c: &gguf_file::Content,
    file: &Path,
    config: &mut LlamaConfig,
) -> anyhow::Result<()> {
    if config.arch != "granite" {
        return Ok(());
    }
    let scale = |k: &str| -> anyhow::Result<Option<f64>> {
        let key = format!("granite.{k}");
        match optional(c, &key, file, meta_f64)? {
            Some(x) if !(x.is_finite() && x >= 0.0) => anyhow::bail!(
                "{}: {key} = {x} must be a finite number of at least 0",
                file.display()
            ),
            x => Ok(x.filter(|x| *x > 0.0)),
        }
    };
    let embedding = scale("embedding_scale")?.unwrap_or(1.0);
    let attention =
        scale("attention.scale")?.unwrap_or(1.0 / (config.head_dim.max(1) as f64).sqrt());
    let residual = scale("residual_scale")?.unwrap_or(1.0);
    let logits = scale("logit_scale")?.unwrap_or(1.0);
    config.granite = Some(GraniteScales {
        embedding,
        attention,
        residual,
        logits,
    });
    Ok(())
}
