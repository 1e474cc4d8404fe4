//! RoPE scaling as transformers computes it: for each kind a LLaMA-family config may name
//! (linear, dynamic, yarn and its options, llama3, longrope, Phi-3's partial rotation), the
//! inverse frequencies and the factor on cos and sin of `scripts/make_rope_fixture.py`'s cases,
//! and the errors of configs whose scaling cannot be read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use localist::hf::hf_llama::HfLlamaConfig;

/// transformers' cases (`tests/fixtures/rope_scaling.json`).
fn cases() -> Vec<serde_json::Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/rope_scaling.json"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["cases"].as_array().unwrap().clone()
}

fn config(v: serde_json::Value) -> HfLlamaConfig {
    serde_json::from_value(v).unwrap()
}

#[test]
fn rope_scaling_matches_transformers() {
    for case in cases() {
        let name = case["name"].as_str().unwrap();
        let c = config(case["config"].clone());
        c.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = c.decoder_config();
        let want: Vec<f64> = serde_json::from_value(case["inv_freq"].clone()).unwrap();
        let got = d.rope_inv_freq(1);
        assert_eq!(got.len(), d.head_dim / 2, "{name}");
        assert_eq!(d.rope_dims, 2 * want.len(), "{name}: turned dimensions");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            let rel = (*g as f64 - w).abs() / w.abs();
            assert!(rel < 2e-6, "{name}: frequency {i}: {g} against {w}");
        }
        assert!(got[want.len()..].iter().all(|&g| g == 0.0), "{name}");
        let attention = case["attention"].as_f64().unwrap();
        assert!(
            (d.rope_scale - attention).abs() < 1e-12,
            "{name}: attention factor {} against {attention}",
            d.rope_scale
        );
    }
}

/// LongRoPE past the original context: every position turned by the long factors, as
/// transformers does for a pass one position past it (`inv_freq_long` of the fixture); within
/// it, by the short ones. The positions are the context; a config without long factors holds
/// texts within the original context only, which is then its context.
#[test]
fn longrope_turns_a_longer_text_by_its_long_factors() {
    let mut seen = 0;
    for case in cases() {
        let Some(long) = case.get("inv_freq_long") else {
            continue;
        };
        let name = case["name"].as_str().unwrap();
        let want: Vec<f64> = serde_json::from_value(long.clone()).unwrap();
        let original = case["original"].as_u64().unwrap() as usize;
        let d = config(case["config"].clone()).decoder_config();
        let short: Vec<f64> = serde_json::from_value(case["inv_freq"].clone()).unwrap();
        for (end, want) in [(original, &short), (original + 1, &want)] {
            let got = d.rope_inv_freq(end);
            for (i, (g, w)) in got.iter().zip(want).enumerate() {
                let rel = (*g as f64 - w).abs() / w.abs();
                assert!(
                    rel < 2e-6,
                    "{name}, to {end}: frequency {i}: {g} against {w}"
                );
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
    let c = config(case_config("su (Phi-3's first name for longrope)"));
    assert_eq!(c.max_position_embeddings, 131_072);
    assert_eq!(c.context(), 131_072);
    let mut v = case_config("su (Phi-3's first name for longrope)");
    v["rope_scaling"]
        .as_object_mut()
        .unwrap()
        .remove("long_factor");
    assert_eq!(config(v.clone()).context(), 4096);
    assert_eq!(config(v).decoder_config().context, 4096);
}

/// The first case's config with `key` set to `value`.
fn with(mut v: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    v[key] = value;
    v
}

/// The config of the case named `name`.
fn case_config(name: &str) -> serde_json::Value {
    cases().into_iter().find(|c| c["name"] == name).unwrap()["config"].clone()
}

fn assert_refused(bad: Vec<(serde_json::Value, &str)>) {
    for (v, fragment) in bad {
        let err = config(v).check().unwrap_err();
        assert!(err.contains(fragment), "{fragment:?} in {err:?}");
    }
}

#[test]
fn rope_scaling_that_cannot_be_read_is_named() {
    let base = case_config("linear");
    let scaled = |v: serde_json::Value| with(base.clone(), "rope_scaling", v);
    assert_refused(vec![
        (
            scaled(serde_json::json!({"type": "ntk-by-parts"})),
            "rope_type \"ntk-by-parts\" is not supported",
        ),
        (
            scaled(serde_json::json!({"type": "linear"})),
            "needs factor",
        ),
        (
            scaled(serde_json::json!({"type": "linear", "factor": -2.0})),
            "needs factor",
        ),
        (
            scaled(serde_json::json!({"rope_type": "yarn"})),
            "needs factor",
        ),
        (
            scaled(serde_json::json!({"rope_type": "yarn", "factor": 4.0,
                                      "original_max_position_embeddings": 0.5})),
            "original_max_position_embeddings 0.5",
        ),
        (
            scaled(serde_json::json!({"rope_type": "yarn", "factor": 4.0, "beta_fast": -5.0})),
            "needs beta_fast",
        ),
        (
            with(base.clone(), "partial_rotary_factor", 0.5.into()),
            "partial_rotary_factor 0.5 is not supported for model_type \"llama\"",
        ),
    ]);
}

#[test]
fn longrope_and_partial_rotation_that_cannot_be_read_are_named() {
    let phi3 = case_config("longrope, Phi-3.5-mini's form");
    let mut negative_fourth = vec![1.0; 16];
    negative_fourth[3] = -1.0;
    assert_refused(vec![
        (
            with(phi3.clone(), "partial_rotary_factor", 0.5.into()),
            "short_factor has 16 values, not 8",
        ),
        (
            with(phi3.clone(), "partial_rotary_factor", 0.1.into()),
            "turns 3 of a head's 32 dimensions",
        ),
        (
            with(phi3.clone(), "partial_rotary_factor", 2.0.into()),
            "partial_rotary_factor 2.0 must be a number above 0 and at most 1",
        ),
        (
            with(
                phi3.clone(),
                "rope_scaling",
                serde_json::json!({"type": "longrope", "short_factor": negative_fourth}),
            ),
            "short_factor holds -1",
        ),
        (
            with(
                phi3.clone(),
                "rope_scaling",
                serde_json::json!({"type": "longrope", "short_factor": vec![1.0; 16],
                                   "long_factor": negative_fourth}),
            ),
            "long_factor holds -1",
        ),
        (
            with(
                phi3.clone(),
                "rope_scaling",
                serde_json::json!({"type": "longrope", "short_factor": vec![1.0; 16],
                                   "long_factor": vec![1.0; 15]}),
            ),
            "long_factor has 15 values, not 16",
        ),
        (
            with(
                phi3.clone(),
                "rope_scaling",
                serde_json::json!({"type": "longrope", "short_factor": vec![1.0; 16],
                                   "long_factor": ([vec![1.0; 15], vec![1e300]].concat())}),
            ),
            "long_factor holds 1e300",
        ),
        (
            with(
                phi3.clone(),
                "rope_scaling",
                serde_json::json!({"type": "longrope", "short_factor":
                                   ([vec![1e-300], vec![1.0; 15]].concat())}),
            ),
            "short_factor holds 1e-300",
        ),
        (
            with(
                phi3,
                "rope_scaling",
                serde_json::json!({"type": "longrope"}),
            ),
            "needs short_factor",
        ),
    ]);
}
