//! Opening a model from a path, the one place that tells our checkpoints from imported models
//! (a `.gguf` file or a Hugging Face folder): every job that takes "a checkpoint or an imported
//! model" opens it here, so the detection changes in one place.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::train_job::default_device;
use crate::hf::{HfTokenizer, ImportedModel};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{load_checkpoint, Checkpoint};

/// A model opened from disk, with its tokenizer.
pub enum OpenModel {
    /// One of our checkpoints (on the default device).
    Checkpoint {
        /// Its directory.
        path: PathBuf,
        /// Weights, blocks and metadata.
        checkpoint: Box<Checkpoint>,
        /// The tokenizer recorded in its `config.json`.
        tokenizer: Box<dyn Tokenizer>,
    },
    /// An imported model (on the CPU).
    Imported {
        /// The model.
        model: Box<ImportedModel>,
        /// Its tokenizer.
        tokenizer: Box<HfTokenizer>,
    },
}

impl OpenModel {
    /// Open `path`: an imported model when it looks like one, else a checkpoint.
    pub fn open(path: &Path) -> Result<Self> {
        if ImportedModel::looks_imported(path) {
            let model = ImportedModel::open(path, &candle_core::Device::Cpu)?;
            let tokenizer = Box::new(model.tokenizer());
            return Ok(Self::Imported {
                model: Box::new(model),
                tokenizer,
            });
        }
        let (checkpoint, tokenizer) = open_checkpoint(path)?;
        Ok(Self::Checkpoint {
            path: path.to_path_buf(),
            checkpoint: Box::new(checkpoint),
            tokenizer,
        })
    }

    /// The network.
    pub fn model(&self) -> &dyn AttentionModel {
        match self {
            Self::Checkpoint { checkpoint, .. } => &checkpoint.model,
            Self::Imported { model, .. } => model.model(),
        }
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &dyn Tokenizer {
        match self {
            Self::Checkpoint { tokenizer, .. } => tokenizer.as_ref(),
            Self::Imported { tokenizer, .. } => tokenizer.as_ref(),
        }
    }

    /// The blocks to use: a checkpoint's own; for an imported model the blocks saved beside it,
    /// else `clusters` k-means clusters of its embedding rows.
    pub fn saved_or_kmeans_blocks(&self, clusters: usize) -> Result<BlockMap> {
        match self {
            Self::Checkpoint { checkpoint, .. } => Ok(checkpoint.blocks.clone()),
            Self::Imported { model, tokenizer } => match model.saved_blocks(tokenizer)? {
                Some(map) => Ok(map),
                None => model.kmeans_blocks(tokenizer, clusters, 0),
            },
        }
    }
}

/// Load a checkpoint (on the default device) and build its tokenizer. An imported model is
/// refused saying what it is and where it is measured instead ([`not_imported`]).
pub fn open_checkpoint(dir: &Path) -> Result<(Checkpoint, Box<dyn Tokenizer>)> {
    not_imported(dir)?;
    let ck = load_checkpoint(dir, &default_device())?;
    let tok = checkpoint_tokenizer(&ck, dir)?;
    Ok((ck, tok))
}

/// A checkpoint's tokenizer.
pub fn checkpoint_tokenizer(ck: &Checkpoint, dir: &Path) -> Result<Box<dyn Tokenizer>> {
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", dir.display()))?;
    spec.build()
        .with_context(|| format!("{}: tokenizer", dir.join("config.json").display()))
}

/// Anchor tokens per block recorded in a checkpoint.
pub fn checkpoint_anchors(ck: &Checkpoint) -> Vec<(String, Vec<String>)> {
    crate::engine::anchors::recorded_anchor_tokens(&ck.meta.training)
}

/// An error saying what `path` is when it is an imported model (a `.gguf` file, a Hugging
/// Face folder, an adapter) where a command takes one of our checkpoints: reading it as a
/// checkpoint said only "config.json: Not a directory" of a `.gguf` file, or "missing field
/// `version`" of a folder's config.
fn not_imported(path: &Path) -> Result<()> {
    use crate::hf::ModelKind;
    let what = match crate::hf::detect(path) {
        Ok(ModelKind::Gguf) => "a GGUF file",
        Ok(ModelKind::HuggingFace) => "a Hugging Face folder",
        Ok(ModelKind::Adapter) => "an adapter folder",
        _ => return Ok(()),
    };
    anyhow::bail!(
        "{}: {what} (an imported model), not a Localist checkpoint: this command takes a folder \
         `localist train` wrote. An imported model is measured with its blocks (k-means, a \
         lexicon or those saved beside it) and rules by `localist eval -c {} --clusters K | \
         --lexicon FILE --rules FILE`, by `capture`, and in the studio",
        path.display(),
        path.display()
    )
}
