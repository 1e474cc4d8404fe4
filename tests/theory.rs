//! The theory curve on a real sample model: no row breaks a derived bound, and the closed-form
//! mode-A curve matches the measured layer-0 off-block mass at every λ.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use candle_core::Device;
use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
use localist::engine::theory::theory_curve;
use localist::model::dial::DialSetting;

#[test]
fn measured_rows_respect_the_bounds_and_mode_a_follows_its_closed_form() {
    let dir = common::sample("tiny-shakespeare-l0");
    let (ck, tok) = common::load(&dir);
    let ids = tok.encode("Now is the winter of our discontent made glorious summer");
    let lambdas: Vec<f64> = (0..=10).map(|k| k as f64 / 10.0).collect();
    for mode in [
        DialMode::Bias,
        DialMode::Positional,
        DialMode::Temperature,
        DialMode::Mixture,
    ] {
        let dial = DialSetting {
            params: DialParams {
                mode,
                ..DialParams::default()
            },
            schedule: LayerSchedule::Uniform,
        };
        let curve = theory_curve(&ck.model, &ck.blocks, &ids, &dial, &lambdas).unwrap();
        assert_eq!(curve.len(), lambdas.len());
        for p in &curve {
            assert_eq!(
                p.violations, 0,
                "{mode:?} λ={}: {:?}",
                p.lambda, p.first_violation
            );
            if let (Some(b), true) = (p.eps_bound, mode != DialMode::Mixture) {
                assert!(
                    p.eps <= b + 1e-4,
                    "{mode:?}: mean ε {} above mean bound {b}",
                    p.eps
                );
            }
        }
        if mode == DialMode::Bias {
            for p in &curve {
                let cf = p.eps_layer0_closed_form.unwrap();
                assert!(
                    (cf - p.eps_layer0).abs() < 1e-5,
                    "λ={}: {cf} vs {}",
                    p.lambda,
                    p.eps_layer0
                );
            }
            assert!(curve
                .windows(2)
                .all(|w| w[1].eps_layer0 <= w[0].eps_layer0 + 1e-7));
            assert!(
                curve.last().unwrap().eps < 1e-6,
                "λ = 1 leaves ε {}",
                curve.last().unwrap().eps
            );
        } else {
            assert!(curve.iter().all(|p| p.eps_layer0_closed_form.is_none()));
        }
    }
}

/// The λ* estimate rests on ∂L/∂z read through a zero bias probe: check it against central
/// finite differences of the summed loss when one block of one row gets a common logit shift
/// (which scales that block's mass and keeps its shape), then check the estimate's arithmetic.
#[test]
fn the_threshold_estimate_rests_on_correct_score_gradients() {
    use candle_core::Tensor;
    use localist::analysis::penalty::BlockWeighting;
    use localist::engine::threshold::{estimate_threshold, score_gradients, summed_loss};

    let dir = common::sample("tiny-shakespeare-l1");
    let (ck, tok) = common::load(&dir);
    let ids = tok.encode("Now is the winter of our discontent");
    let t = ids.len();
    let (layers, heads) = (ck.model.config.num_layers, ck.model.config.num_heads);
    let grads = score_gradients(&ck.model, &ids).unwrap();
    let masks = ck.blocks.masks(&ids);
    let loss_with = |l: usize, h: usize, i: usize, block: usize, delta: f32| -> f64 {
        let extra: Vec<Tensor> = (0..layers)
            .map(|ll| {
                let mut v = vec![0f32; heads * t * t];
                if ll == l {
                    for j in 0..=i {
                        if masks.key_blocks[j] == block {
                            v[h * t * t + i * t + j] = delta;
                        }
                    }
                }
                Tensor::from_vec(v, (1, heads, t, t), &Device::Cpu).unwrap()
            })
            .collect();
        let (loss, _) = summed_loss(&ck.model, &ids, &extra).unwrap();
        loss.to_scalar::<f32>().unwrap() as f64
    };
    let mut checked = 0;
    for (l, h, i) in [(0, 1, 20), (1, 2, 30), (1, 0, t - 1)] {
        for block in 0..masks.num_blocks {
            let members: Vec<usize> = (0..=i).filter(|&j| masks.key_blocks[j] == block).collect();
            if members.is_empty() {
                continue;
            }
            let analytic: f64 = members.iter().map(|&j| grads[l].0[h][i][j] as f64).sum();
            let d = 1e-2f32;
            let numeric =
                (loss_with(l, h, i, block, d) - loss_with(l, h, i, block, -d)) / (2.0 * d as f64);
            assert!(
                (analytic - numeric).abs() < 2e-3 + 2e-2 * analytic.abs(),
                "layer {l} head {h} row {i} block {block}: {analytic} vs {numeric}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4);
    // The attention returned is a distribution per row.
    let row: f32 = grads[0].1[0][10].iter().sum();
    assert!((row - 1.0).abs() < 1e-5);

    let est = estimate_threshold(&ck.model, &ck.blocks, &ids, 1.0, BlockWeighting::Unit).unwrap();
    assert_eq!(est.rows, layers * heads * t);
    assert!(est.grad_bound.is_finite() && est.grad_bound > 0.0);
    assert!(est.lambda_star >= est.lambda_star_q95 && est.lambda_star_q95 >= 0.0);
    // λ* ≥ G·√1 and ≤ G·√T (unit weights, n_k between 1 and T).
    assert!(est.lambda_star <= est.grad_bound * (t as f64).sqrt() + 1e-9);
    // η scales λ* inversely.
    let half = estimate_threshold(&ck.model, &ck.blocks, &ids, 2.0, BlockWeighting::Unit).unwrap();
    assert!((half.lambda_star * 2.0 - est.lambda_star).abs() < 1e-6 * est.lambda_star.max(1.0));
    // With w_k = √n_k the size factor cancels: λ* = G.
    let sq =
        estimate_threshold(&ck.model, &ck.blocks, &ids, 1.0, BlockWeighting::SqrtSize).unwrap();
    assert!((sq.lambda_star - sq.grad_bound).abs() < 1e-9 * sq.grad_bound.max(1.0));

    // A model whose attention overflows has no threshold: it was read as λ* = 0 ("any penalty
    // gives full locality"), since `f64::max` skips NaN.
    let bad = common::root().join("tests/hostile/nan-attention-capture/model");
    let (ck, tok) = common::load(&bad);
    let ids = tok.encode("To be or not to be, that is the question.");
    let err = estimate_threshold(&ck.model, &ck.blocks, &ids, 1.0, BlockWeighting::Unit)
        .map(|e| e.lambda_star)
        .unwrap_err()
        .to_string();
    assert!(err.contains("layer 1, head 1 is not finite"), "{err}");
}
