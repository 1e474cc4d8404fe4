//! What a user made is never destroyed by an output path, and a run refuses before it trains
//! when its output or its text cannot work: the real `localist` binary on the cases a review
//! tried as a new user would (train --out into a folder of notes deleted them; --out onto the
//! corpus hid it; audit report --out onto the rule file overwrote it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{assert_fails_with as fails_with, localist_in, stderr};

fn succeeds(o: &Output) {
    assert!(o.status.success(), "failed: {}", stderr(o));
}

/// A short corpus: enough for windows of 64 characters in both splits.
fn corpus(dir: &Path, name: &str) {
    let text = "To be, or not to be, that is the question: whether 'tis nobler in the mind.\n";
    std::fs::write(dir.join(name), text.repeat(40)).unwrap();
}

fn train<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "train", "--corpus", "text.txt", "--steps", "3", "--batch", "2", "--quiet", "--out", out,
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn train_never_replaces_a_folder_of_the_users_files_the_corpus_or_the_current_folder() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "text.txt");
    std::fs::create_dir(p.join("home")).unwrap();
    std::fs::write(p.join("home/thesis.txt"), "my thesis").unwrap();
    fails_with(
        &localist_in(p, &train("home", &[])),
        &["--out home", "thesis.txt"],
    );
    assert_eq!(
        std::fs::read_to_string(p.join("home/thesis.txt")).unwrap(),
        "my thesis"
    );

    // The folder holding the corpus being trained on.
    std::fs::create_dir(p.join("proj")).unwrap();
    corpus(&p.join("proj"), "corpus.txt");
    let o = localist_in(
        p,
        &[
            "train",
            "--corpus",
            "proj/corpus.txt",
            "--steps",
            "3",
            "--quiet",
            "--out",
            "proj",
        ],
    );
    fails_with(&o, &["corpus.txt", "would delete it"]);
    assert!(p.join("proj/corpus.txt").is_file());

    // The corpus file itself, a path below a file, the current folder: said before training.
    fails_with(
        &localist_in(p, &train("text.txt", &[])),
        &["is a file, not a folder"],
    );
    assert!(p.join("text.txt").is_file());
    fails_with(
        &localist_in(p, &train("text.txt/sub", &[])),
        &["text.txt is a file"],
    );
    fails_with(&localist_in(p, &train(".", &[])), &["current folder"]);
    assert!(!std::fs::read_dir(p).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with('.')));

    // A checkpoint folder is replaced by a new run, as before, also when a file manager has
    // left its settings there (nobody's work).
    succeeds(&localist_in(p, &train("ck", &[])));
    std::fs::write(p.join("ck/.DS_Store"), "Finder").unwrap();
    succeeds(&localist_in(p, &train("ck", &[])));
    assert!(p.join("ck/model.safetensors").is_file());

    // Resuming to no more steps than were trained: nothing would train, and the checkpoint
    // would be rewritten with this run's corpus recorded. Refused; the checkpoint unchanged.
    let before = std::fs::read(p.join("ck/config.json")).unwrap();
    fails_with(
        &localist_in(p, &train("ck", &["--resume", "ck"])),
        &["ck: has trained 3 steps already", "give more than 3"],
    );
    assert_eq!(std::fs::read(p.join("ck/config.json")).unwrap(), before);
}

#[test]
fn outputs_onto_an_input_are_refused_and_the_inputs_kept() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "text.txt");
    succeeds(&localist_in(p, &train("ck", &[])));
    let rules = "rule r1 \"\" when position 0 target positions 0 bias 1 end\n";
    std::fs::write(p.join("my.rules"), rules).unwrap();
    let o = localist_in(
        p,
        &[
            "audit", "report", "-c", "ck", "-r", "my.rules", "--out", "my.rules",
        ],
    );
    fails_with(&o, &["--out my.rules", "which this command reads"]);
    assert_eq!(std::fs::read_to_string(p.join("my.rules")).unwrap(), rules);
    let weights = std::fs::read(p.join("ck/model.safetensors")).unwrap();
    let o = localist_in(
        p,
        &[
            "capture",
            "-c",
            "ck",
            "--text",
            "To be",
            "-o",
            "ck/model.safetensors",
        ],
    );
    fails_with(&o, &["inside ck"]);
    assert_eq!(
        std::fs::read(p.join("ck/model.safetensors")).unwrap(),
        weights
    );
    let o = localist_in(p, &["corpus-gen", "--out", "c.txt", "--truth", "c.txt"]);
    fails_with(&o, &["--truth c.txt"]);
}

#[test]
fn eval_refuses_a_training_corpus_changed_since_training() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "text.txt");
    succeeds(&localist_in(p, &train("ck", &[])));
    succeeds(&localist_in(p, &["eval", "-c", "ck", "--lambda", "0"]));
    // The corpus is recorded as an absolute path: from another folder, whose own text.txt
    // holds another text, the model still reads the one it was trained on (relative, it read
    // the other one).
    std::fs::create_dir(p.join("elsewhere")).unwrap();
    let other = "Another text entirely, of other words and lines.\n".repeat(60);
    std::fs::write(p.join("elsewhere/text.txt"), &other).unwrap();
    let from_elsewhere = |extra: &[&str]| {
        let mut a = vec!["eval", "-c", "../ck", "--lambda", "0"];
        a.extend(extra);
        localist_in(&p.join("elsewhere"), &a)
    };
    succeeds(&from_elsewhere(&[]));
    // The text changed since training is refused, by its SHA-256.
    std::fs::write(p.join("text.txt"), &other).unwrap();
    fails_with(
        &from_elsewhere(&[]),
        &["not the text it was trained on", "--corpus"],
    );
    succeeds(&from_elsewhere(&["--corpus", "text.txt"]));
}

#[test]
fn lexicons_that_assign_nothing_or_name_the_reserved_block_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    corpus(p, "text.txt");
    succeeds(&localist_in(p, &train("ck", &["--tokenizer", "word"])));
    std::fs::write(p.join("empty.tsv"), "# nothing here\n\n").unwrap();
    let o = localist_in(
        p,
        &["blocks", "-c", "ck", "--lexicon", "empty.tsv", "--out", "b"],
    );
    fails_with(&o, &["empty.tsv", "assigns no word"]);
    std::fs::write(p.join("un.tsv"), "question\tunassigned\n").unwrap();
    let o = localist_in(
        p,
        &["blocks", "-c", "ck", "--lexicon", "un.tsv", "--out", "b"],
    );
    fails_with(&o, &["un.tsv:1", "reserved"]);
    assert!(!p.join("b").exists());
}

/// An output path that is a FIFO or a device is written in place, never replaced by a regular
/// file (`capture -o /dev/null` as root put a regular file where /dev/null stood, for every
/// program); a link to a file is followed, so the link stays and its file is replaced.
#[test]
fn a_fifo_or_a_link_as_output_is_written_through_not_replaced() {
    use localist::engine::export::write_atomic;
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if made.is_ok_and(|s| s.success()) {
        let path = fifo.clone();
        let reader = std::thread::spawn(move || std::fs::read(path).unwrap());
        write_atomic(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "the FIFO was replaced: {kind:?}");
    } else {
        eprintln!("no mkfifo here: the FIFO half of this test is skipped");
    }
    let target = dir.path().join("real.json");
    std::fs::write(&target, "old").unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    write_atomic(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    // A file replaced keeps its permissions.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    write_atomic(&target, b"newer").unwrap();
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
