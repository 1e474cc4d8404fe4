//! GPT-NeoX decoders (EleutherAI's Pythia, the models most interpretability work is done on)
//! from a Hugging Face folder: `config.json` (model_type `gpt_neox`), `model.safetensors`
//! (names under `gpt_neox.`, the head as `embed_out`) and a byte-level BPE `tokenizer.json`.
//! GPT-NeoX is GPT-2's block with three differences, each carried by [`Gpt2`]: positions by
//! RoPE on the first `partial_rotary_factor` of each head's dimensions (Pythia: 16 of 64,
//! halves rotated) instead of learned embeddings; attention and MLP both reading the block's
//! input (`use_parallel_residual`, Pythia's) or the MLP after attention; and q, k and v of
//! each head side by side in one `query_key_value` projection, reordered here at load into
//! GPT-2's `c_attn` layout (all q, then all k, then all v), so every path of [`Gpt2`] —
//! KV cache, streamed rows, fine-tuning — runs unchanged.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::{load_core, Affine, Block, Gpt2, Gpt2Config, Rotary, Variant};
use crate::hf::limits::{
    heads_divide, in_range, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB,
    MAX_WIDTH,
};

/// RoPE settings as transformers 5 writes them (`rope_parameters`); older configs (Pythia's)
/// have `rotary_pct`, `rotary_emb_base` and `rope_scaling` at the top level.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct NeoxRope {
    /// The RoPE base.
    pub rope_theta: Option<f64>,
    /// The share of each head's dimensions rotated.
    pub partial_rotary_factor: Option<f64>,
    /// "default" (no scaling) is the only kind run.
    pub rope_type: Option<String>,
    /// The same, as older configs name it.
    #[serde(rename = "type")]
    pub old_type: Option<String>,
}

/// RoPE on part of each head, as GPT-NeoX and Phi configure it.
pub struct PartialRope {
    /// The share of each head's dimensions rotated.
    pub share: f64,
    /// The RoPE base.
    pub base: f64,
    /// Width of a head.
    pub head: usize,
}

impl PartialRope {
    /// The dimensions rotated: ⌊d_h · share⌋, as transformers takes them.
    pub fn dims(&self) -> usize {
        (self.head as f64 * self.share).floor() as usize
    }

    /// RoPE of kind "default" in every settings block given, a share in (0, 1] that rotates an
    /// even number of dimensions (at least 2), a finite base above 1; else the sentence.
    pub fn check(&self, settings: [&Option<NeoxRope>; 2]) -> Result<(), String> {
        for r in settings.into_iter().flatten() {
            let kind = r.rope_type.as_deref().or(r.old_type.as_deref());
            if let Some(k) = kind.filter(|k| *k != "default") {
                return Err(format!(
                    "RoPE scaling of rope_type {k:?} is not supported (only default)"
                ));
            }
        }
        let f = self.share;
        if !(f > 0.0 && f <= 1.0) {
            return Err(format!(
                "the rotary share (rotary_pct / partial_rotary_factor) {f} must be in (0, 1]"
            ));
        }
        let dims = self.dims();
        if dims < 2 || !dims.is_multiple_of(2) {
            return Err(format!(
                "RoPE would rotate {dims} of each head's {} dimensions; it rotates pairs, so \
                 it must be an even number of at least 2 (rotary_pct / partial_rotary_factor)",
                self.head
            ));
        }
        let base = self.base;
        if !(base.is_finite() && base > 1.0) {
            return Err(format!(
                "the RoPE base (rotary_emb_base / rope_theta) {base} must be a finite number \
                 above 1"
            ));
        }
        Ok(())
    }
}

/// The fields of a GPT-NeoX `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct GptNeoxConfig {
    /// Vocabulary size (rows of the embedding; Pythia pads it to a multiple of 128).
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Positions.
    pub max_position_embeddings: usize,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_eps: f64,
    /// The MLP's activation ("gelu", Pythia's, is the exact erf form).
    #[serde(default = "gelu")]
    pub hidden_act: String,
    /// Attention and MLP both read the block's input (Pythia), or the MLP reads attention's
    /// output.
    #[serde(default = "yes")]
    pub use_parallel_residual: bool,
    /// Biases on query_key_value and dense.
    #[serde(default = "yes")]
    pub attention_bias: bool,
    /// Whether the head is the token embedding (Pythia's is not).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// RoPE as transformers 5 writes it.
    #[serde(default)]
    pub rope_parameters: Option<NeoxRope>,
    /// The share of each head rotated, as older configs name it.
    #[serde(default)]
    pub rotary_pct: Option<f64>,
    /// The RoPE base, as older configs name it.
    #[serde(default)]
    pub rotary_emb_base: Option<f64>,
    /// RoPE scaling, as older configs name it (only none is run).
    #[serde(default)]
    pub rope_scaling: Option<NeoxRope>,
}

fn ln_eps() -> f64 {
    1e-5
}
fn gelu() -> String {
    "gelu".into()
}
fn yes() -> bool {
    true
}

impl GptNeoxConfig {
    /// Its RoPE: the share rotated (0.25 when the config names none, as transformers) and
    /// the base (10,000).
    pub fn rope(&self) -> PartialRope {
        let p = self.rope_parameters.as_ref();
        PartialRope {
            share: (p.and_then(|r| r.partial_rotary_factor))
                .or(self.rotary_pct)
                .unwrap_or(0.25),
            base: (p.and_then(|r| r.rope_theta))
                .or(self.rotary_emb_base)
                .unwrap_or(10_000.0),
            head: self.hidden_size / self.num_attention_heads.max(1),
        }
    }

    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "gelu_new" | "gelu_pytorch_tanh"
        ) {
            return Err(format!(
                "hidden_act {:?} is not supported (gelu, gelu_new or gelu_pytorch_tanh)",
                self.hidden_act
            ));
        }
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        let h = in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        in_range("intermediate_size", self.intermediate_size, 1, MAX_FF)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        positive_eps("layer_norm_eps", self.layer_norm_eps)?;
        heads_divide(
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", h),
        )?;
        self.rope()
            .check([&self.rope_parameters, &self.rope_scaling])
    }

    /// The same model as [`Gpt2`] reads its sizes.
    fn gpt2_config(&self) -> Gpt2Config {
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.max_position_embeddings,
            n_embd: self.hidden_size,
            n_layer: self.num_hidden_layers,
            n_head: self.num_attention_heads,
            n_inner: Some(self.intermediate_size),
            layer_norm_epsilon: self.layer_norm_eps,
            activation_function: self.hidden_act.clone(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// Every tensor the forward pass reads (names without the `gpt_neox.` prefix), with the
    /// shape this config implies; `head` is the output head's name in this file.
    fn expected_shapes(&self, head: &str) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let mut want = vec![
            ("embed_in.weight".to_string(), vec![v, d]),
            ("final_layer_norm.weight".to_string(), vec![d]),
            ("final_layer_norm.bias".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push((head.to_string(), vec![v, d]));
        }
        for l in 0..self.num_hidden_layers {
            let mut layer = vec![
                ("input_layernorm.weight", vec![d]),
                ("input_layernorm.bias", vec![d]),
                ("post_attention_layernorm.weight", vec![d]),
                ("post_attention_layernorm.bias", vec![d]),
                ("attention.query_key_value.weight", vec![3 * d, d]),
                ("attention.dense.weight", vec![d, d]),
                ("mlp.dense_h_to_4h.weight", vec![f, d]),
                ("mlp.dense_h_to_4h.bias", vec![f]),
                ("mlp.dense_4h_to_h.weight", vec![d, f]),
                ("mlp.dense_4h_to_h.bias", vec![d]),
            ];
            if self.attention_bias {
                layer.push(("attention.query_key_value.bias", vec![3 * d]));
                layer.push(("attention.dense.bias", vec![d]));
            }
            for (name, shape) in layer {
                want.push((format!("layers.{l}.{name}"), shape));
            }
        }
        want
    }
}

/// A tensor name without the `gpt_neox.` prefix of `GPTNeoXForCausalLM` exports.
fn unprefixed(name: &str) -> &str {
    name.strip_prefix("gpt_neox.").unwrap_or(name)
}

impl Gpt2 {
    /// Open the folder `dir` of a GPT-NeoX model (Pythia). The config is checked against the
    /// limits and the safetensors header before any weight is read; every weight is checked
    /// finite. Buffers older exports carry (`attention.bias`, a boolean causal mask;
    /// `attention.masked_bias`; `rotary_emb.inv_freq`) are not read.
    pub fn open_neox(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let neox: GptNeoxConfig = folder::read_config(&cfg_path, "GPT-NeoX")?;
        neox.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let declared = folder::declared(&folder::weights(dir)?, unprefixed)?;
        // transformers 5 writes the head as `embed_out` (Pythia's name); accept `lm_head` too.
        let head_name = if declared.contains_key("lm_head.weight")
            && !declared.contains_key("embed_out.weight")
        {
            "lm_head.weight"
        } else {
            "embed_out.weight"
        };
        let want = neox.expected_shapes(head_name);
        let config = neox.gpt2_config();
        let names = [
            "embed_in.weight",
            "final_layer_norm.weight",
            "final_layer_norm.bias",
            head_name,
        ];
        let fused = FusedNames {
            layers: "layers",
            attention: "attention",
        };
        let shape = (
            neox.hidden_size,
            neox.num_attention_heads,
            neox.attention_bias,
        );
        let block = |t: &mut HashMap<String, Tensor>, l, file: &Path| {
            read_fused_block(t, (l, file), fused, shape)
        };
        let read = load_core(dir, device, (&config, &want, unprefixed), names, block)?;
        let variant = Variant {
            family: Family::GptNeox,
            wpe: None,
            rotary: Some(Rotary::new(neox.rope().dims(), neox.rope().base)),
            parallel: neox.use_parallel_residual,
            head_bias: None,
            alibi: None,
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Where a block with one fused, per-head interleaved q/k/v projection keeps its weights:
/// GPT-NeoX's `layers.L.attention.*`, BLOOM's `h.L.self_attention.*`.
#[derive(Clone, Copy)]
pub(super) struct FusedNames {
    /// The layers' prefix ("layers", "h").
    pub layers: &'static str,
    /// Attention's name within a layer ("attention", "self_attention").
    pub attention: &'static str,
}

/// Layer `l`'s weights out of `t` (checked present and shaped by the header check), as GPT-2's
/// `Conv1D`s ([in, out]), named as `names` says, of width `d` with `h` heads; q, k and v
/// reordered from the per-head interleaving (head, part, d_h) of GPT-NeoX and BLOOM; zero
/// attention biases where `bias` is false.
pub(super) fn read_fused_block(
    t: &mut HashMap<String, Tensor>,
    (l, file): (usize, &Path),
    names: FusedNames,
    (d, h, bias): (usize, usize, bool),
) -> Result<Block> {
    let FusedNames { layers, attention } = names;
    let mut take = |name: &str| folder::take(t, &format!("{layers}.{l}.{name}"), file);
    let qkv_w = take(&format!("{attention}.query_key_value.weight"))?;
    let dense_w = take(&format!("{attention}.dense.weight"))?;
    let dev = qkv_w.device().clone();
    let zeros = |n: usize| Tensor::zeros(n, candle_core::DType::F32, &dev);
    let (qkv_b, dense_b) = if bias {
        (
            take(&format!("{attention}.query_key_value.bias"))?,
            take(&format!("{attention}.dense.bias"))?,
        )
    } else {
        (zeros(3 * d)?, zeros(d)?)
    };
    let linear = |w: Tensor, b: Tensor| -> Result<Affine> { Ok((w.t()?.contiguous()?, b)) };
    // Rows (head, part, d_h) → (part, head, d_h): all q, then all k, then all v.
    let reorder = |x: &Tensor| crate::hf::gpt2::qkv::gpt2_order(x, (d, h), None);
    let c_attn = linear(reorder(&qkv_w)?, reorder(&qkv_b)?)
        .with_context(|| format!("{}: layer {l}'s query_key_value", file.display()))?;
    Ok(Block {
        ln_1: (
            take("input_layernorm.weight")?,
            take("input_layernorm.bias")?,
        ),
        c_attn,
        c_proj: linear(dense_w, dense_b)?,
        ln_2: (
            take("post_attention_layernorm.weight")?,
            take("post_attention_layernorm.bias")?,
        ),
        c_fc: linear(
            take("mlp.dense_h_to_4h.weight")?,
            take("mlp.dense_h_to_4h.bias")?,
        )?,
        mlp_proj: linear(
            take("mlp.dense_4h_to_h.weight")?,
            take("mlp.dense_4h_to_h.bias")?,
        )?,
    })
}
