//! What a path holds, told by its contents rather than its name: a `.gguf` file by its magic
//! bytes, a Hugging Face folder by a `config.json` with `model_type` or `architectures`, and a
//! Localist checkpoint by its own files (a `config.json` with `version` and `model`, beside
//! `blocks.json` and `model.safetensors`). Anything else is an error that names the file and
//! what is missing, so a checkpoint without its block map is never taken for another kind of
//! model.

use std::io::Read;
use std::path::{Path, PathBuf};

/// What can be opened, for error messages.
pub const SUPPORTED: &str = "a .gguf file of a LLaMA-family decoder (LLaMA, Qwen2, Qwen3, \
     Phi-3, Gemma 1-3, OLMo 1 and 2, SmolLM3, Granite, StableLM) or of Phi-2, GPT-2, GPT-BigCode, \
     StarCoder2, GPT-NeoX, BLOOM, Falcon or MPT, or a Hugging Face folder (config.json + model.safetensors \
     or its shards, or pytorch_model.bin read weights-only, + tokenizer.json) of a BERT-family encoder (BERT, RoBERTa, DistilBERT, \
     ModernBERT) or a GPT-2, GPT-Neo, GPT-NeoX, GPT-J, CodeGen, Phi, OPT, BLOOM, GPT-BigCode, \
     StarCoder2, Falcon, MPT, LLaMA-architecture, SmolLM3, Granite, Mistral, Qwen, Phi-3, Gemma, OLMo 1, 2 or 3 or StableLM \
     decoder, or an adapter folder (adapter.json) fine-tuned from one";

/// The first four bytes of every GGUF file.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";

/// The files of a Localist checkpoint besides `config.json`, in the order they are checked.
const CHECKPOINT_FILES: [&str; 2] = ["blocks.json", "model.safetensors"];

/// File extensions of pickled PyTorch files, not opened on their own (a Hugging Face folder's
/// `pytorch_model.bin` is read as the folder's weights).
const PICKLE_EXTENSIONS: [&str; 5] = ["bin", "pt", "pth", "ckpt", "pkl"];

/// The kind of model a path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A Localist checkpoint folder (`config.json`, `blocks.json`, `model.safetensors`).
    Checkpoint,
    /// A GGUF file (or a folder holding exactly one).
    Gguf,
    /// A Hugging Face folder (or a `.json`/`.safetensors` file inside one).
    HuggingFace,
    /// A fine-tuning adapter folder (`adapter.json` + `adapter.safetensors`), applied to the
    /// base it names.
    Adapter,
}

/// A model found on disk: its kind and where it is (the `.gguf` file itself, or the folder of
/// a Hugging Face model or a checkpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// What it is.
    pub kind: ModelKind,
    /// The file or folder to open.
    pub path: PathBuf,
}

/// Why a path is not a model this build opens; each names the file and what is missing.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// Nothing there.
    #[error("{0}: no such file or folder")]
    NotFound(PathBuf),
    /// A file or folder that cannot be read.
    #[error("{path}: cannot read it: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause (not a `source`, so a chain of causes does not print it twice).
        cause: std::io::Error,
    },
    /// Named `.gguf` but without the GGUF magic.
    #[error(
        "{0}: named .gguf but does not start with the GGUF magic bytes (\"GGUF\"); \
         not a GGUF file, or a damaged one"
    )]
    BadMagic(PathBuf),
    /// A pickled PyTorch file that is not a Hugging Face folder's weights.
    #[error(
        "{0}: a pickled PyTorch file on its own is not opened: nothing says which model it \
         holds. A Hugging Face folder's pytorch_model.bin, beside its config.json, is read \
         weights-only (nothing in it is run). Supported: {SUPPORTED}"
    )]
    Pickled(PathBuf),
    /// A file of no kind we know.
    #[error("{0}: not a model this studio opens. Supported: {SUPPORTED}")]
    Unsupported(PathBuf),
    /// A `config.json` that is not a regular file, too large, or not UTF-8.
    #[error(transparent)]
    File(#[from] crate::files::FileError),
    /// A `config.json` that is not JSON (or not an object).
    #[error("{path}: not a JSON object: {message}")]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A folder whose `config.json` is a Localist checkpoint's, without a file it needs.
    #[error(
        "{dir}: a Localist checkpoint (config.json has `version` and `model`), but {missing} \
         is missing"
    )]
    IncompleteCheckpoint {
        /// The folder.
        dir: PathBuf,
        /// The file it lacks.
        missing: &'static str,
    },
    /// A `config.json` of neither kind.
    #[error(
        "{0}: neither a Hugging Face config (it has no `model_type` or `architectures`) nor a \
         Localist checkpoint's (no `version` and `model`). Supported: {SUPPORTED}"
    )]
    UnknownConfig(PathBuf),
    /// A folder with model files but no `config.json`.
    #[error(
        "{dir}: {found} but no config.json (a Localist checkpoint needs config.json, \
         blocks.json and model.safetensors; a Hugging Face folder needs config.json with \
         `model_type` or `architectures`)"
    )]
    MissingConfig {
        /// The folder.
        dir: PathBuf,
        /// The file that is there.
        found: &'static str,
    },
    /// A file inside a checkpoint folder rather than the folder.
    #[error("{path}: a file of the Localist checkpoint {dir}; open the folder")]
    InsideCheckpoint {
        /// The file.
        path: PathBuf,
        /// Its folder.
        dir: PathBuf,
    },
    /// A pool of specialists (its `manifest.json`), not one model.
    #[error(
        "{0}: a pool of specialists (manifest.json), not one model: open one of its members \
         (its base is {0}/base), or the pool itself in the studio's Specialists tab"
    )]
    Pool(PathBuf),
    /// A folder with nothing we open.
    #[error("{0}: no config.json, model.safetensors or .gguf file here. Supported: {SUPPORTED}")]
    Empty(PathBuf),
    /// A folder with several `.gguf` files.
    #[error("{dir}: {count} .gguf files here; open one of them")]
    SeveralGguf {
        /// The folder.
        dir: PathBuf,
        /// How many.
        count: usize,
    },
}

/// The kind of model at `path` (a file or a folder), from its contents.
pub fn detect(path: &Path) -> Result<ModelKind, DetectError> {
    locate(path).map(|found| found.kind)
}

/// The kind of model at `path` and the file or folder to open for it: a folder holding one
/// `.gguf` file gives that file, a file inside a Hugging Face folder gives the folder.
pub fn locate(path: &Path) -> Result<Located, DetectError> {
    if !present(path)? {
        return Err(DetectError::NotFound(path.to_path_buf()));
    }
    if path.is_file() {
        locate_file(path)
    } else {
        locate_folder(path)
    }
}

/// Whether `path` is there: false when nothing is, an error when something is but cannot be
/// followed (a link to nothing, a loop of links, a folder that may not be read), so that is not
/// reported as "missing".
fn present(path: &Path) -> Result<bool, DetectError> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(source) => match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            _ => Err(DetectError::Io {
                path: path.to_path_buf(),
                cause: source,
            }),
        },
    }
}

/// Whether the file starts with the GGUF magic bytes.
pub fn has_gguf_magic(path: &Path) -> Result<bool, DetectError> {
    let io = |source| DetectError::Io {
        path: path.to_path_buf(),
        cause: source,
    };
    let mut head = Vec::with_capacity(GGUF_MAGIC.len());
    std::fs::File::open(path)
        .map_err(io)?
        .take(GGUF_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(head == GGUF_MAGIC)
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

fn locate_file(path: &Path) -> Result<Located, DetectError> {
    let found = |kind, path: &Path| {
        Ok(Located {
            kind,
            path: path.to_path_buf(),
        })
    };
    if has_gguf_magic(path)? {
        return found(ModelKind::Gguf, path);
    }
    let ext = extension(path);
    if ext == "gguf" {
        return Err(DetectError::BadMagic(path.to_path_buf()));
    }
    let hf_bin = ext == "bin" && path.with_file_name("config.json").is_file();
    if PICKLE_EXTENSIONS.contains(&ext.as_str()) && !hf_bin {
        return Err(DetectError::Pickled(path.to_path_buf()));
    }
    if ext == "safetensors" || ext == "json" || hf_bin {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            return match locate_folder(dir)?.kind {
                ModelKind::HuggingFace => found(ModelKind::HuggingFace, dir),
                ModelKind::Adapter => found(ModelKind::Adapter, dir),
                ModelKind::Checkpoint => Err(DetectError::InsideCheckpoint {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                }),
                ModelKind::Gguf => Err(DetectError::Unsupported(path.to_path_buf())),
            };
        }
    }
    Err(DetectError::Unsupported(path.to_path_buf()))
}

fn locate_folder(dir: &Path) -> Result<Located, DetectError> {
    if dir.join("adapter.json").exists() {
        return Ok(Located {
            kind: ModelKind::Adapter,
            path: dir.to_path_buf(),
        });
    }
    let cfg = dir.join("config.json");
    if cfg.exists() {
        return folder_with_config(dir, &cfg);
    }
    for found in ["blocks.json", "model.safetensors"] {
        if dir.join(found).exists() {
            return Err(DetectError::MissingConfig {
                dir: dir.to_path_buf(),
                found,
            });
        }
    }
    if dir.join("manifest.json").exists() {
        return Err(DetectError::Pool(dir.to_path_buf()));
    }
    if dir.join("pytorch_model.bin").exists() {
        return Err(DetectError::MissingConfig {
            dir: dir.to_path_buf(),
            found: "pytorch_model.bin",
        });
    }
    match gguf_files(dir)?.as_slice() {
        [one] if has_gguf_magic(one)? => Ok(Located {
            kind: ModelKind::Gguf,
            path: one.clone(),
        }),
        [one] => Err(DetectError::BadMagic(one.clone())),
        [] => Err(DetectError::Empty(dir.to_path_buf())),
        many => Err(DetectError::SeveralGguf {
            dir: dir.to_path_buf(),
            count: many.len(),
        }),
    }
}

/// A folder with a `config.json`: a Hugging Face config or a checkpoint's (with its files).
fn folder_with_config(dir: &Path, cfg: &Path) -> Result<Located, DetectError> {
    let text = crate::files::read_text(cfg, crate::files::MAX_CONFIG_BYTES, "a config.json")?;
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| DetectError::Json {
            path: cfg.to_path_buf(),
            message: e.to_string(),
        })?;
    let kind = if json.contains_key("model_type") || json.contains_key("architectures") {
        ModelKind::HuggingFace
    } else if json.contains_key("version") && json.contains_key("model") {
        for file in CHECKPOINT_FILES {
            if !present(&dir.join(file))? {
                return Err(DetectError::IncompleteCheckpoint {
                    dir: dir.to_path_buf(),
                    missing: file,
                });
            }
        }
        ModelKind::Checkpoint
    } else {
        return Err(DetectError::UnknownConfig(cfg.to_path_buf()));
    };
    Ok(Located {
        kind,
        path: dir.to_path_buf(),
    })
}

/// The `.gguf` files directly in `dir`, sorted.
fn gguf_files(dir: &Path) -> Result<Vec<PathBuf>, DetectError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| DetectError::Io {
            path: dir.to_path_buf(),
            cause: source,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && extension(p) == "gguf")
        .collect();
    out.sort();
    Ok(out)
}
