//! Fine-tuning a pretrained decoder towards its blocks (issue 17): the off-block penalty of
//! SPEC §4.1 on the decoder's own attention, added to its next-token cross-entropy, trains an
//! [`Adapter`] (full changes or LoRA on chosen projections) while the base stays frozen.
//!
//! One step: B windows of T+1 tokens of the corpus (the model's own tokenizer), the
//! differentiable forward ([`GgufLlama::forward_train`]), loss = CE + η·λ·mean_l Ω_l with λ
//! ramped in over the first tenth of the steps as our own training anneals it, plus
//! μ_anc·L_anchor (SPEC §5: each query classified onto its block's anchor key, the keys trained
//! with the adapter; a pretrained model's attention has no slot for them, so they shape the
//! queries and are not kept) and μ_rule·L_rule, AdamW on the adapter (and anchor keys) alone. Between steps the base holds W₀ + Δ (the adapter applied, from the original
//! weights kept aside, so nothing drifts), so captures, generation and held-out metrics see the
//! tuned model through the same code as any model, and the dial's curve is comparable.

mod config;

use std::path::PathBuf;

use candle_core::{DType, Tensor};

use crate::analysis::anchors::orthonormal_vectors;
use crate::analysis::rng::SplitMix64;
use crate::hf::adapter::{Adapter, AdapterInfo, BaseRef, ADAPTER_FORMAT};
use crate::hf::eval::{eval_imported, RealEvalRow};
use crate::hf::trainable::{Projection, TrainableDecoder};
use crate::hf::ImportedModel;
use crate::model::blocks::{BlockMap, SequenceMasks};
use crate::model::dial::DialSetting;
use crate::model::params::ParamStore;
use crate::model::transformer::anchor_name;
use crate::rules::check::{fire, ResolvedRule};
use crate::train::optimizer::{AdamW, AdamWConfig};
use crate::train::penalty::{
    anchor_loss, group_lasso, off_block_keys, off_block_mass, outside_own_block_keys, GroupWeights,
    PenaltyTensors,
};
use crate::train::rule_penalty::rule_penalty;
use crate::train::{StepStats, TrainError};

pub use config::{FineTuneConfig, LocalityPenalty};

/// A fine-tuning run: the base, its blocks, the adapter and its optimizer, the corpus.
pub struct FineTuner {
    /// The base model, holding W₀ + Δ between steps (W₀ during a step and in `evaluate_base`).
    pub base: ImportedModel,
    /// Where the base came from, and its SHA-256.
    pub base_ref: BaseRef,
    /// The blocks the penalty pulls towards.
    pub blocks: BlockMap,
    /// What trains.
    pub adapter: Adapter,
    /// Settings.
    pub config: FineTuneConfig,
    /// Rules trained towards (weight `config.mu_rule`), resolved against the blocks.
    pub rules: Vec<ResolvedRule>,
    /// Steps taken.
    pub step: usize,
    opt: AdamW,
    train_ids: Vec<u32>,
    /// Held-out tokens (the corpus's last tenth).
    pub held_ids: Vec<u32>,
    rng: SplitMix64,
    /// The targets' original weights W₀.
    originals: Vec<((usize, Projection), Tensor)>,
    /// Anchor keys per layer [H, K, d_h] (empty unless μ_anc > 0).
    pub anchors: ParamStore,
}

/// The terms of a batch's loss.
struct Terms {
    total: Tensor,
    ce: Tensor,
    penalty: Tensor,
    anchor: Tensor,
    rule: Tensor,
}

impl FineTuner {
    /// Set up a run on `base` (a LLaMA-family or GPT-2 decoder) over the token ids of a corpus.
    pub fn new(
        base: ImportedModel,
        base_ref: BaseRef,
        blocks: BlockMap,
        ids: Vec<u32>,
        config: FineTuneConfig,
    ) -> Result<Self, TrainError> {
        let decoder = decoder(&base)?;
        config
            .check_for(decoder.context(), ids.len())
            .map_err(TrainError::Invalid)?;
        config.spec.check_on(decoder).map_err(TrainError::Invalid)?;
        let held = FineTuneConfig::held_out(ids.len(), config.seq_len);
        let adapter = Adapter::new(decoder, config.spec.clone(), config.seed)?;
        let anchors = if config.mu_anchor > 0.0 {
            anchor_keys(decoder, blocks.num_blocks(), config.seed)?
        } else {
            ParamStore::new()
        };
        let opt = AdamW::new(
            &adapter.params.union(&anchors),
            AdamWConfig {
                lr: config.lr,
                weight_decay: 0.0,
                ..AdamWConfig::default()
            },
        )?;
        let split = ids.len() - held;
        let originals = adapter.target_weights(decoder)?;
        Ok(Self {
            originals,
            base,
            base_ref,
            blocks,
            adapter,
            step: 0,
            opt,
            held_ids: ids[split..].to_vec(),
            train_ids: ids[..split].to_vec(),
            rng: SplitMix64::new(config.seed),
            config,
            rules: Vec::new(),
            anchors,
        })
    }

    /// λ at the current step: ramped linearly over the first tenth of the run.
    pub fn lambda_now(&self) -> f64 {
        let ramp = (self.config.steps / 10).max(1);
        self.config.lambda_train * ((self.step + 1) as f64 / ramp as f64).min(1.0)
    }

    /// Set every target to W₀ + Δ (`with_adapter`) or back to W₀.
    fn set_weights(&mut self, with_adapter: bool) -> candle_core::Result<()> {
        let Self {
            base,
            adapter,
            originals,
            ..
        } = self;
        let Some(decoder) = base.trainable_mut() else {
            return Ok(());
        };
        for ((l, p), w0) in originals.iter() {
            let w = if with_adapter {
                (w0 + adapter.delta_matrix(*l, *p)?.detach())?
            } else {
                w0.clone()
            };
            decoder.replace_projection(*l, *p, w)?;
        }
        Ok(())
    }

    /// The base model at W₀ (the adapter taken out) and the blocks, ending the run.
    pub fn into_base(self) -> candle_core::Result<(ImportedModel, BlockMap)> {
        let (base, blocks, _) = self.into_parts()?;
        Ok((base, blocks))
    }

    /// The base model at W₀, the blocks and the trained adapter, ending the run (a pool of
    /// adapters keeps the adapter and gives the base to the next).
    pub fn into_parts(mut self) -> candle_core::Result<(ImportedModel, BlockMap, Adapter)> {
        self.set_weights(false)?;
        Ok((self.base, self.blocks, self.adapter))
    }

    /// One optimisation step (on W₀, the adapter applied again after it).
    pub fn train_step(&mut self) -> Result<StepStats, TrainError> {
        self.set_weights(false)?;
        let result = self.step_on_base();
        self.set_weights(true)?;
        result
    }

    /// [`train_step`](Self::train_step) with the base at W₀.
    fn step_on_base(&mut self) -> Result<StepStats, TrainError> {
        let (b, t) = (self.config.batch_size, self.config.seq_len);
        let mut x = Vec::with_capacity(b * t);
        let mut y = Vec::with_capacity(b * t);
        let mut masks = Vec::with_capacity(b);
        for _ in 0..b {
            let s = self.rng.below(self.train_ids.len() - t);
            let w = &self.train_ids[s..s + t + 1];
            x.extend_from_slice(&w[..t]);
            y.extend_from_slice(&w[1..]);
            masks.push(self.blocks.masks(&w[..t]));
        }
        let lambda = self.lambda_now();
        let terms = self.loss(&x, &y, &masks, lambda)?;
        let total = terms.total.to_scalar::<f32>()?;
        if !total.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step,
                loss: total,
                last_good: self.step.saturating_sub(1),
            });
        }
        let grads = terms.total.backward()?;
        self.opt.step(&grads)?;
        let stats = StepStats {
            step: self.step,
            loss_nats: f64::from(total),
            ce_nats: f64::from(terms.ce.to_scalar::<f32>()?),
            penalty: f64::from(terms.penalty.to_scalar::<f32>()?),
            anchor_nats: f64::from(terms.anchor.to_scalar::<f32>()?),
            rule_nats: f64::from(terms.rule.to_scalar::<f32>()?),
            lambda,
            tokens: b * t,
        };
        self.step += 1;
        Ok(stats)
    }

    /// The loss terms of a batch: x and y [B·T], the masks of each window.
    fn loss(
        &self,
        x: &[u32],
        y: &[u32],
        masks: &[SequenceMasks],
        lambda: f64,
    ) -> Result<Terms, TrainError> {
        let decoder = decoder(&self.base)?;
        let dev = decoder.tensor_device();
        let (b, t) = (masks.len(), self.config.seq_len);
        let xs = Tensor::from_vec(x.to_vec(), (b, t), dev)?;
        let ys = Tensor::from_vec(y.to_vec(), b * t, dev)?;
        let out = decoder.train_forward(&xs, &self.adapter)?;
        let ce = candle_nn::loss::cross_entropy(&out.logits, &ys)?;
        let mut pen = Tensor::zeros((), DType::F32, dev)?;
        let mut total = ce.clone();
        if lambda > 0.0 && self.config.eta > 0.0 {
            let mut acc = Vec::with_capacity(out.attention.len());
            match self.config.penalty {
                LocalityPenalty::Group(weights) => {
                    let pt =
                        PenaltyTensors::new(masks, self.blocks.num_blocks(), weights, false, dev)?;
                    for a in &out.attention {
                        acc.push(group_lasso(a, &pt, self.config.penalty_eps)?);
                    }
                }
                LocalityPenalty::Mass
                | LocalityPenalty::MassOwnBlock
                | LocalityPenalty::MassBlockKeys => {
                    let off = match self.config.penalty {
                        LocalityPenalty::MassOwnBlock => outside_own_block_keys(masks, false, dev)?,
                        LocalityPenalty::MassBlockKeys => outside_own_block_keys(masks, true, dev)?,
                        _ => off_block_keys(masks, dev)?,
                    };
                    for a in &out.attention {
                        acc.push(off_block_mass(a, &off)?);
                    }
                }
            }
            pen = (Tensor::stack(&acc, 0)?.sum_all()? / acc.len().max(1) as f64)?;
            total = (total + (&pen * (self.config.eta * lambda))?)?;
        }
        let mut anchor = Tensor::zeros((), DType::F32, dev)?;
        if self.config.mu_anchor > 0.0 && !self.anchors.is_empty() {
            let pt = PenaltyTensors::new(
                masks,
                self.blocks.num_blocks(),
                GroupWeights::Unit,
                false,
                dev,
            )?;
            let mut acc = Vec::with_capacity(out.queries.len());
            for (l, q) in out.queries.iter().enumerate() {
                acc.push(anchor_loss(q, &self.anchors.get(&anchor_name(l))?, &pt)?);
            }
            anchor = (Tensor::stack(&acc, 0)?.sum_all()? / acc.len().max(1) as f64)?;
            total = (total + (&anchor * self.config.mu_anchor)?)?;
        }
        let mut rule = Tensor::zeros((), DType::F32, dev)?;
        if self.config.mu_rule > 0.0 && !self.rules.is_empty() {
            let firings: Vec<_> = masks
                .iter()
                .zip(x.chunks(t))
                .map(|(m, ids)| fire(&self.rules, ids, m))
                .collect();
            if let Some(r) = rule_penalty(&self.rules, &out.attention, &firings)? {
                total = (total + (&r * self.config.mu_rule)?)?;
                rule = r;
            }
        }
        Ok(Terms {
            total,
            ce,
            penalty: pen,
            anchor,
            rule,
        })
    }

    /// Held-out perplexity, entropy and ε at λ_inf = 0 of the tuned model, over at most
    /// `windows` windows of the run's length.
    pub fn evaluate(&self, windows: usize) -> anyhow::Result<RealEvalRow> {
        eval_imported(
            self.base.model(),
            &self.blocks,
            &self.held_ids,
            &[DialSetting::default()],
            self.config.seq_len,
            windows,
        )?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no evaluation row"))
    }

    /// The base model (the adapter left out) under each inference dial of `dials`, on the same
    /// held-out windows as [`evaluate`](Self::evaluate): the curve fine-tuning is compared with.
    pub fn evaluate_base(
        &mut self,
        dials: &[DialSetting],
        windows: usize,
    ) -> anyhow::Result<Vec<RealEvalRow>> {
        self.set_weights(false)?;
        let rows = eval_imported(
            self.base.model(),
            &self.blocks,
            &self.held_ids,
            dials,
            self.config.seq_len,
            windows,
        );
        self.set_weights(true)?;
        rows
    }

    /// The adapter's description for its file, with the held-out metrics when measured.
    pub fn info(
        &self,
        corpus: Option<(&PathBuf, &str)>,
        eval: Option<&RealEvalRow>,
    ) -> AdapterInfo {
        AdapterInfo {
            format: ADAPTER_FORMAT.into(),
            version: 1,
            base: self.base_ref.clone(),
            spec: self.adapter.spec.clone(),
            training: serde_json::json!({
                "lambda_train": self.config.lambda_train,
                "eta": self.config.eta,
                "penalty": self.config.penalty,
                "mu_rule": self.config.mu_rule,
                "mu_anchor": self.config.mu_anchor,
                "rules": self.rules.iter().filter(|r| r.enabled).map(|r| r.id.clone()).collect::<Vec<_>>(),
                "steps": self.step,
                "seq_len": self.config.seq_len,
                "batch_size": self.config.batch_size,
                "lr": self.config.lr,
                "seed": self.config.seed,
                "trainable_scalars": self.adapter.num_scalars(),
                "corpus": corpus.map(|(p, h)| serde_json::json!({"path": p, "sha256": h})),
                "held_out": eval,
            }),
        }
    }
}

/// The decoder of `m`, or an error naming what it is.
fn decoder(m: &ImportedModel) -> Result<&dyn TrainableDecoder, TrainError> {
    m.trainable().ok_or_else(|| {
        TrainError::Invalid(format!(
            "{}: a {} model; fine-tuning supports decoders (GGUF, LLaMA, Mistral, Phi-3, Qwen2, Qwen3 and GPT-2 \
             folders)",
            m.path().display(),
            m.arch_label()
        ))
    })
}

/// Anchor keys for `k` blocks in every layer of `model`: per head, orthonormal when K ≤ d_h
/// (SPEC §5), named as our own models name theirs.
fn anchor_keys(
    model: &dyn TrainableDecoder,
    k: usize,
    seed: u64,
) -> candle_core::Result<ParamStore> {
    let h = model.as_model().dims().heads.max(1);
    let dh = model.projection(0, Projection::Q)?.dim(0)? / h;
    let mut rng = SplitMix64::new(seed ^ 0xA5A5);
    let mut keys = ParamStore::new();
    for l in 0..model.num_layers() {
        let data: Vec<f32> = (0..h)
            .flat_map(|_| orthonormal_vectors(k, dh, &mut rng))
            .flatten()
            .collect();
        keys.insert(
            &anchor_name(l),
            &Tensor::from_vec(data, (h, k, dh), model.tensor_device())?,
        )?;
    }
    Ok(keys)
}
