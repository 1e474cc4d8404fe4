//! AdamW with inspectable state.
//!
//! The same update as PyTorch's `torch.optim.AdamW` and candle's `AdamW` (decoupled weight decay
//! applied to every parameter, bias-corrected moments, no clipping), written out so that the
//! moments can be saved in a checkpoint and training resumed exactly.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, Tensor, Var};

use crate::model::params::ParamStore;

#[path = "optimizer_host.rs"]
mod host;

/// AdamW hyper-parameters (PyTorch defaults).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamWConfig {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

pub(crate) struct Slot {
    pub(crate) name: String,
    pub(crate) var: Var,
    pub(crate) m: Tensor,
    pub(crate) v: Tensor,
}

/// AdamW over a model's parameter store.
pub struct AdamW {
    pub(crate) slots: Vec<Slot>,
    /// Number of steps taken.
    pub step_t: usize,
    /// Hyper-parameters.
    pub config: AdamWConfig,
}

impl AdamW {
    /// New optimizer over every parameter of `params`.
    pub fn new(params: &ParamStore, config: AdamWConfig) -> candle_core::Result<Self> {
        let slots = params
            .iter()
            .map(|(name, var)| {
                Ok(Slot {
                    name: name.clone(),
                    var: var.clone(),
                    m: var.as_tensor().zeros_like()?,
                    v: var.as_tensor().zeros_like()?,
                })
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self {
            slots,
            step_t: 0,
            config,
        })
    }

    /// Train only the parameters whose names start with one of `prefixes` (the others stay
    /// exactly as they are, weight decay included); an empty list keeps every parameter.
    /// Returns how many scalars remain trainable.
    pub fn restrict(&mut self, prefixes: &[String]) -> usize {
        if !prefixes.is_empty() {
            self.slots
                .retain(|s| prefixes.iter().any(|p| s.name.starts_with(p.as_str())));
        }
        self.slots
            .iter()
            .map(|s| s.var.as_tensor().elem_count())
            .sum()
    }

    /// Point the slot of parameter `name` at a new variable (e.g. anchor keys that gained or
    /// lost a block) with zero moments. A parameter outside the trainable set stays untracked.
    pub fn replace_param(&mut self, name: &str, var: &Var) -> candle_core::Result<()> {
        if let Some(slot) = self.slots.iter_mut().find(|s| s.name == name) {
            slot.var = var.clone();
            slot.m = var.as_tensor().zeros_like()?;
            slot.v = var.as_tensor().zeros_like()?;
        }
        Ok(())
    }

    /// One update from gradients; parameters without a gradient are left untouched.
    pub fn step(&mut self, grads: &GradStore) -> candle_core::Result<()> {
        self.step_t += 1;
        let c = &self.config;
        let t = self.step_t as i32;
        let scale_m = 1.0 / (1.0 - c.beta1.powi(t));
        let scale_v = 1.0 / (1.0 - c.beta2.powi(t));
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            let m = ((&slot.m * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&m * scale_m)?;
            let v_hat = (&v * scale_v)?;
            let theta = (slot.var.as_tensor() * (1.0 - c.lr * c.weight_decay))?;
            let upd = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            slot.var.set(&(theta - (upd * c.lr)?)?)?;
            slot.m = m;
            slot.v = v;
        }
        Ok(())
    }

    /// Moments and step count as named tensors (`m.NAME`, `v.NAME`, `step`).
    pub fn state(&self) -> candle_core::Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for s in &self.slots {
            // Copies: the host step updates the moments in place.
            out.insert(format!("m.{}", s.name), s.m.copy()?);
            out.insert(format!("v.{}", s.name), s.v.copy()?);
        }
        let dev = self.slots.first().map(|s| s.m.device().clone());
        if let Some(dev) = dev {
            out.insert("step".into(), Tensor::new(&[self.step_t as f32], &dev)?);
        }
        Ok(out)
    }

    /// Restore moments saved by [`AdamW::state`]; missing entries stay zero.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>) -> candle_core::Result<()> {
        for s in &mut self.slots {
            if let (Some(m), Some(v)) = (
                state.get(&format!("m.{}", s.name)),
                state.get(&format!("v.{}", s.name)),
            ) {
                if m.dims() == s.m.dims() && v.dims() == s.v.dims() {
                    s.m = m.to_device(s.m.device())?.copy()?;
                    s.v = v.to_device(s.v.device())?.copy()?;
                }
            }
        }
        if let Some(step) = state.get("step") {
            let v = step.flatten_all()?.to_vec1::<f32>()?;
            self.step_t = v.first().copied().unwrap_or(0.0) as usize;
        }
        Ok(())
    }
}
