//! `manifest.json` of a saved pool: its specialists (each a checkpoint directory of that
//! name), every document's route with its bits, and the log of moves; reading it back, and
//! loading a saved pool. Writing the pool to disk is the engine's job
//! (`crate::engine::specialists`), which writes [`Pool::manifest`] atomically.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::hf::adapter::BaseRef;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::load_checkpoint;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::{Pool, Specialist};

/// The `format` of a pool manifest.
pub const MANIFEST_FORMAT: &str = "localist-specialist-pool";

/// `manifest.json` of a saved pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// The specialists, base first; each is a checkpoint directory of that name.
    pub specialists: Vec<ManifestSpecialist>,
    /// Each document's route and its bits under every specialist.
    pub routing: Vec<ManifestRoute>,
    /// Every move, in order.
    pub log: Vec<PoolMove>,
    /// The blocks the base checkpoint came with (what the base's own blocks are charged
    /// against); absent in older pools, whose base blocks are then taken as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_blocks: Option<BlockMap>,
    /// For a pool of adapters on a pretrained decoder: that decoder (path, SHA-256,
    /// architecture). Its specialists are adapter folders, each opening as a model; the base
    /// has no folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model: Option<BaseRef>,
}

/// One specialist in a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestSpecialist {
    /// Name (its checkpoint directory).
    pub name: String,
    /// Its parent's name.
    pub parent: Option<String>,
    /// Parameters it adds over its parent.
    pub added_params: usize,
    /// Names of its blocks, when it has its own (saved in its checkpoint directory); absent in
    /// pools saved before specialists had their own blocks, which share the base's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocks: Option<Vec<String>>,
}

/// One document's routing in a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestRoute {
    /// Document name.
    pub document: String,
    /// Its tokens.
    #[serde(default)]
    pub tokens: usize,
    /// The specialist it is routed to.
    pub specialist: String,
    /// Bits under each specialist, in manifest order.
    pub bits: Vec<f64>,
}

/// Read a pool's manifest; errors name the file.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    let text = crate::files::read_text(&path, crate::files::MAX_DOCUMENT_BYTES, "a pool manifest")?;
    let m: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a specialist pool manifest", path.display()))?;
    if m.format != MANIFEST_FORMAT {
        bail!(
            "{}: not a specialist pool manifest (format {:?})",
            path.display(),
            m.format
        );
    }
    m.check()
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))?;
    Ok(m)
}

impl Manifest {
    /// The manifest against itself: a known version, specialists named as plain folder names
    /// (a name is joined to the pool's folder: `/etc` or `../..` would lead out of it), once
    /// each, parents among the earlier ones, and every route naming a specialist with one
    /// finite number of bits per specialist. A pool failing any of these was drawn as a valid
    /// routing table, its columns misaligned.
    fn check(&self) -> std::result::Result<(), String> {
        if !(1..=2).contains(&self.version) {
            return Err(format!(
                "version {} is not one this build reads (1 or 2)",
                self.version
            ));
        }
        let most = crate::train::specialists::config::MAX_SPECIALISTS;
        let most_docs = crate::train::specialists::documents::MAX_DOCUMENTS;
        if self.specialists.len() > most + 1 || self.routing.len() > most_docs {
            return Err(format!(
                "{} specialists and {} routed documents: a pool has at most {most} specialists \
                 besides its base and routes at most {most_docs} documents",
                self.specialists.len(),
                self.routing.len()
            ));
        }
        let mut names = std::collections::HashSet::new();
        for (k, s) in self.specialists.iter().enumerate() {
            let plain = !s.name.is_empty()
                && s.name != "."
                && s.name != ".."
                && !s.name.contains(['/', '\\'])
                && crate::files::hidden_in(&s.name).is_none();
            if !plain {
                return Err(format!(
                    "specialist {k} is named {:?}, not a plain folder name inside the pool",
                    s.name
                ));
            }
            if let Some(p) = s.parent.as_ref().filter(|p| !names.contains(p.as_str())) {
                return Err(format!(
                    "specialist {:?} has parent {p:?}, which is not an earlier specialist",
                    s.name
                ));
            }
            if !names.insert(s.name.as_str()) {
                return Err(format!("specialist {:?} is named twice", s.name));
            }
        }
        let n = self.specialists.len();
        for r in &self.routing {
            if !names.contains(r.specialist.as_str()) {
                return Err(format!(
                    "document {:?} is routed to {:?}, which is not a specialist of the pool",
                    r.document, r.specialist
                ));
            }
            if r.bits.len() != n || r.bits.iter().any(|b| !b.is_finite() || *b < 0.0) {
                return Err(format!(
                    "document {:?} needs one finite, non-negative number of bits per specialist \
                     ({n})",
                    r.document
                ));
            }
        }
        Ok(())
    }
}

impl Pool {
    /// The manifest of the pool as it stands, routing `docs`.
    pub fn manifest(&self, docs: &[Document]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: 2,
            specialists: self
                .specialists
                .iter()
                .map(|s| ManifestSpecialist {
                    name: s.name.clone(),
                    parent: s
                        .parent
                        .and_then(|p| self.specialists.get(p))
                        .map(|p| p.name.clone()),
                    added_params: s.added_params,
                    blocks: Some(s.blocks.names.clone()),
                })
                .collect(),
            routing: manifest_routes(&self.names(), docs, &self.bits, &self.assignment),
            log: self.log.clone(),
            root_blocks: Some(self.root_blocks.clone()),
            base_model: None,
        }
    }

    /// Load a saved pool and route `docs` (texts) over it by shortest code length.
    pub fn load(
        dir: &Path,
        docs: &[(String, String)],
        cfg: &PoolConfig,
    ) -> Result<(Self, Vec<Document>)> {
        let manifest = read_manifest(dir)?;
        let names: Vec<String> = manifest
            .specialists
            .iter()
            .map(|s| s.name.clone())
            .collect();
        if let Some(base) = &manifest.base_model {
            bail!(
                "{}: a pool of adapters on {} (its specialists are adapter folders: open each \
                 as a model); it cannot be loaded as a pool of checkpoints",
                dir.join("manifest.json").display(),
                base.path.display()
            );
        }
        let Some(first) = names.first() else {
            bail!("{}: the pool is empty", dir.join("manifest.json").display());
        };
        let (mut pool, documents) = Pool::from_checkpoint(&dir.join(first), docs)?;
        if let Some(root) = manifest.root_blocks.clone() {
            pool.root_blocks = root;
        }
        pool.specialists[0].name = first.clone();
        pool.load_specialists(dir, &manifest, &names)?;
        pool.check_blocks(dir, &manifest)?;
        pool.next_name = pool.specialists.len();
        pool.recode(&documents, cfg)?;
        Ok((pool, documents))
    }

    /// Load every specialist after the base from its checkpoint directory under `dir`.
    fn load_specialists(
        &mut self,
        dir: &Path,
        manifest: &Manifest,
        names: &[String],
    ) -> Result<()> {
        let shared = self.specialists[0].blocks.clone();
        for e in manifest.specialists.iter().skip(1) {
            let name = e.name.clone();
            let ck = load_checkpoint(&dir.join(&name), &Device::Cpu)?;
            let parent = e
                .parent
                .as_ref()
                .and_then(|p| names.iter().position(|n| n == p));
            // A pool saved before specialists had their own blocks shares the base's.
            let blocks = if e.blocks.is_some() {
                ck.blocks
            } else {
                shared.clone()
            };
            self.specialists.push(Specialist {
                name,
                parent,
                model: ck.model,
                blocks,
                added_params: e.added_params,
            });
        }
        Ok(())
    }

    /// Every specialist's blocks are the ones its manifest entry names (when it names any).
    fn check_blocks(&self, dir: &Path, manifest: &Manifest) -> Result<()> {
        for (e, s) in manifest.specialists.iter().zip(&self.specialists) {
            if let Some(want) = &e.blocks {
                if *want != s.blocks.names {
                    bail!(
                        "{}: blocks {:?} but the manifest says {:?}",
                        dir.join(&s.name).join("blocks.json").display(),
                        s.blocks.names,
                        want
                    );
                }
            }
        }
        Ok(())
    }
}

/// The manifest's rows: each document's route and its bits under every specialist.
pub(crate) fn manifest_routes(
    names: &[String],
    docs: &[Document],
    bits: &[Vec<f64>],
    assignment: &[usize],
) -> Vec<ManifestRoute> {
    docs.iter()
        .zip(assignment)
        .enumerate()
        .map(|(k, (d, &j))| ManifestRoute {
            document: d.name.clone(),
            tokens: d.ids.len(),
            specialist: names.get(j).cloned().unwrap_or_default(),
            bits: bits.get(k).cloned().unwrap_or_default(),
        })
        .collect()
}
