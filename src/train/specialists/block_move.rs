//! Move 2 of the pool's growth (SPEC §10): recruit a block inside the specialist that serves
//! the most bits, and what blocks cost in DL_total.
//!
//! **The proposal** comes from the block-level machinery of [`crate::train::recruit`], run on
//! the specialist's routed documents: a [`Recruiter`] (one per specialist, so its tabu list
//! outlives the rounds) takes its candidate cluster from the loss and attention entropy of those
//! documents at the pool's dial, builds the block with its anchor keys, probe-trains it
//! against a control and keeps the better of "new block" and "add to the block it co-occurs
//! with" (when no candidate is left, its merge or prune of two blocks). The recruiter's own
//! acceptance margin is set to −∞, so it always hands its best proposal over; the pool is the
//! judge.
//!
//! **What is trained.** Only the anchor keys, the parameters a block owns (SPEC §9 step 4):
//! the specialist's other weights are untouched, so it adds nothing else over its parent, and
//! its data bits change through the map alone. The anchor keys are not attention slots, so by
//! default they are not charged (`RecruitConfig::charge_anchor_keys`).
//!
//! **The judgement.** The proposal runs on a deep copy of the specialist. The documents routed
//! to it are coded again under the new model and blocks, and the move is kept iff DL_total of
//! the whole pool falls by more than δ, where DL_total now carries the parameter bits the
//! specialist adds and the header and map bits of the blocks every specialist adds over its
//! parent ([`crate::train::specialists::blocks_over_parent`], the constants of `recruit/`). A
//! rejected proposal is dropped with its copy (the pool's weights, blocks, bits and routing
//! are as they were) and its token set goes on the specialist's tabu list.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::analysis::mdl::{decide, parameter_bits, Decision, ModelBits, Verdict};
use crate::model::blocks::{BlockKind, BlockMap};
use crate::model::transformer::anchor_name;
use crate::train::dataset::TokenStream;
use crate::train::optimizer::AdamWConfig;
use crate::train::recruit::{block_params, MoveKind, Recruiter};
use crate::train::specialists::block_bits::block_model_bits;
use crate::train::specialists::config::{PoolConfig, PoolMove};
use crate::train::specialists::documents::Document;
use crate::train::specialists::pool::Pool;
use crate::train::trainer::{TrainConfig, Trainer};

/// Weight of the anchor loss while a block's anchor keys are probe-trained (as in the
/// recruitment tests): the only loss that reaches them.
const ANCHOR_WEIGHT: f64 = 0.05;

/// A block move the recruiter proposes: the trainer holds the changed copy of the specialist.
struct Proposal {
    trainer: Trainer,
    what: String,
    moved: Vec<u32>,
}

/// A proposal priced: the bits table with the specialist's documents coded again, the
/// parameters it would add, DL_total before and after, and the breakdown.
struct Judged {
    bits: Vec<Vec<f64>>,
    added_params: usize,
    dl_before: f64,
    dl_after: f64,
    decision: Decision,
}

impl Pool {
    /// The specialist that serves the most bits, with its documents.
    fn busiest(&self) -> Option<(usize, Vec<usize>)> {
        (0..self.specialists.len())
            .map(|j| {
                let routed: Vec<usize> = (0..self.assignment.len())
                    .filter(|&d| self.assignment.get(d) == Some(&j))
                    .collect();
                let bits: f64 = routed
                    .iter()
                    .filter_map(|&d| self.bits.get(d)?.get(j))
                    .sum();
                (bits, j, routed)
            })
            .filter(|(_, _, routed)| !routed.is_empty())
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, j, routed)| (j, routed))
    }

    /// Move 2: propose a block inside the busiest specialist and judge it by DL_total. Returns
    /// the logged move and whether it was accepted; None when there is nothing to try (the dial
    /// is λ = 0, the blocks are positional, too few tokens, or no candidate is left).
    pub(super) fn block_move(
        &mut self,
        docs: &[Document],
        cfg: &PoolConfig,
        recruiters: &mut BTreeMap<String, Recruiter>,
        round: usize,
    ) -> Result<Option<(PoolMove, bool)>> {
        let Some((j, routed)) = self.busiest() else {
            return Ok(None);
        };
        let name = self
            .specialists
            .get(j)
            .context("no such specialist")?
            .name
            .clone();
        let recruiter = recruiters
            .entry(name.clone())
            .or_insert_with(|| Recruiter::new(cfg.blocks.clone()));
        let Some(p) = self.propose_block(j, &routed, docs, cfg, recruiter)? else {
            return Ok(None);
        };
        let judged = self.judge_block(j, &routed, &p, docs, cfg)?;
        let accepted = judged.decision.verdict == Verdict::Accepted;
        let m = PoolMove {
            round,
            what: self.describe(&p, &judged.decision, routed.len())?,
            dl_before: judged.dl_before,
            dl_after: judged.dl_after,
            accepted,
            decision: Some(judged.decision),
        };
        if !accepted {
            let mut key = p.moved;
            key.sort_unstable();
            if !recruiter.tabu.contains(&key) {
                // The pool's rounds never expire it: a rejected block stays rejected.
                recruiter.add_tabu(key, 0);
            }
            return Ok(Some((m, false)));
        }
        self.adopt(j, p, judged.bits, judged.added_params, docs)?;
        Ok(Some((m, true)))
    }

    /// The log line of a block move: the decision, the first tokens it moved, and its bits on
    /// the specialist's `routed` documents.
    fn describe(&self, p: &Proposal, d: &Decision, routed: usize) -> Result<String> {
        let tok = self.tokenizer()?;
        let words: Vec<String> = p
            .moved
            .iter()
            .take(6)
            .map(|&id| tok.decode(&[id]))
            .collect();
        Ok(format!(
            "{} ({}{}): data {:.0} -> {:.0} bits on its {} documents, \
             parameters {:+.0}, header {:+.1}, map {:+.1} bits",
            d.what,
            words.join(" "),
            if p.moved.len() > words.len() {
                " …"
            } else {
                ""
            },
            d.data_bits_before,
            d.data_bits_after,
            routed,
            d.model.parameter_bits,
            d.model.header_bits,
            d.model.map_bits,
        ))
    }

    /// An accepted block move: the copy becomes specialist `j`; the documents routed elsewhere
    /// are coded under it too, so the routing table stays exact.
    fn adopt(
        &mut self,
        j: usize,
        p: Proposal,
        mut bits: Vec<Vec<f64>>,
        added_params: usize,
        docs: &[Document],
    ) -> Result<()> {
        for (d, doc) in docs.iter().enumerate() {
            if self.assignment.get(d) == Some(&j) {
                continue;
            }
            let b = self.code_bits(&p.trainer.model, &p.trainer.blocks, doc)?;
            if let Some(cell) = bits.get_mut(d).and_then(|row| row.get_mut(j)) {
                *cell = b;
            }
        }
        self.bits = bits;
        if let Some(s) = self.specialists.get_mut(j) {
            s.model = p.trainer.model;
            s.blocks = p.trainer.blocks;
            s.added_params = added_params;
        }
        Ok(())
    }

    /// The recruiter's best block move for specialist `j`, run on a deep copy of it trained on
    /// its documents `routed`; None when the move does not apply or no candidate is left.
    fn propose_block(
        &self,
        j: usize,
        routed: &[usize],
        docs: &[Document],
        cfg: &PoolConfig,
        recruiter: &mut Recruiter,
    ) -> Result<Option<Proposal>> {
        let Some(lambda) = self.coding_lambda() else {
            return Ok(None);
        };
        let s = self.specialists.get(j).context("no such specialist")?;
        if s.blocks.kind != BlockKind::Semantic {
            return Ok(None);
        }
        let ids: Vec<u32> = routed
            .iter()
            .filter_map(|&d| docs.get(d))
            .flat_map(|d| d.ids.iter().copied())
            .collect();
        let seq = cfg.seq_len.min(s.model.config.max_seq_len);
        if seq < 2 || ids.len() <= 2 * seq + 1 {
            return Ok(None);
        }
        let mut model = s.model.clone();
        model.params = model.params.deep_clone()?;
        let trainable = (0..model.config.num_layers).map(anchor_name).collect();
        let mut trainer = Trainer::new(
            model,
            s.blocks.clone(),
            TokenStream {
                ids: ids.clone(),
                targets: Vec::new(),
            },
            TrainConfig {
                steps: cfg.blocks.probe_steps,
                batch_size: cfg.batch_size,
                seq_len: seq,
                seed: cfg.seed,
                trainable,
                mu_anchor: ANCHOR_WEIGHT,
                forward_lambda: Some(lambda),
                optimizer: AdamWConfig::default(),
                ..TrainConfig::default()
            },
        )?;
        recruiter.config.lambda = lambda;
        recruiter.config.delta_bits = f64::NEG_INFINITY;
        recruiter.config.scale_to_corpus = false;
        let tok = self.tokenizer()?;
        let events = recruiter.round(&mut trainer, &ids, tok.as_ref())?;
        // The recruiter's chosen move (with its margin at −∞, the best one it tried).
        let Some(what) = events.iter().find_map(|e| {
            let d = e.decision.as_ref()?;
            (d.verdict == Verdict::Accepted && e.kind != MoveKind::Stop).then(|| d.what.clone())
        }) else {
            return Ok(None);
        };
        // The tokens whose block (by name) the move changed.
        let moved: Vec<u32> = (0u32..)
            .zip(&trainer.blocks.token_block)
            .filter(|&(id, &b)| {
                let before = s.blocks.token_block.get(id as usize);
                before.map(|&o| s.blocks.name(o)) != Some(trainer.blocks.name(b))
            })
            .map(|(id, _)| id)
            .collect();
        Ok(Some(Proposal {
            trainer,
            what,
            moved,
        }))
    }

    /// DL_total before and after a proposal for specialist `j`: its documents `routed` coded
    /// again, its parameters and every specialist's blocks priced again.
    fn judge_block(
        &self,
        j: usize,
        routed: &[usize],
        p: &Proposal,
        docs: &[Document],
        cfg: &PoolConfig,
    ) -> Result<Judged> {
        let s = self.specialists.get(j).context("no such specialist")?;
        let tokens: Vec<usize> = docs.iter().map(|d| d.ids.len()).collect();
        let n_j: usize = routed.iter().filter_map(|&d| tokens.get(d)).sum();
        let (bits, data_before, data_after) = self.recode_routed(j, routed, p, docs)?;
        // Anchor keys, when charged, count as parameters the specialist adds.
        let p_blk = if cfg.blocks.charge_anchor_keys {
            block_params(&s.model) as i64
        } else {
            0
        };
        let k_delta = p.trainer.blocks.num_blocks() as i64 - s.blocks.num_blocks() as i64;
        let added_params = (s.added_params as i64 + k_delta * p_blk).max(0) as usize;
        let mut costs = self.costs(cfg);
        if let Some(c) = costs.added_params.get_mut(j) {
            *c = added_params;
        }
        let blocks = self.block_change(j, p, cfg);
        let dl_before = self.dl_total(docs, cfg);
        let dl_after = self.priced(&bits, &tokens, &self.assignment, &costs, &blocks.after);
        let mut decision = decide(
            format!("{} in specialist {}", p.what, s.name),
            data_before,
            data_after,
            ModelBits {
                parameter_bits: parameter_bits(added_params, n_j)
                    - parameter_bits(s.added_params, n_j),
                header_bits: blocks.header_bits,
                map_bits: blocks.map_bits,
            },
            1.0,
            cfg.delta_bits,
        );
        // The verdict on DL_total itself (the breakdown sums to its change).
        decision.verdict = if dl_before - dl_after > cfg.delta_bits {
            Verdict::Accepted
        } else {
            Verdict::Rejected
        };
        Ok(Judged {
            bits,
            added_params,
            dl_before,
            dl_after,
            decision,
        })
    }

    /// The bits table with specialist `j`'s documents `routed` coded again under the
    /// proposal, and their data bits before and after.
    fn recode_routed(
        &self,
        j: usize,
        routed: &[usize],
        p: &Proposal,
        docs: &[Document],
    ) -> Result<(Vec<Vec<f64>>, f64, f64)> {
        let mut bits = self.bits.clone();
        let (mut data_before, mut data_after) = (0.0, 0.0);
        for &d in routed {
            let doc = docs.get(d).context("no such document")?;
            let b = self.code_bits(&p.trainer.model, &p.trainer.blocks, doc)?;
            if let Some(cell) = bits.get_mut(d).and_then(|row| row.get_mut(j)) {
                data_before += *cell;
                *cell = b;
            }
            data_after += b;
        }
        Ok((bits, data_before, data_after))
    }

    /// Every specialist's block bits with the proposal in place of specialist `j`'s blocks,
    /// and what the blocks add over every specialist with documents (the specialist's own,
    /// and its children's, which are priced against its blocks).
    fn block_change(&self, j: usize, p: &Proposal, cfg: &PoolConfig) -> BlockChange {
        let parents: Vec<Option<usize>> = self.specialists.iter().map(|s| s.parent).collect();
        let maps_before: Vec<&BlockMap> = self.specialists.iter().map(|s| &s.blocks).collect();
        let mut maps_after = maps_before.clone();
        if let Some(m) = maps_after.get_mut(j) {
            *m = &p.trainer.blocks;
        }
        let before = block_model_bits(&maps_before, &parents, &self.root_blocks, cfg);
        let after = block_model_bits(&maps_after, &parents, &self.root_blocks, cfg);
        let (mut header_bits, mut map_bits) = (0.0, 0.0);
        for (k, (a, b)) in after.iter().zip(&before).enumerate() {
            if self.assignment.contains(&k) {
                header_bits += a.header_bits - b.header_bits;
                map_bits += a.map_bits - b.map_bits;
            }
        }
        BlockChange {
            after: after.iter().map(ModelBits::total).collect(),
            header_bits,
            map_bits,
        }
    }
}

/// What a block proposal changes in the pool's block bits: every specialist's total after
/// it, and the header and map bits it adds over the specialists with documents.
struct BlockChange {
    after: Vec<f64>,
    header_bits: f64,
    map_bits: f64,
}
