//! Rules: the language (errors with line:column, print → parse identity, JSON, fuzzing), the
//! checker, and injection into the sample clinical model (pointer fidelity rises to the rule's
//! target; removing a rule restores bit-identical logits, SPEC §11 item 10).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;
use common::root;

use std::path::PathBuf;

use candle_core::Device;
use localist::data::tokenizer::Tokenizer;
use localist::model::capture::capture;
use localist::model::checkpoint::Checkpoint;
use localist::model::dial::DialSetting;
use localist::rules::ast::{Condition, Name, Rule, RuleSet, Scope, Strength, Target};
use localist::rules::inject::capture_with_rules;
use localist::rules::{fire, parse_rules, print_rules, resolve, ResolvedRule};
use proptest::prelude::*;

fn example() -> String {
    std::fs::read_to_string(root().join("assets/rules/clinical_payments.rules")).unwrap()
}

/// Anchor tokens per block.
type Anchors = Vec<(String, Vec<String>)>;

fn clinical() -> (Checkpoint, Box<dyn Tokenizer>, Anchors) {
    let (ck, tok) = common::load(&root().join("sample_models/tiny-clinical"));
    let anchors: Anchors = localist::engine::anchors::recorded_anchor_tokens(&ck.meta.training);
    (ck, tok, anchors)
}

const NOTE: &str = "note 2024-07-15 : stopped atenolol dose 250 mg ; started tramadol dose 1000 g \
                    for asthma . txn 2024-08-26 : received CHF amount 20,000.00 SIC from ACC-9712 .";

#[test]
fn the_example_file_parses_prints_and_parses_back() {
    let set = parse_rules(&example()).unwrap();
    assert_eq!(set.rules.len(), 6);
    let r = &set.rules[0];
    assert_eq!(r.id.text, "dose_to_drug");
    assert_eq!(r.description, "A dose attends to the drug it belongs to");
    assert_eq!(r.strength, Strength::Fidelity { target: 0.9 });
    assert_eq!(r.id.pos.line, 7);
    assert!(!set.rules[5].enabled);
    let printed = print_rules(&set);
    assert_eq!(parse_rules(&printed).unwrap(), set);
    // Printing is canonical: printing again gives the same text.
    assert_eq!(print_rules(&parse_rules(&printed).unwrap()), printed);
    // The JSON form round-trips too.
    let json = set.to_json().unwrap();
    assert_eq!(RuleSet::from_json(&json).unwrap(), set);
}

#[test]
fn errors_give_line_and_column_and_what_was_expected_and_all_are_listed() {
    let text =
        "rule a \"x\"\n  when query.block = dose\n  target previous blok drug\n  bias 2\nend\n\
                rule b\n  when query.token = mg\n  target block drug\n  fidelity 1.5\nend\n\
                rule c\n  target block drug\nend\n";
    let errs = parse_rules(text).unwrap_err();
    let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert!(
        msgs[2].starts_with("9:12: fidelity must lie strictly between 0 and 1"),
        "{}",
        msgs[2]
    );
    assert!(
        msgs[0].starts_with("3:19: expected `block`, found `blok`"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].starts_with("7:22: expected a quoted token, found `mg`"),
        "{}",
        msgs[1]
    );
    assert!(
        msgs[3].starts_with("11:1: rule c is missing `when` and a strength"),
        "{}",
        msgs[3]
    );
    // Two mistakes in one rule are both reported.
    let errs = parse_rules(
        "rule a\n  when query.token = mg\n  target previous blok drug\n  bias 2\nend\n",
    )
    .unwrap_err();
    let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(
        msgs[0].starts_with("2:22: expected a quoted token"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].starts_with("3:19: expected `block`, found `blok`"),
        "{}",
        msgs[1]
    );
    // More kinds of mistakes, each with its place.
    let cases = [
        ("rule a\n when query.block = x\n target block y\n bias -1\nend", "4:7: bias must be ≥ 0"),
        ("rule a\n when query.block = x\n target block y\n bias 1\n bias 2\nend", "5:2: rule a has two strengths"),
        ("rule a\n when query.block = x\n target block y\n layers 3..1\n bias 1\nend", "4:9: empty range 3..1"),
        ("rule a\n when colour = x\n target block y\n bias 1\nend", "2:7: expected a condition"),
        ("rule a\n when query.block = x\n target block \"y\n bias 1\nend", "3:15: unterminated string"),
        ("rule a\n when query.block = x\n target block y\n bias 1\n", "5:1: expected a clause"),
        ("rule a\n when query.block = x\n target block y\n bias 1\nrule b", "5:1: expected `end` to close rule a"),
        ("rule a\n when query.block = x\n target block y\n bias 1\nend\nrule a\n when query.block = x\n target block y\n bias 1\nend", "6:6: rule id a is used twice (first at 1:6)"),
        ("rule a\n when query.block = x @\n", "2:23: unexpected character '@'"),
    ];
    for (text, want) in cases {
        let errs = parse_rules(text).unwrap_err();
        assert!(
            errs.errors.iter().any(|e| e.to_string().starts_with(want)),
            "{want:?} not in {errs}"
        );
    }
}

#[test]
fn unknown_blocks_and_tokens_are_errors_unless_a_rule_declares_the_block() {
    let (ck, tok, anchors) = clinical();
    let set = parse_rules(
        "rule a\n when query.block = dosage\n target block drug\n bias 1\nend\n\
         rule b\n when query.token = \"aspirinx\"\n target block antidote\n bias 1\nend\n\
         rule c\n new block antidote = \"atenolol\"\n when query.block = dose\n target block antidote\n bias 1\nend\n",
    )
    .unwrap();
    let errs = resolve(&set, &ck.blocks, tok.as_ref(), &anchors).unwrap_err();
    let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(
        msgs[0].starts_with("2:21: unknown block \"dosage\"; did you mean \"dose\"")
            && !msgs[0].contains("unassigned"),
        "{}",
        msgs[0]
    );
    assert!(
        msgs[1].starts_with("7:21: unknown token \"aspirinx\""),
        "{}",
        msgs[1]
    );
    // The declared block resolves, and block c fires on doses and targets earlier atenolol.
    let ok = parse_rules(
        "rule c\n new block antidote = \"atenolol\"\n when query.block = dose\n target block antidote\n bias 1\nend\n",
    )
    .unwrap();
    let rules = resolve(&ok, &ck.blocks, tok.as_ref(), &anchors).unwrap();
    let ids = tok.encode(NOTE);
    let f = fire(&rules, &ids, &ck.blocks.masks(&ids));
    let atenolol = tok.token_id("atenolol").unwrap();
    assert!(!f.is_empty());
    for firing in &f {
        assert!(firing
            .targets
            .iter()
            .all(|&j| ids[j] == atenolol && j < firing.query));
    }
}

fn resolved(text: &str) -> (Checkpoint, Box<dyn Tokenizer>, Vec<ResolvedRule>) {
    let (ck, tok, anchors) = clinical();
    let set = parse_rules(text).unwrap();
    let rules = resolve(&set, &ck.blocks, tok.as_ref(), &anchors).unwrap();
    (ck, tok, rules)
}

#[test]
fn the_checker_finds_where_rules_fire_and_their_targets() {
    let (ck, tok, rules) = resolved(&example());
    let ids = tok.encode(NOTE);
    let masks = ck.blocks.masks(&ids);
    let firings = fire(&rules, &ids, &masks);
    let words: Vec<String> = ids.iter().map(|&i| tok.token_str(i)).collect();
    let of = |id: &str| {
        let k = rules.iter().position(|r| r.id == id).unwrap();
        firings
            .iter()
            .filter(|f| f.rule == k)
            .map(|f| {
                (
                    words[f.query].clone(),
                    f.targets
                        .iter()
                        .map(|&j| words[j].clone())
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    // Each dose points at the nearest drug before it.
    assert_eq!(
        of("dose_to_drug"),
        vec![
            ("250".to_string(), vec!["atenolol".to_string()]),
            ("1000".to_string(), vec!["tramadol".to_string()])
        ]
    );
    // The amount fires because a currency came before it.
    assert_eq!(
        of("amount_to_currency"),
        vec![("20,000.00".to_string(), vec!["CHF".to_string()])]
    );
    // A disabled rule never fires.
    assert!(of("no_unknown_after_unit").is_empty());
}

#[test]
fn a_fidelity_rule_reaches_its_target_and_removing_it_restores_identical_logits() {
    // The clinical sample already points doses at their drug (PF 0.99), so ask for something
    // it does not do: a dose must point at the date of its note.
    let text = format!(
        "{}\nrule dose_to_date \"A dose attends to the note's date\"\n when query.block = dose\n \
         target previous block date\n fidelity 0.9\nend\n",
        example()
    );
    let (ck, tok, rules) = resolved(&text);
    let ids = tok.encode(NOTE);
    let t = ids.len();
    let dial = DialSetting::default();
    let plain = capture(&ck.model, &ck.blocks, &ids, &dial).unwrap();
    let only: Vec<ResolvedRule> = rules
        .iter()
        .filter(|r| r.id == "dose_to_date")
        .cloned()
        .collect();
    let with = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &only).unwrap();
    let report = &with.reports[0];
    assert_eq!(report.fired.len(), 2);
    // Without the rule these rows barely look at the date.
    for f in &with.firings {
        for l in 0..2 {
            for h in 0..4 {
                let hc = plain.head(l, h).unwrap();
                let pf: f64 = f
                    .targets
                    .iter()
                    .map(|&j| hc.attention[f.query * t + j] as f64)
                    .sum();
                assert!(pf < 0.5, "layer {l} head {h} row {}: PF {pf}", f.query);
            }
        }
    }
    // With it, bound 8.3 holds for every head, and the target is met everywhere.
    for h in &report.heads {
        assert!(h.in_scope);
        assert!(h.pf_mass + 1e-4 >= h.pf_bound, "{h:?}");
        assert!(h.pf_mass + 1e-4 >= 0.9, "{h:?}");
        // ρ is ρ* of 8.3 (up to the f32 scores it is solved from).
        assert!(
            h.rho > 0.0 && (h.rho - h.rho_star).abs() < 1e-4 * h.rho_star.max(1.0),
            "{h:?}"
        );
    }
    assert_eq!(report.pass, Some(true));
    // The dial follows the rule: R(i) of a fired row is its target (plus S(i)).
    let f = &with.firings[0];
    assert_eq!(
        with.capture.relevant_blocks[f.query],
        ck.blocks.names.iter().position(|n| n == "date").unwrap()
    );
    assert_ne!(with.capture.logits, plain.logits);
    // Switched off, or removed: bit-identical logits and attention.
    let mut off = rules.clone();
    for r in &mut off {
        r.enabled = false;
    }
    let none = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &off).unwrap();
    assert_eq!(none.capture.logits, plain.logits);
    assert_eq!(none.capture.heads, plain.heads);
    let empty = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &[]).unwrap();
    assert_eq!(empty.capture.logits, plain.logits);
    // The example's own fidelity rules pass too, on this text.
    let example_rules: Vec<ResolvedRule> = rules
        .iter()
        .filter(|r| r.id != "dose_to_date")
        .cloned()
        .collect();
    let all = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &example_rules).unwrap();
    for r in all
        .reports
        .iter()
        .filter(|r| r.target_pf.is_some() && !r.fired.is_empty())
    {
        assert_eq!(r.pass, Some(true), "{r:?}");
    }
    // Two fidelity rules that pull the same rows to different targets cannot both pass: the
    // report says so rather than hiding it.
    let both = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &rules).unwrap();
    let passes: Vec<Option<bool>> = both
        .reports
        .iter()
        .filter(|r| r.id == "dose_to_drug" || r.id == "dose_to_date")
        .map(|r| r.pass)
        .collect();
    assert!(passes.contains(&Some(false)), "{passes:?}");
}

#[test]
fn a_bias_rule_acts_only_in_its_scope_and_output_constraints_act_where_it_fires() {
    let text = "rule r\n when query.block = unit\n target previous block dose\n layers 1\n heads 2\n bias 6\n \
                forbid \"<unk>\"\n boost \"for\" by 3\nend\n";
    let (ck, tok, rules) = resolved(text);
    let ids = tok.encode(NOTE);
    let dial = DialSetting::default();
    let plain = capture(&ck.model, &ck.blocks, &ids, &dial).unwrap();
    let with = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &rules).unwrap();
    let t = ids.len();
    // Layer 0 is untouched (its input does not depend on layer 1).
    for h in 0..ck.model.config.num_heads {
        assert_eq!(
            with.capture.head(0, h).unwrap().attention,
            plain.head(0, h).unwrap().attention
        );
    }
    let report = &with.reports[0];
    let inside = report
        .heads
        .iter()
        .find(|h| h.layer == 1 && h.head == 2)
        .unwrap();
    assert!(inside.in_scope && inside.rho == 6.0);
    let outside = report
        .heads
        .iter()
        .find(|h| h.layer == 1 && h.head == 1)
        .unwrap();
    assert!(!outside.in_scope && outside.rho == 0.0);
    assert!(inside.pf_mass >= inside.pf_bound - 1e-4);
    // In-scope PF rose over the rule-free pass.
    let f = &with.firings[0];
    let pf = |c: &localist::model::capture::Capture| {
        f.targets
            .iter()
            .map(|&j| c.head(1, 2).unwrap().attention[f.query * t + j] as f64)
            .sum::<f64>()
    };
    assert!(pf(&with.capture) > pf(&plain));
    // Output constraints at fired rows only.
    let v = ck.model.config.vocab_size;
    let unk = tok.token_id("<unk>").unwrap() as usize;
    let boost = tok.token_id("for").unwrap() as usize;
    for i in 0..t {
        let fired = with.firings.iter().any(|f| f.query == i);
        let (a, b) = (with.capture.logits[i * v + unk], plain.logits[i * v + unk]);
        if fired {
            assert_eq!(a, f32::NEG_INFINITY);
        } else {
            assert_eq!(a, b);
        }
    }
    let i = f.query;
    let before_boost = {
        // Logits of row i with the attention bias but without the boost: the boost adds 3.
        let mut r2 = rules.clone();
        r2[0].boost = None;
        capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &r2)
            .unwrap()
            .capture
            .logits[i * v + boost]
    };
    assert!((with.capture.logits[i * v + boost] - before_boost - 3.0).abs() < 1e-5);
}

// ---- Property tests: print → parse identity over generated rules, and a parser that never
// panics on arbitrary text. `RULES_FUZZ_CASES` raises the number of cases (the note on the
// issue reports a 10-minute run).

fn fuzz_cases(default: u32) -> u32 {
    std::env::var("RULES_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn name_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z_][a-z0-9_]{0,8}",
        "[A-Za-z0-9 _\\-\\.\"\\\\\t\n]{1,10}",
        Just("all".to_string()),
        Just("end".to_string()),
        Just("query.block".to_string()),
    ]
}

fn token_text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z]{1,6}", "[ -~]{0,6}", "\\PC{1,4}"]
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::All),
        prop::collection::vec((0usize..40, 0usize..5), 1..4)
            .prop_map(|v| Scope::Ranges(v.into_iter().map(|(a, d)| (a, a + d)).collect())),
    ]
}

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        token_text().prop_map(|t| Condition::QueryToken {
            token: Name::new(t)
        }),
        name_text().prop_map(|b| Condition::QueryBlock {
            block: Name::new(b)
        }),
        token_text().prop_map(|t| Condition::EarlierToken {
            token: Name::new(t)
        }),
        name_text().prop_map(|b| Condition::EarlierBlock {
            block: Name::new(b)
        }),
        (0usize..100, 0usize..10).prop_map(|(a, d)| Condition::Position { from: a, to: a + d }),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        name_text().prop_map(|b| Target::Block {
            block: Name::new(b)
        }),
        token_text().prop_map(|t| Target::Token {
            token: Name::new(t)
        }),
        name_text().prop_map(|b| Target::PreviousBlock {
            block: Name::new(b)
        }),
        name_text().prop_map(|b| Target::Anchor {
            block: Name::new(b)
        }),
        prop::collection::vec(0usize..200, 1..5)
            .prop_map(|positions| Target::Positions { positions }),
    ]
}

fn rule() -> impl Strategy<Value = Rule> {
    (
        "[a-z_][a-z0-9_\\-]{0,10}",
        "[ -~]{0,20}",
        any::<bool>(),
        prop::collection::vec(condition(), 1..4),
        target(),
        (scope(), scope()),
        prop_oneof![
            (0.0f64..50.0).prop_map(|rho| Strength::Bias { rho }),
            (0.001f64..0.999).prop_map(|target| Strength::Fidelity { target }),
        ],
        prop::collection::vec(token_text().prop_map(Name::new), 0..3),
        prop::option::of((
            prop::collection::vec(token_text().prop_map(Name::new), 1..3),
            -5.0f64..5.0,
        )),
        prop::option::of((
            name_text().prop_map(Name::new),
            prop::collection::vec(token_text().prop_map(Name::new), 1..3),
        )),
    )
        .prop_map(
            |(
                id,
                description,
                enabled,
                when,
                target,
                (layers, heads),
                strength,
                forbid,
                boost,
                new_block,
            )| Rule {
                id: Name::new(id),
                description,
                enabled,
                when,
                target,
                layers,
                heads,
                strength,
                forbid,
                boost,
                new_block,
                at: Default::default(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(fuzz_cases(256)))]

    #[test]
    fn print_then_parse_gives_the_same_rules(rules in prop::collection::vec(rule(), 0..4)) {
        // Ids must be unique within a file.
        let mut rules = rules;
        for (k, r) in rules.iter_mut().enumerate() {
            r.id.text = format!("{}_{k}", r.id.text);
        }
        let set = RuleSet { rules };
        let text = print_rules(&set);
        let back = parse_rules(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&back, &set);
        prop_assert_eq!(RuleSet::from_json(&set.to_json().unwrap()).unwrap(), set);
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_text(text in "\\PC{0,300}") {
        let _ = parse_rules(&text);
    }

    #[test]
    fn the_parser_never_panics_on_mangled_rules(cut in 0usize..2000, junk in "[ -~\n]{0,12}", at in 0usize..2000) {
        let mut text: Vec<char> = example().chars().collect();
        let cut = cut.min(text.len());
        text.truncate(cut);
        let at = at.min(text.len());
        for (k, c) in junk.chars().enumerate() {
            text.insert(at + k, c);
        }
        let text: String = text.into_iter().collect();
        if let Err(e) = parse_rules(&text) {
            prop_assert!(!e.errors.is_empty());
            for err in &e.errors {
                prop_assert!(err.pos.line >= 1 && err.pos.col >= 1);
            }
        }
    }
}

#[test]
fn a_truncated_rule_file_is_rejected_whole() {
    let text = example();
    let cut = &text[..text.len() - 5];
    let errs = parse_rules(cut).unwrap_err();
    assert_eq!(errs.errors.len(), 1, "{errs}");
    assert!(errs.to_string().contains("expected a clause"), "{errs}");
}

#[test]
fn training_towards_a_rule_raises_its_pointer_fidelity_without_injection() {
    use localist::engine::corpus::{CorpusSource, TokenizerKind};
    use localist::engine::train_job::TrainJob;
    use localist::engine::train_run::run;
    use localist::train::trainer::TrainConfig;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("date.rules");
    std::fs::write(
        &file,
        "rule dose_to_date \"A dose attends to the note's date\"\n  when query.block = dose\n  \
         target previous block date\n  fidelity 0.9\nend\n",
    )
    .unwrap();
    let job = |rules: Option<PathBuf>| TrainJob {
        corpus: CorpusSource::Synthetic {
            seed: 3,
            records: 300,
        },
        tokenizer: TokenizerKind::Word,
        train: TrainConfig {
            steps: 40,
            batch_size: 8,
            seq_len: 32,
            seed: 1,
            mu_rule: if rules.is_some() { 1.0 } else { 0.0 },
            ..TrainConfig::default()
        },
        eval_windows: 4,
        save_optimizer: false,
        rules,
        ..TrainJob::default()
    };
    let pf_on_rule_rows = |rules_file: Option<PathBuf>| -> (f64, f64) {
        let out = run(&job(rules_file), &Device::Cpu, |_| true).unwrap();
        let s = &out.session;
        let last = s.history.last().unwrap().rule_nats;
        let set = parse_rules(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let rules = resolve(&set, &s.trainer.blocks, s.corpus.tokenizer.as_ref(), &[]).unwrap();
        let (mut sum, mut n) = (0.0, 0usize);
        for w in 0..20 {
            let Some(win) = s.val.window(w * 32, 32) else {
                break;
            };
            let ids = win.x;
            // Plain capture: no rule is injected; only what training taught shows.
            let cap = capture(
                &s.trainer.model,
                &s.trainer.blocks,
                &ids,
                &DialSetting::default(),
            )
            .unwrap();
            for f in fire(&rules, &ids, &s.trainer.blocks.masks(&ids)) {
                if f.targets.is_empty() {
                    continue;
                }
                for hc in &cap.heads {
                    sum += f
                        .targets
                        .iter()
                        .map(|&j| hc.attention[f.query * ids.len() + j] as f64)
                        .sum::<f64>();
                    n += 1;
                }
            }
        }
        assert!(n > 0, "the rule never fired on held-out text");
        (sum / n as f64, last)
    };
    let (without, rule_nats_without) = pf_on_rule_rows(None);
    let (with, rule_nats_with) = pf_on_rule_rows(Some(file.clone()));
    assert_eq!(rule_nats_without, 0.0);
    assert!(rule_nats_with > 0.0);
    assert!(
        with > without + 0.2,
        "PF on the rule's rows: {without:.3} without the rule penalty, {with:.3} with it"
    );
    eprintln!("PF on the rule's rows: {without:.3} without, {with:.3} with μ_rule = 1");
    // A rule file with an error stops training before it starts, naming the file and place.
    std::fs::write(
        &file,
        "rule x\n when query.block = nope\n target block drug\n bias 1\nend\n",
    )
    .unwrap();
    let err = match run(&job(Some(file.clone())), &Device::Cpu, |_| true) {
        Ok(_) => panic!("a bad rule file must stop training"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("date.rules:2:21: unknown block \"nope\""),
        "{err}"
    );
}

#[test]
fn a_byte_order_mark_is_skipped_and_columns_stay_where_the_eye_sees_them() {
    let text = example();
    let with_bom = format!("\u{feff}{text}");
    let plain = parse_rules(&text).unwrap();
    assert_eq!(parse_rules(&with_bom).unwrap(), plain);
    // An error on the first line is at the same column with and without the mark.
    let bad = "rule a\n when colour = x\n target block y\n bias 1\nend";
    let e1 = parse_rules(bad).unwrap_err().to_string();
    let e2 = parse_rules(&format!("\u{feff}{bad}"))
        .unwrap_err()
        .to_string();
    assert_eq!(e1, e2);
    assert!(e2.contains("2:7: expected a condition"), "{e2}");
    let first_line = parse_rules("\u{feff}@rule").unwrap_err().to_string();
    assert!(
        first_line.contains("1:1: unexpected character '@'"),
        "{first_line}"
    );
}

#[test]
fn a_file_of_garbage_keeps_a_bounded_number_of_errors_and_lists_fifty() {
    use localist::rules::parse::{MAX_KEPT_ERRORS, MAX_LISTED_ERRORS};
    let garbage = "@".repeat(20_000);
    let errs = parse_rules(&garbage).unwrap_err();
    assert_eq!(errs.total(), 20_000);
    assert!(
        errs.errors.len() <= MAX_KEPT_ERRORS,
        "{}",
        errs.errors.len()
    );
    let shown = errs.to_string();
    assert!(shown.starts_with("20000 errors"), "{}", &shown[..40]);
    assert_eq!(shown.lines().count(), 1 + MAX_LISTED_ERRORS + 1, "{shown}");
    assert!(
        shown.contains(&format!("… and {} more errors", 20_000 - MAX_LISTED_ERRORS)),
        "{shown}"
    );
    let listed = errs.with_file("g.rules");
    assert_eq!(listed.lines().count(), MAX_LISTED_ERRORS + 1);
    assert!(
        listed.starts_with("g.rules:1:1: unexpected character"),
        "{listed}"
    );
    // A handful of errors is listed in full, with no summary line.
    let few = parse_rules("@ @").unwrap_err();
    assert_eq!(few.total(), 2);
    assert!(!few.to_string().contains("more error"), "{few}");
}

#[test]
fn numbers_single_precision_cannot_hold_are_refused_with_line_and_column() {
    let rule = |strength: &str| {
        format!(
            "rule r\n  when query.block = dose\n  target previous block drug\n  {strength}\nend\n"
        )
    };
    for (strength, want) in [
        (
            "bias 10000000000000000000000000000000000000000",
            "4:8: bias 1e40 is too large",
        ),
        ("bias 1001", "4:8: bias 1001 is too large"),
        (
            "fidelity 0.99999999999",
            "4:12: fidelity 0.99999999999 is too close",
        ),
        ("fidelity 0.000000001", "4:12: fidelity 1e-9 is too close"),
    ] {
        let e = parse_rules(&rule(strength)).unwrap_err().to_string();
        assert!(e.contains(want), "{strength}: {e}");
    }
    let boost = "rule r\n  when query.block = dose\n  target previous block drug\n  bias 1\n  \
                 boost \"mg\" by -1000000000000000000000000000000000000000\nend\n";
    let e = parse_rules(boost).unwrap_err().to_string();
    assert!(e.contains("5:17: boost -1e39 is too large"), "{e}");
    // Sane values still parse.
    assert!(parse_rules(&rule("bias 1000")).is_ok());
    assert!(parse_rules(&rule("fidelity 0.999")).is_ok());
}

#[test]
fn numbers_in_scientific_notation_are_read_whole() {
    // "bias -1e30" was read as -1 and then stopped at "e30", saying nothing of exponents.
    let set =
        parse_rules("rule a \"\" when position 0 target positions 0 bias 2.5e-1 end").unwrap();
    assert_eq!(set.rules[0].strength, Strength::Bias { rho: 0.25 });
    let e =
        parse_rules("rule a \"\" when position 0 target positions 0 bias -1e30 end").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("bias must be ≥ 0") && msg.contains("-1000000000000000000000000000000"),
        "{msg}"
    );
    // Printed and parsed back unchanged.
    assert_eq!(parse_rules(&print_rules(&set)).unwrap(), set);
}

/// A decimal comma (`fidelity 0,9`, as many locales write it) is named as such at its column,
/// not read as 0 and a stray comma; a comma between list items stays a list.
#[test]
fn a_decimal_comma_is_named_with_the_fix() {
    let text = "rule a\n  when query.block = dose\n  target previous block drug\n  fidelity 0,9\nend\n\
                rule b\n  when query.block = dose\n  target block drug\n  boost \"mg\" by 1,5\nend\n";
    let errs = parse_rules(text).unwrap_err();
    let msgs: Vec<String> = errs.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    assert!(
        msgs[0].starts_with("4:12: `0,9` has a decimal comma; write it with a point: 0.9"),
        "{msgs:#?}"
    );
    assert!(msgs[1].contains("`1,5` has a decimal comma"), "{msgs:#?}");
    let ok =
        "rule c\n  when query.block = dose\n  target block drug\n  layers 0,1\n  bias 2\nend\n";
    assert!(parse_rules(ok).is_ok());
    // A point with no digit before it reads as the number it means.
    let lead = "rule d\n  when query.block = dose\n  target block drug\n  layers 0..1\n  fidelity .9\nend\n";
    let set = parse_rules(lead).unwrap();
    assert_eq!(set.rules[0].strength, Strength::Fidelity { target: 0.9 });
}
