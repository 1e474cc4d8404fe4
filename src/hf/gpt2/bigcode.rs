//! GPT-BigCode decoders (`model_type` `gpt_bigcode`: BigCode's SantaCoder, StarCoderBase-1b to
//! 15b, tiny_starcoder, WizardCoder's small models) from a Hugging Face folder. The block is
//! GPT-2's — learned positions, pre-LayerNorm, a tanh-GELU MLP, a tied head, the same
//! `config.json` keys — with its projections as `Linear`s ([out, in]) and, with `multi_query`
//! (every released checkpoint), one key and one value head shared by all query heads. At load
//! the shared key and value are repeated for each query head and the projections transposed,
//! so the model runs as GPT-2 does: every pass (the native view, streamed captures, the KV
//! cache, fine-tuning) without a path of its own. Each head's attention is the model's; the
//! copy costs 2·d·(d − d_h) weights a layer more memory than the file (StarCoderBase-1b: about
//! 0.8 GB in f32). Without `multi_query`, `c_attn`'s rows are each head's q, k, v in turn
//! (transformers splits them per head, not GPT-2's three blocks) and are reordered at load.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use candle_core::{Device, Tensor};
use serde::Deserialize;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::hf::gpt2::qkv::gpt2_order;
use crate::hf::gpt2::{load_core_copying, unprefixed, Affine, Block, Gpt2, Gpt2Config, Variant};

/// A GPT-BigCode `config.json`: GPT-2's keys and whether the key and value are shared.
#[derive(Clone, Debug, Deserialize)]
pub struct BigCodeConfig {
    /// The sizes and settings GPT-2's block reads.
    #[serde(flatten)]
    pub gpt2: Gpt2Config,
    /// One key and one value head for all query heads (transformers' default).
    #[serde(default = "yes")]
    pub multi_query: bool,
}

fn yes() -> bool {
    true
}

impl BigCodeConfig {
    /// The rows of `c_attn` the key (and the value) takes: one head's, or every head's.
    fn kv_width(&self) -> usize {
        let c = &self.gpt2;
        match self.multi_query {
            true => c.n_embd / c.n_head.max(1),
            false => c.n_embd,
        }
    }

    /// Every tensor the forward pass reads (names without the `transformer.` prefix), with
    /// the shape this config implies: GPT-2's, each projection [out, in], `c_attn` q, k, v.
    fn expected_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let d = self.gpt2.n_embd;
        let rows = d + 2 * self.kv_width();
        let linear = |n: &str, s: Vec<usize>| match s.as_slice() {
            _ if n.ends_with("c_attn.weight") => vec![rows, d],
            _ if n.ends_with("c_attn.bias") => vec![rows],
            &[i, o] if n.starts_with("h.") => vec![o, i],
            _ => s,
        };
        (self.gpt2.expected_shapes().into_iter())
            .map(|(n, s)| {
                let s = linear(&n, s);
                (n, s)
            })
            .collect()
    }
}

impl Gpt2 {
    /// Open the folder `dir` of a GPT-BigCode model. The config is checked against the limits
    /// and the safetensors header before any weight is read; every weight is checked finite.
    pub fn open_bigcode(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let big: BigCodeConfig = folder::read_config(&cfg_path, "GPT-BigCode")?;
        big.gpt2
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let want = big.expected_shapes();
        let names = ["wte.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"];
        let (d, h, kv) = (big.gpt2.n_embd, big.gpt2.n_head, big.kv_width());
        // The shared key and value repeated for each head: this many weights more than the
        // file holds, counted in the memory check.
        let copies = 2 * (d - kv) * (d + 1) * big.gpt2.n_layer;
        let groups = big.multi_query.then_some(1);
        let mut read = load_core_copying(
            dir,
            device,
            (&big.gpt2, &want, unprefixed),
            (names, copies as u64),
            |t, l, f| read_bigcode_block(t, l, f, ((d, h), groups)),
        )?;
        let variant = Variant::learned(Family::GptBigCode, read.take("wpe.weight")?);
        Self::assemble(big.gpt2, dir, read.tokenizer, read.core, variant)
    }
}

/// Layer `l`'s weights out of `t` as GPT-2's `Conv1D`s ([in, out]).
fn read_bigcode_block(
    t: &mut HashMap<String, Tensor>,
    l: usize,
    file: &Path,
    shape: ((usize, usize), Option<usize>),
) -> Result<Block> {
    let mut pair = |name: &str| -> Result<Affine> {
        let w = folder::take(t, &format!("h.{l}.{name}.weight"), file);
        let b = folder::take(t, &format!("h.{l}.{name}.bias"), file);
        Ok((w?, b?))
    };
    let linear = |(w, b): Affine| -> Result<Affine> { Ok((w.t()?.contiguous()?, b)) };
    let (w, b) = pair("attn.c_attn")?;
    let order = |x: &Tensor| gpt2_order(x, shape.0, shape.1);
    let c_attn = linear((order(&w)?, order(&b)?))?;
    Ok(Block {
        ln_1: pair("ln_1")?,
        c_attn,
        c_proj: linear(pair("attn.c_proj")?)?,
        ln_2: pair("ln_2")?,
        c_fc: linear(pair("mlp.c_fc")?)?,
        mlp_proj: linear(pair("mlp.c_proj")?)?,
    })
}
