//! Checkpoints: a directory with `model.safetensors`, `config.json` and `blocks.json`
//! (and optionally `optimizer.safetensors`), written atomically.
//!
//! The directory is first written under a temporary sibling name and then renamed into place,
//! so a crash mid-save never leaves a half-written checkpoint where a good one stood. Loading
//! checks every file and every tensor shape and names the file in its error.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::blocks::BlockMap;
use crate::model::config::ModelConfig;
use crate::model::dial::DialSetting;
use crate::model::transformer::{LocalistModel, ModelError};

/// Version of the checkpoint layout written by this build.
pub const CHECKPOINT_VERSION: u32 = 1;

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
    /// Optimizer state tensors, when saved.
    pub optimizer: Option<HashMap<String, Tensor>>,
    /// Directory it was loaded from.
    pub dir: PathBuf,
}

/// Errors reading or writing a checkpoint; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Filesystem error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON file does not parse.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// A safetensors file is truncated or corrupt.
    #[error("{path}: cannot read tensors (truncated or corrupt file?): {message}")]
    Tensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// The tensors do not fit the config.
    #[error("{path}: {source}")]
    Model {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: ModelError,
    },
    /// Written by a newer build.
    #[error("{path}: checkpoint version {found} is newer than this build's {CHECKPOINT_VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), CheckpointError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| CheckpointError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    fs::write(path, text).map_err(io_err(path))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, CheckpointError> {
    let text = fs::read_to_string(path).map_err(io_err(path))?;
    serde_json::from_str(&text).map_err(|source| CheckpointError::Json {
        path: path.to_path_buf(),
        source,
    })
}

fn write_tensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), CheckpointError> {
    candle_core::safetensors::save(tensors, path).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Read a safetensors file onto `device`, naming the file in any error.
pub fn read_tensors(
    path: &Path,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| CheckpointError::Tensors {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Write a checkpoint directory atomically (temp dir + rename).
pub fn save_checkpoint(
    dir: &Path,
    meta: &CheckpointMeta,
    blocks: &BlockMap,
    model: &LocalistModel,
    optimizer: Option<&HashMap<String, Tensor>>,
) -> Result<(), CheckpointError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "checkpoint".into());
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let weights: HashMap<String, Tensor> = model.params.tensors().into_iter().collect();
    write_tensors(&tmp.join("model.safetensors"), &weights)?;
    if let Some(opt) = optimizer {
        write_tensors(&tmp.join("optimizer.safetensors"), opt)?;
    }
    write_json(&tmp.join("config.json"), meta)?;
    write_json(&tmp.join("blocks.json"), blocks)?;
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &old).map_err(io_err(dir))?;
    }
    fs::rename(&tmp, dir).map_err(io_err(dir))?;
    if old.exists() {
        fs::remove_dir_all(&old).map_err(io_err(&old))?;
    }
    Ok(())
}

/// Load and check a checkpoint directory.
pub fn load_checkpoint(dir: &Path, device: &Device) -> Result<Checkpoint, CheckpointError> {
    let cfg_path = dir.join("config.json");
    let meta: CheckpointMeta = read_json(&cfg_path)?;
    if meta.version > CHECKPOINT_VERSION {
        return Err(CheckpointError::Version {
            path: cfg_path,
            found: meta.version,
        });
    }
    meta.model
        .validate()
        .map_err(|e| CheckpointError::Tensors {
            path: cfg_path.clone(),
            message: e.to_string(),
        })?;
    let blocks: BlockMap = read_json(&dir.join("blocks.json"))?;
    let w_path = dir.join("model.safetensors");
    let tensors = read_tensors(&w_path, device)?;
    let model = LocalistModel::from_tensors(&meta.model, &tensors, blocks.num_blocks(), device)
        .map_err(|source| CheckpointError::Model {
            path: w_path.clone(),
            source,
        })?;
    let opt_path = dir.join("optimizer.safetensors");
    let optimizer = if opt_path.exists() {
        Some(read_tensors(&opt_path, device)?)
    } else {
        None
    };
    Ok(Checkpoint {
        meta,
        blocks,
        model,
        optimizer,
        dir: dir.to_path_buf(),
    })
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
        let io = |source| CheckpointError::Io {
            path: path.clone(),
            source,
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
