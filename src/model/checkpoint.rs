//! Checkpoints: a directory with `model.safetensors`, `config.json` and `blocks.json`
//! (and optionally `optimizer.safetensors`), written atomically.
//!
//! The directory is first written under a temporary sibling name and then renamed into place,
//! so a crash mid-save never leaves a half-written checkpoint where a good one stood. Loading
//! checks every file before trusting it (see `checkpoint_read`) and names the file in its
//! error.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::blocks::BlockMap;
use crate::model::checkpoint_error::io_err;
use crate::model::checkpoint_read::{check_meta, read_float_tensors, read_model_weights};
pub use crate::model::checkpoint_read::{recorded_token_count, sha256_hex, MAX_WEIGHTS_BYTES};
use crate::model::config::ModelConfig;
use crate::model::dial::DialSetting;
use crate::model::transformer::LocalistModel;
use crate::model::weights_file::ANY_DTYPES;

pub use crate::model::checkpoint_error::{CheckpointError, CHECKPOINT_VERSION};

/// Contents of `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Layout version.
    pub version: u32,
    /// Model shape.
    pub model: ModelConfig,
    /// Tokenizer description (interpreted by `data`).
    pub tokenizer: serde_json::Value,
    /// Training facts: λ_train, steps, corpus and its hash, seed, losses (interpreted by `train`).
    #[serde(default)]
    pub training: serde_json::Value,
    /// The inference dial saved with the model.
    #[serde(default)]
    pub dial: DialSetting,
    /// SHA-256 (hex, as `sha256sum` prints it) of `model.safetensors`, written by
    /// [`save_checkpoint`] and checked by [`load_checkpoint`]: a weight changed after saving
    /// (a flipped byte keeps every value finite and every shape right) is refused instead of
    /// being measured. Absent in checkpoints saved before it existed, which load unchecked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

/// A loaded checkpoint.
#[derive(Debug)]
pub struct Checkpoint {
    /// Metadata from `config.json`.
    pub meta: CheckpointMeta,
    /// Block map from `blocks.json`.
    pub blocks: BlockMap,
    /// The model.
    pub model: LocalistModel,
    /// Directory it was loaded from.
    pub dir: PathBuf,
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(value).map_err(|cause| CheckpointError::Json {
        path: path.to_path_buf(),
        cause,
    })?;
    fs::write(path, text).map_err(io_err(path))
}

/// Read a JSON file of a checkpoint (regular files only, at most
/// [`MAX_CONFIG_BYTES`](crate::files::MAX_CONFIG_BYTES)).
fn read_json<T: for<'de> Deserialize<'de>>(
    path: &Path,
    what: &'static str,
) -> Result<T, CheckpointError> {
    let text = crate::files::read_text(path, crate::files::MAX_CONFIG_BYTES, what)?;
    crate::files::check_single_keys(&text).map_err(|message| CheckpointError::Invalid {
        path: path.to_path_buf(),
        message,
    })?;
    serde_json::from_str(&text).map_err(|cause| CheckpointError::Json {
        path: path.to_path_buf(),
        cause,
    })
}

/// Write `tensors` as a safetensors file at `path`, with the mode a new file gets
/// ([`crate::files::give_default_mode`]): a checkpoint's weights and optimizer state, an
/// adapter's weights.
pub(crate) fn write_tensors(
    path: &Path,
    tensors: &HashMap<String, Tensor>,
) -> Result<(), CheckpointError> {
    candle_core::safetensors::save(tensors, path).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    crate::files::give_default_mode(path).map_err(io_err(path))
}

/// Read a safetensors file of tensors (floats, or integer batches and indices) onto `device` (regular files only, at most
/// [`MAX_WEIGHTS_BYTES`]), checking its header before building anything and refusing
/// non-finite values; errors name the file and the tensor.
pub fn read_tensors(
    path: &Path,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    read_float_tensors(path, device, &ANY_DTYPES)
}

/// The file of a checkpoint's optimizer state (Adam moments of every parameter, the anchor
/// keys included, whose shape follows the block count).
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Whether the checkpoint folder `dir` holds an optimizer state ([`OPTIMIZER_FILE`]; a link
/// counts, so that a broken one is reported by the read, not taken for "none").
pub fn has_optimizer_state(dir: &Path) -> bool {
    fs::symlink_metadata(dir.join(OPTIMIZER_FILE)).is_ok()
}

/// Write a checkpoint directory atomically (temp dir + rename). Weights holding NaN or ±inf
/// are refused before anything is written, naming the tensor. `config.json` records the
/// SHA-256 of the weights as written (whatever `meta.weights_sha256` held).
pub fn save_checkpoint(
    dir: &Path,
    meta: &CheckpointMeta,
    blocks: &BlockMap,
    model: &LocalistModel,
    optimizer: Option<&HashMap<String, Tensor>>,
) -> Result<(), CheckpointError> {
    // A checkpoint that could not be loaded is never written: the folder keeps what it had.
    for (name, t) in model.params.tensors() {
        crate::model::weights_file::check_finite(&name, &t).map_err(|e| {
            CheckpointError::Invalid {
                path: dir.join("model.safetensors"),
                message: format!("not written, the folder keeps what it had: {e}"),
            }
        })?;
    }
    crate::files::replace_dir(
        dir,
        |p, e| io_err(p)(e),
        |tmp| {
            let weights: HashMap<String, Tensor> = model.params.tensors().into_iter().collect();
            let weights_path = tmp.join("model.safetensors");
            write_tensors(&weights_path, &weights)?;
            if let Some(opt) = optimizer {
                write_tensors(&tmp.join(OPTIMIZER_FILE), opt)?;
            }
            let bytes = crate::files::read_bytes(&weights_path, u64::MAX, "a weights file")?;
            let meta = CheckpointMeta {
                weights_sha256: Some(sha256_hex(&bytes)),
                ..meta.clone()
            };
            write_json(&tmp.join("config.json"), &meta)?;
            write_json(&tmp.join("blocks.json"), blocks)
        },
    )
}

/// Load and check a checkpoint directory. Each file is checked before the next is read and
/// before anything is allocated from it: `config.json` (sizes within
/// [`LIMITS`](crate::model::config::LIMITS), finite dial, tokenizer the size of the
/// vocabulary), `blocks.json` (against the vocabulary and itself), then `model.safetensors`
/// (header against the config and the file's size, F32 only, every value finite, and the
/// SHA-256 `config.json` recorded when it was saved).
pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<Checkpoint, CheckpointError> {
    let cfg_path = dir.join("config.json");
    let meta: CheckpointMeta = read_json(&cfg_path, "a checkpoint's config")?;
    check_meta(
        &meta.model,
        &meta.dial,
        &meta.tokenizer,
        meta.version,
        &cfg_path,
    )?;
    if let Some(sha) = &meta.weights_sha256 {
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CheckpointError::Invalid {
                path: cfg_path,
                message: format!(
                    "weights_sha256 {sha:?} is not a SHA-256 (64 hex digits); delete the line \
                     to load the weights unchecked"
                ),
            });
        }
    }
    let blocks_path = dir.join("blocks.json");
    let blocks: BlockMap = read_json(&blocks_path, "a checkpoint's block map")?;
    blocks
        .validate(meta.model.vocab_size, meta.model.max_seq_len)
        .map_err(|e| CheckpointError::Invalid {
            path: blocks_path.clone(),
            message: format!("{e} (config.json: vocab_size {})", meta.model.vocab_size),
        })?;
    let w_path = dir.join("model.safetensors");
    let tensors = read_model_weights(
        &w_path,
        &meta.model,
        blocks.num_blocks(),
        meta.weights_sha256.as_deref(),
        device,
    )?;
    let model = LocalistModel::from_tensors(&meta.model, &tensors, blocks.num_blocks(), device)
        .map_err(|cause| CheckpointError::Model {
            path: w_path.clone(),
            cause,
        })?;
    Ok(Checkpoint {
        meta,
        blocks,
        model,
        dir: dir.to_path_buf(),
    })
}

impl Checkpoint {
    /// The optimizer state saved beside the weights (`optimizer.safetensors`), or None when
    /// none was saved. Read only by a resumed training run, so a damaged one does not stop
    /// anything that only runs the model.
    pub fn load_optimizer(
        &self,
        device: &Device,
    ) -> Result<Option<HashMap<String, Tensor>>, CheckpointError> {
        if !has_optimizer_state(&self.dir) {
            return Ok(None);
        }
        let path = self.dir.join(OPTIMIZER_FILE);
        Ok(Some(read_tensors(&path, device)?))
    }
}

/// SHA-256 (hex) of a checkpoint's contents: `config.json`, `blocks.json` and
/// `model.safetensors`, each preceded by its name and length, so the hash changes when any of
/// them does (the optimizer state is left out: it does not change what the model computes).
/// Sessions and audit reports record it to detect a checkpoint altered after the fact.
pub fn checkpoint_sha256(dir: &Path) -> Result<String, CheckpointError> {
    let files: Vec<(&str, std::path::PathBuf)> =
        ["config.json", "blocks.json", "model.safetensors"]
            .into_iter()
            .map(|name| (name, dir.join(name)))
            .collect();
    files_sha256(&files)
}

/// SHA-256 (hex) of files in order, each preceded by its name and length (the scheme of
/// [`checkpoint_sha256`], shared with imported models).
pub fn files_sha256(files: &[(&str, std::path::PathBuf)]) -> Result<String, CheckpointError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut hasher = Sha256::new();
    for (name, path) in files {
        crate::files::check_regular(path, u64::MAX, "a checkpoint file")?;
        let io = |cause| CheckpointError::Io {
            path: path.clone(),
            cause,
        };
        let mut file = fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        hasher.update(name.as_bytes());
        hasher.update(len.to_le_bytes());
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(buf.get(..n).unwrap_or_default());
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}
