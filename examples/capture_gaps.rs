//! The tiny model's 64-token capture as the studio meets it (`capture_attention`: attention and
//! metrics, no logits): one capture per dial change, with the machine idle between (a dragged
//! slider sends one a frame), against criterion's loop of captures back to back. Prints the
//! median, 10th and 90th percentile of 400 captures for each gap between them:
//!
//! ```text
//! cargo run --release --example capture_gaps -- 2          # two threads, pinned (the app)
//! LOCALIST_NO_PIN=1 cargo run --release --example capture_gaps -- 2   # rayon's own pool
//! ```
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use candle_core::Device;
use localist::model::blocks::BlockMap;
use localist::model::capture::capture_attention;
use localist::model::config::ModelConfig;
use localist::model::dial::DialSetting;
use localist::model::transformer::LocalistModel;

fn main() -> Result<()> {
    localist::keep_freed_memory();
    let threads: usize = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "2".into())
        .parse()
        .context("the thread count")?;
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        std::env::set_var(var, threads.to_string());
    }
    // The app's pool (its threads pinned one to a CPU where it has one per CPU), unless asked.
    if std::env::var_os("LOCALIST_NO_PIN").is_none() {
        localist::engine::threads::start_pool(threads);
    }
    let blocks = BlockMap::windows(8, 64)?;
    let cfg = ModelConfig::preset("tiny", 96)?;
    let model = LocalistModel::new_random(&cfg, blocks.num_blocks(), 0, &Device::Cpu)?;
    let ids: Vec<u32> = (0..64u32).map(|i| (i * 37 + 11) % 96).collect();
    for gap_ms in [0u64, 2, 20] {
        let mut micros = Vec::with_capacity(400);
        for i in 0..400 {
            std::thread::sleep(Duration::from_millis(gap_ms));
            let lambda = if i % 2 == 0 { 0.3 } else { 0.7 };
            let start = Instant::now();
            let c = capture_attention(&model, &blocks, &ids, &DialSetting::bias(lambda))?;
            micros.push(start.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(c);
        }
        micros.sort_by(f64::total_cmp);
        let at = |q: usize| micros.get(q * micros.len() / 100).copied().unwrap_or(0.0);
        println!(
            "{threads} thread(s), {gap_ms} ms between captures: median {:.0} µs (p10 {:.0}, \
             p90 {:.0})",
            at(50),
            at(10),
            at(90)
        );
    }
    Ok(())
}
