//! What both kinds of GGUF tokenizer read alike ([`super::gguf_tokenizer`]'s byte-level BPE,
//! [`super::gguf_spm`]'s SentencePiece): the token list, its size, its types and the tokens
//! matched whole, and the BOS token. Every error names the file and the metadata key.

use std::path::Path;

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;

use super::metadata::{meta, meta_usize, optional, wrong_type};

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
pub(crate) fn with_bos(
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
