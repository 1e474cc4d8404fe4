//! The specialist pool as the faces reach it (SPEC §10): the growth algorithm lives in
//! [`crate::train::specialists`]; the engine re-exports what the CLI and the studio call and
//! read (reading documents and manifests, the pool and its settings, the manifest's plain
//! data), and owns writing a pool to disk.

use std::path::Path;

use anyhow::{Context, Result};

use crate::engine::export::write_atomic;
use crate::model::checkpoint::save_checkpoint;
pub use crate::train::specialists::{
    blocks_over_parent, read_documents, read_manifest, split_documents, Document, Manifest,
    ManifestRoute, ManifestSpecialist, Pool, PoolConfig, PoolMove, Specialist, MANIFEST_FORMAT,
};

impl Pool {
    /// Save as a directory: one checkpoint per specialist and `manifest.json` (written
    /// atomically).
    pub fn save(&self, dir: &Path, docs: &[Document]) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for s in &self.specialists {
            save_checkpoint(&dir.join(&s.name), &self.meta, &s.blocks, &s.model, None)?;
        }
        write_atomic(
            &dir.join("manifest.json"),
            serde_json::to_string_pretty(&self.manifest(docs))?.as_bytes(),
        )
    }
}
