//! One round of block-level recruitment (SPEC §9), in named steps: measure the buffer and
//! snapshot the trainer; prepare the candidate; train the control; try the recruit (or
//! extend) move, then a reassignment, a merge, a prune; keep the accepted branch or roll back;
//! record the round and decide whether to stop. The moves are `moves.rs` and `reassign.rs`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Tensor;

use crate::data::tokenizer::Tokenizer;
use crate::model::blocks::{BlockKind, BlockMap};
use crate::train::recruit::buffer::{
    block_params, buffer_stats, context_use, description_length, BufferStats,
};
use crate::train::recruit::config::{quiet_tries, RecruitConfig};
use crate::train::recruit::log::{closest_try, MoveKind, RecruitEvent, RoundSummary};
use crate::train::recruit::profile::Profile;
use crate::train::recruit::recruiter::{Measured, Recruiter};
use crate::train::recruit::round_tabu::RoundTabu;
use crate::train::trainer::{TrainError, Trainer, TrainerSnapshot};

/// What a round knows before any move: its step, the buffer and its measurement, the state.
pub(super) struct RoundCtx<'a> {
    /// Training step of the round.
    pub step: usize,
    /// Round number (0-based).
    pub round: usize,
    /// The recruiter's settings.
    pub cfg: RecruitConfig,
    /// Tokens per window (the trainer's sequence length).
    pub seq: usize,
    /// The held-out buffer, cut to `buffer_tokens`.
    pub buffer: &'a [u32],
    /// The buffer measured under the current map, with per-position facts.
    pub stats: BufferStats,
    /// n: the positions the data bits stand for (the corpus when scaled, else the buffer).
    pub n: usize,
    /// Data bits per buffer bit: corpus tokens over buffer positions (1 when not scaled).
    pub scale: f64,
    /// Parameters charged per block (0 unless anchor keys are charged).
    pub p_blk: usize,
    /// Vocabulary size.
    pub vocab: usize,
    /// Occurrences of each token as a query in the buffer.
    pub counts: BTreeMap<u32, usize>,
    /// The trainer before the round.
    pub snap: TrainerSnapshot,
    /// The block map before the round.
    pub base_blocks: BlockMap,
    /// The function words of the localist view (`Recruiter::inheriting`), by vocabulary id.
    pub inheriting: Vec<bool>,
    /// The tokenizer (for names and logged tokens).
    pub tok: &'a dyn Tokenizer,
    /// Every branch a trial measured this round (unscaled, with per-position facts): the one
    /// the round keeps is the next round's measurement, when no training comes between.
    pub measured: RefCell<Vec<Measured>>,
    /// Merges and prunes tried in the run so far, this round's included.
    pub removal_tries: Cell<usize>,
}

/// What the round has done so far: its events, its accepted moves and the data bits of the
/// branch the trainer is in.
pub(super) struct RoundOutcome {
    /// The events, in order.
    pub events: Vec<RecruitEvent>,
    /// Moves accepted in this round.
    pub accepted: usize,
    /// L(D | M) of the state the round keeps.
    pub data_bits: f64,
    /// The control of a rejected second look and its data bits: see `RoundCtx::roll_back`.
    pub control: Option<(TrainerSnapshot, f64)>,
}

impl RoundOutcome {
    /// Log a removal move; when it was kept (`kept` holds its data bits), the trainer is in
    /// its branch.
    pub fn record(&mut self, event: RecruitEvent, kept: Option<f64>) {
        self.events.push(event);
        if let Some(after) = kept {
            self.data_bits = after;
            self.accepted += 1;
        }
    }
}

impl RoundCtx<'_> {
    /// DL(M) with these data bits and this map.
    pub fn dl(&self, data_bits: f64, map: &BlockMap) -> f64 {
        description_length(data_bits, map, self.p_blk, self.n, self.cfg.k_max)
    }

    /// A trial: from the state before the round, optionally under another map, `steps`
    /// ordinary training steps, then the data bits on the buffer.
    pub fn trial(
        &self,
        trainer: &mut Trainer,
        change: Option<(BlockMap, Vec<Tensor>)>,
        steps: usize,
    ) -> Result<f64, TrainError> {
        trainer.restore(&self.snap)?;
        if let Some((map, anchors)) = change {
            trainer.replace_blocks(map, anchors)?;
        }
        let trained = Instant::now();
        for _ in 0..steps {
            trainer.train_step()?;
        }
        let train_ms = trained.elapsed().as_secs_f64() * 1e3;
        // With the per-position facts (about a tenth more than the bits alone): when this
        // branch is kept, the next round reuses them instead of measuring again.
        let stats = buffer_stats(
            &trainer.model,
            &trainer.blocks,
            &self.inheriting,
            self.buffer,
            self.cfg.lambda,
            self.seq,
            true,
        )?;
        let bits = stats.data_bits * self.scale;
        self.measured.borrow_mut().push(Measured {
            step: trainer.step,
            blocks: trainer.blocks.clone(),
            buffer_len: self.buffer.len(),
            train_ms,
            stats,
        });
        Ok(bits)
    }

    /// The probe of a candidate, and the control (no change): `probe_steps` steps. Every
    /// candidate is trained the same number of steps from the same state on the same batches
    /// as the control, so the data bits compare maps, not amounts of training.
    pub fn probe(
        &self,
        trainer: &mut Trainer,
        change: Option<(BlockMap, Vec<Tensor>)>,
    ) -> Result<f64, TrainError> {
        self.trial(trainer, change, self.cfg.probe_steps)
    }
}

impl Recruiter {
    /// Run one round on `buffer` (held-out ids), changing `trainer`'s map and anchors only for
    /// accepted moves: after an accepted move the round goes on from the new map, up to
    /// `moves_per_round` accepted moves. Returns the events of the round.
    pub fn round(
        &mut self,
        trainer: &mut Trainer,
        buffer: &[u32],
        tok: &dyn Tokenizer,
    ) -> Result<Vec<RecruitEvent>, TrainError> {
        let mut events = Vec::new();
        let _forget = super::buffer_native::ForgetKept; // its measurements end with the round

        // On a small text a rejected candidate does not end the round (`quiet_tries`).
        let (quiet_tries, mut held) = (quiet_tries(trainer), RoundTabu::default());
        let (mut accepted_in_round, mut quiet, mut i) = (0, 0, 0);
        while accepted_in_round < self.config.moves_per_round.max(1) && quiet < quiet_tries {
            let before = self.tabu.clone();
            let (more, accepted) = self.single_round(trainer, buffer, tok, i == 0)?;
            held.after_try(self, &before);
            let tried = more
                .iter()
                .any(|e| !matches!(e.kind, MoveKind::Stop | MoveKind::Wait));
            events.extend(more);
            i += 1;
            if self.stopped.is_some() || !tried {
                break;
            }
            accepted_in_round += accepted;
            quiet += usize::from(accepted == 0);
        }
        held.release(self);
        Ok(events)
    }

    /// One try: measure, the candidate's moves, then (in a round's first try only, so a round
    /// does not undo what it has just recruited) merge and prune; returns the events and the
    /// number of accepted moves.
    fn single_round(
        &mut self,
        trainer: &mut Trainer,
        buffer: &[u32],
        tok: &dyn Tokenizer,
        first: bool,
    ) -> Result<(Vec<RecruitEvent>, usize), TrainError> {
        let started = Instant::now();
        let train_ms = self
            .last_round_end
            .map(|t| t.elapsed().as_secs_f64() * 1e3)
            .unwrap_or(0.0);
        if first {
            // A cluster rejected a round ago has sat one round out: the model has trained
            // since, and a candidate it could not use then may pay now.
            self.expire_tabu(trainer.step);
        }
        let ctx = self.begin_round(trainer, buffer, tok)?;
        // The candidate and its anchor keys come from the state before any probe.
        let candidate = self.prepare_candidate(&ctx, trainer)?;
        let control = if ctx.cfg.probe_steps == 0 {
            ctx.stats.data_bits
        } else {
            ctx.probe(trainer, None)?
        };
        let mut out = RoundOutcome {
            events: Vec::new(),
            accepted: 0,
            data_bits: control,
            control: None,
        };
        // 1–5: recruit a candidate, as a new block or into the block it co-occurs with.
        if let Some(c) = candidate {
            self.recruit_move(&ctx, trainer, c, control, &mut out)?;
        }
        // 6: reassign, merge, then prune, in a round that accepted nothing, once the penalty has
        // ramped up (from the start or the last accepted move): judged on a model trained so.
        if out.accepted == 0 && first && trainer.penalty_ramped() {
            self.reassign_or_merge(&ctx, trainer, control, &mut out)?;
            if out.accepted == 0 {
                ctx.prune_move(trainer, control, &mut out)?;
            }
        }
        // Keep the accepted branch (the trainer is in it: it was probed last), else roll back
        // (to the state before the round, or to a rejected second look's control).
        let mut context = None;
        if out.accepted == 0 {
            ctx.roll_back(trainer, &mut out)?;
            // Whether the model reads context decides only whether a quiet round counts.
            if first {
                let (bits, gain) = (ctx.stats.data_bits, ctx.cfg.min_context_gain);
                context = context_use(trainer, ctx.buffer, ctx.seq, bits, ctx.scale, gain)?;
            }
        }
        let accepted = out.accepted;
        let timing = (started, train_ms);
        Ok((
            self.finish_round(&ctx, trainer, out, timing, first, context),
            accepted,
        ))
    }

    /// Measure the buffer under the current map, set DL₀ on the first round, and snapshot the
    /// trainer.
    fn begin_round<'a>(
        &mut self,
        trainer: &Trainer,
        buffer: &'a [u32],
        tok: &'a dyn Tokenizer,
    ) -> Result<RoundCtx<'a>, TrainError> {
        let (round, step) = (self.rounds.len(), trainer.step);
        let cfg = self.config.clone();
        if trainer.blocks.kind != BlockKind::Semantic {
            return Err(TrainError::Invalid(
                "recruitment needs a semantic block map (not positional windows)".into(),
            ));
        }
        let seq = trainer.config.seq_len;
        let full_len = buffer.len();
        let n_buf = full_len.min(cfg.buffer_tokens.max(seq + 1));
        let buffer = buffer.get(..n_buf).unwrap_or(buffer);
        if self.profile.is_none() {
            let profile = Profile::of_text(&trainer.train.ids, cfg.window, cfg.min_count, tok);
            self.profile = Some(profile);
        }
        let inheriting = self.inheriting(trainer.blocks.token_block.len());
        let mut stats = self.measure_buffer(trainer, &inheriting, buffer, seq)?;
        let coded = stats.loss_bits.len().max(1);
        let (n, scale) = if cfg.scale_to_corpus {
            let corpus = trainer.train.ids.len() + full_len;
            (corpus.max(coded), corpus.max(coded) as f64 / coded as f64)
        } else {
            (coded, 1.0)
        };
        stats.data_bits *= scale;
        let p_blk = if cfg.charge_anchor_keys {
            block_params(&trainer.model)
        } else {
            0
        };
        if self.dl0.is_none() {
            self.dl0 = Some(description_length(
                stats.data_bits,
                &trainer.blocks,
                p_blk,
                n,
                cfg.k_max,
            ));
        }
        let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
        for &id in &stats.query_ids {
            *counts.entry(id).or_insert(0) += 1;
        }
        let snap = trainer.snapshot()?;
        Ok(RoundCtx {
            step,
            round,
            seq,
            buffer,
            n,
            scale,
            p_blk,
            vocab: trainer.blocks.token_block.len(),
            counts,
            base_blocks: snap.blocks.clone(),
            inheriting,
            snap,
            stats,
            cfg,
            tok,
            measured: RefCell::new(Vec::new()),
            removal_tries: Cell::new(self.removal_tries()),
        })
    }

    /// 7: set every event's DL to the round's, count the accepted moves (with `context`, how
    /// much a model without blocks reads context: see `count_round`), decide whether to stop,
    /// and record the round.
    fn finish_round(
        &mut self,
        ctx: &RoundCtx<'_>,
        trainer: &mut Trainer,
        out: RoundOutcome,
        (started, train_ms): (Instant, f64),
        first: bool,
        context: Option<(f64, f64)>,
    ) -> Vec<RecruitEvent> {
        let RoundOutcome {
            mut events,
            accepted,
            data_bits,
            ..
        } = out;
        let dl_after = ctx.dl(data_bits, &trainer.blocks);
        for e in &mut events {
            e.dl_after = dl_after;
        }
        self.accepted += accepted;
        if accepted > 0 {
            // The new map's penalty is annealed in as the first map's was.
            trainer.config.ramp_from = Some(trainer.step);
            // The map changed: what was rejected under the old one is worth another try.
            self.clear_tabu();
        }
        // A try that follows an accepted move in the same round is part of a round that
        // accepted something: it does not count towards patience.
        if !first && accepted > 0 {
            self.accepted_later_in_round();
        }
        // A wait or a stop at this try's step, with the blocks the try left.
        let (at, blocks) = ((ctx.step, ctx.round), trainer.blocks.num_blocks());
        let notice = |kind, note| RecruitEvent::notice(at, kind, note, blocks, dl_after);
        if first {
            let best = closest_try(&events);
            if let Some(note) = self.count_round(ctx.step, accepted, trainer.ce_ema, context, best)
            {
                events.push(notice(MoveKind::Wait, note));
            }
        }
        if let Some(reason) = self.stop_reason(ctx.step, blocks) {
            events.push(notice(MoveKind::Stop, reason.clone()));
            self.stopped = Some(reason);
        }
        // The measurement of the branch kept, for the next round (only when nothing trains
        // between: `Measured::matches`). The steps it trained are training, not the round's
        // cost: the run keeps them and does not train them again.
        self.kept = ctx
            .measured
            .take()
            .into_iter()
            .rev()
            .find(|m| m.matches(trainer, ctx.buffer.len()));
        let kept_ms = self.kept.as_ref().map_or(0.0, |m| m.train_ms);
        self.rounds.push(RoundSummary {
            step: ctx.step,
            dl_bits: dl_after,
            data_bits,
            blocks: trainer.blocks.num_blocks(),
            round_ms: started.elapsed().as_secs_f64() * 1e3 - kept_ms,
            train_ms: train_ms + kept_ms,
        });
        self.log.extend(events.iter().cloned());
        // Rounds keep their spacing from the step this try began (a kept control's steps count):
        // doubling it after quiet rounds let a merge of true topics pass on noise (topics:5).
        self.next_due = Some((ctx.step + ctx.cfg.every.max(1)).max(trainer.step + 1));
        self.last_round_end = Some(Instant::now());
        events
    }
}
