//! What Gemma's `config.json` says of RoPE and where its decoder's settings are: the bases of
//! the global and (Gemma 3's) local layers, the global layers' linear stretch (gemma-3-4b and
//! up), and a multimodal Gemma 3's `text_config` with transformers' defaults for what it does
//! not name.

use std::path::Path;

use anyhow::{Context, Result};

use super::gemma::GemmaConfig;
use crate::hf::family::Family;
use crate::hf::folder;

impl GemmaConfig {
    /// The `config.json` at `path` of a `family` model: a Gemma 3's missing keys filled with
    /// transformers' `Gemma3TextConfig` defaults (a multimodal checkpoint's `text_config`, as
    /// gemma-3-4b-it's, names only what differs from them), its decoder read from
    /// `text_config` where the config has one.
    pub fn read(path: &Path, family: Family) -> Result<Self> {
        let mut json: serde_json::Value = folder::read_config(path, family.model_type())?;
        let multimodal = json.get("text_config").is_some_and(|t| t.is_object());
        // A multimodal config without its decoder's: its top level holds none of the sizes,
        // which the defaults would fill in as another model's.
        let outer = json.get("model_type").and_then(|t| t.as_str()) == Some("gemma3");
        if outer && !multimodal {
            anyhow::bail!(
                "{}: a multimodal Gemma 3 config (model_type gemma3) without a text_config \
                 object, which holds its text decoder's settings",
                path.display()
            );
        }
        if multimodal {
            json = json["text_config"].take();
        }
        if family == Family::Gemma3 {
            gemma3_defaults(&mut json);
        }
        let mut c: Self = serde_json::from_value(json)
            .with_context(|| format!("{}: not a readable Gemma config.json", path.display()))?;
        c.multimodal = multimodal;
        Ok(c)
    }

    /// The RoPE settings of a layer kind (`full_attention`, `sliding_attention`) from
    /// `rope_parameters`, flat or per kind.
    pub(super) fn rope_of(&self, kind: &str) -> Option<&serde_json::Value> {
        let p = self.rope_parameters.as_ref()?;
        Some(p.get(kind).unwrap_or(p))
    }

    /// The global RoPE base, and Gemma 3's sliding layers' where it differs.
    pub(super) fn rope_bases(&self, family: Family) -> (f64, Option<f64>) {
        let theta = |kind: &str| {
            self.rope_of(kind)
                .and_then(|r| r.get("rope_theta"))
                .and_then(serde_json::Value::as_f64)
        };
        // transformers' defaults: Gemma 3's global base 1,000,000, the others' 10,000.
        let default = match family {
            Family::Gemma3 => 1_000_000.0,
            _ => 10_000.0,
        };
        let global = theta("full_attention")
            .or(self.rope_theta)
            .unwrap_or(default);
        let local = match family {
            Family::Gemma3 => theta("sliding_attention")
                .or(self.rope_local_base_freq)
                .or(Some(10_000.0)),
            _ => None,
        };
        // With the global layers' RoPE stretched, the local layers keep tables of their own
        // even at the same base: theirs is not stretched.
        let own = self.linear_factor().ok().flatten().is_some();
        (global, local.filter(|l| *l != global || own))
    }

    /// The global layers' linear RoPE stretch (gemma-3-4b and up: 8), None without one. Another
    /// kind of scaling, or one on Gemma 3's local layers, is refused.
    pub(super) fn linear_factor(&self) -> Result<Option<f64>, String> {
        let kind_of = |r: &serde_json::Value| {
            let t = r.get("rope_type").or_else(|| r.get("type"));
            t.and_then(|t| t.as_str()).map(str::to_string)
        };
        let local = (self.rope_parameters.as_ref()).and_then(|p| p.get("sliding_attention"));
        if let Some(t) = local.and_then(kind_of).filter(|t| t != "default") {
            return Err(format!(
                "RoPE scaling of rope_type {t:?} on the local layers is not supported (only \
                 default)"
            ));
        }
        let global = [self.rope_of("full_attention"), self.rope_scaling.as_ref()];
        let mut factor = None;
        for r in global.into_iter().flatten() {
            match kind_of(r).as_deref() {
                None | Some("default") => {}
                Some("linear") => {
                    let f = r.get("factor").and_then(serde_json::Value::as_f64);
                    match f.filter(|f| f.is_finite() && *f > 0.0) {
                        Some(f) => factor = Some(f),
                        None => {
                            return Err(format!(
                                "rope_type \"linear\" needs factor, a finite number above 0 \
                                 (got {f:?})"
                            ))
                        }
                    }
                }
                Some(t) => {
                    return Err(format!(
                        "RoPE scaling of rope_type {t:?} is not supported (default and linear \
                         are)"
                    ))
                }
            }
        }
        Ok(factor)
    }
}

/// transformers' `Gemma3TextConfig` defaults for the keys `config` lacks (the global base
/// 1,000,000 and the local 10,000 among them: a config naming neither turns at those).
fn gemma3_defaults(config: &mut serde_json::Value) {
    let Some(c) = config.as_object_mut() else {
        return;
    };
    let defaults = serde_json::json!({
        "vocab_size": 262_208, "hidden_size": 2304, "intermediate_size": 9216,
        "num_hidden_layers": 26, "num_attention_heads": 8, "num_key_value_heads": 4,
        "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
        "max_position_embeddings": 131_072, "rms_norm_eps": 1e-6,
        "query_pre_attn_scalar": 256, "sliding_window": 4096,
    });
    for (k, v) in defaults.as_object().into_iter().flatten() {
        c.entry(k.clone()).or_insert_with(|| v.clone());
    }
}
