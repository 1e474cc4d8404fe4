//! Integration tests of the `data` module: tokenizers, corpus loading, batch offsets, lexicons
//! and the synthetic corpus generator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::collections::{HashMap, HashSet};
use std::path::Path;

use localist::data::{
    join_words, load_corpus, sequential_offsets, split_words, split_words_with, train_val_split,
    CharTokenizer, CorpusError, Domain, Lexicon, LexiconError, SyntheticCorpus, SyntheticSpec,
    Tokenizer, TokenizerError, TokenizerSpec, WordSplit, WordTokenizer, UNK_TOKEN,
};
use proptest::prelude::*;

// ---------------------------------------------------------------- char tokenizer

#[test]
fn char_ids_match_the_reference_vocabulary() {
    let t = CharTokenizer;
    // Hand-computed from id = byte - 31, '\n' = 0, anything else '?' (63 - 31 = 32).
    assert_eq!(t.encode("\n"), vec![0]);
    assert_eq!(t.encode(" "), vec![1]);
    assert_eq!(t.encode("A"), vec![34]);
    assert_eq!(t.encode("~"), vec![95]);
    assert_eq!(t.encode("é"), vec![32]);
    // Computed with the reference Python expression on "Hé\tllo~\n".
    assert_eq!(t.encode("Hé\tllo~\n"), vec![41, 32, 32, 77, 77, 80, 95, 0]);
    assert_eq!(t.vocab_size(), 96);
}

#[test]
fn char_round_trip_and_lookup() {
    let t = CharTokenizer;
    let ascii: String = std::iter::once('\n').chain(' '..='~').collect();
    let ids = t.encode(&ascii);
    assert_eq!(ids, (0..96).collect::<Vec<u32>>());
    assert_eq!(t.decode(&ids), ascii);
    for id in 0..96 {
        assert_eq!(t.token_id(&t.token_str(id)), Some(id));
    }
    assert_eq!(t.token_id("é"), None);
    assert_eq!(t.token_id("ab"), None);
    assert_eq!(t.decode(&[96]), "\u{FFFD}");
}

// ---------------------------------------------------------------- word tokenizer

#[test]
fn split_words_keeps_numbers_dates_and_codes_whole() {
    assert_eq!(
        split_words("Pay EUR 1,250.50 to ACC-4821 on 2024-03-05."),
        vec![
            "Pay",
            "EUR",
            "1,250.50",
            "to",
            "ACC-4821",
            "on",
            "2024-03-05",
            "."
        ]
    );
    assert_eq!(split_words("don't stop."), vec!["don't", "stop", "."]);
    assert_eq!(split_words("a/b: c\t\td"), vec!["a/b", ":", "c", "d"]);
    assert_eq!(split_words("x\r\ny"), vec!["x", "\n", "y"]);
    assert_eq!(split_words("5mg--x"), vec!["5mg", "-", "-", "x"]);
}

#[test]
fn words_of_any_script_stay_whole() {
    let u = |t| split_words_with(t, WordSplit::Unicode);
    assert_eq!(
        u("Größe über naïve café."),
        ["Größe", "über", "naïve", "café", "."]
    );
    assert_eq!(
        u("Москва и Київ, 2024"),
        ["Москва", "и", "Київ", ",", "2024"]
    );
    assert_eq!(u("Αθήνα ελληνικά"), ["Αθήνα", "ελληνικά"]);
    // Combining marks stay with their letter (a decomposed é; Arabic vowel signs; Devanagari).
    assert_eq!(u("cafe\u{301} x"), ["cafe\u{301}", "x"]);
    assert_eq!(u("كَتَبَ الوَلَدُ"), ["كَتَبَ", "الوَلَدُ"]);
    assert_eq!(u("नमस्ते दुनिया"), ["नमस्ते", "दुनिया"]);
    // Joiners as in the ASCII rule, plus the typographic apostrophe and the hyphen.
    assert_eq!(u("don’t l'été 1,5 a‐b"), ["don’t", "l'été", "1,5", "a‐b"]);
    assert_eq!(u("été."), ["été", "."]);
    // A soft hyphen from a PDF and a Persian zero-width non-joiner stay inside their words.
    assert_eq!(u("infor\u{AD}mation"), ["infor\u{AD}mation"]);
    assert_eq!(u("می\u{200C}خواهم بروم"), ["می\u{200C}خواهم", "بروم"]);
    // Scripts without spaces: a token per character; punctuation and symbols alone.
    assert_eq!(u("你好世界。"), ["你", "好", "世", "界", "。"]);
    assert_eq!(
        u("ひらがなカタカナ"),
        ["ひ", "ら", "が", "な", "カ", "タ", "カ", "ナ"]
    );
    assert_eq!(u("€5 «oui» 🙂"), ["€", "5", "«", "oui", "»", "🙂"]);
    // The ASCII rule cut such words into pieces (kept for vocabularies fitted with it).
    assert_eq!(split_words("Größe"), ["Gr", "ö", "ß", "e"]);
}

#[test]
fn a_fitted_vocabulary_keeps_its_rule_and_an_old_one_reads_ascii() {
    let text = "Größe und Größe\nder Bäcker";
    let t = WordTokenizer::fit(text, 1, 100);
    assert_eq!(t.vocab(), ["<unk>", "\n", "Größe", "Bäcker", "der", "und"]);
    let json = serde_json::to_string(&t.spec()).unwrap();
    assert!(json.contains(r#""split":"unicode""#), "{json}");
    let back: TokenizerSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back.build().unwrap().encode("der Größe"), vec![4, 2]);
    // A spec stored before the rule had a name reads with the ASCII rule it was fitted with.
    let old: TokenizerSpec =
        serde_json::from_str(r#"{"kind":"Word","vocab":["<unk>","\n","Gr","ö","ß","e"]}"#).unwrap();
    assert!(matches!(
        old,
        TokenizerSpec::Word {
            split: WordSplit::Ascii,
            ..
        }
    ));
    assert_eq!(old.build().unwrap().encode("Größe"), vec![2, 3, 4, 5]);
}

#[test]
fn fit_orders_by_count_then_alphabet_and_respects_limits() {
    let text = "b a b c\na";
    // counts: a 2, b 2, c 1 -> a before b (tie, alphabetical), then c.
    let t = WordTokenizer::fit(text, 1, 100);
    assert_eq!(t.vocab(), ["<unk>", "\n", "a", "b", "c"]);
    assert_eq!(
        WordTokenizer::fit(text, 2, 100).vocab(),
        ["<unk>", "\n", "a", "b"]
    );
    assert_eq!(WordTokenizer::fit(text, 1, 3).vocab(), ["<unk>", "\n", "a"]);
    assert_eq!(t.encode("a z\nc"), vec![2, 0, 1, 4]);
    assert_eq!(t.decode(&[2, 3, 1, 4, 99]), "a b\nc <unk>");
    assert_eq!(t.token_id("<unk>"), Some(0));
    assert_eq!(t.token_str(99), UNK_TOKEN);
}

#[test]
fn fit_is_deterministic() {
    let corpus = SyntheticCorpus::generate(&SyntheticSpec {
        seed: 3,
        num_records: 200,
        clinical_fraction: 0.5,
    });
    let a = WordTokenizer::fit(&corpus.text, 1, 10_000);
    let b = WordTokenizer::fit(&corpus.text, 1, 10_000);
    assert_eq!(a, b);
    assert_eq!(a.decode(&a.encode(&corpus.text)), corpus.text);
}

#[test]
fn spec_serde_round_trip_rebuilds_the_same_tokenizer() {
    let json = serde_json::to_string(&TokenizerSpec::Char).unwrap();
    assert_eq!(json, r#"{"kind":"Char"}"#);
    let word = WordTokenizer::fit("pay USD 12.50 .\n", 1, 100);
    let spec = word.spec();
    let back: TokenizerSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
    let rebuilt = back.build().unwrap();
    assert_eq!(rebuilt.encode("USD 12.50 x"), word.encode("USD 12.50 x"));
    assert_eq!(rebuilt.vocab_size(), word.vocab_size());
    assert_eq!(CharTokenizer.spec().build().unwrap().encode("A"), vec![34]);
}

#[test]
fn malformed_word_vocab_is_rejected() {
    let bad = TokenizerSpec::Word {
        vocab: vec!["x".into()],
        split: WordSplit::Unicode,
    };
    assert!(matches!(
        bad.build().err(),
        Some(TokenizerError::FirstNotUnk { .. })
    ));
    let dup = vec!["<unk>".into(), "a".into(), "a".into()];
    assert_eq!(
        WordTokenizer::from_vocab(dup).err(),
        Some(TokenizerError::DuplicateToken {
            token: "a".into(),
            first_id: 1,
            second_id: 2
        })
    );
}

// ---------------------------------------------------------------- corpus

fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn corpus_loads_and_normalises_line_endings() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "ok.txt", b"one\r\ntwo\n");
    assert_eq!(load_corpus(&path).unwrap(), "one\ntwo\n");
}

#[test]
fn corpus_errors_say_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write_temp(&dir, "empty.txt", b"");
    assert!(matches!(
        load_corpus(&empty),
        Err(CorpusError::Empty { .. })
    ));
    let blank = write_temp(&dir, "blank.txt", b"  \n\t\n");
    assert!(matches!(
        load_corpus(&blank),
        Err(CorpusError::Empty { .. })
    ));

    let nul = write_temp(&dir, "nul.bin", b"abc\0def");
    let err = load_corpus(&nul).unwrap_err();
    assert!(
        matches!(err, CorpusError::BinaryNul { offset: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("nul.bin"), "{err}");

    let ctrl = write_temp(&dir, "ctrl.bin", b"ab\x01\x02\x03\x04cd");
    assert!(matches!(
        load_corpus(&ctrl),
        Err(CorpusError::BinaryControl {
            first_offset: 2,
            ..
        })
    ));

    // 0xE9 ('é' in Latin-1) is the 4th byte of line 3: "x\ny\nabc\xE9".
    let latin1 = write_temp(&dir, "latin1.txt", b"x\ny\nabc\xE9z\n");
    let err = load_corpus(&latin1).unwrap_err();
    match &err {
        CorpusError::NotUtf8 {
            line,
            column,
            offset,
            ..
        } => assert_eq!((*line, *column, *offset), (3, 4, 7)),
        other => panic!("wrong error {other}"),
    }
    assert!(err.to_string().contains("line 3"), "{err}");

    let missing = dir.path().join("nope.txt");
    assert!(matches!(
        load_corpus(&missing),
        Err(CorpusError::Unreadable { .. })
    ));
}

#[test]
fn split_matches_python_int_of_point_nine_n() {
    assert_eq!(train_val_split(10), 9);
    assert_eq!(train_val_split(7), 6); // int(6.3)
    assert_eq!(train_val_split(0), 0);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn split_uses_float_arithmetic_like_python() {
    // Python: int(0.9 * 7861393667191772) == 7075254300472595, while 9n // 10 ends in ...594.
    assert_eq!(
        train_val_split(7_861_393_667_191_772),
        7_075_254_300_472_595
    );
}

#[test]
fn sequential_offsets_match_hand_computation() {
    // B = 32, T = 64, N_train = 100_000: modulus 100_000 - 65 = 99_935, never reached here.
    let step0 = sequential_offsets(0, 32, 64, 100_000);
    assert_eq!(step0, (0..32).map(|b| b * 64).collect::<Vec<_>>());
    // Step 3: ((3 * 32 + b) * 64) = 6144 + 64 b.
    let step3 = sequential_offsets(3, 32, 64, 100_000);
    assert_eq!(step3.len(), 32);
    assert_eq!(step3.first(), Some(&6144));
    assert_eq!(step3.last(), Some(&(6144 + 31 * 64)));
    // Wrapping: N_train = 1000, modulus 935. Row 15 of step 0 starts at 960 mod 935 = 25,
    // row 31 at 1984 mod 935 = 114 (Python: [(b*64) % 935 for b in range(32)]).
    let wrap = sequential_offsets(0, 32, 64, 1000);
    assert_eq!(wrap.get(14), Some(&896));
    assert_eq!(wrap.get(15), Some(&25));
    assert_eq!(wrap.get(31), Some(&114));
    assert!(wrap.iter().all(|&o| o + 65 <= 1000));
    // Too short for even one window of T + 1 tokens.
    assert!(sequential_offsets(0, 32, 64, 65).is_empty());
    assert!(sequential_offsets(5, 4, 64, 10).is_empty());
}

// ---------------------------------------------------------------- lexicon

#[test]
fn lexicon_parses_tabs_spaces_comments_and_escapes() {
    let text = "# a comment\n\nwarfarin\tdrug\n10   dose\nblood pressure\tvital sign\n\\n\tfunction\r\nwarfarin\tdrug\n";
    let lex = Lexicon::parse(text, Path::new("x.tsv")).unwrap();
    let words: Vec<(&str, &str, usize)> = lex
        .entries
        .iter()
        .map(|e| (e.word.as_str(), e.block.as_str(), e.line))
        .collect();
    assert_eq!(
        words,
        vec![
            ("warfarin", "drug", 3),
            ("10", "dose", 4),
            ("blood pressure", "vital sign", 5),
            ("\n", "function", 6),
        ]
    );
    assert_eq!(lex.block_names, ["drug", "dose", "vital sign", "function"]);
    let again = Lexicon::parse(&lex.to_tsv(), Path::new("x.tsv")).unwrap();
    assert_eq!(
        again.entries.iter().map(|e| &e.word).collect::<Vec<_>>(),
        lex.entries.iter().map(|e| &e.word).collect::<Vec<_>>()
    );
    assert_eq!(again.block_names, lex.block_names);
}

#[test]
fn lexicon_errors_name_path_and_line() {
    let err = Lexicon::parse("a\tx\n# c\nlonely\n", Path::new("lex.tsv")).unwrap_err();
    assert!(
        matches!(err, LexiconError::MissingBlock { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("lex.tsv:3:"), "{err}");

    let err = Lexicon::parse("a\tx\nb\ty\na\tz\n", Path::new("lex.tsv")).unwrap_err();
    assert!(
        matches!(
            err,
            LexiconError::ConflictingBlock {
                line: 3,
                first_line: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().starts_with("lex.tsv:3:"), "{err}");

    let err = Lexicon::parse("ok\tx\nb\\q\ty\n", Path::new("lex.tsv")).unwrap_err();
    assert!(
        matches!(err, LexiconError::BadEscape { line: 2, .. }),
        "{err}"
    );
    let err = Lexicon::parse("a\t  \n", Path::new("lex.tsv")).unwrap_err();
    assert!(
        matches!(err, LexiconError::MissingBlock { line: 1, .. }),
        "{err}"
    );
    // A block without its word was blamed on the block.
    let err = Lexicon::parse("a\tx\n\tdose\n", Path::new("lex.tsv")).unwrap_err();
    assert!(
        matches!(err, LexiconError::MissingWord { line: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("lex.tsv:2: missing word"), "{err}");
}

#[test]
fn lexicon_load_reports_invalid_utf8_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_temp(&dir, "lex.tsv", b"a\tx\nb\xFF\ty\n");
    let err = Lexicon::load(&path).unwrap_err();
    assert!(
        matches!(
            err,
            LexiconError::NotUtf8 {
                line: 2,
                column: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn resolve_maps_words_to_ids_and_rejects_unknown_tokens() {
    let tok = WordTokenizer::fit("give warfarin 10 mg .\n", 1, 100);
    let lex = Lexicon::parse("warfarin\tdrug\n10\tdose\nmg\tunit\n", Path::new("l.tsv")).unwrap();
    let resolved = lex.resolve(&tok).unwrap();
    let expected: Vec<(u32, usize)> = vec![
        (tok.token_id("warfarin").unwrap(), 0),
        (tok.token_id("10").unwrap(), 1),
        (tok.token_id("mg").unwrap(), 2),
    ];
    assert_eq!(resolved, expected);

    let lex = Lexicon::parse("warfarin\tdrug\n\naspirin\tdrug\n", Path::new("l.tsv")).unwrap();
    match lex.resolve(&tok).unwrap_err() {
        LexiconError::UnknownToken { line, word, .. } => {
            assert_eq!((line, word.as_str()), (3, "aspirin"))
        }
        other => panic!("wrong error {other}"),
    }
    let lex = Lexicon::parse("<unk>\tjunk\n", Path::new("l.tsv")).unwrap();
    assert!(matches!(
        lex.resolve(&tok),
        Err(LexiconError::UnknownToken { line: 1, .. })
    ));
    // The char tokenizer knows single printable characters only.
    let lex = Lexicon::parse("\\s\tspace\nab\tpair\n", Path::new("c.tsv")).unwrap();
    assert!(matches!(
        lex.resolve(&CharTokenizer),
        Err(LexiconError::UnknownToken { line: 2, .. })
    ));
}

// ---------------------------------------------------------------- synthetic corpus

fn corpus(seed: u64, num_records: usize) -> SyntheticCorpus {
    SyntheticCorpus::generate(&SyntheticSpec {
        seed,
        num_records,
        clinical_fraction: 0.5,
    })
}

#[test]
fn synthetic_is_deterministic_in_the_seed() {
    let a = corpus(11, 300);
    assert_eq!(a, corpus(11, 300));
    assert_ne!(a.text, corpus(12, 300).text);
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    a.write_to_dir(d1.path()).unwrap();
    corpus(11, 300).write_to_dir(d2.path()).unwrap();
    for name in ["corpus.txt", "lexicon.tsv", "targets.json"] {
        let x = std::fs::read(d1.path().join(name)).unwrap();
        assert_eq!(x, std::fs::read(d2.path().join(name)).unwrap(), "{name}");
    }
}

#[test]
fn synthetic_tokens_line_up_with_split_words() {
    let c = corpus(5, 500);
    assert_eq!(split_words(&c.text), c.tokens);
    assert_eq!(join_words(&c.tokens), c.text);
    assert_eq!(c.token_categories.len(), c.tokens.len());
    assert_eq!(c.pointer_targets.len(), c.tokens.len());
    assert_eq!(c.record_starts.len(), 500);
    assert_eq!(c.record_domain.len(), 500);
    assert!(c.text.ends_with(" .\n"));
    // Every record ends with ". \n" tokens.
    let mut ends: Vec<usize> = c.record_starts.iter().skip(1).copied().collect();
    ends.push(c.tokens.len());
    for end in ends {
        assert_eq!(&c.tokens[end - 2..end], [".", "\n"]);
    }
}

#[test]
fn synthetic_pointers_are_earlier_and_of_the_right_category() {
    let c = corpus(7, 1000);
    let cat = |name: &str| c.categories.iter().position(|x| x == name).unwrap();
    let (drug, dose, amount, currency) = (cat("drug"), cat("dose"), cat("amount"), cat("currency"));
    let mut pointers = 0;
    let mut with_distractor = 0;
    for (i, target) in c.pointer_targets.iter().enumerate() {
        let ci = c.token_categories[i];
        match target {
            Some(j) => {
                pointers += 1;
                assert!(*j < i, "token {i} points forward to {j}");
                let gap = i - j - 1;
                assert!((1..=5).contains(&gap), "token {i}: {gap} words between");
                let want = if ci == dose {
                    drug
                } else {
                    assert_eq!(ci, amount, "only doses and amounts point");
                    currency
                };
                assert_eq!(c.token_categories[*j], want);
                // A distractor: another token of the target's category earlier in the record.
                let start = c.record_starts.iter().rev().find(|&&s| s <= i).unwrap();
                if (*start..*j).any(|k| c.token_categories[k] == want) {
                    with_distractor += 1;
                }
            }
            None => assert!(ci != dose && ci != amount, "token {i} has no target"),
        }
    }
    assert!(pointers > 1000, "{pointers}");
    assert!(with_distractor > 100, "{with_distractor}");
}

#[test]
fn synthetic_pointer_targets_predict_the_next_token() {
    // A dose's drug fixes the unit written after it, and an amount's currency fixes the rail
    // written after it: that is what makes the pointer worth following.
    let c = corpus(5, 600);
    let mut unit_of: HashMap<&str, &str> = HashMap::new();
    let mut rail_of: HashMap<&str, &str> = HashMap::new();
    for (i, target) in c.pointer_targets.iter().enumerate() {
        let Some(j) = target else { continue };
        let (src, next) = (c.tokens[*j].as_str(), c.tokens[i + 1].as_str());
        let map = if c.categories[c.token_categories[i]] == "dose" {
            &mut unit_of
        } else {
            &mut rail_of
        };
        assert_eq!(
            *map.entry(src).or_insert(next),
            next,
            "{src} followed by two kinds"
        );
    }
    assert!(unit_of.len() > 10 && rail_of.len() == 6);
}

#[test]
fn synthetic_lexicon_covers_every_token_consistently() {
    let c = corpus(9, 800);
    let lex: HashMap<&str, &str> = c
        .lexicon
        .iter()
        .map(|(w, b)| (w.as_str(), b.as_str()))
        .collect();
    assert_eq!(lex.len(), c.lexicon.len(), "a word listed twice");
    for (i, token) in c.tokens.iter().enumerate() {
        let block = lex
            .get(token.as_str())
            .unwrap_or_else(|| panic!("{token:?} missing"));
        assert_eq!(*block, c.categories[c.token_categories[i]], "{token:?}");
    }
    let distinct: HashSet<&String> = c.tokens.iter().collect();
    assert_eq!(distinct.len(), c.lexicon.len());
    assert!(c.lexicon.len() < 300, "{}", c.lexicon.len());
    assert_eq!(
        c.categories,
        [
            "drug",
            "dose",
            "unit",
            "condition",
            "amount",
            "currency",
            "account",
            "date",
            "function",
            "rail"
        ]
    );
    // Amounts never look like doses.
    for (w, b) in &c.lexicon {
        if b == "amount" {
            assert!(w.contains('.'), "{w}");
        }
    }
}

#[test]
fn synthetic_varies_templates_and_honours_domain_fraction() {
    let c = corpus(13, 1000);
    for domain in [Domain::Clinical, Domain::Payment] {
        // The first word after "note DATE :" / "txn DATE :" identifies the template; content
        // words are replaced by their category.
        let shapes: HashSet<String> = c
            .record_starts
            .iter()
            .zip(&c.record_domain)
            .filter(|(_, d)| **d == domain)
            .map(|(&s, _)| {
                let k = c.token_categories[s + 3];
                if c.categories[k] == "function" {
                    c.tokens[s + 3].clone()
                } else {
                    c.categories[k].clone()
                }
            })
            .collect();
        assert!(shapes.len() >= 6, "{domain:?}: {shapes:?}");
    }
    let all_payments = SyntheticCorpus::generate(&SyntheticSpec {
        seed: 1,
        num_records: 50,
        clinical_fraction: 0.0,
    });
    assert!(all_payments
        .record_domain
        .iter()
        .all(|d| *d == Domain::Payment));
    let all_clinical = SyntheticCorpus::generate(&SyntheticSpec {
        seed: 1,
        num_records: 50,
        clinical_fraction: 1.0,
    });
    assert!(all_clinical
        .record_domain
        .iter()
        .all(|d| *d == Domain::Clinical));
}

#[test]
fn synthetic_files_round_trip_through_the_loaders() {
    let c = corpus(21, 400);
    let dir = tempfile::tempdir().unwrap();
    c.write_to_dir(dir.path()).unwrap();
    let text = load_corpus(&dir.path().join("corpus.txt")).unwrap();
    assert_eq!(text, c.text);
    let lex = Lexicon::load(&dir.path().join("lexicon.tsv")).unwrap();
    let pairs: Vec<(String, String)> = lex
        .entries
        .iter()
        .map(|e| (e.word.clone(), e.block.clone()))
        .collect();
    assert_eq!(pairs, c.lexicon);
    // Every lexicon word is a token of a tokenizer fitted to the corpus.
    let tok = WordTokenizer::fit(&text, 1, 10_000);
    let resolved = lex.resolve(&tok).unwrap();
    assert_eq!(resolved.len(), c.lexicon.len());

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("targets.json")).unwrap())
            .unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["num_tokens"], c.tokens.len());
    let pairs: Vec<(usize, usize)> = serde_json::from_value(json["targets"].clone()).unwrap();
    let expected: Vec<(usize, usize)> = c
        .pointer_targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|j| (i, j)))
        .collect();
    assert_eq!(pairs, expected);
}

// ---------------------------------------------------------------- properties

proptest! {
    #[test]
    fn split_words_never_panics_or_yields_empty_tokens(s in any::<String>()) {
        for rule in [WordSplit::Ascii, WordSplit::Unicode] {
            let words = split_words_with(&s, rule);
            let mut cursor = 0usize;
            for w in &words {
                prop_assert!(!w.is_empty());
                prop_assert!(*w == "\n" || !w.chars().any(char::is_whitespace));
                // Tokens are slices of the input, in order, without overlap.
                let offset = w.as_ptr() as usize - s.as_ptr() as usize;
                prop_assert!(offset >= cursor);
                cursor = offset + w.len();
            }
            // Joining and splitting again gives the same tokens.
            let joined = join_words(&words);
            prop_assert_eq!(split_words_with(&joined, rule), words);
        }
    }

    #[test]
    fn the_two_rules_agree_on_ascii_text(s in "[ -~\t\r\n]{0,60}") {
        prop_assert_eq!(split_words_with(&s, WordSplit::Unicode), split_words(&s));
    }

    #[test]
    fn split_words_on_token_like_text(s in "[a-c0-9.,:/'\\- \n-]{0,40}") {
        for w in split_words(&s) {
            prop_assert!(!w.is_empty());
            prop_assert!(!w.starts_with(['.', ',', ':', '/', '\'', '-']) || w.len() == 1);
        }
    }

    #[test]
    fn char_encode_is_one_id_per_char(s in any::<String>()) {
        let ids = CharTokenizer.encode(&s);
        prop_assert_eq!(ids.len(), s.chars().count());
        prop_assert!(ids.iter().all(|&id| id < 96));
    }
}

// Word splitting (moved from the unit tests of src/data/tokenizer.rs).

#[test]
fn joiners_need_alphanumerics_on_both_sides() {
    assert_eq!(
        localist::data::tokenizer::split_words("a..b"),
        vec!["a", ".", ".", "b"]
    );
    assert_eq!(
        localist::data::tokenizer::split_words("-5 x-"),
        vec!["-", "5", "x", "-"]
    );
    assert_eq!(
        localist::data::tokenizer::split_words("é1\r\n"),
        vec!["é", "1", "\n"]
    );
    assert_eq!(
        localist::data::tokenizer::split_words("x.y.z."),
        vec!["x.y.z", "."]
    );
}

#[test]
fn join_then_split_is_identity_on_tokens() {
    let words = ["\n", "a", "b", "\n", "\n", "c", "."];
    assert_eq!(
        localist::data::tokenizer::join_words(&words),
        "\na b\n\nc ."
    );
    assert_eq!(
        localist::data::tokenizer::split_words(&localist::data::tokenizer::join_words(&words)),
        words
    );
}

/// `topics:K` takes the same K as `corpus-gen --topics` (2 to 8: the generator's eight topics of
/// real words), and names the range when K is outside it.
#[test]
fn the_built_in_topic_corpus_takes_every_k_the_generator_has() {
    use localist::engine::corpus::{topic_corpus, CorpusSource, MAX_TOPICS};
    for k in 2..=MAX_TOPICS {
        assert!(
            CorpusSource::parse(&format!("topics:{k}"), 1).is_ok(),
            "topics:{k}"
        );
    }
    assert_eq!(topic_corpus(1, 8).topic_names.len(), 8);
    for bad in ["topics:1", "topics:9", "topics:x"] {
        let msg = format!("{:#}", CorpusSource::parse(bad, 1).unwrap_err());
        assert!(msg.contains("2 to 8"), "{bad}: {msg}");
    }
}

#[test]
fn a_bundled_file_is_the_programs_own_copy_not_one_under_the_current_folder() {
    // Tests run in the package root, so the relative path exists from here too: a user
    // path is taken as given, a bundled one from the program's tree.
    let rel = Path::new("sample_models/tiny-clinical");
    assert_eq!(localist::engine::corpus::asset_path(rel), rel);
    let own = localist::engine::corpus::bundled_path(rel);
    assert!(own.is_absolute() && own.ends_with(rel), "{}", own.display());
    assert!(own.starts_with(env!("CARGO_MANIFEST_DIR")));
    // Nothing bundled by that name: as given.
    let other = Path::new("no/such/sample");
    assert_eq!(localist::engine::corpus::bundled_path(other), other);
}
