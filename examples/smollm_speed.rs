//! Speed and memory of the SmolLM2 GGUF path on this machine (issue 6): open time, prefill of a
//! 64-token prompt, one decode step without and with the KV cache, a dial change's capture and
//! peak resident memory. Run: `cargo run --release --example smollm_speed` after
//! `scripts/fetch_models.sh`.
#![allow(clippy::too_many_lines)]

use std::time::Instant;

use anyhow::Result;
use candle_core::Device;
use localist::engine::worker::{Command, Event};

fn peak_rss_mib() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> Result<()> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let t0 = Instant::now();
    let im = localist::hf::ImportedModel::open(&path, &Device::Cpu)?;
    println!("open: {:.2} s", t0.elapsed().as_secs_f64());
    let localist::hf::ImportedModel::Llama(m) = &im else {
        anyhow::bail!("not a LLaMA model");
    };
    let text = "The capital of France is Paris. It lies on the Seine, and its museums, \
                cafes and bridges draw visitors from all over the world every single year, \
                in every season of the year, whatever the weather may be.";
    // 64 tokens: the text, then the text again.
    let mut ids = m.encode(&format!("{text} {text}"))?;
    ids.truncate(64);
    let n = ids.len();
    let _ = m.forward_with(&ids, &[], false)?; // warm-up
    let reps = 5;
    let t1 = Instant::now();
    for _ in 0..reps {
        let _ = m.forward_with(&ids, &[], false)?;
    }
    let prefill = t1.elapsed().as_secs_f64() / reps as f64;
    println!(
        "prefill {n} tokens: {:.1} ms ({:.0} tokens/s)",
        prefill * 1e3,
        n as f64 / prefill
    );
    let mut longer = ids.clone();
    longer.push(13);
    let t2 = Instant::now();
    let _ = m.next_logits(&longer)?;
    println!(
        "one decode step without a KV cache (forward over {} tokens): {:.1} ms",
        longer.len(),
        t2.elapsed().as_secs_f64() * 1e3
    );
    // With the cache: the prompt once, then one position per token.
    let mut cache = localist::model::backend::KvCache::default();
    let _ = m.forward_cached(&ids, &[], false, &mut cache, true)?;
    let steps = 16;
    let t4 = Instant::now();
    for k in 0..steps {
        let _ = m.forward_cached(&[13 + k], &[], false, &mut cache, true)?;
    }
    println!(
        "decode with the KV cache after {n} tokens: {:.1} ms per token ({steps} tokens)",
        t4.elapsed().as_secs_f64() * 1e3 / steps as f64
    );
    // A dial change in the studio: blocks, the biases of every layer, the forward with scores,
    // and the per-head metrics of the capture (what the worker does before the heatmaps).
    let t3 = Instant::now();
    let blocks = im.kmeans_blocks(&im.tokenizer(), 16, 0)?;
    println!(
        "k-means blocks (k = 16): {:.2} s",
        t3.elapsed().as_secs_f64()
    );
    let mut caps = Vec::new();
    for lambda in [0.5, 0.6, 0.7, 0.8, 0.9] {
        let t = Instant::now();
        let cap = localist::model::capture::capture(
            im.model(),
            &blocks,
            &ids,
            &localist::model::dial::DialSetting::bias(lambda),
        )?;
        caps.push(t.elapsed().as_secs_f64());
        assert_eq!(cap.heads.len(), 270);
    }
    caps.sort_by(f64::total_cmp);
    println!(
        "dial change to a new capture ({n} tokens, 30 layers × 9 heads): median {:.1} ms",
        caps[caps.len() / 2] * 1e3
    );
    // The studio's preview of a dial change: the same capture with bf16 weight products,
    // where the CPU does them natively; and how far its attention is from the exact one's.
    if let Some(preview) = m.preview() {
        let mut fast = Vec::new();
        let mut worst = 0f32;
        for lambda in [0.5, 0.6, 0.7, 0.8, 0.9] {
            let dial = localist::model::dial::DialSetting::bias(lambda);
            let t = Instant::now();
            let cap = localist::model::capture::capture_attention(&preview, &blocks, &ids, &dial)?;
            fast.push(t.elapsed().as_secs_f64());
            let exact =
                localist::model::capture::capture_attention(im.model(), &blocks, &ids, &dial)?;
            for (a, b) in cap.heads.iter().zip(&exact.heads) {
                for (x, y) in a.attention.iter().zip(&b.attention) {
                    worst = worst.max((x - y).abs());
                }
            }
        }
        fast.sort_by(f64::total_cmp);
        println!(
            "the same as a bf16 preview: median {:.1} ms (largest attention difference {worst:.4})",
            fast[fast.len() / 2] * 1e3
        );
    } else {
        println!("no bf16 preview on this CPU (it needs AVX-512 BF16)");
    }
    let mut streamed = Vec::new();
    for lambda in [0.5, 0.6, 0.7, 0.8, 0.9] {
        let t = Instant::now();
        let cap = localist::model::capture_stream::capture_streamed(
            im.model(),
            &blocks,
            &ids,
            &localist::model::dial::DialSetting::bias(lambda),
            &localist::model::capture_stream::CapturePlan::studio(),
            &mut |_| true,
        )?;
        streamed.push(t.elapsed().as_secs_f64());
        assert_eq!(cap.heads.len(), 270);
    }
    streamed.sort_by(f64::total_cmp);
    println!(
        "the same streamed (the long-text path, no logits): median {:.1} ms",
        streamed[streamed.len() / 2] * 1e3
    );
    if let Some(p) = peak_rss_mib() {
        println!("peak resident memory with one model: {p:.0} MiB");
    }
    // The same through the studio's worker thread: SetDial in, Snapshot out (the worker opens
    // its own copy, so memory is not measured past this point).
    let w = localist::engine::worker::WorkerHandle::spawn(Box::new(|| {}))?;
    let text = m.decode(&ids)?;
    w.send(Command::Capture(text));
    w.send(Command::Load(path.clone()));
    let wait_snapshot = |w: &localist::engine::worker::WorkerHandle| -> Result<usize> {
        loop {
            match w.wait_event(std::time::Duration::from_secs(120)) {
                Some(Event::Snapshot(c, _, _)) => return Ok(c.len()),
                Some(Event::Failed(e)) => anyhow::bail!(e),
                Some(_) => continue,
                None => anyhow::bail!("the worker sent no snapshot"),
            }
        }
    };
    let len = wait_snapshot(&w)?;
    let mut lat = Vec::new();
    for lambda in [0.5, 0.6, 0.7, 0.8, 0.9] {
        let t = Instant::now();
        w.send(Command::SetDial(localist::model::dial::DialSetting::bias(
            lambda,
        )));
        wait_snapshot(&w)?;
        lat.push(t.elapsed().as_secs_f64());
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "through the worker: SetDial to Snapshot ({len} tokens): median {:.1} ms",
        lat[lat.len() / 2] * 1e3
    );
    Ok(())
}
