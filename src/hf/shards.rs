//! The shards of a Hugging Face folder whose weights are split in several files
//! (`model.safetensors.index.json`, as `save_pretrained` writes any model over its shard size:
//! phi-2, Gemma-2, Qwen2.5-3B, …), or `pytorch_model.bin.index.json` over `.bin` shards as
//! older exports wrote. The index is read within the config size limit; each shard it names
//! must be a plain file name of the index's kind inside the folder (a name that leads
//! elsewhere — `../x.safetensors`, `/etc/passwd` — is refused, never opened) and present.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// Most shards an index may name (the largest models published have a few hundred).
const MAX_SHARDS: usize = 4096;

/// What the index says: which file holds each tensor.
#[derive(Deserialize)]
struct Index {
    weight_map: BTreeMap<String, String>,
}

/// The shard files `index` names, each once, sorted, checked as the module says; each must end
/// in `.EXT` (`safetensors`, or `bin` for a `pytorch_model.bin.index.json`).
pub fn shard_files(index: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let text =
        crate::files::read_text(index, crate::files::MAX_CONFIG_BYTES, "a safetensors index")?;
    let parsed: Index = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a shard index (a weight_map from tensor names to shard files)",
            index.display()
        )
    })?;
    let names: BTreeSet<&str> = parsed.weight_map.values().map(String::as_str).collect();
    if names.is_empty() {
        bail!("{}: the index names no shard", index.display());
    }
    if names.len() > MAX_SHARDS {
        bail!(
            "{}: the index names {} shards, more than the {MAX_SHARDS} read here",
            index.display(),
            names.len()
        );
    }
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files = Vec::with_capacity(names.len());
    for name in names {
        let plain = !name.is_empty()
            && !name.contains(['/', '\\'])
            && name != ".."
            && Path::new(name)
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if !plain {
            bail!(
                "{}: shard {name:?} is not a .{ext} file name in the model's folder",
                index.display()
            );
        }
        let file = dir.join(name);
        if !file.is_file() {
            bail!(
                "{}: shard {name} is missing from {}",
                index.display(),
                dir.display()
            );
        }
        files.push(file);
    }
    Ok(files)
}
