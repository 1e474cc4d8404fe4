//! The theory curve on a real sample model: no row breaks a derived bound, and the closed-form
//! mode-A curve matches the measured layer-0 off-block mass at every λ.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use candle_core::Device;
use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
use localist::data::tokenizer::TokenizerSpec;
use localist::engine::theory::theory_curve;
use localist::model::checkpoint::load_checkpoint;
use localist::model::dial::DialSetting;

#[test]
fn measured_rows_respect_the_bounds_and_mode_a_follows_its_closed_form() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_models/tiny-shakespeare-l0");
    let ck = load_checkpoint(&dir, &Device::Cpu).unwrap();
    let tok = serde_json::from_value::<TokenizerSpec>(ck.meta.tokenizer.clone())
        .unwrap()
        .build()
        .unwrap();
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
