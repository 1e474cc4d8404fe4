//! The recruitment loop's state across rounds: its settings, the log of every decision, the
//! tabu list of rejected token sets, and what decides when it stops. One round is `round.rs`.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::analysis::mdl::max_accepted_moves;

use crate::model::blocks::BlockMap;
use crate::train::recruit::buffer::{buffer_stats, BufferStats};
use crate::train::recruit::config::RecruitConfig;
use crate::train::recruit::log::{MoveKind, RecruitEvent, Renamed, RoundSummary};
use crate::train::recruit::profile::Profile;
use crate::train::trainer::{TrainError, Trainer};

/// The recruitment loop's state: log, tabu list and stopping.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Recruiter {
    /// Settings.
    pub config: RecruitConfig,
    /// Every decision so far.
    pub log: Vec<RecruitEvent>,
    /// DL after each round.
    pub rounds: Vec<RoundSummary>,
    /// Rejected token sets (sorted ids).
    pub tabu: Vec<Vec<u32>>,
    /// The step at which each tabu entry was rejected (an entry sits out the next round, then
    /// may be tried again; a reassignment rejected again is entered at a later step, so that
    /// it sits out more rounds); absent in logs written before entries expired.
    #[serde(default)]
    pub tabu_steps: Vec<usize>,
    /// Why recruitment stopped, once it has.
    pub stopped: Option<String>,
    /// The token set of a merge that paid at once, and the step of that round: it waits for
    /// the next round to confirm it (`reassign.rs`, `confirm_merge`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_merge: Option<(Vec<u32>, usize)>,
    /// Blocks renamed by hand since they were recruited, in order (the log keeps their names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub renamed: Vec<Renamed>,
    /// DL₀ of the first round (for the ⌊DL₀/δ⌋ bound).
    pub dl0: Option<f64>,
    /// Accepted moves so far.
    pub accepted: usize,
    /// Step at which the next round is due.
    pub next_due: Option<usize>,
    /// Rounds since the last accepted move at which the model had settled.
    pub(super) stale: usize,
    /// The step of the first of those rounds.
    #[serde(default)]
    pub(super) stale_since: Option<usize>,
    /// The lowest ΔDL of a recruit or extension tried since the last accepted move (bits).
    #[serde(default)]
    pub(super) closest: Option<f64>,
    /// The training cross-entropy (moving average, nats) at the last round.
    #[serde(default)]
    pub(super) ce_at_round: Option<f64>,
    /// When the last round ended, or before the first round when the recruiter was made (the
    /// training time between rounds is measured from it, the warm-up included).
    #[serde(skip)]
    pub(super) last_round_end: Option<Instant>,
    /// The co-occurrence profile of the training text (measured at the first round).
    #[serde(skip)]
    pub(super) profile: Option<Profile>,
    /// The buffer measured in the branch the last round kept: a round that follows at once
    /// (after an accepted move) starts from it instead of a pass of its own.
    #[serde(skip)]
    pub(super) kept: Option<Measured>,
}

/// One trial's buffer, position by position: the map it was read under, each position's
/// query token and the bits of its next token.
pub(super) struct Positions {
    pub blocks: BlockMap,
    pub query_ids: Vec<u32>,
    pub loss_bits: Vec<f32>,
}

/// The buffer measured in one state of the trainer: its step and map (training moves the
/// step; every trial's state has its own map or step), with the per-position facts, unscaled.
#[derive(Clone, Debug)]
pub(super) struct Measured {
    pub step: usize,
    pub blocks: BlockMap,
    pub buffer_len: usize,
    /// Milliseconds the trial trained before measuring.
    pub train_ms: f64,
    pub stats: BufferStats,
}

impl Measured {
    /// True when `trainer` is in the state this was measured in, on a buffer of this length.
    pub fn matches(&self, trainer: &Trainer, buffer_len: usize) -> bool {
        self.step == trainer.step && self.blocks == trainer.blocks && self.buffer_len == buffer_len
    }
}

impl Recruiter {
    /// The recruiter of a run on `trainer` when it recruits, its rounds spaced for the text
    /// ([`RecruitConfig::spaced_for`]).
    pub fn for_run(config: Option<&RecruitConfig>, trainer: &Trainer) -> Option<Self> {
        config.map(|c| Self::new(c.clone().spaced_for(trainer)))
    }

    /// A recruiter with these settings.
    pub fn new(config: RecruitConfig) -> Self {
        Self {
            config,
            last_round_end: Some(Instant::now()),
            ..Self::default()
        }
    }

    /// Milliseconds spent in rounds and in training between them, summed over the rounds (the
    /// cost of recruitment as a fraction of training is the first over the second).
    pub fn cost_ms(&self) -> (f64, f64) {
        self.rounds
            .iter()
            .fold((0.0, 0.0), |(r, t), x| (r + x.round_ms, t + x.train_ms))
    }

    /// Merges and prunes tried so far (each is in the log).
    pub fn removal_tries(&self) -> usize {
        let removal = |k: MoveKind| matches!(k, MoveKind::Merge | MoveKind::Prune);
        self.log.iter().filter(|e| removal(e.kind)).count()
    }

    /// Start again after a stop, with a fresh patience count, the next round due at `step`.
    pub fn resume(&mut self, step: usize) {
        self.stopped = None;
        self.stale = 0;
        self.stale_since = None;
        self.next_due = Some(step);
    }

    /// A saved recruiter (a resumed checkpoint's `recruitment.json`) going on under `config`:
    /// its log, tabu list and patience as they were; a round due before the trainer's step
    /// comes at once. Without a spacing of its own (`spacing_for_text`) `config` takes the saved
    /// log's, which was fitted to the text when the run began; the other settings are
    /// `config`'s, and a note names those that differ from the saved ones.
    pub fn continued(mut self, config: &RecruitConfig) -> Self {
        let saved = &self.config;
        let mut config = config.clone();
        if config.spacing_for_text {
            (config.warmup, config.every) = (saved.warmup, saved.every);
        }
        let changes = config.changes_from(saved);
        if !changes.is_empty() {
            eprintln!(
                "note: the resumed recruitment runs with {}",
                changes.join(", ")
            );
        }
        self.config = config;
        self.last_round_end = Some(Instant::now());
        (self.profile, self.kept) = (None, None);
        self
    }

    /// Put the recruiter's clock back from step `from` to step `to` (a run that ends on the
    /// weights of an earlier step keeps its recruiter): the next round, the tabu entries and the
    /// start of the plateau move back by the same number of steps; the log keeps its steps.
    pub fn rebase(&mut self, from: usize, to: usize) {
        let back = |s: usize| s.saturating_sub(from.saturating_sub(to));
        self.next_due = self.next_due.map(back);
        self.tabu_steps.iter_mut().for_each(|s| *s = back(*s));
        self.stale_since = self.stale_since.map(back);
    }

    /// A copy to go back to later (the best point of a run's held-out curve): everything but
    /// the last round's measured buffer, which belongs to that round's weights (the next round
    /// after going back measures its own).
    pub fn checkpoint(&self) -> Self {
        let mut copy = self.clone();
        copy.kept = None;
        copy
    }

    /// True when a round is due after `step` steps have been taken.
    pub fn due(&self, steps_done: usize) -> bool {
        let c = &self.config;
        c.enabled && self.stopped.is_none() && steps_done >= self.next_due.unwrap_or(c.warmup)
    }

    /// The buffer measured under the trainer's map, with per-position facts (function words
    /// marked in `inheriting`): the kept branch's measurement when the trainer is still in that
    /// state, else a pass of its own.
    pub(super) fn measure_buffer(
        &mut self,
        trainer: &Trainer,
        inheriting: &[bool],
        buffer: &[u32],
        seq: usize,
    ) -> Result<BufferStats, TrainError> {
        let lambda = self.config.lambda;
        let fresh = || {
            buffer_stats(
                &trainer.model,
                &trainer.blocks,
                inheriting,
                buffer,
                lambda,
                seq,
                true,
            )
        };
        match self
            .kept
            .take()
            .filter(|m| m.matches(trainer, buffer.len()))
        {
            Some(m) => {
                debug_assert_eq!(
                    m.stats.data_bits,
                    fresh()?.data_bits,
                    "the kept branch's measurement is the state's own"
                );
                Ok(m.stats)
            }
            None => fresh(),
        }
    }

    /// The tokens that read the block of the content word before them in the
    /// localist view, by vocabulary id: the profile's function-like tokens, when
    /// `function_words_inherit` is on and the profile has been measured (else none).
    pub(super) fn inheriting(&self, vocab: usize) -> Vec<bool> {
        let mut out = vec![false; vocab];
        if let (true, Some(p)) = (self.config.function_words_inherit, &self.profile) {
            for id in p.function_tokens() {
                if let Some(slot) = out.get_mut(id as usize) {
                    *slot = true;
                }
            }
        }
        out
    }

    /// Put a rejected token set (sorted) on the tabu list, rejected at `step`.
    pub(crate) fn add_tabu(&mut self, key: Vec<u32>, step: usize) {
        self.tabu.push(key);
        self.tabu_steps.push(step);
    }

    /// Empty the tabu list.
    pub(super) fn clear_tabu(&mut self) {
        self.tabu.clear();
        self.tabu_steps.clear();
    }

    /// Drop the entries rejected two rounds' spacing or more before `step` (an entry rejected
    /// at one round sits out the next, and may be tried at the one after).
    pub(super) fn expire_tabu(&mut self, step: usize) {
        let every = self.config.every.max(1);
        let steps = std::mem::take(&mut self.tabu_steps);
        // Entries from a log without their steps count as rejected at step 0.
        let steps = steps.into_iter().chain(std::iter::repeat(0));
        (self.tabu, self.tabu_steps) = std::mem::take(&mut self.tabu)
            .into_iter()
            .zip(steps)
            .filter(|&(_, at)| step < at + 2 * every)
            .unzip();
    }

    /// Count a round in which `accepted` moves were kept, with the training cross-entropy at
    /// `ce` (moving average) and, while nothing is recruited, `context` = (buffer bits with
    /// every key visible, the fraction they save on the localist view): an accepted move
    /// restarts the count; a round without one counts only when the model uses context (it
    /// saves at least `min_context_gain`) and has settled (its cross-entropy fell by less than
    /// `settle` since the previous round) and its candidates came no closer to paying (`best`,
    /// its lowest recruit or extension ΔDL, is not more than δ below every earlier one since
    /// the last accepted move); otherwise the tabu list is cleared. Returns why the round did
    /// not count, when it did not and accepted nothing.
    pub(super) fn count_round(
        &mut self,
        step: usize,
        accepted: usize,
        ce: Option<f64>,
        context: Option<(f64, f64)>,
        best: Option<f64>,
    ) -> Option<String> {
        let cfg = &self.config;
        // A candidate's value grows with what the model learns to make of it: while the best
        // try keeps falling by more than δ a round, the next rounds may accept it.
        let closer = match (self.closest, best) {
            (Some(before), Some(now)) if before - now > cfg.delta_bits => Some((before, now)),
            _ => None,
        };
        self.closest = match (self.closest, best) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let learning = match (self.ce_at_round, ce) {
            (Some(before), Some(now)) if cfg.settle > 0.0 => now < before * (1.0 - cfg.settle),
            _ => false,
        };
        let blind = context.filter(|&(_, gain)| gain < cfg.min_context_gain);
        self.ce_at_round = ce;
        let why = if let Some((open, gain)) = blind {
            // Negative on a model that has learned its training text by heart: context makes
            // its held-out code longer.
            let (by, than) = if gain < 0.0 {
                (-gain, "more")
            } else {
                (gain, "fewer")
            };
            format!(
                "nothing accepted, but the model does not use context yet: the buffer takes \
                 {open:.1} bits with every key visible, {:.2}% {than} than with every token \
                 isolated (less than {:.1}% fewer), so no block can show its value: not \
                 counted towards the {} rounds of patience",
                100.0 * by,
                100.0 * cfg.min_context_gain,
                cfg.patience
            )
        } else if learning {
            format!(
                "nothing accepted, but the model is still learning (training cross-entropy \
                 {:.3} nats, more than {:.0}% below the last round's): not counted towards \
                 the {} rounds of patience",
                ce.unwrap_or(f64::NAN),
                100.0 * cfg.settle,
                cfg.patience
            )
        } else if let Some((before, now)) = closer {
            format!(
                "nothing accepted, but the candidates come closer to paying: the best try's \
                 ΔDL {now:+.1} bits is more than δ = {:.0} below the best since the last \
                 accepted move ({before:+.1}): not counted towards the {} rounds of patience",
                cfg.delta_bits, cfg.patience
            )
        } else {
            String::new()
        };
        if accepted > 0 {
            self.stale = 0;
            self.stale_since = None;
            self.closest = None;
            None
        } else if self
            .pending_merge
            .as_ref()
            .is_some_and(|&(_, at)| at == step)
        {
            Some(format!(
                "nothing accepted, but a merge that pays waits for the next round to confirm \
                 it: not counted towards the {} rounds of patience",
                cfg.patience
            ))
        } else if !why.is_empty() {
            // What was rejected under a model that has learned since is worth another try.
            self.clear_tabu();
            Some(why)
        } else {
            self.stale += 1;
            self.stale_since.get_or_insert(step);
            None
        }
    }

    /// A try after the round's first accepted a move: the round counts as one that accepted
    /// something (its first try, rejected, was counted towards patience).
    pub(super) fn accepted_later_in_round(&mut self) {
        self.stale = 0;
        self.stale_since = None;
        self.closest = None;
    }

    /// Why recruitment stops after the round at `step` that left `blocks` blocks, if it does:
    /// `patience` rounds without an accepted move spanning `patience_steps`, K_max reached, or
    /// ⌊DL₀/δ⌋ accepted moves.
    pub(super) fn stop_reason(&self, step: usize, blocks: usize) -> Option<String> {
        let cfg = &self.config;
        let bound = max_accepted_moves(self.dl0.unwrap_or(0.0), cfg.delta_bits);
        // The span of the counted rounds: from the first to the step the next would be due.
        let span = self
            .stale_since
            .map_or(0, |since| (step + cfg.every.max(1)).saturating_sub(since));
        if self.stale >= cfg.patience.max(1) && span >= cfg.patience_steps {
            Some(format!(
                "{} rounds ({span} steps) without an accepted move",
                self.stale
            ))
        } else if blocks >= cfg.k_max {
            Some(format!("K_max = {} blocks reached", cfg.k_max))
        } else if self.accepted >= bound {
            Some(format!(
                "the bound floor(DL0/δ) = {bound} accepted moves reached"
            ))
        } else {
            None
        }
    }
}

#[cfg(test)]
#[path = "recruiter_tests.rs"]
mod tests;
