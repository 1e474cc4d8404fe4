//! What a model on disk is identified by in reports and captures: the SHA-256 of the files it
//! computes with, read without loading it.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::hf::detect::{locate, ModelKind};
use crate::hf::folder;

/// SHA-256 of a model on disk, whatever its kind, without loading it: a Localist checkpoint's
/// ([`crate::model::checkpoint::checkpoint_sha256`]), or what an imported model computes with
/// in the same scheme: the `.gguf` file ([`ImportedModel::path`]), or a folder's config.json,
/// model.safetensors or pytorch_model.bin (or its index and shards) and tokenizer.json (or a GPT-2-like folder's
/// vocab.json and merges.txt, with its tokenizer_config.json).
pub fn model_sha256(path: &Path) -> Result<String> {
    let found = locate(path)?;
    let files: Vec<(&str, PathBuf)> = match found.kind {
        ModelKind::Checkpoint => {
            return Ok(crate::model::checkpoint::checkpoint_sha256(&found.path)?)
        }
        ModelKind::Gguf => vec![("model.gguf", found.path)],
        ModelKind::Adapter => ["adapter.json", "adapter.safetensors", "blocks.json"]
            .iter()
            .map(|&n| (n, found.path.join(n)))
            .collect(),
        ModelKind::HuggingFace if path.is_file() => vec![("model.gguf", path.to_path_buf())],
        ModelKind::HuggingFace => {
            // GPT-2 folders may hold vocab.json + merges.txt in place of tokenizer.json (and
            // then tokenizer_config.json, which may put a BOS token first, as OPT's does).
            let tokenizer: &[&str] = if found.path.join("tokenizer.json").exists()
                || !found.path.join("vocab.json").exists()
            {
                &["tokenizer.json"]
            } else if found.path.join("tokenizer_config.json").exists() {
                &["vocab.json", "merges.txt", "tokenizer_config.json"]
            } else {
                &["vocab.json", "merges.txt"]
            };
            // The weights: one file, or the index and every shard it names (by file name).
            let weights = folder::weights(&found.path)?;
            let mut named: Vec<(String, PathBuf)> =
                vec![("config.json".into(), found.path.join("config.json"))];
            if weights.files != [weights.path.clone()] {
                let index = weights
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned());
                named.push((index.unwrap_or_default(), weights.path.clone()));
            }
            for f in &weights.files {
                let name = f.file_name().map(|n| n.to_string_lossy().into_owned());
                named.push((name.unwrap_or_default(), f.clone()));
            }
            named.extend(
                tokenizer
                    .iter()
                    .map(|&n| (n.to_string(), found.path.join(n))),
            );
            let files: Vec<(&str, PathBuf)> =
                named.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
            return Ok(crate::model::checkpoint::files_sha256(&files)?);
        }
    };
    Ok(crate::model::checkpoint::files_sha256(&files)?)
}
