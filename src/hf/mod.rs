//! Pretrained models from other ecosystems, run by our own candle forward passes so that their
//! attention can be captured and dialled like ours (issues 6 and 17): from a Hugging Face folder
//! (`config.json` + `model.safetensors` + the tokenizer), BERT-family encoders, GPT-2, and
//! LLaMA-architecture and Qwen2 decoders ([`family`] tells which from the config); from a
//! `.gguf` file, LLaMA-family decoders with the tokenizer in its metadata.
//!
//! [`ImportedModel`] is what the CLI and the studio open: any of these, behind the same
//! [`AttentionModel`] interface as our own model, with its tokenizer as one of ours
//! ([`HfTokenizer`]) and its blocks from k-means over the embedding rows or from a lexicon.

pub mod adapter;
pub mod bert;
mod dense;
pub mod detect;
pub mod eval;
mod expansion;
pub mod family;
mod fingerprint;
pub mod folder;
pub mod gguf_llama;
pub mod gpt2;
pub mod hf_llama;
mod labels;
pub mod limits;
pub mod memory;
pub mod safetensors_header;
mod shards;
pub mod tokenizer;
pub mod torch_bin;
pub mod trainable;

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use candle_core::Device;

use crate::data::lexicon::{Lexicon, LexiconError};
use crate::data::tokenizer::Tokenizer;
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;

pub use detect::{detect, locate, DetectError, Located, ModelKind, SUPPORTED};
pub use family::{Family, SUPPORTED_TYPES};
pub use fingerprint::model_sha256;
pub use tokenizer::HfTokenizer;

/// A pretrained model opened from a `.gguf` file or a Hugging Face folder.
pub enum ImportedModel {
    /// A LLaMA-family decoder from a GGUF file.
    Llama(gguf_llama::GgufLlama),
    /// A BERT-family encoder.
    Bert(bert::Bert),
    /// A GPT-2 decoder from a Hugging Face folder.
    Gpt2(gpt2::Gpt2),
    /// A LLaMA-architecture or Qwen2 decoder from a Hugging Face folder (boxed: its config
    /// makes it the largest variant).
    HfLlama(Box<hf_llama::HfLlama>),
    /// A decoder with a fine-tuning adapter merged into it ([`adapter`]).
    Adapted(Box<adapter::Adapted>),
}

impl ImportedModel {
    /// Open `path`: a GGUF file (or a folder holding one), or a Hugging Face folder (or a file
    /// inside it), recognised by their contents ([`detect::locate`]); a folder's family is
    /// its config's `model_type` ([`family::family_of`]), and one we do not run is an error
    /// naming it and listing those we do. A folder's `pytorch_model.bin` is read weights-only
    /// ([`torch_bin`]); a pickled file on its own is refused, never read; a Localist checkpoint
    /// is not an imported model.
    pub fn open(path: &Path, device: &Device) -> Result<Self> {
        let found = locate(path)?;
        let dir = &found.path;
        match found.kind {
            ModelKind::Gguf => {
                // Read once: its architecture picks the reader, which takes the reading on.
                let read = gguf_llama::read_gguf(dir)?;
                let arch = gguf_llama::metadata::architecture_of(&read.2, dir)?;
                Ok(match gpt2::gguf::ARCHES.contains(&arch.as_str()) {
                    true => Self::Gpt2(gpt2::Gpt2::open_gguf(read, dir, &arch, device)?),
                    false => Self::Llama(gguf_llama::GgufLlama::from_read(read, dir, device)?),
                })
            }
            ModelKind::HuggingFace => Ok(match family::family_of(dir)? {
                Family::Bert => Self::Bert(bert::Bert::open(dir, device)?),
                Family::Gpt2 => Self::Gpt2(gpt2::Gpt2::open(dir, device)?),
                Family::GptNeox => Self::Gpt2(gpt2::Gpt2::open_neox(dir, device)?),
                Family::GptNeo => Self::Gpt2(gpt2::Gpt2::open_neo(dir, device)?),
                Family::Phi => Self::Gpt2(gpt2::Gpt2::open_phi(dir, device)?),
                Family::Opt => Self::Gpt2(gpt2::Gpt2::open_opt(dir, device)?),
                Family::GptBigCode => Self::Gpt2(gpt2::Gpt2::open_bigcode(dir, device)?),
                Family::Falcon => Self::Gpt2(gpt2::Gpt2::open_falcon(dir, device)?),
                Family::Bloom => Self::Gpt2(gpt2::Gpt2::open_bloom(dir, device)?),
                Family::Mpt => Self::Gpt2(gpt2::Gpt2::open_mpt(dir, device)?),
                Family::GptJ => Self::Gpt2(gpt2::Gpt2::open_gptj(dir, device)?),
                Family::Starcoder2 => Self::Gpt2(gpt2::Gpt2::open_starcoder2(dir, device)?),
                Family::CodeGen => Self::Gpt2(gpt2::Gpt2::open_codegen(dir, device)?),
                f @ (Family::Llama
                | Family::Qwen2
                | Family::Mistral
                | Family::Qwen3
                | Family::Phi3
                | Family::Gemma
                | Family::Gemma2
                | Family::Gemma3
                | Family::Olmo2
                | Family::Olmo3
                | Family::SmolLm3
                | Family::Granite
                | Family::Olmo
                | Family::StableLm) => {
                    Self::HfLlama(Box::new(hf_llama::HfLlama::open(dir, f, device)?))
                }
            }),
            ModelKind::Adapter => Ok(Self::Adapted(Box::new(adapter::open_adapted(dir, device)?))),
            ModelKind::Checkpoint => bail!(
                "{}: a Localist checkpoint, not an imported model. Supported: {SUPPORTED}",
                path.display()
            ),
        }
    }

    /// True unless `path` is one of our checkpoints ([`detect()`]): imported models, and paths
    /// that are no model at all, go to [`ImportedModel::open`], whose error names what is
    /// missing (a checkpoint without `blocks.json`, say).
    pub fn looks_imported(path: &Path) -> bool {
        !matches!(detect(path), Ok(ModelKind::Checkpoint))
    }

    /// The forward pass the dial acts on.
    pub fn model(&self) -> &dyn AttentionModel {
        match self {
            Self::Llama(m) => m,
            Self::Bert(m) => m,
            Self::Gpt2(m) => m,
            Self::HfLlama(m) => &m.decoder,
            Self::Adapted(a) => a.base.model(),
        }
    }

    /// Its views with bf16 weight products (a LLaMA-family decoder on a CPU with AVX-512
    /// BF16; see [`gguf_llama::native_fast`]), for a quick preview of a dial change.
    pub fn preview(&self) -> Option<gguf_llama::native_fast::Bf16Preview<'_>> {
        match self {
            Self::Llama(m) => m.preview(),
            Self::HfLlama(m) => m.decoder.preview(),
            Self::Bert(_) | Self::Gpt2(_) | Self::Adapted(_) => None,
        }
    }

    /// The file or folder it came from.
    pub fn path(&self) -> &Path {
        match self {
            Self::Llama(m) => &m.path,
            Self::Bert(m) => &m.dir,
            Self::Gpt2(m) => &m.dir,
            Self::HfLlama(m) => &m.dir,
            Self::Adapted(a) => &a.dir,
        }
    }

    /// Number of weights.
    pub fn parameters(&self) -> usize {
        match self {
            Self::Llama(m) => m.parameters,
            Self::Bert(m) => m.parameters(),
            Self::Gpt2(m) => m.parameters,
            Self::HfLlama(m) => m.decoder.parameters,
            Self::Adapted(a) => a.base.parameters(),
        }
    }

    /// Width d.
    pub fn d_model(&self) -> usize {
        match self {
            Self::Llama(m) => m.config.d_model,
            Self::Bert(m) => m.config.hidden_size,
            Self::Gpt2(m) => m.config.n_embd,
            Self::HfLlama(m) => m.decoder.config.d_model,
            Self::Adapted(a) => a.base.d_model(),
        }
    }

    /// The tokenizer, as one of ours. A folder's adds the special tokens its `tokenizer.json`
    /// asks for, as `transformers` does (BERT's \[CLS\] … \[SEP\], TinyLlama's `<s>`); a GGUF
    /// decoder's adds none (its metadata says so).
    pub fn tokenizer(&self) -> HfTokenizer {
        match self {
            Self::Llama(m) => HfTokenizer::new(m.hf_tokenizer().clone(), true, true),
            Self::Bert(m) => HfTokenizer::new(m.hf_tokenizer().clone(), true, false),
            Self::Gpt2(m) => HfTokenizer::new(m.hf_tokenizer().clone(), true, true),
            Self::HfLlama(m) => HfTokenizer::new(m.decoder.hf_tokenizer().clone(), true, true),
            Self::Adapted(a) => a.base.tokenizer(),
        }
    }

    /// The input-embedding rows, one per vocabulary id.
    pub fn embedding_rows(&self) -> Result<Vec<Vec<f32>>> {
        match self {
            Self::Llama(m) => m.embedding_rows(),
            Self::Bert(m) => m.embedding_rows(),
            Self::Gpt2(m) => m.embedding_rows(),
            Self::HfLlama(m) => m.decoder.embedding_rows(),
            Self::Adapted(a) => a.base.embedding_rows(),
        }
    }

    /// The decoder inside that fine-tuning and adapters work on (LLaMA-family or GPT-2,
    /// adapted or not); None for an encoder.
    pub fn trainable(&self) -> Option<&dyn trainable::TrainableDecoder> {
        match self {
            Self::Llama(m) => Some(m),
            Self::HfLlama(m) => Some(&m.decoder),
            Self::Gpt2(m) => Some(m),
            Self::Adapted(a) => a.base.trainable(),
            Self::Bert(_) => None,
        }
    }

    /// [`trainable`](Self::trainable), to change.
    pub fn trainable_mut(&mut self) -> Option<&mut dyn trainable::TrainableDecoder> {
        match self {
            Self::Llama(m) => Some(m),
            Self::HfLlama(m) => Some(&mut m.decoder),
            Self::Gpt2(m) => Some(m),
            Self::Adapted(a) => a.base.trainable_mut(),
            Self::Bert(_) => None,
        }
    }

    /// The LLaMA-family decoder inside (GGUF, LLaMA or Qwen2 folder, adapted).
    pub fn decoder(&self) -> Option<&gguf_llama::GgufLlama> {
        match self {
            Self::Llama(m) => Some(m),
            Self::HfLlama(m) => Some(&m.decoder),
            Self::Adapted(a) => a.base.decoder(),
            Self::Bert(_) | Self::Gpt2(_) => None,
        }
    }

    /// [`decoder`](Self::decoder), to change.
    pub fn decoder_mut(&mut self) -> Option<&mut gguf_llama::GgufLlama> {
        match self {
            Self::Llama(m) => Some(m),
            Self::HfLlama(m) => Some(&mut m.decoder),
            Self::Adapted(a) => a.base.decoder_mut(),
            Self::Bert(_) | Self::Gpt2(_) => None,
        }
    }

    /// Blocks by k-means (k clusters) over the embedding rows, named with `tok` (this model's
    /// [`tokenizer`](Self::tokenizer), built once by the caller: it decodes every id). A `k`
    /// of 0, above [`limits::MAX_CLUSTERS`] or above the vocabulary is refused before any work
    /// (k-means time grows with k).
    pub fn kmeans_blocks(&self, tok: &HfTokenizer, k: usize, seed: u64) -> Result<BlockMap> {
        let vocab = self.model().dims().vocab;
        limits::check_clusters(k, vocab)
            .map_err(|e| anyhow::anyhow!("{}: {e}", self.path().display()))?;
        let rows = self.embedding_rows()?;
        Ok(eval::kmeans_blocks(rows, |id| tok.token_str(id), k, seed))
    }

    /// The block map saved beside this model ([`blocks_path`](Self::blocks_path)): `Ok(None)`
    /// when there is none; an error naming the file when it is not a regular file within the
    /// size limit, not a block map, or does not fit this model's vocabulary and positions.
    pub fn saved_blocks(&self, tok: &HfTokenizer) -> Result<Option<BlockMap>> {
        let path = self.blocks_path();
        if path.symlink_metadata().is_err() {
            return Ok(None);
        }
        let bytes =
            crate::files::read_bytes(&path, crate::files::MAX_CONFIG_BYTES, "a blocks.json")?;
        let map: BlockMap = serde_json::from_slice(&bytes)
            .map_err(|e| anyhow::anyhow!("{}: not a block map: {e}", path.display()))?;
        map.validate(tok.vocab_size(), self.model().dims().max_len)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(Some(map))
    }

    /// The default place of a block map saved for this model: `<file>.blocks.json` beside a
    /// `.gguf` file, `blocks.json` inside a folder.
    pub fn blocks_path(&self) -> PathBuf {
        let file = match self {
            Self::Llama(_) => true,
            Self::Gpt2(m) => m.from_gguf(),
            _ => false,
        };
        match self {
            _ if file => {
                let mut s = self.path().to_path_buf().into_os_string();
                s.push(".blocks.json");
                PathBuf::from(s)
            }
            Self::Adapted(a) => a.dir.join("blocks.json"),
            _ => self.path().join("localist-blocks.json"),
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

/// The text of `ids`. Contained: the tokenizers crate's decoders may panic on settings it does
/// not expect (a `Strip` decoder asked to strip more than a token has, say).
pub fn decode_ids(tok: &tokenizers::Tokenizer, ids: &[u32]) -> Result<String> {
    crate::contained::contained(|| tok.decode(ids, false))
        .map_err(|p| anyhow::anyhow!("decoding: the tokenizer failed ({p})"))?
        .map_err(|e| anyhow::anyhow!("decoding: {e}"))
}

/// Token ids of `text`, with the tokenizer's special tokens when `add_special` (BERT's \[CLS\] …
/// \[SEP\]).
pub fn encode_ids(tok: &tokenizers::Tokenizer, text: &str, add_special: bool) -> Result<Vec<u32>> {
    let enc = crate::contained::contained(|| tok.encode(text, add_special))
        .map_err(|p| anyhow::anyhow!("tokenizing: the tokenizer failed ({p})"))?
        .map_err(|e| anyhow::anyhow!("tokenizing: {e}"))?;
    Ok(enc.get_ids().to_vec())
}
