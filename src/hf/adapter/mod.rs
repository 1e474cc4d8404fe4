//! Fine-tuning's result as a file: the changes of a decoder's projections (full or low-rank),
//! applied on top of a pretrained base that is named by path and SHA-256.
//!
//! An adapter is a folder: `adapter.safetensors` (only what changed: a Δ or LoRA's A and B per
//! target), `adapter.json` (the base's path, SHA-256 and architecture, what trained, and how)
//! and `blocks.json` (the blocks it was trained towards). Opening it opens the base, refuses
//! one whose hash differs (both hashes in the error), and merges the changes into the base's
//! weights, so inference costs nothing extra.

mod file;
mod spec;

use candle_core::{DType, Device, Tensor};

use crate::analysis::rng::SplitMix64;
use crate::hf::trainable::{Projection, ProjectionDelta, TrainableDecoder};
use crate::model::params::ParamStore;

pub use file::{open_adapted, save_adapter, Adapted, AdapterInfo, BaseRef, ADAPTER_FORMAT};
pub use spec::{AdapterSpec, ChangeKind, MAX_RANK};

/// The trainable changes of a decoder's projections.
pub struct Adapter {
    /// What changes, and how.
    pub spec: AdapterSpec,
    /// The tensors, named `blk.L.attn_q.delta` or `blk.L.attn_q.lora_a` / `.lora_b`.
    pub params: ParamStore,
}

/// The parameter name of target (l, p) and part ("delta", "lora_a", "lora_b").
pub fn param_name(l: usize, p: Projection, part: &str) -> String {
    format!("blk.{l}.{}.{part}", p.gguf_name())
}

impl Adapter {
    /// A fresh adapter for `model`: every change starts at zero (full Δ = 0; LoRA's B = 0, A
    /// uniform in ±1/√in as PyTorch's `kaiming_uniform_(a=√5)` gives), so step 0 is the base.
    pub fn new(
        model: &dyn TrainableDecoder,
        spec: AdapterSpec,
        seed: u64,
    ) -> candle_core::Result<Self> {
        let dev = model.tensor_device();
        let mut params = ParamStore::new();
        let mut rng = SplitMix64::new(seed ^ 0x10ca_11fe);
        for &(l, p) in &spec.targets {
            let (out, inp) = model.projection(l, p)?.dims2()?;
            match spec.change {
                ChangeKind::Full => {
                    let z = Tensor::zeros((out, inp), DType::F32, dev)?;
                    params.insert(&param_name(l, p, "delta"), &z)?;
                }
                ChangeKind::Lora { rank, .. } => {
                    let bound = 1.0 / (inp as f64).sqrt();
                    let a: Vec<f32> = (0..rank * inp)
                        .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                        .collect();
                    params.insert(
                        &param_name(l, p, "lora_a"),
                        &Tensor::from_vec(a, (rank, inp), dev)?,
                    )?;
                    let b = Tensor::zeros((out, rank), DType::F32, dev)?;
                    params.insert(&param_name(l, p, "lora_b"), &b)?;
                }
            }
        }
        Ok(Self { spec, params })
    }

    /// The whole change of target (l, p) as a matrix [out, in] (Δ, or (α/r)·B·A).
    pub fn delta_matrix(&self, l: usize, p: Projection) -> candle_core::Result<Tensor> {
        match self.spec.change {
            ChangeKind::Full => self.params.get(&param_name(l, p, "delta")),
            ChangeKind::Lora { rank, alpha } => {
                let a = self.params.get(&param_name(l, p, "lora_a"))?;
                let b = self.params.get(&param_name(l, p, "lora_b"))?;
                b.matmul(&a)? * (alpha / rank.max(1) as f64)
            }
        }
    }

    /// Merge every change into `model`'s weights (for inference).
    pub fn merge_into(&self, model: &mut dyn TrainableDecoder) -> candle_core::Result<()> {
        for &(l, p) in &self.spec.targets {
            // Shapes were checked against the base when the adapter was made or read.
            let w = (model.projection(l, p)? + self.delta_matrix(l, p)?.detach())?;
            model.replace_projection(l, p, w)?;
        }
        Ok(())
    }

    /// The current weights of every target of `model` (W₀ before anything is merged).
    pub fn target_weights(
        &self,
        model: &dyn TrainableDecoder,
    ) -> candle_core::Result<Vec<((usize, Projection), Tensor)>> {
        self.spec
            .targets
            .iter()
            .map(|&(l, p)| Ok(((l, p), model.projection(l, p)?)))
            .collect()
    }

    /// Run `f` on `model` with this adapter merged in, then put the original weights back
    /// (also when `f` fails): what coding a text under one of several adapters on one base
    /// needs.
    pub fn applied<R>(
        &self,
        model: &mut dyn TrainableDecoder,
        f: impl FnOnce(&dyn TrainableDecoder) -> R,
    ) -> candle_core::Result<R> {
        let originals = self.target_weights(model)?;
        let merged = self.merge_into(model);
        let out = merged.map(|()| f(model));
        for ((l, p), w) in originals {
            model.replace_projection(l, p, w)?;
        }
        out
    }

    /// Number of trainable scalars.
    pub fn num_scalars(&self) -> usize {
        self.params.num_scalars()
    }

    /// The device of the tensors.
    pub fn device(&self) -> Device {
        self.params
            .iter()
            .next()
            .map(|(_, v)| v.as_tensor().device().clone())
            .unwrap_or(Device::Cpu)
    }
}

impl ProjectionDelta for Adapter {
    fn delta(&self, l: usize, p: Projection, x: &Tensor) -> candle_core::Result<Option<Tensor>> {
        if self.spec.targets.binary_search(&(l, p)).is_err() {
            return Ok(None);
        }
        let inp = x.dim(candle_core::D::Minus1)?;
        let rows = x.elem_count() / inp.max(1);
        let x2 = x.reshape((rows, inp))?;
        let y = match self.spec.change {
            ChangeKind::Full => x2.matmul(&self.params.get(&param_name(l, p, "delta"))?.t()?)?,
            ChangeKind::Lora { rank, alpha } => {
                let a = self.params.get(&param_name(l, p, "lora_a"))?;
                let b = self.params.get(&param_name(l, p, "lora_b"))?;
                (x2.matmul(&a.t()?)?.matmul(&b.t()?)? * (alpha / rank.max(1) as f64))?
            }
        };
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = y.dim(1)?;
        }
        Ok(Some(y.reshape(dims.as_slice())?))
    }
}
