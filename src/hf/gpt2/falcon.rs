//! Falcon decoders (`model_type` `falcon`: TII's falcon-rw-1b, falcon-7b, falcon-40b,
//! falcon-11B) from a Hugging Face folder. Each is GPT-2's pre-LayerNorm block with its
//! projections as `Linear`s in one fused `query_key_value`, an MLP (`dense_h_to_4h`, the exact
//! GELU, `dense_4h_to_h`), a tied head and no learned positions, in one of three shapes:
//! - falcon-rw-1b: ALiBi (transformers' Falcon rounds each slope and each slope · position to
//!   bf16 and divides them by √d_h), attention then MLP, biases, q/k/v interleaved per head;
//! - falcon-7b (`multi_query`): RoPE on every dimension, attention and MLP side by side
//!   reading one LayerNorm, one key and one value head shared by all query heads;
//! - falcon-40b, falcon-11B (`new_decoder_architecture`): RoPE, side by side with a LayerNorm
//!   each (`ln_attn`, `ln_mlp`) or one (`num_ln_in_parallel_attn` 1), key/value heads in groups
//!   (each group's queries, then its key and value).
//!
//! At load every key and value head is repeated for the query heads that share it and the
//! rows are put in GPT-2's order (all q, all k, all v), so the model runs through GPT-2's
//! passes (KV cache, streamed captures, fine-tuning and adapters) without a path of its own;
//! the copy costs the repeated heads' weights in memory, counted before a weight is read.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::alibi::alibi_slopes;
use crate::hf::gpt2::qkv::gpt2_order;
use crate::hf::gpt2::rotary::rope_base;
use crate::hf::gpt2::{load_core_copying, unprefixed, Affine, Alibi, Block, Gpt2, Gpt2Config};
use crate::hf::gpt2::{Rotary, Variant};
use crate::hf::limits::{
    heads_divide, in_range, kv_groups, positive_eps, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS,
    MAX_VOCAB, MAX_WIDTH,
};

/// The fields of a Falcon `config.json` the forward pass needs (transformers' defaults).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct FalconConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads of the new decoder architecture (the query heads when absent).
    #[serde(default)]
    pub num_kv_heads: Option<usize>,
    /// falcon-40b's and falcon-11B's grouped block.
    #[serde(default)]
    pub new_decoder_architecture: bool,
    /// One key and one value head (falcon-7b), outside the new architecture.
    #[serde(default = "yes")]
    pub multi_query: bool,
    /// Attention and the MLP side by side.
    #[serde(default = "yes")]
    pub parallel_attn: bool,
    /// LayerNorms of the new architecture's block: 2 (one each, the default) or 1.
    #[serde(default)]
    pub num_ln_in_parallel_attn: Option<usize>,
    /// Biases on every projection (falcon-rw-1b).
    #[serde(default)]
    pub bias: bool,
    /// ALiBi for positions (falcon-rw-1b) instead of RoPE.
    #[serde(default)]
    pub alibi: bool,
    /// LayerNorm ε.
    #[serde(default = "ln_eps")]
    pub layer_norm_epsilon: f64,
    /// Positions (the context).
    #[serde(default = "positions")]
    pub max_position_embeddings: usize,
    /// MLP width (4d when absent).
    #[serde(default)]
    pub ffn_hidden_size: Option<usize>,
    /// The MLP's activation ("gelu": the exact one).
    #[serde(default = "gelu")]
    pub activation: String,
    /// RoPE's base, older configs.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    /// RoPE's settings, transformers 5 (`rope_theta`, `rope_type`).
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    /// RoPE scaling, older configs (refused).
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    /// Whether the output head is the token embedding.
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn yes() -> bool {
    true
}
fn ln_eps() -> f64 {
    1e-5
}
fn positions() -> usize {
    2048
}
fn gelu() -> String {
    "gelu".into()
}

impl FalconConfig {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        let d = in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        let h = in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        heads_divide(("hidden_size", d), ("num_attention_heads", h))?;
        kv_groups("num_kv_heads", self.kv_heads(), h)?;
        in_range("ffn_hidden_size", self.ff(), 1, MAX_FF)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        positive_eps("layer_norm_epsilon", self.layer_norm_epsilon)?;
        if self.new_decoder_architecture {
            match self.lns() {
                2 => {}
                1 if self.parallel_attn => {}
                1 => {
                    return Err(
                        "num_ln_in_parallel_attn = 1 with parallel_attn = false (which \
                                transformers cannot run either) is not supported"
                            .into(),
                    )
                }
                n => {
                    return Err(format!(
                        "num_ln_in_parallel_attn = {n} is not supported (1 or 2)"
                    ))
                }
            }
        }
        if !self.alibi {
            self.base()?;
        }
        if (self.rope_scaling.as_ref()).is_some_and(|v| !v.is_null()) {
            return Err("rope_scaling is not supported for Falcon".into());
        }
        self.gpt2_config().check()
    }

    /// Key/value heads: the new architecture's groups, one (`multi_query`), or one a head.
    pub fn kv_heads(&self) -> usize {
        let h = self.num_attention_heads;
        match (self.new_decoder_architecture, self.multi_query) {
            (true, _) => self.num_kv_heads.unwrap_or(h),
            (false, true) => 1,
            (false, false) => h,
        }
    }

    /// LayerNorms of a new-architecture block.
    fn lns(&self) -> usize {
        self.num_ln_in_parallel_attn.unwrap_or(2)
    }

    /// MLP width.
    fn ff(&self) -> usize {
        self.ffn_hidden_size.unwrap_or(4 * self.hidden_size)
    }

    /// Attention and the MLP side by side (always in the new architecture).
    fn parallel(&self) -> bool {
        self.parallel_attn || self.new_decoder_architecture
    }

    /// RoPE's base ([`rope_base`]).
    fn base(&self) -> Result<f64, String> {
        rope_base(self.rope_theta, self.rope_parameters.as_ref(), "Falcon")
    }

    /// The same model as [`Gpt2`] reads its sizes.
    fn gpt2_config(&self) -> Gpt2Config {
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.max_position_embeddings,
            n_embd: self.hidden_size,
            n_layer: self.num_hidden_layers,
            n_head: self.num_attention_heads,
            n_inner: Some(self.ff()),
            layer_norm_epsilon: self.layer_norm_epsilon,
            activation_function: self.activation.clone(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// The names of a layer's LayerNorms: attention's, and the MLP's where it has its own.
    fn norm_names(&self) -> (&'static str, Option<&'static str>) {
        match (self.new_decoder_architecture, self.lns(), self.parallel()) {
            (true, 2, _) => ("ln_attn", Some("ln_mlp")),
            (_, _, true) => ("input_layernorm", None),
            _ => ("input_layernorm", Some("post_attention_layernorm")),
        }
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with
    /// the shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, v, f) = (self.hidden_size, self.vocab_size, self.ff());
        let dh = d / self.num_attention_heads;
        let qkv = d + 2 * self.kv_heads() * dh;
        let mut want = vec![
            ("word_embeddings.weight".to_string(), vec![v, d]),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
        ];
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        let (attn_norm, mlp_norm) = self.norm_names();
        for l in 0..self.num_hidden_layers {
            let mut layer = Vec::new();
            for (name, out, inp) in [
                ("self_attention.query_key_value", qkv, d),
                ("self_attention.dense", d, d),
                ("mlp.dense_h_to_4h", f, d),
                ("mlp.dense_4h_to_h", d, f),
            ] {
                layer.push((format!("{name}.weight"), vec![out, inp]));
                if self.bias {
                    layer.push((format!("{name}.bias"), vec![out]));
                }
            }
            for norm in std::iter::once(attn_norm).chain(mlp_norm) {
                layer.push((format!("{norm}.weight"), vec![d]));
                layer.push((format!("{norm}.bias"), vec![d]));
            }
            want.extend(layer.into_iter().map(|(n, s)| (format!("h.{l}.{n}"), s)));
        }
        want
    }
}

impl Gpt2 {
    /// Open the folder `dir` of a Falcon model. The config is checked against the limits and
    /// the safetensors header before any weight is read (with the repeated key and value
    /// heads counted in the memory check); every weight is checked finite.
    pub fn open_falcon(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let falcon: FalconConfig = folder::read_config(&cfg_path, "Falcon")?;
        falcon
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = falcon.gpt2_config();
        let want = falcon.expected_shapes();
        let (d, h, kv) = (
            falcon.hidden_size,
            falcon.num_attention_heads,
            falcon.kv_heads(),
        );
        let copies = 2 * (d - kv * (d / h)) * (d + usize::from(falcon.bias)) * config.n_layer;
        let names = [
            "word_embeddings.weight",
            "ln_f.weight",
            "ln_f.bias",
            "lm_head.weight",
        ];
        let read = load_core_copying(
            dir,
            device,
            (&config, &want, unprefixed),
            (names, copies as u64),
            |t, l, f| read_falcon_block(t, (l, f), &falcon),
        )?;
        let dh = d / h;
        let variant = Variant {
            family: Family::Falcon,
            wpe: None,
            rotary: match falcon.alibi {
                true => None,
                false => Some(Rotary::new(dh, falcon.base().map_err(anyhow::Error::msg)?)),
            },
            parallel: falcon.parallel(),
            head_bias: None,
            alibi: falcon.alibi.then(|| Alibi {
                slopes: alibi_slopes(h),
                divisor: (dh as f32).sqrt(),
                bf16: true,
            }),
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]), zero biases where the
/// config has none, the one LayerNorm of a parallel block as both of GPT-2's.
fn read_falcon_block(
    t: &mut HashMap<String, Tensor>,
    (l, file): (usize, &Path),
    c: &FalconConfig,
) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("h.{l}.{name}"), file);
    // A `Linear`'s weight and bias (zeros where the config has none).
    let mut linear = |name: &str| super::linear(&mut take, name, c.bias);
    let conv = |(w, b): Affine| -> Result<Affine> { Ok((w.t()?.contiguous()?, b)) };
    let (w, b) = linear("self_attention.query_key_value")?;
    // Each head's q, k, v in turn (falcon-rw-1b), or groups of queries with their key and
    // value (falcon-7b's one group, the new architecture's several).
    let groups = (c.new_decoder_architecture || c.multi_query).then(|| c.kv_heads());
    let order = |x: &Tensor| gpt2_order(x, (c.hidden_size, c.num_attention_heads), groups);
    let c_attn = conv((order(&w)?, order(&b)?))?;
    let c_proj = conv(linear("self_attention.dense")?)?;
    let c_fc = conv(linear("mlp.dense_h_to_4h")?)?;
    let mlp_proj = conv(linear("mlp.dense_4h_to_h")?)?;
    let (attn_norm, mlp_norm) = c.norm_names();
    let mut norm = |name: &str| -> Result<Affine> {
        let w = folder::take(t, &format!("h.{l}.{name}.weight"), file)?;
        Ok((w, folder::take(t, &format!("h.{l}.{name}.bias"), file)?))
    };
    let ln_1 = norm(attn_norm)?;
    let ln_2 = match mlp_norm {
        Some(name) => norm(name)?,
        None => ln_1.clone(),
    };
    Ok(Block {
        ln_1,
        c_attn,
        c_proj,
        ln_2,
        c_fc,
        mlp_proj,
    })
}
