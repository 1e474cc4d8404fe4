//! Model-level (hierarchical) recruitment, SPEC §10: a pool of specialists, each a localist
//! model with its own blocks, sharing the base's tokenizer and dial; documents routed to the
//! specialist that codes them in the fewest bits; and moves tried cheapest first, each kept
//! only when it lowers DL_total by more than δ bits:
//! 1. re-route documents ([`crate::analysis::mdl::reroute`]);
//! 2. recruit a block inside the specialist that serves the most bits, by the block-level
//!    machinery of [`crate::train::recruit`] run on its documents (`pool_blocks.rs`);
//! 3. recruit a specialist: a copy of the specialist that codes a cluster of poorly coded
//!    documents best (with its blocks), fine-tuned on that cluster with only a few parameters
//!    trainable (`head.bias` and the final LayerNorm by default), so it adds only those over
//!    its parent;
//! 4. merge a specialist into the others (its documents go to their next best) when that
//!    saves more than δ, and prune one that no document is routed to.
//!
//! DL_total is [`crate::analysis::mdl::dl_total`] plus, for every specialist with documents,
//! the header and map bits of the blocks it adds over its parent ([`blocks_over_parent`]): a
//! specialist is charged only for what it adds, its weights and its blocks alike. Code lengths
//! are measured at the base checkpoint's saved dial; at λ = 0 blocks change nothing, and the
//! block move is not tried.
//!
//! The cluster is found by splitting each specialist's documents at the largest gap in their
//! bits per token (a one-dimensional 2-means): documents coded much worse than their peers
//! are what a new specialist could serve. Rejected clusters go on a tabu list.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::analysis::mdl::{dl_total, parameter_bits, reroute, Decision, PoolCosts};
use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::codelength::code_length_bits;
use crate::engine::pool_blocks::block_bits_of;
pub use crate::engine::pool_blocks::blocks_over_parent;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{load_checkpoint, save_checkpoint, CheckpointMeta};
use crate::model::dial::DialSetting;
use crate::model::transformer::LocalistModel;
use crate::train::dataset::TokenStream;
use crate::train::optimizer::AdamWConfig;
use crate::train::recruit::{RecruitConfig, Recruiter};
use crate::train::trainer::{TrainConfig, Trainer};

/// A document: a name and its token ids.
#[derive(Clone, Debug)]
pub struct Document {
    /// File name, or `#k` for the k-th document of a separated file.
    pub name: String,
    /// Token ids.
    pub ids: Vec<u32>,
}

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

/// Settings of the growth loop.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PoolConfig {
    /// Acceptance margin δ, bits.
    pub delta_bits: f64,
    /// Header bits c_llm per specialist.
    pub header_bits: f64,
    /// Most specialists.
    pub max_specialists: usize,
    /// Fine-tuning steps of a candidate specialist.
    pub probe_steps: usize,
    /// Rows per fine-tuning batch.
    pub batch_size: usize,
    /// Tokens per row.
    pub seq_len: usize,
    /// Learning rate of the fine-tuning.
    pub lr: f64,
    /// Parameter-name prefixes a specialist trains (and pays for).
    pub trainable: Vec<String>,
    /// Stop after this many rounds without an accepted move.
    pub patience: usize,
    /// Seed.
    pub seed: u64,
    /// Try recruiting blocks inside a specialist (move 2).
    #[serde(default = "yes")]
    pub block_moves: bool,
    /// Settings of the block move: K_max and the header and map constants, the probe steps,
    /// the buffer, `charge_anchor_keys` (its λ and δ are the pool's: see `pool_blocks.rs`).
    #[serde(default)]
    pub blocks: RecruitConfig,
}

fn yes() -> bool {
    true
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            delta_bits: 64.0,
            header_bits: 64.0,
            max_specialists: 8,
            probe_steps: 60,
            batch_size: 8,
            seq_len: 32,
            lr: 0.05,
            trainable: vec!["head.bias".into(), "ln_f".into()],
            patience: 1,
            seed: 0,
            block_moves: true,
            blocks: RecruitConfig::default(),
        }
    }
}

/// One move, with its bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolMove {
    /// Round.
    pub round: usize,
    /// What was tried.
    pub what: String,
    /// DL_total before, bits.
    pub dl_before: f64,
    /// DL_total after, bits.
    pub dl_after: f64,
    /// Accepted or not.
    pub accepted: bool,
    /// The bits of a block move: data bits of the specialist's documents before and after,
    /// and the parameter, header and map bits it adds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

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
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let m: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a specialist pool manifest", path.display()))?;
    if m.format != MANIFEST_FORMAT {
        bail!(
            "{}: not a specialist pool manifest (format {:?})",
            path.display(),
            m.format
        );
    }
    Ok(m)
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
    /// bits[d][j] = L(d | M_j).
    pub bits: Vec<Vec<f64>>,
    /// The moves tried, in order.
    pub log: Vec<PoolMove>,
    /// Number of the next recruited specialist (names are never reused after a prune).
    next_name: usize,
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

fn count_params(model: &LocalistModel, prefixes: &[String]) -> usize {
    model
        .params
        .iter()
        .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p.as_str())))
        .map(|(_, v)| v.as_tensor().elem_count())
        .sum()
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
        let mut bits = Vec::with_capacity(docs.len());
        for d in docs {
            let row = (0..self.specialists.len())
                .map(|j| self.doc_bits(j, d))
                .collect::<Result<Vec<f64>>>()?;
            bits.push(row);
        }
        self.bits = bits;
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        self.assignment =
            crate::analysis::mdl::route(&self.bits, &tokens, &self.costs(cfg)).assignment;
        Ok(())
    }

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

    /// Header and map bits of the blocks each specialist adds over its parent.
    pub fn block_bits(&self, cfg: &PoolConfig) -> Vec<f64> {
        let parents: Vec<Option<usize>> = self.specialists.iter().map(|s| s.parent).collect();
        let maps: Vec<&BlockMap> = self.specialists.iter().map(|s| &s.blocks).collect();
        block_bits_of(&maps, &parents, &self.root_blocks, cfg)
    }

    /// [`Pool::block_bits`] with specialist `j` removed: its children then descend from its
    /// parent (as a merge leaves them).
    fn block_bits_without(&self, j: usize, cfg: &PoolConfig) -> Vec<f64> {
        let removed_parent = self.specialists.get(j).and_then(|s| s.parent);
        let (maps, parents): (Vec<&BlockMap>, Vec<Option<usize>>) = self
            .specialists
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != j)
            .map(|(_, s)| {
                let parent = match s.parent {
                    Some(p) if p == j => removed_parent,
                    Some(p) if p > j => Some(p - 1),
                    other => other,
                };
                (&s.blocks, parent)
            })
            .unzip();
        block_bits_of(&maps, &parents, &self.root_blocks, cfg)
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

    /// Documents coded much worse than their specialist's others: per specialist, the upper
    /// side of the largest gap in bits per token (needs two documents on each side).
    fn candidate(&self, docs: &[Document], tabu: &[Vec<usize>]) -> Option<(usize, Vec<usize>)> {
        let mut best: Option<(f64, usize, Vec<usize>)> = None;
        for j in 0..self.specialists.len() {
            let mut rate: Vec<(f64, usize)> = self
                .assignment
                .iter()
                .enumerate()
                .filter(|(_, &a)| a == j)
                .filter_map(|(d, _)| {
                    let n = docs.get(d)?.ids.len().saturating_sub(1).max(1) as f64;
                    Some((self.bits.get(d)?.get(j)? / n, d))
                })
                .collect();
            if rate.len() < 4 {
                continue;
            }
            rate.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (gap, at) = rate
                .windows(2)
                .enumerate()
                .filter(|(k, _)| *k >= 1 && *k + 2 < rate.len())
                .map(|(k, w)| (w[1].0 - w[0].0, k + 1))
                .fold((0.0, 0), |b, x| if x.0 > b.0 { x } else { b });
            if at == 0 {
                continue;
            }
            let mut cluster: Vec<usize> = rate[at..].iter().map(|&(_, d)| d).collect();
            cluster.sort_unstable();
            if tabu.contains(&cluster) {
                continue;
            }
            if best.as_ref().is_none_or(|b| gap > b.0) {
                best = Some((gap, j, cluster));
            }
        }
        best.map(|(_, j, c)| (j, c))
    }

    /// Fine-tune a copy of specialist `from` on `cluster`; the copy is not in the pool yet.
    fn probe(
        &mut self,
        from: usize,
        cluster: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
    ) -> Result<Specialist> {
        let parent = self.specialists.get(from).context("no such specialist")?;
        let mut model = parent.model.clone();
        model.params = model.params.deep_clone()?;
        let ids: Vec<u32> = cluster
            .iter()
            .filter_map(|&d| docs.get(d))
            .flat_map(|d| d.ids.iter().copied())
            .collect();
        let seq = cfg
            .seq_len
            .min(model.config.max_seq_len)
            .min(ids.len().saturating_sub(2))
            .max(1);
        let blocks = parent.blocks.clone();
        let mut tr = Trainer::new(
            model,
            blocks.clone(),
            TokenStream {
                ids,
                targets: Vec::new(),
            },
            TrainConfig {
                steps: cfg.probe_steps,
                batch_size: cfg.batch_size,
                seq_len: seq,
                seed: cfg.seed,
                trainable: cfg.trainable.clone(),
                optimizer: AdamWConfig {
                    lr: cfg.lr,
                    ..Default::default()
                },
                // Trained at the dial it is measured at (no change at λ = 0).
                forward_lambda: self.coding_lambda(),
                ..TrainConfig::default()
            },
        )?;
        for _ in 0..cfg.probe_steps {
            tr.train_step()?;
        }
        let added = count_params(&tr.model, &cfg.trainable);
        let name = format!("s{}", self.next_name);
        self.next_name += 1;
        Ok(Specialist {
            name,
            parent: Some(from),
            model: tr.model,
            blocks,
            added_params: added,
        })
    }

    /// Grow the pool until `patience` rounds pass without an accepted move or the pool is full.
    /// `on_move` sees every move as it is decided.
    pub fn grow(
        &mut self,
        docs: &[Document],
        cfg: &PoolConfig,
        mut on_move: impl FnMut(&PoolMove),
    ) -> Result<()> {
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        let mut tabu: Vec<Vec<usize>> = Vec::new();
        // One block recruiter per specialist (by name): its tabu list outlives the rounds.
        let mut recruiters: BTreeMap<String, Recruiter> = BTreeMap::new();
        let (mut round, mut idle) = (0usize, 0usize);
        while idle < cfg.patience.max(1) {
            round += 1;
            let mut accepted_any = false;
            // 1. Re-route.
            let before = self.dl_total(docs, cfg);
            let r = reroute(&self.bits, &tokens, &self.costs(cfg), &self.assignment);
            // The blocks' bits count only for specialists with documents, so the routing is
            // priced again with them.
            let rerouted = self.priced(
                &self.bits,
                &tokens,
                &r.assignment,
                &self.costs(cfg),
                &self.block_bits(cfg),
            );
            let moved = r.assignment != self.assignment && rerouted < before;
            if moved {
                self.assignment = r.assignment;
                accepted_any = true;
            }
            self.push(
                round,
                "re-route documents to their shortest code".into(),
                before,
                if moved { rerouted } else { before },
                moved,
                &mut on_move,
            );
            // 2. Recruit a block inside the specialist that serves the most bits.
            if cfg.block_moves {
                if let Some((m, accepted)) = self.block_move(docs, cfg, &mut recruiters, round)? {
                    accepted_any |= accepted;
                    self.record(m, &mut on_move);
                }
            }
            // 3. Recruit a specialist for the worst-coded cluster.
            if self.specialists.len() < cfg.max_specialists {
                if let Some((from, cluster)) = self.candidate(docs, &tabu) {
                    let before = self.dl_total(docs, cfg);
                    let cand = self.probe(from, &cluster, docs, cfg)?;
                    let j = self.specialists.len();
                    let mut bits = self.bits.clone();
                    for (row, d) in bits.iter_mut().zip(docs) {
                        row.push(self.code_bits(&cand.model, &cand.blocks, d)?);
                    }
                    let mut costs = self.costs(cfg);
                    costs.added_params.push(cand.added_params);
                    // A copy adds no blocks over its parent.
                    let mut block_bits = self.block_bits(cfg);
                    block_bits.push(0.0);
                    let mut assignment = self.assignment.clone();
                    for &d in &cluster {
                        if let Some(a) = assignment.get_mut(d) {
                            *a = j;
                        }
                    }
                    let routed = reroute(&bits, &tokens, &costs, &assignment);
                    let after =
                        self.priced(&bits, &tokens, &routed.assignment, &costs, &block_bits);
                    let accept = before - after > cfg.delta_bits;
                    let what =
                        format!(
                        "recruit {} from {} for {} documents ({} parameters, {:.0} parameter bits)",
                        cand.name,
                        self.specialists.get(from).map(|s| s.name.as_str()).unwrap_or("?"),
                        cluster.len(),
                        cand.added_params,
                        parameter_bits(cand.added_params, cluster.iter().map(|&d| tokens[d]).sum())
                    );
                    self.push(round, what, before, after, accept, &mut on_move);
                    if accept {
                        self.specialists.push(cand);
                        self.bits = bits;
                        self.assignment = routed.assignment;
                        accepted_any = true;
                    } else {
                        tabu.push(cluster);
                    }
                }
            }
            // 4. Merge: hand a specialist's documents to the others (each to its best) and drop
            //    it, when that saves more than δ; a specialist nobody uses is pruned outright.
            for j in (1..self.specialists.len()).rev() {
                let before = self.dl_total(docs, cfg);
                let unused = !self.assignment.contains(&j);
                let mut bits = self.bits.clone();
                for row in &mut bits {
                    row.remove(j);
                }
                let assignment: Vec<usize> = self
                    .assignment
                    .iter()
                    .enumerate()
                    .map(|(d, &a)| {
                        if a == j {
                            bits.get(d)
                                .and_then(|row| {
                                    row.iter()
                                        .enumerate()
                                        .min_by(|x, y| x.1.total_cmp(y.1))
                                        .map(|(k, _)| k)
                                })
                                .unwrap_or(0)
                        } else if a > j {
                            a - 1
                        } else {
                            a
                        }
                    })
                    .collect();
                let mut costs = self.costs(cfg);
                costs.added_params.remove(j);
                let after = self.priced(
                    &bits,
                    &tokens,
                    &assignment,
                    &costs,
                    &self.block_bits_without(j, cfg),
                );
                let accept = unused || before - after > cfg.delta_bits;
                let name = self
                    .specialists
                    .get(j)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let what = if unused {
                    format!("prune {name} (no document routed to it)")
                } else {
                    format!("merge {name} into the others (its documents to their next best)")
                };
                self.push(round, what, before, after, accept, &mut on_move);
                if !accept {
                    continue;
                }
                let removed = self.specialists.remove(j);
                // Children of the removed specialist now descend from its parent (with the
                // same trainable set, they still add the same parameters over it).
                for sp in &mut self.specialists {
                    sp.parent = match sp.parent {
                        Some(p) if p == j => removed.parent,
                        Some(p) if p > j => Some(p - 1),
                        other => other,
                    };
                }
                self.bits = bits;
                self.assignment = assignment;
                if !unused {
                    accepted_any = true;
                }
            }
            if accepted_any {
                idle = 0;
            } else {
                idle += 1;
            }
        }
        Ok(())
    }

    fn push(
        &mut self,
        round: usize,
        what: String,
        dl_before: f64,
        dl_after: f64,
        accepted: bool,
        on_move: &mut impl FnMut(&PoolMove),
    ) {
        let m = PoolMove {
            round,
            what,
            dl_before,
            dl_after,
            accepted,
            decision: None,
        };
        self.record(m, on_move);
    }

    fn record(&mut self, m: PoolMove, on_move: &mut impl FnMut(&PoolMove)) {
        on_move(&m);
        self.log.push(m);
    }

    /// The routing table: for each document, bits under each specialist and where it goes.
    pub fn routing_table(&self, docs: &[Document]) -> String {
        let mut s = String::from("| document | tokens |");
        for sp in &self.specialists {
            s.push_str(&format!(" {} (bits) |", sp.name));
        }
        s.push_str(" routed to |\n|---|---|");
        for _ in &self.specialists {
            s.push_str("---|");
        }
        s.push_str("---|\n");
        for (d, doc) in docs.iter().enumerate() {
            s.push_str(&format!("| {} | {} |", doc.name, doc.ids.len()));
            for b in self.bits.get(d).into_iter().flatten() {
                s.push_str(&format!(" {b:.0} |"));
            }
            let to = self
                .assignment
                .get(d)
                .and_then(|&j| self.specialists.get(j))
                .map(|s| s.name.as_str())
                .unwrap_or("?");
            s.push_str(&format!(" {to} |\n"));
        }
        s
    }

    /// Save as a directory: one checkpoint per specialist and `manifest.json`.
    pub fn save(&self, dir: &Path, docs: &[Document]) -> Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for s in &self.specialists {
            save_checkpoint(&dir.join(&s.name), &self.meta, &s.blocks, &s.model, None)?;
        }
        let manifest = Manifest {
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
            routing: docs
                .iter()
                .zip(&self.assignment)
                .enumerate()
                .map(|(k, (d, &j))| ManifestRoute {
                    document: d.name.clone(),
                    tokens: d.ids.len(),
                    specialist: self
                        .specialists
                        .get(j)
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    bits: self.bits.get(k).cloned().unwrap_or_default(),
                })
                .collect(),
            log: self.log.clone(),
            root_blocks: Some(self.root_blocks.clone()),
        };
        crate::engine::export::write_atomic(
            &dir.join("manifest.json"),
            serde_json::to_string_pretty(&manifest)?.as_bytes(),
        )
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> Result<Box<dyn Tokenizer>> {
        Ok(self.tokenizer.build()?)
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
        let Some(first) = names.first() else {
            bail!("{}: the pool is empty", dir.join("manifest.json").display());
        };
        let (mut pool, documents) = Pool::from_checkpoint(&dir.join(first), docs)?;
        let shared = pool.specialists[0].blocks.clone();
        if let Some(root) = manifest.root_blocks.clone() {
            pool.root_blocks = root;
        }
        pool.specialists[0].name = first.clone();
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
            pool.specialists.push(Specialist {
                name,
                parent,
                model: ck.model,
                blocks,
                added_params: e.added_params,
            });
        }
        for (e, s) in manifest.specialists.iter().zip(&pool.specialists) {
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
        pool.next_name = pool.specialists.len();
        let mut bits = Vec::with_capacity(documents.len());
        for d in &documents {
            let mut row = Vec::with_capacity(pool.specialists.len());
            for j in 0..pool.specialists.len() {
                row.push(pool.doc_bits(j, d)?);
            }
            bits.push(row);
        }
        pool.bits = bits;
        let tokens: Vec<usize> = documents.iter().map(|d| d.ids.len()).collect();
        pool.assignment =
            crate::analysis::mdl::route(&pool.bits, &tokens, &pool.costs(cfg)).assignment;
        Ok((pool, documents))
    }
}
