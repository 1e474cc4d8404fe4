//! Pretrained models from other ecosystems, run by our own candle forward passes so that their
//! attention can be captured and dialled like ours (issue 6): BERT-family encoders from a
//! Hugging Face folder (`config.json` + `model.safetensors` + `tokenizer.json`), and
//! LLaMA-family decoders from a `.gguf` file with the tokenizer in its metadata.
//!
//! [`ImportedModel`] is what the CLI and the studio open: either kind, behind the same
//! [`AttentionModel`] interface as our own model, with its tokenizer as one of ours
//! ([`HfTokenizer`]) and its blocks from k-means over the embedding rows or from a lexicon.

pub mod bert;
pub mod eval;
pub mod gguf_llama;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::data::lexicon::{Lexicon, LexiconError};
use crate::data::tokenizer::Tokenizer;
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;

/// What can be opened, for error messages.
pub const SUPPORTED: &str = "a .gguf file of a LLaMA-family decoder, or a Hugging Face folder \
     of a BERT-family encoder (config.json + model.safetensors + tokenizer.json)";

/// A pretrained model opened from a `.gguf` file or a Hugging Face folder.
pub enum ImportedModel {
    /// A LLaMA-family decoder.
    Llama(gguf_llama::GgufLlama),
    /// A BERT-family encoder.
    Bert(bert::Bert),
}

impl ImportedModel {
    /// Open `path`: a `.gguf` file, or a folder (or a file inside it) with `config.json`,
    /// `model.safetensors` and `tokenizer.json`. A pickled checkpoint is refused, never read.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        if !path.exists() {
            bail!("{}: no such file or folder", path.display());
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if path.is_file() {
            match ext.as_str() {
                "gguf" => return Ok(Self::Llama(gguf_llama::GgufLlama::open(path, device)?)),
                "bin" | "pt" | "pth" | "ckpt" | "pkl" => bail!(
                    "{}: pickled PyTorch checkpoints are never loaded (unpickling runs code); \
                     convert it to safetensors. Supported: {SUPPORTED}",
                    path.display()
                ),
                "safetensors" | "json" => {
                    if let Some(dir) = path.parent() {
                        return Ok(Self::Bert(bert::Bert::open(dir, device)?));
                    }
                }
                _ => {}
            }
            bail!(
                "{}: not a model this studio opens. Supported: {SUPPORTED}",
                path.display()
            );
        }
        if path.join("config.json").exists()
            || path.join("model.safetensors").exists()
            || path.join("pytorch_model.bin").exists()
        {
            return Ok(Self::Bert(bert::Bert::open(path, device)?));
        }
        // A folder with exactly one .gguf file in it.
        let ggufs: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
            .collect();
        match ggufs.as_slice() {
            [one] => Ok(Self::Llama(gguf_llama::GgufLlama::open(one, device)?)),
            [] => bail!(
                "{}: no config.json, model.safetensors or .gguf file here. Supported: {SUPPORTED}",
                path.display()
            ),
            _ => bail!(
                "{}: {} .gguf files here; open one of them",
                path.display(),
                ggufs.len()
            ),
        }
    }

    /// True when `path` looks like an imported model rather than one of our checkpoints (a
    /// `.gguf` file, or a folder with `model.safetensors`/`config.json` but no `blocks.json`).
    pub fn looks_imported(path: &Path) -> bool {
        if path.is_file() {
            return true;
        }
        !path.join("blocks.json").exists()
            && (path.join("model.safetensors").exists()
                || path.join("pytorch_model.bin").exists()
                || std::fs::read_dir(path).is_ok_and(|mut d| {
                    d.any(|e| {
                        e.ok()
                            .is_some_and(|e| e.path().extension().is_some_and(|x| x == "gguf"))
                    })
                }))
    }

    /// The forward pass the dial acts on.
    pub fn model(&self) -> &dyn AttentionModel {
        match self {
            Self::Llama(m) => m,
            Self::Bert(m) => m,
        }
    }

    /// The file or folder it came from.
    pub fn path(&self) -> &Path {
        match self {
            Self::Llama(m) => &m.path,
            Self::Bert(m) => &m.dir,
        }
    }

    /// "LLaMA decoder (GGUF)" or "BERT encoder".
    pub fn kind_label(&self) -> &'static str {
        match self {
            Self::Llama(_) => "LLaMA-family decoder (GGUF, weights dequantized to f32)",
            Self::Bert(_) => "BERT-family encoder (bidirectional; no next-token head)",
        }
    }

    /// A short name of the architecture.
    pub fn arch_label(&self) -> &'static str {
        match self {
            Self::Llama(_) => "llama",
            Self::Bert(_) => "bert",
        }
    }

    /// Number of weights.
    pub fn parameters(&self) -> usize {
        match self {
            Self::Llama(m) => m.parameters,
            Self::Bert(m) => m.parameters(),
        }
    }

    /// Width d.
    pub fn d_model(&self) -> usize {
        match self {
            Self::Llama(m) => m.config.d_model,
            Self::Bert(m) => m.config.hidden_size,
        }
    }

    /// The tokenizer, as one of ours.
    pub fn tokenizer(&self) -> HfTokenizer {
        match self {
            Self::Llama(m) => HfTokenizer::new(m.hf_tokenizer().clone(), false, true),
            Self::Bert(m) => HfTokenizer::new(m.hf_tokenizer().clone(), true, false),
        }
    }

    /// The input-embedding rows, one per vocabulary id.
    pub fn embedding_rows(&self) -> Result<Vec<Vec<f32>>> {
        match self {
            Self::Llama(m) => m.embedding_rows(),
            Self::Bert(m) => m.embedding_rows(),
        }
    }

    /// Blocks by k-means (k clusters) over the embedding rows, named with `tok` (this model's
    /// [`tokenizer`](Self::tokenizer), built once by the caller: it decodes every id).
    pub fn kmeans_blocks(&self, tok: &HfTokenizer, k: usize, seed: u64) -> Result<BlockMap> {
        let rows = self.embedding_rows()?;
        Ok(eval::kmeans_blocks(rows, |id| tok.token_str(id), k, seed))
    }

    /// The default place of a block map saved for this model: `<file>.blocks.json` beside a
    /// `.gguf` file, `blocks.json` inside a folder.
    pub fn blocks_path(&self) -> PathBuf {
        match self {
            Self::Llama(m) => {
                let mut s = m.path.clone().into_os_string();
                s.push(".blocks.json");
                PathBuf::from(s)
            }
            Self::Bert(m) => m.dir.join("localist-blocks.json"),
        }
    }
}

/// Blocks of an imported model from a lexicon: each word goes with its block, and so does the
/// same word after a space (byte-level BPE spells " Paris" and "Paris" as two tokens). A word
/// that is neither one token nor one token after a space is an error naming its line.
pub fn lexicon_blocks(lex: &Lexicon, tok: &HfTokenizer) -> Result<BlockMap, LexiconError> {
    let mut pairs: Vec<(u32, String)> = Vec::new();
    for entry in &lex.entries {
        let name = entry.block.clone();
        let plain = tok.token_id(&entry.word);
        let spaced = tok.token_id(&format!(" {}", entry.word));
        if plain.is_none() && spaced.is_none() {
            return Err(LexiconError::UnknownToken {
                path: lex.path.clone(),
                line: entry.line,
                word: entry.word.clone(),
            });
        }
        for id in [plain, spaced].into_iter().flatten() {
            pairs.push((id, name.clone()));
        }
    }
    Ok(BlockMap::from_assignments(
        tok.vocab_size(),
        &pairs,
        &format!("lexicon {}", lex.path.display()),
    ))
}

/// Token ids of `text`, with the tokenizer's special tokens when `add_special` (BERT's [CLS] …
/// [SEP]).
pub fn encode_ids(tok: &tokenizers::Tokenizer, text: &str, add_special: bool) -> Result<Vec<u32>> {
    let enc = tok
        .encode(text, add_special)
        .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
    Ok(enc.get_ids().to_vec())
}

/// A Hugging Face tokenizer as one of ours: `encode` adds the model's special tokens when it
/// expects them (BERT's [CLS] … [SEP]); a token's surface string is its decoded text for
/// byte-level BPE (" Paris", not "ĠParis") and its vocabulary entry otherwise ("##ing").
#[derive(Clone)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    add_special: bool,
    strs: Vec<String>,
    ids: HashMap<String, u32>,
}

impl HfTokenizer {
    /// Wrap `inner`; `byte_level` selects decoded surface strings.
    pub fn new(inner: tokenizers::Tokenizer, add_special: bool, byte_level: bool) -> Self {
        let n = inner.get_vocab_size(true);
        let strs: Vec<String> = (0..n as u32)
            .map(|i| {
                if byte_level {
                    inner
                        .decode(&[i], false)
                        .unwrap_or_else(|_| format!("#{i}"))
                } else {
                    inner.id_to_token(i).unwrap_or_else(|| format!("#{i}"))
                }
            })
            .collect();
        let mut ids = HashMap::with_capacity(n);
        for (i, s) in strs.iter().enumerate() {
            ids.entry(s.clone()).or_insert(i as u32);
        }
        Self {
            inner,
            add_special,
            strs,
            ids,
        }
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> Vec<u32> {
        encode_ids(&self.inner, text, self.add_special).unwrap_or_default()
    }

    fn decode(&self, ids: &[u32]) -> String {
        self.inner
            .decode(ids, false)
            .unwrap_or_else(|e| format!("<undecodable: {e}>"))
    }

    fn vocab_size(&self) -> usize {
        self.strs.len()
    }

    fn token_str(&self, id: u32) -> String {
        self.strs
            .get(id as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{id}"))
    }

    fn token_id(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }
}

/// SHA-256 of a model on disk, whatever its kind, without loading it: a Localist checkpoint's
/// ([`crate::model::checkpoint::checkpoint_sha256`]), or what an imported model computes with
/// in the same scheme: the `.gguf` file ([`ImportedModel::path`]), or a folder's config.json,
/// model.safetensors and tokenizer.json.
pub fn model_sha256(path: &Path) -> Result<String> {
    if !ImportedModel::looks_imported(path) {
        return Ok(crate::model::checkpoint::checkpoint_sha256(path)?);
    }
    let files: Vec<(&str, PathBuf)> = if path.is_file() {
        vec![("model.gguf", path.to_path_buf())]
    } else {
        ["config.json", "model.safetensors", "tokenizer.json"]
            .into_iter()
            .map(|n| (n, path.join(n)))
            .collect()
    };
    Ok(crate::model::checkpoint::files_sha256(&files)?)
}
