//! The BERT family's other encoders against `transformers`: RoBERTa (positions from
//! `pad_token_id + 1`, XLM-RoBERTa's and CamemBERT's architecture), DistilBERT (BERT's block
//! under other names, no token types) and ModernBERT (pre-LayerNorm, RoPE at two bases, local
//! layers, GeGLU), on the tiny random models of
//! `tests/fixtures/families/{roberta,distilbert,modernbert}` made by `scripts/make_family_fixtures.py`
//! (saved under their masked-LM heads; reference.json holds the last hidden states and every
//! layer's attention). The real BERT (all-MiniLM-L6-v2) is `tests/hf_parity.rs`'s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{max_diff, open_imported as open, open_imported_err as open_err};

use std::path::Path;

use candle_core::Device;
use localist::data::tokenizer::Tokenizer;
use localist::hf::ImportedModel;
use localist::model::blocks::BlockMap;
use localist::model::capture::{capture, sequence_biases};
use localist::model::dial::DialSetting;

const ENCODERS: [&str; 3] = ["roberta", "distilbert", "modernbert"];

/// What transformers computed.
struct Reference {
    text: String,
    ids: Vec<u32>,
    /// [T][d]
    hidden: Vec<Vec<f32>>,
    /// [L][H][T][T]
    attention: Vec<Vec<Vec<Vec<f32>>>>,
}

fn reference(name: &str) -> Reference {
    let path = common::family_fixture(name).join("reference.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let field = |k: &str| v[k].clone();
    Reference {
        text: serde_json::from_value(field("text")).unwrap(),
        ids: serde_json::from_value(field("ids")).unwrap(),
        hidden: serde_json::from_value(field("hidden")).unwrap(),
        attention: serde_json::from_value(field("attention")).unwrap(),
    }
}

/// Hidden states and attention of the folder `dir` against fixture `name`'s reference.
fn parity_of(dir: &Path, name: &str) -> (f32, f32) {
    let m = open(dir);
    let r = reference(name);
    assert_eq!(m.tokenizer().encode(&r.text), r.ids, "{name}: token ids");
    let (dh, da) = diff_of(&m, &r, name);
    eprintln!("{name}: hidden max |Δ| {dh:.2e}, attention max |Δ| {da:.2e}");
    assert!(dh < 1e-4, "{name}: hidden states differ by {dh}");
    assert!(da < 1e-5, "{name}: attention differs by {da}");
    (dh, da)
}

/// The largest differences of `m`'s hidden states and attention from `r`'s on its ids.
fn diff_of(m: &ImportedModel, r: &Reference, name: &str) -> (f32, f32) {
    let ImportedModel::Bert(bert) = &m else {
        panic!("{name}: not opened as an encoder");
    };
    let (hidden, out) = bert.forward_with(&r.ids, &[], false).unwrap();
    let hidden = hidden.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(hidden.len(), r.hidden.len());
    let dh = max_diff(hidden.iter().flatten(), r.hidden.iter().flatten());
    assert_eq!(out.attention.len(), r.attention.len(), "{name}: layers");
    let mut da = 0f32;
    for (a, want) in out.attention.iter().zip(&r.attention) {
        let a = a.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        da = da.max(max_diff(
            a.iter().flatten().flatten(),
            want.iter().flatten().flatten(),
        ));
    }
    (dh, da)
}

/// RoBERTa: the text holds a `<pad>` mid-way, whose position is `pad_token_id` itself while
/// the tokens after it count on without it, as transformers counts them.
#[test]
fn roberta_matches_transformers() {
    let dir = common::family_fixture("roberta");
    parity_of(&dir, "roberta");
    let m = open(&dir);
    assert_eq!(
        m.kind_label(),
        "RoBERTa encoder (bidirectional; no next-token head)"
    );
    assert_eq!(m.arch_label(), "roberta");
    // 130 rows, the first two never read by a text: 128 tokens at most.
    assert_eq!(m.model().dims().max_len, 128);
    assert!(
        reference("roberta").ids.contains(&1),
        "the text has a <pad>"
    );
    // Read as a BERT (positions from 0), the same weights give other states: the test is not
    // blind to where the positions begin.
    let copy = common::copy_family_fixture("roberta");
    common::edit_json(&copy.path().join("config.json"), |c| {
        c["model_type"] = "bert".into();
    });
    let (dh, _) = diff_of(&open(copy.path()), &reference("roberta"), "as bert");
    assert!(dh > 1e-2, "positions from 0 change the states: {dh}");
    // XLM-RoBERTa and CamemBERT are the same model.
    for t in ["xlm-roberta", "camembert"] {
        let copy = common::copy_family_fixture("roberta");
        common::edit_json(&copy.path().join("config.json"), |c| {
            c["model_type"] = t.into();
        });
        parity_of(copy.path(), "roberta");
    }
    let copy = common::copy_family_fixture("roberta");
    common::edit_json(&copy.path().join("config.json"), |c| {
        c["max_position_embeddings"] = 2.into();
    });
    let err = open_err(copy.path());
    assert!(
        err.contains("config.json") && err.contains("max_position_embeddings 2"),
        "{err}"
    );
}

/// DistilBERT: BERT's block read from its own names; a missing weight is named as the file
/// names it.
#[test]
fn distilbert_matches_transformers() {
    let dir = common::family_fixture("distilbert");
    parity_of(&dir, "distilbert");
    let m = open(&dir);
    assert_eq!(
        m.kind_label(),
        "DistilBERT encoder (bidirectional; no next-token head)"
    );
    let copy = common::copy_family_fixture("distilbert");
    common::edit_json(&copy.path().join("config.json"), |c| {
        c["n_layers"] = 3.into();
    });
    let err = open_err(copy.path());
    assert!(
        err.contains("transformer.layer.2.attention.q_lin.weight")
            && err.contains("model.safetensors"),
        "{err}"
    );
    let copy = common::copy_family_fixture("distilbert");
    common::edit_json(&copy.path().join("config.json"), |c| {
        c["activation"] = "relu".into();
    });
    let err = open_err(copy.path());
    assert!(err.contains("\"relu\""), "{err}");
    // Its sizes are named by its own keys.
    for (key, value, fragment) in [
        ("dim", 65, "dim 65 is not a multiple of 4 heads (n_heads)"),
        ("n_layers", 0, "n_layers = 0"),
    ] {
        let copy = common::copy_family_fixture("distilbert");
        common::edit_json(&copy.path().join("config.json"), |c| {
            c[key] = value.into();
        });
        let err = open_err(copy.path());
        assert!(err.contains(fragment), "{key}: {err}");
    }
}

/// ModernBERT: local layers attend within |i − j| ≤ 8 of a 68-token text (the window is read:
/// widened, the states move), RoPE at two bases (each read), no norm before the first layer's
/// attention; the older config form (`global_attn_every_n_layers`, `global_rope_theta`,
/// `local_rope_theta`, as ModernBERT-base's own config.json) reads the same.
#[test]
fn modernbert_matches_transformers() {
    let dir = common::family_fixture("modernbert");
    parity_of(&dir, "modernbert");
    let m = open(&dir);
    assert_eq!(
        m.kind_label(),
        "ModernBERT encoder (bidirectional, local layers; no next-token head)"
    );
    assert_eq!(m.arch_label(), "modernbert");
    assert_eq!(m.model().dims().max_len, 128);
    let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let copy = common::copy_family_fixture("modernbert");
        common::edit_json(&copy.path().join("config.json"), |c| edit(c));
        copy
    };
    let old = edited(&|c| {
        let o = c.as_object_mut().unwrap();
        o.remove("layer_types");
        o.remove("rope_parameters");
        o.insert("global_rope_theta".into(), 160_000.0.into());
        o.insert("local_rope_theta".into(), 10_000.0.into());
    });
    parity_of(old.path(), "modernbert");
    type Edit = fn(&mut serde_json::Value);
    let read: [(&str, Edit); 3] = [
        ("the window", |c| c["local_attention"] = 64.into()),
        ("the local base", |c| {
            c["rope_parameters"]["sliding_attention"]["rope_theta"] = 500.0.into()
        }),
        ("the global base", |c| {
            c["rope_parameters"]["full_attention"]["rope_theta"] = 500.0.into()
        }),
    ];
    for (what, edit) in read {
        let copy = edited(&edit);
        let (dh, _) = diff_of(&open(copy.path()), &reference("modernbert"), what);
        assert!(dh > 1e-3, "{what} is read: {dh}");
    }
    let refused: [(Edit, &str); 3] = [
        (
            |c| c["mlp_bias"] = true.into(),
            "mlp_bias = true is not supported",
        ),
        (
            |c| c["layer_types"] = serde_json::json!(["full_attention"]),
            "layer_types names 1 layers, but num_hidden_layers is 4",
        ),
        (
            |c| c["rope_parameters"]["full_attention"]["rope_type"] = "linear".into(),
            "rope_type \"linear\" is not supported for ModernBERT",
        ),
    ];
    for (edit, fragment) in refused {
        let copy = edited(&edit);
        let err = open_err(copy.path());
        assert!(
            err.contains("config.json") && err.contains(fragment),
            "{err}"
        );
    }
}

/// The dial on each encoder: λ = 0 leaves attention as it is, λ = 1 in mode A leaves none off
/// the blocks; the CLI captures each folder.
#[test]
fn the_dial_and_the_cli_act_on_every_encoder() {
    for name in ENCODERS {
        let dir = common::family_fixture(name);
        let m = open(&dir);
        let ids = reference(name).ids;
        let vocab = m.model().dims().vocab;
        let pairs: Vec<(u32, String)> = (0..vocab as u32)
            .map(|id| (id, if id % 2 == 0 { "even" } else { "odd" }.to_string()))
            .collect();
        let blocks = BlockMap::from_assignments(vocab, &pairs, "parity");
        let model = m.model();
        let plain = model.forward_biased(&ids, &[], false).unwrap();
        let zero = sequence_biases(
            model,
            &blocks.masks_with(&ids, false),
            &DialSetting::bias(0.0),
            &Device::Cpu,
        )
        .unwrap();
        let dialled = model.forward_biased(&ids, &zero, false).unwrap();
        for (a, b) in plain.attention.iter().zip(&dialled.attention) {
            let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let d = max_diff(&a, &b);
            assert!(d < 1e-6, "{name}: λ = 0 changed attention by {d}");
        }
        let e0 = capture(model, &blocks, &ids, &DialSetting::bias(0.0))
            .unwrap()
            .mean_off_block_mass(None);
        let e1 = capture(model, &blocks, &ids, &DialSetting::bias(1.0))
            .unwrap()
            .mean_off_block_mass(None);
        eprintln!("{name}: ε {e0:.4} at λ = 0, {e1:.2e} at λ = 1");
        assert!(
            e0 > 0.1 && e1 < 1e-6,
            "{name}: ε {e0} at λ = 0, {e1} at λ = 1"
        );
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("cap.json");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_localist"))
            .args(["capture", "--checkpoint"])
            .arg(&dir)
            .args(["--text", "But soft, what light", "--lambda", "0.5", "--out"])
            .arg(&file)
            .env("CANDLE_NUM_THREADS", "1")
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// An encoder's weights split into shards open as the one file does (XLM-RoBERTa-large and
/// others past the shard size are published so); the model's hash covers every shard.
#[test]
fn sharded_encoders_open_as_one_file() {
    for name in ENCODERS {
        let dir = common::copy_family_fixture(name);
        let whole = localist::hf::model_sha256(dir.path()).unwrap();
        common::st::split_into_shards(dir.path(), 2);
        parity_of(dir.path(), name);
        let sharded = localist::hf::model_sha256(dir.path()).unwrap();
        assert_ne!(whole, sharded, "{name}: the hash follows the files");
    }
}

/// ModernBERT's local layers in the views: the capture names each layer's window (None for
/// the global ones), and a cell is masked exactly where the window puts the key out of the
/// query's reach — there the model's weight is 0 (elsewhere it is above 0) — and the heatmap
/// image greys those cells and no others; the global layers mask nothing.
#[test]
fn modernbert_local_layers_grey_the_keys_outside_their_window() {
    use localist::engine::figures::{head_pixels, Colormap};
    let m = open(&common::family_fixture("modernbert"));
    let tok = m.tokenizer();
    let text = "But soft, what light through yonder window breaks? It is the east, and Juliet \
                is the sun. Arise, fair sun, and kill the envious moon, who is already sick.";
    let ids = tok.encode(text);
    let t = ids.len();
    assert!(t > 20, "{t} tokens: longer than the window");
    let blocks = BlockMap::single(m.model().dims().vocab);
    let cap = capture(m.model(), &blocks, &ids, &DialSetting::default()).unwrap();
    assert_eq!(cap.windows, vec![None, Some(8), Some(8), None]);
    for hc in &cap.heads {
        let (w, h, rgb) = head_pixels(&cap, hc, Colormap::Viridis, false);
        assert_eq!((w, h), (t, t));
        let mut masked = 0;
        for i in 0..t {
            for j in 0..t {
                let hidden = cap.masked(hc.layer, i, j);
                let weight = hc.attention[i * t + j];
                let grey = rgb[3 * (i * t + j)..3 * (i * t + j) + 3] == [40, 40, 40];
                assert_eq!(hidden, grey, "layer {} ({i}, {j})", hc.layer);
                match cap.window(hc.layer) {
                    Some(win) => assert_eq!(hidden, i.abs_diff(j) > win),
                    None => assert!(!hidden),
                }
                if hidden {
                    assert_eq!(weight, 0.0, "layer {} ({i}, {j})", hc.layer);
                    masked += 1;
                } else {
                    assert!(weight > 0.0, "layer {} ({i}, {j})", hc.layer);
                }
            }
        }
        assert_eq!(masked > 0, cap.window(hc.layer).is_some());
    }
}
