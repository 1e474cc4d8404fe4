//! The real studio app driven through egui_kittest (logic and accessibility tree; no GPU
//! needed). The worker thread runs the engine as in the window, so each test waits, with a
//! deadline, for the worker's answer by stepping frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;
use common::sample;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use localist::engine::DialSetting;
use localist::model::capture::capture;
use localist::studio::app::{StudioApp, SAMPLE_TEXT};
use localist::studio::state::WorkerState;

fn harness(ck: PathBuf) -> Harness<'static, StudioApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, Some(ck)))
}

/// The app on `ck`, stepped until every answer to its opening has arrived (see [`settled`]).
fn started(ck: PathBuf) -> Harness<'static, StudioApp> {
    settled(ck)
}

/// The clinical sample, stepped until it has captured one of its own records (records of the
/// synthetic corpus start with "note" or "txn").
fn started_clinical() -> Harness<'static, StudioApp> {
    let mut h = harness(sample("tiny-clinical"));
    step_until(&mut h, "a capture of the model's own text", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(_, t)| t.first().is_some_and(|w| w == "note" || w == "txn"))
    });
    h
}

/// The studio holds its answers to the opening: a capture and λ* measured on the text shown.
fn answered(app: &StudioApp) -> bool {
    let st = &app.state;
    let on_text = |m: &Option<localist::engine::protocol::MeasuredOn>| {
        m.as_ref().is_some_and(|m| m.text == st.text)
    };
    st.capture.is_some()
        && st.threshold.is_some()
        && on_text(&st.threshold_on)
        && on_text(&st.capture_on)
}

/// The app on `ck` once every answer to its opening has arrived. λ* adds a line above the run
/// buttons; clicking while an answer is still due can land on a widget whose place (and id)
/// changes in the next frame (on a loaded machine the click then reaches nothing).
fn settled(ck: PathBuf) -> Harness<'static, StudioApp> {
    let mut h = harness(ck);
    step_until(&mut h, "the first capture and λ* on its text", answered);
    h.run_steps(2);
    h
}

/// The clinical sample once every answer to its opening has arrived: the capture of its own
/// record (it replaces the studio's text, a second capture) and λ* measured on that text.
fn settled_clinical() -> Harness<'static, StudioApp> {
    let mut h = harness(sample("tiny-clinical"));
    step_until(
        &mut h,
        "the model's own text captured and λ* on it",
        |app| {
            let own = app
                .state
                .capture
                .as_ref()
                .is_some_and(|(_, t)| t.first().is_some_and(|w| w == "note" || w == "txn"));
            own && answered(app)
        },
    );
    h.run_steps(2);
    h
}

/// Step frames until `done` holds, for at most 180 s (a bound against hangs, generous on a
/// 2-core machine running the SmolLM2 test beside this one).
fn step_until(h: &mut Harness<'static, StudioApp>, what: &str, done: impl Fn(&StudioApp) -> bool) {
    let secs = std::env::var("STEP_UNTIL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(h.state()) {
        if Instant::now() >= deadline {
            let st = &h.state().state;
            panic!(
                "timed out waiting for {what}: worker {:?}, error {:?}, info {:?}, curve {}, \
                 summary {:?}",
                st.worker,
                st.error,
                st.info,
                st.curve.len(),
                st.summary.as_ref().map(|s| &s.source)
            );
        }
        h.step();
        // Leave the CPU to the worker threads (two cores run two tests at once).
        std::thread::sleep(Duration::from_millis(2));
    }
    h.step();
}

/// Open the Rules tab, load the example rules and apply them (the caller waits for the result).
fn apply_example_rules(h: &mut Harness<'static, StudioApp>) {
    h.get_by_label("Rules").click();
    h.run_steps(2);
    h.get_by_label("Load example").click();
    h.run_steps(1);
    h.get_by_label("Apply").click();
}

fn engine_entropy(ck: &Path, text: &str, dial: &DialSetting) -> f64 {
    let (ck, tok) = common::load(ck);
    capture(&ck.model, &ck.blocks, &tok.encode(text), dial)
        .unwrap()
        .mean_entropy_bits(None)
}

#[test]
fn moving_the_dial_shows_the_engines_entropy_for_that_lambda() {
    let ck = sample("tiny-shakespeare-l0");
    let mut h = started(ck.clone());
    let label = |e: f64| format!("mean entropy {e:.3} bits");
    let e0 = engine_entropy(&ck, SAMPLE_TEXT, &DialSetting::bias(0.0));
    h.get_by_label(&label(e0));
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "λ")
        .set_value_accesskit(0.8);
    step_until(&mut h, "the re-capture at λ = 0.8", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(c, _)| (c.dial.params.lambda - 0.8).abs() < 1e-9)
    });
    let e1 = engine_entropy(&ck, SAMPLE_TEXT, &DialSetting::bias(0.8));
    assert_eq!(h.state().state.mean_entropy_bits(), Some(e1));
    assert_ne!(label(e0), label(e1));
    h.get_by_label(&label(e1));
}

#[test]
fn starting_training_advances_the_curve_and_stop_stops_it() {
    // λ* arrives after the model and adds a line above the buttons: wait for it before clicking.
    let mut h = settled_clinical();
    h.get_by_label("New run").click();
    step_until(&mut h, "three training steps", |app| {
        app.state.curve.len() >= 3
    });
    let step = h.state().state.progress.as_ref().unwrap().stats.step;
    assert!(step >= 2);
    h.get_by_label("Stop").click();
    step_until(&mut h, "the end of the run", |app| {
        app.state.worker == WorkerState::Idle && app.state.last_eval.is_some()
    });
    let steps_at_stop = h.state().state.curve.len();
    // Ask for a capture: the worker answers only after it has handled the stop.
    h.get_by_label("Capture").click();
    let generation = h.state().state.capture_generation;
    step_until(&mut h, "a capture after stop", |app| {
        app.state.capture_generation > generation
    });
    assert!(h.state().state.curve.len() <= steps_at_stop + 1);
    // The held-out curves got a point when the run ended.
    let live = &h.state().state.live;
    assert!(!live.is_empty());
    let last = live.last().unwrap();
    assert!(last.eval.perplexity.is_finite() && last.eval.perplexity > 1.0);
    assert!(last.theory.as_ref().is_some_and(|t| t.violations == 0));
    // The held-out metrics of the run are of the run's model, and shown as such.
    assert!(h.state().state.current_eval().is_some());
    assert!(h.query_by_label_contains("held out: perplexity").is_some());
}

#[test]
fn a_held_out_curve_that_climbs_away_from_its_best_is_called_overfitting() {
    use localist::engine::worker::LivePoint;
    let mut h = settled(sample("tiny-shakespeare-l1"));
    let point = |step: usize, perplexity: f64| LivePoint {
        step,
        eval: localist::train::eval::EvalReport {
            lambda: 0.0,
            tokens: 512,
            ce_nats: perplexity.ln(),
            bits_per_token: perplexity.log2(),
            perplexity,
            top1_accuracy: 0.1,
            entropy_bits: 1.0,
            entropy_bits_per_layer: vec![1.0],
            entropy_ceiling_bits: 5.0,
            off_block_mass: 0.0,
            pf_mass: 1.0,
            pf_top1: 1.0,
            pf_true_mass: None,
            pf_true_top1: None,
        },
        theory: None,
    };
    // Falling, then one point 20% up: noise, not yet overfitting.
    h.state_mut().state.live = vec![point(40, 61.0), point(120, 51.3), point(200, 62.0)];
    h.run_steps(2);
    assert!(h.query_by_label_contains("Overfitting").is_none());
    // A second point in a row well above the best: the panel says so, naming both steps.
    h.state_mut().state.live.push(point(280, 74.4));
    h.run_steps(2);
    let text = {
        use egui_kittest::kittest::NodeT;
        // A label's text is its accesskit value.
        h.get_by_label_contains("Overfitting")
            .accesskit_node()
            .value()
            .unwrap_or_default()
    };
    assert!(text.contains("51.3 at step 120"), "{text}");
    assert!(text.contains("74.4 at step 280"), "{text}");
    // The way back: a button that asks the worker (here there is no run to go back in, and
    // the worker says so).
    // (A tall window: the button is far down the side panel.)
    h.set_size(egui::vec2(1280.0, 1800.0));
    h.run_steps(2);
    // In a run that recruits without windows for its open queries, the hover says why it may
    // learn by heart where the run without recruitment does not.
    let tip = "the unassigned queries are open";
    let at = h.get_by_label_contains("Overfitting").rect().center();
    h.hover_at(at);
    h.run_steps(60);
    assert!(
        h.query_by_label_contains("Two held-out measurements")
            .is_some(),
        "no tooltip"
    );
    assert!(h.query_by_label_contains(tip).is_none());
    h.state_mut().state.recruitment = Some(localist::engine::protocol::RecruitView {
        config: localist::train::recruit::RecruitConfig::default(),
        log: Vec::new(),
        rounds: Vec::new(),
        stopped: None,
        renamed: Vec::new(),
        accepted: 0,
        next_due: None,
        cost_ms: (0.0, 0.0),
        json: Err(String::new()),
    });
    h.hover_at(at + egui::vec2(1.0, 0.0));
    h.run_steps(60);
    assert!(h.query_by_label_contains(tip).is_some());
    // ... and names the studio's own switch for it, not only the CLI's flag.
    assert!(h
        .query_by_label_contains("tick \"windows until the first block\" under \"recruit blocks\"")
        .is_some());
    // (The pointer leaves the warning, so that its tooltip covers nothing the click needs.)
    h.hover_at(egui::pos2(2.0, 2.0));
    h.run_steps(3);
    h.get_by_label("Back to step 120").click();
    step_until(&mut h, "the worker's answer", |app| {
        app.state
            .error
            .as_ref()
            .is_some_and(|e| e.contains("no training run"))
    });
    // When the run goes back, the worker sends the progress of the last step kept: the loss
    // curve drops the steps after it.
    let progress = |step: usize| {
        localist::engine::protocol::Event::Progress(localist::engine::protocol::Progress {
            stats: localist::train::trainer::StepStats {
                step,
                loss_nats: 1.0,
                ..Default::default()
            },
            total_steps: 1000,
            tokens_per_s: 0.0,
            eta_s: 0.0,
        })
    };
    for step in 0..300 {
        h.state_mut().state.apply(progress(step));
    }
    h.state_mut().state.apply(progress(119));
    let steps: Vec<usize> = h.state().state.curve.iter().map(|c| c.step).collect();
    assert_eq!(steps, (0..120).collect::<Vec<_>>());
    h.run_steps(2);
    assert!(h.query_by_label_contains("step 120/1000").is_some());
    assert!(h.query_by_label_contains("tok/s").is_none());
}

#[test]
fn arrow_keys_move_between_layers_and_heads() {
    let mut h = started(sample("tiny-shakespeare-l1"));
    assert_eq!(h.state().state.focus, None);
    h.key_press(egui::Key::ArrowRight);
    h.run_steps(2);
    assert_eq!(h.state().state.focus, Some((0, 0)));
    for key in [
        egui::Key::ArrowRight,
        egui::Key::ArrowRight,
        egui::Key::ArrowDown,
    ] {
        h.key_press(key);
        h.run_steps(2);
    }
    assert_eq!(h.state().state.focus, Some((1, 2)));
    // Clamped at the grid's edge (2 layers).
    h.key_press(egui::Key::ArrowDown);
    h.run_steps(2);
    assert_eq!(h.state().state.focus, Some((1, 2)));
    assert!(h
        .query_by_label_contains("layer 1, head 2: mean entropy")
        .is_some());
}

#[test]
fn a_synthetic_model_opens_on_one_of_its_own_sentences() {
    let h = started_clinical();
    assert_ne!(h.state().state.text, SAMPLE_TEXT);
    let (_, tokens) = h.state().state.capture.clone().unwrap();
    assert!(tokens.len() > 5);
    assert!(!tokens.iter().any(|t| t == "<unk>"), "{tokens:?}");
}

#[test]
fn the_theory_tab_plots_measurements_against_the_bounds() {
    let mut h = started(sample("tiny-shakespeare-l1"));
    h.get_by_label("Theory").click();
    step_until(&mut h, "the theory curve", |app| app.state.theory.is_some());
    let (_, curve) = h.state().state.theory.clone().unwrap();
    assert_eq!(curve.len(), 21);
    assert!(curve.iter().all(|p| p.violations == 0));
    assert!(h
        .query_by_label_contains("every row of every head respects bounds 8.1 and 8.2")
        .is_some());
}

#[test]
fn the_blocks_tab_lists_blocks_usage_anchors_and_coherence() {
    let mut h = started_clinical();
    h.get_by_label("Blocks & anchors").click();
    h.run_steps(2);
    let usage = localist::studio::panels::blocks::block_usage(&h.state().state);
    // Usage is a distribution over blocks: it sums to one.
    assert!((usage.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{usage:?}");
    let summary = h.state().state.summary.clone().unwrap();
    assert!(summary.blocks.iter().any(|b| b == "drug"));
    assert!(summary.anchors.is_some());
    // 11 blocks ≤ d_h = 32: the anchor keys were initialised orthonormal.
    assert_eq!(summary.anchor_coherence.len(), summary.blocks.len());
    assert!(h.query_by_label_contains("coverage I(B;A)").is_some());
    assert!(h
        .query_by_label_contains("Welch bound for K = 11")
        .is_some());
    assert!(h.query_all_by_label("drug").count() >= 1);
}

/// Copy a checkpoint directory (so a test can damage or change the copy).
fn copy_checkpoint(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn opening_a_truncated_checkpoint_shows_an_error_and_keeps_the_model() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("truncated");
    copy_checkpoint(&sample("tiny-shakespeare-l1"), &bad);
    let weights = bad.join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();

    let good = sample("tiny-shakespeare-l0");
    let mut h = started(good.clone());
    let before = h.state().state.summary.clone().unwrap();
    let entropy = h.state().state.mean_entropy_bits();
    h.state_mut()
        .state
        .send(localist::engine::worker::Command::Load(bad.clone()));
    step_until(&mut h, "the error", |app| app.state.error.is_some());
    let err = h.state().state.error.clone().unwrap();
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("the current model is kept"), "{err}");
    // Shown in the status bar, and the model, its checkpoint and its heatmaps are unchanged.
    assert!(h.query_by_label_contains("model.safetensors").is_some());
    assert_eq!(h.state().state.summary.as_ref(), Some(&before));
    assert_eq!(
        h.state().state.checkpoint.as_ref().map(|(p, _)| p.clone()),
        Some(good)
    );
    assert_eq!(h.state().state.mean_entropy_bits(), entropy);
}

#[test]
fn the_session_round_trips() {
    use localist::engine::LayerSchedule;
    use localist::studio::session::load_session;
    use localist::studio::state::Tab;

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.localist-session.json");
    let l1 = sample("tiny-shakespeare-l1");
    let mut h = started(l1.clone());
    {
        let app = h.state_mut();
        app.state.text = "Now is the winter of our discontent".into();
        app.state.tab = Tab::Compare;
        app.state.focus = Some((1, 2));
        app.state.aggregated = true;
        app.state.compare.sides[1].dial.params.lambda = 0.7;
        app.settings.steps = 123;
        let mut dial = DialSetting::bias(0.6);
        dial.schedule = LayerSchedule::Power { gamma: 2.0 };
        app.state.dial = dial;
    }
    h.state_mut().save_session_to(&file);
    let saved = load_session(&file).unwrap();
    assert_eq!(saved.checkpoint.as_ref().unwrap().path, l1);
    assert_eq!(
        saved.checkpoint.as_ref().unwrap().sha256,
        localist::model::checkpoint::checkpoint_sha256(&l1).unwrap()
    );
    drop(h);

    // A studio on the other model opens the session: model, dial, text and layout come back.
    let mut h = started(sample("tiny-shakespeare-l0"));
    h.state_mut().open_session_from(&file);
    // The capture to arrive is the engine's for that model, text and dial.
    let e = engine_entropy(&l1, &saved.text, &saved.dial);
    step_until(&mut h, "the session's model, text and dial", |app| {
        app.state.checkpoint.as_ref().is_some_and(|(p, _)| p == &l1)
            && app.state.mean_entropy_bits() == Some(e)
    });
    let mut again = h.state().current_session();
    again.saved_at_unix = saved.saved_at_unix;
    assert_eq!(again, saved);
    assert!(h
        .state()
        .state
        .info
        .as_deref()
        .is_some_and(|i| i.contains("matches its hash")));
    let (cap, tokens) = h.state().state.capture.clone().unwrap();
    assert_eq!(cap.dial, saved.dial);
    assert_eq!(tokens.concat(), saved.text);
}

#[test]
fn a_session_whose_checkpoint_changed_warns_and_a_bad_session_file_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    copy_checkpoint(&sample("tiny-shakespeare-l1"), &ck);
    let file = tmp.path().join("s.json");
    let mut h = harness(ck.clone());
    step_until(&mut h, "the first capture", |app| {
        app.state.checkpoint.is_some() && app.state.capture.is_some()
    });
    h.state_mut().save_session_to(&file);
    // The checkpoint is altered after the session was saved.
    let cfg = ck.join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n")).unwrap();
    h.state_mut().open_session_from(&file);
    step_until(&mut h, "the warning", |app| app.state.error.is_some());
    let err = h.state().state.error.clone().unwrap();
    assert!(
        err.contains("has changed since the session was saved"),
        "{err}"
    );

    // A session from a newer studio is refused with a clear error; nothing changes.
    h.state_mut().state.error = None;
    let newer = tmp.path().join("newer.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    json["version"] = 99.into();
    json["text"] = "something else".into();
    std::fs::write(&newer, json.to_string()).unwrap();
    let text_before = h.state().state.text.clone();
    h.state_mut().open_session_from(&newer);
    let err = h.state().state.error.clone().unwrap();
    assert!(
        err.contains("newer.json") && err.contains("version 99"),
        "{err}"
    );
    assert_eq!(h.state().state.text, text_before);

    // A text longer than the studio holds (6 million characters closed the window: its text
    // box needed a 384 MB vertex buffer) and a dial out of range are refused the same way.
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 3] = [
        (
            "long.json",
            |j| j["text"] = "a".repeat(300_000).into(),
            "300000 characters",
        ),
        (
            "tau.json",
            |j| j["dial"]["params"]["tau"] = 0.0.into(),
            "dial: tau = 0",
        ),
        (
            "side.json",
            |j| j["layout"]["compare"][1]["dial"]["params"]["lambda"] = 7.0.into(),
            "compare side 2's dial: lambda = 7",
        ),
    ];
    for (name, edit, want) in cases {
        let mut json = base.clone();
        edit(&mut json);
        let bad = tmp.path().join(name);
        std::fs::write(&bad, json.to_string()).unwrap();
        h.state_mut().state.error = None;
        h.state_mut().open_session_from(&bad);
        let err = h.state().state.error.clone().unwrap();
        assert!(err.contains(name) && err.contains(want), "{err}");
        assert_eq!(h.state().state.text, text_before);
    }
}

#[test]
fn after_a_crash_the_autosaved_session_is_offered_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("autosave");
    let l1 = sample("tiny-shakespeare-l1");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_eframe({
            let dir = dir.clone();
            let l1 = l1.clone();
            move |cc| StudioApp::new(&cc.egui_ctx, Some(l1)).with_autosave(dir)
        });
    step_until(&mut h, "the first capture", |app| {
        app.state.checkpoint.is_some() && app.state.capture.is_some()
    });
    assert!(h.state().state.restore_offer.is_none());
    h.state_mut().state.dial = DialSetting::bias(0.35);
    h.state_mut().state.text = "Friends, Romans, countrymen".into();
    h.state_mut().autosave_tick(true);
    assert!(dir.join("running.pid").exists());
    // The process "dies": its marker stays behind with an id no process has.
    drop(h);
    std::fs::write(dir.join("running.pid"), "4294967295").unwrap();

    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_eframe({
            let dir = dir.clone();
            move |cc| {
                StudioApp::new(&cc.egui_ctx, Some(sample("tiny-shakespeare-l0"))).with_autosave(dir)
            }
        });
    h.run_steps(2);
    assert!(h.state().state.restore_offer.is_some());
    assert!(h.query_by_label_contains("did not close cleanly").is_some());
    h.get_by_label("Restore").click();
    step_until(&mut h, "the restored session", |app| {
        app.state.checkpoint.as_ref().is_some_and(|(p, _)| p == &l1)
            && app
                .state
                .capture
                .as_ref()
                .is_some_and(|(c, _)| (c.dial.params.lambda - 0.35).abs() < 1e-12)
    });
    assert_eq!(h.state().state.text, "Friends, Romans, countrymen");
    assert!(h.state().state.restore_offer.is_none());
    // Our own marker now holds this process's id (and start time), so a restart now would
    // offer nothing.
    let pid = std::fs::read_to_string(dir.join("running.pid")).unwrap();
    assert_eq!(
        pid.split_whitespace().next(),
        Some(std::process::id().to_string().as_str())
    );
}

#[test]
fn compare_shows_two_configurations_with_hover_synced() {
    let mut h = started(sample("tiny-shakespeare-l1"));
    h.get_by_label("Compare").click();
    step_until(&mut h, "both sides", |app| {
        app.state.compare.views.is_some() && app.state.compare.rects[1].is_some()
    });
    let (_, sides, views) = h.state().state.compare.views.clone().unwrap();
    assert_eq!(sides[0].dial.params.lambda, 0.0);
    assert_eq!(sides[1].dial.params.lambda, 1.0);
    let a = views[0].as_ref().unwrap();
    let b = views[1].as_ref().unwrap();
    // Each side is the engine's capture under its dial.
    let ck = sample("tiny-shakespeare-l1");
    assert_eq!(
        a.capture.mean_entropy_bits(None),
        engine_entropy(&ck, SAMPLE_TEXT, &sides[0].dial)
    );
    assert_eq!(
        b.capture.mean_entropy_bits(None),
        engine_entropy(&ck, SAMPLE_TEXT, &sides[1].dial)
    );
    assert!(b.capture.mean_off_block_mass(None) < a.capture.mean_off_block_mass(None));

    // Hover a cell of side A: the hovered cell is shared, and the tooltip gives both weights.
    let rect = h.state().state.compare.rects[0].unwrap();
    let t = a.capture.len() as f32;
    let (i, j) = (10usize, 4usize);
    let pos = rect.min
        + egui::vec2(
            (j as f32 + 0.5) * rect.width() / t,
            (i as f32 + 0.5) * rect.height() / t,
        );
    h.hover_at(pos);
    h.run_steps(3);
    assert_eq!(h.state().state.compare.hover, Some((i, j)));
    let tip = h
        .query_by_label_contains("A (current model")
        .expect("tooltip");
    let text = format!("{tip:?}");
    assert!(text.contains("B (current model"), "{text}");

    // Moving side B's slider re-captures side B only.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "λ B")
        .set_value_accesskit(0.5);
    step_until(&mut h, "the new side B", |app| {
        app.state
            .compare
            .views
            .as_ref()
            .is_some_and(|(_, s, _)| (s[1].dial.params.lambda - 0.5).abs() < 1e-9)
    });

    // Two checkpoints: λ_train = 1 (current) against the λ_train = 0 sample, both at λ_inf = 0.
    let l0 = sample("tiny-shakespeare-l0");
    h.state_mut().state.compare.sides[1] = localist::engine::compare::CompareSide {
        checkpoint: Some(l0.clone()),
        dial: DialSetting::bias(0.0),
    };
    step_until(&mut h, "the other checkpoint", |app| {
        app.state.compare.views.as_ref().is_some_and(|(_, s, v)| {
            s[1].checkpoint.is_some() && v[1].as_ref().is_ok_and(|v| v.label.contains("l0"))
        })
    });
    let (_, _, views) = h.state().state.compare.views.clone().unwrap();
    assert_eq!(
        views[1].as_ref().unwrap().capture.mean_entropy_bits(None),
        engine_entropy(&l0, SAMPLE_TEXT, &DialSetting::bias(0.0))
    );
    // A checkpoint that cannot be read is an error on that side, not a crash.
    h.state_mut().state.compare.sides[1].checkpoint = Some("/nonexistent/ck".into());
    step_until(&mut h, "the error", |app| {
        app.state
            .compare
            .views
            .as_ref()
            .is_some_and(|(_, _, v)| v[1].as_ref().is_err_and(|e| e.contains("/nonexistent/ck")))
    });
    assert!(h
        .query_by_label_contains("could not open /nonexistent/ck")
        .is_some());
}

#[test]
fn per_layer_sliders_set_each_layers_dial() {
    use localist::engine::LayerSchedule;
    let mut h = harness(sample("tiny-shakespeare-l1"));
    // Wait for the λ* estimate too: its line below the slider moves the buttons under it.
    step_until(&mut h, "the first capture and λ*", |app| {
        app.state.capture.is_some() && app.state.summary.is_some() && app.state.threshold.is_some()
    });
    h.get_by_label("per layer").click();
    h.run_steps(2);
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "λ layer 1")
        .set_value_accesskit(0.7);
    step_until(&mut h, "the per-layer capture", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(c, _)| c.dial.schedule == LayerSchedule::PerLayer(vec![0.0, 0.7]))
    });
    let dial = h.state().state.capture.as_ref().unwrap().0.dial.clone();
    assert_eq!(
        h.state().state.mean_entropy_bits(),
        Some(engine_entropy(
            &sample("tiny-shakespeare-l1"),
            SAMPLE_TEXT,
            &dial
        ))
    );
}

/// A clinical note the sample model knows, with two doses.
const NOTE: &str =
    "note 2024-07-15 : stopped atenolol dose 250 mg ; started tramadol dose 1000 g for asthma .";

#[test]
fn a_rule_typed_in_the_editor_changes_the_heatmap_and_pf_and_switching_it_off_restores_them() {
    let mut h = started_clinical();
    h.state_mut().state.text = NOTE.into();
    h.get_by_label("Capture").click();
    step_until(&mut h, "the note", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(c, _)| c.len() == 17)
    });
    let plain = h.state().state.capture.clone().unwrap().0;
    h.get_by_label("Rules").click();
    h.run_steps(2);
    // Typed into the editor, as a user would.
    let rule = "rule dose_to_date \"A dose attends to the note's date\"\n  when query.block = dose\n  target previous block date\n  fidelity 0.9\nend\n";
    h.get_by_label("rules").focus();
    h.run_steps(1);
    h.get_by_label("rules").type_text(rule);
    h.run_steps(2);
    assert_eq!(h.state().state.rules.editor, rule);
    h.get_by_label("Apply").click();
    // The app waits (up to 30 ms) for the worker's capture, so on an idle machine the next
    // frame shows the rule in force; under a loaded test run it may take a few frames.
    step_until(&mut h, "the rule's report", |app| {
        !app.state.rules.reports.is_empty()
    });
    let st = &h.state().state;
    assert_eq!(st.rules.resolved.len(), 1, "{:?}", st.error);
    let report = st.rules.reports.first().expect("a report");
    assert_eq!(report.fired.len(), 2);
    assert_eq!(report.pass, Some(true));
    let with = st.capture.clone().unwrap().0;
    assert_ne!(with.heads, plain.heads);
    assert!(h.query_by_label_contains("pass").is_some());
    // The Audit tab maps it and the log has its entry.
    h.get_by_label("Audit").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("hash chain intact").is_some());
    assert_eq!(h.state().state.rules.log.entries.len(), 1);
    assert!(h.query_by_label_contains("previous date").is_some());

    // Switched off: attention and logits are exactly those without it.
    h.get_by_label("Rules").click();
    h.run_steps(2);
    h.get_by_label("dose_to_date").click();
    step_until(&mut h, "the rule switched off", |app| {
        app.state.rules.resolved.first().is_some_and(|r| !r.enabled)
            && app.state.rules.pending.is_none()
            && app
                .state
                .capture
                .as_ref()
                .is_some_and(|(c, _)| c.heads == plain.heads)
    });
    let st = &h.state().state;
    assert!(!st.rules.resolved[0].enabled);
    let off = st.capture.clone().unwrap().0;
    assert_eq!(off.heads, plain.heads);
    // The logits too: the studio's capture without rules leaves them out (no view reads them),
    // so they are the engine's own capture of the same text and dial, without the rule.
    assert!(plain.logits.is_empty());
    let (ck, _) = common::load(&sample("tiny-clinical"));
    let own = capture(&ck.model, &ck.blocks, &off.ids, &off.dial).unwrap();
    assert_eq!(off.logits, own.logits);
    assert_eq!(st.rules.log.entries.len(), 2);
    // Undo puts it back on; redo switches it off again.
    h.get_by_label("Undo").click();
    step_until(&mut h, "the undo", |app| {
        app.state.rules.resolved[0].enabled
            && app
                .state
                .capture
                .as_ref()
                .is_some_and(|(c, _)| c.heads == with.heads)
    });
    h.get_by_label("Redo").click();
    step_until(&mut h, "the redo", |app| {
        !app.state.rules.resolved[0].enabled
    });
    assert!(h.state().state.rules.log.verify().is_empty());
}

#[test]
fn a_malformed_rule_is_rejected_with_its_errors_and_the_previous_rules_stay() {
    let mut h = settled_clinical();
    apply_example_rules(&mut h);
    step_until(&mut h, "the example in force", |app| {
        app.state.rules.resolved.len() == 6 && !app.state.rules.reports.is_empty()
    });
    let before = h.state().state.capture.clone().unwrap().0;
    // Two mistakes: an unknown block and a misspelt keyword.
    h.state_mut().state.rules.editor =
        "rule a\n when query.block = dosage\n target block drug\n bias 1\nend\nrule b\n when query.block = dose\n targt block drug\n bias 1\nend\n".into();
    h.run_steps(1);
    h.get_by_label("Apply").click();
    step_until(&mut h, "the rejection", |app| {
        app.state.rules.errors.is_some()
    });
    let st = &h.state().state;
    let errs = st.rules.errors.clone().expect("errors");
    // The parser stops at the syntax error; the unknown block is found once it parses.
    assert_eq!(errs.errors.len(), 1, "{errs}");
    // Listed in the panel (and summarised in the status bar).
    assert!(
        h.query_all_by_label_contains("8:2: expected a clause")
            .count()
            >= 1
    );
    assert_eq!(st.rules.resolved.len(), 6);
    assert_eq!(st.capture.clone().unwrap().0.heads, before.heads);
    h.state_mut().state.rules.editor =
        "rule a\n when query.block = dosage\n target block drug\n bias 1\nend\n".into();
    h.state_mut().state.rules.errors = None;
    h.get_by_label("Apply").click();
    step_until(&mut h, "the second rejection", |app| {
        app.state.rules.errors.is_some()
    });
    assert!(
        h.query_all_by_label_contains("2:21: unknown block \"dosage\"")
            .count()
            >= 1
    );
    assert_eq!(h.state().state.rules.resolved.len(), 6);
}

#[test]
fn the_audit_report_verifies_and_a_tampered_one_names_what_changed() {
    use localist::engine::audit::{report_html, verify_report, AuditReport};
    let tmp = tempfile::tempdir().unwrap();
    let ck = tmp.path().join("ck");
    copy_checkpoint(&sample("tiny-clinical"), &ck);
    let mut h = harness(ck.clone());
    step_until(&mut h, "the clinical capture and λ* on its text", |app| {
        app.state.checkpoint.is_some() && answered(app)
    });
    h.run_steps(2);
    h.state_mut().state.text = NOTE.into();
    h.get_by_label("Capture").click();
    step_until(&mut h, "the note", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(c, _)| c.len() == 17)
    });
    h.get_by_label("Rules").click();
    h.run_steps(2);
    h.get_by_label("Load example").click();
    h.get_by_label("Apply").click();
    step_until(&mut h, "the example in force", |app| {
        app.state.rules.resolved.len() == 6 && !app.state.rules.reports.is_empty()
    });
    let (report, figures) = localist::studio::panels::audit::build_report(&h.state().state);
    assert!(!figures.is_empty());
    assert_eq!(report.rules.len(), 6);
    assert_eq!(report.log.entries.len(), 6);
    let html_path = tmp.path().join("report.html");
    let html = report_html(&report, &figures);
    localist::studio::app::write_report(
        &html_path,
        html.as_bytes(),
        serde_json::to_string_pretty(&report).unwrap().as_bytes(),
    )
    .unwrap();
    assert!(html.contains("data:image/png;base64,") && html.contains("<svg"));
    let json_path = tmp.path().join("report.json");
    let back: AuditReport =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert!(verify_report(&back, tmp.path()).is_empty());

    // Edit a measured number: the report's own hash catches it.
    let mut edited = back.clone();
    edited.rules[0].report.pf_mass = Some(0.999);
    let p = verify_report(&edited, tmp.path());
    assert!(
        p.iter()
            .any(|m| m.contains("report's contents were altered")),
        "{p:?}"
    );
    // Edit a log entry and re-seal the report: the chain names the entry.
    let mut forged = back.clone();
    forged.log.entries[2].rule_text =
        "rule x\n when query.block = dose\n target block drug\n bias 0\nend\n".into();
    let forged = forged.seal();
    let p = verify_report(&forged, tmp.path());
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("log entry 2 (Added amount_to_currency)"),
        "{p:?}"
    );
    // Remove an entry: the next one's link breaks.
    let mut cut = back.clone();
    cut.log.entries.remove(1);
    let p = verify_report(&cut.seal(), tmp.path());
    assert!(p.iter().any(|m| m.starts_with("log entry 1")), "{p:?}");
    // Change the model after the fact: its hash no longer matches.
    let cfg = ck.join("config.json");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text} ")).unwrap();
    let p = verify_report(&back, tmp.path());
    assert!(
        p.iter()
            .any(|m| m.contains("the model at") && m.contains("has changed")),
        "{p:?}"
    );
}

#[test]
fn the_specialists_tab_shows_the_sample_pool_its_moves_and_routing() {
    let mut h = harness(sample("tiny-clinical"));
    step_until(&mut h, "the model", |app| app.state.summary.is_some());
    h.get_by_label("Specialists").click();
    h.run_steps(2);
    h.get_by_label("pool-clinical-payments").click();
    // The worker reads the pool; the UI waits for it at most a moment, then takes it later.
    step_until(&mut h, "the pool", |app| app.pool.is_some());
    let pool = h.state().pool.as_ref().expect("the pool");
    assert_eq!(pool.manifest.specialists.len(), 2);
    assert_eq!(pool.manifest.routing.len(), 80);
    assert_eq!(pool.texts.len(), 80);
    // Notes stay with the base, payments go to the recruited specialist.
    for (k, r) in pool.manifest.routing.iter().enumerate() {
        assert_eq!(
            r.specialist,
            if k % 2 == 1 { "s1" } else { "base" },
            "{}",
            pool.texts[k]
        );
    }
    assert!(h
        .query_by_label_contains("accepted round 1: recruit s1 from base for 40 documents")
        .is_some());
    // Hovering a document's row highlights it.
    let rect = h.get_by_label("#3").rect();
    h.hover_at(rect.center());
    h.run_steps(3);
    assert_eq!(h.state().pool.as_ref().unwrap().hovered, Some(3));
}

/// Grow a pool from the Specialists tab: the model held as the base, the bundled documents;
/// a folder that holds files is refused in the form, and the grown pool is shown when done.
#[test]
fn the_specialists_tab_grows_a_pool_from_the_model_held() {
    let base = sample("pool-clinical-payments").join("base");
    let mut h = harness(base.clone());
    step_until(&mut h, "the model", |app| app.state.summary.is_some());
    h.get_by_label("Specialists").click();
    h.run_steps(2);
    h.get_by_label("Grow a pool…").click();
    h.run_steps(2);
    h.get_by_label("the model held").click();
    h.run_steps(1);
    assert_eq!(Path::new(h.state().pool_form.base.as_str()), base.as_path());
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("keep.txt"), "mine").unwrap();
    h.state_mut().pool_form.docs = sample("pool-clinical-payments")
        .join("documents.txt")
        .display()
        .to_string();
    h.state_mut().pool_form.out = out.path().display().to_string();
    h.get_by_label("Grow").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("already holds files").is_some());
    let dir = out.path().join("grown");
    h.state_mut().pool_form.out = dir.display().to_string();
    h.get_by_label("Grow").click();
    step_until(&mut h, "the grown pool", |app| {
        app.pool.as_ref().is_some_and(|p| p.dir == dir)
    });
    assert!(h.state().pool_form.error.is_none());
    let pool = h.state().pool.as_ref().unwrap();
    assert_eq!(pool.manifest.specialists.len(), 2);
    assert!(dir.join("manifest.json").is_file());
    assert_eq!(
        std::fs::read_to_string(out.path().join("keep.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn the_recruitment_tab_says_why_a_log_beside_the_model_is_not_shown() {
    // The clinical sample with the recruited sample's log beside it: another model's log.
    let dir = tempfile::tempdir().unwrap();
    let ck = dir.path().join("ck");
    std::fs::create_dir(&ck).unwrap();
    for f in ["config.json", "blocks.json", "model.safetensors"] {
        std::fs::copy(sample("tiny-clinical").join(f), ck.join(f)).unwrap();
    }
    let log = sample("tiny-topics-recruited").join("recruitment.json");
    std::fs::copy(log, ck.join("recruitment.json")).unwrap();
    let mut h = harness(ck);
    step_until(&mut h, "the model", |app| app.state.summary.is_some());
    h.get_by_label("Recruitment").click();
    h.run_steps(2);
    assert!(h.state().state.recruitment.is_none());
    // Said in the Model panel and again in the tab where the log would be.
    let said = h.query_all_by_label_contains("not the log of this checkpoint's blocks");
    assert_eq!(said.count(), 2);
    assert!(h
        .query_by_label_contains("No recruitment here yet")
        .is_some());
}

#[test]
fn the_recruitment_tab_shows_the_recruited_samples_decisions() {
    let mut h = harness(sample("tiny-topics-recruited"));
    step_until(&mut h, "the model and its recruitment log", |app| {
        app.state.summary.is_some() && app.state.recruitment.is_some()
    });
    h.get_by_label("Recruitment").click();
    h.run_steps(2);
    let rec = h.state().state.recruitment.clone().unwrap();
    assert_eq!(rec.accepted, 6);
    assert!(h
        .query_by_label_contains("10 rounds, 6 accepted moves, 4 blocks")
        .is_some());
    // One table row per decision, newest first, with the block it concerns.
    for name in ["monsoon·mist", "kiwi·grape", "spanner·mallet"] {
        assert!(h.query_all_by_label(name).count() >= 1, "{name} missing");
    }
    assert!(h
        .query_by_label_contains("stop: 3 rounds without")
        .is_some());
    // The sample's log was written before function words read the block before them: its
    // settings say they were isolated, and a log of today's default says what they read.
    assert!(h
        .query_by_label_contains("function words isolated")
        .is_some());
    if let Some(r) = h.state_mut().state.recruitment.as_mut() {
        r.config.function_words_inherit = true;
    }
    h.run_steps(2);
    assert!(h
        .query_by_label_contains("function words read the block of the word before them")
        .is_some());
    // The data bits and the model's own bits each in a plot of its own scale (on one axis the
    // model's few hundred bits lay flat under a line of a million).
    for legend in ["L(D | M)", "DL(M) − L(D | M)"] {
        assert!(h.query_by_label(legend).is_some(), "no plot of {legend}");
    }
    // A log with no round yet (a run gone back before its first round) counts the model's
    // blocks, not none.
    if let Some(r) = h.state_mut().state.recruitment.as_mut() {
        r.rounds.clear();
    }
    h.run_steps(2);
    assert!(h
        .query_by_label_contains("0 rounds, 6 accepted moves, 4 blocks")
        .is_some());
    // A long log is drawn newest first up to 1,000 rows, and says so.
    if let Some(r) = h.state_mut().state.recruitment.as_mut() {
        let first = r.log.first().cloned().unwrap();
        let mut oldest = first.clone();
        oldest.block = "the-oldest-decision".into();
        r.log.insert(0, oldest);
        r.log.splice(1..1, std::iter::repeat_n(first, 1500));
    }
    h.run_steps(2);
    let n = h.state().state.recruitment.as_ref().unwrap().log.len();
    assert!(h
        .query_by_label_contains(&format!("the newest 1000 of {n} decisions"))
        .is_some());
    assert!(h.query_by_label("the-oldest-decision").is_none());
}

/// A removal read at once shows its standard error beside ΔDL, and one that saved more than δ
/// but not more than δ + z·SE says it was turned away by the noise. A merge that pays and waits
/// for the next round, and a move that paid but another saved more, say so too (both read
/// "rejected (within the noise)" before, though far past their margins).
#[test]
fn a_removal_within_the_noise_says_so_in_the_decisions_table() {
    use localist::analysis::mdl::{decide, removal_z, with_noise_z, ModelBits, Verdict};
    use localist::engine::protocol::{MoveKind, RecruitEvent};
    use localist::train::recruit::MERGE_WAITS;
    let mut h = harness(sample("tiny-topics-recruited"));
    step_until(&mut h, "the model and its recruitment log", |app| {
        app.state.summary.is_some() && app.state.recruitment.is_some()
    });
    let model = ModelBits {
        parameter_bits: 0.0,
        header_bits: 36.0,
        map_bits: 0.0,
    };
    let merge = decide("merge", 125_627.0, 125_532.0, model, -1.0, 64.0);
    let event = RecruitEvent {
        step: 725,
        round: 27,
        kind: MoveKind::Merge,
        block: "mango·quince".into(),
        tokens: vec!["mango".into()],
        decision: Some(with_noise_z(merge, 29.9, removal_z(7))),
        blocks_after: 4,
        dl_after: 0.0,
        note: "mallet·drill absorbed".into(),
    };
    // The clinical corpus's step-300 merge and step-400 reassignment.
    let mut waits = event.clone();
    waits.step = 300;
    let mut pays = with_noise_z(
        decide("merge", 173_592.6, 160_094.9, model, -1.0, 64.0),
        1_073.4,
        removal_z(1),
    );
    assert_eq!(pays.verdict, Verdict::Accepted);
    pays.verdict = Verdict::Rejected;
    waits.decision = Some(pays);
    waits.note = format!("at·a absorbed; {MERGE_WAITS}");
    let mut outdone = decide("reassign", 158_880.9, 157_357.7, model, 1.0, 64.0);
    outdone.verdict = Verdict::Rejected;
    let outdone = RecruitEvent {
        step: 400,
        kind: MoveKind::Reassign,
        decision: Some(outdone),
        note: "continue from note·on; the merge saves more".into(),
        ..event.clone()
    };
    if let Some(rec) = h.state_mut().state.recruitment.as_mut() {
        rec.log.extend([waits, outdone, event]);
    }
    h.get_by_label("Recruitment").click();
    h.run_steps(2);
    assert!(h.query_by_label("-131 ± 30").is_some());
    assert!(h.query_by_label("rejected (within the noise)").is_some());
    assert!(h.query_by_label("-13534 ± 1073").is_some());
    assert!(h
        .query_by_label("pays; kept if it pays again next round")
        .is_some());
    // The sample's own log has such moves too (a recruit outdone by an extension).
    assert!(
        h.query_all_by_label("pays; another move saves more")
            .count()
            >= 2
    );
}

#[test]
fn a_text_in_another_script_is_refused_as_characters_and_trains_with_word_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("zh.txt");
    std::fs::write(&corpus, "水火木金土日月山川田 人口手足目耳\n".repeat(200)).unwrap();
    // The refusal quotes a Chinese character: where no installed font has it (CI), it is
    // drawn as a box, as in the window, instead of failing the test.
    let ck = sample("tiny-shakespeare-l1");
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .allow_missing_glyphs()
        .build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, Some(ck)));
    // Every answer to the opening first (see [`settled`]): a click while λ* is still due can
    // land on a button that moves in the next frame, and reach nothing.
    step_until(&mut h, "the first capture and λ* on its text", answered);
    h.run_steps(2);
    h.state_mut().settings.corpus = corpus.display().to_string();
    h.state_mut().settings.steps = 3;
    h.get_by_label("New run").click();
    step_until(&mut h, "the refusal", |app| app.state.error.is_some());
    let err = h.state().state.error.clone().unwrap();
    assert!(
        err.contains("zh.txt") && err.contains("word tokens"),
        "{err}"
    );
    // Tick "word tokens" as a person would: the same file now sets up a run.
    h.state_mut().state.error = None;
    h.get_by_label("word tokens").click();
    h.run_steps(1);
    assert!(h.state().settings.word_tokens);
    h.get_by_label("New run").click();
    step_until(&mut h, "the run on word tokens", |app| {
        app.state.error.is_some()
            || app
                .state
                .summary
                .as_ref()
                .is_some_and(|s| s.source.contains("zh.txt"))
    });
    assert_eq!(h.state().state.error, None);
    assert!(h
        .state()
        .state
        .summary
        .as_ref()
        .unwrap()
        .warnings
        .iter()
        // (one line repeated: its held-out tenth repeats the training text, and says so)
        .all(|w| w.contains("repeats the training text")));
}

#[test]
fn windows_first_is_a_switch_of_recruiting_runs_and_reaches_the_run() {
    let mut h = settled_clinical();
    // It is offered only under "recruit blocks", where it acts.
    assert!(h.query_by_label("windows until the first block").is_none());
    h.get_by_label("recruit blocks").click();
    h.run_steps(1);
    h.get_by_label("windows until the first block").click();
    h.run_steps(1);
    assert!(h.state().settings.recruit && h.state().settings.windows_first);
    h.state_mut().settings.corpus = "topics:3".into();
    h.state_mut().settings.steps = 5000;
    h.get_by_label("New run").click();
    step_until(&mut h, "the run's recruitment view", |app| {
        app.state.error.is_some() || app.state.recruitment.is_some()
    });
    assert_eq!(h.state().state.error, None);
    let rec = h.state().state.recruitment.clone().unwrap();
    assert!(rec.config.enabled);
    assert_eq!(rec.config.start_windows, 8);
    // The Recruitment tab's settings line says so.
    h.get_by_label("Recruitment").click();
    h.run_steps(2);
    assert!(h
        .query_by_label_contains("windows of 8 until the first block")
        .is_some());
    h.get_by_label("Stop").click();
    step_until(&mut h, "the end of the run", |app| {
        app.state.worker == WorkerState::Idle
    });
}

#[test]
fn recruitment_switches_on_and_off_while_training() {
    let mut h = settled_clinical();
    // A run on the topic corpus with its true topics as blocks, set up without recruitment.
    h.state_mut().settings.corpus = "topics:3".into();
    h.state_mut().settings.steps = 5000;
    h.get_by_label("New run").click();
    step_until(&mut h, "two training steps", |app| {
        app.state.curve.len() >= 2
    });
    h.get_by_label("Recruitment").click();
    h.run_steps(2);
    h.get_by_label("recruit blocks while training").click();
    step_until(&mut h, "recruitment switched on", |app| {
        app.state.error.is_some()
            || app
                .state
                .recruitment
                .as_ref()
                .is_some_and(|r| r.config.enabled)
    });
    assert_eq!(
        h.state().state.error,
        None,
        "{:?}",
        h.state()
            .state
            .summary
            .as_ref()
            .map(|s| (&s.source, &s.blocks))
    );
    step_until(&mut h, "one round", |app| {
        app.state
            .recruitment
            .as_ref()
            .is_some_and(|r| r.config.enabled && !r.rounds.is_empty())
    });
    h.get_by_label("recruit blocks while training").click();
    step_until(&mut h, "recruitment switched off", |app| {
        app.state
            .recruitment
            .as_ref()
            .is_some_and(|r| !r.config.enabled)
    });
    assert!(h.query_by_label_contains("switched off").is_some());
    h.get_by_label("Stop").click();
    step_until(&mut h, "the end of the run", |app| {
        app.state.worker == WorkerState::Idle
    });
}

/// SmolLM2 under ./models, or `None` (said) when it is missing outside CI.
fn smollm2_path() -> Option<PathBuf> {
    common::model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
}

/// Step frames until `done` holds, for at most `secs` seconds (a pretrained model loads for
/// several seconds).
fn step_until_for(
    h: &mut Harness<'static, StudioApp>,
    secs: u64,
    what: &str,
    done: impl Fn(&StudioApp) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(2));
    }
    h.step();
}

/// Labels on screen that show a measured PF with a pass or a fail.
fn pf_verdicts(h: &Harness<'static, StudioApp>) -> Vec<String> {
    h.query_all_by_label_contains("PF ")
        .filter_map(|n| {
            use egui_kittest::kittest::NodeT;
            n.accesskit_node().label()
        })
        .filter(|l| l.contains("pass") || l.contains("FAIL"))
        .collect()
}

/// Type a path into the Model panel and open it.
fn open_path(h: &mut Harness<'static, StudioApp>, path: &Path) {
    h.state_mut().state.model_path = path.display().to_string();
    h.run_steps(1);
    h.get_by_label("Open").click();
    h.run_steps(1);
}

#[test]
fn rules_that_do_not_resolve_on_a_new_model_are_not_in_force_and_no_old_result_shows() {
    let Some(smol) = smollm2_path() else { return };
    let clinical = sample("tiny-clinical");
    let mut h = harness(clinical.clone());
    step_until(&mut h, "the clinical capture and λ*", |app| {
        app.state.capture.is_some() && app.state.threshold.is_some()
    });
    apply_example_rules(&mut h);
    step_until(&mut h, "the example measured", |app| {
        app.state.rules.resolved.len() == 6 && !app.state.current_reports().is_empty()
    });
    assert!(
        !pf_verdicts(&h).is_empty(),
        "the clinical rules show a PF verdict"
    );
    assert!(h.state().state.current_threshold().is_some());

    open_path(&mut h, &smol);
    // While it loads (seconds: the file is hashed, parsed and its blocks found), the status
    // bar says so with a spinner instead of "worker idle".
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut shown = false;
    while !h
        .state()
        .state
        .summary
        .as_ref()
        .is_some_and(|s| s.source.contains("SmolLM2"))
    {
        assert!(Instant::now() < deadline, "timed out waiting for SmolLM2");
        h.step();
        if h.query_by_label_contains("loading SmolLM2").is_some() {
            shown = true;
            assert!(h.query_by_label("worker idle").is_none());
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(shown, "the status bar never said the model was loading");
    step_until_for(&mut h, 300, "SmolLM2 and the rules checked on it", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("SmolLM2"))
            && app.state.rules.not_in_force.is_some()
    });
    {
        let st = &h.state().state;
        assert!(
            st.rules.resolved.is_empty(),
            "no rule is in force on SmolLM2"
        );
        assert!(st.current_reports().is_empty());
        // λ* of the clinical model is not shown for SmolLM2 (it is not estimated for it).
        assert!(st.current_threshold().is_none());
        assert!(st.threshold.is_none());
        // No theory curve of the clinical model is current.
        assert!(st.theory.is_none() || st.stale_theory().is_none());
        assert!(st
            .theory_on
            .as_ref()
            .is_none_or(|on| Some(&on.model) == st.summary.as_ref().map(|s| &s.model_id)));
    }
    assert!(pf_verdicts(&h).is_empty(), "{:?}", pf_verdicts(&h));
    assert!(h
        .query_by_label_contains("not in force on this model")
        .is_some());
    h.get_by_label("Audit").click();
    h.run_steps(2);
    assert!(pf_verdicts(&h).is_empty(), "{:?}", pf_verdicts(&h));
    assert!(h
        .query_by_label_contains("not in force on this model")
        .is_some());
    // The report refuses to certify rules for a model they were not measured on.
    localist::studio::panels::audit::export_report(&mut h.state_mut().state);
    assert!(h.state().state.pending_report.is_none());
    let err = h.state().state.error.clone().unwrap_or_default();
    assert!(err.contains("report not exported"), "{err}");
    h.get_by_label("Generate").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("rules in force)").is_none());
    assert!(h.query_by_label_contains("with 5 rules in force").is_none());

    // Back to the clinical model: the rules fit again, and no error of SmolLM2's is left.
    open_path(&mut h, &clinical);
    step_until_for(&mut h, 180, "the clinical rules measured again", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("tiny-clinical"))
            && app.state.rules.resolved.len() == 6
            && !app.state.current_reports().is_empty()
    });
    let st = &h.state().state;
    assert!(st.rules.not_in_force.is_none());
    assert!(st.rules.errors.is_none());
    // Nor does the status bar still say they do not resolve.
    assert!(
        st.error
            .as_deref()
            .is_none_or(|e| !e.contains("do not resolve")),
        "{:?}",
        st.error
    );
    h.get_by_label("Rules").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("not in force").is_none());
    assert!(h.query_by_label_contains("nothing was applied").is_none());
    assert!(!pf_verdicts(&h).is_empty());
}

#[test]
fn a_rule_report_of_an_earlier_text_is_not_shown_as_current() {
    let mut h = settled_clinical();
    apply_example_rules(&mut h);
    step_until(&mut h, "the example measured", |app| {
        !app.state.current_reports().is_empty()
    });
    // The text changes in the studio and has not been captured yet: the reports measured on
    // the previous text are no longer current.
    h.state_mut().state.text = "txn 2024-03-05 : pay".into();
    h.run_steps(1);
    assert!(h.state().state.current_reports().is_empty());
    assert_eq!(
        h.state().state.stale_reports().as_deref(),
        Some("not measured on this text")
    );
    assert!(pf_verdicts(&h).is_empty(), "{:?}", pf_verdicts(&h));
    let text = h.state().state.text.clone();
    h.state_mut()
        .state
        .send(localist::engine::worker::Command::Capture(text));
    step_until(&mut h, "the reports of the new text", |app| {
        !app.state.current_reports().is_empty()
    });
    assert!(h.state().state.stale_reports().is_none());
}

#[test]
fn a_corrupt_autosave_is_kept_aside_and_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("autosave");
    std::fs::create_dir_all(&dir).unwrap();
    let autosave = dir.join("autosave.localist-session.json");
    std::fs::write(&autosave, "{ \"format\": \"localist-session\", \"vers").unwrap();
    // The last studio "crashed": its marker names no live process.
    std::fs::write(dir.join("running.pid"), "4294967295").unwrap();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_eframe({
            let dir = dir.clone();
            move |cc| {
                StudioApp::new(&cc.egui_ctx, Some(sample("tiny-shakespeare-l0"))).with_autosave(dir)
            }
        });
    h.run_steps(2);
    let st = &h.state().state;
    assert!(st.restore_offer.is_none());
    let err = st.error.clone().unwrap_or_default();
    assert!(
        err.contains("could not be read") && err.contains("corrupt-"),
        "{err}"
    );
    assert!(h.query_by_label_contains("kept as").is_some());
    // Kept aside, byte for byte; nothing deleted.
    assert!(!autosave.exists());
    let aside: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("autosave.localist-session.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(&aside[0]).unwrap(),
        "{ \"format\": \"localist-session\", \"vers"
    );
}

#[test]
fn heatmaps_and_compare_say_when_they_are_not_of_the_text_or_model_shown() {
    let mut h = harness(sample("tiny-clinical"));
    // The model opens on one of its own sentences: the first capture (of the default text)
    // is marked until that sentence's capture arrives.
    step_until(&mut h, "the clinical capture", |app| {
        app.state.capture.is_some() && app.state.stale_capture().is_none()
    });
    h.get_by_label("Compare").click();
    step_until(&mut h, "the comparison", |app| {
        app.state.compare.views.is_some() && !app.state.compare.pending
    });
    assert!(h.state().state.stale_compare().is_none());

    // A new text typed and not captured: both views are marked, the heatmaps stay.
    h.state_mut().state.text = "patient paid 40 euros".into();
    h.run_steps(2);
    assert_eq!(
        h.state().state.stale_compare().as_deref(),
        Some("not measured on this text")
    );
    assert!(h
        .query_by_label_contains("press Capture to measure this text")
        .is_some());
    h.get_by_label("Attention").click();
    h.run_steps(2);
    assert_eq!(
        h.state().state.stale_capture().as_deref(),
        Some("not measured on this text")
    );
    assert!(h
        .query_by_label_contains("the heatmaps below are from before the last change")
        .is_some());
    h.get_by_label("Capture").click();
    step_until(&mut h, "the capture of the new text", |app| {
        app.state.stale_capture().is_none()
    });
    h.run_steps(1);
    assert!(h
        .query_by_label_contains("from before the last change")
        .is_none());

    // Another model: in the frame it arrives, the clinical capture is either replaced or
    // marked, never shown as the new model's.
    let clinical_id = h.state().state.summary.as_ref().unwrap().model_id.clone();
    open_path(&mut h, &sample("tiny-shakespeare-l0"));
    step_until(&mut h, "the other model", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.model_id != clinical_id)
    });
    let st = &h.state().state;
    let now = st.summary.as_ref().unwrap().model_id.clone();
    match st.stale_capture() {
        None => assert_eq!(st.capture_on.as_ref().unwrap().model, now),
        Some(why) => {
            assert_eq!(why, "not measured on this model");
            assert_eq!(st.capture_on.as_ref().unwrap().model, clinical_id);
        }
    }
    step_until(&mut h, "the new model's capture", |app| {
        app.state.stale_capture().is_none()
    });
    assert_eq!(h.state().state.capture_on.as_ref().unwrap().model, now);
}

/// Replace the text of the field labelled `label` and press Enter in it.
fn retype(h: &mut Harness<'static, StudioApp>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.run_steps(1);
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.run_steps(1);
    h.get_by_label(label).type_text(text);
    h.run_steps(1);
    h.key_press(egui::Key::Enter);
    h.run_steps(2);
}

/// Without a native file dialog (as on desktops without a portal, here forced by the setting
/// the README gives) exports and Open… go through the built-in browser: a capture's CSV is
/// written where the user points, a replace is asked once, and a checkpoint folder opens.
#[test]
fn files_open_and_save_through_the_built_in_browser() {
    std::env::set_var("LOCALIST_FILE_DIALOG", "builtin");
    let dir = tempfile::tempdir().unwrap();
    let mut h = started_clinical();
    let (cap, tokens) = h.state().state.capture.clone().unwrap();
    let csv = localist::engine::export::capture_csv(&cap, &tokens);
    h.state_mut().state.pending_export = Some(("capture.csv".into(), csv.clone().into_bytes()));
    h.run_steps(2);
    h.get_by_label("Save");
    retype(&mut h, "location", dir.path().to_str().unwrap());
    h.get_by_label("Save").click();
    step_until(&mut h, "the export", |app| {
        app.state
            .info
            .as_deref()
            .is_some_and(|i| i.starts_with("exported"))
    });
    let written = dir.path().join("capture.csv");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), csv);
    // The same name again: the browser asks before replacing.
    h.state_mut().state.pending_export = Some(("capture.csv".into(), b"new".to_vec()));
    h.run_steps(2);
    h.get_by_label("Save").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("press Save again").is_some());
    h.get_by_label("Save").click();
    step_until(&mut h, "the replacing export", |_app| {
        std::fs::read(dir.path().join("capture.csv")).is_ok_and(|b| b == b"new")
    });
    // Ctrl+O: a checkpoint folder, typed as a location and chosen.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    h.run_steps(2);
    retype(
        &mut h,
        "location",
        sample("tiny-topics-recruited").to_str().unwrap(),
    );
    h.get_by_label("Choose folder").click();
    step_until(&mut h, "the chosen model", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("tiny-topics-recruited"))
    });
    // Cancel closes the browser and does nothing.
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::O);
    h.run_steps(2);
    h.get_by_label("Cancel").click();
    h.run_steps(2);
    assert!(h.query_by_label("Choose folder").is_none());
}

/// A worker error sits above the status bar, wrapped, with Dismiss in reach; the next load that
/// succeeds takes it away.
#[test]
fn errors_are_dismissible_and_cleared_by_the_next_success() {
    let mut h = started_clinical();
    let missing = std::env::temp_dir().join("no-such-checkpoint-anywhere-0123456789");
    let fail = |h: &mut Harness<'static, StudioApp>| {
        h.state_mut()
            .state
            .send(localist::engine::worker::Command::Load(missing.clone()));
        step_until(h, "the failure", |app| app.state.error.is_some());
    };
    fail(&mut h);
    let err = h.state().state.error.clone().unwrap();
    assert!(err.contains("no-such-checkpoint"), "{err}");
    h.get_by_label("Dismiss").click();
    h.run_steps(2);
    assert_eq!(h.state().state.error, None);
    fail(&mut h);
    h.state_mut()
        .state
        .send(localist::engine::worker::Command::Load(sample(
            "tiny-shakespeare-l0",
        )));
    step_until(&mut h, "the next load", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("tiny-shakespeare-l0"))
    });
    assert_eq!(
        h.state().state.error,
        None,
        "a success leaves the old error up"
    );
    assert!(h.query_by_label("Dismiss").is_none());
}

/// Opening a model puts its own sample in the text box when the text there is the studio's
/// (the last model's sample), never over a text the user typed; a text the model mostly does
/// not know is said so.
#[test]
fn a_new_model_brings_its_own_sample_and_unknown_text_is_flagged() {
    use localist::engine::worker::Command;
    let mut h = started_clinical();
    let clinical = h.state().state.text.clone();
    assert_eq!(
        h.state().state.auto_text.as_deref(),
        Some(clinical.as_str())
    );
    h.state_mut()
        .state
        .send(Command::Load(sample("tiny-topics-recruited")));
    step_until(&mut h, "the topics model", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("tiny-topics-recruited"))
    });
    let sample_text = h
        .state()
        .state
        .summary
        .as_ref()
        .unwrap()
        .sample_text
        .clone();
    match sample_text {
        Some(t) => assert_eq!(h.state().state.text, t),
        None => {
            step_until(&mut h, "a capture of the clinical text", |app| {
                app.state.capture.as_ref().is_some_and(|(_, t)| {
                    t.iter().filter(|w| w.as_str() == "<unk>").count() * 2 > t.len()
                })
            });
            h.get_by_label("Attention").click();
            h.run_steps(2);
            assert!(h.query_by_label_contains("unknown to this model").is_some());
        }
    }
    // A typed text stays when another model opens.
    h.state_mut().state.text = "my own words about a patient".into();
    h.state_mut()
        .state
        .send(Command::Load(sample("tiny-clinical")));
    step_until(&mut h, "the clinical model again", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("tiny-clinical"))
    });
    assert_eq!(h.state().state.text, "my own words about a patient");
}

/// The heads overview: every head as a row of summaries, sortable, and a click opens the head.
#[test]
fn the_heads_table_sorts_and_opens_a_head() {
    let mut h = started_clinical();
    h.get_by_label("Attention").click();
    h.run_steps(2);
    h.get_by_label("table").click();
    h.run_steps(2);
    // 2 layers × 4 heads, one row each.
    for name in ["0.0", "0.3", "1.0", "1.3"] {
        assert!(h.query_by_label(name).is_some(), "row {name}");
    }
    h.get_by_label_contains("entropy (bits)").click();
    h.run_steps(2);
    assert!(
        h.query_by_label_contains("entropy (bits) v").is_some(),
        "sorted, largest first"
    );
    let cap = h.state().state.capture.clone().unwrap().0;
    let rows = localist::studio::panels::attention::heads_table::sorted_rows(
        &cap,
        localist::studio::panels::attention::heads_table::Sort {
            column: localist::studio::panels::attention::heads_table::Column::Entropy,
            descending: true,
        },
    );
    assert!(rows.windows(2).all(|w| w[0].entropy >= w[1].entropy));
    h.get_by_label("1.2").click();
    h.run_steps(2);
    assert_eq!(h.state().state.focus, Some((1, 2)));
    assert!(h
        .query_by_label_contains("layer 1, head 2: mean entropy")
        .is_some());
}

/// Before a run the training plots are a sentence, not empty axes.
#[test]
fn no_empty_plots_greet_a_newcomer() {
    let mut h = started_clinical();
    h.run_steps(2);
    assert!(h
        .query_by_label_contains("appear here once a run starts")
        .is_some());
}

/// The auditor's pass/fail over a test set: Measure has the worker run every rule over the
/// model's held-out windows; the table gives each rule's sentences fired, pass rate and mean
/// PF; a dial change marks it stale; a typed file of sentences is measured one line each.
#[test]
fn the_audit_measures_pass_fail_over_a_test_set_and_says_when_it_is_stale() {
    let mut h = settled_clinical();
    apply_example_rules(&mut h);
    step_until(&mut h, "the example in force", |app| {
        app.state.rules.resolved.len() == 6 && !app.state.rules.reports.is_empty()
    });
    h.get_by_label("Audit").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("Not measured yet").is_some());
    h.get_by_label("Measure").click();
    step_until(&mut h, "the audit over held-out windows", |app| {
        app.state.rules.test_audit.is_some()
    });
    h.run_steps(2);
    let audit = h.state().state.rules.test_audit.clone().unwrap();
    assert_eq!(audit.sentences, 32);
    assert_eq!(audit.rows.len(), 6);
    assert!(h.state().state.stale_test_audit().is_none());
    assert!(h.query_by_label_contains("32 held-out windows").is_some());
    let fired = audit.rows.iter().find(|r| r.windows_fired > 1).unwrap();
    assert!(h
        .query_all_by_label(&format!("{} of 32", fired.windows_fired))
        .next()
        .is_some());
    // Another dial: the result says it was measured on another one.
    h.get_by_role_and_label(egui::accesskit::Role::Slider, "λ")
        .set_value_accesskit(0.5);
    step_until(&mut h, "the dial at 0.5", |app| {
        (app.state.dial.params.lambda - 0.5).abs() < 1e-9
    });
    h.run_steps(2);
    assert_eq!(
        h.state().state.stale_test_audit().as_deref(),
        Some("not measured on this dial")
    );
    assert!(h
        .query_by_label_contains("press Measure to measure again")
        .is_some());
    // A stale result is not certified: the report leaves it out and says so.
    let (report, _) = localist::studio::panels::audit::build_report(&h.state().state);
    assert!(report.test_set.is_none());
    assert!(localist::engine::audit::report_html(&report, &[])
        .contains("Not measured under this model, dial"));
    // A file of sentences, typed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(
        &file,
        "note 2024-03-05 : patient given ibuprofen 400 mg\n\nnote 2024-03-06 : patient given tramadol 50 mg\n",
    )
    .unwrap();
    retype(&mut h, "file path", file.to_str().unwrap());
    assert_eq!(
        h.state().state.stale_test_audit().as_deref(),
        Some("not measured on this test set")
    );
    h.get_by_label("Measure").click();
    step_until(&mut h, "the audit over the file", |app| {
        app.state
            .rules
            .test_audit
            .as_ref()
            .is_some_and(|a| a.sentences == 2)
    });
    h.run_steps(2);
    assert!(h.state().state.stale_test_audit().is_none());
    assert!(h
        .query_by_label_contains("2 sentences of notes.txt")
        .is_some());
    // The exported report carries the current result, signed with the rest.
    let (report, _) = localist::studio::panels::audit::build_report(&h.state().state);
    let section = report.test_set.clone().expect("the test set in the report");
    assert_eq!(section.sentences, 2);
    assert_eq!(section.rows.len(), 6);
    assert_eq!(report.compute_hash(), report.report_sha256);
    let html = localist::engine::audit::report_html(&report, &[]);
    assert!(html.contains("Pass/fail over a test set"));
    assert!(html.contains("2 sentences of notes.txt"));
}

/// Compare offers every model the studio can open (the samples, the fetched pretrained models,
/// a typed path), and shows side B minus side A with a legend that says what the colours
/// mean; sides with different tokens say why they cannot be subtracted.
#[test]
fn compare_offers_every_model_and_shows_b_minus_a_with_a_legend() {
    use localist::studio::panels::compare::{difference_matrix, scale_of, side_matrix};
    let mut h = started(sample("tiny-shakespeare-l1"));
    h.get_by_label("Compare").click();
    step_until(&mut h, "both sides", |app| {
        app.state.compare.views.is_some() && app.state.compare.rects[1].is_some()
    });
    // Each model is a button of the Model panel, and one more entry once the menu is open.
    let smollm2 = common::model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf");
    let mut names = vec![
        "tiny-shakespeare-l0",
        "tiny-clinical",
        "tiny-topics-recruited",
    ];
    if smollm2.is_some() {
        names.push("SmolLM2-135M (GGUF)");
    }
    let before: Vec<usize> = names
        .iter()
        .map(|n| h.query_all_by_label(n).count())
        .collect();
    h.get_by_label("model B").click();
    h.run_steps(2);
    for (name, n) in names.iter().zip(before) {
        assert_eq!(
            h.query_all_by_label(name).count(),
            n + 1,
            "{name} is offered"
        );
    }
    h.key_press(egui::Key::Escape);
    h.run_steps(2);
    // The difference: B − A, cell by cell, with its legend.
    h.get_by_label("difference B − A").click();
    h.run_steps(3);
    let (_, _, views) = h.state().state.compare.views.clone().unwrap();
    let (a, b) = (
        &views[0].as_ref().unwrap().capture,
        &views[1].as_ref().unwrap().capture,
    );
    let diff = difference_matrix(a, b, 0, None).unwrap();
    let (ma, mb) = (side_matrix(a, 0, None), side_matrix(b, 0, None));
    assert_eq!(
        diff[5 * a.len() + 2],
        mb[5 * a.len() + 2] - ma[5 * a.len() + 2]
    );
    assert!(h
        .query_by_label_contains("red, B attends more; blue, A attends more")
        .is_some());
    assert!(h
        .query_by_label(&format!("+{:.2}", scale_of(&diff)))
        .is_some());
    // A typed path: the λ_train = 0 sample on side B.
    let l0 = sample("tiny-shakespeare-l0");
    retype(&mut h, "path B", l0.to_str().unwrap());
    step_until(&mut h, "the typed model on side B", |app| {
        app.state.compare.views.as_ref().is_some_and(|(_, s, v)| {
            s[1].checkpoint.as_deref() == Some(l0.as_path())
                && v[1].as_ref().is_ok_and(|v| v.label.contains("l0"))
        })
    });
    h.run_steps(2);
    assert!(h
        .query_by_label_contains("B − A: (tiny-shakespeare-l0")
        .is_some());
    // A pretrained model tokenizes the text otherwise: side by side only, and said so.
    if let Some(gguf) = smollm2 {
        h.state_mut().state.compare.sides[1].checkpoint = Some(gguf);
        step_until(&mut h, "SmolLM2 on side B", |app| {
            app.state.compare.views.as_ref().is_some_and(|(_, s, v)| {
                s[1].checkpoint
                    .as_ref()
                    .is_some_and(|p| p.ends_with("SmolLM2-135M-Instruct.Q4_1.gguf"))
                    && v[1].is_ok()
            })
        });
        h.run_steps(2);
        assert!(h
            .query_by_label_contains("the difference needs the same tokens on both sides")
            .is_some());
    }
}

/// The Tour opens on the first start (nothing stored), opens the λ_train = 0 sample, switches
/// to each step's tab, is dismissed for good, and comes back from the menu bar's Tour button.
#[test]
fn the_tour_opens_on_first_start_walks_the_tabs_and_comes_back() {
    use localist::studio::state::Tab;
    let mut h = Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_eframe(|cc| {
            StudioApp::new(&cc.egui_ctx, Some(sample("tiny-shakespeare-l1"))).with_storage(None)
        });
    step_until(&mut h, "the first capture", |app| {
        app.state.capture.is_some()
    });
    assert_eq!(h.state().state.tour.step, Some(0));
    assert!(h.query_by_label("1. The dial").is_some());
    h.get_by_label("Open tiny-shakespeare-l0").click_accesskit();
    step_until(&mut h, "the λ_train = 0 sample", |app| {
        app.state
            .summary
            .as_ref()
            .is_some_and(|s| s.source.contains("tiny-shakespeare-l0"))
            && app.state.capture.is_some()
    });
    for (title, tab) in [
        ("2. Compare", Tab::Compare),
        ("3. Theory", Tab::Theory),
        ("4. Rules", Tab::Rules),
        ("5. Audit", Tab::Audit),
    ] {
        h.get_by_label("Next").click_accesskit();
        h.run_steps(2);
        assert_eq!(h.state().state.tab, tab);
        assert!(h.query_by_label(title).is_some(), "{title}");
    }
    h.get_by_label("Back").click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().state.tab, Tab::Rules);
    h.get_by_label("Next").click_accesskit();
    h.run_steps(2);
    h.get_by_label("Done").click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().state.tour.step, None);
    assert!(h.state().state.tour.seen);
    assert!(h.query_by_label("Next").is_none());
    // The menu bar's button opens it again, at the start.
    h.get_by_label("Tour").click();
    h.run_steps(2);
    assert_eq!(h.state().state.tour.step, Some(0));
    assert_eq!(h.state().state.tab, Tab::Attention);
    h.get_by_label("Close tour").click_accesskit();
    h.run_steps(2);
    assert_eq!(h.state().state.tour.step, None);
}

/// Any training plot opens large in a window of its own, with the same data and its zoom hint;
/// another plot's button swaps it, and closing it leaves the side panel's plots as they were.
#[test]
fn a_training_plot_opens_large() {
    use localist::studio::state::TrainingPlot;
    let mut h = settled_clinical();
    h.get_by_label("New run").click();
    step_until(&mut h, "three training steps", |app| {
        app.state.curve.len() >= 3
    });
    h.get_by_label("Stop").click();
    step_until(&mut h, "the end of the run", |app| {
        app.state.worker == WorkerState::Idle && !app.state.live.is_empty()
    });
    h.run_steps(2);
    assert!(h.query_by_label_contains("Ctrl + wheel zooms").is_none());
    let captions = |h: &Harness<'static, StudioApp>, t: &str| h.query_all_by_label(t).count();
    let (loss0, ppl0) = (
        captions(&h, "loss and Ω"),
        captions(&h, "held-out perplexity"),
    );
    h.get_by_label("enlarge loss and Ω").click_accesskit();
    h.run_steps(3);
    assert_eq!(h.state().state.enlarged_plot, Some(TrainingPlot::Loss));
    assert!(h.query_by_label_contains("Ctrl + wheel zooms").is_some());
    // The window's title beside the side panel's own caption.
    assert!(captions(&h, "loss and Ω") > loss0);
    h.get_by_label("enlarge held-out perplexity")
        .click_accesskit();
    h.run_steps(3);
    assert_eq!(
        h.state().state.enlarged_plot,
        Some(TrainingPlot::Perplexity)
    );
    assert!(captions(&h, "held-out perplexity") > ppl0);
    assert_eq!(captions(&h, "loss and Ω"), loss0);
    h.state_mut().state.enlarged_plot = None;
    h.run_steps(2);
    assert!(h.query_by_label_contains("Ctrl + wheel zooms").is_none());
}

/// With rules in force the heads table gains a PF column: each head's mean PF_mass over the
/// rules that act on it, the number the rule reports give; without rules there is none.
#[test]
fn the_heads_table_shows_pf_where_rules_are_in_force() {
    use localist::studio::panels::attention::heads_table::head_pf;
    let mut h = settled_clinical();
    h.get_by_label("table").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("PF (rules)").is_none());
    apply_example_rules(&mut h);
    step_until(&mut h, "the example in force", |app| {
        app.state.rules.resolved.len() == 6
            && app.state.stale_reports().is_none()
            && !app.state.rules.reports.is_empty()
    });
    h.get_by_label("Attention").click();
    h.run_steps(3);
    assert!(h.query_by_label_contains("PF (rules)").is_some());
    let reports = h.state().state.rules.reports.clone();
    let pf = head_pf(&reports, 0, 0).expect("a rule acts on head 0.0");
    assert!((0.0..=1.0).contains(&pf));
    assert!(h.query_all_by_label(&format!("{pf:.3}")).next().is_some());
}

/// A bf16 preview of a dial change (as the worker sends one while the dial is dragged on a
/// LLaMA-family model) is marked over the heatmaps and beside the dial panel's numbers, and
/// offers no export; the exact capture after it clears the marks.
#[test]
fn a_preview_capture_is_marked_until_the_exact_one_arrives() {
    use localist::engine::protocol::Event;
    let mut h = started(sample("tiny-shakespeare-l1"));
    h.run_steps(2);
    let (cap, tokens) = h.state().state.capture.clone().unwrap();
    let on = h.state().state.capture_on.clone().unwrap();
    let exports = |h: &Harness<'static, StudioApp>| h.query_all_by_label("Export").count();
    let before = exports(&h);
    assert!(before > 0);
    let preview = localist::engine::protocol::MeasuredOn {
        preview: true,
        ..on.clone()
    };
    let snapshot = |on| Event::Snapshot(Box::new(cap.clone()), tokens.clone(), on);
    h.state_mut().state.apply(snapshot(preview));
    h.run_steps(2);
    assert!(h.state().state.capture_is_preview());
    assert!(h
        .query_by_label_contains("preview: bf16 weight products")
        .is_some());
    // Mean entropy and mean ε.
    assert_eq!(h.query_all_by_label_contains("(preview)").count(), 2);
    assert_eq!(
        exports(&h),
        before - 1,
        "the heatmaps' Export waits for the exact capture"
    );
    h.state_mut().state.apply(snapshot(on));
    h.run_steps(2);
    assert!(!h.state().state.capture_is_preview());
    assert!(h
        .query_by_label_contains("preview: bf16 weight products")
        .is_none());
    assert_eq!(h.query_all_by_label_contains("(preview)").count(), 0);
    assert_eq!(exports(&h), before);
}

/// One frame of `ctx` showing `text`; its texture changes are dropped as a renderer would
/// take them (egui checks in debug builds that none is lost).
fn frame(ctx: &egui::Context, text: &str) {
    let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
        ui.label(text);
    });
    out.textures_delta.clear();
}

#[test]
fn fallback_fonts_are_checked_and_a_broken_one_does_not_take_the_window_down() {
    use localist::studio::fonts::{add_files, fallback_files, looks_like_font};
    let tmp = tempfile::tempdir().unwrap();
    // Starts like a TrueType file, then garbage.
    let broken = tmp.path().join("broken.ttf");
    std::fs::write(&broken, b"\x00\x01\x00\x00 not really a font").unwrap();
    let notes = tmp.path().join("notes.txt");
    std::fs::write(&notes, b"hello").unwrap();
    let missing = tmp.path().join("missing.ttf");
    let env = [&missing, &broken, &notes]
        .map(|p| p.display().to_string())
        .join(":");
    let files = fallback_files(Some(&env));
    // The user's readable files come first, in order; a missing one is skipped.
    assert_eq!(
        files.get(..2),
        Some([broken.clone(), notes.clone()].as_slice())
    );
    assert!(!files.contains(&missing));
    assert!(looks_like_font(b"OTTO\x00\x0a") && looks_like_font(b"ttcf"));
    assert!(!looks_like_font(b"hello") && !looks_like_font(b""));
    let ctx = egui::Context::default();
    // The text file is refused by its header; the broken font is handed to egui.
    // A file named twice is added once.
    assert_eq!(
        add_files(&ctx, &[broken.clone(), notes, broken.clone()]),
        vec![broken]
    );
    // Laying out text of scripts the bundled fonts lack, with the broken font installed, must
    // not panic (egui reports the font's parse error and draws boxes).
    for _ in 0..2 {
        frame(&ctx, "你好 نص नमस्ते");
    }
    // With the machine's own fallback fonts, a CJK glyph is found when the machine has one.
    let system: Vec<PathBuf> = fallback_files(None);
    let ctx = egui::Context::default();
    let added = add_files(&ctx, &system);
    assert_eq!(added, system, "every candidate found here is a font file");
    frame(&ctx, "x");
    let has = |ctx: &egui::Context, c| {
        ctx.fonts_mut(|f| f.has_glyph(&egui::FontId::proportional(14.0), c))
    };
    let bare = egui::Context::default();
    frame(&bare, "x");
    assert!(!has(&bare, '你'), "egui's bundled fonts have no CJK");
    let cjk_font = system.iter().any(|p| {
        let name = p.to_string_lossy();
        name.contains("CJK") || name.contains("DroidSansFallback") || name.contains("wqy")
    });
    if cjk_font {
        assert!(has(&ctx, '你'), "fonts added: {system:?}");
    }
    assert!(has(&ctx, 'a'), "the bundled fonts still come first");
}

/// A character model reads accented letters and other scripts as '?': the attention view says
/// how many of the text's characters it did not see, and says nothing for a text of its own.
#[test]
fn characters_a_char_model_reads_as_question_marks_are_counted() {
    use localist::engine::worker::Command;
    let mut h = started(sample("tiny-shakespeare-l1"));
    h.get_by_label("Attention").click();
    h.run_steps(2);
    assert!(h.query_by_label_contains("were read as '?'").is_none());
    // é, ï and the dash are outside the 96 symbols; the text's own '?' is not counted.
    let text = "Café naïve — is it?";
    h.state_mut().state.text = text.into();
    h.state_mut().state.send(Command::Capture(text.into()));
    step_until(&mut h, "a capture of the accented text", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(_, t)| t.iter().filter(|w| w.as_str() == "?").count() == 4)
    });
    // The note is drawn with the capture; a few frames at most.
    let note = "3 of 19 characters are outside this model's 96 symbols";
    for _ in 0..20 {
        if h.query_by_label_contains(note).is_some() {
            break;
        }
        h.step();
    }
    assert!(h.query_by_label_contains(note).is_some());
}
