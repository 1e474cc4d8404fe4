//! CPU against CUDA on the PyTorch-parity setup of `tests/parity.rs`: the reference's initial
//! weights (`tests/fixtures/parity_lam0/`), its sequential batches over the bundled corpus,
//! tiny preset, batch 32 × 64, windows of 8. Trains the same steps on each device, at λ = 0 (the
//! reference's own run, whose step losses are in `metrics.json`) and at λ = 0.01 (off-block
//! penalty, no reference), and prints each step's loss on each device and the largest
//! differences. Without `--features cuda`, or without a GPU, only the CPU runs.
//!
//! ```sh
//! cargo run --release --features cuda --example device_parity -- [STEPS=20]
//! ```
//!
//! Paths are relative to the working directory (the repository root).
#![allow(clippy::too_many_lines)]

use std::path::Path;

use anyhow::{Context, Result};
use candle_core::Device;
use localist::data::tokenizer::{CharTokenizer, Tokenizer};
use localist::model::blocks::BlockMap;
use localist::model::checkpoint::read_tensors;
use localist::model::config::ModelConfig;
use localist::model::transformer::LocalistModel;
use localist::train::dataset::{train_split, Sampling, TokenStream};
use localist::train::trainer::{TrainConfig, Trainer};

const FIXTURE: &str = "tests/fixtures/parity_lam0";
const CORPUS: &str = "assets/corpora/shakespeare_1mb.txt";

/// Loss (nats) of each of the first `steps` steps on `dev`.
fn losses(dev: &Device, lambda: f64, steps: usize) -> Result<Vec<f64>> {
    let cfg = ModelConfig::preset("tiny", 96)?;
    let init = read_tensors(&Path::new(FIXTURE).join("init.safetensors"), dev)?;
    let blocks = BlockMap::windows(8, 64)?;
    let model = LocalistModel::from_tensors(&cfg, &init, blocks.num_blocks(), dev)?;
    let text = std::fs::read_to_string(CORPUS).with_context(|| CORPUS.to_string())?;
    let ids = CharTokenizer.encode(&text);
    let (train, _) = TokenStream {
        ids,
        targets: Vec::new(),
    }
    .split_at(train_split(text.len()));
    let tc = TrainConfig {
        lambda_train: lambda,
        anneal_fraction: 0.0,
        mu_anchor: 0.0,
        batch_size: 32,
        seq_len: 64,
        steps,
        sampling: Sampling::Sequential,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, blocks, train, tc)?;
    (0..steps)
        .map(|_| Ok(trainer.train_step()?.loss_nats))
        .collect()
}

fn main() -> Result<()> {
    let steps: usize = match std::env::args().nth(1) {
        Some(s) => s.parse().context("STEPS must be a number")?,
        None => 20,
    };
    let metrics: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(FIXTURE).join("metrics.json"))
            .context("reading the reference's metrics.json")?,
    )?;
    let reference: Vec<f64> = metrics["losses"]
        .as_array()
        .map(|a| a.iter().filter_map(|l| l["loss"].as_f64()).collect())
        .unwrap_or_default();
    let cuda = match Device::new_cuda(0) {
        Ok(d) => Some(d),
        Err(e) => {
            let e = e.to_string();
            println!(
                "no CUDA device ({}); CPU only",
                e.lines().next().unwrap_or("")
            );
            None
        }
    };
    for lambda in [0.0, 0.01] {
        let cpu = losses(&Device::Cpu, lambda, steps)?;
        let gpu = match &cuda {
            Some(d) => Some(losses(d, lambda, steps)?),
            None => None,
        };
        println!("λ = {lambda}: step, loss CPU, loss CUDA, |CPU−CUDA|, |CPU−torch|, |CUDA−torch|");
        let (mut worst_dev, mut worst_cpu_ref, mut worst_gpu_ref) = (0f64, 0f64, 0f64);
        for (s, c) in cpu.iter().enumerate() {
            let g = gpu.as_ref().and_then(|g| g.get(s)).copied();
            let r = if lambda == 0.0 {
                reference.get(s).copied()
            } else {
                None
            };
            let fmt = |v: Option<f64>| v.map(|v| format!("{v:.3e}")).unwrap_or("-".into());
            let d = g.map(|g| (g - c).abs());
            let dcr = r.map(|r| (c - r).abs());
            let dgr = g.zip(r).map(|(g, r)| (g - r).abs());
            worst_dev = worst_dev.max(d.unwrap_or(0.0));
            worst_cpu_ref = worst_cpu_ref.max(dcr.unwrap_or(0.0));
            worst_gpu_ref = worst_gpu_ref.max(dgr.unwrap_or(0.0));
            println!(
                "{s:>3} {c:.7} {} {} {} {}",
                g.map(|g| format!("{g:.7}")).unwrap_or("-".into()),
                fmt(d),
                fmt(dcr),
                fmt(dgr)
            );
        }
        println!(
            "λ = {lambda}, {steps} steps: max |CPU−CUDA| {worst_dev:.3e}, max |CPU−torch| \
             {worst_cpu_ref:.3e}, max |CUDA−torch| {worst_gpu_ref:.3e}"
        );
    }
    Ok(())
}
