//! Unit tests of the recruiter's patience (`recruiter.rs`).

use super::*;
use crate::train::recruit::log::{MoveKind, RecruitEvent, Renamed, RoundSummary};

#[test]
fn a_round_before_the_model_reads_context_does_not_count_towards_patience() {
    let mut r = Recruiter {
        dl0: Some(1e6),
        ..Recruiter::default()
    };
    assert_eq!(r.config.min_context_gain, 0.01);
    // Patience by rounds 100 steps apart (the span is the next test's).
    r.config.patience_steps = 300;
    // On the plateau: every key visible saves 0.4% on the isolated view.
    let note = r.count_round(100, 0, Some(4.4), Some((1_282_222.0, 0.004)), None);
    let note = note.unwrap_or_else(|| panic!("a blind round must not count"));
    assert!(
        note.contains("does not use context") && note.contains("0.40%"),
        "{note}"
    );
    assert_eq!(r.stale, 0);
    // A model that learned its training text by heart codes the buffer worse with context.
    let note = r.count_round(150, 0, Some(2.1), Some((35_117.8, -0.079)), None);
    assert!(note.is_some_and(|n| n.contains("7.90% more than")));
    assert_eq!(r.stale, 0);
    // Past it (11%): the round counts, and patience runs out after P of them.
    for i in 1..=r.config.patience {
        let step = 100 + 100 * i;
        assert!(r.stop_reason(step - 100, 1).is_none());
        assert_eq!(
            r.count_round(step, 0, Some(3.9), Some((1.16e6, 0.11)), None),
            None
        );
        assert_eq!(r.stale, i);
    }
    assert!(r
        .stop_reason(400, 1)
        .is_some_and(|why| why.contains("3 rounds")));
    // Once blocks are recruited there is no context measure, and rounds count as before.
    let mut r = Recruiter::default();
    assert_eq!(r.count_round(100, 0, Some(3.9), None, None), None);
    assert_eq!(r.stale, 1);
    // Off (0): a blind round counts.
    r.config.min_context_gain = 0.0;
    assert_eq!(
        r.count_round(200, 0, Some(4.4), Some((1.28e6, 0.004)), None),
        None
    );
    assert_eq!(r.stale, 2);
}

#[test]
fn a_round_whose_candidates_come_closer_to_paying_does_not_count() {
    // The 5-topic corpus of the README: true topics at +250, +179, then -11.8 bits.
    let mut r = Recruiter {
        dl0: Some(1e6),
        ..Recruiter::default()
    };
    r.config.delta_bits = 64.0;
    assert_eq!(r.count_round(100, 0, None, None, Some(250.0)), None);
    // 71 bits closer: more than δ, so not counted, and the note says why.
    let note = r.count_round(200, 0, None, None, Some(179.0));
    assert!(note.is_some_and(|n| n.contains("closer to paying") && n.contains("+179.0")));
    // 40 bits closer than the best so far: within δ, counted.
    assert_eq!(r.count_round(300, 0, None, None, Some(139.0)), None);
    assert_eq!(r.stale, 2);
    // Further from paying: counted.
    assert_eq!(r.count_round(400, 0, None, None, Some(300.0)), None);
    assert_eq!((r.stale, r.closest), (3, Some(139.0)));
    // An accepted move starts the comparison again.
    assert_eq!(r.count_round(500, 1, None, None, Some(-120.0)), None);
    assert_eq!((r.stale, r.closest), (0, None));
    assert_eq!(r.count_round(600, 0, None, None, Some(400.0)), None);
    assert_eq!(r.stale, 1);
}

#[test]
fn patience_spans_training_steps_not_only_rounds() {
    // Rounds every 25 steps from step 50: three rejected rounds span 75 steps, not enough.
    let mut r = Recruiter {
        dl0: Some(1e6),
        ..Recruiter::default()
    };
    r.config.every = 25;
    let mut stopped_at = None;
    for step in (50..800).step_by(25) {
        assert_eq!(r.count_round(step, 0, None, None, None), None);
        if let Some(why) = r.stop_reason(step, 1) {
            assert!(why.contains("500 steps"), "{why}");
            stopped_at = Some(step);
            break;
        }
    }
    // The rounds at 50, 75, …, 525 span 50 → 550: 500 steps.
    assert_eq!(stopped_at, Some(525));
    assert_eq!(r.stale, 20);
    // An accepted move restarts both counts; so does switching recruitment back on.
    assert_eq!(r.count_round(550, 1, None, None, None), None);
    assert_eq!((r.stale, r.stale_since), (0, None));
    assert_eq!(r.count_round(575, 0, None, None, None), None);
    r.resume(600);
    assert_eq!((r.stale, r.stale_since, r.stopped.clone()), (0, None, None));
    // At the default spacing, 5 rounds 100 steps apart.
    let mut r = Recruiter {
        dl0: Some(1e6),
        ..Recruiter::default()
    };
    for step in [100, 200, 300, 400] {
        assert_eq!(r.count_round(step, 0, None, None, None), None);
        assert!(r.stop_reason(step, 1).is_none());
    }
    assert_eq!(r.count_round(500, 0, None, None, None), None);
    assert!(r.stop_reason(500, 1).is_some());
}

#[test]
fn a_log_from_before_the_span_keeps_stopping_on_rounds_alone() {
    // A config saved before `patience_steps` existed reads it as 0, not as the default 500.
    let old: RecruitConfig =
        serde_json::from_str(r#"{"patience": 3, "every": 25}"#).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((old.patience, old.patience_steps), (3, 0));
    let new = RecruitConfig::default();
    let back: RecruitConfig = serde_json::to_string(&new)
        .and_then(|j| serde_json::from_str(&j))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.patience_steps, 500);
}

#[test]
fn a_recruiter_put_back_to_an_earlier_step_keeps_its_intervals() {
    let mut r = Recruiter {
        dl0: Some(1e6),
        ..Recruiter::default()
    };
    for step in (50..=525).step_by(25) {
        assert_eq!(r.count_round(step, 0, None, None, None), None);
    }
    (r.next_due, r.tabu_steps) = (Some(550), vec![475, 525]);
    assert_eq!(r.stale_since, Some(50));
    let (stale, stop_then) = (r.stale, r.stop_reason(525, 1));
    assert!(stop_then.is_some(), "20 rounds over 575 steps");
    r.rebase(525, 485);
    assert_eq!(r.next_due, Some(510));
    assert_eq!(r.tabu_steps, vec![435, 485]);
    assert_eq!(r.stale_since, Some(10));
    // The patience counts the same rounds over the same span, 40 steps earlier.
    assert_eq!(r.stale, stale);
    assert_eq!(r.stop_reason(485, 1), stop_then);
    // Going forward (or nowhere) changes nothing; going back past step 0 stops there.
    let same = (r.next_due, r.tabu_steps.clone(), r.stale_since);
    r.rebase(485, 525);
    assert_eq!((r.next_due, r.tabu_steps.clone(), r.stale_since), same);
    r.rebase(485, 0);
    assert_eq!((r.next_due, r.stale_since), (Some(25), Some(0)));
}

/// A logged move on `block`, accepted when `saving` pays its 20 model bits.
fn logged(kind: MoveKind, block: &str, what: String, saving: f64) -> RecruitEvent {
    use crate::analysis::mdl::{decide, ModelBits};
    let bits = ModelBits {
        parameter_bits: 10.0,
        header_bits: 5.0,
        map_bits: 5.0,
    };
    let sign = if kind == MoveKind::Recruit { 1.0 } else { -1.0 };
    RecruitEvent {
        step: 100,
        round: 0,
        kind,
        block: block.into(),
        tokens: Vec::new(),
        decision: Some(decide(what, 1000.0, 1000.0 - saving, bits, sign, 1.0)),
        blocks_after: 0,
        dl_after: 0.0,
        note: String::new(),
    }
}

#[test]
fn a_log_describes_the_blocks_its_moves_left_and_no_others() {
    let event = logged;
    let mut r = Recruiter {
        log: vec![
            event(
                MoveKind::Recruit,
                "zuka·felo",
                "recruit block zuka·felo".into(),
                500.0,
            ),
            event(
                MoveKind::Recruit,
                "mira·tol",
                "recruit block mira·tol".into(),
                500.0,
            ),
            event(
                MoveKind::Recruit,
                "and·the",
                "recruit block and·the".into(),
                -50.0,
            ),
            event(
                MoveKind::Merge,
                "zuka·felo",
                "merge mira·tol into zuka·felo".into(),
                0.0,
            ),
        ],
        rounds: vec![RoundSummary {
            step: 100,
            data_bits: 1.0,
            dl_bits: 1.0,
            blocks: 2,
            round_ms: 1.0,
            train_ms: 1.0,
        }],
        ..Recruiter::default()
    };
    let map = |names: &[&str]| {
        let pairs: Vec<(u32, String)> = (names.iter().enumerate())
            .map(|(i, n)| (i as u32, n.to_string()))
            .collect();
        BlockMap::from_assignments(10, &pairs, "test")
    };
    // Recruited a, b; merged b into a: the model holds "unassigned" and a.
    assert_eq!(r.describes(&map(&["zuka·felo"])), Ok(()));
    let e = r.describes(&map(&["mira·tol"])).err().unwrap_or_default();
    assert!(e.contains("recruited block 'zuka·felo'"), "{e}");
    let e = r
        .describes(&map(&["zuka·felo", "lexicon"]))
        .err()
        .unwrap_or_default();
    assert!(e.contains("left 2 blocks, and the model has 3"), "{e}");
    // Renamed by hand after the log's four entries: known by its new name.
    r.renamed.push(Renamed {
        at: 4,
        from: "zuka·felo".into(),
        to: "travel".into(),
    });
    assert_eq!(r.describes(&map(&["travel"])), Ok(()));
    let e = r.describes(&map(&["zuka·felo"])).err().unwrap_or_default();
    assert!(e.contains("recruited block 'travel'"), "{e}");
    r.renamed.clear();
    // A lexicon's blocks are not the log's to name: a map of as many blocks passes.
    r.rounds[0].blocks = 3;
    assert_eq!(r.describes(&map(&["drug", "zuka·felo"])), Ok(()));
}
