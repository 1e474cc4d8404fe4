//! How many CPU threads candle's matrix products use on this machine. Unless the user says, it
//! is measured once: products of the sizes a training step and a pretrained model's capture
//! multiply, at 1, 2, 4, … threads up to the CPUs available, the fastest kept (fewer threads
//! when within 5%). The answer is remembered in the config folder (`threads.json`), keyed by
//! the CPU count and model, so later starts cost nothing. Small products do not gain from many
//! threads: on a 16-core machine all 16 ran the tiny model's training at half the speed of one.

use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::engine::audit::keys::config_dir;
use crate::engine::export::write_atomic;
pub use crate::train::trainer::{set_training_threads, training_threads};

/// The remembered measurement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadChoice {
    /// CPUs available to this process when it was measured.
    pub cpus: usize,
    /// The CPU's model name (`/proc/cpuinfo`), empty where unknown.
    pub cpu_model: String,
    /// The thread count chosen.
    pub threads: usize,
    /// Milliseconds of the measured products, per thread count tried.
    pub millis: Vec<(usize, f64)>,
    /// How it was measured ([`METHOD`]); a file from an older method is measured again.
    #[serde(default)]
    pub method: u32,
}

/// The measuring method: 3 runs each count on a pool of its own (method 2 set
/// RAYON_NUM_THREADS for each count, but the products' first use of rayon made the global pool
/// at the count of that moment, 2, and every larger count ran on those two threads; method 1
/// set only CANDLE_NUM_THREADS, which candle 0.11's products ignore).
pub const METHOD: u32 = 3;

/// Most threads tried.
const MAX_TRIED: usize = 32;

/// The thread count to use: `requested` when given, else the remembered or newly measured
/// fastest. Call it before candle's first operation (it sets no variable itself).
pub fn choose(requested: Option<usize>) -> usize {
    if let Some(n) = requested {
        return n;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus == 1 {
        return 1;
    }
    let model = cpu_model();
    let file = config_dir().ok().map(|d| d.join("threads.json"));
    let remembered = file
        .as_ref()
        .and_then(|f| crate::files::read_bytes(f, 64 << 10, "threads.json").ok())
        .and_then(|b| serde_json::from_slice::<ThreadChoice>(&b).ok())
        // A count is only ever measured among 1..=cpus: anything else in the file (100,000
        // made the worker's pool fail to start, again on every restart) is measured anew.
        .filter(|c| {
            c.cpus == cpus
                && c.cpu_model == model
                && (1..=cpus).contains(&c.threads)
                && c.method == METHOD
        });
    if let Some(c) = remembered {
        return c.threads;
    }
    let choice = measure(cpus, model);
    if let (Some(f), Ok(json)) = (file, serde_json::to_vec_pretty(&choice)) {
        // Remembering is a convenience: a read-only config folder only means measuring again.
        let _ = f.parent().map(std::fs::create_dir_all);
        let _ = write_atomic(&f, &json);
    }
    choice.threads
}

/// Time the products at 1, 2, 4, … threads (and `cpus` itself) and keep the fastest.
pub fn measure(cpus: usize, cpu_model: String) -> ThreadChoice {
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |n| Some(n * 2))
        .take_while(|&n| n <= cpus.min(MAX_TRIED))
        .collect();
    if cpus <= MAX_TRIED && counts.last() != Some(&cpus) {
        counts.push(cpus);
    }
    // candle 0.11 sizes its products by RAYON_NUM_THREADS (CANDLE_NUM_THREADS only sizes its
    // barrier pool), so both are set for each count and restored after.
    const VARS: [&str; 2] = ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"];
    let saved = VARS.map(std::env::var_os);
    let millis: Vec<(usize, f64)> = counts
        .iter()
        .map(|&n| {
            for var in VARS {
                std::env::set_var(var, n.to_string());
            }
            // Each count on a pool of its own: the products' first use of rayon would otherwise
            // make the global pool at the count measured then (2), for every later count and
            // for the run after.
            let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build();
            let ms = match pool {
                Ok(pool) => pool.install(products_millis),
                Err(_) => products_millis(),
            };
            (n, ms.unwrap_or(f64::INFINITY))
        })
        .collect();
    for (var, value) in VARS.into_iter().zip(saved) {
        match value {
            Some(v) => std::env::set_var(var, v),
            None => std::env::remove_var(var),
        }
    }
    let best = millis
        .iter()
        .map(|&(_, ms)| ms)
        .fold(f64::INFINITY, f64::min);
    let threads = millis
        .iter()
        .find(|&&(_, ms)| ms <= best * 1.05)
        .map_or(1, |&(n, _)| n);
    ThreadChoice {
        cpus,
        cpu_model,
        threads,
        millis,
        method: METHOD,
    }
}

/// Best of three rounds of a training step's and a pretrained capture's products, in ms.
fn products_millis() -> candle_core::Result<f64> {
    let dev = Device::Cpu;
    let shapes: [(usize, usize, usize, usize); 3] = [
        // The tiny model's projections over a 32 × 64 batch.
        (1, 2048, 128, 512),
        // Its attention scores, one product per sequence and head.
        (128, 64, 32, 64),
        // SmolLM2's MLP rows at 64 tokens.
        (1, 64, 576, 1536),
    ];
    let pairs: Vec<(Tensor, Tensor)> = shapes
        .iter()
        .map(|&(b, m, k, n)| {
            Ok((
                Tensor::ones((b, m, k), candle_core::DType::F32, &dev)?,
                Tensor::ones((b, k, n), candle_core::DType::F32, &dev)?,
            ))
        })
        .collect::<candle_core::Result<_>>()?;
    let mut best = f64::INFINITY;
    for round in 0..4 {
        let t0 = Instant::now();
        for (a, b) in &pairs {
            a.matmul(b)?;
        }
        // The first round warms the caches and the thread pool.
        if round > 0 {
            best = best.min(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    Ok(best)
}

/// The CPU's model name, from `/proc/cpuinfo` where there is one.
fn cpu_model() -> String {
    // A file of the kernel's (its size reads as 0), not the user's: read directly.
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_default()
}

/// Build rayon's global pool of `n` threads (call it before anything uses rayon; a pool that
/// already exists is kept), pinned one to a CPU where it has one per CPU
/// ([`crate::model::native::pinned::pool_builder`]).
pub fn start_pool(n: usize) {
    // Err only when the pool exists already (something used rayon first): it stays as it is.
    let _ = crate::model::native::pinned::pool_builder(n).build_global();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_count_up_to_the_cpus_is_timed_and_the_fastest_kept() {
        let c = measure(6, "test cpu".into());
        let tried: Vec<usize> = c.millis.iter().map(|&(n, _)| n).collect();
        assert_eq!(tried, vec![1, 2, 4, 6]);
        assert!(c.millis.iter().all(|&(_, ms)| ms.is_finite() && ms > 0.0));
        let best = c
            .millis
            .iter()
            .map(|&(_, ms)| ms)
            .fold(f64::INFINITY, f64::min);
        let chosen = c
            .millis
            .iter()
            .find(|&&(n, _)| n == c.threads)
            .map(|&(_, ms)| ms);
        assert!(chosen.is_some_and(|ms| ms <= best * 1.05), "{c:?}");
        assert_eq!(choose(Some(3)), 3);
    }
}
