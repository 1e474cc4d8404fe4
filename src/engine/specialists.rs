//! The specialist pool as the faces reach it (SPEC §10): the growth algorithm lives in
//! [`crate::train::specialists`]; the engine re-exports what the CLI and the studio call and
//! read (reading documents and manifests, the pool and its settings, the manifest's plain
//! data), and owns writing a pool to disk.

use std::path::Path;

use anyhow::{Context, Result};

use crate::engine::export::write_atomic;
use crate::hf::adapter::{save_adapter, AdapterInfo, ADAPTER_FORMAT};
use crate::model::checkpoint::save_checkpoint;
pub use crate::train::specialists::{
    blocks_over_parent, folder_note, read_documents, read_manifest, split_documents, AdaptedConfig,
    AdaptedPool, Document, GrowthReport, Manifest, ManifestRoute, ManifestSpecialist, Pool,
    PoolConfig, PoolMove, Specialist, MANIFEST_FORMAT, MAX_SPECIALISTS,
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

impl AdaptedPool {
    /// Save as a directory: one adapter folder per specialist (each opens as a model: the base
    /// with that adapter) and `manifest.json`, which names the base (written atomically).
    pub fn save(&self, dir: &Path, docs: &[Document], cfg: &AdaptedConfig) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (j, s) in self.specialists.iter().enumerate() {
            let Some(adapter) = &s.adapter else { continue };
            let routed: Vec<&str> = docs
                .iter()
                .zip(&self.assignment)
                .filter(|(_, &a)| a == j)
                .map(|(d, _)| d.name.as_str())
                .collect();
            let info = AdapterInfo {
                format: ADAPTER_FORMAT.into(),
                version: 1,
                base: self.base_ref.clone(),
                spec: adapter.spec.clone(),
                training: serde_json::json!({
                    "specialist_of_pool": dir.display().to_string(),
                    "steps": s.steps,
                    "lr": cfg.pool.lr,
                    "lambda_train": cfg.lambda_train,
                    "seq_len": cfg.pool.seq_len,
                    "batch_size": cfg.pool.batch_size,
                    "trainable_scalars": s.added_params,
                    "documents_routed": routed,
                }),
            };
            save_adapter(&dir.join(&s.name), &info, adapter, &self.blocks)?;
        }
        write_atomic(
            &dir.join("manifest.json"),
            serde_json::to_string_pretty(&self.manifest(docs))?.as_bytes(),
        )
    }
}
