//! The documents a pool routes: a name and its token ids, and reading them from text (every
//! file of a folder, or the parts of one file).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::corpus::{load_corpus, CorpusError};

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

/// One file of documents, read as a corpus is; an empty one says that no documents were found.
fn read_document_file(path: &Path) -> Result<String> {
    match load_corpus(path) {
        Err(CorpusError::Empty { .. }) => anyhow::bail!(
            "{}: no documents found (the file is empty or whitespace only)",
            path.display()
        ),
        other => Ok(other?),
    }
}

/// Most documents a pool routes (each is scored by every specialist).
pub const MAX_DOCUMENTS: usize = 4096;

/// Read documents: every file of a directory (sorted by name; sub-folders are skipped), or
/// the parts of one file. Each file is read as a corpus is (a regular UTF-8 text file under
/// the corpus size limit, not empty, not binary); the error names the file.
pub fn read_documents(path: &Path, separator: Option<&str>) -> Result<Vec<(String, String)>> {
    let docs: Vec<(String, String)> = if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.is_dir())
            .collect();
        files.sort();
        if files.len() > MAX_DOCUMENTS {
            anyhow::bail!(
                "{}: {} files, more than the {MAX_DOCUMENTS} documents a pool routes",
                path.display(),
                files.len()
            );
        }
        files
            .into_iter()
            .map(|f| {
                let text = read_document_file(&f)?;
                Ok((
                    f.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    text,
                ))
            })
            .collect::<Result<_>>()?
    } else {
        let text = read_document_file(path)?;
        split_documents(&text, separator)
            .into_iter()
            .enumerate()
            .map(|(k, d)| (format!("#{k}"), d))
            .collect()
    };
    if docs.len() > MAX_DOCUMENTS {
        anyhow::bail!(
            "{}: {} documents, more than the {MAX_DOCUMENTS} a pool routes",
            path.display(),
            docs.len()
        );
    }
    Ok(docs)
}
