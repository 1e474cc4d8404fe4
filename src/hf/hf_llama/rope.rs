//! RoPE's settings in a LLaMA-family `config.json` ([`RopeParameters`]), and LLaMA-3.1's and
//! 3.2's "llama3" scaling computed from them.

use serde::Deserialize;

/// RoPE settings as transformers 5 writes them (`rope_parameters`); older configs have
/// `rope_theta` and `rope_scaling` (the same fields but the base, `type` for `rope_type`) at
/// the top level.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RopeParameters {
    /// The RoPE base.
    pub rope_theta: Option<f64>,
    /// "default", or "llama3" (LLaMA-3.1's and 3.2's scaling, with the four fields below).
    pub rope_type: Option<String>,
    /// The same, as older configs name it.
    #[serde(rename = "type")]
    pub old_type: Option<String>,
    /// "llama3": how much slower the low frequencies turn.
    pub factor: Option<f64>,
    /// "llama3": wavelengths above original_max_position_embeddings / this are slowed whole.
    pub low_freq_factor: Option<f64>,
    /// "llama3": wavelengths below original_max_position_embeddings / this are kept.
    pub high_freq_factor: Option<f64>,
    /// "llama3": the context the model was first trained on.
    pub original_max_position_embeddings: Option<f64>,
    /// The share of each head's dimensions RoPE rotates (Phi-3's and others'; only 1 is
    /// supported).
    pub partial_rotary_factor: Option<f64>,
}

impl RopeParameters {
    /// Its kind (`rope_type`, or the older `type`).
    pub(super) fn kind(&self) -> Option<&str> {
        self.rope_type.as_deref().or(self.old_type.as_deref())
    }

    /// The per-frequency divisors of "llama3" scaling for heads of width `dh` at `base`, as
    /// transformers applies them (and llama.cpp's converter writes them as `rope_freqs`):
    /// 1 for short wavelengths, `factor` for long ones, and between them a smooth blend.
    pub(super) fn llama3_factors(&self, dh: usize, base: f64) -> Result<Vec<f32>, String> {
        let field = |name: &str, v: Option<f64>| match v {
            Some(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(format!(
                "rope_type \"llama3\" needs {name}, a finite number above 0 (got {v:?})"
            )),
        };
        let factor = field("factor", self.factor)?;
        let low = field("low_freq_factor", self.low_freq_factor)?;
        let high = field("high_freq_factor", self.high_freq_factor)?;
        let old = field(
            "original_max_position_embeddings",
            self.original_max_position_embeddings,
        )?;
        if high <= low {
            return Err(format!(
                "rope_type \"llama3\": high_freq_factor {high} must be above low_freq_factor {low}"
            ));
        }
        let (low_wavelen, high_wavelen) = (old / low, old / high);
        Ok((0..dh / 2)
            .map(|i| {
                let freq = 1.0 / base.powf(2.0 * i as f64 / dh as f64);
                let wavelen = 2.0 * std::f64::consts::PI / freq;
                let f = if wavelen < high_wavelen {
                    1.0
                } else if wavelen > low_wavelen {
                    factor
                } else {
                    let smooth = (old / wavelen - low) / (high - low);
                    1.0 / ((1.0 - smooth) / factor + smooth)
                };
                f as f32
            })
            .collect())
    }
}
