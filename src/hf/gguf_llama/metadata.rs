//! What a GGUF file says besides its tensors: the hyper-parameters of a LLaMA-family model
//! ([`LlamaConfig`]); its tokenizer is in [`super::gguf_tokenizer`]. Every error names the file
//! and the metadata key.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;

use crate::hf::limits::MAX_LAYERS;

pub(crate) use super::meta_read::{meta, meta_f64, meta_usize, optional, wrong_type};
use super::rope_meta::{attn_factor, check_rope, clamp_kqv, linear_stretch};

/// Hyper-parameters read from the GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Layers.
    pub layers: usize,
    /// Width d.
    pub d_model: usize,
    /// Query heads.
    pub heads: usize,
    /// Width of a head d_h: d / heads in GGUF files; a Hugging Face config may name another
    /// (Qwen3: 128 over a width of 1,024 and 16 heads), and the query projection is then
    /// [heads·d_h, d] and the output projection [d, heads·d_h].
    pub head_dim: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// MLP width.
    pub ff: usize,
    /// Vocabulary.
    pub vocab: usize,
    /// RMSNorm ε.
    pub rms_eps: f64,
    /// RoPE base.
    pub rope_base: f64,
    /// Context length.
    pub context: usize,
    /// RoPE in Hugging Face's half-rotation layout (dimension i pairs with i + d_h/2), as in
    /// safetensors folders and Qwen2 GGUF files; false for llama.cpp's interleaved one (2i
    /// with 2i+1), as in LLaMA GGUF files (whose converter permuted q and k for it).
    pub rope_half: bool,
    /// The architecture: `llama`, `qwen2`, `qwen3` or `phi3` (a GGUF file's metadata keys begin
    /// with it; Qwen2 has biases on q, k and v, Qwen3 an RMSNorm over each head's queries and
    /// keys, Phi-3 fused q/k/v and gate/up matrices).
    pub arch: &'static str,
    /// Per-frequency RoPE factors [d_h/2] (a GGUF file's `rope_freqs.weight`, as llama.cpp's
    /// converter writes LLaMA-3.1's and 3.2's "llama3" scaling): frequency i is divided by
    /// factor i. `None`: the plain frequencies.
    pub rope_factors: Option<Vec<f32>>,
    /// LongRoPE's long factors [d_h/2] and the original context past which a text turns every
    /// position by them instead of `rope_factors` (transformers' rule, by the text's length;
    /// llama.cpp's with its context set to the text's).
    pub rope_long: Option<(Vec<f32>, usize)>,
    /// The dimensions of a head RoPE turns (d_h but for Phi-3's partial rotation, whose q and
    /// k rows are reordered at load so that the turned ones pair as in a full rotation: the
    /// frequencies past `rope_dims`/2 are 0, turning nothing).
    pub rope_dims: usize,
    /// The factor on RoPE's cos and sin (YaRN's and LongRoPE's attention factor; 1 for most
    /// models): scores scale by its square.
    pub rope_scale: f64,
    /// LayerNorms in place of RMSNorms (StableLM, OLMo 1): the pre-norms and the final norm
    /// subtract the mean and add a bias; `rms_eps` is their ε. The native passes leave these
    /// models to candle's.
    pub layer_norm: bool,
    /// Whether the layers have biases on q, k and v (Qwen2's, StableLM 2's).
    pub qkv_biased: bool,
    /// OLMo's clip of q, k and v to ±this (None: none). The native passes leave such models to
    /// candle's.
    pub clip_qkv: Option<f64>,
    /// The layers that turn no RoPE at all (SmolLM3's "NoPE" layers, every fourth); None: all
    /// turn.
    pub no_rope: Option<Vec<bool>>,
    /// OLMo 3's sliding-window layers (per layer) and the base of the plain rotation they turn
    /// by, where the other layers' is scaled (YaRN) or at another base; None elsewhere.
    pub sliding_rope: Option<(Vec<bool>, f64)>,
    /// Gemma's differences from LLaMA ([`super::gemma`]); None for every other family.
    pub gemma: Option<GemmaSettings>,
    /// Granite's four multipliers (applied with Gemma's differences); None for every other
    /// family.
    pub granite: Option<GraniteScales>,
}

/// IBM Granite's differences from LLaMA: four multipliers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GraniteScales {
    /// The embeddings' factor (`embedding_multiplier`).
    pub embedding: f64,
    /// The scores' scale in place of 1/√d_h (`attention_multiplier`).
    pub attention: f64,
    /// The factor of each sub-layer's output as it joins the residual stream.
    pub residual: f64,
    /// The logits' divisor (`logits_scaling`).
    pub logits: f64,
}

/// Gemma's differences from LLaMA, applied by [`super::gemma`].
#[derive(Clone, Debug, PartialEq)]
pub struct GemmaSettings {
    /// What the embeddings are multiplied by: √d.
    pub embed_scale: f64,
    /// What the scores q·k are multiplied by: `query_pre_attn_scalar`^-½.
    pub score_scale: f64,
    /// Gemma 2's cap on the scores (50), before the mask and the dial.
    pub attn_softcap: Option<f64>,
    /// Gemma 2's cap on the logits (30).
    pub final_softcap: Option<f64>,
    /// The MLP's GELU is the exact (erf) one, not the tanh approximation Gemma uses.
    pub exact_gelu: bool,
    /// Per layer: whether it attends within a sliding window (its window is the context).
    pub sliding: Vec<bool>,
    /// Gemma 3: the RoPE base of the sliding layers (the global ones use `rope_base`).
    pub local_rope_base: Option<f64>,
}

impl LlamaConfig {
    /// The hyper-parameters of a `llama` or `qwen2` model in `c` (read from `file`); `vocab`
    /// is left 0 for the caller to take from the embedding. Another architecture is an error.
    pub fn from_gguf(c: &gguf_file::Content, file: &Path) -> Result<Self> {
        let arch = architecture(c, file)?;
        let key = |k: &str| format!("{arch}.{k}");
        let heads = meta_usize(c, &key("attention.head_count"), file)?;
        let d_model = meta_usize(c, &key("embedding_length"), file)?;
        // Optional keys take their default only when absent: present with a value this model
        // cannot honour, they are refused, not read as the default.
        let kv_heads = optional(c, &key("attention.head_count_kv"), file, meta_usize)?;
        let rope_base = optional(c, &key("rope.freq_base"), file, meta_f64)?;
        let head_dim = head_width(c, file, arch, (d_model, heads))?;
        // A head count that does not divide the width is named by `checks` (its head width
        // here would be a made-up number, and the RoPE check would blame RoPE).
        let rope_dims = match head_dim {
            0 => 0,
            _ => check_rope(c, file, arch, head_dim)?,
        };
        let layers = meta_usize(c, &key("block_count"), file)?;
        let layer_norm = matches!(arch, "stablelm" | "olmo");
        let mut config = Self {
            layers,
            d_model,
            heads,
            head_dim,
            kv_heads: kv_heads.unwrap_or(heads),
            ff: meta_usize(c, &key("feed_forward_length"), file)?,
            vocab: 0,
            // StableLM's and OLMo 1's LayerNorms name their ε without "rms".
            rms_eps: match layer_norm {
                true => meta_f64(c, &key("attention.layer_norm_epsilon"), file)?,
                false => meta_f64(c, &key("attention.layer_norm_rms_epsilon"), file)?,
            },
            rope_base: rope_base.unwrap_or(10_000.0),
            context: context(c, file, arch)?,
            // llama.cpp rotates Qwen2's, Qwen3's, Phi-3's and StableLM's halves (its "NEOX"
            // RoPE), as Hugging Face does, and its converter writes their q and k unpermuted;
            // LLaMA's, SmolLM3's, Granite's and OLMo 1's it permutes for its interleaved pairs.
            rope_half: !matches!(arch, "llama" | "smollm3" | "granite" | "olmo"),
            arch,
            // A linear stretch divides every frequency (the factor tensors of LLaMA-3 and
            // LongRoPE files are read with the weights and multiply these).
            rope_factors: linear_stretch(c, file, arch)?.map(|f| vec![f as f32; head_dim / 2]),
            rope_long: None,
            rope_dims,
            rope_scale: attn_factor(c, file, arch)?,
            layer_norm,
            // Qwen2's always; StableLM 2's (not StableLM-3B-4E1T's) where the file has them.
            clip_qkv: clamp_kqv(c, file, arch)?,
            qkv_biased: arch == "qwen2"
                || (arch == "stablelm" && c.tensor_infos.contains_key("blk.0.attn_q.bias")),
            no_rope: None,
            sliding_rope: None,
            gemma: None,
            granite: None,
        };
        // What is sized by the layer count (here SmolLM3's list, Gemma's windows after) waits
        // for it to be within the limit: `block_count = u32::MAX` is refused as the checks
        // refuse it, not allocated.
        crate::hf::limits::in_range(&key("block_count"), layers, 1, MAX_LAYERS)
            .map_err(|p| anyhow::anyhow!("{}: metadata {p}", file.display()))?;
        // SmolLM3: llama.cpp turns no RoPE in every fourth layer (its step is fixed at 4; the
        // converter writes no key for it).
        if arch == "smollm3" {
            config.no_rope = Some((0..layers).map(|i| (i + 1) % 4 == 0).collect());
        }
        Ok(config)
    }

    /// Whether the layers have biases on q, k and v (Qwen2, StableLM 2).
    pub fn qkv_bias(&self) -> bool {
        self.qkv_biased
    }

    /// Whether q, k and v are one matrix (`attn_qkv`) and the MLP's gate and up one
    /// (`ffn_up`, gate first), as Phi-3 files have them.
    pub fn fused(&self) -> bool {
        self.arch == "phi3"
    }

    /// Whether each head's queries and keys go through an RMSNorm of their own before RoPE
    /// (Qwen3's `q_norm` and `k_norm`).
    pub fn qk_norm(&self) -> bool {
        matches!(self.arch, "qwen3" | "gemma3" | "olmo2")
    }

    /// Whether each layer norms attention's and the MLP's outputs before they join the
    /// residual stream (Gemma 2's and 3's `post_attention_norm`, `post_ffw_norm`).
    pub fn post_norms(&self) -> bool {
        matches!(self.arch, "gemma2" | "gemma3" | "olmo2")
    }

    /// Whether attention and the MLP read the residual stream through a norm (every family
    /// but OLMo 2, which norms only their outputs).
    pub fn pre_norms(&self) -> bool {
        self.arch != "olmo2"
    }

    /// Whether the native f32 view and streamed passes run this model: every LLaMA-family one,
    /// Gemma, OLMo 1 and 2 and StableLM among them; not a Gemma with the exact GELU, which
    /// candle's passes run.
    pub fn native_view(&self) -> bool {
        self.gemma.as_ref().is_none_or(|g| !g.exact_gelu)
    }

    /// The width of all heads' queries together, heads·d_h (d unless the config names
    /// another head width).
    pub fn q_width(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// The `general.architecture` of the GGUF file `path` (its metadata `c`), to choose
/// the forward that runs it: those of [`crate::hf::gpt2::gguf::ARCHES`] run on GPT-2's block
/// as their folders do, every other by [`super::GgufLlama`], which refuses those it does not know.
pub fn architecture_of(c: &gguf_file::Content, path: &Path) -> Result<String> {
    const KEY: &str = "general.architecture";
    (meta(c, KEY, path)?.to_string())
        .cloned()
        .map_err(|e| wrong_type(path, KEY, "a string", &e))
}

/// `general.architecture`: the LLaMA-family ones this forward runs.
fn architecture(c: &gguf_file::Content, file: &Path) -> Result<&'static str> {
    const KEY: &str = "general.architecture";
    let arch =
        (meta(c, KEY, file)?.to_string()).map_err(|e| wrong_type(file, KEY, "a string", &e))?;
    match arch.as_str() {
        "llama" => Ok("llama"),
        "qwen2" => Ok("qwen2"),
        "qwen3" => Ok("qwen3"),
        "phi3" => Ok("phi3"),
        "gemma" => Ok("gemma"),
        "gemma2" => Ok("gemma2"),
        "gemma3" => Ok("gemma3"),
        "olmo2" => Ok("olmo2"),
        "smollm3" => Ok("smollm3"),
        "granite" => Ok("granite"),
        "stablelm" => Ok("stablelm"),
        "olmo" => Ok("olmo"),
        other => bail!(
            "{}: architecture {other:?} is not supported (the LLaMA-family \"llama\", \
             \"qwen2\", \"qwen3\", \"phi3\", \"gemma\", \"gemma2\", \"gemma3\", \"olmo\", \
             \"olmo2\", \"smollm3\", \"granite\" and \"stablelm\" are, and \"phi2\", \"gpt2\", \
             \"starcoder\", \"gptneox\", \"bloom\", \"falcon\" and \"mpt\" on GPT-2's block)",
            file.display()
        ),
    }
}

/// `{arch}.context_length`, or `{arch}.attention.sliding_window` where that is shorter (Phi-3:
/// within the window, sliding-window attention is plain causal attention; 0: no window).
fn context(c: &gguf_file::Content, file: &Path, arch: &str) -> Result<usize> {
    let length = meta_usize(c, &format!("{arch}.context_length"), file)?;
    let window = optional(
        c,
        &format!("{arch}.attention.sliding_window"),
        file,
        meta_usize,
    )?;
    // llama.cpp's converter writes 0 for a Phi-3-architecture model without a window (Phi-4).
    Ok(match window {
        Some(w) if arch == "phi3" && w > 0 => length.min(w),
        _ => length,
    })
}

/// The width of a head: `{arch}.attention.key_length` where the file names it (Qwen3: 128
/// over a width of 1,024 and 16 heads), else width / heads (0 where that does not divide:
/// `checks` names it). A value width other than the key width is refused.
fn head_width(
    c: &gguf_file::Content,
    file: &Path,
    arch: &str,
    (d_model, heads): (usize, usize),
) -> Result<usize> {
    let key_len = optional(c, &format!("{arch}.attention.key_length"), file, meta_usize)?;
    let value_len = optional(
        c,
        &format!("{arch}.attention.value_length"),
        file,
        meta_usize,
    )?;
    if let (Some(k), Some(v)) = (key_len, value_len) {
        if k != v {
            bail!(
                "{}: metadata {arch}.attention.value_length = {v} differs from \
                 {arch}.attention.key_length = {k}; this forward needs values as wide as keys",
                file.display()
            );
        }
    }
    Ok(match key_len.or(value_len) {
        Some(0) => bail!(
            "{}: metadata {arch}.attention.key_length is 0: a head needs a width",
            file.display()
        ),
        Some(k) => k,
        None if heads > 0 && d_model % heads == 0 => d_model / heads,
        None => 0,
    })
}
