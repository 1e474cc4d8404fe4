//! What a GGUF file says besides its tensors: the hyper-parameters of a LLaMA-family model
//! ([`LlamaConfig`]) and its byte-level BPE tokenizer, rebuilt from `tokenizer.ggml.*`. Every
//! error names the file and the metadata key.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;

/// Hyper-parameters read from the GGUF metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Layers.
    pub layers: usize,
    /// Width d.
    pub d_model: usize,
    /// Query heads.
    pub heads: usize,
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
    /// safetensors folders; false for llama.cpp's interleaved one (2i with 2i+1), as in GGUF.
    pub rope_half: bool,
}

impl LlamaConfig {
    /// The hyper-parameters of a `llama` model in `c` (read from `file`); `vocab` is left 0
    /// for the caller to take from the embedding. Another architecture is an error.
    pub fn from_gguf(c: &gguf_file::Content, file: &Path) -> Result<Self> {
        let arch = meta(c, "general.architecture", file)?.to_string()?.clone();
        if arch != "llama" {
            bail!(
                "{}: architecture {arch:?} is not supported (only LLaMA-family \"llama\")",
                file.display()
            );
        }
        let heads = meta_usize(c, "llama.attention.head_count", file)?;
        Ok(Self {
            layers: meta_usize(c, "llama.block_count", file)?,
            d_model: meta_usize(c, "llama.embedding_length", file)?,
            heads,
            kv_heads: meta_usize(c, "llama.attention.head_count_kv", file).unwrap_or(heads),
            ff: meta_usize(c, "llama.feed_forward_length", file)?,
            vocab: 0,
            rms_eps: meta_f32(c, "llama.attention.layer_norm_rms_epsilon", file)? as f64,
            rope_base: meta_f32(c, "llama.rope.freq_base", file).unwrap_or(10_000.0) as f64,
            context: meta_usize(c, "llama.context_length", file)?,
            rope_half: false,
        })
    }
}

fn meta<'a>(c: &'a gguf_file::Content, key: &str, file: &Path) -> Result<&'a gguf_file::Value> {
    c.metadata
        .get(key)
        .with_context(|| format!("{}: metadata {key} is missing", file.display()))
}

fn meta_usize(c: &gguf_file::Content, key: &str, file: &Path) -> Result<usize> {
    Ok(meta(c, key, file)?
        .to_u32()
        .with_context(|| format!("{}: metadata {key} is not an integer", file.display()))?
        as usize)
}

fn meta_f32(c: &gguf_file::Content, key: &str, file: &Path) -> Result<f32> {
    meta(c, key, file)?
        .to_f32()
        .with_context(|| format!("{}: metadata {key} is not a number", file.display()))
}

/// The merges of a byte-level BPE, as pairs.
type Merges = Vec<(String, String)>;

/// The vocabulary and merges of a byte-level BPE in the metadata.
fn tokens_and_merges(c: &gguf_file::Content, file: &Path) -> Result<(Vec<String>, Merges)> {
    let tokens: Vec<String> = meta(c, "tokenizer.ggml.tokens", file)?
        .to_vec()?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<candle_core::Result<_>>()?;
    let merges: Merges = meta(c, "tokenizer.ggml.merges", file)?
        .to_vec()?
        .iter()
        .map(|v| {
            let s = v.to_string()?;
            match s.split_once(' ') {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => candle_core::bail!("bad merge {s:?}"),
            }
        })
        .collect::<candle_core::Result<_>>()?;
    Ok((tokens, merges))
}

/// Rebuild a byte-level BPE tokenizer from `tokenizer.ggml.*` metadata (`gpt2` models).
pub fn tokenizer_from_gguf(c: &gguf_file::Content, file: &Path) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::pre_tokenizers::digits::Digits;
    use tokenizers::pre_tokenizers::sequence::Sequence;
    use tokenizers::{AddedToken, PreTokenizerWrapper};
    let model = meta(c, "tokenizer.ggml.model", file)?.to_string()?;
    if model != "gpt2" {
        bail!(
            "{}: tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\")",
            file.display()
        );
    }
    let (tokens, merges) = tokens_and_merges(c, file)?;
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: BPE from metadata: {e}", file.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    // SmolLM's pre-tokenizer ("smollm"): digits one by one, then GPT-2's byte-level split.
    tok.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]))));
    tok.with_decoder(Some(ByteLevel::default()));
    // Control tokens (type 3) are matched whole.
    if let Ok(types) = meta(c, "tokenizer.ggml.token_type", file).and_then(|v| Ok(v.to_vec()?)) {
        let special: Vec<AddedToken> = types
            .iter()
            .zip(&tokens)
            .filter(|(t, _)| {
                t.to_u32().map(|x| x == 3).unwrap_or(false)
                    || t.to_i32().map(|x| x == 3).unwrap_or(false)
            })
            .map(|(_, s)| AddedToken::from(s.clone(), true))
            .collect();
        let _added = tok.add_special_tokens(special);
    }
    Ok(tok)
}
