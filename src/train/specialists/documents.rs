//! The documents a pool routes: a name and its token ids, and reading them from text (every
//! file of a folder, or the parts of one file).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A document: a name and its token ids.
#[derive(Clone, Debug)]
pub struct Document {
    /// File name, or `#k` for the k-th document of a separated file.
    pub name: String,
    /// Token ids.
    pub ids: Vec<u32>,
}

/// Split text into documents: one per `separator` line (when given), else one per blank-line
/// separated paragraph; empty documents are dropped.
pub fn split_documents(text: &str, separator: Option<&str>) -> Vec<String> {
    let parts: Vec<String> = match separator {
        Some(sep) => text
            .split(&format!("\n{sep}\n"))
            .map(str::to_string)
            .collect(),
        None => text.split("\n\n").map(str::to_string).collect(),
    };
    parts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Read documents: every file of a directory (sorted by name), or the parts of one file.
pub fn read_documents(path: &Path, separator: Option<&str>) -> Result<Vec<(String, String)>> {
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("{}: not UTF-8 text", f.display()))?;
                Ok((
                    f.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    text,
                ))
            })
            .collect()
    } else {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read as UTF-8 text", path.display()))?;
        Ok(split_documents(&text, separator)
            .into_iter()
            .enumerate()
            .map(|(k, d)| (format!("#{k}"), d))
            .collect())
    }
}
