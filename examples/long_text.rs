//! Long texts in the studio (the speed issue, point 5): SmolLM2 through the worker as the studio
//! drives it (Capture, Load, then SetDial → Snapshot), on the first N tokens of the bundled
//! Shakespeare; prints each dial change's time, the capture's shape and the process's peak
//! resident memory (VmHWM). Run one length per process, so the peak is that length's:
//!
//! ```text
//! CANDLE_NUM_THREADS=2 RAYON_NUM_THREADS=2 cargo run --release --example long_text -- 2048
//! ```
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use localist::data::tokenizer::Tokenizer;
use localist::engine::worker::{Command, Event, WorkerHandle};
use localist::model::dial::DialSetting;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> Result<()> {
    // Freed memory kept for reuse, as the studio's binary keeps it (`src/main.rs`).
    localist::keep_freed_memory();
    let tokens: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2048);
    let dials: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let corpus = std::fs::read_to_string(root.join("../shared/corpora/shakespeare_modern.txt"))
        .or_else(|_| std::fs::read_to_string(root.join("assets/corpora/shakespeare.txt")))?;
    // About 4 characters per token: enough text, cut by the worker to the model's context.
    let text: String = corpus.chars().take(tokens * 4).collect();
    let im = localist::hf::ImportedModel::open(&model, &candle_core::Device::Cpu)?;
    let n = im.tokenizer().encode(&text).len().min(tokens);
    let text = {
        let ids: Vec<u32> = im.tokenizer().encode(&text).into_iter().take(n).collect();
        im.tokenizer().decode(&ids)
    };
    drop(im);
    let w = WorkerHandle::spawn(Box::new(|| {}))?;
    w.send(Command::Capture(text));
    w.send(Command::Load(model));
    let wait = |w: &WorkerHandle| -> Result<(usize, usize, usize)> {
        loop {
            match w.wait_event(Duration::from_secs(900)) {
                Some(Event::Snapshot(c, _, _)) => {
                    let (gr, gc) = c.attention_layout().grid();
                    return Ok((c.len(), gr, gc));
                }
                Some(Event::Failed(e)) => bail!(e),
                Some(_) => continue,
                None => bail!("no snapshot within 15 minutes"),
            }
        }
    };
    let t0 = Instant::now();
    let (len, gr, gc) = wait(&w)?;
    println!(
        "load and first capture: {len} tokens, grid {gr}×{gc} per head, {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let mut times = Vec::new();
    for k in 0..dials {
        let t = Instant::now();
        w.send(Command::SetDial(DialSetting::bias(0.5 + 0.1 * k as f64)));
        wait(&w)?;
        times.push(t.elapsed().as_secs_f64());
        println!("dial change {k}: {:.2} s", times[k]);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{len} tokens: dial change median {:.2} s; peak resident memory {:.0} MiB",
        times[times.len() / 2],
        peak_rss_mib()
    );
    Ok(())
}
