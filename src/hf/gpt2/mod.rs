//! GPT-2 decoders from a Hugging Face folder: `config.json` (model_type gpt2),
//! `model.safetensors` (names with or without the `transformer.` prefix) and the tokenizer as
//! `save_pretrained` writes a `GPT2TokenizerFast`: `tokenizer.json`, or `vocab.json` +
//! `merges.txt` alone ([`tokenizer`]). The forward pass is ours, in candle (`forward.rs`):
//! learned positions, pre-LayerNorm blocks, one fused q/k/v projection, the dial's and rules'
//! biases through [`biased_attention`](crate::model::attention::biased_attention), a GELU MLP,
//! the output head tied to the token embedding (or not, as the config says); with a KV cache
//! and a streamed forward over chunks of query rows, like the LLaMA decoders. The families on
//! the same block each read their folders in a module of their own: GPT-NeoX ([`neox`]),
//! GPT-Neo ([`neo`]), Phi ([`phi`]), OPT ([`opt`]), BLOOM ([`bloom`]), GPT-BigCode
//! ([`bigcode`]), Falcon ([`falcon`]), MPT ([`mpt`]), GPT-J ([`gptj`]) and StarCoder2
//! ([`starcoder2`]); their GGUF files
//! in [`gguf`].

mod alibi;
pub mod bigcode;
pub mod bloom;
mod config;
pub mod falcon;
mod forward;
pub mod gguf;
pub mod gptj;
mod load;
pub mod mpt;
mod native;
pub mod neo;
pub mod neox;
pub mod opt;
pub mod phi;
mod qkv;
mod rotary;
pub mod starcoder2;
pub mod tokenizer;
mod train_forward;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{Device, Tensor};

pub use config::Gpt2Config;

use alibi::Alibi;
use load::{linear, load_core, load_core_copying, model_unprefixed, CoreNames};
use rotary::Rotary;

use crate::hf::family::Family;
use crate::hf::folder;
use crate::model::attention::AttentionBias;
use crate::model::backend::{AttentionModel, KvCache, ModelDims, RowStream};
use crate::model::transformer::{ForwardOutput, ModelError};

/// A weight and a bias.
type Affine = (Tensor, Tensor);

/// One block's weights (projections as `Conv1D`, [in, out]).
struct Block {
    ln_1: Affine,
    c_attn: Affine,
    c_proj: Affine,
    ln_2: Affine,
    c_fc: Affine,
    mlp_proj: Affine,
}

/// What a family built on GPT-2's block changes, beside its weights' names.
struct Variant {
    /// Which family.
    family: Family,
    /// Learned positions, or none where `rotary` gives them.
    wpe: Option<Tensor>,
    /// RoPE on part of each head.
    rotary: Option<Rotary>,
    /// Attention and MLP both read the block's input.
    parallel: bool,
    /// A bias on the output head (Phi's).
    head_bias: Option<Tensor>,
    /// ALiBi for positions (BLOOM's, Falcon-RW's): each score gains slope · key position.
    alibi: Option<Alibi>,
    /// A LayerNorm of the embeddings (BLOOM's `word_embeddings_layernorm`).
    embed_norm: Option<Affine>,
}

impl Variant {
    /// GPT-2's own block with learned positions `wpe` (GPT-2, GPT-Neo, OPT, GPT-BigCode).
    fn learned(family: Family, wpe: Tensor) -> Self {
        Self {
            family,
            wpe: Some(wpe),
            rotary: None,
            parallel: false,
            head_bias: None,
            alibi: None,
            embed_norm: None,
        }
    }
}

/// The weights every family built on GPT-2's block has.
struct Core {
    /// The token embedding [V, d].
    wte: Tensor,
    /// The final LayerNorm (none where each sub-layer's output is normed: OPT-350m's).
    ln_f: Option<Affine>,
    /// The output head [V, d] (`wte` when tied).
    head: Tensor,
    /// The blocks, as GPT-2's.
    blocks: Vec<Block>,
    /// Number of weights read.
    parameters: usize,
}

/// A GPT-2 decoder (or GPT-NeoX: [`neox`]) with its tokenizer.
pub struct Gpt2 {
    /// Its configuration (a GPT-NeoX config as GPT-2 names its sizes).
    pub config: Gpt2Config,
    /// [`Family::Gpt2`], [`Family::GptNeo`] or [`Family::GptNeox`].
    pub family: Family,
    /// The folder it came from (the file, for one read from a `.gguf`: [`gguf`]).
    pub dir: PathBuf,
    /// Number of weights.
    pub parameters: usize,
    wte: Tensor,
    /// Learned positions (GPT-2), or none where `rotary` gives them (GPT-NeoX).
    wpe: Option<Tensor>,
    rotary: Option<Rotary>,
    /// Attention and MLP both read the block's input (GPT-NeoX's and Phi's parallel residual).
    parallel: bool,
    /// A bias on the output head [V] (Phi's).
    head_bias: Option<Tensor>,
    /// ALiBi for positions (BLOOM's, Falcon-RW's).
    alibi: Option<Alibi>,
    /// A LayerNorm of the embeddings (BLOOM's).
    embed_norm: Option<Affine>,
    /// LayerNorm after each sub-layer's residual sum instead of before it (OPT-350m's): the
    /// block's `ln_1` follows attention and its `ln_2` the MLP.
    post_norm: bool,
    /// Token embeddings narrower than the blocks, projected in before the positions are added
    /// and out before the head (OPT-350m's `word_embed_proj_dim`).
    project: Option<EmbedProjection>,
    /// The final LayerNorm, where the model has one.
    ln_f: Option<Affine>,
    /// The output head [V, d] (the token embedding itself when tied), for training.
    head: Tensor,
    /// The output head as [d, V] (the transposed token embedding when tied).
    head_t: Tensor,
    blocks: Vec<Block>,
    tokenizer: tokenizers::Tokenizer,
    /// Where the tensors live.
    pub device: Device,
    /// The weights in the native view pass's layout, made on the first view ([`native`]); None
    /// inside where that pass does not apply.
    native: std::sync::OnceLock<Option<Box<native::NativeCopy>>>,
}

/// The projections between narrower token embeddings [V, p] and the blocks' width d, as
/// `Conv1D`s without biases.
struct EmbedProjection {
    /// [p, d]: an embedding into the first block.
    input: Tensor,
    /// [d, p]: the last block's output to what the head reads.
    output: Tensor,
}

/// A tensor name without the `transformer.` prefix of `GPT2LMHeadModel` exports.
fn unprefixed(name: &str) -> &str {
    name.strip_prefix("transformer.").unwrap_or(name)
}

impl Gpt2 {
    /// Open the folder `dir` of a GPT-2 model. The config is checked against the limits and
    /// the safetensors header before any weight is read; every weight is checked finite.
    pub fn open(dir: &Path, device: &Device) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let config: Gpt2Config = folder::read_config(&cfg_path, "GPT-2")?;
        config
            .check()
            .map_err(|e| anyhow::anyhow!("{}: {e}", cfg_path.display()))?;
        let want = config.expected_shapes();
        let names = ["wte.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight"];
        let mut read = load_core(dir, device, (&config, &want, unprefixed), names, read_block)?;
        let variant = Variant::learned(Family::Gpt2, read.take("wpe.weight")?);
        Self::assemble(config, dir, read.tokenizer, read.core, variant)
    }

    /// The decoder of `config` from `dir`, its weights and what its family changes.
    fn assemble(
        config: Gpt2Config,
        dir: &Path,
        tokenizer: tokenizers::Tokenizer,
        core: Core,
        variant: Variant,
    ) -> Result<Self> {
        Ok(Self {
            config,
            family: variant.family,
            dir: dir.to_path_buf(),
            parameters: core.parameters,
            device: core.wte.device().clone(),
            wte: core.wte,
            wpe: variant.wpe,
            rotary: variant.rotary,
            parallel: variant.parallel,
            head_bias: variant.head_bias,
            alibi: variant.alibi,
            embed_norm: variant.embed_norm,
            post_norm: false,
            project: None,
            ln_f: core.ln_f,
            head_t: core.head.t()?.contiguous()?,
            head: core.head,
            blocks: core.blocks,
            tokenizer,
            native: std::sync::OnceLock::new(),
        })
    }

    /// Its family's name in a sentence ("GPT-2", "GPT-NeoX"): its folder label's first words.
    pub fn family_name(&self) -> &'static str {
        let label = self.family.folder_label();
        label.split(" decoder").next().unwrap_or(label)
    }

    /// Its tokenizer.
    pub fn hf_tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }

    /// Token ids of `text`, as `transformers` gives them.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        crate::hf::encode_ids(&self.tokenizer, text, true)
    }

    /// The token-embedding rows, one per vocabulary id.
    pub fn embedding_rows(&self) -> Result<Vec<Vec<f32>>> {
        Ok(self.wte.to_vec2::<f32>()?)
    }
}

/// A tensor's name and the shape its config implies.
type Shape = (String, Vec<usize>);

/// Block `l`'s weights out of `t` (checked present and shaped by the header check).
fn read_block(t: &mut HashMap<String, Tensor>, l: usize, file: &Path) -> Result<Block> {
    let mut pair = |name: &str| -> Result<Affine> {
        let w = folder::take(t, &format!("h.{l}.{name}.weight"), file);
        let b = folder::take(t, &format!("h.{l}.{name}.bias"), file);
        Ok((w?, b?))
    };
    Ok(Block {
        ln_1: pair("ln_1")?,
        c_attn: pair("attn.c_attn")?,
        c_proj: pair("attn.c_proj")?,
        ln_2: pair("ln_2")?,
        c_fc: pair("mlp.c_fc")?,
        mlp_proj: pair("mlp.c_proj")?,
    })
}

impl AttentionModel for Gpt2 {
    fn dims(&self) -> ModelDims {
        let c = &self.config;
        ModelDims {
            layers: c.n_layer,
            heads: c.n_head,
            max_len: c.n_positions,
            vocab: c.vocab_size,
            causal: true,
            has_logits: true,
        }
    }

    fn device(&self) -> &Device {
        &self.device
    }

    fn forward_biased(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        match self.forward_native(ids, biases, (keep_scores, true)) {
            Some(out) => out,
            None => self.forward_cached(ids, biases, keep_scores, &mut KvCache::default(), true),
        }
    }

    fn forward_attention(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        keep_scores: bool,
    ) -> Result<ForwardOutput, ModelError> {
        match self.forward_native(ids, biases, (keep_scores, false)) {
            Some(out) => out,
            None => self.forward_cached(ids, biases, keep_scores, &mut KvCache::default(), false),
        }
    }

    fn streams(&self) -> bool {
        true
    }

    fn forward_streamed(
        &self,
        ids: &[u32],
        chunk_rows: usize,
        stream: &mut dyn RowStream,
    ) -> Result<(), ModelError> {
        self.forward_rows(ids, chunk_rows, stream)
    }

    fn step_cached(
        &self,
        ids: &[u32],
        biases: &[AttentionBias],
        cache: &mut KvCache,
    ) -> Option<Result<Tensor, ModelError>> {
        Some(
            self.forward_cached(ids, biases, false, cache, true)
                .map(|out| out.logits),
        )
    }
}
