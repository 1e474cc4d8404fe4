//! Time the forward, backward and whole training step of the tiny preset on the reference
//! configuration (batch 32 x 64, windows of 8). For profiling, e.g.
//! `CANDLE_NUM_THREADS=1 perf record -g` on the bench binary.
//! Usage: `cargo bench --bench profile_step` (`LAMBDA=0` for no penalty).
#![allow(clippy::unwrap_used, clippy::too_many_lines)]
use candle_core::Device;
use localist::data::tokenizer::{CharTokenizer, Tokenizer};
use localist::model::blocks::BlockMap;
use localist::model::config::ModelConfig;
use localist::model::transformer::LocalistModel;
use localist::train::dataset::{Sampling, TokenStream};
use localist::train::trainer::{TrainConfig, Trainer};
use std::time::Instant;
fn main() {
    // Freed memory kept for the next step, as in the app (`src/main.rs`).
    localist::keep_freed_memory();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/corpora/shakespeare_1mb.txt"
    ))
    .unwrap();
    let blocks = BlockMap::windows(8, 64).unwrap();
    let cfg = ModelConfig::preset("tiny", 96).unwrap();
    let lam: f64 = std::env::var("LAMBDA")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.01);
    let model = LocalistModel::new_random(&cfg, blocks.num_blocks(), 0, &Device::Cpu).unwrap();
    let tc = TrainConfig {
        lambda_train: lam,
        mu_anchor: 0.0,
        batch_size: 32,
        seq_len: 64,
        steps: 1000,
        sampling: Sampling::Sequential,
        anneal_fraction: 0.0,
        ..TrainConfig::default()
    };
    let mut tr = Trainer::new(
        model,
        blocks,
        TokenStream {
            ids: CharTokenizer.encode(&text),
            targets: vec![],
        },
        tc,
    )
    .unwrap();
    for _ in 0..3 {
        tr.train_step().unwrap();
    }
    let (mut f, mut b, mut s) = (0.0, 0.0, 0.0);
    let n = 15;
    for _ in 0..n {
        let batch = tr.next_batch();
        let t0 = Instant::now();
        let (total, ..) = tr.batch_loss(&batch, lam).unwrap();
        let _ = total.to_scalar::<f32>().unwrap();
        let t1 = Instant::now();
        let g = total.backward().unwrap();
        let t2 = Instant::now();
        drop(g);
        let t3 = Instant::now();
        f += (t1 - t0).as_secs_f64();
        b += (t2 - t1).as_secs_f64();
        s += (t3 - t2).as_secs_f64();
    }
    println!(
        "forward {:.1} ms, backward {:.1} ms, drop {:.1}",
        1e3 * f / n as f64,
        1e3 * b / n as f64,
        1e3 * s / n as f64
    );
    let t0 = Instant::now();
    for _ in 0..n {
        tr.train_step().unwrap();
    }
    println!(
        "full step {:.1} ms",
        1e3 * t0.elapsed().as_secs_f64() / n as f64
    );
}
