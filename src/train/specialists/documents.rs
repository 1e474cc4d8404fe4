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

/// Split text into documents: at every line that is `separator` (surrounding spaces aside)
/// when one is given, else at blank lines (a line of spaces or tabs is blank: it looks it);
/// empty documents are dropped.
pub fn split_documents(text: &str, separator: Option<&str>) -> Vec<String> {
    let sep = separator.map(str::trim).unwrap_or("");
    let mut parts = vec![String::new()];
    for line in text.lines() {
        if line.trim() == sep {
            parts.push(String::new());
        } else if let Some(part) = parts.last_mut() {
            part.push_str(line);
            part.push('\n');
        }
    }
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

/// A hidden file (`.name`, as a folder listing hides it) or a file manager's litter
/// (`Thumbs.db`, `desktop.ini`): not a document.
fn hidden_or_litter(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.starts_with('.') || name == "Thumbs.db" || name == "desktop.ini"
}

/// What reading the folder `path` as documents passes over or reaches outside it, said so the
/// user knows (both were silent): sub-folders, whose files are not read, and links to files
/// outside the folder, which are read. `None` for a file, or a folder with neither.
pub fn folder_note(path: &Path) -> Option<String> {
    let root = std::fs::canonicalize(path).ok()?;
    let entries = std::fs::read_dir(path).ok()?;
    let (mut subs, mut outside) = (Vec::new(), Vec::new());
    for p in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if hidden_or_litter(&p) {
            continue;
        }
        if p.is_dir() {
            subs.push(name);
        } else if let Some(t) = std::fs::canonicalize(&p)
            .ok()
            .filter(|t| !t.starts_with(&root))
        {
            outside.push(format!("{name} -> {}", t.display()));
        }
    }
    let list = |mut v: Vec<String>| {
        v.sort();
        let more = v.len().saturating_sub(5);
        v.truncate(5);
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        format!("{}{tail}", v.join(", "))
    };
    let mut says = Vec::new();
    if !subs.is_empty() {
        says.push(format!(
            "sub-folders skipped, their files not read ({}): each file directly in the folder \
             is one document",
            list(subs)
        ));
    }
    if !outside.is_empty() {
        says.push(format!(
            "links to files outside the folder, read as documents ({})",
            list(outside)
        ));
    }
    (!says.is_empty()).then(|| format!("{}: {}", path.display(), says.join("; ")))
}

/// Most documents a pool routes (each is scored by every specialist).
pub const MAX_DOCUMENTS: usize = 4096;

/// Read documents: every file of a directory (sorted by name; sub-folders, hidden files and a
/// file manager's litter are skipped; `separator` is refused there), or
/// the parts of one file. Each file is read as a corpus is (a regular UTF-8 text file under
/// the corpus size limit, not empty, not binary); the error names the file.
pub fn read_documents(path: &Path, separator: Option<&str>) -> Result<Vec<(String, String)>> {
    let docs: Vec<(String, String)> = if std::fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !p.is_dir() && !hidden_or_litter(p))
            .collect();
        if separator.is_some() {
            anyhow::bail!(
                "{}: --separator splits one file into documents; in a folder each file is one \
                 document (pass a file, or leave out --separator)",
                path.display()
            );
        }
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
        if let Some(sep) = separator {
            if sep.trim().is_empty() {
                anyhow::bail!("--separator is blank: documents are split at blank lines anyway");
            }
            if !text.lines().any(|l| l.trim() == sep.trim()) {
                anyhow::bail!(
                    "{}: no line is the separator {:?}, so the file would be one document \
                     (the separator must stand on a line of its own)",
                    path.display(),
                    sep.trim()
                );
            }
        }
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

#[cfg(test)]
mod tests {
    use super::split_documents;

    #[test]
    fn a_separator_line_splits_wherever_it_stands() {
        let text = "---\na b\n  ---  \nc d\n---\n\ne\n---";
        assert_eq!(split_documents(text, Some("---")), ["a b", "c d", "e"]);
        assert_eq!(split_documents("a\n\nb\n", None), ["a", "b"]);
        // A line of spaces or a tab looks blank, and is.
        assert_eq!(
            split_documents("a\n  \nb\n\t\nc\n\n\n", None),
            ["a", "b", "c"]
        );
    }
}
