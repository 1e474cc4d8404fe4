//! Block-level recruitment (SPEC §9, §11 items 11–12): from one block on text from K* topics
//! with disjoint vocabularies, recruitment ends with K* blocks whose anchors come from one topic
//! each; a rejected move restores the exact weights and map; the accepted moves respect the
//! ⌊DL₀/δ⌋ bound; merges and extensions act by the same test.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::time::Instant;

use candle_core::Device;
use localist::analysis::mdl::{max_accepted_moves, Verdict};
use localist::engine::anchors::anchor_report;
use localist::engine::best::BestState;
use localist::engine::corpus::{topic_corpus, BlockSpec, CorpusSource, TokenizerKind};
use localist::engine::held_out::HeldOutPoint;
use localist::engine::train_job::{setup, Session, TrainJob};
use localist::model::blocks::BlockMap;
use localist::train::optimizer::AdamWConfig;
use localist::train::recruit::{
    adjusted_rand_index, otsu_cut, with_new_block, without_block, MoveKind, RecruitConfig,
    Recruiter,
};
use localist::train::trainer::TrainConfig;

fn job(topics: usize, recruit: RecruitConfig) -> TrainJob {
    TrainJob {
        corpus: CorpusSource::Topics { seed: 0, topics },
        tokenizer: TokenizerKind::Word,
        blocks: Some(BlockSpec::Single),
        train: TrainConfig {
            steps: 2000,
            lambda_train: 1.0,
            anneal_fraction: 0.0,
            mu_anchor: 0.05,
            batch_size: 16,
            seq_len: 64,
            optimizer: AdamWConfig {
                lr: 3e-3,
                ..Default::default()
            },
            ..Default::default()
        },
        recruit: Some(recruit),
        ..Default::default()
    }
}

fn fast_config() -> RecruitConfig {
    RecruitConfig {
        warmup: 50,
        every: 25,
        ..RecruitConfig::default()
    }
}

/// The generator's topic of every vocabulary id (None for "\n" and "<unk>").
fn truth_of(session: &Session, topics: usize) -> Vec<Option<usize>> {
    let corpus = topic_corpus(0, topics);
    let tok = session.corpus.tokenizer.as_ref();
    let mut truth = vec![None; tok.vocab_size()];
    for (word, t) in &corpus.truth {
        if let Some(&id) = tok.encode(word).first() {
            if let Some(slot) = truth.get_mut(id as usize) {
                *slot = Some(*t);
            }
        }
    }
    truth
}

/// Train with recruitment until it stops (or 1,500 steps); returns the session.
fn grow(topics: usize) -> Session {
    let mut s = match setup(&job(topics, fast_config()), &Device::Cpu) {
        Ok(s) => s,
        Err(e) => panic!("setup: {e:#}"),
    };
    let started = Instant::now();
    while s.trainer.step < 1500 {
        if let Err(e) = s.trainer.train_step() {
            panic!("step {}: {e}", s.trainer.step);
        }
        if let Err(e) = s.maybe_recruit() {
            panic!("{e:#}");
        }
        if s.recruiter.as_ref().is_some_and(|r| r.stopped.is_some()) {
            break;
        }
    }
    eprintln!(
        "K* = {topics}: {} steps, {:.1} s",
        s.trainer.step,
        started.elapsed().as_secs_f64()
    );
    s
}

fn check_topics(topics: usize) {
    let s = grow(topics);
    let Some(rec) = s.recruiter.as_ref() else {
        panic!("no recruiter")
    };
    for e in &rec.log {
        eprintln!("{}", e.line());
    }
    assert!(rec.stopped.is_some(), "recruitment did not stop");
    let blocks = &s.trainer.blocks;
    let truth = truth_of(&s, topics);
    // K* recruited blocks besides the catch-all block 0 (which keeps "\n" and "<unk>").
    assert_eq!(
        blocks.num_blocks() - 1,
        topics,
        "blocks: {:?}",
        blocks.names
    );
    // ARI of the recruited partition against the generator over the topic words.
    let (mut found, mut want) = (Vec::new(), Vec::new());
    for (id, t) in truth.iter().enumerate() {
        if let Some(t) = t {
            found.push(blocks.token_block.get(id).copied().unwrap_or(0));
            want.push(*t);
        }
    }
    let ari = adjusted_rand_index(&found, &want);
    // Anchors of each recruited block on the training text, and their topic purity in bits.
    let report = anchor_report(
        &s.trainer.train.ids,
        blocks,
        s.corpus.tokenizer.as_ref(),
        64,
        5,
        8,
    );
    let tok = s.corpus.tokenizer.as_ref();
    let mut worst = 0.0f64;
    for (name, anchors) in report.blocks.iter().skip(1) {
        assert!(!anchors.is_empty(), "block {name} has no anchors");
        let mut by: BTreeMap<usize, f64> = BTreeMap::new();
        for a in anchors {
            let id = tok.encode(&a.token).first().copied().unwrap_or(0) as usize;
            let Some(Some(t)) = truth.get(id) else {
                panic!("anchor {} of {name} has no topic", a.token)
            };
            *by.entry(*t).or_insert(0.0) += a.count as f64;
        }
        let total: f64 = by.values().sum();
        let h: f64 = by
            .values()
            .map(|&c| {
                let p = c / total;
                -p * p.log2()
            })
            .sum();
        eprintln!(
            "block {name}: anchors {:?}, topic purity {h:.3} bits",
            anchors.iter().map(|a| a.token.as_str()).collect::<Vec<_>>()
        );
        worst = worst.max(h);
    }
    eprintln!("K* = {topics}: ARI {ari:.4}, worst anchor purity {worst:.3} bits");
    assert!(worst <= 0.2, "anchor purity {worst} bits > 0.2");
    assert!(ari >= 0.9, "ARI {ari}");
    // Every accepted move saved more than δ, and their number respects ⌊DL₀/δ⌋.
    for e in &rec.log {
        if let Some(d) = &e.decision {
            if d.verdict == Verdict::Accepted {
                assert!(-d.delta_dl > d.delta_min, "{}", e.line());
            }
        }
    }
    let bound = max_accepted_moves(rec.dl0.unwrap_or(0.0), rec.config.delta_bits);
    assert!(rec.accepted <= bound, "{} accepted > {bound}", rec.accepted);
}

#[test]
fn three_topics_grow_three_blocks() {
    check_topics(3);
}

#[test]
fn five_topics_grow_five_blocks() {
    check_topics(5);
}

/// Every parameter's values, by name.
fn values(s: &Session) -> BTreeMap<String, Vec<u32>> {
    s.trainer
        .model
        .params
        .tensors()
        .iter()
        .map(|(n, t)| {
            let v = t.flatten_all().and_then(|t| t.to_vec1::<f32>());
            let v = v.unwrap_or_else(|e| panic!("{n}: {e}"));
            (n.clone(), v.iter().map(|x| x.to_bits()).collect())
        })
        .collect()
}

/// Rounds from step 5, every 5 steps, every move rejected (δ = 10¹²), and a second look of 3
/// steps at a cluster judged at once.
fn looks_rejected() -> RecruitConfig {
    RecruitConfig {
        warmup: 5,
        every: 5,
        second_look: 3,
        buffer_tokens: 2048,
        delta_bits: 1e12,
        min_context_gain: 0.0,
        ..RecruitConfig::default()
    }
}

#[test]
fn a_rejected_second_look_keeps_its_control_which_is_plain_training() {
    // Every move rejected, a second look of 3 steps: the round keeps the look's control, and
    // that is exactly the state of the same run trained 3 more steps with no round at all.
    let cfg = looks_rejected();
    let start = |cfg: RecruitConfig| {
        let mut s = setup(&job(3, cfg), &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"));
        for _ in 0..5 {
            s.trainer.train_step().unwrap_or_else(|e| panic!("{e}"));
        }
        s
    };
    let (mut with_round, mut plain) = (start(cfg.clone()), start(cfg));
    let events = with_round
        .maybe_recruit()
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        events.iter().any(|e| e.note.contains("second look")),
        "no second look: {events:?}"
    );
    assert!(events
        .iter()
        .filter_map(|e| e.decision.as_ref())
        .all(|d| d.verdict == Verdict::Rejected));
    for _ in 0..3 {
        plain.trainer.train_step().unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(with_round.trainer.step, 8);
    assert_eq!(with_round.trainer.blocks, plain.trainer.blocks);
    assert!(
        values(&with_round) == values(&plain),
        "the kept control is not plain training"
    );
    // And the runs go on alike: the sampler and optimizer state came with it.
    let a = with_round
        .trainer
        .train_step()
        .unwrap_or_else(|e| panic!("{e}"));
    let b = plain.trainer.train_step().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.loss_nats.to_bits(), b.loss_nats.to_bits());
    assert!(values(&with_round) == values(&plain));
    // The kept steps count as training, not as the round's cost.
    let rec = with_round
        .recruiter
        .as_ref()
        .unwrap_or_else(|| panic!("no recruiter"));
    let (round_ms, train_ms) = rec.cost_ms();
    assert!(round_ms > 0.0 && train_ms > 0.0, "{round_ms} {train_ms}");
}

#[test]
fn a_checkpoint_is_written_when_a_round_moves_the_step_past_its_multiple() {
    // The round at step 5 keeps its second look's 3 control steps (5 → 8), so the run never
    // stops at step 5: its checkpoint is written at 8, when the step has passed the multiple.
    let cfg = looks_rejected();
    let dir = std::env::temp_dir().join(format!("localist-recruit-ck-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut j = job(3, cfg);
    j.train.steps = 16;
    j.checkpoint_every = 5;
    j.out = Some(dir.clone());
    let steps_done = || -> Option<u64> {
        let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["training"]["steps_done"].as_u64()
    };
    let mut seen = Vec::new();
    let mut looks = 0;
    localist::engine::train_run::run_with_recruitment(
        &j,
        &Device::Cpu,
        |_| {
            seen.push(steps_done());
            true
        },
        |e| looks += usize::from(e.note.contains("second look")),
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(looks >= 1, "no second look");
    assert!(seen.contains(&Some(8)), "no checkpoint at step 8: {seen:?}");
    assert!(
        seen.iter().flatten().any(|&s| (10..15).contains(&s)),
        "no checkpoint after step 10: {seen:?}"
    );
}

#[test]
fn a_rejected_move_restores_the_exact_state() {
    // δ so large that every move is rejected: the round must leave weights, optimizer state,
    // map and step exactly as they were.
    let cfg = RecruitConfig {
        warmup: 5,
        every: 5,
        probe_steps: 3,
        buffer_tokens: 2048,
        delta_bits: 1e12,
        ..RecruitConfig::default()
    };
    let mut s = match setup(&job(3, cfg), &Device::Cpu) {
        Ok(s) => s,
        Err(e) => panic!("{e:#}"),
    };
    for _ in 0..5 {
        if let Err(e) = s.trainer.train_step() {
            panic!("{e}");
        }
    }
    let before = s.trainer.model.params.tensors();
    let blocks_before = s.trainer.blocks.clone();
    let step_before = s.trainer.step;
    let events = match s.maybe_recruit() {
        Ok(e) => e,
        Err(e) => panic!("{e:#}"),
    };
    assert!(
        events.iter().any(|e| e.kind == MoveKind::Recruit),
        "no candidate was tried: {events:?}"
    );
    assert!(events
        .iter()
        .filter_map(|e| e.decision.as_ref())
        .all(|d| d.verdict == Verdict::Rejected));
    assert_eq!(s.trainer.blocks, blocks_before);
    assert_eq!(s.trainer.step, step_before);
    let after = s.trainer.model.params.tensors();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    for (name, t) in &before {
        let a = t.flatten_all().and_then(|t| t.to_vec1::<f32>());
        let b = after[name].flatten_all().and_then(|t| t.to_vec1::<f32>());
        match (a, b) {
            (Ok(a), Ok(b)) => assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name} changed"
            ),
            _ => panic!("{name}: could not read"),
        }
    }
    // The next ordinary step is the same as without the round (the sampler was restored).
    let rec = s.recruiter.as_ref().map(|r| r.tabu.len()).unwrap_or(0);
    assert!(rec >= 1, "the rejected cluster is on the tabu list");
}

#[test]
fn block_edits_and_ari() {
    let map = BlockMap::from_assignments(
        6,
        &[
            (1, "a".into()),
            (2, "a".into()),
            (3, "b".into()),
            (4, "c".into()),
        ],
        "t",
    );
    let grown = with_new_block(&map, &[5], "d");
    assert_eq!(grown.num_blocks(), 5);
    assert_eq!(grown.token_block[5], 4);
    // Remove "b" (index 2) into "a": c shifts from 3 to 2, d from 4 to 3.
    let (merged, target) = without_block(&grown, 2, 1);
    assert_eq!(target, 1);
    assert_eq!(merged.names, vec!["unassigned", "a", "c", "d"]);
    assert_eq!(merged.token_block, vec![0, 1, 1, 1, 2, 3]);
    assert_eq!(merged.relevance, vec![0, 1, 2, 3]);
    // Prune "a" into unassigned.
    let (pruned, _) = without_block(&merged, 1, 0);
    assert_eq!(pruned.token_block, vec![0, 0, 0, 0, 1, 2]);
    // ARI: identical partitions (up to labels) give 1, a split of one class less.
    assert!((adjusted_rand_index(&[0, 0, 1, 1, 2, 2], &[5, 5, 3, 3, 4, 4]) - 1.0).abs() < 1e-12);
    let split = adjusted_rand_index(&[0, 0, 1, 1, 2, 2], &[0, 1, 2, 2, 3, 3]);
    assert!(split < 1.0 && split > 0.0, "{split}");
    // Otsu splits two clear groups where they part.
    assert_eq!(otsu_cut(&[0.9, 0.85, 0.8, 0.1, 0.05]), 3);
}

#[test]
fn a_redundant_split_is_merged_back() {
    // Start from the true topics with "fruit" cut into two blocks and train a little: merging
    // the halves costs no data bits (each half's queries regain the other half's keys) and saves
    // a header, so the merge test (same test, sign reversed) must accept it.
    let mut s = match setup(
        &job(
            3,
            RecruitConfig {
                warmup: 0,
                every: 1,
                probe_steps: 10,
                buffer_tokens: 16384,
                ..RecruitConfig::default()
            },
        ),
        &Device::Cpu,
    ) {
        Ok(s) => s,
        Err(e) => panic!("{e:#}"),
    };
    let truth = truth_of(&s, 3);
    let mut map = s.trainer.blocks.clone();
    let mut fruit_half = Vec::new();
    let names = ["fruit-a", "tools", "weather"];
    let mut k = 0;
    for (id, t) in truth.iter().enumerate() {
        if let Some(t) = t {
            if *t == 0 {
                k += 1;
                if k % 2 == 0 {
                    fruit_half.push(id as u32);
                    continue;
                }
            }
            let name = names[*t];
            let b = match map.index_of(name) {
                Some(b) => b,
                None => {
                    map = with_new_block(&map, &[], name);
                    map.num_blocks() - 1
                }
            };
            map.token_block[id] = b;
        }
    }
    let map = with_new_block(&map, &fruit_half, "fruit-b");
    let anchors: Vec<candle_core::Tensor> = (0..s.trainer.model.config.num_layers)
        .map(|l| {
            let a = s
                .trainer
                .model
                .params
                .get(&format!("anchors.{l}.keys"))
                .unwrap_or_else(|e| panic!("{e}"));
            let row = a.narrow(1, 0, 1).unwrap_or_else(|e| panic!("{e}"));
            let reps: Vec<&candle_core::Tensor> =
                std::iter::repeat_n(&row, map.num_blocks()).collect();
            candle_core::Tensor::cat(&reps, 1).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    if let Err(e) = s.trainer.replace_blocks(map, anchors) {
        panic!("{e}");
    }
    for _ in 0..150 {
        if let Err(e) = s.trainer.train_step() {
            panic!("{e}");
        }
    }
    let Some(rec) = s.recruiter.as_mut() else {
        panic!("no recruiter")
    };
    // Only the merge/prune part matters here: no unassigned topic word is left to recruit.
    *rec = Recruiter::new(rec.config.clone());
    // A merge read at once pays at two rounds in a row before it is kept: the first round's
    // waits, the next round's (ten steps on) keeps it.
    for (round, kept) in [(0, false), (1, true)] {
        if round > 0 {
            for _ in 0..10 {
                s.trainer.train_step().unwrap_or_else(|e| panic!("{e}"));
            }
        }
        let events = match s.maybe_recruit() {
            Ok(e) => e,
            Err(e) => panic!("{e:#}"),
        };
        for e in &events {
            eprintln!("{}", e.line());
        }
        let merge = events
            .iter()
            .find(|e| e.kind == MoveKind::Merge)
            .unwrap_or_else(|| panic!("no merge tried: {events:?}"));
        assert!(
            merge.block.starts_with("fruit") && merge.note.starts_with("fruit"),
            "merged the wrong pair: {}",
            merge.line()
        );
        let want = if kept {
            (Verdict::Accepted, "paid at the round before too", 4)
        } else {
            (
                Verdict::Rejected,
                "kept when it pays again at the next round",
                5,
            )
        };
        assert_eq!(
            merge.decision.as_ref().map(|d| d.verdict),
            Some(want.0),
            "{}",
            merge.line()
        );
        assert!(merge.note.contains(want.1), "{}", merge.line());
        assert_eq!(s.trainer.blocks.num_blocks(), want.2);
    }
}

#[test]
fn a_block_declared_by_a_rule_is_tried_first() {
    let mut s = match setup(&job(3, fast_config()), &Device::Cpu) {
        Ok(s) => s,
        Err(e) => panic!("{e:#}"),
    };
    let corpus = topic_corpus(0, 3);
    let words: Vec<String> = corpus
        .truth
        .iter()
        .filter(|(_, t)| *t == 0)
        .map(|(w, _)| format!("{w:?}"))
        .collect();
    let text = format!(
        "rule fruit_block \"Fruit words form a block\"\n  new block fruit = {}\n  \
         when query.block = fruit\n  target block fruit\n  layers all\n  heads all\n  bias 0\nend\n",
        words.join(" ")
    );
    let set = localist::rules::parse_rules(&text).unwrap_or_else(|e| panic!("{e}"));
    s.trainer.rules =
        localist::rules::resolve(&set, &s.trainer.blocks, s.corpus.tokenizer.as_ref(), &[])
            .unwrap_or_else(|e| panic!("{e}"));
    while s.trainer.step < 50 {
        if let Err(e) = s.trainer.train_step() {
            panic!("{e}");
        }
    }
    let events = s.maybe_recruit().unwrap_or_else(|e| panic!("{e:#}"));
    let first = events
        .iter()
        .find(|e| e.kind == MoveKind::Recruit)
        .unwrap_or_else(|| panic!("no recruit tried: {events:?}"));
    eprintln!("{}", first.line());
    assert_eq!(first.block, "fruit");
    assert_eq!(first.tokens.len(), 17);
    assert!(first.note.starts_with("declared by a rule"));
    assert_eq!(
        first.decision.as_ref().map(|d| d.verdict),
        Some(Verdict::Accepted)
    );
    // Re-resolving the same rules against the grown map refers to the recruited block.
    assert!(
        localist::rules::resolve(&set, &s.trainer.blocks, s.corpus.tokenizer.as_ref(), &[]).is_ok()
    );
}

/// Merges and prunes wait until the penalty's ramp after the last accepted move has run: a
/// removal is judged on a model trained under the map it would undo. (Rounds 25 steps apart
/// merged two true topics 25 steps after recruiting them, mid-ramp, on a 3-topic corpus.)
#[test]
fn removals_wait_for_the_penalty_ramp_after_an_accepted_move() {
    let mut j = job(3, fast_config());
    j.train.steps = 800;
    j.train.anneal_fraction = 0.1;
    let mut s = setup(&j, &Device::Cpu).unwrap_or_else(|e| panic!("setup: {e:#}"));
    s.trainer.config.ramp_from = Some(50);
    for (step, ramped) in [
        (60, false),
        (75, false),
        (128, false),
        (129, true),
        (200, true),
    ] {
        s.trainer.step = step;
        assert_eq!(s.trainer.penalty_ramped(), ramped, "step {step}");
    }
    // No ramp at all (anneal 0, or no penalty): removals are never held back.
    s.trainer.config.anneal_fraction = 0.0;
    s.trainer.step = 51;
    assert!(s.trainer.penalty_ramped());
}

/// A session on three topics that recruits with rounds from step 50, every 25.
fn three_topic_session() -> Session {
    setup(&job(3, fast_config()), &Device::Cpu).unwrap_or_else(|e| panic!("setup: {e:#}"))
}

/// [`three_topic_session`] trained to step 40, before its first round, and a held-out point
/// there to go back to.
fn session_before_the_first_round() -> (Session, HeldOutPoint) {
    let mut s = three_topic_session();
    while s.trainer.step < 40 {
        step_and_recruit(&mut s);
    }
    let point = HeldOutPoint {
        step: s.trainer.step,
        ce_nats: 3.0,
        tokens: 1,
    };
    (s, point)
}

/// One training step, then a recruitment round when one is due.
fn step_and_recruit(s: &mut Session) {
    if let Err(e) = s.trainer.train_step() {
        panic!("step {}: {e}", s.trainer.step);
    }
    if let Err(e) = s.maybe_recruit() {
        panic!("{e:#}");
    }
}

#[test]
fn going_back_to_an_earlier_best_point_drops_the_blocks_recruited_after_it() {
    // Before the first round: one block, an empty log.
    let (mut s, point) = session_before_the_first_round();
    let train = step_and_recruit;
    let best = match BestState::of(&s.trainer, s.recruiter.as_ref(), point) {
        Ok(b) => b,
        Err(e) => panic!("{e:#}"),
    };
    let (blocks_then, values_then) = (s.trainer.blocks.clone(), values(&s));
    // Train on until recruitment has accepted a block.
    let accepted = |s: &Session| s.recruiter.as_ref().map_or(0, |r| r.accepted);
    while accepted(&s) == 0 && s.trainer.step < 600 {
        train(&mut s);
    }
    assert!(
        accepted(&s) > 0,
        "nothing recruited by step {}",
        s.trainer.step
    );
    let recruited: Vec<String> = s
        .trainer
        .blocks
        .names
        .iter()
        .filter(|n| !blocks_then.names.contains(n))
        .cloned()
        .collect();
    // Recruitment switched off meanwhile stays off after going back.
    if let Some(r) = s.recruiter.as_mut() {
        r.config.enabled = false;
    }
    let (dropped, back) = match best.restore(&mut s.trainer, &mut s.recruiter) {
        Ok(c) => c,
        Err(e) => panic!("{e:#}"),
    };
    assert_eq!(dropped, recruited);
    assert!(back.is_empty(), "{back:?}");
    assert_eq!(s.trainer.blocks, blocks_then);
    assert_eq!(s.trainer.step, point.step);
    assert_eq!(
        values(&s),
        values_then,
        "the weights are those of the best point"
    );
    let Some(rec) = s.recruiter.as_ref() else {
        panic!("no recruiter after going back")
    };
    assert!(rec.log.is_empty(), "{:?}", rec.log);
    assert_eq!(rec.accepted, 0);
    assert!(!rec.config.enabled);
    // And the run goes on from there, recruiting again once switched back on.
    if let Some(r) = s.recruiter.as_mut() {
        r.config.enabled = true;
    }
    while accepted(&s) == 0 && s.trainer.step < 600 {
        train(&mut s);
    }
    assert!(accepted(&s) > 0, "nothing recruited after going back");
}

#[test]
fn a_run_ending_overfitting_keeps_its_best_weights_under_the_blocks_it_ended_with() {
    // The best point before the first round (one block), and blocks recruited after it.
    let (mut s, point) = session_before_the_first_round();
    let train = step_and_recruit;
    let accepted = |s: &Session| s.recruiter.as_ref().map_or(0, |r| r.accepted);
    let best =
        BestState::of(&s.trainer, s.recruiter.as_ref(), point).unwrap_or_else(|e| panic!("{e:#}"));
    let (blocks_then, values_then) = (s.trainer.blocks.clone(), values(&s));
    while accepted(&s) == 0 && s.trainer.step < 600 {
        train(&mut s);
    }
    let new_blocks: Vec<String> = (s.trainer.blocks.names.iter())
        .filter(|n| !blocks_then.names.contains(n))
        .cloned()
        .collect();
    assert!(
        !new_blocks.is_empty(),
        "no block recruited after step {}: {:?}",
        point.step,
        s.trainer.blocks.names
    );
    let (blocks_now, values_now) = (s.trainer.blocks.clone(), values(&s));
    let log_now = s.recruiter.as_ref().map(|r| r.log.len());
    let later = best
        .graft(&mut s.trainer)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(later, new_blocks);
    // The blocks and the recruiter's log are the last step's; step and weights the best point's.
    assert_eq!(s.trainer.blocks, blocks_now);
    assert_eq!(s.recruiter.as_ref().map(|r| r.log.len()), log_now);
    assert_eq!(s.trainer.step, point.step);
    let grafted = values(&s);
    let is_anchor = |n: &str| n.starts_with("anchors.");
    for (name, v) in &grafted {
        if !is_anchor(name) {
            assert_eq!(
                Some(v),
                values_then.get(name),
                "{name}: not the best point's"
            );
        }
    }
    // Each block's anchor keys: the best point's where it had the block, the last step's for
    // the blocks recruited after it ([H, K, d_h], K the blocks of the last step).
    let (heads, dh) = (
        s.trainer.model.config.num_heads,
        s.trainer.model.config.head_dim(),
    );
    let row = |v: &[u32], k_all: usize, h: usize, k: usize| -> Vec<u32> {
        let o = (h * k_all + k) * dh;
        v[o..o + dh].to_vec()
    };
    let k_now = blocks_now.num_blocks();
    let k_then = blocks_then.num_blocks();
    // (The unassigned block's keys moved since the best point, so the check below can tell
    // whose they are.)
    let moved = (grafted.keys().filter(|n| is_anchor(n)))
        .any(|n| row(&values_then[n], k_then, 0, 0) != row(&values_now[n], k_now, 0, 0));
    assert!(moved, "the unassigned block's anchor keys did not change");
    for name in grafted.keys().filter(|n| is_anchor(n)) {
        let (g, then, now) = (&grafted[name], &values_then[name], &values_now[name]);
        assert_eq!(g.len(), heads * k_now * dh, "{name}");
        for h in 0..heads {
            for (k, block) in blocks_now.names.iter().enumerate() {
                let want = match blocks_then.names.iter().position(|n| n == block) {
                    Some(j) => row(then, k_then, h, j),
                    None => row(now, k_now, h, k),
                };
                assert_eq!(row(g, k_now, h, k), want, "{name} head {h} block {block}");
            }
        }
    }
    // And training goes on from there under the new map.
    train(&mut s);
    assert_eq!(s.trainer.step, point.step + 1);
}

#[test]
#[allow(clippy::unwrap_used)]
fn a_recruitment_log_that_contradicts_itself_is_refused() {
    use localist::train::recruit::Recruiter;
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_models/tiny-topics-recruited/recruitment.json");
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let check = |v: &serde_json::Value| {
        serde_json::from_value::<Recruiter>(v.clone())
            .unwrap()
            .check_consistent()
    };
    assert_eq!(check(&base), Ok(()));
    let accepted = base["log"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["decision"]["verdict"] == "accepted")
        .unwrap();
    type Edit = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|v| v["accepted"] = 9999.into()),
            "counts 9999 accepted moves",
        ),
        (
            Box::new(move |v| v["log"][accepted]["decision"]["delta_dl"] = 1e6.into()),
            "does not save the margin",
        ),
        (Box::new(|v| v["config"]["lambda"] = 1e300.into()), "λ_rec"),
        (
            Box::new(|v| v["rounds"][0]["round_ms"] = (-1.0).into()),
            "round 0",
        ),
        (
            Box::new(|v| v["config"]["every"] = u64::MAX.into()),
            "a step or a spacing of 18446744073709551615 steps is out of range",
        ),
        (
            Box::new(|v| v["next_due"] = (1u64 << 41).into()),
            "out of range",
        ),
        // As the command line refuses them (a saved `every: 0` ran a round every step).
        (
            Box::new(|v| v["config"]["every"] = 0.into()),
            "its spacing of 0 steps",
        ),
        (
            Box::new(|v| v["config"]["k_max"] = 1.into()),
            "its K_max 1 is out of range",
        ),
        (Box::new(|v| v["dl0"] = (-1e300).into()), "DL₀"),
    ];
    for (edit, want) in cases {
        let mut v = base.clone();
        edit(&mut v);
        let err = check(&v).unwrap_err();
        assert!(err.contains(want), "{err}");
    }
}
