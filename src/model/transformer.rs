//! The localist transformer on candle (SPEC §2).
//!
//! Decoder-only: token + learned position embeddings, pre-LayerNorm blocks with multi-head
//! causal self-attention and a GELU MLP (ratio 4), a final LayerNorm and an output head.
//! Every attention layer takes an explicit [`AttentionBias`] (the dial, later rules), and the
//! forward returns what it was asked to keep (attention, biased scores, queries) as values:
//! there are no hidden hooks.
//!
//! Two candle traps shape this file: the fused `softmax_last_dim` and `candle_nn::LayerNorm`
//! have no backward, so training graphs use the composed softmax and a LayerNorm written from
//! mean and variance (inference may use the fused softmax).

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use crate::analysis::anchors::orthonormal_vectors;
use crate::analysis::rng::SplitMix64;
use crate::model::attention::{biased_attention, fused_biased_attention};
/// Re-exported from [`crate::model::attention`], where they live, for callers of the old path.
pub use crate::model::attention::{causal_tensor, AttentionBias};
use crate::model::config::{Activation, ModelConfig};
use crate::model::fused::{add_bias, layer_norm, softmax_last};
use crate::model::gelu::gelu_tanh;
use crate::model::params::{const_tensor, normal_tensor, ParamStore};

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A tensor is missing from the weights.
    #[error("weights lack tensor '{0}'")]
    Missing(String),
    /// A tensor has the wrong shape for the config.
    #[error("tensor '{name}' has shape {found:?}, the config needs {expected:?}")]
    Shape {
        /// Tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the config implies.
        expected: Vec<usize>,
    },
    /// Input longer than the model's positions.
    #[error("sequence of {0} tokens is longer than the model's {1} positions")]
    TooLong(usize, usize),
    /// Input the model cannot take (e.g. an empty sequence).
    #[error("{0}")]
    Input(String),
    /// An error from candle.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// A forward pass produced NaN or ±∞ (the layer and head, or the logits).
    #[error(transparent)]
    NonFinite(#[from] crate::model::finite::NonFinite),
    /// A capture would need more memory than the limit.
    #[error(transparent)]
    TooBig(#[from] crate::model::capture_memory::CaptureTooBig),
    /// The user cancelled a long capture.
    #[error("cancelled")]
    Cancelled,
}

/// What a forward pass should keep besides the logits.
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardOptions {
    /// Use the composed (differentiable) softmax: required for training graphs.
    pub differentiable: bool,
    /// Keep biased scores z = s + β per layer (for margins).
    pub keep_scores: bool,
}

/// Result of a forward pass.
#[derive(Debug)]
pub struct ForwardOutput {
    /// Next-token logits [B,T,V].
    pub logits: Tensor,
    /// Attention weights per layer [B,H,T,T].
    pub attention: Vec<Tensor>,
    /// Biased scores z per layer [B,H,T,T] (when asked for).
    pub scores: Vec<Tensor>,
    /// Queries per layer [B,H,T,d_h].
    pub queries: Vec<Tensor>,
}

/// A localist transformer: config, named parameters and device.
#[derive(Clone, Debug)]
pub struct LocalistModel {
    /// Shape and options.
    pub config: ModelConfig,
    /// Trainable tensors under reference names, plus `anchors.{l}.keys` [H,K,d_h].
    pub params: ParamStore,
    /// Where the tensors live.
    pub device: Device,
}

/// Expected shapes of the transformer weights (anchor keys excluded).
pub fn expected_shapes(cfg: &ModelConfig) -> Vec<(String, Vec<usize>)> {
    let (d, v, f) = (cfg.d_model, cfg.vocab_size, cfg.mlp_ratio * cfg.d_model);
    let mut out = vec![
        ("tok.weight".to_string(), vec![v, d]),
        ("pos.weight".to_string(), vec![cfg.max_seq_len, d]),
        ("ln_f.weight".to_string(), vec![d]),
        ("ln_f.bias".to_string(), vec![d]),
    ];
    if !cfg.tied_head {
        out.push(("head.weight".to_string(), vec![v, d]));
    }
    out.push(("head.bias".to_string(), vec![v]));
    for l in 0..cfg.num_layers {
        let p = |n: &str| format!("blocks.{l}.{n}");
        out.extend([
            (p("ln1.weight"), vec![d]),
            (p("ln1.bias"), vec![d]),
            (p("qkv.weight"), vec![3 * d, d]),
            (p("qkv.bias"), vec![3 * d]),
            (p("proj.weight"), vec![d, d]),
            (p("proj.bias"), vec![d]),
            (p("ln2.weight"), vec![d]),
            (p("ln2.bias"), vec![d]),
            (p("fc1.weight"), vec![f, d]),
            (p("fc1.bias"), vec![f]),
            (p("fc2.weight"), vec![d, f]),
            (p("fc2.bias"), vec![d]),
        ]);
    }
    out
}

/// Name of layer `l`'s anchor keys.
pub fn anchor_name(l: usize) -> String {
    format!("anchors.{l}.keys")
}

impl LocalistModel {
    /// A freshly initialised model (GPT-2 style: N(0, 0.02) matrices, zero biases, unit
    /// LayerNorm gains) with orthonormal anchor keys for `num_blocks` blocks.
    pub fn new_random(
        config: &ModelConfig,
        num_blocks: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut rng = SplitMix64::new(seed);
        let mut params = ParamStore::new();
        for (name, shape) in expected_shapes(config) {
            let t = if name.contains(".ln") || name.starts_with("ln_f") {
                let v = if name.ends_with("weight") { 1.0 } else { 0.0 };
                const_tensor(v, &shape, device)?
            } else if shape.len() == 2 {
                normal_tensor(&mut rng, &shape, 0.02, device)?
            } else {
                const_tensor(0.0, &shape, device)?
            };
            params.insert(&name, &t)?;
        }
        let mut model = Self {
            config: config.clone(),
            params,
            device: device.clone(),
        };
        model.reset_anchors(num_blocks, seed ^ 0xA5A5)?;
        Ok(model)
    }

    /// Build from named tensors (a reference state dict or our checkpoint), checking shapes.
    /// Missing anchor keys are initialised for `num_blocks` blocks.
    pub fn from_tensors(
        config: &ModelConfig,
        tensors: &HashMap<String, Tensor>,
        num_blocks: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let mut params = ParamStore::new();
        for (name, shape) in expected_shapes(config) {
            let t = tensors
                .get(&name)
                .ok_or_else(|| ModelError::Missing(name.clone()))?;
            if t.dims() != shape.as_slice() {
                return Err(ModelError::Shape {
                    name,
                    found: t.dims().to_vec(),
                    expected: shape,
                });
            }
            params.insert(&name, &t.to_dtype(DType::F32)?.to_device(device)?)?;
        }
        let mut model = Self {
            config: config.clone(),
            params,
            device: device.clone(),
        };
        let (h, dh) = (config.num_heads, config.head_dim());
        let have_anchors = (0..config.num_layers).all(|l| tensors.contains_key(&anchor_name(l)));
        if have_anchors {
            for l in 0..config.num_layers {
                let name = anchor_name(l);
                let t = tensors
                    .get(&name)
                    .ok_or_else(|| ModelError::Missing(name.clone()))?;
                let expected = vec![h, num_blocks, dh];
                if t.dims() != expected.as_slice() {
                    return Err(ModelError::Shape {
                        name,
                        found: t.dims().to_vec(),
                        expected,
                    });
                }
                model
                    .params
                    .insert(&name, &t.to_dtype(DType::F32)?.to_device(device)?)?;
            }
        } else {
            model.reset_anchors(num_blocks, 0xA5A5)?;
        }
        Ok(model)
    }

    /// (Re)initialise anchor keys for `num_blocks` blocks: orthonormal per head when K ≤ d_h.
    pub fn reset_anchors(&mut self, num_blocks: usize, seed: u64) -> Result<(), ModelError> {
        let (h, dh) = (self.config.num_heads, self.config.head_dim());
        let mut rng = SplitMix64::new(seed);
        for l in 0..self.config.num_layers {
            let mut data = Vec::with_capacity(h * num_blocks * dh);
            for _ in 0..h {
                for v in orthonormal_vectors(num_blocks, dh, &mut rng) {
                    data.extend(v);
                }
            }
            let t = Tensor::from_vec(data, (h, num_blocks, dh), &self.device)?;
            self.params.insert(&anchor_name(l), &t)?;
        }
        Ok(())
    }

    /// Number of blocks the anchor keys were built for.
    pub fn num_anchor_blocks(&self) -> usize {
        self.params
            .get(&anchor_name(0))
            .ok()
            .and_then(|t| t.dims().get(1).copied())
            .unwrap_or(0)
    }

    fn p(&self, name: &str) -> candle_core::Result<Tensor> {
        self.params.get(name)
    }

    fn layer_norm(&self, x: &Tensor, prefix: &str) -> candle_core::Result<Tensor> {
        let w = self.p(&format!("{prefix}.weight"))?;
        let b = self.p(&format!("{prefix}.bias"))?;
        layer_norm(x, &w, &b, self.config.layer_norm_eps)
    }

    /// x·Wᵀ + b over the last axis. The leading axes are flattened into one 2-D matmul: a
    /// broadcast (batched) matmul would make the backward pass sum B weight-gradient copies,
    /// which made training steps several times slower.
    fn linear(&self, x: &Tensor, prefix: &str) -> candle_core::Result<Tensor> {
        let w = self.p(&format!("{prefix}.weight"))?;
        let b = self.p(&format!("{prefix}.bias"))?;
        let dims = x.dims().to_vec();
        let (lead, last) = dims.split_at(dims.len().saturating_sub(1));
        let rows: usize = lead.iter().product();
        let inner = last.first().copied().unwrap_or(0);
        let out = add_bias(&x.reshape((rows, inner))?.matmul(&w.t()?)?, &b)?;
        let mut shape = lead.to_vec();
        shape.push(w.dim(0)?);
        out.reshape(shape)
    }

    /// One layer's attention weights from its queries and keys, and the biased scores z when
    /// kept: the fused op for training graphs on the CPU, else the composed ops.
    fn attention(
        q: &Tensor,
        k: &Tensor,
        bias: Option<&AttentionBias>,
        causal: Option<&Tensor>,
        scale: f64,
        opts: ForwardOptions,
        softmax: impl Fn(&Tensor) -> candle_core::Result<Tensor>,
    ) -> candle_core::Result<(Tensor, Option<Tensor>)> {
        let raw = q.matmul(&k.t()?)?;
        if opts.differentiable && !opts.keep_scores {
            if let Some(a) = fused_biased_attention(&raw, bias, causal, scale)? {
                return Ok((a, None));
            }
        }
        let s = (raw * scale)?;
        let (a, z) = biased_attention(&s, bias, causal, softmax)?;
        Ok((a, Some(z)))
    }

    /// Forward pass over token ids [B,T] (u32) with one bias per layer.
    pub fn forward(
        &self,
        ids: &Tensor,
        biases: &[AttentionBias],
        opts: ForwardOptions,
    ) -> Result<ForwardOutput, ModelError> {
        let (b, t) = ids.dims2()?;
        let cfg = &self.config;
        if t > cfg.max_seq_len {
            return Err(ModelError::TooLong(t, cfg.max_seq_len));
        }
        let (d, h, dh) = (cfg.d_model, cfg.num_heads, cfg.head_dim());
        let tok = self.p("tok.weight")?;
        let pos = self.p("pos.weight")?.narrow(0, 0, t)?;
        let mut x = tok
            .embedding(&ids.flatten_all()?)?
            .reshape((b, t, d))?
            .broadcast_add(&pos)?;
        let mut out = ForwardOutput {
            logits: x.clone(),
            attention: Vec::with_capacity(cfg.num_layers),
            scores: Vec::new(),
            queries: Vec::with_capacity(cfg.num_layers),
        };
        let scale = 1.0 / (dh as f64).sqrt();
        let softmax = |z: &Tensor| {
            if opts.differentiable {
                softmax_last(z)
            } else {
                crate::model::fused::softmax_rows(z)
            }
        };
        // The plain causal mask, for layers given no bias.
        let causal = if biases.len() < cfg.num_layers {
            Some(causal_tensor(b, t, &self.device)?)
        } else {
            None
        };
        for l in 0..cfg.num_layers {
            let pre = format!("blocks.{l}");
            let hx = self.layer_norm(&x, &format!("{pre}.ln1"))?;
            let qkv = self.linear(&hx, &format!("{pre}.qkv"))?;
            let split = |i: usize| -> candle_core::Result<Tensor> {
                qkv.narrow(2, i * d, d)?
                    .reshape((b, t, h, dh))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, v) = (split(0)?, split(1)?, split(2)?);
            let (a, z) =
                Self::attention(&q, &k, biases.get(l), causal.as_ref(), scale, opts, softmax)?;
            let y = a
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, t, d))?;
            x = (x + self.linear(&y, &format!("{pre}.proj"))?)?;
            let hx = self.layer_norm(&x, &format!("{pre}.ln2"))?;
            let f = self.linear(&hx, &format!("{pre}.fc1"))?;
            let f = match cfg.activation {
                Activation::GeluTanh => gelu_tanh(&f)?,
                Activation::Relu => f.relu()?,
            };
            x = (x + self.linear(&f, &format!("{pre}.fc2"))?)?;
            out.attention.push(a);
            out.queries.push(q);
            if let (true, Some(z)) = (opts.keep_scores, z) {
                out.scores.push(z);
            }
        }
        let x = self.layer_norm(&x, "ln_f")?;
        let head_w = if cfg.tied_head {
            self.p("tok.weight")?
        } else {
            self.p("head.weight")?
        };
        out.logits = x
            .broadcast_matmul(&head_w.t()?)?
            .broadcast_add(&self.p("head.bias")?)?;
        Ok(out)
    }
}
