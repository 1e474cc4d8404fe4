//! The moves of a round (SPEC §9): recruit a candidate as a new block or add it to the
//! recruited block it co-occurs with (1–5), prune a little-used block (6; the merge of the two
//! most alike blocks is tried beside a reassignment, in `reassign.rs`). Each is a [`crate::analysis::mdl::Decision`]; a rejected move leaves
//! the trainer to be rolled back, and a rejected candidate goes on the tabu list.

use candle_core::Tensor;

use crate::analysis::mdl::{
    block_header_bits, decide, map_bits, parameter_bits, removal_z, with_noise_z,
};
use crate::analysis::mdl::{ModelBits, Verdict};
use crate::model::blocks::BlockMap;
use crate::train::recruit::anchors::{drop_anchor, init_anchors};
use crate::train::recruit::cluster::affinity_blocks;
use crate::train::recruit::log::{MoveKind, RecruitEvent, Try};
use crate::train::recruit::maps::{token_ids_in, with_new_block, without_block};
use crate::train::recruit::recruiter::Recruiter;
use crate::train::recruit::round::{RoundCtx, RoundOutcome};
use crate::train::recruit::second_look::{try_second_look, Second};
use crate::train::trainer::{TrainError, Trainer};

/// A candidate block, ready to probe: its tokens (sorted), name, map and anchor keys, and a
/// note on where it came from.
pub(super) struct Candidate {
    tokens: Vec<u32>,
    name: String,
    map: BlockMap,
    anchors: Vec<Tensor>,
    note: String,
}

impl Recruiter {
    /// The round's candidate, if there is room for a block: a block declared by a rule in
    /// force (`new block B = ...`) first, then a cluster of unassigned tokens; with its map
    /// and anchor keys built from the state before any probe.
    pub(super) fn prepare_candidate(
        &self,
        ctx: &RoundCtx<'_>,
        trainer: &Trainer,
    ) -> Result<Option<Candidate>, TrainError> {
        if ctx.base_blocks.num_blocks() >= ctx.cfg.k_max {
            return Ok(None);
        }
        let found = match self.declared(trainer, &ctx.base_blocks) {
            Some((name, mut ids)) => {
                ids.sort_unstable();
                Some((ids, Some(name)))
            }
            None => self
                .candidate(&ctx.stats, &ctx.base_blocks)
                .map(|c| (c, None)),
        };
        let Some((tokens, rule_name)) = found else {
            return Ok(None);
        };
        let from_rule = rule_name.is_some();
        let name = rule_name.unwrap_or_else(|| Self::name_for(&tokens, &ctx.counts, ctx.tok));
        let map = with_new_block(&ctx.base_blocks, &tokens, &name);
        let (anchors, note) = init_anchors(&trainer.model, &ctx.stats, &ctx.base_blocks, &map)?;
        let note = if from_rule {
            format!("declared by a rule; {note}")
        } else {
            format!("{}; {note}", self.profile_note(ctx.tok))
        };
        Ok(Some(Candidate {
            tokens,
            name,
            map,
            anchors,
            note,
        }))
    }

    /// The first block a rule in force declares that the map lacks and that is not tabu.
    fn declared(&self, trainer: &Trainer, base_blocks: &BlockMap) -> Option<(String, Vec<u32>)> {
        trainer
            .rules
            .iter()
            .filter(|r| r.enabled)
            .filter_map(|r| r.declares.clone())
            .find(|(name, ids)| {
                let mut key = ids.clone();
                key.sort_unstable();
                base_blocks.index_of(name).is_none() && !ids.is_empty() && !self.tabu.contains(&key)
            })
    }

    /// 1–5: probe the candidate as a new block and, when its tokens co-occur with a recruited
    /// block, as part of that block; keep the better accepted move (the trainer is left in its
    /// branch), or put the candidate on the tabu list.
    pub(super) fn recruit_move(
        &mut self,
        ctx: &RoundCtx<'_>,
        trainer: &mut Trainer,
        c: Candidate,
        control: f64,
        out: &mut RoundOutcome,
    ) -> Result<(), TrainError> {
        let tokens: Vec<String> = c.tokens.iter().map(|&id| ctx.tok.decode(&[id])).collect();
        let cand = c.tokens.clone();
        // Its steps are training steps the model keeps: never past the run's --steps (a round
        // at the last step took a run of 300 steps to 310).
        let room = trainer.step + ctx.cfg.second_look <= trainer.config.steps;
        let second =
            (ctx.cfg.probe_steps == 0 && ctx.cfg.second_look > 0 && cand.len() >= 2 && room).then(
                || Second {
                    map: c.map.clone(),
                    anchors: c.anchors.clone(),
                    name: c.name.clone(),
                    tokens: cand.len(),
                },
            );
        let mut tries = vec![try_new_block(ctx, trainer, c, control)?];
        let mut states = vec![trainer.snapshot()?];
        let hosts = affinity_blocks(
            &ctx.stats.query_ids,
            &ctx.base_blocks,
            &cand,
            ctx.cfg.window,
            2,
        );
        for host in hosts {
            tries.push(try_extension(ctx, trainer, &cand, host, control)?);
            states.push(trainer.snapshot()?);
        }
        // Judged at once, nothing pays: a second look after probe training.
        if let Some(s) = second.filter(|_| {
            !tries
                .iter()
                .any(|t| t.decision.verdict == Verdict::Accepted)
        }) {
            let (tried, control) = try_second_look(ctx, trainer, s)?;
            tries.push(tried);
            states.push(trainer.snapshot()?);
            out.control = Some(control);
        }
        // The best accepted try; the trainer is left in its branch.
        let best = tries
            .iter()
            .enumerate()
            .filter(|(_, t)| t.decision.verdict == Verdict::Accepted)
            .min_by(|a, b| a.1.decision.delta_dl.total_cmp(&b.1.decision.delta_dl))
            .map(|(i, _)| i);
        match best.and_then(|i| tries.get(i).map(|t| (i, t.data_after))) {
            Some((i, data_after)) => {
                if let Some(state) = states.get(i) {
                    trainer.restore(state)?;
                }
                out.data_bits = data_after;
                out.accepted += 1;
                out.control = None;
            }
            None => {
                let mut key = cand;
                key.sort_unstable();
                self.add_tabu(key, ctx.step);
            }
        }
        log_tries(ctx, tries, best, &tokens, &mut out.events);
        Ok(())
    }
}

/// Probe the candidate as a new block: it pays its header, its map entries and (when
/// charged) its anchor keys.
fn try_new_block(
    ctx: &RoundCtx<'_>,
    trainer: &mut Trainer,
    c: Candidate,
    control: f64,
) -> Result<Try, TrainError> {
    let cfg = &ctx.cfg;
    let after_new = ctx.probe(trainer, Some((c.map, c.anchors)))?;
    let decision = decide(
        format!("recruit block {} ({} tokens)", c.name, c.tokens.len()),
        control,
        after_new,
        ModelBits {
            parameter_bits: parameter_bits(ctx.p_blk, ctx.n),
            header_bits: block_header_bits(cfg.k_max),
            map_bits: map_bits(c.tokens.len(), ctx.vocab, cfg.k_max),
        },
        1.0,
        cfg.delta_bits,
    );
    Ok(Try {
        kind: MoveKind::Recruit,
        block: c.name,
        decision,
        data_after: after_new,
        note: c.note,
    })
}

/// Probe the candidate's tokens added to the recruited block `host` (map bits only).
fn try_extension(
    ctx: &RoundCtx<'_>,
    trainer: &mut Trainer,
    cand: &[u32],
    host: usize,
    control: f64,
) -> Result<Try, TrainError> {
    let cfg = &ctx.cfg;
    let base = &ctx.base_blocks;
    let mut ext = base.clone();
    for &id in cand {
        if let Some(slot) = ext.token_block.get_mut(id as usize) {
            *slot = host;
        }
    }
    let anchors = drop_anchor(&ctx.snap, trainer.model.config.num_layers, usize::MAX)?;
    let after_ext = ctx.probe(trainer, Some((ext, anchors)))?;
    let host_name = base.name(host).to_string();
    let decision = decide(
        format!("add {} tokens to {host_name}", cand.len()),
        control,
        after_ext,
        ModelBits {
            parameter_bits: 0.0,
            header_bits: 0.0,
            map_bits: map_bits(cand.len(), ctx.vocab, cfg.k_max),
        },
        1.0,
        cfg.delta_bits,
    );
    Ok(Try {
        kind: MoveKind::Extend,
        block: host_name,
        decision,
        data_after: after_ext,
        note: String::new(),
    })
}

/// Log the tries for a candidate: the chosen one as decided, one accepted on its own but
/// outdone by the other as rejected ("the other move saves more").
fn log_tries(
    ctx: &RoundCtx<'_>,
    tries: Vec<Try>,
    best: Option<usize>,
    tokens: &[String],
    events: &mut Vec<RecruitEvent>,
) {
    let k0 = ctx.base_blocks.num_blocks();
    for (i, t) in tries.into_iter().enumerate() {
        let chosen = best == Some(i);
        let outdone = !chosen && t.decision.verdict == Verdict::Accepted;
        let mut d = t.decision;
        if outdone {
            // Accepted on its own but the other move saves more: not applied.
            d.verdict = Verdict::Rejected;
        }
        let blocks_after = match (chosen, t.kind) {
            (true, MoveKind::Recruit) => k0 + 1,
            _ => k0,
        };
        let note = if outdone {
            "the other move saves more".to_string()
        } else {
            t.note
        };
        events.push(RecruitEvent {
            step: ctx.step,
            round: ctx.round,
            kind: t.kind,
            block: t.block,
            tokens: tokens.to_vec(),
            decision: Some(d),
            blocks_after,
            dl_after: 0.0,
            note,
        });
    }
}

impl RoundCtx<'_> {
    /// 6b: prune the least-used recruited block when fewer than `prune_usage` of the buffer's
    /// positions use it.
    pub(super) fn prune_move(
        &self,
        trainer: &mut Trainer,
        control: f64,
        out: &mut RoundOutcome,
    ) -> Result<(), TrainError> {
        let base = &self.base_blocks;
        let least = (1..base.num_blocks())
            .map(|b| {
                let used = self
                    .stats
                    .query_ids
                    .iter()
                    .filter(|&&id| base.token_block.get(id as usize) == Some(&b))
                    .count();
                (b, used as f64 / self.n.max(1) as f64)
            })
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((b, usage)) = least.filter(|&(_, u)| u < self.cfg.prune_usage) {
            let note = format!("usage {usage:.1e}");
            let (event, kept) = self.removal(trainer, MoveKind::Prune, b, 0, note, control)?;
            out.record(event, kept);
        }
        Ok(())
    }

    /// Remove block `gone` (its tokens go to `into`, 0 for a prune), judged by the same test as
    /// a recruit with the sign reversed: the block's header and parameters are saved, and for a
    /// prune its map entries too. Returns the event and, when accepted, the data bits of the
    /// branch the trainer is left in.
    pub(super) fn removal(
        &self,
        trainer: &mut Trainer,
        kind: MoveKind,
        gone: usize,
        into: usize,
        note: String,
        control: f64,
    ) -> Result<(RecruitEvent, Option<f64>), TrainError> {
        let (cfg, base) = (&self.cfg, &self.base_blocks);
        let (map, _) = without_block(base, gone, into);
        let anchors = drop_anchor(&self.snap, trainer.model.config.num_layers, gone)?;
        let (before, after, se) = if cfg.merge_probe {
            (control, self.probe(trainer, Some((map, anchors)))?, 0.0)
        } else {
            let after = self.at_once(trainer, (map, anchors))?;
            (self.stats.data_bits, after, self.at_once_noise())
        };
        let moved = token_ids_in(base, gone);
        let gone_name = base.name(gone).to_string();
        let (what, block, map_saved) = if kind == MoveKind::Merge {
            let keep = base.name(into).to_string();
            (format!("merge {gone_name} into {keep}"), keep, 0.0)
        } else {
            let saved = map_bits(moved.len(), self.vocab, cfg.k_max);
            (format!("prune {gone_name}"), gone_name, saved)
        };
        let d = decide(
            what,
            before,
            after,
            ModelBits {
                parameter_bits: parameter_bits(self.p_blk, self.n),
                header_bits: block_header_bits(cfg.k_max),
                map_bits: map_saved,
            },
            -1.0,
            cfg.delta_bits,
        );
        // The margin grows with the removals tried so far in the run (a family-wise bound):
        // with rounds every 25 steps a run tries four times as many merges, and at 2·SE one
        // merge of two true topics in twenty passed on noise.
        let tries = self.removal_tries.get() + 1;
        self.removal_tries.set(tries);
        let d = with_noise_z(d, se, removal_z(tries));
        let accepted = d.verdict == Verdict::Accepted;
        let event = RecruitEvent {
            step: self.step,
            round: self.round,
            kind,
            block,
            tokens: moved.iter().map(|&id| self.tok.decode(&[id])).collect(),
            decision: Some(d),
            blocks_after: base.num_blocks() - usize::from(accepted),
            dl_after: 0.0,
            note,
        };
        Ok((event, accepted.then_some(after)))
    }
}
