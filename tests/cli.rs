//! The real `localist` binary on bad input: each case must exit non-zero with a message that
//! names the file, line or step, and leave no partial output behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn localist(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_localist"))
        .args(args)
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn assert_fails_with(o: &Output, needles: &[&str]) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stderr(o)
    );
    let err = stderr(o);
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

fn train_args<'a>(corpus: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train", "--corpus", corpus, "--steps", "2", "--batch", "2", "--quiet", "--out", out,
    ]
}

#[test]
fn bad_corpora_are_named_and_leave_no_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.path().join("binary.bin");
    std::fs::write(&binary, b"abc\0def").unwrap();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"line one\nline two\ncaf\xe9\n").unwrap();
    for (path, needle) in [(&empty, "empty"), (&binary, "NUL"), (&latin1, "line 3")] {
        let out = dir.path().join("ck");
        let o = localist(&train_args(path.to_str().unwrap(), out.to_str().unwrap()));
        assert_fails_with(&o, &[path.file_name().unwrap().to_str().unwrap(), needle]);
        assert!(
            !out.exists(),
            "a checkpoint was written for {}",
            path.display()
        );
    }
}

#[test]
fn unknown_preset_and_lambda_out_of_range_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    let mut a = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
    a.extend(["--preset", "gigantic"]);
    assert_fails_with(&localist(&a), &["unknown preset 'gigantic'", "tiny"]);
    let mut b = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
    b.extend(["--lambda-train", "1.5"]);
    assert_fails_with(&localist(&b), &["[0, 1]", "1.5"]);
    assert!(!out.exists());
}

#[test]
fn lexicon_with_unknown_token_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let lex = dir.path().join("blocks.tsv");
    std::fs::write(&lex, "# drugs\nwarfarin\tdrug\nzzzunknownzzz\tdrug\n").unwrap();
    let out = dir.path().join("ck");
    let blocks = format!("lexicon:{}", lex.display());
    let mut a = train_args("synthetic:200", out.to_str().unwrap());
    a.extend(["--tokenizer", "word", "--blocks", &blocks]);
    assert_fails_with(&localist(&a), &["blocks.tsv:3", "zzzunknownzzz"]);
    assert!(!out.exists());
}

#[test]
fn nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    let mut a = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
    a[4] = "8"; // --steps
    a.extend(["--lr", "1e6", "--checkpoint-every", "1"]);
    let o = localist(&a);
    assert_fails_with(&o, &["training step", "not finite", "last good checkpoint"]);
    // The checkpoint on disk is a complete, loadable one from before the bad step.
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    let done = cfg["training"]["steps_done"].as_u64().unwrap();
    assert!((1..8).contains(&done), "steps_done {done}");
    let eval = localist(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--windows",
        "2",
        "--json",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
}

#[test]
fn truncated_and_mismatched_checkpoints_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let ck = trained_checkpoint(dir.path());
    // Shapes that do not match the config.
    let bad_cfg = dir.path().join("bad_cfg");
    copy_dir(&ck, &bad_cfg);
    let text = std::fs::read_to_string(bad_cfg.join("config.json")).unwrap();
    std::fs::write(
        bad_cfg.join("config.json"),
        text.replace("\"d_model\": 128", "\"d_model\": 256"),
    )
    .unwrap();
    let o = localist(&[
        "eval",
        "--checkpoint",
        bad_cfg.to_str().unwrap(),
        "--windows",
        "2",
    ]);
    assert_fails_with(&o, &["model.safetensors", "shape"]);
    // A truncated weights file.
    let trunc = dir.path().join("trunc");
    copy_dir(&ck, &trunc);
    let w = std::fs::read(trunc.join("model.safetensors")).unwrap();
    std::fs::write(trunc.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    let o = localist(&[
        "eval",
        "--checkpoint",
        trunc.to_str().unwrap(),
        "--windows",
        "2",
    ]);
    assert_fails_with(&o, &["model.safetensors", "truncated"]);
    // The capture of a bad checkpoint writes no output file.
    let out = dir.path().join("cap.json");
    let o = localist(&[
        "capture",
        "-c",
        trunc.to_str().unwrap(),
        "--text",
        "To be",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(!out.exists());
}

#[test]
fn capture_writes_json_and_csv_for_a_trained_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let ck = trained_checkpoint(dir.path());
    let json = dir.path().join("cap.json");
    let o = localist(&[
        "capture",
        "-c",
        ck.to_str().unwrap(),
        "--text",
        "To be, or not",
        "--lambda",
        "0.5",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["tokens"].as_array().unwrap().len(), 13);
    assert_eq!(doc["capture"]["heads"].as_array().unwrap().len(), 8);
    let csv = dir.path().join("cap.csv");
    let o = localist(&[
        "capture",
        "-c",
        ck.to_str().unwrap(),
        "--text",
        "To be",
        "--format",
        "csv",
        "-o",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 2 layers x 4 heads x (5·6/2 = 15 causal pairs) rows plus a header.
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap().lines().count(),
        1 + 8 * 15
    );
}

/// A two-step checkpoint on the bundled corpus, at `dir/ck`.
fn trained_checkpoint(dir: &Path) -> std::path::PathBuf {
    let ck = dir.join("ck");
    let o = localist(&train_args(
        "assets/corpora/shakespeare_1mb.txt",
        ck.to_str().unwrap(),
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    ck
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn kmeans_blocks_and_synth_write_usable_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let ck = trained_checkpoint(dir.path());
    let km = dir.path().join("km");
    let o = localist(&[
        "blocks",
        "-c",
        ck.to_str().unwrap(),
        "--kmeans",
        "5",
        "-o",
        km.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let blocks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(km.join("blocks.json")).unwrap()).unwrap();
    // "unassigned" plus five clusters, every one of the 96 ids assigned to a cluster.
    assert_eq!(blocks["names"].as_array().unwrap().len(), 6);
    let assigned = blocks["token_block"].as_array().unwrap();
    assert_eq!(assigned.len(), 96);
    assert!(assigned.iter().all(|b| b.as_u64().unwrap() >= 1));
    let o = localist(&[
        "eval",
        "-c",
        km.to_str().unwrap(),
        "--windows",
        "2",
        "--lambda",
        "0,1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let syn = dir.path().join("syn");
    let o = localist(&[
        "synth",
        "--records",
        "50",
        "--seed",
        "3",
        "-o",
        syn.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["corpus.txt", "lexicon.tsv", "targets.json"] {
        assert!(syn.join(f).exists(), "{f} missing");
    }
    assert_fails_with(
        &localist(&["synth", "--records", "0", "-o", syn.to_str().unwrap()]),
        &["records"],
    );
}
