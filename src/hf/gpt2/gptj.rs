//! GPT-J decoders (`model_type` `gptj`: EleutherAI's GPT-J-6B and the models built on it,
//! GPT4All-J, Pygmalion-6B, CodeGen-style finetunes saved as GPT-J) from a Hugging Face folder.
//! Phi's parallel block (one LayerNorm read by attention and the MLP side by side) with q, k
//! and v apart and without biases, an output projection without a bias, RoPE on the first
//! `rotary_dim` dimensions of each head with pairs interleaved (transformers'
//! `rotate_every_two`, not NeoX's halves), a tanh-GELU MLP (`fc_in`, `fc_out`) and an untied
//! head with a bias.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::{load_core, unprefixed, Block, Gpt2, Gpt2Config, Rotary, Variant};
use crate::hf::limits::{heads_divide, in_range};

/// The fields of a GPT-J `config.json` beyond GPT-2's.
#[derive(Clone, Debug, Deserialize)]
pub struct GptjConfig {
    /// The sizes, named as GPT-2 names them (`n_embd`, `n_head`, `n_layer`, `n_positions`,
    /// `n_inner`, `activation_function`, `layer_norm_epsilon`, `tie_word_embeddings`).
    #[serde(flatten)]
    pub sizes: Gpt2Config,
    /// Dimensions of each head RoPE turns (all of them when absent).
    #[serde(default)]
    pub rotary_dim: Option<usize>,
}

impl GptjConfig {
    /// Every size, or the first problem in a sentence.
    pub fn check(&self) -> Result<(), String> {
        let s = &self.sizes;
        self.sizes.check()?;
        heads_divide(("n_embd", s.n_embd), ("n_head", s.n_head))?;
        let head = s.n_embd / s.n_head.max(1);
        let dims = in_range("rotary_dim", self.dims(), 2, head)?;
        if dims % 2 == 1 {
            return Err(format!("rotary_dim = {dims} must be even"));
        }
        Ok(())
    }

    /// Dimensions RoPE turns.
    fn dims(&self) -> usize {
        let s = &self.sizes;
        self.rotary_dim.unwrap_or(s.n_embd / s.n_head.max(1))
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with the
    /// shape this config implies.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let s = &self.sizes;
        let (d, f, v) = (s.n_embd, s.ff(), s.vocab_size);
        let mut want = vec![
            ("wte.weight".to_string(), vec![v, d]),
            ("ln_f.weight".to_string(), vec![d]),
            ("ln_f.bias".to_string(), vec![d]),
            ("lm_head.bias".to_string(), vec![v]),
        ];
        if !s.tie_word_embeddings {
            want.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        for l in 0..s.n_layer {
            for (name, shape) in [
                ("ln_1.weight", vec![d]),
                ("ln_1.bias", vec![d]),
                ("attn.q_proj.weight", vec![d, d]),
                ("attn.k_proj.weight", vec![d, d]),
                ("attn.v_proj.weight", vec![d, d]),
                ("attn.out_proj.weight", vec![d, d]),
                ("mlp.fc_in.weight", vec![f, d]),
                ("mlp.fc_in.bias", vec![f]),
                ("mlp.fc_out.weight", vec![d, f]),
                ("mlp.fc_out.bias", vec![d]),
            ] {
                want.push((format!("h.{l}.{name}"), shape));
            }
        }
        want
    }
}

impl Gpt2 {
    /// Open the folder `dir` of a GPT-J model. The config is checked against the limits and
    /// the safetensors header before any weight is read; every weight is checked finite.
    pub fn open_gptj(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let gptj: GptjConfig = folder::read_config(&cfg_path, "GPT-J")?;
        gptj.check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let config = gptj.sizes.clone();
        let want = gptj.expected_shapes();
        let names = ["wte.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"];
        let spec = (&config, want.as_slice(), unprefixed as fn(&str) -> &str);
        let mut read = load_core(dir, device, spec, names, read_gptj_block)?;
        let variant = Variant {
            family: Family::GptJ,
            wpe: None,
            rotary: Some(Rotary::interleaved(gptj.dims(), 10_000.0)),
            parallel: true,
            head_bias: Some(read.take("lm_head.bias")?),
            alibi: None,
            embed_norm: None,
        };
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]): q, k and v side by side
/// in `c_attn` with zero biases; the one LayerNorm both attention and the MLP read.
fn read_gptj_block(t: &mut HashMap<String, Tensor>, l: usize, file: &Path) -> Result<Block> {
    let mut take = |name: &str| folder::take(t, &format!("h.{l}.{name}"), file);
    let conv = |w: Tensor| -> Result<Tensor> { Ok(w.t()?.contiguous()?) };
    let ws = ["q_proj", "k_proj", "v_proj"]
        .iter()
        .map(|p| conv(take(&format!("attn.{p}.weight"))?))
        .collect::<Result<Vec<_>>>()?;
    let out = conv(take("attn.out_proj.weight")?)?;
    let d = out.dim(0)?;
    let zeros = |n: usize| Tensor::zeros(n, DType::F32, out.device());
    let (qkv_bias, out_bias) = (zeros(3 * d)?, zeros(d)?);
    let norm = (take("ln_1.weight")?, take("ln_1.bias")?);
    Ok(Block {
        ln_1: norm.clone(),
        c_attn: (Tensor::cat(&ws, 1)?, qkv_bias),
        c_proj: (out, out_bias),
        ln_2: norm,
        c_fc: (conv(take("mlp.fc_in.weight")?)?, take("mlp.fc_in.bias")?),
        mlp_proj: (conv(take("mlp.fc_out.weight")?)?, take("mlp.fc_out.bias")?),
    })
}
