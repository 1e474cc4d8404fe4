//! A LLaMA-family config's rotation: the dimensions of each head RoPE turns (Phi-3's partial
//! rotation) and what its scaling does ([`RopeScaling`], computed in [`super::rope`]).

use super::config::HfLlamaConfig;
use super::rope::{RopeContext, RopeScaling};

impl HfLlamaConfig {
    /// The dimensions of a head RoPE turns: all, or ⌊d_h · partial_rotary_factor⌋ (Phi-3's
    /// and StableLM's configs only, as transformers reads them: StableLM's 0.25 when its config
    /// names none), which must be even and at least 2.
    pub fn rotary_dims(&self) -> Result<usize, String> {
        let dh = self.head_width();
        let partial = (self.rope_params())
            .and_then(|r| r.partial_rotary_factor)
            .or(self.partial_rotary_factor)
            .or((self.model_type == "stablelm").then_some(0.25));
        let Some(f) = partial.filter(|f| *f != 1.0) else {
            return Ok(dh);
        };
        if !matches!(self.model_type.as_str(), "phi3" | "stablelm") {
            return Err(format!(
                "partial_rotary_factor {f:?} is not supported for model_type {:?} (RoPE on part \
                 of each head: Phi-3's and StableLM's only; transformers' other LLaMA-family \
                 models turn all)",
                self.model_type
            ));
        }
        if !(f.is_finite() && f > 0.0 && f < 1.0) {
            return Err(format!(
                "partial_rotary_factor {f:?} must be a number above 0 and at most 1"
            ));
        }
        let dims = (dh as f64 * f) as usize;
        if dims < 2 || dims % 2 == 1 {
            return Err(format!(
                "partial_rotary_factor {f:?} turns {dims} of a head's {dh} dimensions (RoPE needs \
                 an even number, at least 2)"
            ));
        }
        Ok(dims)
    }

    /// What the config's RoPE scaling does (checked: a kind transformers does not know, or a
    /// field out of range, is an error naming it). Phi-3 reads "su" and "yarn" as "longrope",
    /// as transformers does.
    pub(super) fn rope_scaled(&self) -> Result<RopeScaling, String> {
        let Some(p) = self.scaling() else {
            return Ok(RopeScaling {
                attention: 1.0,
                ..RopeScaling::default()
            });
        };
        let kind = p.kind().unwrap_or("default");
        let kind = match kind {
            "su" | "yarn" if self.model_type == "phi3" => "longrope",
            k => k,
        };
        let top = match self.model_type.as_str() {
            "phi3" => Some(self.original_max_position_embeddings.unwrap_or(4096.0)),
            _ => self.original_max_position_embeddings,
        };
        let original = top
            .or(p.original_max_position_embeddings)
            .unwrap_or(self.max_position_embeddings as f64);
        if matches!(kind, "llama3" | "yarn" | "longrope")
            && !(original.is_finite() && (2.0..=1e9).contains(&original))
        {
            return Err(format!(
                "rope_type {kind:?}: original_max_position_embeddings {original:?} must be a \
                 number from 2 to 10^9"
            ));
        }
        p.scaling(
            kind,
            &RopeContext {
                dims: self.rotary_dims()?,
                base: self.rope_base(),
                positions: self.max_position_embeddings,
                original,
            },
        )
    }
}
