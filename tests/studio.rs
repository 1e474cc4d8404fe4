//! The real studio app driven through egui_kittest (logic and accessibility tree; no GPU
//! needed). The worker thread runs the engine as in the window, so each test waits, with a
//! deadline, for the worker's answer by stepping frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use candle_core::Device;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use localist::data::tokenizer::TokenizerSpec;
use localist::engine::DialSetting;
use localist::model::capture::capture;
use localist::model::checkpoint::load_checkpoint;
use localist::studio::app::{StudioApp, SAMPLE_TEXT};
use localist::studio::state::WorkerState;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_models")
        .join(name)
}

fn harness(ck: PathBuf) -> Harness<'static, StudioApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 820.0))
        .build_eframe(move |cc| StudioApp::new(&cc.egui_ctx, Some(ck)))
}

/// Step frames until `done` holds, for at most 60 s.
fn step_until(h: &mut Harness<'static, StudioApp>, what: &str, done: impl Fn(&StudioApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        h.step();
        std::thread::yield_now();
    }
    h.step();
}

fn engine_entropy(ck: &Path, text: &str, dial: &DialSetting) -> f64 {
    let ck = load_checkpoint(ck, &Device::Cpu).unwrap();
    let tok = serde_json::from_value::<TokenizerSpec>(ck.meta.tokenizer.clone())
        .unwrap()
        .build()
        .unwrap();
    capture(&ck.model, &ck.blocks, &tok.encode(text), dial)
        .unwrap()
        .mean_entropy_bits(None)
}

#[test]
fn moving_the_dial_shows_the_engines_entropy_for_that_lambda() {
    let ck = sample("tiny-shakespeare-l0");
    let mut h = harness(ck.clone());
    step_until(&mut h, "the first capture", |app| {
        app.state.capture.is_some()
    });
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
    let mut h = harness(sample("tiny-clinical"));
    step_until(&mut h, "the model", |app| app.state.summary.is_some());
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
}

#[test]
fn arrow_keys_move_between_layers_and_heads() {
    let mut h = harness(sample("tiny-shakespeare-l1"));
    step_until(&mut h, "the first capture", |app| {
        app.state.capture.is_some()
    });
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
    let mut h = harness(sample("tiny-clinical"));
    // Records of the synthetic corpus start with "note" (clinical) or "txn" (payments).
    step_until(&mut h, "a capture of the model's own text", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(_, tokens)| tokens.first().is_some_and(|t| t == "note" || t == "txn"))
    });
    assert_ne!(h.state().state.text, SAMPLE_TEXT);
    let (_, tokens) = h.state().state.capture.clone().unwrap();
    assert!(tokens.len() > 5);
    assert!(!tokens.iter().any(|t| t == "<unk>"), "{tokens:?}");
}

#[test]
fn the_theory_tab_plots_measurements_against_the_bounds() {
    let mut h = harness(sample("tiny-shakespeare-l1"));
    step_until(&mut h, "the first capture", |app| {
        app.state.capture.is_some()
    });
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
    let mut h = harness(sample("tiny-clinical"));
    step_until(&mut h, "the clinical capture", |app| {
        app.state
            .capture
            .as_ref()
            .is_some_and(|(_, t)| t.first().is_some_and(|w| w == "note" || w == "txn"))
    });
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
