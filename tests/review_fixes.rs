//! The real `localist` binary on what a hostile-user review found broken: output that must stay
//! machine-readable, files that must not vanish unsaid, and text the tokenizer cannot read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use common::stderr;

mod common;

fn localist(args: &[&str]) -> Output {
    common::localist_in(&common::root(), args)
}

/// A successful run's standard output as one JSON document.
fn json_stdout(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{text}"))
}

#[test]
fn eval_json_with_anchors_is_one_json_document() {
    let ck = common::sample("tiny-topics-recruited");
    let ck = ck.to_str().unwrap();
    // Without --anchors the shape is unchanged: the array of reports.
    let plain = json_stdout(&localist(&["eval", "-c", ck, "--windows", "2", "--json"]));
    assert!(plain.is_array(), "{plain}");
    // With --anchors: {"eval": that array, "rules": null, "anchors": {...}}.
    let v = json_stdout(&localist(&[
        "eval",
        "-c",
        ck,
        "--windows",
        "2",
        "--json",
        "--anchors",
    ]));
    assert_eq!(v["eval"], plain);
    assert!(v["rules"].is_null(), "{v}");
    assert!(v["anchors"]["coverage_bits"].is_f64(), "{v}");
    let blocks = v["anchors"]["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty());
    assert!(blocks
        .iter()
        .all(|b| b["block"].is_string() && b["anchors"].is_array()));
    let first = &blocks.iter().find_map(|b| b["anchors"].get(0)).unwrap();
    for key in ["token", "pmi_bits", "purity_bits", "count"] {
        assert!(first.get(key).is_some(), "anchor lacks {key}: {first}");
    }
    // A checkpoint without anchor statistics: "anchors" is null; with --rules too.
    let clinical = common::sample("tiny-clinical");
    let rules = common::root().join("assets/rules/clinical_payments.rules");
    let v = json_stdout(&localist(&[
        "eval",
        "-c",
        clinical.to_str().unwrap(),
        "--windows",
        "2",
        "--json",
        "--anchors",
        "--rules",
        rules.to_str().unwrap(),
    ]));
    assert!(v["anchors"].is_null(), "{v}");
    assert!(v["eval"].is_array() && v["rules"].is_array(), "{v}");
}

/// A two-step character checkpoint of the first 50 kB of the bundled Shakespeare, in `dir/ck`.
fn small_checkpoint(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let text = std::fs::read(common::root().join("assets/corpora/shakespeare_1mb.txt")).unwrap();
    let corpus = dir.join("c.txt");
    std::fs::write(&corpus, &text[..50_000]).unwrap();
    let ck = dir.join("ck");
    let o = localist(&[
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--steps",
        "2",
        "--batch",
        "2",
        "--quiet",
        "--out",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    (corpus, ck)
}

#[test]
fn blocks_in_place_says_the_optimizer_state_is_removed_and_resume_says_it_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (corpus, ck) = small_checkpoint(dir.path());
    let opt = ck.join("optimizer.safetensors");
    assert!(opt.exists());
    // The state holds the anchor keys' moments, whose shape follows the block count: it cannot
    // be kept for the new blocks, so it goes, and the run says so.
    let o = localist(&[
        "blocks",
        "-c",
        ck.to_str().unwrap(),
        "--kmeans",
        "3",
        "--out",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(!opt.exists());
    for needle in [
        "optimizer state removed",
        "optimizer.safetensors",
        "train --resume",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    // Resuming from it says that the optimizer restarts.
    let out = dir.path().join("resumed");
    let o = localist(&[
        "train",
        "--resume",
        ck.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--steps",
        "3",
        "--batch",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no optimizer state") && err.contains("optimizer restarts"),
        "{err}"
    );
    // A checkpoint that has its state resumes without the note.
    let o = localist(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--corpus",
        corpus.to_str().unwrap(),
        "--steps",
        "4",
        "--batch",
        "2",
        "--quiet",
        "--out",
        dir.path().join("again").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains("no optimizer state"), "{}", stderr(&o));
}

#[test]
fn a_crlf_corpus_trains_on_the_tokens_of_its_lf_twin_and_says_so() {
    use localist::engine::corpus::{prepare_corpus, CorpusSource, TokenizerKind};
    let dir = tempfile::tempdir().unwrap();
    let lf_text = "To be, or not to be: that is the question.\nWhether 'tis nobler.\n".repeat(200);
    let lf = dir.path().join("lf.txt");
    let crlf = dir.path().join("crlf.txt");
    std::fs::write(&lf, &lf_text).unwrap();
    std::fs::write(&crlf, lf_text.replace('\n', "\r\n")).unwrap();
    for kind in [TokenizerKind::Char, TokenizerKind::Word] {
        let read = |p: &std::path::Path| {
            prepare_corpus(&CorpusSource::File { path: p.into() }, kind, None).unwrap()
        };
        let (a, b) = (read(&lf), read(&crlf));
        assert_eq!(a.stream.ids, b.stream.ids, "{kind:?}");
        assert_eq!(a.sha256, b.sha256, "{kind:?}");
        assert!(a.warnings.is_empty(), "{:?}", a.warnings);
        // The studio shows these beside the run: the change is named there too.
        assert!(
            b.warnings
                .iter()
                .any(|w| w.contains("crlf.txt") && w.contains("400 CR LF")),
            "{:?}",
            b.warnings
        );
    }
    // The command line says it once, naming the file and the count.
    let out = dir.path().join("ck");
    let o = localist(&[
        "train",
        "--corpus",
        crlf.to_str().unwrap(),
        "--steps",
        "1",
        "--batch",
        "2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.matches("CR LF line endings read as LF").count(),
        1,
        "{err}"
    );
    assert!(err.contains("crlf.txt: 400 CR LF"), "{err}");
}

#[test]
fn tabs_and_carriage_returns_in_captured_text_are_reported_as_unreadable() {
    let ck = common::sample("tiny-shakespeare-l1");
    let ck = ck.to_str().unwrap();
    // Three of seven characters are tabs, each read as '?': a warning names the first.
    let o = localist(&["capture", "-c", ck, "--text", "a\tb\tc\td"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("warning") && err.contains("3 of 7") && err.contains("\"\\t\""),
        "{err}"
    );
    // Only tabs: refused like any text the tokenizer cannot read.
    let o = localist(&["capture", "-c", ck, "--text", "\t\t\t"]);
    common::assert_fails_with(&o, &["'?'", "\"\\t\""]);
    // A lone CR is unreadable too; CR LF is a newline, said in a note.
    let o = localist(&["capture", "-c", ck, "--text", "ab\rcd"]);
    assert!(stderr(&o).contains("\"\\r\""), "{}", stderr(&o));
    let o = localist(&["capture", "-c", ck, "--text", "ab\r\ncd\r\n"]);
    let v = json_stdout(&o);
    assert_eq!(
        v["tokens"],
        serde_json::json!(["a", "b", "\n", "c", "d", "\n"])
    );
    assert!(
        stderr(&o).contains("2 CR LF line endings read as LF"),
        "{}",
        stderr(&o)
    );
}

/// Recruitment settings that cannot mean what they say are refused, naming the flag, before
/// any training: rounds every 0 steps, room for no block, an empty buffer, start windows as
/// wide as the sequence, probes longer than the run.
#[test]
fn recruitment_flags_that_cannot_work_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    for (flag, value, want) in [
        ("--recruit-every", "0", "at least 1"),
        ("--recruit-kmax", "1", "at least 2"),
        ("--recruit-buffer", "0", "at least one"),
        ("--recruit-start-windows", "64", "nothing would be local"),
        ("--recruit-probe", "1000", "more than the run's --steps 6"),
    ] {
        let o = localist(&[
            "train",
            "--corpus",
            "topics:3",
            "--tokenizer",
            "word",
            "--recruit",
            "--steps",
            "6",
            "--quiet",
            flag,
            value,
            "--out",
            out.to_str().unwrap(),
        ]);
        common::assert_fails_with(&o, &[flag, want]);
        assert!(!out.exists(), "{flag} {value}");
    }
}

/// The specialists' fine-tuning flags are checked against the base before any document is
/// coded, naming the flag (they were met at the first round, or never with one document).
#[test]
fn specialists_check_their_fine_tuning_flags_first() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs.txt");
    std::fs::write(
        &docs,
        "the patient was given warfarin\n\nthe card was charged\n",
    )
    .unwrap();
    let base = common::sample("tiny-clinical");
    let out = dir.path().join("pool");
    for (flag, value, want) in [
        ("--seq", "0", "between 2 and the base model's"),
        ("--seq", "100000", "between 2 and the base model's"),
        ("--batch", "0", "at least 1"),
        ("--trainable", "bogus", "no parameter of the base model"),
    ] {
        let o = localist(&[
            "specialists",
            "--base",
            base.to_str().unwrap(),
            "--docs",
            docs.to_str().unwrap(),
            flag,
            value,
            "--out",
            out.to_str().unwrap(),
        ]);
        common::assert_fails_with(&o, &[flag, want]);
        assert!(!out.exists());
    }
}

/// A model worse than a uniform guess (here: its output head scaled up 60 times, every weight
/// still finite) is evaluated with a warning, and its perplexity in powers of ten; a λ typed
/// as -0 prints as 0.00.
#[test]
fn a_perplexity_worse_than_uniform_is_warned_about_and_printed_short() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = small_checkpoint(dir.path());
    let dev = candle_core::Device::Cpu;
    let loaded = localist::model::checkpoint::load_checkpoint(&ck, &dev).unwrap();
    for name in ["head.weight", "head.bias"] {
        let var = loaded.model.params.var(name).unwrap();
        var.set(&(var.as_tensor() * 60.0).unwrap()).unwrap();
    }
    let bad = dir.path().join("bad");
    localist::model::checkpoint::save_checkpoint(
        &bad,
        &loaded.meta,
        &loaded.blocks,
        &loaded.model,
        None,
    )
    .unwrap();
    let o = localist(&[
        "eval",
        "-c",
        bad.to_str().unwrap(),
        "--windows",
        "2",
        "--lambda=-0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("worse than a uniform guess"),
        "{}",
        stderr(&o)
    );
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("| 0.00 |") && !table.contains("-0.00"),
        "{table}"
    );
    // The healthy checkpoint: no warning.
    let o = localist(&["eval", "-c", ck.to_str().unwrap(), "--windows", "2"]);
    assert!(
        !stderr(&o).contains("worse than a uniform guess"),
        "{}",
        stderr(&o)
    );
}

/// A capture's text is checked against the capture memory limit before it is built: all
/// heads at full resolution on a long text passed the capture's own check, then the CSV
/// aborted the process (SmolLM2, 1,356 tokens, `--grid 0`: 4 GiB asked for at 6.9 GB). Here
/// the limit is lowered to 0.6 MiB: the tiny model's capture (0.4 MiB) passes it, its text
/// (about 1 MiB) does not.
#[test]
fn a_capture_text_over_the_memory_limit_is_refused_before_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let ck = common::sample("tiny-clinical");
    let text = "the patient was given warfarin 5 mg daily and the card was charged ".repeat(4);
    for (format, what) in [("csv", "the CSV"), ("json", "the JSON")] {
        let out = dir.path().join(format!("cap.{format}"));
        let run = |limit: &str, extra: &[&str]| {
            let mut args = vec![
                "capture",
                "-c",
                ck.to_str().unwrap(),
                "--text",
                text.as_str(),
                "--format",
                format,
                "-o",
                out.to_str().unwrap(),
            ];
            args.extend_from_slice(extra);
            std::process::Command::new(env!("CARGO_BIN_EXE_localist"))
                .args(&args)
                .current_dir(common::root())
                .env("CANDLE_NUM_THREADS", "1")
                .env("LOCALIST_CAPTURE_LIMIT_GIB", limit)
                .output()
                .unwrap()
        };
        let o = run("0.0006", &[]);
        common::assert_fails_with(
            &o,
            &[what, "--heads", "--grid", "LOCALIST_CAPTURE_LIMIT_GIB"],
        );
        assert!(!out.exists());
        let o = run("4", &[]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(out.exists());
        std::fs::remove_file(&out).unwrap();
    }
}
