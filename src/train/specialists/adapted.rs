//! A pool of specialists on a pretrained decoder (SPEC §10, issue 17): the base is the
//! imported model itself (free, as a base checkpoint's weights are), and every specialist is an
//! [`Adapter`] on it, fine-tuned on the documents it is recruited for and charged for its
//! adapter's parameters in bits ((p/2)·log₂ n_j over the n_j tokens routed to it). The pool
//! holds one copy of the base: a document is coded under a specialist by merging its adapter
//! into the base, coding, and putting W₀ back ([`Adapter::applied`]).
//!
//! The moves are the pool's own, on the same bits table (`table.rs`): re-route, recruit a
//! specialist for the worst-coded cluster (a fresh adapter on the base, trained by
//! [`FineTuner`]), merge a specialist into the others, prune one nobody uses. Blocks stay the
//! base's (one map for the pool); the growth loop is `adapted_grow.rs`.

use anyhow::{bail, Context, Result};

use crate::analysis::mdl::{dl_total, PoolCosts};
use crate::hf::adapter::{Adapter, AdapterSpec, BaseRef};
use crate::hf::ImportedModel;
use crate::model::blocks::BlockMap;
use crate::model::dial::DialSetting;
use crate::train::codelength::code_length_bits;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::manifest::{
    manifest_routes, Manifest, ManifestSpecialist, MANIFEST_FORMAT,
};
use crate::train::specialists::table::routing_markdown;

/// One specialist of an adapted pool: the base (no adapter) or an adapter on it.
pub struct AdaptedSpecialist {
    /// Its name ("base", "s1", ...).
    pub name: String,
    /// Its adapter (`None` for the base).
    pub adapter: Option<Adapter>,
    /// Scalars its adapter adds over the base.
    pub added_params: usize,
    /// Fine-tuning steps it was trained.
    pub steps: usize,
}

/// How an adapted pool grows: the pool's own settings (δ, c_llm, most specialists, steps,
/// batch, window, learning rate, patience, seed) and what a specialist's adapter trains.
#[derive(Clone, Debug)]
pub struct AdaptedConfig {
    /// The pool's settings (`trainable` and the block settings do not apply).
    pub pool: PoolConfig,
    /// What a specialist trains ([`AdapterSpec::parse`]), e.g. `lora:1:blk.29.ffn_down`.
    pub adapt: String,
    /// λ_train of a specialist's fine-tune (the off-block mass penalty; 0: cross-entropy only).
    pub lambda_train: f64,
}

/// A pool of adapters on one pretrained decoder, over a document collection.
pub struct AdaptedPool {
    /// The base, holding W₀ (between codings and fine-tunes). `None` only while a candidate is
    /// fine-tuned on it.
    pub(super) base: Option<ImportedModel>,
    /// Where the base came from and its SHA-256 (written into every adapter).
    pub base_ref: BaseRef,
    /// The pool's blocks (the base's).
    pub blocks: BlockMap,
    /// The dial code lengths are measured at.
    pub dial: DialSetting,
    /// The specialists, the base first.
    pub specialists: Vec<AdaptedSpecialist>,
    /// Specialist of each document.
    pub assignment: Vec<usize>,
    /// `bits[d][j]` = L(d | M_j).
    pub bits: Vec<Vec<f64>>,
    /// The moves tried, in order.
    pub log: Vec<PoolMove>,
    pub(super) next_name: usize,
}

impl AdaptedPool {
    /// A pool of the base alone over `docs` (already in the base's tokens), coded at `dial`.
    /// Refused for a model that is not a decoder (adapters and code lengths need
    /// one).
    pub fn new(
        base: ImportedModel,
        base_ref: BaseRef,
        blocks: BlockMap,
        docs: &[Document],
        dial: DialSetting,
    ) -> Result<Self> {
        if base.trainable().is_none() {
            bail!(
                "{}: a {} model; specialists as adapters need a decoder (a .gguf file, or a \
                 LLaMA, Mistral, Phi-3, Qwen2, Qwen3, GPT-2, GPT-Neo, GPT-NeoX, Phi or Gemma folder)",
                base.path().display(),
                base.arch_label()
            );
        }
        if docs.is_empty() {
            bail!("no document has two tokens or more: nothing to route");
        }
        let mut pool = Self {
            base: Some(base),
            base_ref,
            blocks,
            dial,
            specialists: vec![AdaptedSpecialist {
                name: "base".into(),
                adapter: None,
                added_params: 0,
                steps: 0,
            }],
            assignment: vec![0; docs.len()],
            bits: Vec::new(),
            log: Vec::new(),
            next_name: 1,
        };
        let column = pool.code_column(None, docs)?;
        pool.bits = column.into_iter().map(|b| vec![b]).collect();
        Ok(pool)
    }

    /// The base model (W₀).
    pub fn base(&self) -> Result<&ImportedModel> {
        self.base
            .as_ref()
            .context("the base is being fine-tuned (internal)")
    }

    /// L(d | M) of every document under the base with `adapter` merged in (the base alone
    /// when `None`), at the pool's dial; W₀ is back in place afterwards.
    pub(super) fn code_column(
        &mut self,
        adapter: Option<&Adapter>,
        docs: &[Document],
    ) -> Result<Vec<f64>> {
        let (blocks, dial) = (&self.blocks, &self.dial);
        let code = |m: &dyn crate::model::backend::AttentionModel| -> Result<Vec<f64>> {
            docs.iter()
                .map(|d| {
                    code_length_bits(m, blocks, &d.ids, dial)
                        .map(|b| b.0)
                        .with_context(|| format!("coding document {}", d.name))
                })
                .collect()
        };
        let base = self
            .base
            .as_mut()
            .context("the base is being fine-tuned (internal)")?;
        match adapter {
            None => code(base.model()),
            Some(a) => {
                let decoder = base
                    .trainable_mut()
                    .context("the base is not a decoder (internal)")?;
                a.applied(decoder, |m| code(m.as_model()))?
            }
        }
    }

    /// The cost side of DL_total: each specialist's adapter scalars and c_llm.
    pub fn costs(&self, cfg: &PoolConfig) -> PoolCosts {
        PoolCosts {
            added_params: self.specialists.iter().map(|s| s.added_params).collect(),
            header_bits: cfg.header_bits,
        }
    }

    /// DL_total of the current routing.
    pub fn dl_total(&self, docs: &[Document], cfg: &PoolConfig) -> f64 {
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        dl_total(&self.bits, &tokens, &self.assignment, &self.costs(cfg))
    }

    /// The specialists' names, base first.
    pub fn names(&self) -> Vec<String> {
        self.specialists.iter().map(|s| s.name.clone()).collect()
    }

    /// The routing table (Markdown).
    pub fn routing_table(&self, docs: &[Document]) -> String {
        routing_markdown(&self.names(), docs, &self.bits, &self.assignment)
    }

    /// The manifest of the pool as it stands (every specialist but the base is an adapter
    /// folder of its name beside it; the base is named by `base_model`).
    pub fn manifest(&self, docs: &[Document]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT.into(),
            version: 2,
            specialists: self
                .specialists
                .iter()
                .enumerate()
                .map(|(j, s)| ManifestSpecialist {
                    name: s.name.clone(),
                    parent: (j > 0).then(|| "base".to_string()),
                    added_params: s.added_params,
                    blocks: Some(self.blocks.names.clone()),
                })
                .collect(),
            routing: manifest_routes(&self.names(), docs, &self.bits, &self.assignment),
            log: self.log.clone(),
            root_blocks: None,
            base_model: Some(self.base_ref.clone()),
        }
    }

    /// What a specialist's adapter trains, parsed for the base.
    pub fn spec(&self, cfg: &AdaptedConfig) -> Result<AdapterSpec> {
        let layers = self
            .base()?
            .trainable()
            .map(|d| d.num_layers())
            .unwrap_or(0);
        AdapterSpec::parse(&cfg.adapt, layers).map_err(anyhow::Error::msg)
    }
}
