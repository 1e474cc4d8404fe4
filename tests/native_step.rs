//! The native training pass (`model::native`, `train::trainer::native`) computes the losses and
//! gradients candle's autograd computes, on every configuration it takes (untied and tied head,
//! GELU and ReLU, the causal mask and the mode-A dial, the penalty on and off, exempt S(i),
//! √size weights, shards), and a run through it follows the autograd run step by step.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use candle_core::Device;
use localist::analysis::rng::SplitMix64;
use localist::model::blocks::BlockMap;
use localist::model::config::{Activation, ModelConfig};
use localist::model::transformer::LocalistModel;
use localist::train::dataset::TokenStream;
use localist::train::penalty::GroupWeights;
use localist::train::trainer::{TrainConfig, Trainer};

const V: usize = 40;

fn trainer(cfg: &ModelConfig, config: TrainConfig, isolate: bool) -> Trainer {
    let pairs: Vec<(u32, String)> = (4..V as u32).map(|w| (w, format!("b{}", w % 4))).collect();
    let mut blocks = BlockMap::from_assignments(V, &pairs, "test");
    blocks.set_relevance("b2", "b1").unwrap();
    if isolate {
        blocks.isolate_unassigned = true;
    }
    let model = LocalistModel::new_random(cfg, blocks.num_blocks(), 11, &Device::Cpu).unwrap();
    let mut rng = SplitMix64::new(12);
    let ids: Vec<u32> = (0..4000).map(|_| rng.below(V) as u32).collect();
    let stream = TokenStream {
        ids,
        targets: Vec::new(),
    };
    Trainer::new(model, blocks, stream, config).unwrap()
}

fn base_config() -> TrainConfig {
    TrainConfig {
        lambda_train: 1.0,
        eta: 1.0,
        anneal_fraction: 0.0,
        mu_anchor: 0.0,
        batch_size: 6,
        seq_len: 24,
        seed: 5,
        ..TrainConfig::default()
    }
}

/// Losses and gradients of one batch both ways; asserts they agree.
fn compare(label: &str, cfg: &ModelConfig, config: TrainConfig, isolate: bool) {
    compare_trainer(label, trainer(cfg, config, isolate));
}

/// [`compare`] on a trainer made elsewhere.
fn compare_trainer(label: &str, mut t: Trainer) {
    let lambda = t.config.lambda_train;
    assert!(
        t.native_applies(),
        "{label}: the native pass should take this configuration"
    );
    let batch = t.next_batch();
    let g = t.native_gradients(&batch, lambda).unwrap();
    let (total, ce, penalty, anchor, native) = (g.total, g.ce, g.penalty, g.anchor, g.grads);
    let terms = t.batch_terms(&batch, lambda).unwrap();
    let scalar = |x: &candle_core::Tensor| f64::from(x.to_scalar::<f32>().unwrap());
    for (what, a, b) in [
        ("total", total, scalar(&terms.total)),
        ("ce", ce, scalar(&terms.ce)),
        ("penalty", penalty, scalar(&terms.penalty)),
        ("anchor", anchor, scalar(&terms.anchor)),
    ] {
        assert!(
            (a - b).abs() <= 2e-5 * b.abs().max(1.0),
            "{label}: {what} native {a}, autograd {b}"
        );
    }
    if lambda > 0.0 {
        assert!(penalty > 0.0, "{label}: the penalty is on");
    }
    let grads = terms.total.backward().unwrap();
    let mut seen: HashMap<String, bool> = HashMap::new();
    for (name, var) in t.model.params.iter() {
        if name.starts_with("anchors.") && t.config.mu_anchor <= 0.0 {
            continue;
        }
        let want = grads
            .get(var.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let got = native
            .get(name)
            .unwrap_or_else(|| panic!("{label}: no native gradient for {name}"));
        assert_eq!(got.len(), want.len(), "{label}: {name}");
        let scale = want.iter().fold(0f32, |m, x| m.max(x.abs())).max(1e-6);
        let worst = got
            .iter()
            .zip(&want)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst <= 2e-4 * scale,
            "{label}: {name} differs by {worst:e} (largest gradient {scale:e})"
        );
        seen.insert(name.clone(), true);
    }
    assert_eq!(
        seen.len(),
        native.len(),
        "{label}: the native pass has a gradient candle lacks"
    );
}

#[test]
fn native_gradients_match_autograd() {
    let tiny = ModelConfig::preset("tiny", V).unwrap();
    compare("tiny, penalty at λ 1", &tiny, base_config(), false);
    compare(
        "tiny, penalty and anchor loss",
        &tiny,
        TrainConfig {
            mu_anchor: 0.1,
            ..base_config()
        },
        false,
    );
    compare(
        "tiny, no penalty",
        &tiny,
        TrainConfig {
            lambda_train: 0.0,
            ..base_config()
        },
        false,
    );
    // From 128 positions on, a head's products skip the blocks the causal mask hides
    // (`model::native::causal`; here 64, 64 and 32 rows): with the penalty's gradient in the
    // attention's and without.
    let long = ModelConfig {
        max_seq_len: 160,
        ..tiny.clone()
    };
    for lambda_train in [1.0, 0.0] {
        compare(
            &format!("160 positions (causal row blocks), λ {lambda_train}"),
            &long,
            TrainConfig {
                lambda_train,
                seq_len: 160,
                batch_size: 2,
                ..base_config()
            },
            false,
        );
    }
    let tied = ModelConfig {
        tied_head: true,
        activation: Activation::Relu,
        num_layers: 3,
        num_heads: 2,
        d_model: 32,
        ..tiny.clone()
    };
    compare(
        "tied head, ReLU, mode-A dial at 0.6, exempt S(i), √size weights, isolated block",
        &tied,
        TrainConfig {
            forward_lambda: Some(0.6),
            exempt_always_visible: true,
            weights: GroupWeights::SqrtSize,
            lambda_train: 0.3,
            ..base_config()
        },
        true,
    );
}

/// Recruitment before its first block: one open block, the penalty over positional windows
/// (`TrainConfig::start_windows`), the anchor loss still over the one block; the same both
/// ways, with a penalty where the open block alone has none.
#[test]
fn the_start_windows_penalty_trains_natively_as_autograd_does() {
    let tiny = ModelConfig::preset("tiny", V).unwrap();
    let open = |start_windows: Option<usize>| {
        let mut blocks = BlockMap::single(V);
        blocks.open_unassigned = true;
        let model = LocalistModel::new_random(&tiny, 1, 11, &Device::Cpu).unwrap();
        let mut rng = SplitMix64::new(12);
        let ids: Vec<u32> = (0..4000).map(|_| rng.below(V) as u32).collect();
        let stream = TokenStream {
            ids,
            targets: Vec::new(),
        };
        let config = TrainConfig {
            start_windows,
            mu_anchor: 0.1,
            ..base_config()
        };
        Trainer::new(model, blocks, stream, config).unwrap()
    };
    let mut plain = open(None);
    let batch = plain.next_batch();
    let g = plain.native_gradients(&batch, 1.0).unwrap();
    assert_eq!(g.penalty, 0.0, "one open block has no off-block group");
    compare_trainer("one open block, windows of 8 to start", open(Some(8)));
    // Windows of 8 over 24 positions; once a second block is recruited the block map's own
    // groups take over.
    let mut t = open(Some(8));
    assert_eq!(t.start_windows_map().map(|w| w.num_blocks()), Some(3));
    t.blocks = BlockMap::from_assignments(V, &[(5, "b".into())], "test");
    t.blocks.open_unassigned = true;
    assert!(t.start_windows_map().is_none());
    // With `windows_throughout` the unassigned queries keep the windows past the first block
    // and the recruited ones train towards their block: two partitions, the same both ways.
    let mut t = open(Some(8));
    t.config.windows_throughout = true;
    t.config.mu_anchor = 0.0; // the model's anchor keys are for one block
    t.blocks = BlockMap::from_assignments(
        V,
        &[(5, "b".into()), (6, "b".into()), (7, "c".into())],
        "test",
    );
    t.blocks.open_unassigned = true;
    let batch = t.next_batch();
    let own: Vec<_> = batch.iter().map(|w| t.blocks.masks(&w.x)).collect();
    let (windows, _, own_too) = t.penalty_windows(&batch, &own).unwrap();
    assert!(own_too, "the block map's groups and the windows'");
    for (i, &id) in batch[0].x.iter().enumerate() {
        let (own, win) = (own[0].row_open(i), windows[0].row_open(i));
        assert_ne!(
            own, win,
            "row {i} (token {id}) has groups in exactly one partition"
        );
        assert_eq!(
            win,
            (5..=7).contains(&id),
            "row {i}: only recruited queries leave the windows"
        );
    }
    let both = t.native_gradients(&batch, 1.0).unwrap().penalty;
    t.config.windows_throughout = false;
    let blocks_only = t.native_gradients(&batch, 1.0).unwrap().penalty;
    assert!(
        both > blocks_only,
        "the unassigned queries' windows add to the penalty"
    );
    t.config.windows_throughout = true;
    compare_trainer("recruited block and windows for the unassigned queries", t);
}

#[test]
fn a_native_run_follows_the_autograd_run() {
    let tiny = ModelConfig::preset("tiny", V).unwrap();
    let mut a = trainer(&tiny, base_config(), false);
    let mut b = trainer(&tiny, base_config(), false);
    b.native = false;
    assert!(!b.native_applies());
    for step in 0..6 {
        let (x, y) = (a.train_step().unwrap(), b.train_step().unwrap());
        for (what, p, q) in [
            ("loss", x.loss_nats, y.loss_nats),
            ("ce", x.ce_nats, y.ce_nats),
            ("penalty", x.penalty, y.penalty),
        ] {
            assert!(
                (p - q).abs() <= 1e-4 * q.abs().max(1.0),
                "step {step}: {what} native {p}, autograd {q}"
            );
        }
    }
    // AdamW divides by √v, so the weights may differ by a fraction of the learning rate where
    // a gradient is near zero; six steps of 1e-3 bound every difference by 6e-3.
    for ((name, va), (_, vb)) in a.model.params.iter().zip(b.model.params.iter()) {
        let x = va
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let y = vb
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let worst = x
            .iter()
            .zip(&y)
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(worst <= 6e-3, "{name}: weights differ by {worst}");
    }
}

#[test]
fn the_anchor_loss_trains_natively_and_autograd_can_be_forced() {
    let tiny = ModelConfig::preset("tiny", V).unwrap();
    let config = TrainConfig {
        mu_anchor: 0.1,
        ..base_config()
    };
    let mut a = trainer(&tiny, config.clone(), false);
    let mut b = trainer(&tiny, config, false);
    b.native = false;
    assert!(a.native_applies() && !b.native_applies());
    for step in 0..3 {
        let (x, y) = (a.train_step().unwrap(), b.train_step().unwrap());
        assert!(x.anchor_nats > 0.0);
        let d = (x.anchor_nats - y.anchor_nats).abs();
        assert!(
            d <= 1e-4 * y.anchor_nats.max(1.0),
            "step {step}: anchor {} native, {} autograd",
            x.anchor_nats,
            y.anchor_nats
        );
    }
}

#[test]
fn a_token_outside_the_vocabulary_is_an_error_not_a_panic() {
    let tiny = ModelConfig::preset("tiny", V).unwrap();
    let t = trainer(&tiny, base_config(), false);
    let mut batch = {
        let mut t2 = trainer(&tiny, base_config(), false);
        t2.next_batch()
    };
    if let Some(w) = batch.first_mut() {
        w.x[3] = V as u32 + 7;
    }
    let err = t.native_gradients(&batch, 1.0).unwrap_err().to_string();
    assert!(err.contains("outside the vocabulary"), "{err}");
}

#[test]
fn the_row_kernels_run_on_the_instruction_set_expected() {
    use localist::model::fused::simd::{has_avx2, has_avx512};
    // CI runs this binary again under qemu's Haswell (AVX2 and FMA, no AVX-512), so the
    // kernels' AVX2 build is the one checked there.
    if std::env::var_os("LOCALIST_EXPECT_NO_AVX512").is_some() {
        assert!(!has_avx512(), "qemu's Haswell should not report AVX-512");
        assert!(has_avx2(), "qemu's Haswell has AVX2 and FMA");
    }
    eprintln!(
        "row kernels: AVX-512 {}, AVX2+FMA {}",
        has_avx512(),
        has_avx2()
    );
}

/// The view forward (captures, code lengths) through the native pass gives candle's forward:
/// every dial mode, a temperature, mode B's mixture and a rules-style per-head bias.
#[test]
fn the_native_view_forward_matches_candle_in_every_dial_mode() {
    use localist::model::capture::sequence_biases;
    use localist::model::native_view::forward_native;
    use localist::model::transformer::ForwardOptions;

    let tiny = ModelConfig::preset("tiny", V).unwrap();
    let t = trainer(&tiny, base_config(), false);
    let ids: Vec<u32> = (0..40u32).map(|i| (i * 7 + 3) % V as u32).collect();
    let masks = t.blocks.masks(&ids);
    let (h, n) = (tiny.num_heads, ids.len());
    for (dial, rules) in common::native_check_dials() {
        let mode = dial.params.mode;
        let mut biases = sequence_biases(&t.model, &masks, &dial, &Device::Cpu).unwrap();
        if rules {
            let extra = common::rules_extra(h, n);
            for b in &mut biases {
                b.extra = Some(extra.clone());
            }
        }
        let input = candle_core::Tensor::from_vec(ids.clone(), (1, n), &Device::Cpu).unwrap();
        let opts = ForwardOptions {
            differentiable: false,
            keep_scores: true,
        };
        let want = t.model.forward(&input, &biases, opts).unwrap();
        let got = forward_native(&t.model, &ids, &biases, true, true).unwrap();
        let flat = |x: &candle_core::Tensor| x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let close = |what: &str, a: &candle_core::Tensor, b: &candle_core::Tensor, tol: f32| {
            assert_eq!(a.dims(), b.dims(), "{mode:?} {what}");
            let (a, b) = (flat(a), flat(b));
            for (x, y) in a.iter().zip(&b) {
                let ok = (x - y).abs() <= tol * y.abs().max(1.0) || (x.is_infinite() && x == y);
                assert!(ok, "{mode:?} {what}: native {x}, candle {y}");
            }
        };
        close("logits", &got.logits, &want.logits, 2e-5);
        for l in 0..tiny.num_layers {
            close("attention", &got.attention[l], &want.attention[l], 2e-5);
            close("scores", &got.scores[l], &want.scores[l], 2e-5);
            close("queries", &got.queries[l], &want.queries[l], 2e-5);
        }
    }
}
