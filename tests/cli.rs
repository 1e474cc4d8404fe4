//! The real `localist` binary on bad input: each case must exit non-zero with a message that
//! names the file, line or step, and leave no partial output behind.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_fails_with, stderr};

mod common;

fn localist(args: &[&str]) -> Output {
    common::localist_in(&common::root(), args)
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
fn a_text_the_tokenizer_cannot_read_is_refused_not_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    // Chinese under the 96-symbol character tokenizer: every character would be '?' (trained
    // anyway, it reported perplexity 1.36 and top-1 97.6%).
    let zh = dir.path().join("zh.txt");
    let line = "你好世界，这是一段中文文本。我们在这里训练模型。\n";
    std::fs::write(&zh, format!("An English title\n{}", line.repeat(40))).unwrap();
    let out = dir.path().join("ck");
    let o = localist(&train_args(zh.to_str().unwrap(), out.to_str().unwrap()));
    assert_fails_with(
        &o,
        &["zh.txt", "'?'", "\"你\"", "line 2", "--tokenizer word"],
    );
    assert!(!out.exists(), "a checkpoint was written");
    // The same text with word tokens trains.
    let mut args = train_args(zh.to_str().unwrap(), out.to_str().unwrap());
    args.extend(["--tokenizer", "word"]);
    let o = localist(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    // A model's word vocabulary on a text of other words: refused, naming the first word.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, "alpha beta gamma delta\n".repeat(200)).unwrap();
    let o = localist(&[
        "eval",
        "-c",
        "sample_models/tiny-clinical",
        "--corpus",
        other.to_str().unwrap(),
        "--lambda",
        "0",
    ]);
    assert_fails_with(&o, &["other.txt", "<unk>", "\"alpha\"", "line 1"]);
    // Some characters outside the 96 (an accented name in English text) only warn.
    let some = dir.path().join("some.txt");
    std::fs::write(
        &some,
        "The café on the corner sells bread and coffee.\n".repeat(80),
    )
    .unwrap();
    let out2 = dir.path().join("ck2");
    let o = localist(&train_args(some.to_str().unwrap(), out2.to_str().unwrap()));
    assert!(o.status.success(), "{}", stderr(&o));
    // (The text is one sentence repeated: the only warning is that its held-out part repeats.)
    let err = stderr(&o);
    let warnings = err.lines().filter(|l| l.contains("warning"));
    assert!(
        warnings.clone().count() == 1
            && warnings
                .clone()
                .all(|l| l.contains("repeats the training text")),
        "{err}"
    );
    // A capture of such text says the same (it captured eight '?' without a word).
    let ck = "sample_models/tiny-shakespeare-l0";
    let o = localist(&["capture", "-c", ck, "--text", "你好世界，这是中文"]);
    assert_fails_with(&o, &["the text", "'?'", "\"你\""]);
    let o = localist(&[
        "capture",
        "-c",
        ck,
        "--text",
        "Über café naïve résumé — déjà vu",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("warning: the text"), "{}", stderr(&o));
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
    // Windows kept for the unassigned queries need the windows' width.
    let mut c = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
    c.extend(["--recruit", "--recruit-windows-throughout"]);
    assert_fails_with(&localist(&c), &["--recruit-start-windows W"]);
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
    // A block name with a bidirectional override would be saved into a checkpoint that then
    // fails its own check: refused at the line.
    std::fs::write(&lex, "warfarin\tdr\u{202e}ug\n").unwrap();
    assert_fails_with(&localist(&a), &["blocks.tsv:1", "U+202E"]);
    assert!(!out.exists());
}

/// A run into a folder that holds a checkpoint diverges at once (a learning rate of 1e6): the
/// error names the step and the folder keeps its checkpoint, byte for byte, which evaluates.
#[test]
fn nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    let good = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
    assert!(localist(&good).status.success());
    let weights = std::fs::read(out.join("model.safetensors")).unwrap();
    let mut a = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
    a[4] = "8"; // --steps
    a.extend(["--lr", "1e6", "--checkpoint-every", "1"]);
    let o = localist(&a);
    assert_fails_with(&o, &["training step", "after 2 steps, is kept as it was"]);
    let err = stderr(&o);
    assert!(
        err.contains("not finite") || err.contains("diverged"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(out.join("model.safetensors")).unwrap(),
        weights
    );
    let eval = localist(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--windows",
        "2",
        "--json",
    ]);
    assert!(
        eval.status.success(),
        "the kept checkpoint does not evaluate: {}",
        stderr(&eval)
    );
}

/// A run that diverges (a learning rate of 1e3 or 1e5) stops at the step with an error, and
/// whatever `--checkpoint-every` left on disk loads: no NaN or infinite weight is ever saved.
#[test]
fn a_diverging_run_never_saves_non_finite_weights() {
    let dir = tempfile::tempdir().unwrap();
    for (lr, every) in [("1e3", "3"), ("1e5", "1"), ("100", "1")] {
        let out = dir.path().join(format!("ck-{lr}"));
        let mut a = train_args("assets/corpora/shakespeare_1mb.txt", out.to_str().unwrap());
        a[4] = "40"; // --steps
        a.extend(["--lr", lr, "--checkpoint-every", every, "--eval-every", "0"]);
        let o = localist(&a);
        assert_fails_with(&o, &["training step", "diverged"]);
        if out.exists() {
            let loaded =
                localist::model::checkpoint::load_checkpoint(&out, &candle_core::Device::Cpu);
            assert!(loaded.is_ok(), "--lr {lr}: {:?}", loaded.err());
            assert!(stderr(&o).contains("is kept as it was"), "{}", stderr(&o));
            // Its weights have been measured on a batch: they score.
            let eval = localist(&[
                "eval",
                "--checkpoint",
                out.to_str().unwrap(),
                "--windows",
                "2",
            ]);
            assert!(eval.status.success(), "--lr {lr}: {}", stderr(&eval));
        }
    }
}

/// A block map of one block cannot tell localist attention from distributed (every key is in
/// the query's block: ε 0, PF 1 whatever the model does). `blocks` refuses to write one, and
/// `eval` warns about a checkpoint that has one (here, a hand-edited `blocks.json`).
#[test]
fn a_block_map_of_one_block_is_refused_or_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("one");
    let o = localist(&[
        "blocks",
        "-c",
        "sample_models/tiny-clinical",
        "--kmeans",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails_with(&o, &["not written", "in one block", "--kmeans 2 or more"]);
    assert!(!out.exists());
    let edited = dir.path().join("edited");
    copy_dir(Path::new("sample_models/tiny-clinical"), &edited);
    let path = edited.join("blocks.json");
    let mut map: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let n = map["token_block"].as_array().unwrap().len();
    map["token_block"] = serde_json::json!(vec![0; n]);
    std::fs::write(&path, serde_json::to_string(&map).unwrap()).unwrap();
    let o = localist(&["eval", "-c", edited.to_str().unwrap(), "--windows", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning") && stderr(&o).contains("in one block"),
        "{}",
        stderr(&o)
    );
    // The bundled model's own map has its blocks: no warning.
    let o = localist(&[
        "eval",
        "-c",
        "sample_models/tiny-clinical",
        "--windows",
        "2",
    ]);
    assert!(!stderr(&o).contains("in one block"), "{}", stderr(&o));
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

/// `--summaries heads`: one summary a head (the means of its per-query rows, which are left
/// out), the same document means as the full capture; refused with CSV.
#[test]
fn capture_summaries_of_heads_are_the_means_of_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ck = trained_checkpoint(dir.path());
    let ck = ck.to_str().unwrap();
    let text = "To be, or not to be, that is the question";
    let doc = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["capture", "-c", ck, "--text", text, "--lambda", "0.5"];
        args.extend(extra);
        let o = localist(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let (rows, heads) = (doc(&[]), doc(&["--summaries", "heads"]));
    assert!(rows.get("head_summaries").is_none());
    let f = |v: &serde_json::Value| v.as_f64().unwrap();
    for key in ["mean_entropy_bits", "mean_off_block_mass"] {
        assert!((f(&rows[key]) - f(&heads[key])).abs() < 1e-9, "{key}");
    }
    let summaries = heads["head_summaries"].as_array().unwrap();
    let full = rows["capture"]["heads"].as_array().unwrap();
    assert_eq!(summaries.len(), full.len());
    let mean = |v: &serde_json::Value| {
        let v = v.as_array().unwrap();
        v.iter().map(f).sum::<f64>() / v.len() as f64
    };
    for ((s, r), h) in summaries
        .iter()
        .zip(full)
        .zip(heads["capture"]["heads"].as_array().unwrap())
    {
        assert_eq!((&s["layer"], &s["head"]), (&r["layer"], &r["head"]));
        assert!((f(&s["mean_entropy_bits"]) - mean(&r["entropy_bits"])).abs() < 1e-6);
        assert!((f(&s["mean_off_block_mass"]) - mean(&r["off_block_mass"])).abs() < 1e-6);
        let mass: f64 = s["block_mass"].as_array().unwrap().iter().map(f).sum();
        assert!((mass - 1.0).abs() < 1e-4, "{s}");
        for rowwise in ["entropy_bits", "off_block_mass", "margin", "block_mass"] {
            assert_eq!(h[rowwise].as_array().unwrap().len(), 0, "{rowwise}");
        }
        assert_eq!(h["attention"], r["attention"]);
    }
    let o = localist(&[
        "capture",
        "-c",
        ck,
        "--text",
        text,
        "--summaries",
        "heads",
        "--format",
        "csv",
    ]);
    assert_fails_with(&o, &["--summaries heads writes JSON"]);
}

#[test]
fn capture_keeps_only_the_heads_rows_and_grid_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let ck = trained_checkpoint(dir.path());
    let ck = ck.to_str().unwrap();
    let text = "To be, or not to be, that is the question";
    let json = dir.path().join("zoom.json");
    let o = localist(&[
        "capture",
        "-c",
        ck,
        "--text",
        text,
        "--heads",
        "1.2,0.0",
        "--rows",
        "4..10",
        "--keys",
        "2..8",
        "--grid",
        "0",
        "-o",
        json.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let cap = &doc["capture"];
    let t = doc["tokens"].as_array().unwrap().len();
    assert_eq!(cap["layout"]["rows"], serde_json::json!([4, 10]));
    for hc in cap["heads"].as_array().unwrap() {
        let kept = [(1, 2), (0, 0)]
            .contains(&(hc["layer"].as_u64().unwrap(), hc["head"].as_u64().unwrap()));
        // Rows 4..10 × keys 2..8 for the two heads asked for, nothing for the others; every
        // head keeps its summaries for every token, and no logits are written.
        assert_eq!(
            hc["attention"].as_array().unwrap().len(),
            if kept { 36 } else { 0 }
        );
        assert_eq!(hc["entropy_bits"].as_array().unwrap().len(), t);
    }
    assert_eq!(cap["logits"].as_array().unwrap().len(), 0);
    // A pooled grid: at most 4 × 4 cells per head.
    let o = localist(&[
        "capture", "-c", ck, "--text", text, "--grid", "4", "--format", "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let rows = out.lines().filter(|l| !l.is_empty()).count() - 1;
    let g = t.div_ceil(t.div_ceil(4));
    // One row per visible cell: the lower triangle with its diagonal, for each of 8 heads.
    assert_eq!(rows, 8 * g * (g + 1) / 2, "{t} tokens, a {g} × {g} grid");
    // Heads, rows and ranges that do not exist are named.
    let o = localist(&["capture", "-c", ck, "--text", text, "--heads", "5.1"]);
    assert_fails_with(&o, &["head 5.1 does not exist", "2 layers"]);
    let o = localist(&["capture", "-c", ck, "--text", text, "--rows", "9..3"]);
    assert_fails_with(&o, &["--rows", "9..3 is empty"]);
    let o = localist(&["capture", "-c", ck, "--text", text, "--heads", "one"]);
    assert_fails_with(&o, &["'one' is not LAYER.HEAD"]);
    // Ranges past the text are named as asked, not as cut to the text.
    let o = localist(&["capture", "-c", ck, "--text", text, "--rows", "500..600"]);
    assert_fails_with(&o, &["rows 500..600 asked for lie outside", "rows run 0.."]);
    let o = localist(&[
        "capture", "-c", ck, "--text", text, "--rows", "1..3", "--keys", "3..9",
    ]);
    assert_fails_with(
        &o,
        &["keys 3..9", "rows 1..3", "sees only the keys up to itself"],
    );
    let o = localist(&["capture", "-c", ck, "--text", text, "--rows", "1..600"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(said.contains("rows 1..600 asked for; kept 1.."), "{said}");
}

/// A two-step checkpoint on the bundled corpus, at `dir/ck`.
fn trained_checkpoint(dir: &Path) -> PathBuf {
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

/// `blocks --communities TEXT` gives a checkpoint the co-occurrence communities recruitment
/// draws its candidates from; on the bundled clinical model and its corpus they are the
/// lexicon's content categories (ARI ≥ 0.9). A text that is not there is named.
#[test]
fn communities_blocks_are_the_lexicon_categories_of_the_clinical_corpus() {
    use localist::train::recruit::adjusted_rand_index;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("comm");
    let clinical = root().join("sample_models/tiny-clinical");
    let communities = |text: &str, out: &Path| {
        localist(&[
            "blocks",
            "-c",
            clinical.to_str().unwrap(),
            "--communities",
            text,
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let o = communities("synthetic:4000", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    let syn = dir.path().join("syn");
    let o = localist(&["synth", "--records", "4000", "-o", syn.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |p: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let blocks = read(out.join("blocks.json"));
    let config = read(out.join("config.json"));
    let vocab: Vec<&str> = config["tokenizer"]["vocab"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or(""))
        .collect();
    let token_block = blocks["token_block"].as_array().unwrap();
    let (mut found, mut want) = (Vec::new(), Vec::new());
    let lexicon = std::fs::read_to_string(syn.join("lexicon.tsv")).unwrap();
    let mut categories: Vec<&str> = Vec::new();
    for line in lexicon.lines() {
        let (word, category) = line.split_once('\t').unwrap();
        let Some(id) = vocab.iter().position(|v| *v == word) else {
            continue;
        };
        if category == "function" {
            continue;
        }
        if !categories.contains(&category) {
            categories.push(category);
        }
        found.push(token_block[id].as_u64().unwrap() as usize);
        want.push(categories.iter().position(|c| *c == category).unwrap());
    }
    let ari = adjusted_rand_index(&found, &want);
    assert!(
        found.len() > 150 && ari >= 0.9,
        "ARI {ari:.3} over {} words",
        found.len()
    );
    assert_fails_with(
        &communities("/no/such/text.txt", &dir.path().join("none")),
        &["/no/such/text.txt"],
    );
}

/// `<unk>` stands for every word the model does not know; on a text where a quarter of the words
/// are unknown it formed a community with the comma (`<unk>·,`). It stays unassigned.
#[test]
fn unknown_words_form_no_community() {
    let dir = tempfile::tempdir().unwrap();
    let syn = dir.path().join("syn");
    let o = localist(&["synth", "--records", "2000", "-o", syn.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(syn.join("corpus.txt")).unwrap();
    let mut n = 0u64;
    let mangled: String = text
        .split(' ')
        .map(|w| {
            n += 1;
            if n.is_multiple_of(4) && !w.contains('\n') {
                format!("zz{}", n * 7919 % 100_003)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let corpus = dir.path().join("unknown.txt");
    std::fs::write(&corpus, mangled).unwrap();
    let out = dir.path().join("comm");
    let o = localist(&[
        "blocks",
        "-c",
        root().join("sample_models/tiny-clinical").to_str().unwrap(),
        "--communities",
        corpus.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside this model's vocabulary"),
        "{}",
        stderr(&o)
    );
    let blocks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("blocks.json")).unwrap()).unwrap();
    assert_eq!(blocks["token_block"][0], 0, "<unk> (id 0) in {blocks}");
    let names = blocks["names"].to_string();
    assert!(!names.contains("<unk>"), "{names}");
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

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

#[test]
fn rules_check_lists_errors_with_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("assets/rules/clinical_payments.rules");
    let ck = root().join("sample_models/tiny-clinical");
    let ok = localist(&[
        "rules",
        "check",
        example.to_str().unwrap(),
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("6 rules, 5 on, no errors"));
    // Two broken rules: both are listed, each with its place.
    let bad = dir.path().join("bad.rules");
    std::fs::write(
        &bad,
        "rule a\n when query.token = mg\n target block drug\n bias 1\nend\n\
         rule b\n when query.block = dose\n target block drug\n fidelity 2\nend\n",
    )
    .unwrap();
    let o = localist(&["rules", "check", bad.to_str().unwrap()]);
    let name = bad.display().to_string();
    assert_fails_with(
        &o,
        &[
            &format!("{name}:2:21: expected a quoted token, found `mg`"),
            &format!("{name}:9:11: fidelity must lie strictly between 0 and 1"),
            "rejected whole (2 error(s))",
        ],
    );
    // Unknown names are found against a model.
    let unknown = dir.path().join("unknown.rules");
    std::fs::write(
        &unknown,
        "rule a\n when query.block = dosage\n target block drug\n bias 1\nend\n",
    )
    .unwrap();
    let o = localist(&[
        "rules",
        "check",
        unknown.to_str().unwrap(),
        "-c",
        ck.to_str().unwrap(),
    ]);
    assert_fails_with(&o, &[":2:21: unknown block \"dosage\"", "does not fit"]);
}

#[test]
fn eval_reports_pf_per_rule_and_audit_reports_verify_or_name_the_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let example = root().join("assets/rules/clinical_payments.rules");
    let ck = root().join("sample_models/tiny-clinical");
    let o = localist(&[
        "eval",
        "-c",
        ck.to_str().unwrap(),
        "--windows",
        "4",
        "--rules",
        example.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules = v["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 6);
    let dose = rules.iter().find(|r| r["id"] == "dose_to_drug").unwrap();
    assert!(dose["fired"].as_u64().unwrap() > 0);
    assert!(dose["pf_mass"].as_f64().unwrap() >= 0.9);

    let out = dir.path().join("report.html");
    let o = localist(&[
        "audit",
        "report",
        "-c",
        ck.to_str().unwrap(),
        "-r",
        example.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("Rule-to-block mapping") && html.contains("data:image/png;base64,"));
    let json = out.with_extension("json");
    let ok = localist(&["audit", "verify", json.to_str().unwrap()]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("intact"));
    // Tamper with a log entry (and re-seal the report's own hash to hide it): the chain names
    // the entry.
    let mut report: localist::engine::audit::AuditReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    report.log.entries[1].rule_id = "something_else".into();
    let report = report.seal();
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, serde_json::to_string(&report).unwrap()).unwrap();
    let o = localist(&["audit", "verify", forged.to_str().unwrap()]);
    assert_fails_with(
        &o,
        &[
            "log entry 1",
            "altered after it was written",
            "1 problem(s)",
        ],
    );
    // Not a report at all.
    let o = localist(&["audit", "verify", example.to_str().unwrap()]);
    assert_fails_with(&o, &["not an audit report"]);
}

#[test]
fn specialists_reject_an_empty_document_collection() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n\n\n").unwrap();
    let base = root().join("sample_models/tiny-clinical");
    let out = dir.path().join("pool");
    let o = localist(&[
        "specialists",
        "--base",
        base.to_str().unwrap(),
        "--docs",
        empty.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails_with(&o, &["empty.txt", "no documents found"]);
    assert!(!out.exists());
}

#[test]
fn non_finite_and_absurd_float_flags_are_refused_with_the_flag_named() {
    let ck = root().join("sample_models/tiny-clinical");
    let ck = ck.to_str().unwrap();
    for (flag, value, want) in [
        ("--tau", "nan", "finite"),
        ("--tau", "1e-300", "0.001"),
        ("--tau", "-inf", "finite"),
        ("--lambda", "0,NaN", "finite"),
    ] {
        let o = localist(&["eval", "-c", ck, &format!("{flag}={value}")]);
        assert_fails_with(&o, &[flag, want]);
    }
    let o = localist(&[
        "eval",
        "-c",
        ck,
        "--lambda",
        "0.5",
        "--schedule",
        "power:nan",
    ]);
    assert_fails_with(&o, &["--schedule power:nan", "γ must be a finite number"]);
    let o = localist(&["capture", "-c", ck, "--text", "x", "--schedule=power:-2"]);
    assert_fails_with(&o, &["--schedule power:-2", "[0, 64]"]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    for (flag, value, want) in [
        ("--eta", "nan", "finite"),
        ("--lr", "inf", "finite"),
        ("--lr", "0", "(0, 1000000]"),
        ("--mu-anchor", "-1", "[0, 1000000]"),
        ("--mu-rule", "NaN", "finite"),
        ("--recruit-delta", "inf", "finite"),
        ("--recruit-lambda", "nan", "finite"),
    ] {
        let mut a = train_args("synthetic:50", out.to_str().unwrap());
        let pair = format!("{flag}={value}");
        a.push(&pair);
        assert_fails_with(&localist(&a), &[flag, want]);
    }
    let o = localist(&[
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--clinical-fraction",
        "nan",
    ]);
    assert_fails_with(&o, &["--clinical-fraction", "finite"]);
    assert!(!out.exists());
}

#[test]
fn sizes_beyond_the_model_or_the_memory_limit_are_refused_with_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    let o = out.to_str().unwrap();
    let clinical = root().join("sample_models/tiny-clinical");
    let clinical = clinical.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["--seq", "100000"], vec!["--seq", "100000", "4096"]),
        (vec!["--seq", "1"], vec!["--seq", "between 2"]),
        (
            vec!["--seq", "65", "--resume", clinical],
            vec!["--seq", "64 positions"],
        ),
        (
            vec!["--batch", "0"],
            vec!["--batch", "between 1 and 65536", "got 0"],
        ),
        (vec!["--batch", "1000000000"], vec!["--batch", "1000000000"]),
        (
            vec!["--batch", "4000", "--seq", "1024"],
            vec![
                "--batch 4000 × --seq 1024",
                "per training step",
                "the limit is 4.0 GiB",
            ],
        ),
    ];
    for (extra, want) in cases {
        let mut a = vec![
            "train",
            "--corpus",
            "synthetic:50",
            "--steps",
            "2",
            "--quiet",
            "--out",
            o,
        ];
        if !extra.contains(&"--batch") {
            a.extend(["--batch", "2"]);
        }
        a.extend(extra.iter().copied());
        assert_fails_with(&localist(&a), &want);
        assert!(!out.exists(), "{extra:?} wrote a checkpoint");
    }
    let o = localist(&["eval", "-c", clinical, "--windows", "0"]);
    assert_fails_with(&o, &["--windows must be at least 1"]);
    let o = localist(&["eval", "-c", clinical, "--clusters", "1000000"]);
    assert_fails_with(&o, &["--clusters 1000000", "limit of 256"]);
    let ck_out = dir.path().join("blocks");
    let b = ck_out.to_str().unwrap();
    let o = localist(&["blocks", "-c", clinical, "--kmeans", "1000000", "--out", b]);
    assert_fails_with(&o, &["--kmeans 1000000", "limit of 256"]);
    let o = localist(&["blocks", "-c", clinical, "--kmeans", "0", "--out", b]);
    assert_fails_with(&o, &["--kmeans must be at least 1"]);
    let shakespeare = root().join("sample_models/tiny-shakespeare-l0");
    let s = shakespeare.to_str().unwrap();
    let o = localist(&["blocks", "-c", s, "--kmeans", "200", "--out", b]);
    assert_fails_with(&o, &["--kmeans 200", "96 tokens"]);
    assert!(!ck_out.exists());
}

#[test]
fn inputs_a_review_found_misread_are_refused_or_read_as_meant() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let out = p.join("ck");
    let o = out.to_str().unwrap();
    // A window as wide as the context is one block: nothing local to show.
    let mut a = train_args("synthetic:50", o);
    a.extend(["--blocks", "windows:100000"]);
    assert_fails_with(
        &localist(&a),
        &["windows of 100000", "at most 64", "single"],
    );
    // A file named like a generator is not silently replaced by the generator.
    std::fs::write(p.join("synthetic"), "my own text\n".repeat(50)).unwrap();
    let shadowed = common::localist_in(p, &train_args("synthetic", o));
    assert_fails_with(&shadowed, &["'synthetic' names a built-in", "./synthetic"]);
    assert!(!out.exists());
    // A sweep's grid: each value trains a model, so none twice and not thousands.
    let sweep = |grid: &str| {
        let d = p.join("sweep").to_str().unwrap().to_string();
        localist(&["sweep", "--lambdas", grid, "--steps", "2", "--out-dir", &d])
    };
    assert_fails_with(&sweep("0,0.5,0.5"), &["names 0.5 twice"]);
    let many: Vec<String> = (0..=200)
        .map(|i| format!("{}", f64::from(i) / 200.0))
        .collect();
    assert_fails_with(&sweep(&many.join(",")), &["201 values", "at most 101"]);
    assert!(!p.join("sweep").exists());

    // A separator that is never a line would make one document of the whole file.
    let docs = p.join("docs.txt");
    std::fs::write(&docs, "dose of drug\n---\ngiven to patient\n").unwrap();
    let base = root().join("sample_models/tiny-clinical");
    let pool = p.join("pool");
    let specialists = |sep: &str| {
        localist(&[
            "specialists",
            "--base",
            base.to_str().unwrap(),
            "--docs",
            docs.to_str().unwrap(),
            "--separator",
            sep,
            "--out",
            pool.to_str().unwrap(),
        ])
    };
    assert_fails_with(&specialists("NEVER"), &["docs.txt", "separator \"NEVER\""]);
    assert!(!pool.exists());

    // Invisible bidirectional and control characters in a rule file are named, not printed.
    let rules = std::fs::read_to_string(root().join("assets/rules/clinical_payments.rules"))
        .unwrap()
        .replacen("belongs to\"", "belongs \u{202e}to\"", 1);
    assert!(rules.contains('\u{202e}'));
    std::fs::write(p.join("bidi.rules"), rules).unwrap();
    let b = localist(&["rules", "check", p.join("bidi.rules").to_str().unwrap()]);
    assert_fails_with(&b, &["bidi.rules:", "U+202E (RIGHT-TO-LEFT OVERRIDE)"]);
    assert!(
        !stderr(&b).contains('\u{202e}'),
        "printed raw: {}",
        stderr(&b)
    );

    // A rule whose ranges run past the model would read as acting on more than it does.
    let over = "rule r1 \"x\"\n when query.block = dose\n target previous block drug\n \
                layers 0..9\n heads all\n bias 1\nend\n";
    std::fs::write(p.join("over.rules"), over).unwrap();
    let r = localist(&[
        "rules",
        "check",
        p.join("over.rules").to_str().unwrap(),
        "-c",
        base.to_str().unwrap(),
    ]);
    assert_fails_with(
        &r,
        &["over.rules:4:2", "acts on layers 0..9", "2 layers (0..1)"],
    );

    // The optimizer state is read by a resumed run only: a damaged one does not stop eval.
    let ck = p.join("tiny");
    copy_dir(&base, &ck);
    std::fs::write(ck.join("optimizer.safetensors"), "not a safetensors file").unwrap();
    let e = localist(&["eval", "--checkpoint", ck.to_str().unwrap()]);
    assert!(e.status.success(), "{}", stderr(&e));
    // A loop of links is not "missing".
    std::fs::remove_file(ck.join("model.safetensors")).unwrap();
    std::os::unix::fs::symlink("model.safetensors", ck.join("model.safetensors")).unwrap();
    let e = localist(&["eval", "--checkpoint", ck.to_str().unwrap()]);
    assert_fails_with(&e, &["model.safetensors", "symbolic links"]);
    assert!(!stderr(&e).contains("missing"), "{}", stderr(&e));

    // A remembered thread count the machine cannot have is measured again (100,000 made the
    // studio's worker fail to start its pool, on every restart).
    let config = p.join("config");
    let capture = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_localist"))
            .args([
                "capture",
                "-c",
                base.to_str().unwrap(),
                "--text",
                "dose of drug",
            ])
            .env("LOCALIST_CONFIG_DIR", &config)
            .output()
            .unwrap()
    };
    assert!(capture().status.success());
    let file = config.join("threads.json");
    // (A one-CPU machine has nothing to measure and writes no file.)
    if std::thread::available_parallelism().unwrap().get() > 1 {
        let mut choice: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let cpus = choice["cpus"].as_u64().unwrap();
        choice["threads"] = 100_000.into();
        std::fs::write(&file, choice.to_string()).unwrap();
        let again = capture();
        assert!(again.status.success(), "{}", stderr(&again));
        let chosen: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert!(
            (1..=cpus).contains(&chosen["threads"].as_u64().unwrap()),
            "{chosen}"
        );
    }

    // An audit report of a text the model cannot read would report rules that never fired.
    let report = p.join("report.html");
    let r = localist(&[
        "audit",
        "report",
        "--checkpoint",
        base.to_str().unwrap(),
        "--rules",
        root()
            .join("assets/rules/clinical_payments.rules")
            .to_str()
            .unwrap(),
        "--text",
        "中文字 中文 日本語",
        "--out",
        report.to_str().unwrap(),
    ]);
    assert_fails_with(&r, &["the text", "outside this model's vocabulary"]);
    assert!(!report.exists());
}

#[test]
fn devices_folders_and_missing_files_are_named_once_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ck");
    let o = out.to_str().unwrap();
    let folder = dir.path().to_str().unwrap();
    for (corpus, want) in [("/dev/zero", "character device"), (folder, "a folder")] {
        let a = train_args(corpus, o);
        assert_fails_with(&localist(&a), &[corpus, "not a regular file", want]);
    }
    let missing = dir.path().join("missing.txt");
    let m = missing.to_str().unwrap();
    let err = stderr(&localist(&train_args(m, o)));
    assert!(err.contains("missing.txt: no such file"), "{err}");
    assert_eq!(
        err.matches("no such file").count(),
        1,
        "cause repeated: {err}"
    );
    assert_eq!(err.to_lowercase().matches("os error").count(), 0, "{err}");
    for rules in ["/dev/zero", folder] {
        let r = localist(&["rules", "check", rules]);
        assert_fails_with(&r, &[rules, "not a regular file"]);
        let mut a = train_args("synthetic:50", o);
        a.extend(["--rules", rules]);
        assert_fails_with(&localist(&a), &[rules, "not a regular file"]);
    }
    let r = localist(&["rules", "check", m]);
    let err = stderr(&r);
    assert_eq!(err.matches("no such file").count(), 1, "{err}");
    assert!(!out.exists());
}

#[test]
fn a_rules_file_with_a_byte_order_mark_is_accepted_and_garbage_is_listed_briefly() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read(root().join("assets/rules/clinical_payments.rules")).unwrap();
    let bom = dir.path().join("bom.rules");
    std::fs::write(&bom, [b"\xEF\xBB\xBF".as_slice(), &example].concat()).unwrap();
    let ck = root().join("sample_models/tiny-clinical");
    let o = localist(&[
        "rules",
        "check",
        bom.to_str().unwrap(),
        "-c",
        ck.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("6 rules, 5 on, no errors"));
    let garbage = dir.path().join("garbage.rules");
    std::fs::write(&garbage, "@".repeat(1 << 20)).unwrap();
    let o = localist(&["rules", "check", garbage.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(err.len() < 16 << 10, "{} bytes of errors", err.len());
    assert!(
        err.contains(&format!("… and {} more errors", (1 << 20) - 50)),
        "{err}"
    );
    assert!(
        err.contains(&format!("rejected whole ({} error(s))", 1 << 20)),
        "{err}"
    );
}

/// `train --from` refuses the flags of our own training it would ignore (it ignored
/// `--trainable` and `--tokenizer` without a word), naming both flags, before reading anything.
#[test]
fn train_from_refuses_the_flags_it_does_not_use() {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/families/llama");
    for (flag, value) in [
        ("--trainable", "head.bias"),
        ("--tokenizer", "word"),
        ("--preset", "small"),
        ("--lr-schedule", "cosine"),
        ("--keep-best", ""),
        ("--no-optimizer-state", ""),
    ] {
        let mut args = vec![
            "train",
            "--from",
            base,
            "--steps",
            "1",
            "--out",
            "/nonexistent/x",
            flag,
        ];
        if !value.is_empty() {
            args.push(value);
        }
        assert_fails_with(&localist(&args), &["--from", flag, "cannot be used with"]);
    }
}

/// `train --from` fine-tunes a pretrained decoder and writes an adapter folder that the other
/// commands open like a model; bad settings are named before anything runs.
#[test]
fn train_from_a_pretrained_decoder_writes_an_adapter_that_opens_as_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/families/llama");
    let corpus = dir.path().join("text.txt");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/corpora/shakespeare_1mb.txt"
    ))
    .unwrap();
    std::fs::write(&corpus, &text[..30_000]).unwrap();
    let out = dir.path().join("tuned");
    let args = |adapt: &'static str| -> Vec<String> {
        [
            "train",
            "--from",
            base,
            "--corpus",
            corpus.to_str().unwrap(),
            "--blocks",
            "kmeans:4",
            "--adapt",
            adapt,
            "--lambda-train",
            "1",
            "--steps",
            "6",
            "--seq",
            "32",
            "--batch",
            "2",
            "--quiet",
            "--dial-curve",
            "0,0.5",
            "--out",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let bad = args("lora:2:attn_x");
    let o = localist(&bad.iter().map(String::as_str).collect::<Vec<_>>());
    assert_fails_with(&o, &["unknown projection 'attn_x'"]);
    assert!(!out.exists());
    let good = args("lora:2");
    let o = localist(&good.iter().map(String::as_str).collect::<Vec<_>>());
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}\n{said}", stderr(&o));
    for needle in [
        "held-out before",
        "untuned under the dial λ_inf = 0.00",
        "untuned under the dial λ_inf = 0.50",
        "fine-tuned 6 steps",
        "adapter:",
    ] {
        assert!(said.contains(needle), "{needle}: {said}");
    }
    // λ_inf = 0 of the curve is the untuned model: the same perplexity as "before".
    let perplexity_after = |key: &str| {
        let line = said.lines().find(|l| l.contains(key)).unwrap();
        let at = line.find("perplexity ").unwrap() + "perplexity ".len();
        line[at..].split(',').next().unwrap().to_string()
    };
    assert_eq!(
        perplexity_after("held-out before"),
        perplexity_after("λ_inf = 0.00")
    );
    for f in ["adapter.json", "adapter.safetensors", "blocks.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    let o = localist(&[
        "capture",
        "-c",
        out.to_str().unwrap(),
        "--text",
        "To be, or not to be",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // eval reads the blocks the adapter was trained towards (it clustered 16 of its own, while
    // capture and the studio read the adapter's), unless --clusters asks for others.
    let eval = |extra: &[&str]| {
        let mut a = vec!["eval", "-c", out.to_str().unwrap(), "--lambda", "0"];
        a.extend(["--corpus", corpus.to_str().unwrap()]);
        a.extend(extra);
        let o = localist(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    let said = eval(&[]);
    assert!(said.contains("blocks: k-means k=4 (5 blocks)"), "{said}");
    let said = eval(&["--clusters", "2"]);
    assert!(said.contains("blocks: k-means k=2 (3 blocks)"), "{said}");
    // Tuned again into its own folder, the adapter named itself as its base and could never be
    // opened again: refused, and the adapter is as it was.
    let before = std::fs::read(out.join("adapter.json")).unwrap();
    let mut again = good.clone();
    let from = again.iter().position(|a| a == "--from").unwrap() + 1;
    again[from] = out.to_str().unwrap().to_string();
    let o = localist(&again.iter().map(String::as_str).collect::<Vec<_>>());
    assert_fails_with(&o, &["--out", "which this command reads"]);
    assert_eq!(std::fs::read(out.join("adapter.json")).unwrap(), before);
}

#[test]
fn a_run_that_learns_a_small_corpus_by_heart_is_warned_and_keep_best_ends_on_its_best_step() {
    let dir = tempfile::tempdir().unwrap();
    // A corpus with nothing to learn but its lines.
    let corpus = common::learned_by_heart(dir.path());
    let c = corpus.to_str().unwrap();
    let run = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec![
            "train",
            "--corpus",
            c,
            "--tokenizer",
            "word",
            "--steps",
            "120",
            "--lr",
            "3e-3",
            "--seq",
            "32",
            "--quiet",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend(extra);
        let o = localist(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let cfg: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap())
                .unwrap();
        (String::from_utf8_lossy(&o.stdout).to_string(), cfg)
    };
    // --keep-last: the run ends on its last step's weights, and the warning says what to do.
    let (plain, cfg) = run("plain", &["--keep-last"]);
    assert!(
        plain.contains("warning: held-out perplexity rose from"),
        "{plain}"
    );
    assert!(!plain.contains("where the run ended)"), "{plain}");
    assert!(
        plain.contains("--keep-best (to end on the weights of step"),
        "{plain}"
    );
    assert!(!plain.contains("--recruit-start-windows"), "{plain}");
    assert_eq!(cfg["training"]["steps_done"], 120);
    let curve = cfg["training"]["held_out"].as_array().unwrap();
    assert_eq!(curve.last().unwrap()["step"], 120, "{curve:?}");
    let ce = |p: &serde_json::Value| p["ce_nats"].as_f64().unwrap();
    let best = curve.iter().min_by(|a, b| ce(a).total_cmp(&ce(b))).unwrap();
    assert!(ce(curve.last().unwrap()) > ce(best) + 0.1, "{curve:?}");

    // By default a run that ends overfitting ends on its best point under its final blocks
    // (without recruitment, the one map it had: the best point of the whole curve).
    let (auto, auto_cfg) = run("auto", &[]);
    assert!(
        auto.contains("run will end on the weights of step"),
        "{auto}"
    );
    assert!(
        auto.contains("--keep-last to end on the last step's"),
        "{auto}"
    );
    assert!(
        auto.contains("the run ended overfitting: ending on the weights of step"),
        "{auto}"
    );
    assert!(auto.contains("trained 120 steps"), "{auto}");
    assert!(
        auto.contains(&format!(
            "(of the weights of step {}, where the run ended)",
            best["step"]
        )),
        "{auto}"
    );
    assert_eq!(auto_cfg["training"]["steps_done"], best["step"]);
    let ppl = auto_cfg["training"]["final_eval"]["perplexity"]
        .as_f64()
        .unwrap();
    assert!((ppl.ln() - ce(best)).abs() < 1e-3, "{ppl} against {best:?}");

    // --keep-best: the same run ends on the best step's weights, and the checkpoint says so.
    let (kept, cfg) = run("kept", &["--keep-best"]);
    assert!(
        kept.contains("--keep-best: ending on the weights of step"),
        "{kept}"
    );
    assert!(kept.contains("trained 120 steps"), "{kept}");
    assert!(
        kept.contains("steady-state training speed:"),
        "120 steps time 110 after the warm-up: {kept}"
    );
    let steps = cfg["training"]["steps_done"].as_u64().unwrap();
    assert_eq!(serde_json::json!(steps), best["step"]);
    let ppl = cfg["training"]["final_eval"]["perplexity"]
        .as_f64()
        .unwrap();
    assert!((ppl.ln() - ce(best)).abs() < 1e-3, "{ppl} against {best:?}");

    // Under recruitment the warning says why the run without --recruit may not overfit (its
    // windows) and what keeps them.
    let (rec, _) = run("recruit", &["--recruit", "--recruit-warmup", "20"]);
    let warning = rec
        .lines()
        .find(|l| l.starts_with("warning: held-out perplexity rose from"))
        .unwrap_or_else(|| panic!("no warning:\n{rec}"));
    assert!(
        warning.contains("the unassigned queries are open")
            && warning.contains("--recruit-start-windows 8"),
        "{warning}"
    );
    // With the start's windows on (and no block yet) there is nothing to add.
    let (windows, _) = run(
        "recruit-windows",
        &[
            "--recruit",
            "--recruit-warmup",
            "20",
            "--recruit-start-windows",
            "8",
        ],
    );
    assert!(
        windows.contains("warning: held-out perplexity rose from"),
        "{windows}"
    );
    assert!(
        !windows.contains("the unassigned queries are open"),
        "{windows}"
    );

    // No curve on request.
    let (quiet, cfg) = run("none", &["--eval-every", "0"]);
    assert!(!quiet.contains("held-out perplexity rose"), "{quiet}");
    assert_eq!(cfg["training"]["held_out"], serde_json::json!([]));
    // Nor go back without a curve to go back on.
    let out = dir.path().join("no-curve");
    let o = localist(&[
        "train",
        "--corpus",
        c,
        "--keep-best",
        "--eval-every",
        "0",
        "--steps",
        "5",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_fails_with(&o, &["--keep-best", "--eval-every 0 turns the curve off"]);
    assert!(!out.join("config.json").exists());
}

/// 80 documents of two topics, written to `dir`/t80.txt.
fn two_topic_corpus(dir: &Path) -> PathBuf {
    let corpus = dir.join("t80.txt");
    let o = localist(&[
        "corpus-gen",
        "--topics",
        "2",
        "--documents",
        "80",
        "--out",
        corpus.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    corpus
}

/// `train` with the recruitment command on `corpus` for `steps` in all, one thread (the same
/// decisions every time), quiet, into `out`.
fn recruitment_args<'a>(corpus: &'a str, steps: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--corpus",
        corpus,
        "--tokenizer",
        "word",
        "--recruit",
        "--lambda-train",
        "1",
        "--steps",
        steps,
        "--lr",
        "3e-3",
        "--recruit-warmup",
        "50",
        "--recruit-every",
        "25",
        "--threads",
        "1",
        "--quiet",
        "--out",
        out,
    ]
}

/// A recruitment run of 500 steps on 80 documents of two topics, with `ending` (the flag that
/// says how it ends, or none): recruitment finds blocks early, and 500 steps read the training
/// text about 70 times, so the held-out curve turns up well before the end. Returns the
/// checkpoint's directory (in `dir`) and the run's output.
fn small_recruitment_run(dir: &Path, ending: Option<&str>) -> (PathBuf, String) {
    let corpus = two_topic_corpus(dir);
    let out = dir.join("run");
    let mut args = recruitment_args(corpus.to_str().unwrap(), "500", out.to_str().unwrap());
    args.extend(["--eval-every", "20"]);
    args.extend(ending);
    let o = localist(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    (out, String::from_utf8_lossy(&o.stdout).to_string())
}

#[test]
fn keep_best_in_a_recruitment_run_ends_on_the_blocks_and_log_of_its_best_step() {
    let dir = tempfile::tempdir().unwrap();
    let (out, text) = small_recruitment_run(dir.path(), Some("--keep-best"));
    let kept: usize = text
        .split("--keep-best: ending on the weights of step ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no --keep-best line:\n{text}"));
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap()
    };
    assert_eq!(read("config.json")["training"]["steps_done"], kept);
    // The log is the one of that step: no decision after it, and the blocks it accepted are
    // the checkpoint's.
    let rec = read("recruitment.json");
    let log = rec["log"].as_array().unwrap();
    assert!(!log.is_empty(), "nothing recruited:\n{text}");
    assert!(
        log.iter()
            .all(|e| e["step"].as_u64().unwrap() as usize <= kept),
        "{log:?} after step {kept}"
    );
    let rounds = rec["rounds"].as_array().unwrap();
    assert!(
        rounds
            .iter()
            .all(|r| r["step"].as_u64().unwrap() as usize <= kept),
        "rounds after step {kept}: {rounds:?}"
    );
    // A stop after the step kept (step 400 here: 12 rounds without a move) is not in it.
    let stopped_at = text
        .lines()
        .find(|l| l.contains("  stop: "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<usize>().ok());
    if stopped_at.is_some_and(|s| s > kept) {
        assert!(rec["stopped"].is_null(), "{:?}", rec["stopped"]);
    }
    let blocks = read("blocks.json");
    let names: Vec<&str> = blocks["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    // Every block of the checkpoint but the unassigned one was accepted by a decision of the
    // log kept.
    for name in names.iter().filter(|n| **n != "unassigned") {
        assert!(
            log.iter()
                .any(|e| e["block"] == *name && e["decision"]["verdict"] == "accepted"),
            "block {name} is in no accepted decision of {log:?}"
        );
    }
}

#[test]
fn a_recruitment_run_that_ends_overfitting_ends_on_its_best_weights_under_its_final_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // The run of the test above, with the default ending, and again with --keep-last (one
    // thread each: the same decisions in both).
    let (out, text) = small_recruitment_run(dir.path(), None);
    let last_dir = dir.path().join("last");
    std::fs::create_dir(&last_dir).unwrap();
    let (last_out, last_text) = small_recruitment_run(&last_dir, Some("--keep-last"));
    let line = text
        .lines()
        .find(|l| l.starts_with("the run ended overfitting: ending on the weights of step "))
        .unwrap_or_else(|| panic!("no line on ending overfitting:\n{text}"));
    let number_after = |what: &str| -> f64 {
        line.split(what)
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit() && c != '.').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after {what:?} in {line}"))
    };
    let kept = number_after("ending on the weights of step ") as usize;
    assert!(kept < 500, "{text}");
    // The weights kept measure better than the last step's, under the same blocks.
    let (ppl, last_ppl) = (
        number_after("held-out perplexity "),
        number_after("against "),
    );
    assert!(ppl < last_ppl, "{line}");
    let read = |dir: &Path, name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    assert_eq!(read(&out, "config.json")["training"]["steps_done"], kept);
    let final_ppl = read(&out, "config.json")["training"]["final_eval"]["perplexity"]
        .as_f64()
        .unwrap();
    assert!(
        (final_ppl - ppl).abs() < 0.01 * ppl,
        "{final_ppl} against {line}"
    );
    // The blocks are the last step's: every block and move the run found, before or after the
    // step whose weights it kept, as the run that kept the last step's weights ended with.
    assert_eq!(read(&out, "blocks.json"), read(&last_out, "blocks.json"));
    assert_eq!(
        read(&last_out, "config.json")["training"]["steps_done"],
        500,
        "{last_text}"
    );
    // The log kept has every accepted decision the run printed, as has --keep-last's.
    let accepted = |t: &str| {
        t.lines()
            .filter(|l| l.starts_with("step ") && l.contains("ACCEPTED"))
            .count()
    };
    assert!(accepted(&text) > 0, "nothing recruited:\n{text}");
    assert_eq!(accepted(&text), accepted(&last_text), "{text}\n{last_text}");
    let in_log = read(&out, "recruitment.json")["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["decision"]["verdict"] == "accepted")
        .count();
    assert_eq!(in_log, accepted(&text));
}

#[test]
fn a_resumed_recruitment_run_goes_on_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = two_topic_corpus(dir.path());
    let out = dir.path().join("run");
    let train = |steps: &str, resume: bool| {
        let mut args = recruitment_args(corpus.to_str().unwrap(), steps, out.to_str().unwrap());
        args.push("--keep-last");
        if resume {
            args.extend(["--resume", out.to_str().unwrap()]);
        }
        localist(&args)
    };
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("recruitment.json")).unwrap())
            .unwrap()
    };
    let o = train("150", false);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = read();
    let (log0, rounds0) = (
        before["log"].as_array().unwrap().clone(),
        before["rounds"].as_array().unwrap().clone(),
    );
    assert!(!log0.is_empty() && !rounds0.is_empty(), "{before}");
    let due = before["next_due"].as_u64().unwrap();
    assert!(due > 150 && due <= 250, "{before}");

    // Resumed into the same folder, as a user would: the log, its rounds and its tally go on.
    let o = train("250", true);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "recruitment goes on from {}",
            out.join("recruitment.json").display()
        )),
        "{}",
        stderr(&o)
    );
    let after = read();
    let (log1, rounds1) = (
        after["log"].as_array().unwrap(),
        after["rounds"].as_array().unwrap(),
    );
    assert_eq!(
        &log1[..log0.len()],
        &log0[..],
        "the earlier decisions, as they were"
    );
    assert_eq!(&rounds1[..rounds0.len()], &rounds0[..]);
    let new_rounds: Vec<u64> = rounds1[rounds0.len()..]
        .iter()
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    // Its next round comes when it was due, not after a fresh warm-up.
    assert_eq!(new_rounds.first(), Some(&due), "{new_rounds:?}");
    let accepted = |v: &serde_json::Value| v["accepted"].as_u64().unwrap();
    assert!(accepted(&after) >= accepted(&before));

    // Resumed with `--recruit` alone and another margin: the saved log's spacing (every 25
    // steps, not the default 100), the command's margin, and a note that says so.
    let o = localist(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--recruit",
        "--lambda-train",
        "1",
        "--lr",
        "3e-3",
        "--recruit-delta",
        "32",
        "--steps",
        "300",
        "--threads",
        "1",
        "--keep-last",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("the resumed recruitment runs with --recruit-delta 32 (the saved log's: 64)"),
        "{err}"
    );
    assert!(!err.contains("--recruit-every"), "{err}");
    let again = read();
    let steps: Vec<u64> = (again["rounds"].as_array().unwrap().iter())
        .map(|r| r["step"].as_u64().unwrap())
        .filter(|&s| s > 250)
        .collect();
    assert!(
        !steps.is_empty() && steps.windows(2).all(|w| w[1] - w[0] <= 25),
        "{steps:?}"
    );
    assert_eq!(again["config"]["every"], 25);
    assert_eq!(again["config"]["delta_bits"], 32.0);

    // A damaged log beside the checkpoint stops the resumed run, naming it; nothing is lost.
    let good = std::fs::read(out.join("recruitment.json")).unwrap();
    std::fs::write(out.join("recruitment.json"), b"{ not json").unwrap();
    let o = train("350", true);
    assert_fails_with(
        &o,
        &["resuming", "recruitment.json", "not a recruitment log"],
    );
    assert_eq!(
        std::fs::read(out.join("recruitment.json")).unwrap(),
        b"{ not json"
    );
    // So does the log of another run (the sample's, three topics), which would have gone on
    // recruiting over blocks it did not make.
    let other = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_models/tiny-topics-recruited/recruitment.json");
    std::fs::copy(&other, out.join("recruitment.json")).unwrap();
    let o = train("350", true);
    assert_fails_with(
        &o,
        &[
            "recruitment.json",
            "not the log of this checkpoint's blocks",
            "move it aside",
        ],
    );
    assert_eq!(
        std::fs::read(out.join("recruitment.json")).unwrap(),
        std::fs::read(&other).unwrap()
    );
    // Resumed without --recruit, the blocks stay as the log made them, and the log stays
    // beside the new checkpoint (the folder is replaced, which deleted it).
    std::fs::write(out.join("recruitment.json"), &good).unwrap();
    let o = localist(&[
        "train",
        "--resume",
        out.to_str().unwrap(),
        "--steps",
        "350",
        "--threads",
        "1",
        "--keep-last",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("recruitment.json (how the blocks were recruited) is saved with"),
        "{}",
        stderr(&o)
    );
    let kept: serde_json::Value = serde_json::from_slice(&good).unwrap();
    assert_eq!(read(), kept);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["training"]["steps_done"], 350);
}

/// The fourth attack pass: flags a run ignored without a word, outputs that landed on or in a
/// saved model, and values that passed as something else. Each is refused, naming the flag.
#[test]
fn flags_that_were_ignored_and_outputs_into_a_saved_model_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let sample = common::root().join("sample_models").join("tiny-clinical");
    let sample = sample.to_str().unwrap();
    let model = d("model");
    copy_dir(Path::new(sample), Path::new(&model));
    let train = |extra: &[&str]| {
        let mut a = vec!["train", "--corpus", "synthetic:100", "--tokenizer", "word"];
        a.extend(["--steps", "2", "--batch", "2", "--quiet"]);
        a.extend(extra);
        localist(&a)
    };
    let out = d("out");
    assert_fails_with(
        &train(&["--out", &out, "--adapt", "qk"]),
        &["--adapt", "--from"],
    );
    assert_fails_with(
        &train(&["--out", &out, "--dial-curve", "0.5"]),
        &["--dial-curve", "--from"],
    );
    assert_fails_with(
        &train(&["--out", &out, "--resume", &model, "--blocks", "windows:8"]),
        &[
            "--blocks windows:8 with --resume",
            "keeps the checkpoint's blocks",
        ],
    );
    assert_fails_with(
        &train(&["--out", &out, "--lr", "1e-300"]),
        &["--lr", "32-bit"],
    );
    // Outputs in a saved model's folder: its files, or a folder inside it.
    let config = format!("{model}/config.json");
    assert_fails_with(
        &localist(&["audit", "key", "--out", &config]),
        &["is one of the files of the model saved in"],
    );
    let inside = format!("{model}/sub");
    assert_fails_with(
        &train(&["--out", &inside]),
        &["inside", "the folder of a saved model"],
    );
    let dotdot = format!("{model}/x/..");
    assert_fails_with(&train(&["--out", &dotdot]), &["does not end in a name"]);
    assert!(
        !Path::new(&model).join("x").exists(),
        "the refused run made a folder"
    );
    // eval: --clusters on a checkpoint, a λ twice, an empty corpus name.
    let eval = |extra: &[&str]| {
        let mut a = vec!["eval", "-c", sample, "--windows", "2"];
        a.extend(extra);
        localist(&a)
    };
    assert_fails_with(
        &eval(&["--clusters", "3"]),
        &["--clusters 3", "its own blocks"],
    );
    assert_fails_with(&eval(&["--lambda", "0.5,0.5"]), &["0.5 is given twice"]);
    assert_fails_with(&eval(&["--corpus", ""]), &["the corpus is empty"]);
    // An audit report's twin never replaces the user's JSON of the same name.
    let notes = dir.path().join("notes.json");
    std::fs::write(&notes, "{\"my\": \"notes\"}").unwrap();
    let rules = common::root().join("assets/rules/clinical_payments.rules");
    let report = d("notes.html");
    let o = localist(&[
        "audit",
        "report",
        "-c",
        sample,
        "-r",
        rules.to_str().unwrap(),
        "--out",
        &report,
    ]);
    assert_fails_with(&o, &["JSON twin would replace", "not an audit report"]);
    assert_eq!(
        std::fs::read_to_string(&notes).unwrap(),
        "{\"my\": \"notes\"}"
    );
    // A key written twice in config.json: the last one counted, unsaid.
    let twice = d("twice");
    copy_dir(Path::new(sample), Path::new(&twice));
    let config = Path::new(&twice).join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen("\"steps_done\":", "\"steps_done\": 3, \"steps_done\":", 1);
    std::fs::write(&config, text).unwrap();
    let o = localist(&["eval", "-c", &twice, "--windows", "2"]);
    assert_fails_with(&o, &["config.json", "training.steps_done is written twice"]);
}
