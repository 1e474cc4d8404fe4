//! A GPT-2 folder's tokenizer: its `tokenizer.json` when there is one (what
//! `GPT2TokenizerFast.save_pretrained` writes), else the byte-level BPE rebuilt from
//! `vocab.json` and `merges.txt` (the slow tokenizer's files, which older folders and
//! `save_pretrained(legacy_format=True)` hold alone), as `transformers` converts them: no
//! prefix space, `<|endoftext|>` special, and the BOS token first where `tokenizer_config.json`
//! says `add_bos_token` (OPT's `</s>`).

use std::path::Path;

use anyhow::{bail, Result};
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::hf::folder;

/// GPT-2's one special token.
const END_OF_TEXT: &str = "<|endoftext|>";

/// The tokenizer of the GPT-2 folder `dir`, with no more words than `vocab`.
pub fn read(dir: &Path, vocab: usize) -> Result<Tokenizer> {
    let json = dir.join("tokenizer.json");
    if json.symlink_metadata().is_ok() {
        return folder::read_tokenizer(&json, vocab);
    }
    let (words, merges) = (dir.join("vocab.json"), dir.join("merges.txt"));
    if words.symlink_metadata().is_err() || merges.symlink_metadata().is_err() {
        bail!(
            "{}: no tokenizer: neither tokenizer.json nor vocab.json with merges.txt",
            dir.display()
        );
    }
    let mut tok = from_vocab_and_merges(&words, &merges)?;
    if let Some(bos) = bos_token(dir)? {
        let Some(id) = tok.token_to_id(&bos) else {
            bail!(
                "{}: tokenizer_config.json's bos_token {bos:?} is not in {}",
                dir.display(),
                words.display()
            );
        };
        tok.add_special_tokens([AddedToken::from(bos.as_str(), true)])
            .map_err(|e| anyhow::anyhow!("{}: {bos}: {e}", words.display()))?;
        crate::hf::gguf_llama::gguf_vocab::with_bos(&mut tok, Some((bos, id)), &words)?;
    }
    folder::plain_tokenizer(tok, vocab, &words)
}

/// The BOS token `dir`'s `tokenizer_config.json` puts first (`add_bos_token` true; its
/// `bos_token` a string or `{"content": ...}`), or None (no such file, or no BOS added).
fn bos_token(dir: &Path) -> Result<Option<String>> {
    let path = dir.join("tokenizer_config.json");
    if path.symlink_metadata().is_err() {
        return Ok(None);
    }
    let text = crate::files::read_text(
        &path,
        crate::files::MAX_CONFIG_BYTES,
        "a tokenizer_config.json",
    )?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    if json
        .get("add_bos_token")
        .and_then(serde_json::Value::as_bool)
        != Some(true)
    {
        return Ok(None);
    }
    let bos = json.get("bos_token");
    let content = bos
        .and_then(|b| b.as_str().or_else(|| b.get("content")?.as_str()))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: add_bos_token is true but bos_token names no token",
                path.display()
            )
        })?;
    Ok(Some(content.to_string()))
}

/// The byte-level BPE of `words` (vocab.json) and `merges` (merges.txt), each a regular file
/// within the size limit of a tokenizer.
fn from_vocab_and_merges(words: &Path, merges: &Path) -> Result<Tokenizer> {
    let mut paths = Vec::with_capacity(2);
    for (path, what) in [(words, "a vocab.json"), (merges, "a merges.txt")] {
        crate::files::check_regular(path, crate::files::MAX_TOKENIZER_BYTES, what)?;
        let Some(s) = path.to_str() else {
            bail!("{}: the path is not UTF-8", path.display());
        };
        paths.push(s.to_string());
    }
    let [w, m] = paths.as_slice() else {
        bail!("{}: no tokenizer", words.display());
    };
    // Contained: the tokenizers crate may panic on files it does not expect.
    let bpe = crate::contained::contained(|| BPE::from_file(w, m).build())
        .map_err(|p| anyhow::anyhow!("{}: the BPE files failed ({p})", words.display()))?
        .map_err(|e| {
            anyhow::anyhow!(
                "{} with {}: not a BPE vocabulary and merges: {e}",
                words.display(),
                merges.display()
            )
        })?;
    let has_end = bpe.get_vocab().contains_key(END_OF_TEXT);
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::default().add_prefix_space(false)));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.with_post_processor(Some(ByteLevel::default().trim_offsets(false)));
    if has_end {
        tok.add_special_tokens([AddedToken::from(END_OF_TEXT, true)])
            .map_err(|e| anyhow::anyhow!("{}: {END_OF_TEXT}: {e}", words.display()))?;
    }
    Ok(tok)
}
