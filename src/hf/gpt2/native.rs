//! GPT-2's view pass on the native f32 path: a dial change on GPT-2 (and GPT-Neo and OPT, the
//! same block) without candle's per-op tensors. GPT-2's block is our own transformer's
//! (pre-LayerNorm, one fused q/k/v projection with biases, a tanh-GELU or ReLU MLP, learned
//! positions), so the pass is ours ([`crate::model::native::infer`]) over a copy of the weights
//! in its layout: each `Conv1D` [in, out] transposed to [out, in], GPT-Neo's unscaled scores
//! as queries times √d_h (the pass divides by √d_h), a zero head bias. The copy is made once,
//! on the first view, and only where it fits: at most [`MAX_COPY_BYTES`] and a quarter of the
//! memory free then (GPT-2 small: 0.5 GB; GPT-2 large and OPT-1.3b stay on candle's pass). The
//! families whose block differs (RoPE, ALiBi, the parallel residual, a normed embedding, a head
//! bias, the exact GELU, OPT-350m's norms after each sub-layer and projected embeddings) run on
//! candle's pass. Checked against it in `tests/hf_families.rs`.

use candle_core::Tensor;

use crate::hf::gpt2::{Affine, Gpt2};
use crate::model::attention::AttentionBias;
use crate::model::config::{Activation, ModelConfig};
use crate::model::native::{LayerSet, ParamSet};
use crate::model::native_view::host_biases;
use crate::model::transformer::{ForwardOutput, ModelError};

/// The largest copy of the weights the native pass makes (GPT-2 medium's is 1.4 GB).
pub const MAX_COPY_BYTES: u64 = 2 << 30;

/// The weights in the native pass's layout, and its configuration.
pub struct NativeCopy {
    set: ParamSet,
    cfg: ModelConfig,
}

/// A tensor's values, flat.
fn flat(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// A `Conv1D` weight [in, out] as a `Linear`'s [out, in], flat.
fn linear(w: &Tensor) -> candle_core::Result<Vec<f32>> {
    flat(&w.t()?.contiguous()?)
}

impl Gpt2 {
    /// The MLP's activation as the native pass has it, or None (the exact GELU).
    fn native_activation(&self) -> Option<Activation> {
        match self.config.activation_function.as_str() {
            "gelu_new" | "gelu_pytorch_tanh" => Some(Activation::GeluTanh),
            "relu" => Some(Activation::Relu),
            _ => None,
        }
    }

    /// Whether the native pass computes this model, and its copy would fit.
    fn native_applies(&self) -> bool {
        let c = &self.config;
        let plain = self.rotary.is_none()
            && self.alibi.is_none()
            && self.embed_norm.is_none()
            && !self.parallel
            && self.head_bias.is_none()
            && !self.post_norm
            && self.project.is_none()
            && self.ln_f.is_some()
            && self.wpe.is_some();
        let bytes = 4 * self.parameters as u64;
        let free = crate::hf::memory::available_bytes().unwrap_or(u64::MAX);
        plain
            && self.device.is_cpu()
            && self.native_activation().is_some()
            && c.ff().is_multiple_of(c.n_embd)
            && bytes <= MAX_COPY_BYTES
            && bytes <= free / 4
    }

    /// The copy of the weights the native pass reads (see the module's notes), or None.
    fn native_copy(&self) -> Option<&NativeCopy> {
        self.native
            .get_or_init(|| {
                if !self.native_applies() {
                    return None;
                }
                self.make_native_copy().ok().map(Box::new)
            })
            .as_deref()
    }

    fn make_native_copy(&self) -> candle_core::Result<NativeCopy> {
        let c = &self.config;
        let (d, h) = (c.n_embd, c.n_head);
        // The pass divides the scores by √d_h; GPT-Neo's are not: its queries take √d_h.
        let q_factor = if c.scale_attn_weights {
            1.0
        } else {
            ((d / h) as f32).sqrt()
        };
        let affine = |(w, b): &Affine| -> candle_core::Result<(Vec<f32>, Vec<f32>)> {
            Ok((flat(w)?, flat(b)?))
        };
        let mut layers = Vec::with_capacity(self.blocks.len());
        for b in &self.blocks {
            let (ln1_w, ln1_b) = affine(&b.ln_1)?;
            let (ln2_w, ln2_b) = affine(&b.ln_2)?;
            let mut qkv_w = linear(&b.c_attn.0)?;
            let mut qkv_b = flat(&b.c_attn.1)?;
            if q_factor != 1.0 {
                qkv_w.iter_mut().take(d * d).for_each(|w| *w *= q_factor);
                qkv_b.iter_mut().take(d).for_each(|w| *w *= q_factor);
            }
            layers.push(LayerSet {
                ln1_w,
                ln1_b,
                qkv_w,
                qkv_b,
                proj_w: linear(&b.c_proj.0)?,
                proj_b: flat(&b.c_proj.1)?,
                ln2_w,
                ln2_b,
                fc1_w: linear(&b.c_fc.0)?,
                fc1_b: flat(&b.c_fc.1)?,
                fc2_w: linear(&b.mlp_proj.0)?,
                fc2_b: flat(&b.mlp_proj.1)?,
            });
        }
        let wpe = self.wpe.as_ref().map(flat).transpose()?.unwrap_or_default();
        let Some(ln_f) = &self.ln_f else {
            candle_core::bail!("the native pass needs a final LayerNorm");
        };
        let (ln_f_w, ln_f_b) = affine(ln_f)?;
        let set = ParamSet {
            tok: flat(&self.wte)?,
            pos: wpe,
            ln_f_w,
            ln_f_b,
            head_w: if c.tie_word_embeddings {
                Vec::new()
            } else {
                flat(&self.head)?
            },
            head_b: vec![0.0; c.vocab_size],
            layers,
            anchors: Vec::new(),
        };
        let cfg = ModelConfig {
            preset: self.family.model_type().into(),
            vocab_size: c.vocab_size,
            num_layers: c.n_layer,
            d_model: d,
            num_heads: h,
            max_seq_len: c.n_positions,
            mlp_ratio: c.ff() / d,
            tied_head: c.tie_word_embeddings,
            activation: self.native_activation().unwrap_or(Activation::GeluTanh),
            layer_norm_eps: c.layer_norm_epsilon,
        };
        Ok(NativeCopy { set, cfg })
    }

    /// The view forward of `ids` under `biases` (one per layer; none: the plain model) on the
    /// native pass, or None where it does not apply: the caller then runs candle's.
    pub fn forward_native(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        (keep_scores, logits): (bool, bool),
    ) -> Option<Result<ForwardOutput, ModelError>> {
        let c = &self.config;
        if ids.is_empty() || !(biases.is_empty() || biases.len() == c.n_layer) {
            return None;
        }
        let copy = self.native_copy()?;
        let t = ids.len();
        if t > c.n_positions {
            return Some(Err(ModelError::TooLong(t, c.n_positions)));
        }
        if let Some(&bad) = ids.iter().find(|&&i| i as usize >= c.vocab_size) {
            return Some(Err(ModelError::Input(format!(
                "token id {bad} is outside the vocabulary of {}",
                c.vocab_size
            ))));
        }
        Some(crate::model::native::awake::with_pool_awake(|| {
            self.run_native(copy, ids, biases, (keep_scores, logits))
        }))
    }

    fn run_native(
        &self,
        copy: &NativeCopy,
        ids: &[u32],
        biases: &[AttentionBias],
        (keep_scores, want_logits): (bool, bool),
    ) -> Result<ForwardOutput, ModelError> {
        let (t, h) = (ids.len(), self.config.n_head);
        let host = host_biases(biases, t, (self.config.n_layer, h))?;
        let refs = copy.set.as_refs();
        let out = crate::model::native::infer(&refs, &copy.cfg, ids, &host, want_logits)
            .map_err(|e| ModelError::Input(format!("native pass: {e}")))?;
        let dev = &self.device;
        let per_layer = |v: Vec<f32>| Tensor::from_vec(v, (1, h, t, t), dev);
        let attention = out
            .attention
            .into_iter()
            .map(per_layer)
            .collect::<candle_core::Result<Vec<_>>>()?;
        let scores = if keep_scores {
            out.scores
                .into_iter()
                .map(per_layer)
                .collect::<candle_core::Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        let logits = if want_logits {
            Tensor::from_vec(out.logits, (1, t, self.config.vocab_size), dev)?
        } else {
            Tensor::zeros((1, t, 0), candle_core::DType::F32, dev)?
        };
        Ok(ForwardOutput {
            logits,
            attention,
            scores,
            queries: Vec::new(),
        })
    }
}
