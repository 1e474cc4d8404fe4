//! The worker thread driven as the studio will drive it: commands in, events out, nothing
//! blocking on the caller's side except these tests' bounded waits for an answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;
use common::sample;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;
use localist::engine::corpus::{CorpusSource, TokenizerKind};
use localist::engine::train_job::TrainJob;
use localist::engine::worker::{Command, Event, WorkerHandle};
use localist::model::capture::capture;
use localist::model::checkpoint::load_checkpoint;
use localist::model::dial::DialSetting;
use localist::train::trainer::TrainConfig;

const WAIT: Duration = Duration::from_secs(60);

fn spawn() -> WorkerHandle {
    WorkerHandle::spawn(Box::new(|| {})).unwrap()
}

/// The next result event (progress travels on its own channel), skipping the λ* estimates
/// that follow every new text.
fn next(w: &WorkerHandle) -> Event {
    loop {
        match w.wait_event(WAIT).expect("the worker did not answer") {
            Event::Threshold(..) => continue,
            ev => return ev,
        }
    }
}

fn snapshot_entropy(ev: Event) -> f64 {
    match ev {
        Event::Snapshot(cap, _, _) => cap.mean_entropy_bits(None),
        other => panic!("expected a snapshot, got {other:?}"),
    }
}

#[test]
fn dial_change_recaptures_with_the_engine_value() {
    let w = spawn();
    assert!(w.send(Command::Load(sample("tiny-shakespeare-l1"))));
    assert!(matches!(next(&w), Event::Loaded(_)));
    let text = "To be, or not to be, that is the question:";
    w.send(Command::Capture(text.into()));
    let e0 = snapshot_entropy(next(&w));
    // A new text is followed by its λ* estimate (the dial does not change it).
    match w.wait_event(WAIT).unwrap() {
        Event::Threshold(t, _) => assert!(t.rows > 0 && t.lambda_star.is_finite()),
        other => panic!("expected the λ* estimate, got {other:?}"),
    }
    w.send(Command::SetDial(DialSetting::bias(0.9)));
    let e1 = snapshot_entropy(next(&w));
    // The same capture computed directly from the checkpoint.
    let (ck, tok) = common::load(&sample("tiny-shakespeare-l1"));
    let ids = tok.encode(text);
    let direct = capture(&ck.model, &ck.blocks, &ids, &DialSetting::bias(0.9)).unwrap();
    assert_eq!(e1, direct.mean_entropy_bits(None));
    assert_ne!(e0, e1);
}

#[test]
fn training_advances_and_stop_lands_within_one_step() {
    let w = spawn();
    let job = TrainJob {
        corpus: CorpusSource::Synthetic {
            seed: 0,
            records: 200,
        },
        tokenizer: TokenizerKind::Word,
        train: TrainConfig {
            steps: 100_000,
            batch_size: 2,
            seq_len: 32,
            lambda_train: 1.0,
            ..TrainConfig::default()
        },
        eval_windows: 4,
        ..TrainJob::default()
    };
    w.send(Command::NewRun(Box::new(job)));
    assert!(matches!(next(&w), Event::Loaded(_)));
    w.send(Command::Train);
    let mut last_step = 0;
    for _ in 0..5 {
        match w.wait_progress(WAIT).expect("no progress") {
            Event::Progress(p) => {
                assert!(p.stats.loss_nats.is_finite());
                assert!(p.stats.step >= last_step);
                last_step = p.stats.step;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(last_step >= 4, "the step counter did not advance");
    // Forget the progress so far: at most the step in flight may follow the stop.
    drop(w.drain());
    w.send(Command::Stop);
    assert!(matches!(next(&w), Event::Finished(..)));
    // The run's last point of the live held-out curves.
    let live_step = match next(&w) {
        Event::Live(p) => {
            assert!(p.step > last_step && p.eval.perplexity.is_finite());
            p.step
        }
        other => panic!("expected the live point, got {other:?}"),
    };
    // Saved, the run's checkpoint keeps its held-out curve, ending at that point.
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("run");
    w.send(Command::Save(ck.clone()));
    loop {
        match next(&w) {
            Event::Saved(..) => break,
            Event::Snapshot(..) | Event::Live(_) => continue,
            other => panic!("expected the save, got {other:?}"),
        }
    }
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ck.join("config.json")).unwrap()).unwrap();
    let curve = cfg["training"]["held_out"].as_array().unwrap();
    assert_eq!(curve.last().unwrap()["step"], live_step, "{curve:?}");
    // Commands are handled in order: once this capture answers, the worker is idle.
    w.send(Command::Capture("note 2024-03-05 : patient".into()));
    assert!(matches!(next(&w), Event::Snapshot(..)));
    let after = w
        .drain()
        .iter()
        .filter(|e| matches!(e, Event::Progress(_)))
        .count();
    assert!(after <= 2, "{after} steps ran after stop");
    w.send(Command::Capture("note 2024-03-05 : patient".into()));
    assert!(matches!(next(&w), Event::Snapshot(..)));
    assert_eq!(
        w.drain()
            .iter()
            .filter(|e| matches!(e, Event::Progress(_)))
            .count(),
        0,
        "training went on after stop"
    );
}

/// A text pasted with a leading byte-order mark is captured as the same text without it, not
/// with an unknown first token.
#[test]
fn a_pasted_byte_order_mark_is_not_a_token() {
    let w = spawn();
    w.send(Command::Load(sample("tiny-shakespeare-l1")));
    assert!(matches!(next(&w), Event::Loaded(_)));
    let captured = |text: &str| {
        w.send(Command::Capture(text.into()));
        match next(&w) {
            Event::Snapshot(cap, _, _) => (cap.ids.clone(), cap.mean_entropy_bits(None)),
            other => panic!("expected a snapshot, got {other:?}"),
        }
    };
    let plain = captured("Good morrow, cousin");
    assert_eq!(captured("\u{feff}Good morrow, cousin"), plain);
}

#[test]
fn a_truncated_checkpoint_fails_and_keeps_the_current_model() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let src = sample("tiny-shakespeare-l0");
    for f in ["config.json", "blocks.json", "model.safetensors"] {
        std::fs::copy(src.join(f), bad.join(f)).unwrap();
    }
    let weights = std::fs::read(bad.join("model.safetensors")).unwrap();
    std::fs::write(bad.join("model.safetensors"), &weights[..weights.len() / 3]).unwrap();
    let w = spawn();
    w.send(Command::Load(src));
    assert!(matches!(next(&w), Event::Loaded(_)));
    w.send(Command::Capture("Good morrow".into()));
    let before = snapshot_entropy(next(&w));
    w.send(Command::Load(bad));
    match next(&w) {
        Event::Failed(msg) => {
            assert!(msg.contains("model.safetensors"), "{msg}");
            assert!(msg.contains("kept"), "{msg}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    w.send(Command::Capture("Good morrow".into()));
    assert_eq!(snapshot_entropy(next(&w)), before);
}

#[test]
fn a_panic_becomes_an_error_and_a_new_worker_can_start() {
    let w = spawn();
    w.send(Command::DebugPanic);
    match next(&w) {
        Event::Failed(msg) => assert!(msg.contains("crashed"), "{msg}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    let deadline = Instant::now() + WAIT;
    while w.is_alive() && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(!w.is_alive());
    let fresh = spawn();
    fresh.send(Command::Load(sample("tiny-clinical")));
    assert!(matches!(next(&fresh), Event::Loaded(_)));
}

#[test]
fn a_loaded_checkpoint_saves_with_its_dial_and_reloads_identically() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("saved");
    let w = spawn();
    w.send(Command::Load(sample("tiny-clinical")));
    assert!(matches!(next(&w), Event::Loaded(_)));
    w.send(Command::SetDial(DialSetting::bias(0.4)));
    w.send(Command::Save(out.clone()));
    match next(&w) {
        Event::Saved(p, hash) => {
            assert_eq!(p, out);
            assert_eq!(
                hash,
                localist::model::checkpoint::checkpoint_sha256(&out).unwrap()
            );
        }
        other => panic!("expected Saved, got {other:?}"),
    }
    let a = load_checkpoint(&sample("tiny-clinical"), &Device::Cpu).unwrap();
    let b = load_checkpoint(&out, &Device::Cpu).unwrap();
    assert_eq!(b.meta.dial, DialSetting::bias(0.4));
    assert_eq!(a.blocks, b.blocks);
    let ids = [3u32, 7, 9, 2, 11];
    let (ca, cb) = (
        capture(&a.model, &a.blocks, &ids, &DialSetting::default()).unwrap(),
        capture(&b.model, &b.blocks, &ids, &DialSetting::default()).unwrap(),
    );
    assert_eq!(ca.logits, cb.logits);
}

/// Wait for the first event `pick` accepts, skipping status lines and λ* estimates.
fn wait_for<T>(w: &WorkerHandle, what: &str, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(240) {
        match w.wait_event(WAIT) {
            Some(Event::Failed(e)) => panic!("waiting for {what}: the worker failed: {e}"),
            Some(ev) => {
                if let Some(x) = pick(ev) {
                    return x;
                }
            }
            None => break,
        }
    }
    panic!("the worker sent no {what}");
}

/// SmolLM2 behind a link in a scratch folder (so a saved block map does not land beside the
/// real file), with the folder; None (said) without the fetched model, except in CI.
fn smollm2_link() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let model = common::model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")?;
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("smol.gguf");
    std::os::unix::fs::symlink(&model, &link).unwrap();
    Some((dir, link))
}

/// SmolLM2 opened from its `.gguf` as the studio opens it: k-means blocks, a capture of 30
/// layers × 9 heads under the dial, a rename saved beside the model, and generation with the
/// next-token distribution. Skipped (said) without the fetched model, except in CI.
#[test]
fn an_imported_gguf_model_is_dialled_renamed_and_generates() {
    let Some((dir, link)) = smollm2_link() else {
        return;
    };
    let w = spawn();
    w.send(Command::Capture("The capital of France is".into()));
    w.send(Command::Load(link.clone()));
    let summary = wait_for(&w, "summary", |ev| match ev {
        Event::Loaded(s) => Some(s),
        _ => None,
    });
    assert_eq!((summary.shape.0, summary.shape.1), (30, 9));
    assert!(summary.imported.is_some() && summary.generates);
    // The audit trail records what it computes with: the file's hash, as `audit verify` redoes it.
    let (path, hash) = summary
        .checkpoint
        .clone()
        .expect("an imported model has a hash");
    assert_eq!(path, link);
    assert_eq!(hash.len(), 64);
    assert_eq!(hash, localist::hf::model_sha256(&link).unwrap());
    assert_eq!(summary.blocks.len(), 17, "16 clusters and 'unassigned'");
    let cap = wait_for(&w, "snapshot", |ev| match ev {
        Event::Snapshot(c, _, _) => Some(c),
        _ => None,
    });
    assert_eq!(cap.heads.len(), 270);
    w.send(Command::SetDial(DialSetting::bias(1.0)));
    let t0 = Instant::now();
    let dialled = wait_for(&w, "snapshot", |ev| match ev {
        Event::Snapshot(c, _, _) => Some(c),
        _ => None,
    });
    eprintln!(
        "dial change to capture: {:.0} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    assert!(dialled.mean_off_block_mass(None) < 1e-6);
    // Rename block 1; the map is saved beside the model and comes back on the next open.
    w.send(Command::RenameBlock(1, "capitals".into()));
    let names = wait_for(&w, "new block names", |ev| match ev {
        Event::BlocksChanged(n, _) => Some(n),
        _ => None,
    });
    assert_eq!(names[1], "capitals");
    let saved = dir.path().join("smol.gguf.blocks.json");
    wait_for(&w, "the saved note", |ev| match ev {
        Event::Status(s) if s.contains("saved") => Some(()),
        _ => None,
    });
    assert!(saved.exists());
    w.send(Command::RenameBlock(2, "capitals".into()));
    // (The first rename's capture may arrive first.)
    let err = loop {
        match w.wait_event(WAIT) {
            Some(Event::Failed(e)) => break e,
            Some(Event::Snapshot(..)) => continue,
            other => panic!("a duplicate name was accepted: {other:?}"),
        }
    };
    assert!(err.contains("already called"), "{err}");
    // A name with a bidirectional override would be saved into a map that fails its own check.
    w.send(Command::RenameBlock(2, "cap\u{202e}itals".into()));
    let err = loop {
        match w.wait_event(WAIT) {
            Some(Event::Failed(e)) => break e,
            Some(Event::Snapshot(..) | Event::Status(_)) => continue,
            other => panic!("a name with a bidi override was accepted: {other:?}"),
        }
    };
    assert!(err.contains("U+202E"), "{err}");
    // Generation at λ = 0: " Paris" first, with its distribution.
    w.send(Command::SetDial(DialSetting::bias(0.0)));
    w.send(Command::Generate(2));
    let g = wait_for(&w, "generation", |ev| match ev {
        Event::Generated(g) => Some(g),
        _ => None,
    });
    assert_eq!(g.steps.len(), 2);
    assert_eq!(g.steps[0].id, 7042, "first token {:?}", g.steps[0].text);
    assert_eq!(g.steps[0].top.len(), 10);
    let p: f32 = g.steps[0].top.iter().map(|c| c.prob).sum();
    assert!(p > 0.0 && p <= 1.0 + 1e-4);
    // Opened again: the renamed map is read back instead of a new k-means.
    w.send(Command::Load(link));
    let again = wait_for(&w, "summary", |ev| match ev {
        Event::Loaded(s) => Some(s),
        _ => None,
    });
    assert_eq!(again.blocks[1], "capitals");
}

#[test]
fn rules_are_checked_again_on_a_new_model_and_results_say_what_they_were_measured_on() {
    let rules = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/rules/clinical_payments.rules"),
    )
    .unwrap();
    let w = spawn();
    w.send(Command::Load(sample("tiny-clinical")));
    let clinical = wait_for(&w, "answer 1", |e| match e {
        Event::Loaded(s) => Some(s.model_id),
        _ => None,
    });
    assert_eq!(clinical.len(), 64, "the checkpoint's SHA-256: {clinical}");
    let text = "note 2024-03-05 : patient";
    w.send(Command::Capture(text.into()));
    w.send(Command::SetRules {
        text: rules,
        off: Vec::new(),
    });
    let on = wait_for(&w, "answer 2", |e| match e {
        Event::RuleReport(r) => Some(r.2),
        _ => None,
    });
    assert_eq!(on.model, clinical);
    assert_eq!(on.text, text);
    // A model whose blocks the rules do not name: they are not in force on it.
    w.send(Command::Load(sample("tiny-shakespeare-l0")));
    let shakespeare = wait_for(&w, "answer 3", |e| match e {
        Event::Loaded(s) => Some(s.model_id),
        _ => None,
    });
    assert_ne!(shakespeare, clinical);
    let refit = wait_for(&w, "answer 4", |e| match e {
        Event::RulesRefit(r) => Some(r),
        _ => None,
    });
    assert!(!refit
        .expect_err("the clinical rules on Shakespeare")
        .errors
        .is_empty());
    // No rule report follows: the capture runs without rules, and its λ* is Shakespeare's.
    let threshold_on = wait_for(&w, "answer 5", |e| match e {
        Event::RuleReport(_) => panic!("a rule report on a model the rules do not fit"),
        Event::Threshold(_, on) => Some(on),
        _ => None,
    });
    assert_eq!(threshold_on.model, shakespeare);
    // Back on the clinical model the same rules are in force again.
    w.send(Command::Load(sample("tiny-clinical")));
    let refit = wait_for(&w, "answer 6", |e| match e {
        Event::RulesRefit(r) => Some(r),
        _ => None,
    });
    assert_eq!(refit.expect("the clinical rules fit again").rules.len(), 6);
    let on = wait_for(&w, "answer 7", |e| match e {
        Event::RuleReport(r) => Some(r.2),
        _ => None,
    });
    assert_eq!(on.model, clinical);
}

#[test]
fn the_worker_says_which_long_job_it_is_doing() {
    let w = spawn();
    assert_eq!(w.busy(), None);
    w.send(Command::Load(sample("tiny-clinical")));
    // Seen from this thread the load may already be over; the answer then says it was idle.
    let mut seen = None;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(b) = w.busy() {
            seen = Some(b);
        }
        match w.wait_event(Duration::from_millis(1)) {
            Some(Event::Loaded(_)) => break,
            _ => assert!(Instant::now() < deadline, "no model"),
        }
    }
    if let Some(b) = seen {
        assert!(b.starts_with("loading tiny-clinical"), "{b}");
    }
    // Once every answer to a command is in, nothing is under way.
    w.send(Command::Capture("note 2024-03-05 : patient".into()));
    wait_for(&w, "answer 8", |e| {
        matches!(e, Event::Threshold(..)).then_some(())
    });
    let deadline = Instant::now() + WAIT;
    while w.busy().is_some() {
        assert!(Instant::now() < deadline, "still busy: {:?}", w.busy());
        std::thread::yield_now();
    }
}

/// A text longer than 256 tokens on SmolLM2 is streamed: every head's summaries for every
/// token and a pooled grid; the job reports its progress by layer and a cancel stops it, says
/// so and leaves the worker serving. Skipped (said) without the fetched model, except in CI.
#[test]
fn a_long_text_is_streamed_with_progress_and_can_be_cancelled() {
    let Some((_dir, link)) = smollm2_link() else {
        return;
    };
    let text: String = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/corpora/shakespeare_1mb.txt"),
    )
    .unwrap()
    .chars()
    .take(1500)
    .collect();
    let w = spawn();
    w.send(Command::Capture(text));
    w.send(Command::Load(link));
    let (cap, tokens) = wait_for(&w, "snapshot", |ev| match ev {
        Event::Snapshot(c, t, _) => Some((c, t)),
        _ => None,
    });
    let t = cap.len();
    assert!(t > 256 && tokens.len() == t, "{t} tokens");
    let lay = cap.attention_layout();
    assert_eq!(lay.stride, t.div_ceil(256));
    let (gr, gc) = lay.grid();
    for hc in &cap.heads {
        assert_eq!(hc.entropy_bits.len(), t);
        assert_eq!(hc.attention.len(), gr * gc);
    }
    // Grid rows still sum to one.
    let row: f32 = cap.heads[100].attention[gc * (gr - 1)..].iter().sum();
    assert!((row - 1.0).abs() < 1e-3, "{row}");
    // A dial change: watch its progress, then cancel it.
    w.send(Command::SetDial(DialSetting::bias(0.5)));
    let deadline = Instant::now() + Duration::from_secs(120);
    let job = loop {
        if let Some(j) = w.job().filter(|j| j.cancellable && j.fraction.is_some()) {
            break j;
        }
        assert!(
            Instant::now() < deadline,
            "no cancellable job with progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(
        job.what.contains(&format!("capturing {t} tokens: layer")),
        "{}",
        job.what
    );
    w.cancel();
    let said = wait_for(&w, "the cancel", |ev| match ev {
        Event::Status(s) if s.contains("cancelled") => Some(s),
        Event::Snapshot(c, _, _) => {
            assert_ne!(
                c.dial,
                DialSetting::bias(0.5),
                "the cancelled capture was delivered"
            );
            None
        }
        _ => None,
    });
    assert!(said.contains("previous capture"), "{said}");
    // The worker still serves: the next dial change is captured in full.
    w.send(Command::SetDial(DialSetting::bias(0.25)));
    let next = wait_for(&w, "snapshot", |ev| match ev {
        Event::Snapshot(c, _, _) => Some(c),
        _ => None,
    });
    assert_eq!(next.len(), t);
}

/// Generation on a word-level model gives its words back with their spaces: the prompt and the
/// steps' texts together are the decoded ids (it once read "txn2024-12-30:payJPYfora").
#[test]
fn generated_words_keep_their_spaces() {
    let (_, tok) = common::load_sample("tiny-clinical");
    let w = spawn();
    w.send(Command::Load(sample("tiny-clinical")));
    w.send(Command::Capture("txn 2024-12-30 : paid".into()));
    w.send(Command::Generate(6));
    let g = wait_for(&w, "generation", |ev| match ev {
        Event::Generated(g) => Some(g),
        _ => None,
    });
    let mut ids = tok.encode("txn 2024-12-30 : paid");
    ids.extend(g.steps.iter().map(|s| s.id));
    assert_eq!(g.full_text(), tok.decode(&ids));
    assert!(
        g.steps.iter().filter(|s| s.text.starts_with(' ')).count() >= 3,
        "{:?}",
        g.full_text()
    );
}

/// The auditor's pass/fail over a test set, measured in the worker: over the clinical model's
/// held-out windows it is exactly what `localist eval --rules` measures on the same windows
/// (an independent path through the engine's jobs), and over a file of sentences it counts
/// one window per non-empty line; the result names the model, the rules and the dial.
#[test]
fn rules_are_audited_over_held_out_windows_and_a_sentences_file() {
    use localist::engine::jobs::eval::{evaluate_model, EvalJob};
    use localist::engine::protocol::{rules_key, TestSet};
    let rules_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/rules/clinical_payments.rules");
    let rules = std::fs::read_to_string(&rules_file).unwrap();
    let w = spawn();
    w.send(Command::Load(sample("tiny-clinical")));
    let clinical = wait_for(&w, "the model", |e| match e {
        Event::Loaded(s) => Some(s.model_id),
        _ => None,
    });
    w.send(Command::SetRules {
        text: rules.clone(),
        off: Vec::new(),
    });
    wait_for(&w, "the rules", |e| {
        matches!(e, Event::RulesApplied(_)).then_some(())
    });
    w.send(Command::AuditTestSet(TestSet::HeldOut));
    let audit = wait_for(&w, "the held-out audit", |e| match e {
        Event::TestSetAudit(r) => Some(r.expect("the audit over held-out windows")),
        _ => None,
    });
    assert_eq!(audit.set, TestSet::HeldOut);
    assert_eq!(audit.sentences, 32, "{}", audit.described);
    assert_eq!(audit.rows.len(), 6);
    assert_eq!(audit.on.model, clinical);
    assert_eq!(audit.on.dial, DialSetting::default());
    assert_eq!(audit.rules, rules_key(&rules, &[]));
    // Some rule fires on more than one window: a measurement over many sentences, not one.
    assert!(
        audit.rows.iter().any(|r| r.windows_fired > 1),
        "{:?}",
        audit.rows
    );
    for r in &audit.rows {
        assert!(r.windows_fired <= audit.sentences);
        if let Some(p) = r.pass_rate {
            assert!((0.0..=1.0).contains(&p));
        }
    }
    let direct = evaluate_model(
        &EvalJob {
            model: sample("tiny-clinical"),
            dials: vec![DialSetting::default()],
            corpus: None,
            windows: 32,
            rules: Some(rules_file),
            // A checkpoint evaluates under its own blocks (--clusters is refused for it).
            clusters: None,
            lexicon: None,
        },
        |_| {},
    )
    .unwrap();
    assert_eq!(Some(audit.rows.clone()), direct.rules);

    // A file of sentences: one window per non-empty line.
    let corpus = localist::data::synthetic::SyntheticCorpus::generate(
        &localist::data::synthetic::SyntheticSpec {
            seed: 7,
            num_records: 12,
            ..Default::default()
        },
    );
    let lines: Vec<&str> = corpus
        .text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sentences.txt");
    std::fs::write(&file, format!("{}\n\n", lines.join("\n\n"))).unwrap();
    w.send(Command::SetDial(DialSetting::bias(0.5)));
    w.send(Command::AuditTestSet(TestSet::Sentences(file.clone())));
    let audit = wait_for(&w, "the sentences audit", |e| match e {
        Event::TestSetAudit(r) => Some(r.expect("the audit over a sentences file")),
        _ => None,
    });
    assert_eq!(audit.sentences, lines.len());
    assert!(
        audit.described.contains("sentences.txt"),
        "{}",
        audit.described
    );
    assert_eq!(audit.on.dial, DialSetting::bias(0.5));
    // A file with no sentence is refused, with the reason.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n  \n").unwrap();
    w.send(Command::AuditTestSet(TestSet::Sentences(empty)));
    let err = wait_for(&w, "the refusal", |e| match e {
        Event::TestSetAudit(r) => Some(r.expect_err("an empty sentences file")),
        _ => None,
    });
    assert!(err.contains("no sentences"), "{err}");
}

/// A pretrained decoder fine-tuned as the studio does it: the held model (no reload), its
/// blocks, progress per step, the held-out metrics at the end, the adapter saved and opened
/// again as a model. A model that is not a decoder is refused and kept.
#[test]
fn a_pretrained_decoder_is_fine_tuned_saved_as_an_adapter_and_reopened() {
    for family in ["llama", "gpt2"] {
        fine_tune_in_the_worker(family);
    }
}

fn fine_tune_in_the_worker(family: &str) {
    use localist::engine::protocol::FinetuneJob;
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/families");
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base");
    std::fs::create_dir(&base).unwrap();
    common::copy_files(&fixture.join(family), &base);
    let corpus = dir.path().join("corpus.txt");
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/corpora/shakespeare_1mb.txt"),
    )
    .unwrap();
    std::fs::write(&corpus, &text[..40_000]).unwrap();
    let job = |steps| FinetuneJob {
        from: base.clone(),
        corpus: corpus.clone(),
        blocks: "current".into(),
        adapt: "lora:4".into(),
        lambda_train: 1.0,
        eta: 1.0,
        lr: 1e-2,
        steps,
        seq_len: 32,
        batch_size: 2,
        seed: 0,
        rules: None,
        mu_rule: 0.0,
        penalty: None,
        mu_anchor: 0.0,
    };
    let w = spawn();
    // Nothing to tune yet: said, and nothing changes.
    w.send(Command::Finetune(Box::new(job(5))));
    match next(&w) {
        Event::Failed(e) => assert!(e.contains("pretrained decoder"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    w.send(Command::Load(base.clone()));
    let blocks = wait_for(&w, "the model", |ev| match ev {
        Event::Loaded(s) => Some(s),
        _ => None,
    });
    assert!(blocks.finetunes, "{family}");
    // A bad setting is refused before the model is taken.
    let mut bad = job(5);
    bad.adapt = "lora:0".into();
    w.send(Command::Finetune(Box::new(bad)));
    let e = loop {
        match next(&w) {
            Event::Failed(e) => break e,
            Event::Status(_) => {}
            other => panic!("expected a refusal, got {other:?}"),
        }
    };
    assert!(
        e.contains("rank") && e.contains("nothing was changed"),
        "{e}"
    );
    w.send(Command::Finetune(Box::new(job(12))));
    let summary = wait_for(&w, "the fine-tune", |ev| match ev {
        Event::Loaded(s) => Some(s),
        _ => None,
    });
    assert_eq!(
        summary.blocks, blocks.blocks,
        "the blocks in force are kept"
    );
    assert_eq!(summary.lambda_train, Some(1.0));
    w.send(Command::Train);
    let done = wait_for(&w, "the end of the fine-tune", |ev| match ev {
        Event::Status(s) if s.starts_with("fine-tuned") => Some(s),
        _ => None,
    });
    assert!(
        done.contains("fine-tuned 12 steps") && done.contains("after"),
        "{done}"
    );
    let mut steps = 0;
    while let Some(Event::Progress(p)) = w.wait_progress(Duration::from_millis(50)) {
        assert_eq!(p.total_steps, 12);
        steps += 1;
    }
    assert!(steps > 0, "no progress was reported");
    let out = dir.path().join("tuned");
    w.send(Command::Save(out.clone()));
    let (path, hash) = wait_for(&w, "the save", |ev| match ev {
        Event::Saved(p, h) => Some((p, h)),
        _ => None,
    });
    assert_eq!(path, out);
    assert_eq!(hash, localist::hf::model_sha256(&out).unwrap());
    w.send(Command::Load(out.clone()));
    let reopened = wait_for(&w, "the adapter", |ev| match ev {
        Event::Loaded(s) => Some(s),
        _ => None,
    });
    let (kind, _) = reopened.imported.unwrap();
    assert!(kind.contains("adapter"), "{kind}");
    assert_eq!(reopened.blocks, blocks.blocks);
    // Compare: the base beside the fine-tuned model (held), on the same text.
    use localist::engine::protocol::CompareSide;
    use localist::model::dial::DialSetting;
    w.send(Command::Capture(
        "To be, or not to be, that is the question".into(),
    ));
    w.send(Command::Compare(Box::new([
        CompareSide {
            checkpoint: Some(base.clone()),
            dial: DialSetting::default(),
        },
        CompareSide::current_at(0.0),
    ])));
    let sides = wait_for(&w, "the comparison", |ev| match ev {
        Event::Compare(sides, _) => Some(sides),
        _ => None,
    });
    let [a, b] = *sides;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.tokens, b.tokens);
    assert_ne!(
        a.capture.mean_entropy_bits(None),
        b.capture.mean_entropy_bits(None),
        "the fine-tuned model attends as the base does"
    );
}

/// The studio's Grow pool: the worker grows a pool from the bundled pool's base over its
/// documents with `localist specialists`' defaults, saves it and sends it as the Specialists
/// tab reads it; it refuses to write over a folder that holds files; a cancel keeps what was
/// accepted and still saves.
#[test]
fn a_pool_grows_in_the_worker_and_a_cancel_keeps_what_was_accepted() {
    use localist::engine::protocol::{GrowPool, PoolJob};
    let base = sample("pool-clinical-payments").join("base");
    let docs = sample("pool-clinical-payments").join("documents.txt");
    let out = tempfile::tempdir().unwrap();
    let grow = |dir: &Path| {
        Command::GrowPool(Box::new(GrowPool {
            job: PoolJob::defaults(base.clone(), docs.clone()),
            out: dir.to_path_buf(),
        }))
    };
    let until_pool = |w: &WorkerHandle| -> (Result<_, String>, Vec<String>) {
        let mut notes = Vec::new();
        loop {
            match next(w) {
                Event::Pool(p) => return (p, notes),
                Event::Status(s) => notes.push(s),
                Event::Failed(e) => panic!("failed: {e}"),
                _ => {}
            }
        }
    };
    let w = spawn();
    let dir = out.path().join("grown");
    w.send(grow(&dir));
    let (pool, notes) = until_pool(&w);
    let pool = pool.unwrap();
    assert_eq!(pool.dir, dir);
    // The bundled pool was grown the same way: one specialist recruited for the payments.
    let names: Vec<&str> = pool
        .manifest
        .specialists
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["base", "s1"], "{notes:?}");
    assert!(pool.manifest.log.iter().any(|m| m.accepted));
    let last_round = |p: &localist::engine::protocol::PoolSummary| {
        p.manifest.log.iter().map(|m| m.round).max().unwrap_or(0)
    };
    assert!(
        last_round(&pool) >= 2,
        "one round only: {:?}",
        pool.manifest.log
    );
    assert_eq!(pool.texts.len(), pool.manifest.routing.len());
    assert!(
        notes
            .iter()
            .any(|n| n.contains("pool grown: 2 specialists")),
        "{notes:?}"
    );
    // Growing into it again is refused before anything is written.
    w.send(grow(&dir));
    let (again, _) = until_pool(&w);
    let err = again.err().unwrap();
    assert!(err.contains("already holds files"), "{err}");

    // Cancelled as soon as it can be: growth stops, and what it has is saved and shown.
    let dir = out.path().join("cancelled");
    w.send(grow(&dir));
    let deadline = Instant::now() + WAIT;
    while !w.job().is_some_and(|j| j.cancellable) {
        assert!(
            Instant::now() < deadline,
            "the growth never became cancellable"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    w.cancel();
    let (pool, notes) = until_pool(&w);
    let pool = pool.unwrap();
    assert!(
        notes.iter().any(|n| n.contains("stopped by the user")),
        "{notes:?}"
    );
    assert!(
        last_round(&pool) <= 1,
        "it went on: {:?}",
        pool.manifest.log
    );
    assert!(dir.join("manifest.json").is_file());
}

/// A dial change on SmolLM2 during a drag (soon after the previous one), where the CPU does
/// bf16 dot products: a preview capture (bf16 weight products, marked `preview`) comes first,
/// then the exact capture of the same dial; a single change is captured exactly at once.
/// When dial changes queue up, the worker previews each and computes the exact capture of the
/// last one only, which is the last snapshot it sends. Where the CPU has no AVX-512 BF16 the
/// first snapshot is the exact one. Skipped (said) without the fetched model, except in CI.
#[test]
fn a_dial_change_on_smollm2_previews_then_sends_the_exact_capture() {
    let Some((_dir, link)) = smollm2_link() else {
        return;
    };
    let w = spawn();
    w.send(Command::Capture(
        "The capital of France is Paris, on the Seine.".into(),
    ));
    w.send(Command::Load(link));
    let snapshot = |w: &WorkerHandle| {
        wait_for(w, "snapshot", |ev| match ev {
            Event::Snapshot(c, _, on) => Some((c, on)),
            _ => None,
        })
    };
    let (_, on) = snapshot(&w);
    assert!(!on.preview, "a model's first capture is exact");
    let available = localist::model::native::bf16::available();
    // A single dial change is captured exactly at once.
    w.send(Command::SetDial(DialSetting::bias(0.3)));
    let (_, on) = snapshot(&w);
    assert!(!on.preview && on.dial == DialSetting::bias(0.3));
    // The next one soon after (a drag) is previewed first.
    w.send(Command::SetDial(DialSetting::bias(0.7)));
    let (first, on) = snapshot(&w);
    assert_eq!(on.preview, available);
    assert_eq!(on.dial, DialSetting::bias(0.7));
    if available {
        let (exact, on) = snapshot(&w);
        assert!(!on.preview);
        assert_eq!(on.dial, DialSetting::bias(0.7));
        let (a, b) = (first.mean_entropy_bits(None), exact.mean_entropy_bits(None));
        assert!(
            (a - b).abs() < 0.05 && a != b,
            "preview {a} against exact {b}"
        );
    }
    // Three changes at once: whatever comes, the last snapshot is exact, at the last dial.
    for l in [0.2, 0.4, 0.9] {
        w.send(Command::SetDial(DialSetting::bias(l)));
    }
    let mut last = None;
    while let Some(ev) = w.wait_event(Duration::from_secs(5)) {
        if let Event::Snapshot(_, _, on) = ev {
            last = Some(on);
        }
    }
    let last = last.expect("snapshots after the dial changes");
    assert!(!last.preview);
    assert_eq!(last.dial, DialSetting::bias(0.9));
}

#[test]
fn a_run_on_a_corpus_the_tokenizer_partly_cannot_read_carries_the_warning_to_the_studio() {
    // One line in eight is Cyrillic: about 10% of the characters are outside the character
    // tokenizer's 96 symbols (a warning; more than half would be refused).
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("mixed.txt");
    let mut text = String::new();
    for i in 0..400 {
        text += if i % 8 == 0 {
            "Съешь же ещё этих мягких булок\n"
        } else {
            "the quick brown fox jumps over the lazy dog\n"
        };
    }
    std::fs::write(&corpus, text).unwrap();
    let w = spawn();
    let job = TrainJob {
        corpus: CorpusSource::File {
            path: corpus.clone(),
        },
        tokenizer: TokenizerKind::Char,
        train: TrainConfig {
            steps: 10,
            batch_size: 2,
            seq_len: 32,
            ..TrainConfig::default()
        },
        eval_windows: 4,
        ..TrainJob::default()
    };
    w.send(Command::NewRun(Box::new(job)));
    match next(&w) {
        Event::Loaded(s) => {
            // (Two lines repeated: the held-out tenth repeats the training text, said apart.)
            let unreadable: Vec<&String> = (s.warnings.iter())
                .filter(|w| !w.contains("repeats the training text"))
                .collect();
            assert_eq!(unreadable.len(), 1, "{:?}", s.warnings);
            let said = unreadable[0];
            assert!(said.contains("mixed.txt"), "{said}");
            assert!(said.contains('%'), "{said}");
        }
        other => panic!("expected the run's summary, got {other:?}"),
    }
}

#[test]
fn a_refused_new_run_does_not_start_the_run_that_was_there_before() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let w = spawn();
    let job = |corpus: CorpusSource| TrainJob {
        corpus,
        tokenizer: TokenizerKind::Word,
        train: TrainConfig {
            steps: 100_000,
            batch_size: 2,
            seq_len: 32,
            ..TrainConfig::default()
        },
        eval_windows: 4,
        ..TrainJob::default()
    };
    let good = job(CorpusSource::Synthetic {
        seed: 0,
        records: 200,
    });
    w.send(Command::NewRun(Box::new(good)));
    assert!(matches!(next(&w), Event::Loaded(_)));
    // New run on an empty file, as the button sends it: the set-up, then Train.
    w.send(Command::NewRun(Box::new(job(CorpusSource::File {
        path: empty.clone(),
    }))));
    w.send(Command::Train);
    match next(&w) {
        Event::Failed(msg) => assert!(msg.contains("empty.txt"), "{msg}"),
        other => panic!("expected the refusal, got {other:?}"),
    }
    // The Train after it started nothing and said nothing more.
    w.send(Command::Capture("note 2024-03-05 : patient".into()));
    assert!(matches!(next(&w), Event::Snapshot(..)));
    let after = w.drain();
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::Progress(_) | Event::Failed(_))),
        "{after:?}"
    );
    // A Train of its own still starts the run that is there.
    w.send(Command::Train);
    assert!(matches!(
        w.wait_progress(WAIT).expect("no progress"),
        Event::Progress(_)
    ));
    w.send(Command::Stop);
}

#[test]
fn a_broken_recruitment_log_beside_a_checkpoint_is_named_and_the_model_still_opens() {
    let dir = tempfile::tempdir().unwrap();
    let src = sample("tiny-topics-recruited");
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    for f in ["config.json", "blocks.json", "model.safetensors"] {
        std::fs::copy(src.join(f), ck.join(f)).unwrap();
    }
    let log = ck.join("recruitment.json");
    let w = spawn();
    let good = std::fs::read(src.join("recruitment.json")).unwrap();
    // Cut short, as by a full disk; then a device, which would be read without end.
    for needle in ["not a recruitment log", "not a regular file"] {
        let _ = std::fs::remove_file(&log);
        if needle == "not a recruitment log" {
            std::fs::write(&log, &good[..good.len() / 2]).unwrap();
        } else {
            std::os::unix::fs::symlink("/dev/zero", &log).unwrap();
        }
        w.send(Command::Load(ck.clone()));
        match next(&w) {
            Event::Loaded(s) => {
                assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
                let said = &s.warnings[0];
                assert!(
                    said.contains(needle) && said.contains("recruitment.json"),
                    "{said}"
                );
                assert!(said.contains("without its recruitment log"), "{said}");
            }
            other => panic!("expected the model, got {other:?}"),
        }
    }
    // The intact log is read and sent after the model.
    let _ = std::fs::remove_file(&log);
    std::fs::copy(src.join("recruitment.json"), &log).unwrap();
    w.send(Command::Load(ck.clone()));
    match next(&w) {
        Event::Loaded(s) => assert!(s.warnings.is_empty(), "{:?}", s.warnings),
        other => panic!("expected the model, got {other:?}"),
    }
    loop {
        match next(&w) {
            Event::Recruitment(r) => {
                assert!(!r.rounds.is_empty());
                break;
            }
            Event::RulesRefit(_) | Event::Snapshot(..) | Event::Theory(..) => continue,
            other => panic!("expected the recruitment log, got {other:?}"),
        }
    }
    // Beside another model (the clinical sample's files, the recruited sample's log) the log
    // is named as another model's and not shown as this one's.
    for f in ["config.json", "blocks.json", "model.safetensors"] {
        std::fs::copy(sample("tiny-clinical").join(f), ck.join(f)).unwrap();
    }
    w.send(Command::Load(ck.clone()));
    match next(&w) {
        Event::Loaded(s) => {
            let said = s.warnings.join("\n");
            assert!(
                said.contains("recruitment.json: not the log of this checkpoint's blocks")
                    && said.contains("without its recruitment log"),
                "{said}"
            );
        }
        other => panic!("expected the model, got {other:?}"),
    }
    while let Some(after) = w.wait_event(Duration::from_secs(2)) {
        assert!(!matches!(after, Event::Recruitment(_)), "{after:?}");
    }
}

#[test]
fn a_recruited_checkpoint_saved_onto_itself_keeps_its_log_and_its_renamed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    let src = sample("tiny-topics-recruited");
    for f in [
        "config.json",
        "blocks.json",
        "model.safetensors",
        "recruitment.json",
    ] {
        std::fs::copy(src.join(f), ck.join(f)).unwrap();
    }
    let w = spawn();
    w.send(Command::Load(ck.clone()));
    let until = |want: &dyn Fn(&Event) -> bool| loop {
        let ev = next(&w);
        if let Event::Failed(e) = &ev {
            panic!("{e}");
        }
        if want(&ev) {
            return ev;
        }
    };
    until(&|e| matches!(e, Event::Recruitment(_)));
    // A recruited block renamed by hand, then the checkpoint saved onto its own folder.
    w.send(Command::RenameBlock(1, "weather".into()));
    // The tab's log is sent again with the rename.
    match until(&|e| matches!(e, Event::Recruitment(_))) {
        Event::Recruitment(r) => {
            assert_eq!(r.renamed.last().map(|r| r.to.as_str()), Some("weather"))
        }
        _ => unreachable!(),
    }
    w.send(Command::Save(ck.clone()));
    until(&|e| matches!(e, Event::Saved(..)));
    let log: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ck.join("recruitment.json")).unwrap()).unwrap();
    assert_eq!(log["renamed"][0]["to"], "weather", "{}", log["renamed"]);
    // Opened again: the log describes the renamed blocks and is shown.
    w.send(Command::Load(ck.clone()));
    match until(&|e| matches!(e, Event::Loaded(_))) {
        Event::Loaded(s) => {
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
            assert!(s.blocks.iter().any(|b| b == "weather"), "{:?}", s.blocks);
        }
        _ => unreachable!(),
    }
    until(&|e| matches!(e, Event::Recruitment(_)));
}

#[test]
fn a_pool_whose_files_are_devices_is_refused_or_shown_without_its_texts() {
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("pool");
    std::fs::create_dir(&pool).unwrap();
    let src = common::sample("pool-clinical-payments");
    let w = spawn();
    // The manifest a device: refused, naming it (it was read without end).
    std::os::unix::fs::symlink("/dev/zero", pool.join("manifest.json")).unwrap();
    w.send(Command::OpenPool(pool.clone()));
    match next(&w) {
        Event::Pool(Err(e)) => assert!(
            e.contains("manifest.json") && e.contains("not a regular file"),
            "{e}"
        ),
        other => panic!("expected the refusal, got {other:?}"),
    }
    // A real manifest beside documents.txt that is a device: the pool shows, without texts.
    std::fs::remove_file(pool.join("manifest.json")).unwrap();
    std::fs::copy(src.join("manifest.json"), pool.join("manifest.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", pool.join("documents.txt")).unwrap();
    w.send(Command::OpenPool(pool.clone()));
    match next(&w) {
        Event::Pool(Ok(p)) => assert!(p.texts.is_empty()),
        other => panic!("expected the pool, got {other:?}"),
    }
}

#[test]
fn a_checkpoint_trained_past_its_best_held_out_point_says_so_when_opened() {
    let dir = tempfile::tempdir().unwrap();
    let src = sample("tiny-shakespeare-l1");
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    for f in ["blocks.json", "model.safetensors"] {
        std::fs::copy(src.join(f), ck.join(f)).unwrap();
    }
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    let steps = cfg["training"]["steps_done"].as_u64().unwrap();
    let point = |step: u64, ppl: f64| serde_json::json!({ "step": step, "ce_nats": f64::ln(ppl), "tokens": 1024 });
    cfg["training"]["held_out"] =
        serde_json::json!([point(100, 5.0), point(steps - 100, 6.0), point(steps, 7.0)]);
    std::fs::write(ck.join("config.json"), cfg.to_string()).unwrap();
    let w = spawn();
    w.send(Command::Load(ck));
    match next(&w) {
        Event::Loaded(s) => {
            assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
            assert!(
                s.warnings[0].contains("5.0 at step 100"),
                "{:?}",
                s.warnings
            );
        }
        other => panic!("expected the model, got {other:?}"),
    }
    // The bundled sample records no curve: nothing is said.
    w.send(Command::Load(src));
    match next(&w) {
        Event::Loaded(s) => assert!(s.warnings.is_empty(), "{:?}", s.warnings),
        other => panic!("expected the model, got {other:?}"),
    }
}

/// Train a run on `corpus` (one the model can only learn by heart) until a live held-out point
/// is well above the best, then stop it; the live points seen (step, cross-entropy) and the best
/// of them.
fn run_until_it_overfits(w: &WorkerHandle, corpus: PathBuf) -> (Vec<(usize, f64)>, (usize, f64)) {
    let job = TrainJob {
        corpus: CorpusSource::File { path: corpus },
        tokenizer: TokenizerKind::Word,
        train: TrainConfig {
            steps: 100_000,
            batch_size: 4,
            seq_len: 32,
            ..TrainConfig::default()
        },
        eval_windows: 4,
        ..TrainJob::default()
    };
    w.send(Command::NewRun(Box::new(job)));
    assert!(matches!(next(w), Event::Loaded(_)));
    w.send(Command::Train);
    // Live points (about one a second) until the last is well above the best, then stop.
    let mut live: Vec<(usize, f64)> = Vec::new();
    let overfit = |l: &[(usize, f64)]| {
        let best = l.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        l.len() >= 3 && l.last().is_some_and(|p| p.1 > best + 0.1)
    };
    let deadline = Instant::now() + WAIT;
    while !overfit(&live) && Instant::now() < deadline {
        if let Some(Event::Live(p)) = w.wait_event(Duration::from_millis(200)) {
            live.push((p.step, p.eval.ce_nats));
        }
    }
    assert!(overfit(&live), "{live:?}");
    w.send(Command::Stop);
    drop(w.drain());
    std::thread::sleep(Duration::from_millis(300));
    let _ = w.drain();
    let best = live
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    (live, best)
}

#[test]
fn back_to_best_puts_the_run_on_its_best_held_out_point_and_measures_it_again() {
    let dir = tempfile::tempdir().unwrap();
    // A corpus the model can only learn by heart.
    let corpus = common::learned_by_heart(dir.path());
    let w = spawn();
    // Nothing to go back to before a run.
    w.send(Command::BackToBest);
    assert!(matches!(next(&w), Event::Failed(m) if m.contains("no training run")));
    let (live, best) = run_until_it_overfits(&w, corpus);
    w.send(Command::BackToBest);
    let mut said = None;
    let mut point = None;
    let mut finished = None;
    // The held-out metrics measured again, then what happened, said last (the status bar's).
    while said.is_none() {
        match next(&w) {
            Event::Status(s) if s.starts_with("back to step") => said = Some(s),
            Event::Live(p) => point = Some(p),
            Event::Finished(r, _) => finished = Some(r.ce_nats),
            Event::Snapshot(..) | Event::Status(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let (said, point) = (said.unwrap(), point.unwrap());
    // The run is back on the weights of its best point: the same step and the same held-out
    // loss (the same windows, the same weights). A later live point may have been better than
    // the ones seen here, never worse.
    assert!(said.contains(&format!("step {}", point.step)), "{said}");
    assert!(
        point.eval.ce_nats <= best.1 + 1e-9,
        "{point:?} against {best:?}"
    );
    // By the last point seen the model had learned the lines by heart: going back changed it.
    let last = *live.last().unwrap();
    assert!(point.step < last.0, "{} against {last:?}", point.step);
    // The held-out metrics shown are measured again, on the weights gone back to.
    let finished = finished.expect("no new held-out metrics");
    assert!(finished < last.1, "{finished} against {last:?}");
    // The step and loss shown go back too: the progress of the last step kept, with no speed
    // (the run is not running).
    if point.step > 0 {
        match w.wait_progress(WAIT) {
            Some(Event::Progress(p)) => {
                assert_eq!(p.stats.step + 1, point.step);
                assert_eq!(p.tokens_per_s, 0.0);
            }
            other => panic!("no progress after going back: {other:?}"),
        }
    }
    // Train goes on from there: the next step is the one after the best point.
    w.send(Command::Train);
    match w.wait_progress(WAIT) {
        Some(Event::Progress(p)) => assert_eq!(p.stats.step, point.step),
        other => panic!("no progress after Train: {other:?}"),
    }
    w.send(Command::Stop);
}

#[test]
fn the_best_weights_under_these_blocks_put_the_run_on_its_best_point_and_keep_its_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = common::learned_by_heart(dir.path());
    let w = spawn();
    let (live, best) = run_until_it_overfits(&w, corpus);
    w.send(Command::BestWeightsUnderTheseBlocks);
    let (mut said, mut point) = (None, None);
    while said.is_none() {
        match next(&w) {
            Event::Status(s) if s.starts_with("the weights of step") => said = Some(s),
            Event::Live(p) => point = Some(p),
            Event::BlocksChanged(..) => panic!("the blocks stay as they are"),
            _ => {}
        }
    }
    let (said, point) = (said.unwrap(), point.unwrap());
    assert!(said.contains(&format!("step {}", point.step)), "{said}");
    assert!(said.contains("under the blocks of now"), "{said}");
    assert!(
        point.eval.ce_nats <= best.1 + 1e-9,
        "{point:?} against {best:?}"
    );
    assert!(point.step < live.last().unwrap().0);
}
