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
    // A resumed run counts its own steps: one step is no steady state to time.
    let out_text = String::from_utf8_lossy(&o.stdout);
    assert!(
        out_text.contains("trained 1 step (resumed at step 2, 3 in all)"),
        "{out_text}"
    );
    assert!(!out_text.contains("steady-state"), "{out_text}");
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

/// A text typed or pasted with a leading byte-order mark reads as a file's does (files drop
/// it): the mark is not an unknown first token, and no warning counts it unreadable.
#[test]
fn a_byte_order_mark_before_a_captured_text_is_dropped() {
    let ck = common::sample("tiny-shakespeare-l1");
    let ck = ck.to_str().unwrap();
    let o = localist(&["capture", "-c", ck, "--text", "\u{feff}ab cd"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_stdout(&o);
    assert_eq!(v["tokens"], serde_json::json!(["a", "b", " ", "c", "d"]));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
}

/// A command that takes one of our checkpoints, given an imported model, says what it was
/// given and where such a model is measured, not "config.json: Not a directory" (a `.gguf`
/// file) or "missing field `version`" (a Hugging Face folder).
#[test]
fn a_checkpoint_command_given_an_imported_model_says_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = common::root().join("tests/fixtures/llamacpp/phi2.gguf");
    let folder = common::family_fixture("phi");
    let rules = common::root().join("assets/rules/clinical_payments.rules");
    let out = dir.path().join("out");
    let (gguf, folder, rules, out) = (
        gguf.to_str().unwrap(),
        folder.to_str().unwrap(),
        rules.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    for (args, what) in [
        (
            vec!["blocks", "-c", gguf, "--kmeans", "4", "--out", out],
            "a GGUF file",
        ),
        (
            vec!["audit", "report", "-c", folder, "-r", rules, "--out", out],
            "a Hugging Face folder",
        ),
        (vec!["rules", "check", rules, "-c", gguf], "a GGUF file"),
    ] {
        let o = localist(&args);
        common::assert_fails_with(&o, &[what, "not a Localist checkpoint", "localist eval"]);
    }
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
        // A warm-up as long as the run: no round, and a log of none was written unsaid.
        ("--recruit-warmup", "6", "no round would run"),
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

/// A pool of fewer than four documents can never split off a specialist (two documents on
/// each side of a gap): it says so before growing instead of ending with none, unexplained.
#[test]
fn a_pool_of_three_documents_says_no_specialist_can_be_tried() {
    use localist::engine::jobs::specialists::{PoolJob, PoolRun};
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs.txt");
    std::fs::write(
        &docs,
        "the patient was given warfarin 5 mg daily\n\nthe card was charged twice\n\n\
         the nurse checked the chart\n",
    )
    .unwrap();
    let base = common::root().join("sample_models/pool-clinical-payments/base");
    let run = PoolRun::open(PoolJob::defaults(base.clone(), docs.clone())).unwrap();
    assert_eq!(run.documents(), 3);
    let note = run.limits_note().unwrap();
    assert!(
        note.contains("3 documents") && note.contains("at least 4"),
        "{note}"
    );
    std::fs::write(&docs, "the card was charged\n\n".repeat(4)).unwrap();
    let run = PoolRun::open(PoolJob::defaults(base, docs)).unwrap();
    assert!(run.limits_note().is_none());
}

/// A corpus whose held-out tenth repeats its training text (here one document, many times)
/// is warned about before training: its held-out perplexity would measure recall of copies.
#[test]
fn a_corpus_of_repeated_documents_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("repeated.txt");
    let doc = "the patient was given warfarin and the card was charged twice today.\n";
    std::fs::write(&corpus, doc.repeat(400)).unwrap();
    let out = dir.path().join("ck");
    let o = localist(&[
        "train",
        "--corpus",
        corpus.to_str().unwrap(),
        "--steps",
        "2",
        "--batch",
        "2",
        "--seq",
        "32",
        "--eval-every",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("100% of its held-out tenth repeats the training text"),
        "{err}"
    );
    // Shakespeare does not repeat itself 16 characters at a time often enough to warn.
    let o = localist(&[
        "train",
        "--corpus",
        "assets/corpora/shakespeare_1mb.txt",
        "--steps",
        "2",
        "--batch",
        "2",
        "--seq",
        "32",
        "--eval-every",
        "0",
        "--out",
        dir.path().join("s").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("repeats the training text"),
        "{}",
        stderr(&o)
    );
}

/// `eval` of a checkpoint whose `config.json` lies about its training: a record of the wrong
/// shape was taken for "no training corpus recorded", windows of 0 tokens were scored, and an
/// empty corpus SHA-256 skipped the check that the corpus is the one trained on.
#[test]
fn eval_names_a_training_record_it_cannot_use() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    common::copy_files(&common::sample("tiny-clinical"), &ck);
    let cfg = ck.join("config.json");
    let original = std::fs::read_to_string(&cfg).unwrap();
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&original).unwrap();
        f(&mut v);
        std::fs::write(&cfg, v.to_string()).unwrap();
    };
    let eval = || localist(&["eval", "-c", ck.to_str().unwrap(), "--lambda", "0"]);
    edit(&|v| v["training"]["config"]["seq_len"] = 0.into());
    common::assert_fails_with(&eval(), &["config.json", "seq_len", "0 tokens"]);
    edit(&|v| v["training"]["steps_done"] = "many".into());
    common::assert_fails_with(&eval(), &["config.json", "\"training\" record", "--corpus"]);
    // A recorded generated corpus past the generator's sizes was built until memory ran out.
    edit(&|v| v["training"]["corpus"]["records"] = 1_000_000_000_000u64.into());
    common::assert_fails_with(
        &eval(),
        &["synthetic:1000000000000", "1 to 1000000 records"],
    );
    // A character tokenizer recorded on a word model: another model's tokenizer.
    edit(&|v| v["tokenizer"] = serde_json::json!({"kind": "Char"}));
    common::assert_fails_with(&eval(), &["config.json", "96 tokens", "not the tokenizer"]);
    edit(&|v| v["training"]["corpus_sha256"] = "".into());
    let o = eval();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("records no SHA-256"), "{}", stderr(&o));
}

/// A folder of documents skips hidden files and a file manager's litter (`.DS_Store` was read
/// as a document) and refuses `--separator`, which it ignored; in one file, a line of spaces
/// separates documents as a blank line does.
#[test]
fn a_documents_folder_skips_hidden_files_and_refuses_a_separator() {
    use localist::engine::specialists::read_documents;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("a.txt", "the card was charged"),
        ("b.txt", "the nurse checked the chart"),
        (".DS_Store", "\u{0}\u{0}\u{0}\u{1}Bud1"),
        ("Thumbs.db", "thumbs"),
        (".notes.swp", "swap"),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let docs = read_documents(dir.path(), None).unwrap();
    let names: Vec<&str> = docs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.txt", "b.txt"]);
    let err = read_documents(dir.path(), Some("---"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--separator") && err.contains("folder"),
        "{err}"
    );
    let file = dir.path().join("docs").join("all.txt");
    std::fs::create_dir(dir.path().join("docs")).unwrap();
    std::fs::write(&file, "one doc\n   \ntwo doc\n\t\nthree doc\n").unwrap();
    assert_eq!(read_documents(&file, None).unwrap().len(), 3);
}

/// Reading a folder of documents says what it passed over and what it reached outside the
/// folder (both were silent): sub-folders, whose files are not read, and links to files
/// elsewhere, which are.
#[cfg(unix)]
#[test]
fn a_documents_folder_names_its_sub_folders_and_links_outside() {
    use localist::engine::specialists::{folder_note, read_documents};
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(docs.join("more")).unwrap();
    std::fs::write(docs.join("a.txt"), "the card was charged").unwrap();
    std::fs::write(docs.join("more").join("b.txt"), "the nurse checked").unwrap();
    assert_eq!(folder_note(&docs.join("a.txt")), None, "a file has no note");
    let note = folder_note(&docs).unwrap();
    assert!(
        note.contains("sub-folders skipped") && note.contains("more"),
        "{note}"
    );
    assert!(!note.contains("outside"), "{note}");
    std::fs::create_dir(docs.join(".hidden")).unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "not in the folder").unwrap();
    std::os::unix::fs::symlink(&secret, docs.join("c.txt")).unwrap();
    let note = folder_note(&docs).unwrap();
    assert!(
        note.contains("outside the folder") && note.contains("c.txt -> "),
        "{note}"
    );
    assert!(!note.contains(".hidden"), "{note}");
    assert_eq!(read_documents(&docs, None).unwrap().len(), 2);
    std::fs::remove_dir_all(docs.join("more")).unwrap();
    std::fs::remove_file(docs.join("c.txt")).unwrap();
    assert_eq!(folder_note(&docs), None, "{docs:?}");
}

/// `blocks` drops what training measured under the old map: `eval --anchors` printed the old
/// blocks' anchors (drug, dose, …) for a k-means map, and the recorded final evaluation
/// (PF_mass 0.964) stayed beside a map that measures 0.788.
#[test]
fn new_blocks_drop_the_old_maps_anchors_and_final_evaluation() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("km");
    let ck = common::root().join("sample_models/pool-clinical-payments/base");
    let docs = common::root().join("sample_models/pool-clinical-payments/documents.txt");
    let anchors = |ck: &std::path::Path| {
        let o = localist(&[
            "eval",
            "-c",
            ck.to_str().unwrap(),
            "--lambda",
            "0",
            "--anchors",
            "--corpus",
            docs.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(!anchors(&ck).contains("no anchor statistics"));
    let o = localist(&[
        "blocks",
        "-c",
        ck.to_str().unwrap(),
        "--kmeans",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert!(
        cfg["training"].get("anchors").is_none(),
        "{}",
        cfg["training"]
    );
    assert!(cfg["training"]["final_eval"].is_null());
    assert!(cfg["training"]["steps_done"].as_u64().unwrap() > 0);
    assert!(anchors(&out).contains("no anchor statistics"));
}

/// A tab or a line break in a block name is refused (a lexicon's third column became part of
/// the name `drug\textra`), as a terminal escape was; in a checkpoint's blocks.json too.
#[test]
fn a_block_name_with_a_tab_or_a_line_break_is_refused() {
    use localist::data::lexicon::Lexicon;
    let path = std::path::Path::new("three.tsv");
    let err = Lexicon::parse("warfarin\tdrug\textra\nmg\tunit\n", path)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("three.tsv:1") && err.contains("a tab"),
        "{err}"
    );
    assert!(Lexicon::parse("warfarin\tdrug\nmg\tunit\n", path).is_ok());
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    common::copy_files(&common::sample("tiny-clinical"), &ck);
    let blocks = ck.join("blocks.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&blocks).unwrap()).unwrap();
    let name = v["names"][1].as_str().unwrap().to_string();
    v["names"][1] = format!("{name}\nsecond line").into();
    std::fs::write(&blocks, v.to_string()).unwrap();
    let o = localist(&["eval", "-c", ck.to_str().unwrap(), "--lambda", "0"]);
    common::assert_fails_with(&o, &["blocks.json", "a line break"]);
}

/// Documents the base cannot read are refused by `specialists` as by `train`, `eval` and
/// `capture` (Chinese on the base, a character model, was routed as all `?` without a word).
#[test]
fn specialists_refuse_documents_their_base_cannot_read() {
    use localist::engine::jobs::specialists::{PoolJob, PoolRun};
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("zh.txt");
    std::fs::write(
        &docs,
        "你好世界，这是中文。\n\n这是第二个文件。\n\n第三个。\n\n第四个文件。\n",
    )
    .unwrap();
    let base = common::root().join("sample_models/pool-clinical-payments/base");
    let err = PoolRun::open(PoolJob::defaults(base, docs))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("zh.txt") && err.contains("'?'"), "{err}");
}

/// `train --resume` of a checkpoint whose training record cannot be read stops, naming it: it
/// restarted at step 0 and trained every step again, unsaid (1,503 steps for 3).
#[test]
fn a_resume_whose_training_record_cannot_be_read_stops() {
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    common::copy_files(&common::sample("tiny-shakespeare-l0"), &ck);
    common::edit_json(&ck.join("config.json"), |v| {
        v["training"]["steps_done"] = (-5).into()
    });
    let o = localist(&[
        "train",
        "--resume",
        ck.to_str().unwrap(),
        "--corpus",
        "assets/corpora/shakespeare_1mb.txt",
        "--steps",
        "1503",
        "--batch",
        "2",
        "--quiet",
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    common::assert_fails_with(&o, &["config.json", "\"training\" record", "steps_done"]);
}

/// A run on one block says that its ε and PF say nothing (eval said so, train did not), and
/// an unknown block in a rule lists the model's block names as a rule writes them (it said
/// "see the Blocks tab", on the command line too).
#[test]
fn a_one_block_run_is_warned_and_unknown_blocks_list_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let o = localist(&[
        "train",
        "--corpus",
        "assets/corpora/shakespeare_1mb.txt",
        "--blocks",
        "single",
        "--steps",
        "2",
        "--batch",
        "2",
        "--seq",
        "32",
        "--eval-every",
        "0",
        "--out",
        dir.path().join("one").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("ε reads 0 and PF 1"), "{}", stderr(&o));
    let rules = dir.path().join("r.rules");
    std::fs::write(
        &rules,
        "rule r \"\"\n  when query.block = dose\n  target block drug\n  bias 1\nend\n",
    )
    .unwrap();
    let o = localist(&[
        "rules",
        "check",
        rules.to_str().unwrap(),
        "-c",
        "sample_models/tiny-shakespeare-l1",
    ]);
    common::assert_fails_with(
        &o,
        &["unknown block \"dose\"", "\"window 0-7\", \"window 8-15\""],
    );
    assert!(!stderr(&o).contains("Blocks tab"), "{}", stderr(&o));
}

/// A checkpoint's recorded training corpus is checked against its recorded SHA-256 before
/// anything of the text is judged or quoted: a record pointing at another file (a hostile one
/// could name any file the user can read) had a character of it quoted in a warning first.
#[test]
fn a_recorded_corpus_that_changed_is_refused_before_a_word_of_it_is_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ck) = small_checkpoint(dir.path());
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, "密码密码密码 hunter2 ".repeat(200)).unwrap();
    common::edit_json(&ck.join("config.json"), |v| {
        v["training"]["corpus"] = serde_json::json!({"kind": "File", "path": secret})
    });
    let o = localist(&["eval", "-c", ck.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("is not the text it was trained on"), "{err}");
    for leaked in ["密", "hunter2", "outside the character tokenizer"] {
        assert!(!err.contains(leaked), "{leaked:?} in {err}");
    }
}

/// A training text that 100 steps read more than 10 times is learnt by heart before the
/// default second round (a 200-document corpus of 8 topics ended with 2 blocks): without
/// spacing flags its rounds start at step 50 and come every 25 steps, said on stderr and kept
/// in the log; a spacing given, or a larger text, keeps 100 and 100.
#[test]
fn a_small_text_gets_earlier_and_closer_recruitment_rounds() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("small.txt");
    let o = localist(&[
        "corpus-gen",
        "--topics",
        "4",
        "--documents",
        "200",
        "--document-words",
        "40",
        "--seed",
        "5",
        "--out",
        corpus.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = |name: &str, corpus: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let mut args = vec![
            "train",
            "--corpus",
            corpus,
            "--tokenizer",
            "word",
            "--recruit",
            "--steps",
            "3",
            "--quiet",
        ];
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let o = localist(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let log: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("recruitment.json")).unwrap())
                .unwrap();
        let config = &log["config"];
        (
            stderr(&o),
            config["warmup"].clone(),
            config["every"].clone(),
        )
    };
    // The rule reads the run's own step: at batch 4 × 64 a text is small under 100 · 4 · 64 /
    // 10 = 2,560 tokens, so 200 documents of 40 words (about 7,500 training tokens) are not;
    // at the default 16 × 64 (under 10,240) they are.
    let (said, warmup, every) = run("b4", corpus.to_str().unwrap(), &["--batch", "4"]);
    assert!(!said.contains("small training text"), "{said}");
    assert_eq!((warmup, every), (100.into(), 100.into()));
    let (said, warmup, every) = run("b16", corpus.to_str().unwrap(), &[]);
    assert!(
        said.contains("small training text") && said.contains("every 25 steps"),
        "{said}"
    );
    assert_eq!((warmup, every), (50.into(), 25.into()));
    let (said, _, every) = run(
        "chosen",
        corpus.to_str().unwrap(),
        &["--recruit-every", "100"],
    );
    assert!(!said.contains("small training text"), "{said}");
    assert_eq!(every, 100);
}

#[test]
fn a_resumed_run_without_corpus_goes_on_on_the_text_it_was_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("own.txt");
    let text = "The quick brown fox jumps over the lazy dog; pack my box with five dozen jugs.\n";
    std::fs::write(&corpus, text.repeat(300)).unwrap();
    let ck = dir.path().join("ck");
    let train = |extra: &[&str]| {
        let mut args = vec![
            "train",
            "--batch",
            "2",
            "--eval-every",
            "1",
            "--quiet",
            "--out",
        ];
        args.push(ck.to_str().unwrap());
        args.extend(extra);
        localist(&args)
    };
    let o = train(&["--corpus", corpus.to_str().unwrap(), "--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let config = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(ck.join("config.json")).unwrap()).unwrap()
    };
    let first = config();
    // No --corpus: its own text, not the bundled Shakespeare, said on stderr.
    let o = train(&["--resume", ck.to_str().unwrap(), "--steps", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("on the corpus it was trained on") && err.contains("own.txt"),
        "{err}"
    );
    let after = config();
    assert_eq!(after["training"]["corpus"], first["training"]["corpus"]);
    assert_eq!(
        after["training"]["corpus_sha256"],
        first["training"]["corpus_sha256"]
    );
    // The held-out curve goes on from the points before.
    let steps = |v: &serde_json::Value| -> Vec<u64> {
        (v["training"]["held_out"].as_array().unwrap().iter())
            .map(|p| p["step"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(steps(&after), vec![1, 2, 3], "{after}");

    // The text changed since: said, and the curve starts again on the new held-out tenth.
    std::fs::write(&corpus, text.to_uppercase().repeat(300)).unwrap();
    let o = train(&["--resume", ck.to_str().unwrap(), "--steps", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("not the text it was trained on"),
        "{}",
        stderr(&o)
    );
    assert_eq!(steps(&config()), vec![4], "{}", config());

    // A checkpoint that records no corpus is not resumed on the bundled text in silence.
    let mut cfg = config();
    cfg["training"]["corpus"] = serde_json::Value::Null;
    std::fs::write(ck.join("config.json"), cfg.to_string()).unwrap();
    let o = train(&["--resume", ck.to_str().unwrap(), "--steps", "5"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no training corpus recorded; give --corpus"),
        "{}",
        stderr(&o)
    );
}

/// An imported model worse than a uniform guess on the text (the random-weight fixture, 320
/// tokens) printed its perplexity as a plain row, without the warning our own checkpoints give.
#[test]
fn an_imported_model_worse_than_a_uniform_guess_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.txt");
    std::fs::write(&text, "the cat sat on the mat\n".repeat(200)).unwrap();
    let model = common::root().join("tests/fixtures/families/llama");
    let o = localist(&[
        "eval",
        "-c",
        model.to_str().unwrap(),
        "--corpus",
        text.to_str().unwrap(),
        "--lambda",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("is worse than a uniform guess over its 320 tokens"),
        "{err}"
    );
}

/// Standard output that cannot be written: `eval … > /dev/full` and `capture --format csv |
/// head -c 10` exited 101 with a panic ("failed printing to stdout"). A full device is an
/// error naming standard output; a reader that stopped ends the run with 141, as SIGPIPE would.
#[test]
fn standard_output_that_cannot_be_written_is_said_not_a_panic() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_localist");
    let ck = common::root().join("sample_models/tiny-shakespeare-l1");
    let ck = ck.to_str().unwrap();
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let o = Command::new(bin)
            .args(["eval", "-c", ck, "--lambda", "0,1"])
            .current_dir(common::root())
            .stdout(full)
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("error: writing to standard output"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let mut child = Command::new(bin)
        .args([
            "capture",
            "-c",
            ck,
            "--text",
            "To be, or not to be",
            "--format",
            "csv",
        ])
        .current_dir(common::root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 10];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    let o = child.wait_with_output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// `synth --out` into a folder holding the user's own `corpus.txt` replaced it without a word:
/// refused, the file kept; a folder an earlier synth wrote is written again.
#[test]
fn synth_replaces_only_what_an_earlier_synth_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::write(mine.join("corpus.txt"), "MY THESIS TEXT").unwrap();
    let synth = |out: &std::path::Path| {
        localist(&["synth", "--records", "5", "--out", out.to_str().unwrap()])
    };
    common::assert_fails_with(&synth(&mine), &["corpus.txt", "which synth did not write"]);
    assert_eq!(
        std::fs::read_to_string(mine.join("corpus.txt")).unwrap(),
        "MY THESIS TEXT"
    );
    let ours = dir.path().join("ours");
    for _ in 0..2 {
        let o = synth(&ours);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
