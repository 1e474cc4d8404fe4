//! OLMo 3 (`model_type` `olmo3`): OLMo 2's block (no pre-norms, RMSNorms on what attention and
//! the MLP write, q/k norms over all heads) with layers of two kinds (`layer_types`): most
//! attend within a sliding window (4,096; three of every four when the config names none), the
//! rest to the whole text. Their RoPE is set per kind: transformers 5 writes
//! `rope_parameters` as `{"full_attention": {...}, "sliding_attention": {...}}`, older configs
//! a top-level `rope_scaling` that, as transformers' `Olmo3Config` reads it, scales the
//! full-attention layers only. The released models stretch those by YaRN and turn the sliding
//! layers by the plain rotation: the full layers take the model's (scaled) tables, the sliding
//! ones their own ([`LlamaConfig::sliding_rope`](crate::hf::gguf_llama::LlamaConfig)). The
//! window is taken as the context, as for Mistral.

use super::config::HfLlamaConfig;
use super::rope::RopeParameters;

impl HfLlamaConfig {
    /// The RoPE settings of the model's (full-attention) layers: `rope_parameters`, or its
    /// `full_attention` entry where it is set per layer kind (OLMo 3's).
    pub(super) fn rope_params(&self) -> Option<&RopeParameters> {
        let p = self.rope_parameters.as_ref()?;
        Some(p.full_attention.as_deref().unwrap_or(p))
    }

    /// OLMo 3's sliding layers (true) by layer: `layer_types`, or three of every four (every
    /// fourth attends to the whole text) as transformers fills it in; empty for other models.
    pub(super) fn olmo3_layers(&self) -> Vec<bool> {
        if self.model_type != "olmo3" {
            return Vec::new();
        }
        match &self.layer_types {
            Some(kinds) => kinds.iter().map(|k| k == "sliding_attention").collect(),
            None => (0..self.num_hidden_layers)
                .map(|i| (i + 1) % 4 != 0)
                .collect(),
        }
    }

    /// The base of the sliding layers' plain rotation: their own `rope_theta`, else the
    /// config's top-level one, else the model's.
    fn sliding_base(&self) -> f64 {
        let own = self.rope_parameters.as_ref();
        own.and_then(|p| p.sliding_attention.as_deref())
            .and_then(|p| p.rope_theta)
            .or(self.rope_theta)
            .unwrap_or_else(|| self.rope_base())
    }

    /// OLMo 3's sliding layers and the base they turn by, for the decoder; None elsewhere or
    /// where no layer slides.
    pub(super) fn sliding_rope(&self) -> Option<(Vec<bool>, f64)> {
        let layers = self.olmo3_layers();
        layers
            .iter()
            .any(|&s| s)
            .then(|| (layers.clone(), self.sliding_base()))
    }

    /// OLMo 3's layer kinds (one per layer, each `sliding_attention` or `full_attention`), a
    /// window where layers slide, and the plain rotation on the sliding layers; layer kinds
    /// and per-kind RoPE are refused on other models (their settings would be misread).
    pub(super) fn check_olmo3(&self) -> Result<(), String> {
        let per_kind = self
            .rope_parameters
            .as_ref()
            .is_some_and(|p| p.full_attention.is_some() || p.sliding_attention.is_some());
        if self.model_type != "olmo3" {
            return match per_kind {
                true => Err(format!(
                    "rope_parameters set per layer kind is not supported for model_type {:?} \
                     (OLMo 3's only)",
                    self.model_type
                )),
                false => Ok(()),
            };
        }
        if let Some(kinds) = &self.layer_types {
            if kinds.len() != self.num_hidden_layers {
                return Err(format!(
                    "layer_types names {} layers of {}",
                    kinds.len(),
                    self.num_hidden_layers
                ));
            }
            if let Some(k) = kinds
                .iter()
                .find(|k| !matches!(k.as_str(), "sliding_attention" | "full_attention"))
            {
                return Err(format!(
                    "layer_types names a layer kind {k:?} (sliding_attention or full_attention)"
                ));
            }
        }
        if self.olmo3_layers().iter().any(|&s| s) && self.sliding_window.is_none() {
            return Err("sliding layers without a sliding_window".into());
        }
        let sliding = self.rope_parameters.as_ref();
        let sliding = sliding.and_then(|p| p.sliding_attention.as_deref());
        if let Some(kind) = sliding.and_then(RopeParameters::kind) {
            if kind != "default" {
                return Err(format!(
                    "rope_parameters.sliding_attention.rope_type {kind:?} is not supported (the \
                     sliding layers turn by the plain rotation in every OLMo 3)"
                ));
            }
        }
        let base = self.sliding_base();
        match base.is_finite() && base > 1.0 {
            true => Ok(()),
            false => Err(format!(
                "the sliding layers' rope_theta = {base} must be a finite number above 1"
            )),
        }
    }
}
