//! Recruitment on corpora it was not built on (issue 15): a matrix of the topic family's knobs
//! (K from 2 to 8, real or made-up words, function words 0–40%, markers on or off, theme size,
//! segment lengths, 200 to 8,000 documents). Each corpus is written as a text file and trained
//! by the `localist` binary as a user would, with and without `--recruit`; each must reach
//! ARI ≥ 0.9 over the topic words (function words stay unassigned, where queries keep all
//! context) and a held-out perplexity within 5% of the run without recruitment. The larger
//! configurations take minutes and are `#[ignore]`d: run them with
//! `cargo test --release --test recruit_matrix -- --include-ignored --nocapture` (each prints a
//! `MATRIX` line with its blocks, ARI, perplexities and round cost).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use localist::data::topics::{TopicCorpus, TopicSpec};
use localist::train::recruit::{adjusted_rand_index, Profile};

/// One configuration of the family.
struct Config {
    k: usize,
    made_up: bool,
    function_rate: f64,
    markers: bool,
    theme: usize,
    segment: (usize, usize),
    documents: usize,
    seed: u64,
    /// Words per document (the matrix: 96).
    document_words: usize,
    /// Train as the issue's command does: 800 steps, `--recruit-warmup 50 --recruit-every 25`
    /// (the matrix: 600 steps, rounds at the defaults).
    issue_command: bool,
    /// Documents written in sentences ([`TopicSpec::sentences`]).
    sentences: bool,
}

fn spec(c: &Config) -> TopicSpec {
    TopicSpec {
        seed: c.seed,
        topics: c.k,
        documents: c.documents,
        document_words: c.document_words,
        theme: c.theme,
        segment: c.segment,
        headers: c.markers,
        function_rate: c.function_rate,
        made_up: c.made_up,
        words_per_topic: 20,
        sentences: c.sentences,
        unequal: false,
    }
}

/// Run the binary's `train` on `corpus`; returns its stdout.
fn train(corpus: &Path, out: &Path, recruit: bool, issue_command: bool) -> String {
    let mut args: Vec<String> = [
        "--threads",
        "1",
        "train",
        "--corpus",
        "",
        "--tokenizer",
        "word",
        "--lambda-train",
        "1",
        "--steps",
        "600",
        "--lr",
        "3e-3",
        "--quiet",
        "--out",
        "",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args[4] = corpus.display().to_string();
    args[15] = out.display().to_string();
    if issue_command {
        args[10] = "800".to_string();
    }
    if recruit {
        args.push("--recruit".to_string());
        if issue_command {
            for a in ["--recruit-warmup", "50", "--recruit-every", "25"] {
                args.push(a.to_string());
            }
        }
    }
    let output = Command::new(env!("CARGO_BIN_EXE_localist"))
        .args(&args)
        .output()
        .unwrap_or_else(|e| panic!("running localist: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "localist {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Exactly --steps (a recruitment round's second look at the last step trained past it),
    // or the step a run that ended on its best point says it ended on (overfitting, or its
    // last step's weights measurably worse).
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap_or_default())
            .unwrap_or_default();
    let ended_on = stdout
        .split(": ending on the weights of step ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .map(str::to_string);
    assert_eq!(
        config["training"]["steps_done"]
            .as_u64()
            .map(|n| n.to_string()),
        Some(ended_on.unwrap_or_else(|| args[10].clone())),
        "steps done against --steps"
    );
    stdout
}

/// The number after `key` in `text`.
fn number_after(text: &str, key: &str) -> f64 {
    let rest = text
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no '{key}' in:\n{text}"));
    let num: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    num.parse()
        .unwrap_or_else(|e| panic!("'{num}' after '{key}': {e}"))
}

/// ARI of the checkpoint's blocks against the generator over the topic words.
fn ari_of(dir: &Path, corpus: &TopicCorpus) -> (f64, usize) {
    ari_against(dir, &corpus.truth)
}

/// ARI of the checkpoint's blocks against `truth` (word, topic), and its recruited blocks.
fn ari_against(dir: &Path, truth: &[(String, usize)]) -> (f64, usize) {
    let read = |name: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let config = read("config.json");
    let blocks = read("blocks.json");
    let vocab: BTreeMap<String, usize> = config["tokenizer"]["vocab"]
        .as_array()
        .unwrap_or_else(|| panic!("no vocabulary"))
        .iter()
        .enumerate()
        .filter_map(|(i, w)| w.as_str().map(|w| (w.to_string(), i)))
        .collect();
    let token_block = blocks["token_block"]
        .as_array()
        .unwrap_or_else(|| panic!("no token_block"));
    let (mut found, mut want) = (Vec::new(), Vec::new());
    for (w, t) in truth {
        let Some(&id) = vocab.get(w) else { continue };
        let b = token_block.get(id).and_then(|b| b.as_u64()).unwrap_or(0);
        found.push(b as usize);
        want.push(*t);
    }
    let k = blocks["names"].as_array().map(Vec::len).unwrap_or(1) - 1;
    (adjusted_rand_index(&found, &want), k)
}

fn check(c: &Config) {
    let corpus = TopicCorpus::generate(&spec(c));
    let dir = std::env::temp_dir().join(format!(
        "localist-recruit-matrix-{}-{}-{}",
        std::process::id(),
        c.k,
        c.seed
    ));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let file = dir.join("corpus.txt");
    std::fs::write(&file, &corpus.text).unwrap_or_else(|e| panic!("{e}"));
    let with = train(&file, &dir.join("recruit"), true, c.issue_command);
    let without = train(&file, &dir.join("plain"), false, c.issue_command);
    let (ari, k) = ari_of(&dir.join("recruit"), &corpus);
    let ppl_with = number_after(&with, "held-out: perplexity");
    let ppl_without = number_after(&without, "held-out: perplexity");
    let cost = number_after(&with, "of training between them (");
    for line in with.lines() {
        eprintln!("  {}", line.chars().take(200).collect::<String>());
    }
    eprintln!(
        "MATRIX K={} made_up={} function={:.0}% markers={} theme={} segment={:?} docs={}×{} \
         seed={} issue_command={}: \
         blocks {k}, ARI {ari:.3}, perplexity {ppl_with:.3} vs {ppl_without:.3} (ratio {:.3}), \
         round cost {cost}% of training",
        c.k,
        c.made_up,
        100.0 * c.function_rate,
        c.markers,
        c.theme,
        c.segment,
        c.documents,
        c.document_words,
        c.seed,
        c.issue_command,
        ppl_with / ppl_without
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ari >= 0.9, "ARI {ari} < 0.9");
    assert!(
        ppl_with <= 1.05 * ppl_without,
        "perplexity {ppl_with} under recruitment > 1.05 × {ppl_without}"
    );
}

macro_rules! matrix {
    ($($(#[$attr:meta])* $name:ident: $k:expr, $made:expr, $f:expr, $markers:expr, $theme:expr,
       $seg:expr, $docs:expr, $seed:expr;)*) => {$(
        #[test]
        $(#[$attr])*
        fn $name() {
            check(&Config {
                k: $k,
                made_up: $made,
                function_rate: $f,
                markers: $markers,
                theme: $theme,
                segment: $seg,
                documents: $docs,
                seed: $seed,
                document_words: 96,
                issue_command: false,
                sentences: false,
            });
        }
    )*};
}

matrix! {
    k2_made_up_function20_markers_200docs: 2, true, 0.2, true, 4, (4, 12), 200, 11;
    #[ignore = "minutes: run with --include-ignored"]
    k2_real_no_function_markers: 2, false, 0.0, true, 4, (4, 12), 500, 12;
    #[ignore = "minutes: run with --include-ignored"]
    k3_made_up_function40_markers: 3, true, 0.4, true, 4, (4, 12), 500, 13;
    #[ignore = "minutes: run with --include-ignored"]
    k4_made_up_function20_markers: 4, true, 0.2, true, 4, (4, 12), 500, 14;
    #[ignore = "minutes: run with --include-ignored"]
    k4_made_up_function20_no_markers: 4, true, 0.2, false, 4, (4, 12), 500, 15;
    #[ignore = "minutes: run with --include-ignored"]
    k4_made_up_no_function_no_markers_theme3: 4, true, 0.0, false, 3, (4, 12), 500, 16;
    #[ignore = "minutes: run with --include-ignored"]
    k4_real_function20_short_segments: 4, false, 0.2, true, 4, (2, 6), 1000, 17;
    #[ignore = "minutes: run with --include-ignored"]
    k5_made_up_function30_theme6_long_segments: 5, true, 0.3, true, 6, (6, 16), 2000, 18;
    #[ignore = "minutes: run with --include-ignored"]
    k6_real_function10_no_markers: 6, false, 0.1, false, 4, (4, 12), 1000, 19;
    #[ignore = "minutes: run with --include-ignored"]
    k8_made_up_function20_markers: 8, true, 0.2, true, 4, (4, 12), 1000, 20;
    #[ignore = "minutes: run with --include-ignored"]
    k8_real_function40_no_markers: 8, false, 0.4, false, 4, (4, 12), 2000, 21;
    #[ignore = "minutes: run with --include-ignored"]
    k4_made_up_function20_markers_8000docs: 4, true, 0.2, true, 4, (4, 12), 8000, 22;
}

/// The issue's own command (rounds every 25 steps from step 50) on short documents without
/// markers: three rejected rounds spanned 75 steps and recruitment stopped at step 100 with 2
/// of 4 blocks (ARI 0.495, `--recruit-patience-steps 0`, at one thread and at two); rounds
/// that span 300 steps find all four. Other seeds of this configuration stay marginal (README,
/// "The issue's own command"): seed 35 passes both ways, 34 and 36 fail both ways.
#[test]
#[ignore = "minutes: run with --include-ignored"]
fn issue_command_short_documents_no_markers() {
    check(&Config {
        k: 4,
        made_up: true,
        function_rate: 0.3,
        markers: false,
        theme: 4,
        segment: (4, 12),
        documents: 1000,
        seed: 33,
        document_words: 32,
        issue_command: true,
        sentences: false,
    });
}

/// The issue's command on the family written in sentences (capitals, full stops, commas), as
/// a person writes: before the profile read the writing, the full stop and comma joined topic
/// communities (`,·mkc`) and merges carried every topic into one block (ARI 0.000).
#[test]
#[ignore = "minutes: run with --include-ignored"]
fn issue_command_on_text_in_sentences() {
    check(&Config {
        k: 4,
        made_up: true,
        function_rate: 0.2,
        markers: true,
        theme: 4,
        segment: (4, 12),
        documents: 1000,
        seed: 41,
        document_words: 96,
        issue_command: true,
        sentences: true,
    });
}

/// On text written in sentences the profile sets apart the function words, their capitalised
/// forms and the punctuation, and no topic word, in either case; its communities are the
/// topics, with no mark in any.
#[test]
fn the_profile_reads_text_written_in_sentences() {
    use localist::data::tokenizer::{Tokenizer, WordTokenizer};
    for (k, rate, markers, seed) in [
        (4usize, 0.2f64, true, 42u64),
        (2, 0.1, true, 43),
        (5, 0.3, false, 44),
    ] {
        let corpus = TopicCorpus::generate(&TopicSpec {
            seed,
            topics: k,
            documents: 1000,
            headers: markers,
            function_rate: rate,
            made_up: true,
            words_per_topic: 20,
            sentences: true,
            ..TopicSpec::default()
        });
        assert!(corpus.text.contains(". ") && corpus.text.contains(", "));
        let tok = WordTokenizer::fit(&corpus.text, 1, 100_000);
        let stream = tok.encode(&corpus.text);
        let p = Profile::of_text(&stream, 4, 5, &tok);
        let capital = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
        };
        for w in &corpus.function_words {
            for form in [Some(w.clone()), capital(w)].into_iter().flatten() {
                if let Some(id) = tok.token_id(&form) {
                    assert!(
                        !p.is_content(id),
                        "K={k}: function word {form} taken for content"
                    );
                }
            }
        }
        for mark in [".", ",", "\n"] {
            let id = tok.token_id(mark).unwrap_or(u32::MAX);
            assert!(
                !p.is_content(id) && p.community_of(id).is_none(),
                "K={k}: {mark:?}"
            );
        }
        let (mut found, mut want) = (Vec::new(), Vec::new());
        for (i, (w, topic)) in corpus.truth.iter().enumerate() {
            // A marker stands between two topics (see the test above).
            if corpus.topic_names.contains(w) {
                continue;
            }
            for form in [Some(w.clone()), capital(w)].into_iter().flatten() {
                if let Some(id) = tok.token_id(&form) {
                    if p.index.contains_key(&id) {
                        assert!(
                            p.is_content(id),
                            "K={k}: topic word {form} taken for a function word"
                        );
                    }
                }
            }
            let Some(id) = tok.token_id(w) else { continue };
            found.push(p.community_of(id).unwrap_or(usize::MAX - i));
            want.push(*topic);
        }
        let ari = adjusted_rand_index(&found, &want);
        assert!(
            ari >= 0.9,
            "K={k}: communities ARI {ari:.3} over {} words",
            found.len()
        );
    }
}

/// The profile sets the generator's function words apart from its topic words, from
/// co-occurrence alone: every function word is function-like, and no topic word that is not
/// a marker is (a marker stands between two topics, so its neighbours look like the corpus's).
#[test]
fn the_profile_sets_function_words_apart() {
    for (k, rate, seed) in [(4usize, 0.2f64, 1u64), (8, 0.4, 2), (2, 0.1, 3)] {
        let corpus = TopicCorpus::generate(&TopicSpec {
            seed,
            topics: k,
            documents: 400,
            function_rate: rate,
            made_up: true,
            words_per_topic: 20,
            ..TopicSpec::default()
        });
        let (ids, stream) = word_stream(&corpus.text);
        let p = Profile::measure(&stream, 4, 5);
        assert!(p.threshold_bits.is_some(), "K={k}: no clear split");
        assert_function_words_apart(&p, &ids, &corpus, k);
        let markers: Vec<&str> = corpus.topic_names.iter().map(String::as_str).collect();
        for (w, _) in &corpus.truth {
            if markers.contains(&w.as_str()) {
                continue;
            }
            let id = ids.get(w.as_str()).copied().unwrap_or(u32::MAX);
            assert!(
                p.is_content(id),
                "K={k}: topic word {w} taken for a function word"
            );
        }
    }
}

/// Every function word of `corpus` is function-like in the profile `p`.
fn assert_function_words_apart(
    p: &Profile,
    ids: &BTreeMap<&str, u32>,
    corpus: &TopicCorpus,
    k: usize,
) {
    for w in &corpus.function_words {
        let id = ids.get(w.as_str()).copied().unwrap_or(u32::MAX);
        assert!(
            !p.is_content(id),
            "K={k}: function word {w} taken for content"
        );
    }
}

/// The text as word ids, a line break a token of its own (as `--tokenizer word` reads it).
fn word_stream(text: &str) -> (BTreeMap<&str, u32>, Vec<u32>) {
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    let mut stream = Vec::new();
    for line in text.lines() {
        for w in line.split_whitespace().chain(["\n"]) {
            let n = ids.len() as u32;
            stream.push(*ids.entry(w).or_insert(n));
        }
    }
    (ids, stream)
}

/// On a small text (200 documents of 28 words, 5,000–6,000 tokens) the profile still sets the
/// function words apart (their divergences, read from few neighbours, are biased upwards and
/// the separability falls below 0.85: the gap between the classes decides), and its
/// communities are the topics (a cluster grown around a seed took every content token here).
#[test]
fn on_a_small_text_the_profile_finds_function_words_and_topics() {
    for (k, rate, markers, seed) in [
        (7usize, 0.3f64, false, 5u64),
        (7, 0.1, true, 6),
        (4, 0.0, false, 7),
    ] {
        let corpus = TopicCorpus::generate(&TopicSpec {
            seed,
            topics: k,
            documents: 200,
            document_words: 28,
            headers: markers,
            function_rate: rate,
            made_up: true,
            words_per_topic: 20,
            ..TopicSpec::default()
        });
        let (ids, stream) = word_stream(&corpus.text);
        let p = Profile::measure(&stream, 4, 5);
        assert_function_words_apart(&p, &ids, &corpus, k);
        let markers: Vec<&str> = corpus.topic_names.iter().map(String::as_str).collect();
        let (mut found, mut want) = (Vec::new(), Vec::new());
        for (i, (w, topic)) in corpus.truth.iter().enumerate() {
            let Some(&id) = ids.get(w.as_str()) else {
                continue;
            };
            if markers.contains(&w.as_str()) {
                continue;
            }
            // A word in no community counts as a community of its own.
            found.push(p.community_of(id).unwrap_or(usize::MAX - i));
            want.push(*topic);
        }
        let ari = adjusted_rand_index(&found, &want);
        assert!(
            ari >= 0.9,
            "K={k} rate={rate}: communities ARI {ari:.3} over {} words",
            found.len()
        );
    }
}

/// Recruitment's starting state lets context through (SPEC §9): with unassigned tokens open,
/// an unassigned query's relevant keys are every visible key, a recruited block's query keeps
/// its block and S(i) only; the localist view the data bits are read in isolates them instead.
#[test]
fn unassigned_tokens_are_open_and_the_localist_view_isolates_them() {
    use localist::model::blocks::BlockMap;
    use localist::train::recruit::localist_view;
    // Tokens 1, 2 in block "a"; 3 unassigned.
    let mut map = BlockMap::from_assignments(4, &[(1, "a".into()), (2, "a".into())], "t");
    map.open_unassigned = true;
    let ids = [1u32, 3, 2, 3, 1];
    let m = map.masks(&ids);
    // Query 3 (unassigned): every key up to itself.
    assert_eq!(m.relevant_row(3), &[true, true, true, true, false]);
    assert!(m.row_open(3) && !m.row_open(2));
    // Query 4 (block a): BOS, key 2 (a) and itself; not the unassigned keys 1 and 3.
    assert_eq!(m.relevant_row(4), &[true, false, true, false, true]);
    let view = localist_view(&map, &[]);
    assert!(view.isolate_unassigned && !view.open_unassigned);
    let v = view.masks(&ids);
    // Query 3 in the localist view: BOS and itself only.
    assert_eq!(v.relevant_row(3), &[true, false, false, true, false]);
    assert_eq!(v.relevant_row(4), &[true, false, true, false, true]);
    // A map without the flag is read as it is.
    let plain = BlockMap::from_assignments(4, &[(1, "a".into())], "t");
    assert_eq!(localist_view(&plain, &[true; 4]), plain);
}

/// In the localist view a function word (a token marked as inheriting) reads the block of the
/// content word before it (the nearest token that is not a function word); when that word is
/// unassigned, when there is none, or when the token is not marked, it sees BOS and itself
/// only.
#[test]
fn in_the_localist_view_a_function_word_reads_the_block_of_the_word_before_it() {
    use localist::model::blocks::BlockMap;
    use localist::train::recruit::localist_view;
    // Tokens 1, 2 in block "a", 4 in block "b"; 3 and 5 unassigned, 3 a function word.
    let pairs = [(1, "a".into()), (2, "a".into()), (4, "b".into())];
    let mut map = BlockMap::from_assignments(6, &pairs, "t");
    map.open_unassigned = true;
    let inheriting = [false, false, false, true, false, false];
    let v = localist_view(&map, &inheriting).masks(&[3u32, 1, 3, 5, 4, 3, 2]);
    // Position 0: nothing recruited before it.
    assert_eq!(v.relevant_blocks[0], 0);
    // Position 2 follows an "a" token: it reads block a (key 1), BOS and itself. Position 3
    // (token 5) is not marked: isolated. Position 5 follows a "b" token: block b (key 4), BOS
    // and itself. Position 6 ("a") keeps its own block: key 1 and itself, not the function
    // words.
    assert_eq!(v.relevant_blocks[2], 1);
    let (t, f) = (true, false);
    for (i, row) in [
        (2, [t, t, t, f, f, f, f]),
        (3, [t, f, f, t, f, f, f]),
        (5, [t, f, f, f, t, t, f]),
        (6, [t, t, f, f, f, f, t]),
    ] {
        assert_eq!(v.relevant_row(i), &row, "position {i}");
    }
    // After an unassigned content word (5), a function word does not reach back to block a.
    let w = localist_view(&map, &inheriting).masks(&[1u32, 3, 5, 3, 3]);
    assert_eq!(w.relevant_blocks, [1, 1, 0, 0, 0]);
    assert_eq!(w.relevant_row(3), &[true, false, false, true, false]);
    // The training map (unassigned open) is not touched by the marks.
    assert!(map.masks(&[1u32, 3]).row_open(1));
}

/// A marker that opens segments of 2–6 words is the most frequent word of its topic, and the
/// side before it is the segment before (any topic): by the mean of its two sides it looked
/// like a function word and stayed unassigned (ARI 0.934). Its side after it reaches the cut,
/// so it is content; the function words stay apart. The text is gen.py's seed 4242 s1 in
/// sentences (`scripts/recruit_probe/sweep.sh`: K = 6 real words, 30% function words, 500
/// documents); the built-in generator's markers do not show it.
#[test]
fn the_profile_keeps_markers_of_short_segments_as_content() {
    use localist::data::tokenizer::{Tokenizer, WordTokenizer};
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/markers_short_segments.txt");
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{e}"))
        .replace("\r\n", "\n");
    let tok = WordTokenizer::fit(&text, 1, 100_000);
    let p = Profile::of_text(&tok.encode(&text), 4, 5, &tok);
    assert!(p.threshold_bits.is_some(), "no clear split");
    for w in ["the", "on", "at", "that", "a", "with", "and", "to"] {
        let id = tok.token_id(w).unwrap_or(u32::MAX);
        assert!(!p.is_content(id), "function word {w} taken for content");
    }
    for m in (0..6).map(|t| format!("topic{t}")) {
        let id = tok.token_id(&m).unwrap_or(u32::MAX);
        assert!(p.is_content(id), "marker {m} taken for a function word");
    }
}

/// A small text (200 documents, 5,289 training tokens, 6 topics of real words, 10% function
/// words, no markers, 10% of topic words off the document's theme: gen.py's seed 1357 s0 of
/// `scripts/recruit_probe/sweep.sh`), which a model learns by heart within about 100 steps.
/// When a rejected candidate ended its round, the topics came one a round (steps 50, 75, 110,
/// 135) and the last two never paid once the model recited (ARI 0.817); a round on a small text
/// now tries on after a rejection (`SMALL_TEXT_QUIET_TRIES`).
#[test]
#[ignore = "a minute: run with --include-ignored"]
fn a_small_text_tries_on_after_a_rejected_candidate() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let truth = fixture_truth("small_six_topics.tsv");
    let dir = std::env::temp_dir().join(format!("localist-small-text-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("recruit");
    let text = train(&fixtures.join("small_six_topics.txt"), &out, true, true);
    let (ari, k) = ari_against(&out, &truth);
    let log = std::fs::read_to_string(out.join("recruitment.json")).unwrap_or_default();
    let log: serde_json::Value = serde_json::from_str(&log).unwrap_or_default();
    // A recruit rejected and another accepted within one round: sooner than the rounds'
    // spacing (25 steps on a small text; a rejected second look's 10 steps count as training).
    let moves: Vec<(u64, String, bool)> = (log["log"].as_array().cloned().unwrap_or_default())
        .iter()
        .filter(|e| e["kind"] == "recruit")
        .map(|e| {
            let accepted = e["decision"]["verdict"] == "accepted";
            (
                e["step"].as_u64().unwrap_or(0),
                e["block"].to_string(),
                accepted,
            )
        })
        .collect();
    let tried_on = (moves.windows(2)).any(|w| w[1].0 < w[0].0 + 25 && !w[0].2 && w[1].2);
    println!("SMALL TEXT: {k} blocks, ARI {ari:.3}; tried on after a rejection: {tried_on}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(tried_on, "no round tried on after a rejection:\n{text}");
    assert!(ari >= 0.9, "ARI {ari:.3} with {k} blocks:\n{text}");
}

/// The word → topic table of a fixture (`word<TAB>topic` lines).
fn fixture_truth(name: &str) -> Vec<(String, usize)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(w, t)| (w.to_string(), t.trim().parse().unwrap_or(usize::MAX)))
        .collect()
}

/// Two topics of unequal use (2:1), 40% function words, no markers, 200 documents, written by
/// the independent generator (`scripts/recruit_probe/gen.py 403 2 200 0.4 0 3 5 15 1 OUT TSV
/// 1.0 latin 1`). The divergences form three groups (function words, the common topic's
/// words, the rarer topic's), Otsu's cut fell between the topics and was not clear, and no
/// function word was set apart: one joined a topic's candidate and the two topics ended as
/// one block (ARI 0.000). The widest gap below the words sets them apart.
#[test]
fn the_profile_sets_function_words_apart_under_topics_of_unequal_use() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let text = std::fs::read_to_string(fixtures.join("two_unequal_topics.txt"))
        .unwrap_or_else(|e| panic!("{e}"));
    let truth = fixture_truth("two_unequal_topics.tsv");
    let (ids, stream) = word_stream(&text);
    let p = Profile::measure(&stream, 4, 5);
    assert!(
        p.threshold_bits.is_some(),
        "no clear split ({:.2})",
        p.separability
    );
    for (w, &id) in &ids {
        let topic = truth.iter().any(|(t, _)| t == w);
        if *w != "\n" {
            assert_eq!(p.is_content(id), topic, "{w:?}");
        }
    }
}

/// The same text with the README's command: both topics found, apart.
#[test]
#[ignore = "40 seconds: run with --include-ignored"]
fn two_topics_of_unequal_use_are_both_found() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let dir = std::env::temp_dir().join(format!("localist-unequal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let out = dir.join("recruit");
    let text = train(&fixtures.join("two_unequal_topics.txt"), &out, true, true);
    let (ari, k) = ari_against(&out, &fixture_truth("two_unequal_topics.tsv"));
    println!("TWO UNEQUAL TOPICS: {k} blocks, ARI {ari:.3}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(ari >= 0.9, "ARI {ari:.3} with {k} blocks:\n{text}");
}

/// Four topics used unequally (weights 1, 1/2, 1/3, 1/4), 20% function words, no markers,
/// 4,000 documents: the commonest topic fills about half the segments, its words' neighbours
/// look like the text's own, and the divergence split set them apart with the function words
/// (they never got a block). They follow each other, function words do not (`cohesion.rs`):
/// every topic word is content, every function word is not.
#[test]
fn the_commonest_topic_is_not_read_as_function_words() {
    let corpus = TopicCorpus::generate(&TopicSpec {
        seed: 4,
        topics: 4,
        documents: 4000,
        headers: false,
        function_rate: 0.2,
        made_up: false,
        unequal: true,
        ..TopicSpec::default()
    });
    let (ids, stream) = word_stream(&corpus.text);
    let p = Profile::measure(&stream, 4, 5);
    assert_function_words_apart(&p, &ids, &corpus, 4);
    for (w, t) in &corpus.truth {
        let id = ids.get(w.as_str()).copied().unwrap_or(u32::MAX);
        assert!(
            p.is_content(id),
            "topic {t}'s word {w} read as a function word"
        );
    }
    println!("COMMONEST TOPIC: {} read as content again", p.cohesive);
}
