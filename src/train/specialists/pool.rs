//! The pool itself: its specialists, the bits table L(d | M_j), the routing, and what
//! DL_total charges for them. The moves that change it are in their own files.

use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::Device;

use crate::analysis::mdl::{dl_total, route, PoolCosts};
use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{load_checkpoint, CheckpointMeta};
use crate::model::dial::DialSetting;
use crate::model::transformer::LocalistModel;
use crate::train::codelength::code_length_bits;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;

/// One specialist.
#[derive(Clone, Debug)]
pub struct Specialist {
    /// Its name.
    pub name: String,
    /// The specialist it was copied from.
    pub parent: Option<usize>,
    /// The model.
    pub model: LocalistModel,
    /// Its blocks (a recruited specialist starts from a copy of its parent's).
    pub blocks: BlockMap,
    /// Parameters it adds over its parent (0 for the base).
    pub added_params: usize,
}

/// A pool of specialists over a document collection.
pub struct Pool {
    /// The specialists.
    pub specialists: Vec<Specialist>,
    /// The blocks the base checkpoint came with: free, as its weights are; the base is charged
    /// for the blocks it adds over these, every other specialist for those it adds over its
    /// parent's.
    pub root_blocks: BlockMap,
    /// Shared tokenizer (as stored).
    pub tokenizer: TokenizerSpec,
    /// The base checkpoint's metadata (written with every specialist); its dial is the one
    /// code lengths are measured at.
    pub meta: CheckpointMeta,
    /// Specialist of each document.
    pub assignment: Vec<usize>,
    /// `bits[d][j]` = L(d | M_j).
    pub bits: Vec<Vec<f64>>,
    /// The moves tried, in order.
    pub log: Vec<PoolMove>,
    /// Number of the next recruited specialist (names are never reused after a prune).
    pub(super) next_name: usize,
}

impl Pool {
    /// A pool of one specialist, the base checkpoint, over `docs` (texts, tokenized here).
    pub fn from_checkpoint(
        base: &Path,
        docs: &[(String, String)],
    ) -> Result<(Self, Vec<Document>)> {
        let ck = load_checkpoint(base, &Device::Cpu)?;
        let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
            .with_context(|| format!("{}: tokenizer in config.json", base.display()))?;
        let tok = spec.build()?;
        let documents: Vec<Document> = docs
            .iter()
            .map(|(name, text)| Document {
                name: name.clone(),
                ids: tok.encode(text),
            })
            .filter(|d| d.ids.len() >= 2)
            .collect();
        if documents.is_empty() {
            bail!("no document has two tokens or more: nothing to route");
        }
        let mut pool = Pool {
            specialists: vec![Specialist {
                name: "base".into(),
                parent: None,
                model: ck.model,
                blocks: ck.blocks.clone(),
                added_params: 0,
            }],
            root_blocks: ck.blocks,
            tokenizer: spec,
            meta: ck.meta,
            assignment: vec![0; documents.len()],
            bits: Vec::new(),
            log: Vec::new(),
            next_name: 1,
        };
        pool.bits = documents
            .iter()
            .map(|d| pool.doc_bits(0, d).map(|b| vec![b]))
            .collect::<Result<_>>()?;
        Ok((pool, documents))
    }

    /// Measure code lengths at `dial` instead of the base's saved one: every document is coded
    /// again under every specialist and routed to its shortest code.
    pub fn set_dial(
        &mut self,
        dial: DialSetting,
        docs: &[Document],
        cfg: &PoolConfig,
    ) -> Result<()> {
        self.meta.dial = dial;
        self.recode(docs, cfg)
    }

    /// Code every document under every specialist at the pool's dial and route each to its
    /// shortest code.
    pub(super) fn recode(&mut self, docs: &[Document], cfg: &PoolConfig) -> Result<()> {
        let mut bits = Vec::with_capacity(docs.len());
        for d in docs {
            let row = (0..self.specialists.len())
                .map(|j| self.doc_bits(j, d))
                .collect::<Result<Vec<f64>>>()?;
            bits.push(row);
        }
        self.bits = bits;
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        self.assignment = route(&self.bits, &tokens, &self.costs(cfg)).assignment;
        Ok(())
    }

    /// L(d | M_j) of a document under specialist `j`.
    fn doc_bits(&self, j: usize, d: &Document) -> Result<f64> {
        let s = self
            .specialists
            .get(j)
            .with_context(|| format!("no specialist {j}"))?;
        self.code_bits(&s.model, &s.blocks, d)
    }

    /// L(d | M) of a document under a model and its blocks, at the pool's dial.
    pub(crate) fn code_bits(
        &self,
        model: &LocalistModel,
        blocks: &BlockMap,
        d: &Document,
    ) -> Result<f64> {
        Ok(code_length_bits(model, blocks, &d.ids, &self.meta.dial)?.0)
    }

    /// The cost side of DL_total.
    pub fn costs(&self, cfg: &PoolConfig) -> PoolCosts {
        PoolCosts {
            added_params: self.specialists.iter().map(|s| s.added_params).collect(),
            header_bits: cfg.header_bits,
        }
    }

    /// DL_total of the current routing, the blocks each specialist adds included.
    pub fn dl_total(&self, docs: &[Document], cfg: &PoolConfig) -> f64 {
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        self.priced(
            &self.bits,
            &tokens,
            &self.assignment,
            &self.costs(cfg),
            &self.block_bits(cfg),
        )
    }

    /// DL_total of a routing: [`dl_total`] plus `block_bits[j]` for every specialist j that
    /// has documents (one without documents costs nothing, as in [`dl_total`]).
    pub(crate) fn priced(
        &self,
        bits: &[Vec<f64>],
        tokens: &[usize],
        assignment: &[usize],
        costs: &PoolCosts,
        block_bits: &[f64],
    ) -> f64 {
        let blocks: f64 = block_bits
            .iter()
            .enumerate()
            .filter(|(j, _)| assignment.contains(j))
            .map(|(_, b)| b)
            .sum();
        dl_total(bits, tokens, assignment, costs) + blocks
    }

    /// λ of the pool's dial in mode A when it is not the identity (what a specialist or a
    /// block is trained and probed at).
    pub(crate) fn coding_lambda(&self) -> Option<f64> {
        let layers = self
            .specialists
            .first()
            .map(|s| s.model.config.num_layers)
            .unwrap_or(1);
        (!self.meta.dial.is_identity(layers) && self.meta.dial.params.lambda > 0.0)
            .then_some(self.meta.dial.params.lambda)
    }

    /// The specialists' names, base first.
    pub fn names(&self) -> Vec<String> {
        self.specialists.iter().map(|s| s.name.clone()).collect()
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> Result<Box<dyn Tokenizer>> {
        Ok(self.tokenizer.build()?)
    }
}
