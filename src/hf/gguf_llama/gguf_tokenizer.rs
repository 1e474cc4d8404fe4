//! A GGUF file's tokenizer, rebuilt from `tokenizer.ggml.*`: a byte-level BPE (vocabulary and
//! merges, the pre-tokenizer's split (SmolLM's, GPT-2's, Qwen2's, LLaMA-3's), control tokens,
//! and the BOS token a LLaMA-3 file begins every text with), or a SentencePiece vocabulary
//! ([`super::gguf_spm`]). Every error names the file and the metadata key.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;

use super::metadata::{meta, meta_usize, optional, wrong_type};

/// The merges of a byte-level BPE, as pairs.
type Merges = Vec<(String, String)>;

/// The vocabulary and merges of a byte-level BPE in the metadata.
fn tokens_and_merges(c: &gguf_file::Content, file: &Path) -> Result<(Vec<String>, Merges)> {
    let tokens = read_tokens(c, file)?;
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

/// The token list (`tokenizer.ggml.tokens`), each text naming one id.
pub(super) fn read_tokens(c: &gguf_file::Content, file: &Path) -> Result<Vec<String>> {
    const TOKENS: &str = "tokenizer.ggml.tokens";
    let tokens: Vec<String> = (meta(c, TOKENS, file)?.to_vec())
        .map_err(|e| wrong_type(file, TOKENS, "an array of strings", &e))?
        .iter()
        .map(|v| v.to_string().cloned())
        .collect::<candle_core::Result<_>>()
        .map_err(|e| wrong_type(file, TOKENS, "an array of strings", &e))?;
    // Two ids of one text: the vocabulary would keep one of them unsaid (llama.cpp refuses
    // such a file too).
    let mut first = std::collections::HashMap::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        if let Some(j) = first.insert(t.as_str(), i) {
            bail!(
                "{}: metadata {TOKENS}[{i}] repeats {TOKENS}[{j}] ({t:?}): each token's text must \
                 name one id",
                file.display()
            );
        }
    }
    Ok(tokens)
}

/// Rebuild the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata: a byte-level
/// BPE (`tokenizer.ggml.model` "gpt2": SmolLM2, Qwen2, LLaMA-3) or a SentencePiece vocabulary
/// ("llama": TinyLlama, LLaMA-2, Mistral; [`super::gguf_spm`]).
pub fn tokenizer_from_gguf(
    c: &gguf_file::Content,
    arch: &str,
    file: &Path,
) -> Result<tokenizers::Tokenizer> {
    const MODEL: &str = "tokenizer.ggml.model";
    let model =
        (meta(c, MODEL, file)?.to_string()).map_err(|e| wrong_type(file, MODEL, "a string", &e))?;
    match model.as_str() {
        "gpt2" => byte_level(c, arch, file),
        "llama" => super::gguf_spm::sentencepiece(c, arch, file),
        _ => bail!(
            "{}: metadata {MODEL} = {model:?} is not supported (byte-level BPE \"gpt2\" and \
             SentencePiece \"llama\" are)",
            file.display()
        ),
    }
}

/// A byte-level BPE from the token list and merges, split first as `tokenizer.ggml.pre` says.
fn byte_level(c: &gguf_file::Content, arch: &str, file: &Path) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;
    let (tokens, merges) = tokens_and_merges(c, file)?;
    check_vocab_size(c, arch, tokens.len(), file)?;
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| anyhow::anyhow!("{}: BPE from metadata: {e}", file.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre_tokenizer(c, file)?.build(file)?));
    // LLaMA-3's files begin every text with their BOS token (`add_bos_token`).
    with_bos(&mut tok, bos_token(c, &tokens, file, false)?, file)?;
    tok.with_decoder(Some(ByteLevel::default()));
    add_typed(
        &mut tok,
        &tokens,
        token_types(c, tokens.len(), file)?.as_deref(),
    );
    Ok(tok)
}

/// `{arch}.vocab_size`, where the file has it, must be the token list's length.
pub(super) fn check_vocab_size(
    c: &gguf_file::Content,
    arch: &str,
    tokens: usize,
    file: &Path,
) -> Result<()> {
    let vocab_key = format!("{arch}.vocab_size");
    if let Some(n) = optional(c, &vocab_key, file, meta_usize)? {
        if n != tokens {
            // It was ignored: the token list decides, and a file saying otherwise is damaged.
            bail!(
                "{}: metadata {vocab_key} = {n}, but tokenizer.ggml.tokens lists {tokens}",
                file.display()
            );
        }
    }
    Ok(())
}

/// Begin every text with `bos` (text, id) when given.
pub(super) fn with_bos(
    tok: &mut tokenizers::Tokenizer,
    bos: Option<(String, u32)>,
    file: &Path,
) -> Result<()> {
    use tokenizers::processors::template::TemplateProcessing;
    let Some((bos, id)) = bos else {
        return Ok(());
    };
    let template = TemplateProcessing::builder()
        .try_single(vec![bos.clone(), "$A".to_string()])
        .and_then(|b| {
            b.special_tokens(vec![(bos.clone(), id)])
                .build()
                .map_err(|e| e.to_string())
        })
        .map_err(|e| anyhow::anyhow!("{}: BOS token {bos:?}: {e}", file.display()))?;
    tok.with_post_processor(Some(template));
    Ok(())
}

/// `tokenizer.ggml.token_type` (llama.cpp's: 1 normal, 2 unknown, 3 control, 4 user-defined,
/// 5 unused, 6 byte), one integer a token, or None where the file has none; a list of the
/// wrong length or type is refused (it was skipped unsaid).
pub(super) fn token_types(
    c: &gguf_file::Content,
    tokens: usize,
    file: &Path,
) -> Result<Option<Vec<i64>>> {
    const TYPES: &str = "tokenizer.ggml.token_type";
    let Some(v) = c.metadata.get(TYPES) else {
        return Ok(None);
    };
    let types = v
        .to_vec()
        .map_err(|e| wrong_type(file, TYPES, "an array", &e))?;
    let as_int = |t: &gguf_file::Value| {
        t.to_u32()
            .map(i64::from)
            .or_else(|_| t.to_i32().map(i64::from))
            .ok()
    };
    let ints: Option<Vec<i64>> = types.iter().map(as_int).collect();
    match ints {
        Some(ints) if ints.len() == tokens => Ok(Some(ints)),
        _ => bail!(
            "{}: metadata {TYPES} must give an integer type for each of the {tokens} tokens \
             (it has {} entries)",
            file.display(),
            types.len()
        ),
    }
}

/// Control tokens (type 3) matched whole as special tokens, user-defined ones (4) whole as
/// added tokens (as llama.cpp matches both before its tokenizer runs).
pub(super) fn add_typed(tok: &mut tokenizers::Tokenizer, tokens: &[String], types: Option<&[i64]>) {
    use tokenizers::AddedToken;
    let Some(types) = types else {
        return;
    };
    let of = |kind: i64, special: bool| -> Vec<AddedToken> {
        types
            .iter()
            .zip(tokens)
            .filter(|(t, _)| **t == kind)
            .map(|(_, s)| AddedToken::from(s.clone(), special))
            .collect()
    };
    let _added = tok.add_special_tokens(of(3, true));
    let _added = tok.add_tokens(of(4, false));
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
    /// LLaMA-3's split (llama-bpe): Qwen2's, but digits in runs of up to three.
    Llama3,
}

/// Qwen2's split as its `tokenizer.json` writes it (llama.cpp's `LLAMA_VOCAB_PRE_TYPE_QWEN2`).
pub(crate) const QWEN2_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// LLaMA-3's split (its `tokenizer.json`; llama.cpp's `LLAMA_VOCAB_PRE_TYPE_LLAMA3`).
pub(crate) const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

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
            Self::Qwen2 | Self::Llama3 => {
                let regex = if self == Self::Qwen2 {
                    QWEN2_SPLIT
                } else {
                    LLAMA3_SPLIT
                };
                let pattern = SplitPattern::Regex(regex.into());
                let split = Split::new(pattern, SplitDelimiterBehavior::Isolated, false)
                    .map_err(|e| anyhow::anyhow!("{}: the split {self:?}: {e}", file.display()))?;
                P::Sequence(Sequence::new(vec![
                    P::Split(split),
                    P::ByteLevel(ByteLevel::new(false, false, false)),
                ]))
            }
        })
    }
}

/// The file's pre-tokenizer (`tokenizer.ggml.pre`). Any other than those of [`PreSplit`] is
/// refused: every byte-level GGUF was once split as SmolLM's, so a LLaMA-3 file ("llama-bpe")
/// was measured on a tokenization that was not its own.
fn pre_tokenizer(c: &gguf_file::Content, file: &Path) -> Result<PreSplit> {
    const PRE: &str = "tokenizer.ggml.pre";
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
        "llama-bpe" => Ok(PreSplit::Llama3),
        other => bail!(
            "{}: metadata {PRE} = {other:?}: this pre-tokenizer is not implemented here (smollm, \
             starcoder, refact, gpt-2, qwen2 and llama-bpe are), and splitting its text another \
             way would measure the model on a tokenization that is not its own",
            file.display()
        ),
    }
}

/// The BOS token every text begins with, when `tokenizer.ggml.add_bos_token` is true (or
/// absent and `default_add`, as llama.cpp reads a SentencePiece file): its text and id
/// (`tokenizer.ggml.bos_token_id`, which must then name a token).
pub(super) fn bos_token(
    c: &gguf_file::Content,
    tokens: &[String],
    file: &Path,
    default_add: bool,
) -> Result<Option<(String, u32)>> {
    const ADD: &str = "tokenizer.ggml.add_bos_token";
    const ID: &str = "tokenizer.ggml.bos_token_id";
    let add = match c.metadata.get(ADD) {
        Some(v) => v
            .to_bool()
            .map_err(|e| wrong_type(file, ADD, "a boolean", &e))?,
        None => default_add,
    };
    if !add {
        return Ok(None);
    }
    let Some(id) = optional(c, ID, file, meta_usize)? else {
        bail!(
            "{}: metadata {ADD} = true, but {ID} is missing: texts of this model begin with a \
             BOS token the file does not name",
            file.display()
        );
    };
    match tokens.get(id) {
        Some(t) if !t.contains(char::is_whitespace) && !t.starts_with('$') => {
            Ok(Some((t.clone(), id as u32)))
        }
        Some(t) => bail!(
            "{}: metadata {ID} = {id} names {t:?}, which cannot stand for a BOS token here",
            file.display()
        ),
        None => bail!(
            "{}: metadata {ID} = {id} is past the {} tokens of tokenizer.ggml.tokens",
            file.display(),
            tokens.len()
        ),
    }
}
