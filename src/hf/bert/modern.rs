//! ModernBERT (`modernbert`: answerdotai's ModernBERT-base and -large, and the embedding models
//! made from them): a pre-LayerNorm encoder with RoPE in place of position embeddings (at one
//! base on its global layers, another on its local ones), local layers attending within a
//! window (|i − j| ≤ `local_attention`/2; every `global_attn_every_n_layers`-th layer is
//! global, from the first), a GeGLU MLP (`Wi` → input and gate, GELU(input)·gate → `Wo`), no
//! norm before the first layer's attention, and a final norm. Read as transformers 5 reads it:
//! `layer_types` and `rope_parameters` where the config has them, else the older
//! `global_attn_every_n_layers` and `global_rope_theta`/`local_rope_theta`.

use candle_core::{DType, Tensor, D};
use serde::Deserialize;

use super::{Bert, BertConfig, EncoderKind};
use crate::hf::limits::in_range;
use crate::model::attention::{biased_attention, AttentionBias};
use crate::model::transformer::{ForwardOutput, ModelError};

/// The fields of a ModernBERT `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ModernBertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// The MLP's width (its `Wi` makes twice as many: input and gate).
    pub intermediate_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// Positions (8,192).
    pub max_position_embeddings: usize,
    /// The LayerNorms' ε.
    #[serde(default = "eps")]
    pub norm_eps: f64,
    /// Whether the LayerNorms have biases.
    #[serde(default)]
    pub norm_bias: bool,
    /// Biases on the attention's projections (not supported).
    #[serde(default)]
    pub attention_bias: bool,
    /// Biases on the MLP's projections (not supported).
    #[serde(default)]
    pub mlp_bias: bool,
    /// The MLP's activation ("gelu": the exact one).
    #[serde(default = "gelu")]
    pub hidden_activation: String,
    /// A local layer's window: it attends within half of it each way.
    #[serde(default = "local")]
    pub local_attention: usize,
    /// Older configs: every this-many-th layer is global (3).
    #[serde(default)]
    pub global_attn_every_n_layers: Option<usize>,
    /// "full_attention" or "sliding_attention" per layer (transformers 5).
    #[serde(default)]
    pub layer_types: Option<Vec<String>>,
    /// Older configs: the global layers' RoPE base (160,000).
    #[serde(default)]
    pub global_rope_theta: Option<f64>,
    /// Older configs: the local layers' RoPE base (10,000).
    #[serde(default)]
    pub local_rope_theta: Option<f64>,
    /// Per layer type: its RoPE settings (transformers 5).
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    /// The padding token.
    #[serde(default)]
    pub pad_token_id: Option<usize>,
}

fn eps() -> f64 {
    1e-5
}
fn gelu() -> String {
    "gelu".into()
}
fn local() -> usize {
    128
}

/// What ModernBERT adds to the sizes BERT's config holds.
#[derive(Clone, Debug, PartialEq)]
pub struct ModernSettings {
    /// Per layer: whether it attends within the window.
    pub sliding: Vec<bool>,
    /// How far each way a local layer attends: |i − j| ≤ this.
    pub window: usize,
    /// The RoPE bases of the global and the local layers.
    pub bases: (f64, f64),
    /// Whether the LayerNorms have biases.
    pub norm_bias: bool,
}

impl ModernBertConfig {
    /// The first problem in a sentence, naming the key.
    pub fn check(&self) -> Result<(), String> {
        for (set, key) in [
            (self.attention_bias, "attention_bias"),
            (self.mlp_bias, "mlp_bias"),
        ] {
            if set {
                return Err(format!("{key} = true is not supported"));
            }
        }
        if self.hidden_activation != "gelu" {
            return Err(format!(
                "hidden_activation {:?} is not supported (only \"gelu\")",
                self.hidden_activation
            ));
        }
        in_range(
            "num_hidden_layers",
            self.num_hidden_layers,
            1,
            crate::hf::limits::MAX_LAYERS,
        )?;
        in_range("local_attention", self.local_attention, 2, 1 << 24)?;
        let heads = self.num_attention_heads.max(1);
        if self.hidden_size.is_multiple_of(heads) && (self.hidden_size / heads) % 2 == 1 {
            return Err(format!(
                "hidden_size {} over {heads} heads gives heads of odd width (RoPE turns pairs)",
                self.hidden_size
            ));
        }
        if let Some(every) = self.global_attn_every_n_layers {
            in_range("global_attn_every_n_layers", every, 1, 1 << 24)?;
        }
        let (global, local) = self.bases()?;
        for (key, base) in [("global", global), ("local", local)] {
            if !(base.is_finite() && base > 1.0) {
                return Err(format!(
                    "the {key} layers' rope_theta {base:?} must be a finite number above 1"
                ));
            }
        }
        self.sliding().map(|_| ())
    }

    /// Per layer: whether it is local.
    fn sliding(&self) -> Result<Vec<bool>, String> {
        let n = self.num_hidden_layers;
        match &self.layer_types {
            Some(types) if types.len() != n => Err(format!(
                "layer_types names {} layers, but num_hidden_layers is {n}",
                types.len()
            )),
            Some(types) => types
                .iter()
                .map(|t| match t.as_str() {
                    "sliding_attention" => Ok(true),
                    "full_attention" => Ok(false),
                    other => Err(format!(
                        "layer_types holds {other:?} (only \"full_attention\" and \
                         \"sliding_attention\")"
                    )),
                })
                .collect(),
            None => {
                let every = self.global_attn_every_n_layers.unwrap_or(3).max(1);
                Ok((0..n).map(|i| i % every != 0).collect())
            }
        }
    }

    /// The RoPE bases (global, local): `rope_parameters`' per layer type, else the older keys,
    /// else 160,000 and 10,000. A scaling other than "default" is refused.
    fn bases(&self) -> Result<(f64, f64), String> {
        let of = |kind: &str, old: Option<f64>, default: f64| {
            let p = self.rope_parameters.as_ref().and_then(|r| r.get(kind));
            let t = p.and_then(|r| r.get("rope_type").or_else(|| r.get("type")));
            if let Some(t) = t.and_then(|t| t.as_str()).filter(|t| *t != "default") {
                return Err(format!(
                    "RoPE scaling of rope_type {t:?} is not supported for ModernBERT (only \
                     default)"
                ));
            }
            let theta = p.and_then(|r| r.get("rope_theta")).and_then(|v| v.as_f64());
            Ok(theta.or(old).unwrap_or(default))
        };
        Ok((
            of("full_attention", self.global_rope_theta, 160_000.0)?,
            of("sliding_attention", self.local_rope_theta, 10_000.0)?,
        ))
    }

    /// The same encoder as BERT's config holds it, with its own settings (checked first).
    pub(super) fn bert_config(self) -> BertConfig {
        let modern = ModernSettings {
            sliding: self.sliding().unwrap_or_default(),
            window: self.local_attention / 2,
            bases: self.bases().unwrap_or((160_000.0, 10_000.0)),
            norm_bias: self.norm_bias,
        };
        BertConfig {
            kind: EncoderKind::ModernBert,
            pad_token_id: self.pad_token_id,
            architectures: Vec::new(),
            model_type: "modernbert".into(),
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: 0,
            layer_norm_eps: self.norm_eps,
            hidden_act: self.hidden_activation,
            position_embedding_type: None,
            is_decoder: false,
            modern: Some(modern),
        }
    }
}

/// Every tensor ModernBERT's forward reads (names less the `model.` of a masked-LM export),
/// with the shapes `c` implies.
pub(super) fn expected_shapes(c: &BertConfig, m: &ModernSettings) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (c.hidden_size, c.intermediate_size);
    let mut want: Vec<(String, Vec<usize>)> = vec![(
        "embeddings.tok_embeddings.weight".into(),
        vec![c.vocab_size, d],
    )];
    let norm = |want: &mut Vec<(String, Vec<usize>)>, name: String| {
        want.push((format!("{name}.weight"), vec![d]));
        if m.norm_bias {
            want.push((format!("{name}.bias"), vec![d]));
        }
    };
    norm(&mut want, "embeddings.norm".into());
    norm(&mut want, "final_norm".into());
    for l in 0..c.num_hidden_layers {
        let p = format!("layers.{l}");
        if l > 0 {
            norm(&mut want, format!("{p}.attn_norm"));
        }
        norm(&mut want, format!("{p}.mlp_norm"));
        for (name, shape) in [
            ("attn.Wqkv", vec![3 * d, d]),
            ("attn.Wo", vec![d, d]),
            ("mlp.Wi", vec![2 * f, d]),
            ("mlp.Wo", vec![d, f]),
        ] {
            want.push((format!("{p}.{name}.weight"), shape));
        }
    }
    want
}

impl Bert {
    /// `x` through the LayerNorm `name` (bias 0 where the model has none).
    fn modern_norm(&self, x: &Tensor, name: &str) -> Result<Tensor, ModelError> {
        let w = self.t(&format!("{name}.weight"))?;
        let zeros;
        let b = match self.tensors.get(&format!("{name}.bias")) {
            Some(b) => b,
            None => {
                zeros = w.zeros_like()?;
                &zeros
            }
        };
        let eps = self.config.layer_norm_eps as f32;
        Ok(candle_nn::ops::layer_norm(x, w, b, eps)?)
    }

    /// `x` [1,T,in] times the weight `name` [out,in] transposed.
    fn modern_linear(&self, x: &Tensor, name: &str) -> Result<Tensor, ModelError> {
        let w = self.t(&format!("{name}.weight"))?;
        Ok(x.broadcast_matmul(&w.t()?)?)
    }

    /// ModernBERT's forward over `ids` (see [`Bert::forward_with`]).
    pub(super) fn forward_modern(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
        m: &ModernSettings,
    ) -> Result<(Tensor, ForwardOutput), ModelError> {
        let c = &self.config;
        let t = ids.len();
        let (d, h) = (c.hidden_size, c.num_attention_heads);
        let dh = d / h;
        let input = Tensor::from_vec(ids.to_vec(), t, &self.device)?;
        let x = self
            .t("embeddings.tok_embeddings.weight")?
            .embedding(&input)?
            .unsqueeze(0)?;
        let mut x = self.modern_norm(&x, "embeddings.norm")?;
        let tables = [
            rope_tables(m.bases.0, dh, t, &self.device)?,
            rope_tables(m.bases.1, dh, t, &self.device)?,
        ];
        let window = match m.sliding.iter().any(|&s| s) {
            true => Some(window_mask(t, m.window, &self.device)?),
            false => None,
        };
        let mut out = self.encoder_output(t)?;
        for l in 0..c.num_hidden_layers {
            let p = format!("layers.{l}");
            let local = m.sliding.get(l).copied().unwrap_or(false);
            let hx = match l {
                0 => x.clone(),
                _ => self.modern_norm(&x, &format!("{p}.attn_norm"))?,
            };
            let qkv = self
                .modern_linear(&hx, &format!("{p}.attn.Wqkv"))?
                .reshape((1, t, 3, h, dh))?;
            let part = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(2, i, 1)?
                    .squeeze(2)?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (cos, sin) = &tables[usize::from(local)];
            let q = candle_nn::rotary_emb::rope(&part(0)?, cos, sin)?;
            let k = candle_nn::rotary_emb::rope(&part(1)?, cos, sin)?;
            let mut s = (q.matmul(&k.t()?)? / (dh as f64).sqrt())?;
            if let (true, Some(w)) = (local, &window) {
                s = s.broadcast_add(w)?;
            }
            let (a, z) = biased_attention(&s, biases.get(l), None, |z| {
                crate::model::fused::softmax_rows(z)
            })?;
            let y = a
                .matmul(&part(2)?)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((1, t, d))?;
            x = (x + self.modern_linear(&y, &format!("{p}.attn.Wo"))?)?;
            let hx = self.modern_norm(&x, &format!("{p}.mlp_norm"))?;
            let wi = self.modern_linear(&hx, &format!("{p}.mlp.Wi"))?;
            let f = c.intermediate_size;
            let gated = (wi.narrow(D::Minus1, 0, f)?.gelu_erf()? * wi.narrow(D::Minus1, f, f)?)?;
            x = (x + self.modern_linear(&gated, &format!("{p}.mlp.Wo"))?)?;
            out.attention.push(a);
            if keep_scores {
                out.scores.push(z);
            }
        }
        Ok((self.modern_norm(&x, "final_norm")?, out))
    }
}

/// RoPE's cos and sin [T, d_h/2] at `base` (transformers': f32 inverse frequencies times f32
/// positions).
fn rope_tables(
    base: f64,
    dh: usize,
    t: usize,
    device: &candle_core::Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..dh / 2)
        .map(|i| 1.0 / base.powf(2.0 * i as f64 / dh as f64) as f32)
        .collect();
    let inv = Tensor::from_vec(inv, (1, dh / 2), device)?;
    let pos = Tensor::arange(0u32, t as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((t, 1))?;
    let freqs = pos.broadcast_mul(&inv)?;
    Ok((freqs.cos()?, freqs.sin()?))
}

/// 0 where |i − j| ≤ `window`, −∞ elsewhere: [T, T], a local layer's mask.
fn window_mask(
    t: usize,
    window: usize,
    device: &candle_core::Device,
) -> candle_core::Result<Tensor> {
    let cells: Vec<f32> = (0..t * t)
        .map(|c| match (c / t).abs_diff(c % t) <= window {
            true => 0.0,
            false => f32::NEG_INFINITY,
        })
        .collect();
    Tensor::from_vec(cells, (t, t), device)
}
