//! A preview of a LLaMA-family decoder's views: the native view pass ([`super::native`]) with
//! its weight products in bf16 ([`crate::model::native::bf16`]), offered where the CPU does
//! bf16 dot products natively (AVX-512 BF16). On a CPU whose f32 products already run at its
//! peak this halves the products' time (SmolLM2, 64 tokens, one thread, AMD Zen 4: 136 ms of
//! f32 products against 71 ms), so the views follow the dial while it moves; the worker then
//! computes the exact f32 capture and shows it in the preview's place.
//!
//! Everything but the seven weight products of each layer (norms, RoPE, the biased softmax,
//! the metrics) is the f32 pass's own. The bf16 copies of the weights (half the f32 bytes:
//! 212 MB for SmolLM2) are made on the first preview and kept with the model.

use candle_core::Device;

use crate::hf::gguf_llama::native_layer::{layer_slices, LayerBf16};
use crate::hf::gguf_llama::GgufLlama;
use crate::model::attention::AttentionBias;
use crate::model::backend::{AttentionModel, ModelDims};
use crate::model::native::bf16;
use crate::model::transformer::{ForwardOutput, ModelError};

/// Every layer's bf16 weights.
#[derive(Debug, Default)]
pub struct FastWeights {
    layers: Vec<LayerBf16>,
}

impl FastWeights {
    /// Layer `l`'s.
    pub(super) fn layer(&self, l: usize) -> Option<&LayerBf16> {
        self.layers.get(l)
    }
}

impl GgufLlama {
    /// The bf16 copies of the layer weights, made on the first call; None where bf16 products
    /// are not native on this CPU or the weights are not f32 on the CPU.
    pub(super) fn fast_weights(&self) -> Option<&FastWeights> {
        self.fast
            .get_or_init(|| {
                if !bf16::available() || !self.device.is_cpu() {
                    return None;
                }
                let c = &self.config;
                let (d, f, qd) = (c.d_model, c.ff, c.q_width());
                self.with_weights(|w, starts| {
                    let layers = starts.iter().zip(&self.layers);
                    let copies = layers.map(|(&s, l)| layer_slices(w, s, l, None).bf16(d, f, qd));
                    FastWeights {
                        layers: copies.collect(),
                    }
                })
            })
            .as_ref()
    }

    /// This model's views in bf16 products, where the CPU does them natively.
    pub fn preview(&self) -> Option<Bf16Preview<'_>> {
        if !self.config.native_view() {
            return None;
        }
        self.fast_weights()
            .map(|fast| Bf16Preview { model: self, fast })
    }
}

/// A decoder whose forward runs its weight products in bf16: the studio's preview of a dial
/// change. Its numbers are not the model's f32 numbers (attention within about 10⁻² of them
/// on SmolLM2) and are shown as a preview only.
pub struct Bf16Preview<'a> {
    model: &'a GgufLlama,
    fast: &'a FastWeights,
}

impl Bf16Preview<'_> {
    /// The forward, bf16 products when the native pass applies (else the model's own f32).
    fn forward(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        (keep_scores, logits): (bool, bool),
    ) -> Result<ForwardOutput, ModelError> {
        let m = self.model;
        match m.forward_native_in(ids, biases, (keep_scores, logits), Some(self.fast)) {
            Some(out) => out,
            None if logits => m.forward_biased(ids, biases, keep_scores),
            None => m.forward_attention(ids, biases, keep_scores),
        }
    }
}

impl AttentionModel for Bf16Preview<'_> {
    fn dims(&self) -> ModelDims {
        self.model.dims()
    }

    fn device(&self) -> &Device {
        self.model.device()
    }

    fn forward_biased(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.forward(ids, biases, (keep_scores, true))
    }

    fn forward_attention(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        self.forward(ids, biases, (keep_scores, false))
    }
}
