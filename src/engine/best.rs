//! Going back to the best point of a run's held-out curve (`train --keep-best`, the studio's
//! *Back to step N*): the trainer's state there (weights, optimizer moments, the block map with
//! its anchor keys, step and sampler) and, in a run that recruits blocks, the recruiter's (its
//! log, tabu list and patience), kept each time the curve reaches a new best.

use anyhow::Result;

use crate::engine::held_out::HeldOutPoint;
use crate::train::recruit::Recruiter;
use crate::train::trainer::{Trainer, TrainerSnapshot};

/// A run's state at a point of its held-out curve.
#[derive(Debug)]
pub struct BestState {
    /// The curve's point.
    pub point: HeldOutPoint,
    trainer: TrainerSnapshot,
    recruiter: Option<Recruiter>,
}

impl BestState {
    /// The run's state now (its trainer and recruiter), at the curve's `point`.
    pub fn of(
        trainer: &Trainer,
        recruiter: Option<&Recruiter>,
        point: HeldOutPoint,
    ) -> Result<Self> {
        Ok(Self {
            point,
            trainer: trainer.snapshot()?,
            recruiter: recruiter.map(Recruiter::checkpoint),
        })
    }

    /// Whether `point` is better than the best kept so far (a finite, lower cross-entropy).
    pub fn improves(best: Option<&Self>, point: &HeldOutPoint) -> bool {
        point.ce_nats.is_finite() && best.is_none_or(|b| point.ce_nats < b.point.ce_nats)
    }

    /// Put a run back on this state: the trainer as it was, the recruiter's log and patience
    /// as they were (recruitment stays switched on or off as it is now). Returns the names of
    /// the blocks dropped (recruited after it) and of those that come back (merged or removed
    /// after it).
    pub fn restore(
        &self,
        trainer: &mut Trainer,
        recruiter: &mut Option<Recruiter>,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let (then, now) = (&self.trainer.blocks.names, &trainer.blocks.names);
        let missing = |a: &Vec<String>, b: &Vec<String>| -> Vec<String> {
            a.iter().filter(|n| !b.contains(n)).cloned().collect()
        };
        let changes = (missing(now, then), missing(then, now));
        trainer.restore(&self.trainer)?;
        let enabled = recruiter.as_ref().map(|r| r.config.enabled);
        *recruiter = self.recruiter.as_ref().map(Recruiter::checkpoint);
        if let (Some(rec), Some(on)) = (recruiter.as_mut(), enabled) {
            rec.config.enabled = on;
        }
        Ok(changes)
    }
}

/// "; blocks recruited after it dropped: …; blocks merged or removed after it back: …" for a
/// return to an earlier step (empty when the block map is the same).
pub fn block_changes(dropped: &[String], back: &[String]) -> String {
    let mut out = String::new();
    if !dropped.is_empty() {
        out += &format!(
            "; blocks recruited after it dropped: {}",
            dropped.join(", ")
        );
    }
    if !back.is_empty() {
        out += &format!(
            "; blocks merged or removed after it back: {}",
            back.join(", ")
        );
    }
    out
}
