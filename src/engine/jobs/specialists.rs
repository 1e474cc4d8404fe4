//! Growing a pool of specialists over a document collection by description length (SPEC §10),
//! as a job in steps the caller can report between: open, grow (each move as it is decided),
//! summarise, save.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::engine::specialists::{read_documents, Document, Pool, PoolConfig, PoolMove};
use crate::model::dial::DialSetting;

/// What to grow the pool from.
#[derive(Clone, Debug)]
pub struct PoolJob {
    /// The base specialist (a checkpoint directory).
    pub base: PathBuf,
    /// Documents: a directory (one document per file) or a file.
    pub docs: PathBuf,
    /// The line that separates documents in a single file (default: blank lines).
    pub separator: Option<String>,
    /// Measure code lengths at the mode-A dial λ (default: the dial saved with the base).
    pub lambda: Option<f64>,
    /// The search's settings.
    pub config: PoolConfig,
}

/// A pool being grown over its documents.
pub struct PoolRun {
    pool: Pool,
    docs: Vec<Document>,
    config: PoolConfig,
}

/// One specialist's blocks in the summary.
#[derive(Clone, Debug)]
pub struct SpecialistBlocks {
    /// The specialist's name.
    pub name: String,
    /// Its blocks besides "unassigned".
    pub blocks: Vec<String>,
    /// Bits of blocks it adds over its parent.
    pub bits: f64,
}

impl PoolRun {
    /// Read the documents and start a pool of the base alone (at the job's dial, if given).
    pub fn open(job: PoolJob) -> Result<Self> {
        let texts = read_documents(&job.docs, job.separator.as_deref())?;
        if texts.is_empty() {
            anyhow::bail!("{}: no documents found", job.docs.display());
        }
        let (mut pool, docs) = Pool::from_checkpoint(&job.base, &texts)?;
        if let Some(lambda) = job.lambda {
            if !(0.0..=1.0).contains(&lambda) {
                anyhow::bail!("--lambda {lambda}: the dial lies in [0, 1]");
            }
            pool.set_dial(DialSetting::bias(lambda), &docs, &job.config)?;
        }
        Ok(Self {
            pool,
            docs,
            config: job.config,
        })
    }

    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.docs.len()
    }

    /// Tokens over all documents.
    pub fn tokens(&self) -> usize {
        self.docs.iter().map(|d| d.ids.len()).sum()
    }

    /// Total description length of the documents under the pool, bits.
    pub fn dl_total_bits(&self) -> f64 {
        self.pool.dl_total(&self.docs, &self.config)
    }

    /// Grow the pool; `on_move` sees every move as it is decided.
    pub fn grow(&mut self, on_move: impl FnMut(&PoolMove)) -> Result<()> {
        self.pool.grow(&self.docs, &self.config, on_move)
    }

    /// The routing table (Markdown): each document's bits under each specialist, and where it
    /// is routed.
    pub fn routing_table(&self) -> String {
        self.pool.routing_table(&self.docs)
    }

    /// Each specialist's blocks and what they cost.
    pub fn specialist_blocks(&self) -> Vec<SpecialistBlocks> {
        let bits = self.pool.block_bits(&self.config);
        self.pool
            .specialists
            .iter()
            .zip(bits)
            .map(|(s, bits)| SpecialistBlocks {
                name: s.name.clone(),
                blocks: s.blocks.names.iter().skip(1).cloned().collect(),
                bits,
            })
            .collect()
    }

    /// Number of specialists.
    pub fn specialists(&self) -> usize {
        self.pool.specialists.len()
    }

    /// Save the pool as a directory: one checkpoint per specialist and `manifest.json`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        self.pool.save(dir, &self.docs)
    }
}
