//! The named parameter store of a model.
//!
//! Parameters are candle `Var`s kept in a `BTreeMap` under the PyTorch reference's names
//! (`tok.weight`, `blocks.0.qkv.weight`, ...), so a reference state dict loads by name and the
//! optimizer and checkpoint writer see them in a stable order.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var};

use crate::analysis::rng::SplitMix64;

/// Named trainable tensors.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    vars: BTreeMap<String, Var>,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Insert (or replace) a parameter from a tensor.
    pub fn insert(&mut self, name: &str, t: &Tensor) -> candle_core::Result<()> {
        self.vars.insert(name.to_string(), Var::from_tensor(t)?);
        Ok(())
    }

    /// A tensor view of parameter `name` that records gradients.
    pub fn get(&self, name: &str) -> candle_core::Result<Tensor> {
        self.vars
            .get(name)
            .map(|v| v.as_tensor().clone())
            .ok_or_else(|| candle_core::Error::Msg(format!("missing parameter '{name}'")))
    }

    /// The variable itself (for optimizers).
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.vars.get(name)
    }

    /// All parameters in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Var)> {
        self.vars.iter()
    }

    /// Number of named tensors.
    pub fn len(&self) -> usize {
        self.vars.len()
    }

    /// True when no parameter is stored.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Total number of scalars.
    pub fn num_scalars(&self) -> usize {
        self.vars.values().map(|v| v.elem_count()).sum()
    }

    /// The parameters of both stores, sharing their variables (an optimizer over the union
    /// updates both); `other`'s win on a shared name.
    pub fn union(&self, other: &ParamStore) -> Self {
        let mut vars = self.vars.clone();
        vars.extend(other.vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self { vars }
    }

    /// Deep copy (new storage) of every parameter, for snapshots and rollback.
    pub fn deep_clone(&self) -> candle_core::Result<Self> {
        let mut out = Self::new();
        for (k, v) in &self.vars {
            out.insert(k, &v.as_tensor().copy()?)?;
        }
        Ok(out)
    }

    /// Plain tensors by name (for saving).
    pub fn tensors(&self) -> BTreeMap<String, Tensor> {
        self.vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
            .collect()
    }
}

/// Gaussian tensor N(0, std²) from our own seeded RNG, so inits are reproducible everywhere.
pub fn normal_tensor(
    rng: &mut SplitMix64,
    shape: &[usize],
    std: f64,
    device: &Device,
) -> candle_core::Result<Tensor> {
    let n: usize = shape.iter().product();
    let data: Vec<f32> = (0..n).map(|_| (rng.normal() * std) as f32).collect();
    Tensor::from_vec(data, shape, device)
}

/// Constant tensor.
pub fn const_tensor(value: f32, shape: &[usize], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::full(value, shape, device)?.to_dtype(DType::F32)
}
