//! Undoing training: a deep copy of everything a step changes, restored bit for bit, and
//! swapping in a new block map with its anchor keys (what recruitment's trials and rollback
//! are made of).

use std::collections::{BTreeMap, HashMap};

use candle_core::Tensor;

use crate::analysis::rng::SplitMix64;
use crate::model::blocks::BlockMap;
use crate::model::transformer::anchor_name;
use crate::train::trainer::{TrainError, Trainer};

/// Everything [`Trainer::restore`] needs to undo steps and block changes.
#[derive(Clone, Debug)]
pub struct TrainerSnapshot {
    /// Weights by name.
    pub params: BTreeMap<String, Tensor>,
    /// The block map.
    pub blocks: BlockMap,
    /// Optimizer moments.
    pub optimizer: HashMap<String, Tensor>,
    step_t: usize,
    step: usize,
    rng: SplitMix64,
}

impl Trainer {
    /// Swap in a new block map with matching anchor keys (one `[H,K,d_h]` tensor per layer), as
    /// recruitment does; the anchors' optimizer moments restart from zero.
    pub fn replace_blocks(
        &mut self,
        blocks: BlockMap,
        anchors: Vec<Tensor>,
    ) -> Result<(), TrainError> {
        let layers = self.model.config.num_layers;
        if anchors.len() != layers {
            return Err(TrainError::Invalid(format!(
                "{} anchor tensors for {layers} layers",
                anchors.len()
            )));
        }
        for (l, a) in anchors.iter().enumerate() {
            if a.dim(1)? != blocks.num_blocks() {
                return Err(TrainError::Invalid(format!(
                    "layer {l}: anchor keys for {} blocks, the map has {}",
                    a.dim(1)?,
                    blocks.num_blocks()
                )));
            }
        }
        for (l, a) in anchors.iter().enumerate() {
            let name = anchor_name(l);
            self.model.params.insert(&name, a)?;
            if let Some(var) = self.model.params.var(&name) {
                self.optimizer.replace_param(&name, var)?;
            }
        }
        self.blocks = blocks;
        Ok(())
    }

    /// A deep copy of everything a step changes: weights, block map, optimizer moments, step
    /// and sampler. [`Trainer::restore`] puts it back exactly (recruitment's rollback).
    pub fn snapshot(&self) -> Result<TrainerSnapshot, TrainError> {
        Ok(TrainerSnapshot {
            params: self
                .model
                .params
                .tensors()
                .into_iter()
                .map(|(k, t)| Ok((k, t.copy()?)))
                .collect::<candle_core::Result<_>>()?,
            blocks: self.blocks.clone(),
            optimizer: self
                .optimizer
                .state()?
                .into_iter()
                .map(|(k, t)| Ok((k, t.copy()?)))
                .collect::<candle_core::Result<_>>()?,
            step_t: self.optimizer.step_t,
            step: self.step,
            rng: self.rng.clone(),
        })
    }

    /// Restore a [`Trainer::snapshot`] bit for bit.
    pub fn restore(&mut self, snap: &TrainerSnapshot) -> Result<(), TrainError> {
        for (name, t) in &snap.params {
            let same = self
                .model
                .params
                .var(name)
                .is_some_and(|v| v.as_tensor().dims() == t.dims());
            if same {
                if let Some(v) = self.model.params.var(name) {
                    v.set(&t.copy()?)?;
                }
            } else {
                self.model.params.insert(name, &t.copy()?)?;
                if let Some(var) = self.model.params.var(name) {
                    self.optimizer.replace_param(name, var)?;
                }
            }
        }
        self.optimizer.load_state(&snap.optimizer)?;
        self.optimizer.step_t = snap.step_t;
        self.blocks = snap.blocks.clone();
        self.step = snap.step;
        self.rng = snap.rng.clone();
        Ok(())
    }
}
