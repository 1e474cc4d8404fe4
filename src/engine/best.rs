//! Going back to the best point of a run's held-out curve (`train --keep-best`, the studio's
//! *Back to step N*): the trainer's state there (weights, optimizer moments, the block map with
//! its anchor keys, step and sampler) and, in a run that recruits blocks, the recruiter's (its
//! log, tabu list and patience), kept each time the curve reaches a new best; or, for a run
//! that ends overfitting, the weights there under the blocks the run ended with.

use anyhow::Result;
use candle_core::Tensor;

use crate::engine::held_out::HeldOutPoint;
use crate::model::transformer::anchor_name;
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

    /// Put back this state's weights under the trainer's block map now (a run that ends
    /// overfitting keeps every block and move it found after this point): the weights, optimizer
    /// moments, step and sampler of this state; the block map as it is now, each block's anchor
    /// keys this state's where it had that block (by name) and the ones of now where it did not.
    /// The anchors' optimizer moments restart from zero. Returns the blocks whose keys are now's.
    pub fn graft(&self, trainer: &mut Trainer) -> Result<Vec<String>> {
        let map = trainer.blocks.clone();
        let layers = trainer.model.config.num_layers;
        let now: Vec<Tensor> = (0..layers)
            .map(|l| trainer.model.params.get(&anchor_name(l))?.copy())
            .collect::<candle_core::Result<_>>()?;
        trainer.restore(&self.trainer)?;
        let then = &self.trainer.blocks.names;
        let mut later = Vec::new();
        let mut anchors = Vec::with_capacity(layers);
        for (l, now_l) in now.iter().enumerate() {
            let then_l = self.trainer.params.get(&anchor_name(l));
            let mut rows = Vec::with_capacity(map.names.len());
            for (k, name) in map.names.iter().enumerate() {
                match (then.iter().position(|n| n == name), then_l) {
                    (Some(j), Some(t)) if j < t.dim(1)? => rows.push(t.narrow(1, j, 1)?),
                    _ => {
                        if l == 0 {
                            later.push(name.clone());
                        }
                        rows.push(now_l.narrow(1, k, 1)?);
                    }
                }
            }
            anchors.push(Tensor::cat(&rows, 1)?.contiguous()?);
        }
        trainer.replace_blocks(map, anchors)?;
        Ok(later)
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

/// "; blocks recruited after it keep their anchor keys of the last step: …" for the weights of
/// an earlier step put under a run's blocks of now ([`BestState::graft`]; empty when none).
pub fn grafted_blocks(later: &[String]) -> String {
    if later.is_empty() {
        String::new()
    } else {
        format!(
            "; blocks recruited after it keep their anchor keys of the last step: {}",
            later.join(", ")
        )
    }
}
