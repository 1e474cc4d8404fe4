//! Parity with the PyTorch reference (`../shared/reference/`): the same initial weights and the
//! same sequential batches must give the same batch-0 loss (±1e-4) and the same first 20 AdamW
//! step losses (±1e-3). Fixtures are copies of `shared/reference/parity_lam0/`; the corpus is
//! the bundled first megabyte of `shakespeare_modern.txt` (the first 20 batches lie inside it,
//! so the reference's offsets are reproduced exactly: no offset reaches the modulus).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::path::Path;

use candle_core::{Device, Tensor};
use localist::data::tokenizer::{CharTokenizer, Tokenizer};
use localist::model::blocks::BlockMap;
use localist::model::checkpoint::read_tensors;
use localist::model::config::ModelConfig;
use localist::model::transformer::LocalistModel;
use localist::train::dataset::{train_split, Sampling, TokenStream};
use localist::train::trainer::{TrainConfig, Trainer};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/parity_lam0")
        .join(name)
}

fn setup() -> (Trainer, serde_json::Value) {
    let dev = Device::Cpu;
    let cfg = ModelConfig::preset("tiny", 96).unwrap();
    let init = read_tensors(&fixture("init.safetensors"), &dev).unwrap();
    let blocks = BlockMap::windows(8, 64).unwrap();
    let model = LocalistModel::from_tensors(&cfg, &init, blocks.num_blocks(), &dev).unwrap();
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/corpora/shakespeare_1mb.txt"),
    )
    .unwrap();
    let ids = CharTokenizer.encode(&text);
    let (train, _) = TokenStream {
        ids,
        targets: Vec::new(),
    }
    .split_at(train_split(text.len()));
    let tc = TrainConfig {
        lambda_train: 0.0,
        mu_anchor: 0.0,
        batch_size: 32,
        seq_len: 64,
        steps: 100,
        sampling: Sampling::Sequential,
        ..TrainConfig::default()
    };
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("metrics.json")).unwrap()).unwrap();
    (Trainer::new(model, blocks, train, tc).unwrap(), metrics)
}

#[test]
fn batch0_matches_reference_batch_and_loss() {
    let (mut trainer, metrics) = setup();
    let b0 = read_tensors(&fixture("batch0.safetensors"), &Device::Cpu).unwrap();
    let x_ref: Vec<Vec<i64>> = b0["x"].to_vec2().unwrap();
    let batch = trainer.next_batch();
    assert_eq!(batch.len(), 32);
    for (w, xr) in batch.iter().zip(&x_ref) {
        let xr: Vec<u32> = xr.iter().map(|&v| v as u32).collect();
        assert_eq!(w.x, xr, "our sequential batch differs from the reference's");
    }
    let (_, ce, _, _) = trainer.batch_loss(&batch, 0.0).unwrap();
    let ce = ce.to_scalar::<f32>().unwrap() as f64;
    let expected = metrics["batch0_ce"].as_f64().unwrap();
    assert!((expected - 4.611643).abs() < 1e-6);
    assert!(
        (ce - expected).abs() < 1e-4,
        "batch-0 loss {ce} vs reference {expected}"
    );
    eprintln!("batch-0 loss {ce:.7} vs PyTorch {expected:.7}");
    // The logits themselves agree too.
    let x = Tensor::from_vec(
        batch.iter().flat_map(|w| w.x.clone()).collect::<Vec<u32>>(),
        (32, 64),
        &Device::Cpu,
    )
    .unwrap();
    let out = trainer.model.forward(&x, &[], Default::default()).unwrap();
    let diff = (out.logits - b0["logits"].clone())
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
}

#[test]
fn first_twenty_adamw_steps_match_reference_losses() {
    let (mut trainer, metrics) = setup();
    let losses = metrics["losses"].as_array().unwrap();
    let mut worst = 0.0f64;
    for (s, expected) in losses.iter().take(20).enumerate() {
        let stats = trainer.train_step().unwrap();
        let expected = expected["loss"].as_f64().unwrap();
        assert!(
            (stats.loss_nats - expected).abs() < 1e-3,
            "step {s}: loss {} vs reference {expected}",
            stats.loss_nats
        );
        worst = worst.max((stats.loss_nats - expected).abs());
    }
    eprintln!("largest step-loss deviation from PyTorch over 20 steps: {worst:.2e}");
}
