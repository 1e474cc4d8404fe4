//! A GGUF file's SentencePiece vocabulary (`tokenizer.ggml.model` "llama", as llama.cpp's
//! converter writes TinyLlama's, LLaMA-2's and Mistral's files): pieces with scores and types,
//! rebuilt as the `tokenizers` crate's BPE the way Hugging Face converts a SentencePiece model
//! (its `LlamaConverter`).
//!
//! SentencePiece's BPE (and llama.cpp's, which follows it) starts from the characters of the
//! text, with spaces written `▁` and one `▁` prefixed, and repeatedly joins the neighbouring
//! pair whose joined piece is in the vocabulary with the highest score; a character left that
//! is no piece is spelled in byte pieces (`<0xE2>`). A merge list ranked by the joined piece's
//! score makes a BPE do the same: every split of every piece into two pieces is a merge, the
//! higher scores first (ties in the order of the pieces' ids). Checked against SentencePiece
//! itself in `tests/gguf_families.rs`.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Result};
use candle_core::quantized::gguf_file;

use super::gguf_vocab::{
    add_typed, bos_token, check_vocab_size, read_tokens, token_types, with_bos,
};
use super::metadata::{meta, wrong_type};

/// The longest piece merges are made for (SentencePiece's default is 16 characters).
const MAX_MERGED_CHARS: usize = 64;

/// llama.cpp's token types that take part in merges: normal (1) and user-defined (4).
fn mergeable(kind: Option<i64>) -> bool {
    matches!(kind, None | Some(1) | Some(4))
}

/// The tokenizer of a SentencePiece GGUF.
pub(super) fn sentencepiece(
    c: &gguf_file::Content,
    arch: &str,
    file: &Path,
) -> Result<tokenizers::Tokenizer> {
    use tokenizers::models::bpe::BPE;
    let tokens = read_tokens(c, file)?;
    check_vocab_size(c, arch, tokens.len(), file)?;
    let scores = read_scores(c, tokens.len(), file)?;
    let types = token_types(c, tokens.len(), file)?;
    let kind = |i: usize| types.as_ref().and_then(|t| t.get(i).copied());
    let merges = merges_by_score(&tokens, &scores, |i| mergeable(kind(i)));
    let unk = (0..tokens.len())
        .find(|&i| kind(i) == Some(2))
        .and_then(|i| tokens.get(i).cloned());
    let vocab: tokenizers::models::bpe::Vocab = tokens.iter().cloned().zip(0u32..).collect();
    let mut builder = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = unk {
        builder = builder.unk_token(unk);
    }
    let bpe = builder
        .build()
        .map_err(|e| anyhow::anyhow!("{}: SentencePiece BPE from metadata: {e}", file.display()))?;
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_normalizer(Some(normalizer(space_prefix(c, file)?)?))
        .map_err(|e| anyhow::anyhow!("{}: SentencePiece normalizer: {e}", file.display()))?;
    tok.with_decoder(Some(decoder()));
    // SentencePiece models begin every text with BOS unless the file says otherwise.
    with_bos(&mut tok, bos_token(c, &tokens, file, true)?, file)?;
    add_typed(&mut tok, &tokens, types.as_deref());
    Ok(tok)
}

/// `tokenizer.ggml.scores`: one finite score a token.
fn read_scores(c: &gguf_file::Content, tokens: usize, file: &Path) -> Result<Vec<f32>> {
    const SCORES: &str = "tokenizer.ggml.scores";
    let values = meta(c, SCORES, file)
        .map_err(|_| {
            anyhow::anyhow!(
                "{}: metadata {SCORES} is missing: a SentencePiece vocabulary joins its pieces \
                 by their scores",
                file.display()
            )
        })?
        .to_vec()
        .map_err(|e| wrong_type(file, SCORES, "an array of numbers", &e))?;
    let scores: Option<Vec<f32>> = values
        .iter()
        .map(|v| v.to_f32().ok().filter(|x| x.is_finite()))
        .collect();
    match scores {
        Some(s) if s.len() == tokens => Ok(s),
        _ => bail!(
            "{}: metadata {SCORES} must give a finite number for each of the {tokens} tokens \
             (it has {} entries)",
            file.display(),
            values.len()
        ),
    }
}

/// Every split of a piece into two pieces, as a merge ranked by the piece's score (higher
/// first; ties by the piece's id, then the halves' ids), over the pieces `mergeable` keeps.
pub(crate) fn merges_by_score(
    tokens: &[String],
    scores: &[f32],
    mergeable: impl Fn(usize) -> bool,
) -> Vec<(String, String)> {
    let ids: HashMap<&str, usize> = tokens
        .iter()
        .enumerate()
        .filter(|&(i, _)| mergeable(i))
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let mut ranked: Vec<(f32, usize, usize, usize)> = Vec::new();
    for (i, piece) in tokens.iter().enumerate() {
        if !mergeable(i) {
            continue;
        }
        // SentencePiece makes pieces of at most 16 characters (its max_piece_length); a longer
        // one is matched whole if at all, and splitting a hostile 100,000-character piece at
        // every character would take quadratic time.
        if piece.chars().nth(MAX_MERGED_CHARS).is_some() {
            continue;
        }
        let score = scores.get(i).copied().unwrap_or(f32::NEG_INFINITY);
        for (cut, _) in piece.char_indices().skip(1) {
            let (left, right) = piece.split_at(cut);
            if let (Some(&l), Some(&r)) = (ids.get(left), ids.get(right)) {
                ranked.push((score, i, l, r));
            }
        }
    }
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    let text = |i: usize| tokens.get(i).cloned().unwrap_or_default();
    ranked
        .into_iter()
        .map(|(_, _, l, r)| (text(l), text(r)))
        .collect()
}

/// `tokenizer.ggml.add_space_prefix` (true when absent, as llama.cpp reads SentencePiece).
fn space_prefix(c: &gguf_file::Content, file: &Path) -> Result<bool> {
    const KEY: &str = "tokenizer.ggml.add_space_prefix";
    match c.metadata.get(KEY) {
        Some(v) => v
            .to_bool()
            .map_err(|e| wrong_type(file, KEY, "a boolean", &e)),
        None => Ok(true),
    }
}

/// Spaces written `▁`, and one `▁` before a text that is not empty when `prefix`.
fn normalizer(prefix: bool) -> Result<tokenizers::NormalizerWrapper> {
    use tokenizers::normalizers::{Prepend, Replace, Sequence};
    let replace = Replace::new(" ", "▁").map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(if prefix {
        Sequence::new(vec![Prepend::new("▁".into()).into(), replace.into()]).into()
    } else {
        replace.into()
    })
}

/// Pieces back to text: `▁` to a space, byte pieces to their bytes, the first space dropped.
fn decoder() -> tokenizers::DecoderWrapper {
    use tokenizers::decoders::byte_fallback::ByteFallback;
    use tokenizers::decoders::fuse::Fuse;
    use tokenizers::decoders::sequence::Sequence;
    use tokenizers::decoders::strip::Strip;
    use tokenizers::normalizers::Replace;
    let replace = Replace::new("▁", " ").map(tokenizers::DecoderWrapper::from);
    let mut parts: Vec<tokenizers::DecoderWrapper> = Vec::new();
    if let Ok(r) = replace {
        parts.push(r);
    }
    parts.extend([
        ByteFallback::new().into(),
        Fuse::new().into(),
        Strip::new(' ', 1, 0).into(),
    ]);
    Sequence::new(parts).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Merges come higher scores first, every split of a piece, and only between pieces that
    /// may merge; a piece past the length limit makes none.
    #[test]
    fn merges_rank_by_the_joined_piece_score() {
        let long = "x".repeat(MAX_MERGED_CHARS + 1);
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc", "<0x41>", "x", &long]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0, 0.0, 0.0, 5.0];
        let merges = merges_by_score(&tokens, &scores, |i| i != 6);
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            merges,
            vec![
                pair("b", "c"),
                pair("a", "b"),
                pair("a", "bc"),
                pair("ab", "c")
            ]
        );
    }
}
