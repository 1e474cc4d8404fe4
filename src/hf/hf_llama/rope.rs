//! RoPE's settings in a LLaMA-family `config.json` ([`RopeParameters`]), and what each kind
//! of scaling transformers knows does to the plain rotation ([`RopeScaling`]): LLaMA-3.1's and
//! 3.2's "llama3", "linear", "dynamic" (NTK), "yarn" (Qwen's and DeepSeek's long contexts) and
//! "longrope" (Phi-3.5, Phi-3's 128k models, Phi-4-mini), each computed as transformers 5
//! computes it (`modeling_rope_utils`).

use serde::Deserialize;

/// RoPE settings as transformers 5 writes them (`rope_parameters`); older configs have
/// `rope_theta` and `rope_scaling` (the same fields but the base, `type` for `rope_type`) at
/// the top level.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct RopeParameters {
    /// The RoPE base.
    pub rope_theta: Option<f64>,
    /// "default", "llama3", "linear", "dynamic", "yarn" or "longrope".
    pub rope_type: Option<String>,
    /// The same, as older configs name it.
    #[serde(rename = "type")]
    pub old_type: Option<String>,
    /// How far the context is stretched ("llama3", "linear", "yarn"; "longrope" reads
    /// max_position_embeddings / original_max_position_embeddings when absent).
    pub factor: Option<f64>,
    /// "llama3": wavelengths above original_max_position_embeddings / this are slowed whole.
    pub low_freq_factor: Option<f64>,
    /// "llama3": wavelengths below original_max_position_embeddings / this are kept.
    pub high_freq_factor: Option<f64>,
    /// The context the model was first trained on.
    pub original_max_position_embeddings: Option<f64>,
    /// The share of each head's dimensions RoPE rotates (Phi-3's, Phi-4-mini's 0.75).
    pub partial_rotary_factor: Option<f64>,
    /// "longrope": the divisors of each frequency for texts within the original context.
    pub short_factor: Option<Vec<f64>>,
    /// "longrope": the divisors beyond it.
    pub long_factor: Option<Vec<f64>>,
    /// "yarn", "longrope": the factor on cos and sin (computed from `factor` when absent).
    pub attention_factor: Option<f64>,
    /// "yarn": the rotations below which a frequency is kept (32 when absent or 0).
    pub beta_fast: Option<f64>,
    /// "yarn": the rotations above which a frequency is stretched whole (1 when absent or 0).
    pub beta_slow: Option<f64>,
    /// "yarn" (DeepSeek's): the attention factor's numerator scale.
    pub mscale: Option<f64>,
    /// "yarn" (DeepSeek's): the attention factor's denominator scale.
    pub mscale_all_dim: Option<f64>,
    /// "yarn": whether the blend's range is rounded outwards to whole dimensions (true).
    pub truncate: Option<bool>,
    /// OLMo 3's settings per layer kind (transformers 5): the full-attention layers'.
    pub full_attention: Option<Box<RopeParameters>>,
    /// OLMo 3's sliding-window layers' (the plain rotation in every release).
    pub sliding_attention: Option<Box<RopeParameters>>,
}

/// What a config's RoPE scaling does to the plain rotation of its `dims` rotated dimensions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RopeScaling {
    /// Per-frequency divisors [dims/2]; None: the plain frequencies.
    pub divisors: Option<Vec<f32>>,
    /// The factor on cos and sin (transformers' `attention_scaling`; 1 for most kinds).
    pub attention: f64,
    /// The longest text it holds exactly, where that is shorter than the positions: a
    /// LongRoPE config's original context when it names no long factors.
    pub context: Option<usize>,
    /// LongRoPE's long divisors [dims/2] and the original context past which a text turns
    /// every position by them (transformers' `longrope_frequency_update`).
    pub long: Option<(Vec<f32>, usize)>,
}

/// What RoPE scaling needs of the rest of the config.
pub(super) struct RopeContext {
    /// Rotated dimensions of a head.
    pub dims: usize,
    /// The RoPE base.
    pub base: f64,
    /// `max_position_embeddings`.
    pub positions: usize,
    /// The original context: the config's top-level `original_max_position_embeddings`
    /// (Phi-3's: transformers gives it priority), else the scaling's own, else the positions.
    pub original: f64,
}

/// YaRN's attention factor for a stretch `scale` (transformers' `yarn_get_mscale`).
fn yarn_mscale(scale: f64, mscale: f64) -> f64 {
    if scale <= 1.0 {
        1.0
    } else {
        0.1 * mscale * scale.ln() + 1.0
    }
}

/// `name`'s value when it is a finite number above 0.
fn positive(kind: &str, name: &str, v: Option<f64>) -> Result<f64, String> {
    match v {
        Some(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "rope_type {kind:?} needs {name}, a finite number above 0 (got {v:?})"
        )),
    }
}

impl RopeParameters {
    /// Its kind (`rope_type`, or the older `type`).
    pub(super) fn kind(&self) -> Option<&str> {
        self.rope_type.as_deref().or(self.old_type.as_deref())
    }

    /// What scaling of kind `kind` does within `cx`; a kind transformers does not know, or a
    /// field it needs missing or out of range, is an error naming it.
    pub(super) fn scaling(&self, kind: &str, cx: &RopeContext) -> Result<RopeScaling, String> {
        let plain = RopeScaling {
            divisors: None,
            attention: 1.0,
            ..RopeScaling::default()
        };
        let stretch = |v: Vec<f32>| RopeScaling {
            divisors: Some(v),
            ..plain.clone()
        };
        match kind {
            // Dynamic NTK changes the base only past max_position_embeddings, which is the
            // context: within it the rotation is the plain one.
            "default" | "dynamic" => Ok(plain),
            "llama3" => self.llama3_factors(cx).map(stretch),
            "linear" => {
                let f = positive(kind, "factor", self.factor)? as f32;
                Ok(stretch(vec![f; cx.dims / 2]))
            }
            "yarn" => self.yarn(cx),
            "longrope" => self.longrope(cx),
            other => Err(format!(
                "RoPE scaling of rope_type {other:?} is not supported (default, llama3, linear, \
                 dynamic, yarn and longrope are)"
            )),
        }
    }

    /// The per-frequency divisors of "llama3" scaling, as transformers applies them (and
    /// llama.cpp's converter writes them as `rope_freqs`): 1 for short wavelengths, `factor`
    /// for long ones, and between them a smooth blend.
    fn llama3_factors(&self, cx: &RopeContext) -> Result<Vec<f32>, String> {
        let kind = "llama3";
        let factor = positive(kind, "factor", self.factor)?;
        let low = positive(kind, "low_freq_factor", self.low_freq_factor)?;
        let high = positive(kind, "high_freq_factor", self.high_freq_factor)?;
        let old = cx.original;
        if high <= low {
            return Err(format!(
                "rope_type \"llama3\": high_freq_factor {high} must be above low_freq_factor {low}"
            ));
        }
        let (low_wavelen, high_wavelen) = (old / low, old / high);
        Ok((0..cx.dims / 2)
            .map(|i| {
                let freq = 1.0 / cx.base.powf(2.0 * i as f64 / cx.dims as f64);
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

    /// YaRN: each frequency a blend of itself (fast ones, kept) and itself / `factor` (slow
    /// ones, stretched) over a linear ramp between the dimensions that turn `beta_fast` and
    /// `beta_slow` times over the original context, and cos and sin scaled by
    /// 0.1·ln(factor) + 1 (or the config's `attention_factor`).
    fn yarn(&self, cx: &RopeContext) -> Result<RopeScaling, String> {
        let factor = positive("yarn", "factor", self.factor)?;
        let attention = match (self.attention_factor, self.mscale, self.mscale_all_dim) {
            (Some(a), ..) => positive("yarn", "attention_factor", Some(a))?,
            (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => {
                yarn_mscale(factor, m) / yarn_mscale(factor, all)
            }
            _ => yarn_mscale(factor, 1.0),
        };
        let beta = |name: &str, v: Option<f64>, default: f64| match v {
            Some(0.0) | None => Ok(default),
            b => positive("yarn", name, b),
        };
        let fast = beta("beta_fast", self.beta_fast, 32.0)?;
        let slow = beta("beta_slow", self.beta_slow, 1.0)?;
        let (dim, base) = (cx.dims as f64, cx.base);
        let correction = |rotations: f64| {
            dim * (cx.original / (rotations * 2.0 * std::f64::consts::PI)).ln() / (2.0 * base.ln())
        };
        let (mut low, mut high) = (correction(fast), correction(slow));
        if self.truncate.unwrap_or(true) {
            (low, high) = (low.floor(), high.ceil());
        }
        let (low, mut high) = (low.max(0.0), high.min(dim - 1.0));
        if low == high {
            high += 0.001;
        }
        if !(factor.is_finite() && factor > 0.0 && attention.is_finite() && low.is_finite()) {
            return Err(format!(
                "rope_type \"yarn\" with factor {factor:?} and original context {:?} gives no \
                 finite rotation",
                cx.original
            ));
        }
        let divisors = (0..cx.dims / 2)
            .map(|j| {
                let ramp = ((j as f64 - low) / (high - low)).clamp(0.0, 1.0);
                (1.0 / (ramp / factor + 1.0 - ramp)) as f32
            })
            .collect();
        Ok(RopeScaling {
            divisors: Some(divisors),
            attention,
            ..RopeScaling::default()
        })
    }

    /// LongRoPE: within the original context each frequency divided by its short factor,
    /// past it (a text longer than the original context) by its long factor, at every
    /// position, as transformers chooses them; cos and sin scaled by √(1 + ln(s)/ln(original))
    /// with s = positions / original (or the config's `attention_factor`). A config without
    /// long factors holds texts within the original context only: that is then its context.
    fn longrope(&self, cx: &RopeContext) -> Result<RopeScaling, String> {
        let short = match &self.short_factor {
            Some(f) => longrope_divisors("short_factor", f, cx.dims / 2)?,
            None => return Err("rope_type \"longrope\" needs short_factor".into()),
        };
        let original = cx.original as usize;
        let long = match &self.long_factor {
            Some(f) => Some((longrope_divisors("long_factor", f, cx.dims / 2)?, original)),
            None => None,
        };
        let factor = match self.factor {
            None => cx.positions as f64 / cx.original,
            f => positive("longrope", "factor", f)?,
        };
        let attention = match self.attention_factor {
            Some(a) => positive("longrope", "attention_factor", Some(a))?,
            None if factor <= 1.0 => 1.0,
            None => (1.0 + factor.ln() / cx.original.ln()).sqrt(),
        };
        Ok(RopeScaling {
            divisors: Some(short),
            attention,
            context: long.is_none().then_some(original),
            long,
        })
    }
}

/// LongRoPE's divisors of the config's list `key`: `half` of them (one per turned pair), each
/// a finite number above 0.
fn longrope_divisors(key: &str, f: &[f64], half: usize) -> Result<Vec<f32>, String> {
    if f.len() != half {
        return Err(format!(
            "rope_type \"longrope\": {key} has {} values, not {half} (half the rotated \
             dimensions)",
            f.len()
        ));
    }
    // Each as the f32 it is computed in: 1e300 or 1e-300 would turn no dimension or every
    // one at an infinite speed.
    if let Some(bad) = f.iter().find(|&&x| {
        let v = x as f32;
        !(v.is_finite() && v > 0.0 && v.recip().is_finite())
    }) {
        return Err(format!(
            "rope_type \"longrope\": {key} holds {bad:?} (each must be a number above 0 that f32 \
             holds, as its inverse)"
        ));
    }
    Ok(f.iter().map(|&x| x as f32).collect())
}
