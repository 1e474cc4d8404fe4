//! OPT decoders (Meta's OPT-125m, 1.3b, 2.7b …, and Galactica, `model_type` `opt`) from a
//! Hugging Face folder: `config.json`, `model.safetensors` (names under `model.decoder.`) and
//! GPT-2's byte-level BPE (`tokenizer.json`, or `vocab.json` + `merges.txt` with the `</s>`
//! that `tokenizer_config.json`'s `add_bos_token` puts first). OPT is GPT-2's pre-LayerNorm
//! block with q, k and v as three `Linear`s with biases (side by side in GPT-2's layout at
//! load), a ReLU MLP and learned positions whose first two rows are never used (OPT's
//! position `i` reads row `i + 2`). OPT-350m, the one release that normalises after each
//! sub-layer (`do_layer_norm_before` false, so no final LayerNorm) and whose token embeddings
//! are narrower than its blocks (`word_embed_proj_dim` 512 against 1,024: projected in before
//! the positions are added and out before the tied head, without biases), reads the same way
//! ([`Gpt2`]'s `post_norm` and `project`), as do old checkpoints without the final LayerNorm
//! (`_remove_final_layer_norm`).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::{
    load_core, Affine, Block, CoreNames, EmbedProjection, Gpt2, Gpt2Config, Variant,
};
use crate::hf::limits::{
    heads_divide, in_range, MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, MAX_WIDTH,
};

/// OPT's learned positions start this many rows into their table.
const POSITION_OFFSET: usize = 2;

/// The fields of an OPT `config.json` the forward pass needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OptConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width d.
    pub hidden_size: usize,
    /// MLP width.
    pub ffn_dim: usize,
    /// Layers.
    pub num_hidden_layers: usize,
    /// Heads.
    pub num_attention_heads: usize,
    /// Positions (the table has two rows more).
    pub max_position_embeddings: usize,
    /// "relu" (OPT's), or a GELU.
    #[serde(default = "relu")]
    pub activation_function: String,
    /// LayerNorm before each sub-layer (every release but OPT-350m, which norms after each).
    #[serde(default = "yes")]
    pub do_layer_norm_before: bool,
    /// The token embeddings' width, projected to and from `hidden_size` where it differs
    /// (OPT-350m's 512).
    #[serde(default)]
    pub word_embed_proj_dim: Option<usize>,
    /// Biases on the projections (zeros where absent).
    #[serde(default = "yes")]
    pub enable_bias: bool,
    /// LayerNorms with a weight and a bias (no release has them without; refused).
    #[serde(default = "yes")]
    pub layer_norm_elementwise_affine: bool,
    /// Old checkpoints without the final LayerNorm.
    #[serde(default, rename = "_remove_final_layer_norm")]
    pub remove_final_layer_norm: bool,
    /// Whether the output head is the token embedding (OPT's is).
    #[serde(default = "yes")]
    pub tie_word_embeddings: bool,
}

fn relu() -> String {
    "relu".into()
}
fn yes() -> bool {
    true
}

impl OptConfig {
    /// Every size and feature, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        let d = in_range("hidden_size", self.hidden_size, 1, MAX_WIDTH)?;
        if let Some(p) = self.word_embed_proj_dim {
            in_range("word_embed_proj_dim", p, 1, MAX_WIDTH)?;
        }
        if !self.layer_norm_elementwise_affine {
            return Err("layer_norm_elementwise_affine = false is not supported".into());
        }
        in_range("vocab_size", self.vocab_size, 1, MAX_VOCAB)?;
        in_range("num_hidden_layers", self.num_hidden_layers, 1, MAX_LAYERS)?;
        let h = in_range(
            "num_attention_heads",
            self.num_attention_heads,
            1,
            MAX_HEADS,
        )?;
        in_range("ffn_dim", self.ffn_dim, 1, MAX_FF)?;
        in_range(
            "max_position_embeddings",
            self.max_position_embeddings,
            1,
            MAX_POSITIONS,
        )?;
        heads_divide(("hidden_size", d), ("num_attention_heads", h))?;
        self.gpt2_config().check()
    }

    /// The token embeddings' width where it differs from the blocks' (projected in and out).
    fn projected(&self) -> Option<usize> {
        self.word_embed_proj_dim.filter(|&p| p != self.hidden_size)
    }

    /// Whether the decoder ends in a LayerNorm (as transformers' `OPTDecoder` decides).
    fn final_norm(&self) -> bool {
        self.do_layer_norm_before && !self.remove_final_layer_norm
    }

    /// The same model as [`Gpt2`] reads its sizes (OPT's LayerNorms have PyTorch's ε).
    fn gpt2_config(&self) -> Gpt2Config {
        Gpt2Config {
            vocab_size: self.vocab_size,
            n_positions: self.max_position_embeddings,
            n_embd: self.hidden_size,
            n_layer: self.num_hidden_layers,
            n_head: self.num_attention_heads,
            n_inner: Some(self.ffn_dim),
            layer_norm_epsilon: 1e-5,
            activation_function: self.activation_function.clone(),
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: self.tie_word_embeddings,
        }
    }

    /// Every tensor the forward pass reads (names without the `model.decoder.` prefix), with
    /// the shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.ffn_dim, self.vocab_size);
        let bias = self.enable_bias;
        let table = self.max_position_embeddings + POSITION_OFFSET;
        let e = self.projected().unwrap_or(d);
        let mut want = vec![
            ("embed_tokens.weight".to_string(), vec![v, e]),
            ("embed_positions.weight".to_string(), vec![table, d]),
        ];
        if self.final_norm() {
            want.push(("final_layer_norm.weight".to_string(), vec![d]));
            want.push(("final_layer_norm.bias".to_string(), vec![d]));
        }
        if let Some(p) = self.projected() {
            want.push(("project_in.weight".to_string(), vec![d, p]));
            want.push(("project_out.weight".to_string(), vec![p, d]));
        }
        if !self.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, e]));
        }
        for l in 0..self.num_hidden_layers {
            let mut layer = Vec::with_capacity(16);
            for (name, out, inp) in [
                ("self_attn.q_proj", d, d),
                ("self_attn.k_proj", d, d),
                ("self_attn.v_proj", d, d),
                ("self_attn.out_proj", d, d),
                ("fc1", f, d),
                ("fc2", d, f),
            ] {
                layer.push((format!("{name}.weight"), vec![out, inp]));
                if bias {
                    layer.push((format!("{name}.bias"), vec![out]));
                }
            }
            for norm in ["self_attn_layer_norm", "final_layer_norm"] {
                layer.push((format!("{norm}.weight"), vec![d]));
                layer.push((format!("{norm}.bias"), vec![d]));
            }
            want.extend(
                layer
                    .into_iter()
                    .map(|(n, s)| (format!("layers.{l}.{n}"), s)),
            );
        }
        want
    }
}

/// A tensor name without the `model.decoder.` prefix of `OPTForCausalLM` exports (or the
/// `decoder.` of `OPTModel`'s).
fn unprefixed(name: &str) -> &str {
    let name = name.strip_prefix("model.").unwrap_or(name);
    name.strip_prefix("decoder.").unwrap_or(name)
}

impl Gpt2 {
    /// Open the folder `dir` of an OPT model. The config is checked against the limits and the
    /// safetensors header before any weight is read; every weight is checked finite.
    pub fn open_opt(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let opt: OptConfig = folder::read_config(&cfg_path, "OPT")?;
        opt.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = opt.gpt2_config();
        let want = opt.expected_shapes();
        let bias = opt.enable_bias;
        let names = CoreNames {
            embed: "embed_tokens.weight",
            norm: (opt.final_norm())
                .then_some(("final_layer_norm.weight", Some("final_layer_norm.bias"))),
            head: "lm_head.weight",
        };
        let mut read = load_core(
            dir,
            device,
            (&config, &want, unprefixed),
            names,
            |t, l, f| read_opt_block(t, l, f, bias),
        )?;
        let table = read.take("embed_positions.weight")?;
        let wpe = table
            .narrow(0, POSITION_OFFSET, config.n_positions)
            .and_then(|t| t.contiguous())
            .with_context(|| format!("{}: embed_positions", dir.display()))?;
        let project = match opt.projected() {
            Some(_) => Some(EmbedProjection {
                input: read.take("project_in.weight")?.t()?.contiguous()?,
                output: read.take("project_out.weight")?.t()?.contiguous()?,
            }),
            None => None,
        };
        let variant = Variant::learned(Family::Opt, wpe);
        let mut model = Self::assemble(config, dir, read.tokenizer, read.core, variant)?;
        model.post_norm = !opt.do_layer_norm_before;
        model.project = project;
        Ok(model)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side
/// in `c_attn`; zero biases where the config has none (`bias` false).
fn read_opt_block(
    t: &mut HashMap<String, Tensor>,
    l: usize,
    file: &Path,
    bias: bool,
) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("layers.{l}.{name}"), file);
    let mut linear = |name: &str| -> Result<Affine> {
        let (w, b) = super::linear(&mut take, name, bias)?;
        Ok((w.t()?.contiguous()?, b))
    };
    let (q, k, v) = (
        linear("self_attn.q_proj")?,
        linear("self_attn.k_proj")?,
        linear("self_attn.v_proj")?,
    );
    let c_attn = (
        Tensor::cat(&[q.0, k.0, v.0], 1)?,
        Tensor::cat(&[q.1, k.1, v.1], 0)?,
    );
    let c_proj = linear("self_attn.out_proj")?;
    let (c_fc, mlp_proj) = (linear("fc1")?, linear("fc2")?);
    let mut norm = |name: &str| -> Result<Affine> {
        Ok((
            take(&format!("{name}.weight"))?,
            take(&format!("{name}.bias"))?,
        ))
    };
    Ok(Block {
        ln_1: norm("self_attn_layer_norm")?,
        c_attn,
        c_proj,
        ln_2: norm("final_layer_norm")?,
        c_fc,
        mlp_proj,
    })
}
