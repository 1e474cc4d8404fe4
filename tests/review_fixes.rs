//! The real `localist` binary on what a hostile-user review found broken: output that must stay
//! machine-readable, files that must not vanish unsaid, and text the tokenizer cannot read.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;

use common::stderr;

mod common;

fn localist(args: &[&str]) -> Output {
    common::localist_in(&common::root(), args)
}

/// A successful run's standard output as one JSON document.
fn json_stdout(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", stderr(o));
    let text = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{text}"))
}

#[test]
fn eval_json_with_anchors_is_one_json_document() {
    let ck = common::sample("tiny-topics-recruited");
    let ck = ck.to_str().unwrap();
    // Without --anchors the shape is unchanged: the array of reports.
    let plain = json_stdout(&localist(&["eval", "-c", ck, "--windows", "2", "--json"]));
    assert!(plain.is_array(), "{plain}");
    // With --anchors: {"eval": that array, "rules": null, "anchors": {...}}.
    let v = json_stdout(&localist(&[
        "eval",
        "-c",
        ck,
        "--windows",
        "2",
        "--json",
        "--anchors",
    ]));
    assert_eq!(v["eval"], plain);
    assert!(v["rules"].is_null(), "{v}");
    assert!(v["anchors"]["coverage_bits"].is_f64(), "{v}");
    let blocks = v["anchors"]["blocks"].as_array().unwrap();
    assert!(!blocks.is_empty());
    assert!(blocks
        .iter()
        .all(|b| b["block"].is_string() && b["anchors"].is_array()));
    let first = &blocks.iter().find_map(|b| b["anchors"].get(0)).unwrap();
    for key in ["token", "pmi_bits", "purity_bits", "count"] {
        assert!(first.get(key).is_some(), "anchor lacks {key}: {first}");
    }
    // A checkpoint without anchor statistics: "anchors" is null; with --rules too.
    let clinical = common::sample("tiny-clinical");
    let rules = common::root().join("assets/rules/clinical_payments.rules");
    let v = json_stdout(&localist(&[
        "eval",
        "-c",
        clinical.to_str().unwrap(),
        "--windows",
        "2",
        "--json",
        "--anchors",
        "--rules",
        rules.to_str().unwrap(),
    ]));
    assert!(v["anchors"].is_null(), "{v}");
    assert!(v["eval"].is_array() && v["rules"].is_array(), "{v}");
}
