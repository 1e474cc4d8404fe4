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
    /// safetensors folders and Qwen2 GGUF files; false for llama.cpp's interleaved one (2i
    /// with 2i+1), as in LLaMA GGUF files (whose converter permuted q and k for it).
    pub rope_half: bool,
    /// The architecture: `llama` or `qwen2` (a GGUF file's metadata keys begin with it; Qwen2
    /// has biases on q, k and v).
    pub arch: &'static str,
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
        // A head count that does not divide the width is named by `checks` (its head width
        // here would be a made-up number, and the RoPE check would blame RoPE).
        if heads > 0 && d_model % heads == 0 {
            check_rope(c, file, arch, d_model / heads)?;
        }
        Ok(Self {
            layers: meta_usize(c, &key("block_count"), file)?,
            d_model,
            heads,
            kv_heads: kv_heads.unwrap_or(heads),
            ff: meta_usize(c, &key("feed_forward_length"), file)?,
            vocab: 0,
            rms_eps: meta_f64(c, &key("attention.layer_norm_rms_epsilon"), file)?,
            rope_base: rope_base.unwrap_or(10_000.0),
            context: meta_usize(c, &key("context_length"), file)?,
            // llama.cpp rotates Qwen2's halves (its "NEOX" RoPE), as Hugging Face does, and
            // its converter writes Qwen2's q and k unpermuted.
            rope_half: arch == "qwen2",
            arch,
        })
    }

    /// Whether the layers have biases on q, k and v (Qwen2).
    pub fn qkv_bias(&self) -> bool {
        self.arch == "qwen2"
    }
}

/// `general.architecture`: the LLaMA-family ones this forward runs.
fn architecture(c: &gguf_file::Content, file: &Path) -> Result<&'static str> {
    const KEY: &str = "general.architecture";
    let arch =
        (meta(c, KEY, file)?.to_string()).map_err(|e| wrong_type(file, KEY, "a string", &e))?;
    match arch.as_str() {
        "llama" => Ok("llama"),
        "qwen2" => Ok("qwen2"),
        other => bail!(
            "{}: architecture {other:?} is not supported (the LLaMA-family \"llama\" and \
             \"qwen2\" are)",
            file.display()
        ),
    }
}

/// `key` read by `read` when the metadata has it, `None` when it does not.
fn optional<T>(
    c: &gguf_file::Content,
    key: &str,
    file: &Path,
    read: fn(&gguf_file::Content, &str, &Path) -> Result<T>,
) -> Result<Option<T>> {
    if c.metadata.contains_key(key) {
        read(c, key, file).map(Some)
    } else {
        Ok(None)
    }
}

/// RoPE as this forward computes it: every dimension of a head rotated, at the plain
/// frequencies. Scaling (linear, YaRN), partial rotation or a `rope_freqs` tensor would change
/// every attention row, so a file asking for one is refused rather than run without it.
fn check_rope(c: &gguf_file::Content, file: &Path, arch: &str, head_dim: usize) -> Result<()> {
    let refuse = |what: String| -> Result<()> {
        bail!(
            "{}: {what}; this forward rotates every dimension at the plain RoPE \
             frequencies, so its attention would not be the model's",
            file.display()
        )
    };
    let scaling = optional(c, &format!("{arch}.rope.scaling.type"), file, |c, k, f| {
        let text = meta(c, k, f)?.to_string();
        Ok(text.map_err(|e| wrong_type(f, k, "a string", &e))?.clone())
    })?;
    if let Some(kind) = scaling.filter(|k| k != "none") {
        return refuse(format!("metadata {arch}.rope.scaling.type is {kind:?}"));
    }
    if let Some(f) = optional(c, &format!("{arch}.rope.scaling.factor"), file, meta_f64)? {
        if f != 1.0 && f != 0.0 {
            return refuse(format!("metadata {arch}.rope.scaling.factor is {f}"));
        }
    }
    if let Some(n) = optional(c, &format!("{arch}.rope.dimension_count"), file, meta_usize)? {
        if n != head_dim {
            return refuse(format!(
                "metadata {arch}.rope.dimension_count is {n}, not the head width {head_dim}"
            ));
        }
    }
    if c.tensor_infos.contains_key("rope_freqs.weight") {
        return refuse("it holds a rope_freqs.weight tensor (per-frequency RoPE factors)".into());
    }
    Ok(())
}

fn meta<'a>(c: &'a gguf_file::Content, key: &str, file: &Path) -> Result<&'a gguf_file::Value> {
    c.metadata
        .get(key)
        .with_context(|| format!("{}: metadata {key} is missing", file.display()))
}

/// An integer of any of GGUF's integer types, non-negative and within `usize`.
fn meta_usize(c: &gguf_file::Content, key: &str, file: &Path) -> Result<usize> {
    use gguf_file::Value;
    let v = meta(c, key, file)?;
    let n: Option<u64> = match v {
        Value::U8(x) => Some(u64::from(*x)),
        Value::U16(x) => Some(u64::from(*x)),
        Value::U32(x) => Some(u64::from(*x)),
        Value::U64(x) => Some(*x),
        Value::I8(x) => u64::try_from(*x).ok(),
        Value::I16(x) => u64::try_from(*x).ok(),
        Value::I32(x) => u64::try_from(*x).ok(),
        Value::I64(x) => u64::try_from(*x).ok(),
        _ => None,
    };
    n.and_then(|n| usize::try_from(n).ok()).with_context(|| {
        format!(
            "{}: metadata {key} is not a non-negative integer ({v:?})",
            file.display()
        )
    })
}

/// A number stored as F32 or F64 (or an integer).
fn meta_f64(c: &gguf_file::Content, key: &str, file: &Path) -> Result<f64> {
    use gguf_file::Value;
    let v = meta(c, key, file)?;
    match v {
        Value::F32(x) => Ok(f64::from(*x)),
        Value::F64(x) => Ok(*x),
        _ => meta_usize(c, key, file).map(|n| n as f64).map_err(|_| {
            anyhow::anyhow!("{}: metadata {key} is not a number ({v:?})", file.display())
        }),
    }
}

/// The merges of a byte-level BPE, as pairs.
type Merges = Vec<(String, String)>;

/// The vocabulary and merges of a byte-level BPE in the metadata.
fn tokens_and_merges(c: &gguf_file::Content, file: &Path) -> Result<(Vec<String>, Merges)> {
    const TOKENS: &str = "tokenizer.ggml.tokens";
    let tokens: Vec<String> = (meta(c, TOKENS, file)?.to_vec())
        .map_err(|e| wrong_type(file, TOKENS, "an array of strings", &e))?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<candle_core::Result<_>>()
        .map_err(|e| wrong_type(file, TOKENS, "an array of strings", &e))?;
    let merges: Merges = (meta(c, "tokenizer.ggml.merges", file)?.to_vec())
        .map_err(|e| wrong_type(file, "tokenizer.ggml.merges", "an array of strings", &e))?
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let s = v.to_string().ok();
            match s.and_then(|s| s.split_once(' ')) {
                Some((a, b)) => Ok((a.to_string(), b.to_string())),
                None => Err(anyhow::anyhow!(
                    "{}: metadata tokenizer.ggml.merges[{i}] is not two tokens and a space ({v:?})",
                    file.display()
                )),
            }
        })
        .collect::<Result<_>>()?;
    Ok((tokens, merges))
}

/// Rebuild a byte-level BPE tokenizer from `tokenizer.ggml.*` metadata (`gpt2` models).
pub fn tokenizer_from_gguf(
    c: &gguf_file::Content,
    arch: &str,
    file: &Path,
) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    use tokenizers::AddedToken;
    const MODEL: &str = "tokenizer.ggml.model";
    let model =
        (meta(c, MODEL, file)?.to_string()).map_err(|e| wrong_type(file, MODEL, "a string", &e))?;
    if model != "gpt2" {
        bail!(
            "{}: tokenizer model {model:?} is not supported (only byte-level BPE, \"gpt2\")",
            file.display()
        );
    }
    let (tokens, merges) = tokens_and_merges(c, file)?;
    let vocab_key = format!("{arch}.vocab_size");
    if let Some(n) = optional(c, &vocab_key, file, meta_usize)? {
        if n != tokens.len() {
            // It was ignored: the token list decides, and a file saying otherwise is damaged.
            bail!(
                "{}: metadata {vocab_key} = {n}, but tokenizer.ggml.tokens lists {}",
                file.display(),
                tokens.len()
            );
        }
    }
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: BPE from metadata: {e}", file.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre_tokenizer(c, file)?.build(file)?));
    tok.with_decoder(Some(ByteLevel::default()));
    // Control tokens (type 3) are matched whole; a list of the wrong type was skipped unsaid.
    const TYPES: &str = "tokenizer.ggml.token_type";
    if let Some(v) = c.metadata.get(TYPES) {
        let types = v
            .to_vec()
            .map_err(|e| wrong_type(file, TYPES, "an array", &e))?;
        let integer = |t: &gguf_file::Value| t.to_u32().is_ok() || t.to_i32().is_ok();
        if types.len() != tokens.len() || !types.iter().all(integer) {
            bail!(
                "{}: metadata {TYPES} must give an integer type for each of the {} tokens \
                 (it has {} entries)",
                file.display(),
                tokens.len(),
                types.len()
            );
        }
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

/// How a byte-level GGUF splits its text before BPE (`tokenizer.ggml.pre`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PreSplit {
    /// Digits one by one, then GPT-2's byte-level split (smollm, starcoder, refact; also when
    /// the key is absent, as in SmolLM's files before it was written).
    DigitsThenGpt2,
    /// GPT-2's byte-level split alone (gpt-2).
    Gpt2,
    /// Qwen2's split (qwen2): contractions in either case, a letter run with at most one
    /// other character before it, each digit alone, and line breaks kept with punctuation.
    Qwen2,
}

/// Qwen2's split as its `tokenizer.json` writes it (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`).
pub(crate) const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

impl PreSplit {
    /// The pre-tokenizer doing this split, then the byte-level mapping.
    pub(crate) fn build(self, file: &Path) -> Result<tokenizers::PreTokenizerWrapper> {
        use tokenizers::pre_tokenizers::byte_level::ByteLevel;
        use tokenizers::pre_tokenizers::digits::Digits;
        use tokenizers::pre_tokenizers::sequence::Sequence;
        use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
        use tokenizers::{PreTokenizerWrapper as P, SplitDelimiterBehavior};
        let gpt2 = P::ByteLevel(ByteLevel::new(false, true, true));
        Ok(match self {
            Self::Gpt2 => gpt2,
            Self::DigitsThenGpt2 => {
                P::Sequence(Sequence::new(vec![P::Digits(Digits::new(true)), gpt2]))
            }
            Self::Qwen2 => {
                let pattern = SplitPattern::Regex(QWEN2_SPLIT.into());
                let split = Split::new(pattern, SplitDelimiterBehavior::Isolated, false)
                    .map_err(|e| anyhow::anyhow!("{}: Qwen2's split: {e}", file.display()))?;
                P::Sequence(Sequence::new(vec![
                    P::Split(split),
                    P::ByteLevel(ByteLevel::new(false, false, false)),
                ]))
            }
        })
    }
}

/// The file's pre-tokenizer (`tokenizer.ggml.pre`). Any other than those of [`PreSplit`] is
/// refused, and so is a BOS token the text must begin with: every byte-level GGUF was split as
/// SmolLM's, so a LLaMA-3 file ("llama-bpe", BOS added) was measured on a tokenization that
/// was not its own.
fn pre_tokenizer(c: &gguf_file::Content, file: &Path) -> Result<PreSplit> {
    const PRE: &str = "tokenizer.ggml.pre";
    const BOS: &str = "tokenizer.ggml.add_bos_token";
    if let Some(v) = c.metadata.get(BOS) {
        if v.to_bool()
            .map_err(|e| wrong_type(file, BOS, "a boolean", &e))?
        {
            bail!(
                "{}: metadata {BOS} = true: texts of this model begin with its BOS token, which \
                 this reader does not add; its numbers would be of another tokenization",
                file.display()
            );
        }
    }
    let Some(v) = c.metadata.get(PRE) else {
        return Ok(PreSplit::DigitsThenGpt2);
    };
    let pre = v
        .to_string()
        .map_err(|e| wrong_type(file, PRE, "a string", &e))?;
    match pre.as_str() {
        "smollm" | "starcoder" | "refact" => Ok(PreSplit::DigitsThenGpt2),
        "gpt-2" => Ok(PreSplit::Gpt2),
        "qwen2" => Ok(PreSplit::Qwen2),
        other => bail!(
            "{}: metadata {PRE} = {other:?}: this pre-tokenizer is not implemented here (smollm, \
             starcoder, refact, gpt-2 and qwen2 are), and splitting its text another way would \
             measure the model on a tokenization that is not its own",
            file.display()
        ),
    }
}

/// The error for metadata `key` of `file` that is not `expected` (candle said only "not a
/// vec U32(9)", naming neither the file nor the key).
fn wrong_type(file: &Path, key: &str, expected: &str, e: &candle_core::Error) -> anyhow::Error {
    anyhow::anyhow!("{}: metadata {key} is not {expected} ({e})", file.display())
}
