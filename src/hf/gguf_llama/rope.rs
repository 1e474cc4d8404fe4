//! RoPE's tables for candle's passes: cos and sin of some positions at the model's base (scaled
//! by YaRN's or LongRoPE's attention factor where the model has one), at Gemma 3's sliding
//! layers' base, and the identity of SmolLM3's layers without RoPE.

use std::path::Path;

use anyhow::Result;
use candle_core::quantized::gguf_file;
use candle_core::{DType, Tensor};

use crate::hf::gguf_llama::metadata::{meta_usize, optional};

use crate::hf::gguf_llama::{GgufLlama, LlamaConfig};

/// RoPE's tables (cos, sin) of some positions: the model's, Gemma 3's sliding layers' at
/// their own base, and the identity (cos 1, sin 0) of SmolLM3's layers without RoPE.
pub struct RopeTables {
    /// At the model's base.
    pub global: (Tensor, Tensor),
    /// At the sliding layers' base, where it differs.
    pub local: Option<(Tensor, Tensor)>,
    /// The identity, where some layers turn no RoPE: turning by it leaves q and k as they are.
    pub none: Option<(Tensor, Tensor)>,
}

impl LlamaConfig {
    /// RoPE's inverse frequencies [d_h/2] at the model's base for a pass whose last position
    /// is `end` − 1, each divided by its factor when the model has them
    /// ([`inv_freq`](Self::inv_freq)): LongRoPE's long factors when `end` is past the original
    /// context, as transformers chooses them (every position of such a pass, and a cached
    /// step's new positions only).
    pub fn rope_inv_freq(&self, end: usize) -> Vec<f32> {
        let factors = match &self.rope_long {
            Some((long, original)) if end > *original => Some(long.as_slice()),
            _ => self.rope_factors.as_deref(),
        };
        self.inv_freq(self.rope_base, factors)
    }

    /// The sliding layers' inverse frequencies at their `base` (Gemma 3's, OLMo 3's): never
    /// stretched (a Gemma 3's linear stretch, an OLMo 3's YaRN, are its other layers').
    pub fn rope_inv_freq_local(&self, base: f64) -> Vec<f32> {
        self.inv_freq(base, None)
    }

    /// 1 / base^(2i/r) for the r = `rope_dims` turned dimensions (each divided by its factor
    /// in `factors`), 0 past them: [d_h/2].
    fn inv_freq(&self, base: f64, factors: Option<&[f32]>) -> Vec<f32> {
        let (dh, r) = (self.head_dim, self.rope_dims);
        (0..dh / 2)
            .map(|i| {
                if i >= r / 2 {
                    return 0.0;
                }
                let inv = 1.0 / base.powf(2.0 * i as f64 / r as f64) as f32;
                match factors {
                    Some(f) => inv / f.get(i).copied().unwrap_or(1.0),
                    None => inv,
                }
            })
            .collect()
    }

    /// The factor on cos and sin of each frequency [d_h/2]: the attention factor for the
    /// turned dimensions, 1 for those a partial rotation leaves as they are (transformers
    /// scales only the turned part).
    pub fn rope_col_scales(&self) -> Vec<f32> {
        (0..self.head_dim / 2)
            .map(|i| match i < self.rope_dims / 2 {
                true => self.rope_scale as f32,
                false => 1.0,
            })
            .collect()
    }
}

impl RopeTables {
    /// The tables layer `l` turns its queries and keys by.
    pub fn for_layer(&self, c: &LlamaConfig, l: usize) -> (&Tensor, &Tensor) {
        match (&self.none, &self.local, c.local_base(l)) {
            (Some((cos, sin)), _, _) if c.rope_off(l) => (cos, sin),
            (_, Some((cos, sin)), Some(_)) => (cos, sin),
            _ => (&self.global.0, &self.global.1),
        }
    }
}

impl GgufLlama {
    /// RoPE tables (cos, sin) [n, d_h/2] of positions p..p+n.
    pub(crate) fn rope_tables(&self, p: usize, n: usize) -> candle_core::Result<(Tensor, Tensor)> {
        self.rope_tables_of(p, n, self.config.rope_inv_freq(p + n), true)
    }

    /// RoPE tables of positions p..p+n for every layer (Gemma 3's sliding layers at their
    /// base).
    pub(crate) fn rope_set(&self, p: usize, n: usize) -> candle_core::Result<RopeTables> {
        let local = (0..self.config.layers).find_map(|l| self.config.local_base(l));
        let global = self.rope_tables(p, n)?;
        let none = match &self.config.no_rope {
            Some(_) => Some((global.0.ones_like()?, global.1.zeros_like()?)),
            None => None,
        };
        Ok(RopeTables {
            local: local
                .map(|b| self.rope_tables_of(p, n, self.config.rope_inv_freq_local(b), false))
                .transpose()?,
            global,
            none,
        })
    }

    /// [`rope_tables`](Self::rope_tables) of the inverse frequencies `inv` [d_h/2], times the
    /// attention factor where `scaled` (the sliding layers' plain rotation has none).
    fn rope_tables_of(
        &self,
        p: usize,
        n: usize,
        inv: Vec<f32>,
        scaled: bool,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let c = &self.config;
        let dh = c.head_dim;
        let dev = &self.device;
        let inv = Tensor::from_vec(inv, (1, dh / 2), dev)?;
        let pos = Tensor::arange(p as u32, (p + n) as u32, dev)?
            .to_dtype(DType::F32)?
            .reshape((n, 1))?;
        let freqs = pos.broadcast_mul(&inv)?;
        let (cos, sin) = (freqs.cos()?, freqs.sin()?);
        if c.rope_scale == 1.0 || !scaled {
            return Ok((cos, sin));
        }
        let scale = Tensor::from_vec(c.rope_col_scales(), (1, dh / 2), dev)?;
        Ok((cos.broadcast_mul(&scale)?, sin.broadcast_mul(&scale)?))
    }
}

/// The per-frequency RoPE factors of tensor `name` (its shape checked by
/// [`super::checks::check_model`]): each finite and above 0, as a divisor of a frequency must
/// be.
fn rope_factors(t: &Tensor, name: &str, file: &Path) -> Result<Vec<f32>> {
    let f = t.flatten_all()?.to_vec1::<f32>()?;
    if let Some((i, x)) = f
        .iter()
        .enumerate()
        .find(|(_, x)| !(x.is_finite() && **x > 0.0))
    {
        anyhow::bail!(
            "{}: tensor {name}[{i}] = {x}: a RoPE factor divides a frequency and must be \
             finite and above 0",
            file.display()
        );
    }
    Ok(f)
}

/// A GGUF file's RoPE factors: LLaMA-3.1's `rope_freqs.weight` or LongRoPE's
/// `rope_factors_short.weight` (Phi-3.5's, as llama.cpp's converter writes it) as the
/// per-frequency divisors; LongRoPE's `rope_factors_long.weight` with
/// `{arch}.rope.scaling.original_context_length`, past which a text turns every position by
/// them (transformers' rule; llama.cpp's when its context is the text's length); and the
/// context: the original one where the file has short factors but no long ones or no original
/// context to switch at.
pub(super) fn factors(
    header: &super::header::GgufHeader,
    c: &gguf_file::Content,
    config: &LlamaConfig,
    file: &Path,
    read: &mut impl FnMut(&str) -> Result<Tensor>,
) -> Result<GgufRope> {
    if header.tensor("rope_factors_long.weight").is_some()
        && header.tensor("rope_factors_short.weight").is_none()
    {
        anyhow::bail!(
            "{}: tensor rope_factors_long.weight without rope_factors_short.weight: LongRoPE's \
             factors for texts within the original context are missing",
            file.display()
        );
    }
    // A linear stretch as well: both divide (llama.cpp's frequency scale and factors).
    let mut divisors = |name: &str| -> Result<Vec<f32>> {
        let mut f = rope_factors(&read(name)?, name, file)?;
        if let Some(linear) = &config.rope_factors {
            f.iter_mut().zip(linear).for_each(|(f, l)| *f *= l);
        }
        Ok(f)
    };
    if header.tensor("rope_freqs.weight").is_some() {
        let f = divisors("rope_freqs.weight")?;
        return Ok((Some(f), None, config.context));
    }
    if header.tensor("rope_factors_short.weight").is_none() {
        return Ok((config.rope_factors.clone(), None, config.context));
    }
    let short = divisors("rope_factors_short.weight")?;
    let key = format!("{}.rope.scaling.original_context_length", config.arch);
    let original = optional(c, &key, file, meta_usize)?;
    Ok(
        match (original, header.tensor("rope_factors_long.weight")) {
            (Some(o), Some(_)) if o < config.context => {
                let long = divisors("rope_factors_long.weight")?;
                (Some(short), Some((long, o.max(1))), config.context)
            }
            (o, _) => {
                let context = config.context.min(o.unwrap_or(usize::MAX)).max(1);
                (Some(short), None, context)
            }
        },
    )
}

/// A GGUF file's RoPE divisors, LongRoPE's long divisors with the original context past which
/// they turn, and its context ([`factors`]).
pub(super) type GgufRope = (Option<Vec<f32>>, Option<(Vec<f32>, usize)>, usize);

/// A layer's query and key rows and their biases (q, k, v: v's as it is) reordered for a
/// rotation of the first `r` of each head's `dh` dimensions ([`turned_first`]).
pub(crate) fn turned_qk(
    (q, k): (&Tensor, &Tensor),
    bias: Option<[Tensor; 3]>,
    (dh, r): (usize, usize),
) -> Result<(Tensor, Tensor, Option<[Tensor; 3]>)> {
    let turn = |w: &Tensor| turned_first(w, dh, r);
    let bias = match bias {
        Some([bq, bk, bv]) => Some([turn(&bq)?, turn(&bk)?, bv]),
        None => None,
    };
    Ok((turn(q)?, turn(k)?, bias))
}

/// The rows [heads·d_h, d] of a query or key projection reordered within each head so that a
/// rotation of its first `r` dimensions (pairs i, i + r/2, as transformers and llama.cpp turn
/// Phi-3's) is a full half-rotation's first r/2 pairs (i, i + d_h/2), and the dimensions it
/// leaves as they are pair with each other at frequency 0 ([`LlamaConfig::rope_inv_freq`]).
/// Scores are unchanged: queries and keys are reordered alike. The identity where RoPE turns
/// every dimension.
pub(crate) fn turned_first(w: &Tensor, dh: usize, r: usize) -> Result<Tensor> {
    if r >= dh {
        return Ok(w.clone());
    }
    let (half, rest) = (r / 2, (dh - r) / 2);
    let within: Vec<u32> = (0..half)
        .chain(r..r + rest)
        .chain(half..r)
        .chain(r + rest..dh)
        .map(|i| i as u32)
        .collect();
    let heads = w.dim(0)? / dh;
    let rows: Vec<u32> = (0..heads as u32)
        .flat_map(|h| within.iter().map(move |&i| h * dh as u32 + i))
        .collect();
    let index = Tensor::from_vec(rows, heads * dh, w.device())?;
    Ok(w.index_select(&index, 0)?)
}
