//! What the fuzz targets share: a scratch folder for the whole run, and a model folder whose
//! files are a known-good base with one of them replaced by the fuzzer's bytes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The run's scratch folder (removed when the process exits normally).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap_or_else(|e| panic!("scratch folder: {e}")))
        .path()
}

/// Write `bytes` to `name` in the scratch folder and return its path.
pub fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
    p
}

/// The folder `name` in the scratch folder holding `base`, except that the file chosen by
/// the input's first byte is replaced by the rest of the input. None for an empty input.
pub fn folder(name: &str, base: &[(&str, &[u8])], data: &[u8]) -> Option<PathBuf> {
    let (&pick, rest) = data.split_first()?;
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let pick = usize::from(pick) % base.len();
    for (i, (file, bytes)) in base.iter().enumerate() {
        let content = if i == pick { rest } else { bytes };
        let p = dir.join(file);
        std::fs::write(&p, content).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    Some(dir)
}

/// A short text the base models can read (words of the tiny BERT and LLaMA, letters of the
/// character checkpoint).
pub const TEXT: &str = "a b c d e a b c";
