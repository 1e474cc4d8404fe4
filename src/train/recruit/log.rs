//! What recruitment records: one event per move tried (with its decision and bits) and one
//! summary per round, for the log, the studio's curve and the checkpoints.

use serde::{Deserialize, Serialize};

use crate::analysis::mdl::{Decision, Verdict};

/// What a logged move was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveKind {
    /// A new block from a candidate cluster.
    Recruit,
    /// A candidate cluster added to an existing block (map bits only).
    Extend,
    /// One block's tokens moved into another, the first block removed.
    Merge,
    /// A little-used block's tokens returned to "unassigned".
    Prune,
    /// One recruited token moved to another recruited block (`reassign.rs`).
    Reassign,
    /// Recruitment stopped.
    Stop,
    /// A round that accepted nothing while the model was still learning: not counted towards
    /// the patience (its note says why).
    Wait,
}

/// One logged recruitment event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecruitEvent {
    /// Training step of the round.
    pub step: usize,
    /// Round number (0-based).
    pub round: usize,
    /// The move.
    pub kind: MoveKind,
    /// Name of the block concerned (for a merge: the block that absorbed the other).
    pub block: String,
    /// Its tokens (for a merge: the tokens moved).
    pub tokens: Vec<String>,
    /// The decision with its full breakdown (None for `Stop`).
    pub decision: Option<Decision>,
    /// Blocks after the move (block 0 included).
    pub blocks_after: usize,
    /// DL(M) after the move, bits.
    pub dl_after: f64,
    /// Extra facts: the probe's anchor loss, the stop reason.
    pub note: String,
}

/// The note of a merge that pays when read at once and waits for the next round to confirm it.
pub const MERGE_WAITS: &str =
    "it pays; a merge read at once is kept when it pays again at the next round";

impl RecruitEvent {
    /// Whether this is a merge that paid and waits for the next round to confirm it.
    pub fn waits_for_next_round(&self) -> bool {
        self.kind == MoveKind::Merge && self.note.contains(MERGE_WAITS)
    }

    /// Its decision `d`'s verdict in a few words. A move that paid by its own test (more than
    /// δ, and δ + z·SE where read at once) but was not kept says why: a merge waits for the next
    /// round to confirm it, or another move of the round saved more. A saving past δ turned
    /// away by the noise margin says so.
    pub fn verdict_words(&self, d: &Decision) -> &'static str {
        let saved = -d.delta_dl;
        match d.verdict {
            Verdict::Accepted => "accepted",
            Verdict::Rejected if saved > d.margin() && self.waits_for_next_round() => {
                "pays; kept if it pays again next round"
            }
            Verdict::Rejected if saved > d.margin() => "pays; another move saves more",
            Verdict::Rejected if saved > d.delta_min => "rejected (within the noise)",
            Verdict::Rejected => "rejected",
        }
    }

    /// An event of the round at `(step, round)` that decides nothing (a wait, a stop), with its
    /// note; `blocks_after` and `dl_after` as the round left them.
    pub fn notice(
        (step, round): (usize, usize),
        kind: MoveKind,
        note: String,
        blocks_after: usize,
        dl_after: f64,
    ) -> Self {
        Self {
            step,
            round,
            kind,
            block: String::new(),
            tokens: Vec::new(),
            decision: None,
            blocks_after,
            dl_after,
            note,
        }
    }

    /// One line for logs: what, verdict and the bits.
    pub fn line(&self) -> String {
        match &self.decision {
            Some(d) => format!(
                "step {:>5}  {:<8} {:<24} data {:>10.1} → {:>10.1} bits, params {:>7.1}, header {:>5.1}, \
                 map {:>6.1}, ΔDL {:>+10.1}{}  {}{}",
                self.step,
                format!("{:?}", self.kind).to_lowercase(),
                self.block,
                d.data_bits_before,
                d.data_bits_after,
                d.sign * d.model.parameter_bits,
                d.sign * d.model.header_bits,
                d.sign * d.model.map_bits,
                d.delta_dl,
                if d.noise_bits > 0.0 && d.noise_z > 2.0 {
                    format!(" ± {:.1} (z {:.2})", d.noise_bits, d.noise_z)
                } else if d.noise_bits > 0.0 {
                    format!(" ± {:.1}", d.noise_bits)
                } else {
                    String::new()
                },
                match d.verdict {
                    Verdict::Accepted => "ACCEPTED",
                    Verdict::Rejected => "rejected",
                },
                if self.note.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", self.note)
                }
            ),
            None => format!(
                "step {:>5}  {}: {}",
                self.step,
                format!("{:?}", self.kind).to_lowercase(),
                self.note
            ),
        }
    }
}

/// A block renamed by hand (the studio's Blocks & anchors tab) after `at` entries of the log:
/// the entries before keep its old name, as they were decided.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Renamed {
    /// Entries of the log before the rename.
    pub at: usize,
    /// The old name.
    pub from: String,
    /// The new name.
    pub to: String,
}

/// DL after a round, for the curve over training steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundSummary {
    /// Training step.
    pub step: usize,
    /// DL(M) in bits after the round.
    pub dl_bits: f64,
    /// L(D | M) after the round.
    pub data_bits: f64,
    /// Blocks after the round (block 0 included).
    pub blocks: usize,
    /// Wall time of the round, ms.
    pub round_ms: f64,
    /// Training time since the previous round, ms (for the cost fraction).
    pub train_ms: f64,
}

/// One move tried for a candidate, before it is logged: what, on which block, its decision,
/// the data bits of its branch and a note.
pub(super) struct Try {
    pub kind: MoveKind,
    pub block: String,
    pub decision: crate::analysis::mdl::Decision,
    pub data_after: f64,
    pub note: String,
}

impl crate::train::recruit::Recruiter {
    /// The log against itself, as read from a file: every number finite, the dial in [0, 1],
    /// every accepted move saving more than its margin δ, and the count of accepted moves that
    /// of the log. A log failing this was drawn as valid ("9,999 accepted moves", a move of
    /// ΔDL +1,000,008 marked accepted, "rounds cost inf%").
    pub fn check_consistent(&self) -> Result<(), String> {
        let c = &self.config;
        if !(c.lambda.is_finite() && (0.0..=1.0).contains(&c.lambda)) {
            return Err(format!("its dial λ_rec {} is not in [0, 1]", c.lambda));
        }
        if !(c.delta_bits.is_finite() && c.delta_bits >= 0.0)
            || c.k_max > crate::model::blocks_check::MAX_BLOCKS
        {
            return Err("its margin δ or its K_max is out of range".into());
        }
        // As the command line refuses them: rounds every 0 steps ran one every step; room for
        // no recruited block; a description length below 0 bits allowed no move at all.
        if c.every == 0 || c.k_max < 2 {
            return Err(format!(
                "its spacing of {} steps between rounds or its K_max {} is out of range (at \
                 least 1 and 2)",
                c.every, c.k_max
            ));
        }
        if let Some(dl0) = self.dl0.filter(|d| !(d.is_finite() && *d >= 0.0)) {
            return Err(format!(
                "its starting description length DL₀ {dl0} bits is not ≥ 0"
            ));
        }
        // Steps past 2⁴⁰ (a run of 2⁴⁰ steps would take centuries): a hand-edited log with
        // `every` at 2⁶⁴ − 1 resumed without an error and never held another round.
        let steps = [c.warmup, c.every].into_iter().chain(self.next_due);
        if let Some(s) = steps
            .chain(self.tabu_steps.iter().copied())
            .find(|&s| s > 1 << 40)
        {
            return Err(format!("a step or a spacing of {s} steps is out of range"));
        }
        let mut accepted = 0;
        for (k, e) in self.log.iter().enumerate() {
            let bad = |why: &str| format!("entry {k} (step {}, {}): {why}", e.step, e.block);
            if !e.dl_after.is_finite() {
                return Err(bad("its DL is not finite"));
            }
            let Some(d) = &e.decision else { continue };
            let numbers = [
                d.data_bits_before,
                d.data_bits_after,
                d.delta_dl,
                d.delta_min,
            ];
            if numbers
                .iter()
                .chain([&d.noise_bits, &d.noise_z])
                .any(|v| !v.is_finite())
            {
                return Err(bad("a number of its decision is not finite"));
            }
            if d.verdict == Verdict::Accepted {
                accepted += 1;
                if -d.delta_dl <= d.delta_min {
                    return Err(bad(&format!(
                        "accepted at ΔDL {:+.1} bits, which does not save the margin δ {:.1}",
                        d.delta_dl, d.delta_min
                    )));
                }
            }
        }
        if accepted != self.accepted {
            return Err(format!(
                "it counts {} accepted moves, but its entries hold {accepted}",
                self.accepted
            ));
        }
        let round_ok = |r: &RoundSummary| {
            [r.dl_bits, r.data_bits].iter().all(|v| v.is_finite())
                && [r.round_ms, r.train_ms]
                    .iter()
                    .all(|v| v.is_finite() && *v >= 0.0)
        };
        match self.rounds.iter().position(|r| !round_ok(r)) {
            Some(k) => Err(format!("round {k} holds a number that is not finite")),
            None => Ok(()),
        }
    }
}

impl crate::train::recruit::Recruiter {
    /// Whether this log describes the block map `blocks` (the checkpoint it was found beside):
    /// the block count after its last round, and every block its accepted moves made and did
    /// not remove again, by name (under the names it was [`renamed`](Self::renamed) to). A log
    /// copied in from another run was shown as the model's
    /// and went on recruiting over blocks it did not make. A map that started from a lexicon
    /// holds blocks the log never names, which is not a mismatch.
    pub fn describes(&self, blocks: &crate::model::blocks::BlockMap) -> Result<(), String> {
        if let Some(last) = self.rounds.last() {
            if last.blocks != blocks.num_blocks() {
                return Err(format!(
                    "its last round (step {}) left {} blocks, and the model has {}",
                    last.step,
                    last.blocks,
                    blocks.num_blocks()
                ));
            }
        }
        let mut made: Vec<&str> = Vec::new();
        fn rename<'a>(made: &mut [&'a str], r: &'a Renamed) {
            (made.iter_mut().filter(|b| **b == r.from)).for_each(|b| *b = &r.to);
        }
        let mut renames = self.renamed.iter().peekable();
        for (k, e) in self.log.iter().enumerate() {
            while let Some(r) = renames.next_if(|r| r.at <= k) {
                rename(&mut made, r);
            }
            let Some(d) = e
                .decision
                .as_ref()
                .filter(|d| d.verdict == Verdict::Accepted)
            else {
                continue;
            };
            let gone = match e.kind {
                MoveKind::Recruit => {
                    made.push(&e.block);
                    None
                }
                MoveKind::Prune => Some(e.block.as_str()),
                MoveKind::Merge => (d.what.strip_prefix("merge "))
                    .and_then(|w| w.strip_suffix(&format!(" into {}", e.block))),
                _ => None,
            };
            made.retain(|b| Some(*b) != gone);
        }
        renames.for_each(|r| rename(&mut made, r));
        match made.iter().find(|b| !blocks.names.iter().any(|n| n == *b)) {
            Some(b) => Err(format!(
                "it recruited block '{b}', which the model does not have"
            )),
            None => Ok(()),
        }
    }
}

/// The lowest ΔDL among the recruits and extensions tried in `events` (bits): how close the
/// round's candidates came to paying.
pub(super) fn closest_try(events: &[RecruitEvent]) -> Option<f64> {
    events
        .iter()
        .filter(|e| matches!(e.kind, MoveKind::Recruit | MoveKind::Extend))
        .filter_map(|e| e.decision.as_ref().map(|d| d.delta_dl))
        .filter(|d| d.is_finite())
        .reduce(f64::min)
}
