//! The error of reading or writing a checkpoint, shared by `checkpoint` (the folder) and
//! `checkpoint_read` (the checks on each file).

use std::path::{Path, PathBuf};

use crate::files::FileError;
use crate::model::transformer::ModelError;

/// Version of the checkpoint layout written by this build.
pub const CHECKPOINT_VERSION: u32 = 1;

/// Errors reading or writing a checkpoint; each names the file and the problem once (the
/// cause is part of the message, not a separate `source`, so a chain printer such as anyhow's
/// `{:#}` does not repeat it).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Filesystem error.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// A file missing, not a regular file, too large or not UTF-8 (the message names it).
    #[error("{0}")]
    File(FileError),
    /// A JSON file does not parse.
    #[error("{path}: invalid JSON: {cause}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: serde_json::Error,
    },
    /// A safetensors file is truncated, corrupt or crafted (the message names the tensor).
    #[error("{path}: {message}")]
    Tensors {
        /// The file.
        path: PathBuf,
        /// The cause.
        message: String,
    },
    /// The tensors do not fit the config.
    #[error("{path}: {cause}")]
    Model {
        /// The file.
        path: PathBuf,
        /// The cause.
        cause: ModelError,
    },
    /// A file that parses but says something impossible (a config field out of range, a
    /// block map that does not fit the vocabulary, a tokenizer larger than the model).
    #[error("{path}: {message}")]
    Invalid {
        /// The file (or files, for a disagreement between two).
        path: PathBuf,
        /// What is wrong.
        message: String,
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

impl From<FileError> for CheckpointError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
