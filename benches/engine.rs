//! Engine benchmarks (criterion): a training step of the tiny preset, capture plus metrics for
//! one 64-token sequence, and a dial re-evaluation. Speed is reported, never asserted; compare
//! against PyTorch with `scripts/bench_vs_torch.sh`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::too_many_lines
)]

use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
use localist::data::tokenizer::{CharTokenizer, Tokenizer};
use localist::model::blocks::BlockMap;
use localist::model::capture::capture;
use localist::model::config::ModelConfig;
use localist::model::dial::DialSetting;
use localist::model::transformer::LocalistModel;
use localist::train::dataset::{Sampling, TokenStream};
use localist::train::trainer::{TrainConfig, Trainer};

/// The thread count every benchmark runs at, as the app sets it before candle's first op:
/// `LOCALIST_BENCH_THREADS` (default 1, the issue table's setting). Without RAYON_NUM_THREADS
/// candle reads /proc/cpuinfo on every matrix product, which no run of the app does. Freed
/// memory is kept as the app keeps it (`keep_freed_memory`): without it every training step
/// faulted in about 18 MB of fresh zeroed pages (3.6% of the step in the kernel's
/// `clear_page_erms`).
fn set_threads() {
    localist::keep_freed_memory();
    let n = std::env::var("LOCALIST_BENCH_THREADS").unwrap_or_else(|_| "1".into());
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        std::env::set_var(var, &n);
    }
    // Rayon's pool as the app starts it (its threads pinned where it has one per CPU).
    localist::engine::threads::start_pool(n.parse().unwrap_or(1));
}

fn corpus_ids() -> Vec<u32> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/corpora/shakespeare_1mb.txt"
    );
    let text = std::fs::read_to_string(path).unwrap();
    CharTokenizer.encode(&text)
}

fn model(blocks: &BlockMap) -> LocalistModel {
    let cfg = ModelConfig::preset("tiny", 96).unwrap();
    LocalistModel::new_random(&cfg, blocks.num_blocks(), 0, &Device::Cpu).unwrap()
}

fn train_step(c: &mut Criterion) {
    set_threads();
    // The reference peer's configuration: batch 32 x 64, off-block penalty over windows of 8.
    let blocks = BlockMap::windows(8, 64).unwrap();
    let mut group = c.benchmark_group("train_step_tiny_32x64");
    group.throughput(Throughput::Elements(32 * 64));
    group.sample_size(20);
    for (name, lambda) in [("lambda0", 0.0), ("lambda0.01_offblock", 0.01)] {
        let tc = TrainConfig {
            lambda_train: lambda,
            anneal_fraction: 0.0,
            mu_anchor: 0.0,
            batch_size: 32,
            seq_len: 64,
            steps: usize::MAX,
            sampling: Sampling::Sequential,
            ..TrainConfig::default()
        };
        let stream = TokenStream {
            ids: corpus_ids(),
            targets: Vec::new(),
        };
        let mut trainer = Trainer::new(model(&blocks), blocks.clone(), stream, tc).unwrap();
        group.bench_function(name, |b| b.iter(|| trainer.train_step().unwrap()));
    }
    group.finish();
}

fn capture_and_dial(c: &mut Criterion) {
    set_threads();
    let blocks = BlockMap::windows(8, 64).unwrap();
    let m = model(&blocks);
    let ids: Vec<u32> = corpus_ids().into_iter().skip(1000).take(64).collect();
    let mut group = c.benchmark_group("capture_64");
    group.bench_function("capture_plus_metrics", |b| {
        b.iter(|| capture(&m, &blocks, &ids, &DialSetting::default()).unwrap())
    });
    // What the studio takes on a dial change: attention and metrics, no logits.
    group.bench_function("capture_attention_plus_metrics", |b| {
        b.iter(|| {
            localist::model::capture::capture_attention(&m, &blocks, &ids, &DialSetting::bias(0.5))
                .unwrap()
        })
    });
    let mut lambda = 0.3;
    group.bench_function("dial_reevaluation_mode_a_schedule", |b| {
        b.iter(|| {
            lambda = if lambda > 0.5 { 0.3 } else { 0.7 };
            let dial = DialSetting {
                params: DialParams {
                    mode: DialMode::Bias,
                    lambda,
                    ..DialParams::default()
                },
                schedule: LayerSchedule::Power { gamma: 3.0 },
            };
            capture(&m, &blocks, &ids, &dial).unwrap()
        })
    });
    group.bench_function("dial_reevaluation_mode_b", |b| {
        b.iter(|| {
            let dial = DialSetting {
                params: DialParams {
                    mode: DialMode::Mixture,
                    lambda: 0.5,
                    ..DialParams::default()
                },
                schedule: LayerSchedule::Uniform,
            };
            capture(&m, &blocks, &ids, &dial).unwrap()
        })
    });
    group.finish();
}

/// Rules in force: the example file on the clinical sample (one note and one payment, 2 of its
/// fidelity rules fire, so ρ is solved over L + 1 passes).
fn capture_with_rules(c: &mut Criterion) {
    set_threads();
    use localist::data::tokenizer::TokenizerSpec;
    use localist::model::checkpoint::load_checkpoint;
    use localist::rules::inject::capture_with_rules;
    let root = env!("CARGO_MANIFEST_DIR");
    let ck = load_checkpoint(
        &std::path::Path::new(root).join("sample_models/tiny-clinical"),
        &Device::Cpu,
    )
    .unwrap();
    let tok = serde_json::from_value::<TokenizerSpec>(ck.meta.tokenizer.clone())
        .unwrap()
        .build()
        .unwrap();
    let text =
        std::fs::read_to_string(format!("{root}/assets/rules/clinical_payments.rules")).unwrap();
    let set = localist::rules::parse_rules(&text).unwrap();
    let rules = localist::rules::resolve(&set, &ck.blocks, tok.as_ref(), &[]).unwrap();
    let ids = tok.encode(
        "note 2024-07-15 : stopped atenolol dose 250 mg ; started tramadol dose 1000 g for asthma . \
         txn 2024-08-26 : received CHF amount 20,000.00 SIC from ACC-9712 .",
    );
    let mut group = c.benchmark_group("rules");
    group.bench_function("capture_plain_clinical", |b| {
        b.iter(|| capture(&ck.model, &ck.blocks, &ids, &DialSetting::default()).unwrap())
    });
    group.bench_function("capture_with_example_rules", |b| {
        b.iter(|| {
            capture_with_rules(&ck.model, &ck.blocks, &ids, &DialSetting::default(), &rules)
                .unwrap()
        })
    });
    group.bench_function("parse_and_resolve_example", |b| {
        b.iter(|| {
            let set = localist::rules::parse_rules(&text).unwrap();
            localist::rules::resolve(&set, &ck.blocks, tok.as_ref(), &[]).unwrap()
        })
    });
    group.finish();
}

/// SmolLM2-135M (after `scripts/fetch_models.sh`; skipped without it): a dial change at 64
/// tokens through the worker as the studio sends it (SetDial in, Snapshot out), and the
/// streamed capture of a 2,048-token text (or as many as the model's context holds). The model
/// is opened inside each benchmark, so a filter that leaves them out costs nothing.
/// `LOCALIST_BENCH_MODEL=PATH` runs the same benchmarks on another model (group `pretrained`).
fn smollm2(c: &mut Criterion) {
    set_threads();
    use localist::engine::worker::{Command, Event, WorkerHandle};
    use std::time::{Duration, Instant};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (group_name, path) = match std::env::var_os("LOCALIST_BENCH_MODEL") {
        Some(p) => ("pretrained", std::path::PathBuf::from(p)),
        None => (
            "smollm2",
            root.join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    };
    if !path.exists() {
        eprintln!("{group_name} benches skipped: run scripts/fetch_models.sh");
        return;
    }
    let open = || {
        let shakespeare =
            std::fs::read_to_string(root.join("assets/corpora/shakespeare_1mb.txt")).unwrap();
        let im = localist::hf::ImportedModel::open(&path, &Device::Cpu).unwrap();
        (shakespeare, im)
    };
    let text_of = |im: &localist::hf::ImportedModel, text: &str, n: usize| {
        let tok = im.tokenizer();
        let ids: Vec<u32> = tok.encode(&text[..n * 6]).into_iter().take(n).collect();
        (tok.decode(&ids), ids)
    };
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    // The next snapshot; `exact`: the next one that is not a bf16 preview.
    let next = |w: &WorkerHandle, exact: bool| loop {
        match w.wait_event(Duration::from_secs(600)) {
            Some(Event::Snapshot(_, _, on)) if !(exact && on.preview) => return on.preview,
            Some(Event::Failed(e)) => panic!("{e}"),
            Some(_) => continue,
            None => panic!("no snapshot"),
        }
    };
    let snapshot = |w: &WorkerHandle| {
        next(w, true);
    };
    // A worker on SmolLM2 with a 64-token text, past its first capture and the bf16 weights
    // of the previews it makes after it (a first dial change waits for them, untimed).
    let ready = || {
        let (text, im) = open();
        let w = WorkerHandle::spawn(Box::new(|| {})).unwrap();
        w.send(Command::Capture(text_of(&im, &text, 64).0));
        w.send(Command::Load(path.clone()));
        snapshot(&w);
        w.send(Command::SetDial(DialSetting::bias(0.5)));
        snapshot(&w);
        w
    };
    // Criterion calls a benchmark's closure once per sample (and for the warm-up): the worker
    // is made on the first call and kept, not loaded (k-means blocks included) each time.
    let mut worker: Option<WorkerHandle> = None;
    group.bench_function("dial_change_64_tokens_through_the_worker", |b| {
        let w = &*worker.get_or_insert_with(ready);
        let mut lambda = 0.3;
        // Single changes, apart (a change within half a second of the last is part of a
        // drag, previewed first: the next benchmark).
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_millis(600));
                lambda = if lambda > 0.5 { 0.3 } else { 0.7 };
                let t0 = Instant::now();
                w.send(Command::SetDial(DialSetting::bias(lambda)));
                snapshot(w);
                spent += t0.elapsed();
            }
            spent
        })
    });
    // Where the CPU does bf16 dot products, a dial change during a drag (within half a
    // second of the previous one) gets a preview first (bf16 weight products) and then the
    // exact capture: the time to the preview, the exact capture's arrival left out.
    // (Criterion panics at a benchmark that does not call `iter`: the check is outside, so a
    // CPU without it, a Zen 2 here, skips the benchmark instead of ending the run.)
    if !localist::model::native::bf16::available() {
        eprintln!("no bf16 preview on this CPU (it needs AVX-512 BF16): not measured");
    } else {
        group.bench_function("dial_change_64_tokens_to_the_preview", |b| {
            let w = &*worker.get_or_insert_with(ready);
            let mut lambda = 0.3;
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    lambda = if lambda > 0.5 { 0.3 } else { 0.7 };
                    let t0 = Instant::now();
                    w.send(Command::SetDial(DialSetting::bias(lambda)));
                    // (A change more than half a second after the last is captured exactly.)
                    if next(w, false) {
                        spent += t0.elapsed();
                        snapshot(w);
                    } else {
                        spent += t0.elapsed();
                    }
                }
                spent
            })
        });
    }
    group.measurement_time(Duration::from_secs(60));
    group.bench_function("streamed_capture_2048_tokens", |b| {
        let (text, im) = open();
        let blocks = im.kmeans_blocks(&im.tokenizer(), 16, 0).unwrap();
        let ids = text_of(&im, &text, 2048.min(im.model().dims().max_len)).1;
        b.iter(|| {
            localist::model::capture_stream::capture_streamed(
                im.model(),
                &blocks,
                &ids,
                &DialSetting::bias(0.5),
                &localist::model::capture_stream::CapturePlan::studio(),
                &mut |_| true,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    train_step,
    capture_and_dial,
    capture_with_rules,
    smollm2
);
criterion_main!(benches);
