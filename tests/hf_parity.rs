//! Parity of our forward passes on real pretrained weights with the reference implementation
//! (transformers, f32), on the models `scripts/fetch_models.sh` unpacks into `models/`.
//! `.ci/run` fetches them and sets LOCALIST_REQUIRE_MODELS=1, so in CI a missing model fails;
//! elsewhere the tests say they were skipped.
#![allow(clippy::too_many_lines)]

mod common;
use common::model_file;

use std::path::PathBuf;

use candle_core::Device;
use localist::hf::bert::Bert;
use localist::hf::eval::eval_imported;
use localist::model::blocks::BlockMap;
use localist::model::capture::{capture, sequence_biases};
use localist::model::dial::DialSetting;

/// MiniLM from its folder, or None (said) when it is missing outside CI.
fn minilm() -> Option<Bert> {
    let dir = model_file("all-MiniLM-L6-v2", "model.safetensors")?
        .parent()
        .map(PathBuf::from)?;
    Some(Bert::open(&dir, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}")))
}

#[test]
fn minilm_matches_the_reference_embedding() {
    let Some(bert) = minilm() else { return };
    let ids = bert
        .encode("Attention is all you need.")
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(ids, vec![101, 3086, 2003, 2035, 2017, 2342, 1012, 102]);
    let (mean, norm) = bert
        .mean_pooled(&ids, &[])
        .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("norm {norm}, first {:?}", &mean[..6]);
    assert!((norm - 4.30452).abs() < 1e-4, "norm {norm}");
    let want = [
        0.071078, -0.014153, -0.013098, -0.038780, 0.047926, 0.067854,
    ];
    for (k, (&m, &w)) in mean.iter().zip(&want).enumerate() {
        let got = m / norm;
        assert!((got - w).abs() < 1e-4, "component {k}: {got} against {w}");
    }
}

#[test]
fn an_unsupported_folder_gets_a_clear_error() {
    // A RoBERTa folder whose weights are a pytorch_model.bin that is not one.
    let dir = common::copy_family_fixture("roberta");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not unpickled")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = match Bert::open(dir.path(), &Device::Cpu) {
        Ok(_) => panic!("opened a folder whose pytorch_model.bin is not a checkpoint"),
        Err(e) => format!("{e:#}"),
    };
    // Read weights-only, and this one is not a zip archive written by torch.save.
    assert!(err.contains("pytorch_model.bin"), "{err}");
    assert!(err.contains("not a PyTorch checkpoint"), "{err}");
}

#[test]
fn smollm2_predicts_paris() {
    let Some(dir) = model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m = localist::hf::gguf_llama::GgufLlama::open(&dir, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ids = m
        .encode("The capital of France is")
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(ids, vec![504, 3575, 282, 4649, 314]);
    let logits = m.next_logits(&ids).unwrap_or_else(|e| panic!("{e:#}"));
    let top = localist::hf::gguf_llama::top_k(&logits, 5);
    eprintln!(
        "top-5 {:?} logits {:?}",
        top,
        top.iter().map(|&i| logits[i]).collect::<Vec<_>>()
    );
    assert_eq!(top[0], 7042, "top-1 is {:?}", m.decode(&[top[0] as u32]));
    assert!((logits[7042] - 17.37).abs() < 0.5, "logit {}", logits[7042]);
    let mut got: Vec<usize> = top.clone();
    got.sort_unstable();
    let mut want = vec![7042, 260, 4528, 2250, 1315];
    want.sort_unstable();
    assert_eq!(got, want);
}

fn smollm2() -> Option<localist::hf::gguf_llama::GgufLlama> {
    let path = model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")?;
    Some(
        localist::hf::gguf_llama::GgufLlama::open(&path, &Device::Cpu)
            .unwrap_or_else(|e| panic!("{e:#}")),
    )
}

/// Two blocks by token-id parity: the plumbing, not the semantics, is under test.
fn parity_blocks(vocab: usize) -> BlockMap {
    let pairs: Vec<(u32, String)> = (0..vocab as u32)
        .map(|id| (id, if id % 2 == 0 { "even" } else { "odd" }.to_string()))
        .collect();
    BlockMap::from_assignments(vocab, &pairs, "parity")
}

fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap_or_else(|e| panic!("{e}"))
}

const HAMLET: &str = "To be, or not to be, that is the question: whether 'tis nobler in the mind";

#[test]
fn the_dial_acts_on_smollm2_without_retraining() {
    let Some(m) = smollm2() else { return };
    let blocks = parity_blocks(m.config.vocab);
    let ids = m.encode(HAMLET).unwrap_or_else(|e| panic!("{e:#}"));
    let t = ids.len() - 1;
    // λ = 0 reproduces the undialled logits.
    let plain = m
        .forward_with(&ids, &[], false)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let zero = sequence_biases(
        &m,
        &blocks.masks(&ids),
        &DialSetting::bias(0.0),
        &Device::Cpu,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dialled = m
        .forward_with(&ids, &zero, false)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let diff = max_abs_diff(&plain.logits, &dialled.logits);
    assert!(diff < 1e-5, "λ = 0 changed the logits by {diff}");
    // λ = 1 leaves no attention off the relevant blocks and no NaN; λ = 0.5 lies between.
    let rows = eval_imported(
        &m,
        &blocks,
        &ids,
        &[
            DialSetting::bias(0.0),
            DialSetting::bias(0.5),
            DialSetting::bias(1.0),
        ],
        t,
        1,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r.perplexity.is_some_and(f64::is_finite)));
    assert!(rows[2].epsilon < 1e-6, "ε at λ = 1: {}", rows[2].epsilon);
    assert!(rows[0].epsilon > rows[1].epsilon && rows[1].epsilon > rows[2].epsilon);
}

/// Modes B (mixture), C (positional) and D (temperature) and a per-layer schedule act on the
/// imported decoder through the same capture as on our model.
#[test]
fn every_dial_mode_and_schedule_acts_on_smollm2() {
    use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
    let Some(m) = smollm2() else { return };
    let blocks = parity_blocks(m.config.vocab);
    let ids = m.encode(HAMLET).unwrap_or_else(|e| panic!("{e:#}"));
    let setting = |mode: DialMode, lambda: f64, schedule: LayerSchedule| DialSetting {
        params: DialParams {
            mode,
            lambda,
            ..DialParams::default()
        },
        schedule,
    };
    let cap = |d: &DialSetting| capture(&m, &blocks, &ids, d).unwrap_or_else(|e| panic!("{e}"));
    let base = cap(&DialSetting::bias(0.0));
    let (e0, h0) = (base.mean_off_block_mass(None), base.mean_entropy_bits(None));
    // B at λ = 1 is the local-only softmax: ε = 0.
    let b = cap(&setting(DialMode::Mixture, 1.0, LayerSchedule::Uniform));
    assert!(
        b.mean_off_block_mass(None) < 1e-6,
        "mode B ε {}",
        b.mean_off_block_mass(None)
    );
    // C pulls attention towards the diagonal: lower entropy.
    let c = cap(&setting(DialMode::Positional, 1.0, LayerSchedule::Uniform));
    assert!(
        c.mean_entropy_bits(None) < h0,
        "mode C entropy {} ≥ {h0}",
        c.mean_entropy_bits(None)
    );
    // D sharpens (τ < 1) on top of the bias: lower ε and entropy than λ = 0.
    let d = cap(&setting(DialMode::Temperature, 0.8, LayerSchedule::Uniform));
    assert!(d.mean_off_block_mass(None) < e0 && d.mean_entropy_bits(None) < h0);
    // A power schedule leaves layer 0 untouched (λ₀ = 0) and dials the last layer fully.
    let p = cap(&setting(
        DialMode::Bias,
        1.0,
        LayerSchedule::Power { gamma: 1.0 },
    ));
    let last = m.config.layers - 1;
    assert!((p.mean_off_block_mass(Some(0)) - base.mean_off_block_mass(Some(0))).abs() < 1e-6);
    assert!(p.mean_off_block_mass(Some(last)) < 1e-6);
    for x in [&b, &c, &d, &p] {
        assert!(x
            .heads
            .iter()
            .all(|h| h.attention.iter().all(|a| a.is_finite())));
    }
}

/// A rule written against the model's own vocabulary takes effect at run time: " is" attends
/// to " France" with the mass its fidelity asks for.
#[test]
fn a_rule_points_smollm2_at_its_target() {
    use localist::data::tokenizer::Tokenizer;
    let Some(path) = model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m =
        localist::hf::ImportedModel::open(&path, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"));
    let tok = m.tokenizer();
    assert_eq!(tok.token_str(7042), " Paris");
    assert_eq!(tok.token_id(" Paris"), Some(7042));
    let ids = tok.encode("The capital of France is");
    let blocks = parity_blocks(tok.vocab_size());
    let text = r#"rule is_to_france "the verb attends to the country"
  when query.token = " is"
  target token " France"
  layers all
  heads all
  fidelity 0.9
end
"#;
    let set = localist::rules::parse::parse_rules(text).unwrap_or_else(|e| panic!("{e:?}"));
    let rules = localist::rules::check::resolve(&set, &blocks, &tok, &[])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let rc = localist::rules::inject::capture_with_rules(
        m.model(),
        &blocks,
        &ids,
        &DialSetting::bias(0.0),
        &rules,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let rep = &rc.reports[0];
    eprintln!("fired {:?} PF_mass {:?}", rep.fired, rep.pf_mass);
    assert_eq!(rep.fired, vec![4]);
    assert!(
        rep.pf_mass.is_some_and(|p| p >= 0.9 - 1e-3),
        "{:?}",
        rep.pf_mass
    );
    // Without the rule " France" gets far less from " is".
    let plain = capture(m.model(), &blocks, &ids, &DialSetting::bias(0.0))
        .unwrap_or_else(|e| panic!("{e}"));
    let before: f64 = plain
        .heads
        .iter()
        .map(|h| f64::from(h.attention[4 * 5 + 3]))
        .sum::<f64>()
        / plain.heads.len() as f64;
    assert!(before < 0.5, "already {before}");
}

/// The dial on the bidirectional encoder: λ = 0 gives the plain embedding, λ = 1 leaves no
/// attention off the relevant blocks in either direction.
#[test]
fn the_dial_acts_on_minilm_in_both_directions() {
    let Some(bert) = minilm() else { return };
    let ids = bert
        .encode("Attention is all you need.")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let blocks = parity_blocks(bert.config.vocab_size);
    let masks = blocks.masks_with(&ids, false);
    assert!(masks.visible(0, 7), "an encoder sees later keys");
    let zero = sequence_biases(&bert, &masks, &DialSetting::bias(0.0), &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e}"));
    let (plain, _) = bert
        .mean_pooled(&ids, &[])
        .unwrap_or_else(|e| panic!("{e:#}"));
    let (dialled, _) = bert
        .mean_pooled(&ids, &zero)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let diff = plain
        .iter()
        .zip(&dialled)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-6, "λ = 0 moved the embedding by {diff}");
    let cap =
        capture(&bert, &blocks, &ids, &DialSetting::bias(1.0)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!cap.causal);
    assert!(cap.mean_off_block_mass(None) < 1e-6);
    // Row 0 ([CLS]) still attends to keys after it: the encoder is not made causal.
    let later: f32 = cap.heads[0].attention[1..8].iter().sum();
    assert!(later > 0.01, "row 0 lost its later keys: {later}");
    let base =
        capture(&bert, &blocks, &ids, &DialSetting::bias(0.0)).unwrap_or_else(|e| panic!("{e}"));
    assert!(base.mean_off_block_mass(None) > 0.1);
    let rows = localist::hf::eval::eval_imported(
        &bert,
        &blocks,
        &ids,
        &[DialSetting::bias(0.0), DialSetting::bias(1.0)],
        4,
        1,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(rows.iter().all(|r| r.perplexity.is_none()));
}

#[test]
fn imported_model_errors_name_the_file_and_what_is_supported() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bin = dir.path().join("model.bin");
    std::fs::write(&bin, b"not unpickled").unwrap_or_else(|e| panic!("{e}"));
    let open = |p: &std::path::Path| match localist::hf::ImportedModel::open(p, &Device::Cpu) {
        Ok(_) => panic!("opened {}", p.display()),
        Err(e) => format!("{e:#}"),
    };
    let err = open(&bin);
    assert!(
        err.contains("model.bin") && err.contains("on its own is not opened"),
        "{err}"
    );
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, b"hello").unwrap_or_else(|e| panic!("{e}"));
    let err = open(&txt);
    assert!(err.contains("notes.txt") && err.contains(".gguf"), "{err}");
    let err = open(dir.path());
    assert!(err.contains("no config.json"), "{err}");
    let bad = dir.path().join("broken.gguf");
    std::fs::write(&bad, b"GGUF but truncated").unwrap_or_else(|e| panic!("{e}"));
    let err = open(&bad);
    assert!(err.contains("broken.gguf"), "{err}");
}

/// A copy of a sample checkpoint in `dir`, named `name`.
fn sample_copy(dir: &std::path::Path, name: &str) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sample_models/tiny-shakespeare-l0");
    let dst = dir.join(name);
    std::fs::create_dir_all(&dst).unwrap_or_else(|e| panic!("{e}"));
    for f in ["config.json", "blocks.json", "model.safetensors"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap_or_else(|e| panic!("{e}"));
    }
    dst
}

/// The error of detecting what `path` holds (it must fail).
fn detect_err(path: &std::path::Path) -> String {
    match localist::hf::detect(path) {
        Ok(kind) => panic!("{} detected as {kind:?}", path.display()),
        Err(e) => e.to_string(),
    }
}

/// A checkpoint is told by its own files, and one without `blocks.json` is reported as such,
/// never as "not a BERT config".
#[test]
fn a_checkpoint_without_blocks_json_is_named_as_such() {
    use localist::hf::{detect, ImportedModel, ModelKind};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let ck = sample_copy(dir.path(), "ck");
    assert_eq!(detect(&ck).ok(), Some(ModelKind::Checkpoint));
    assert!(!ImportedModel::looks_imported(&ck));
    std::fs::remove_file(ck.join("blocks.json")).unwrap_or_else(|e| panic!("{e}"));
    let err = detect_err(&ck);
    assert!(
        err.contains("blocks.json") && err.contains("checkpoint"),
        "{err}"
    );
    let err = match ImportedModel::open(&ck, &Device::Cpu) {
        Ok(_) => panic!("opened a checkpoint without blocks.json"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("blocks.json"), "{err}");
    assert!(!err.contains("BERT"), "{err}");
}

/// A `config.json` with neither `model_type`/`architectures` nor a checkpoint's fields is
/// refused with an error that names the file and what it lacks.
#[test]
fn a_config_of_no_known_kind_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cfg = dir.path().join("config.json");
    std::fs::write(&cfg, r#"{"hidden_size": 8}"#).unwrap_or_else(|e| panic!("{e}"));
    let err = detect_err(dir.path());
    assert!(err.contains("config.json"), "{err}");
    assert!(
        err.contains("model_type") && err.contains("architectures"),
        "{err}"
    );
}

/// GGUF files are told by their magic bytes, not their names.
#[test]
fn gguf_is_told_by_its_magic_not_its_name() {
    use localist::hf::{detect, ModelKind};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fake = dir.path().join("fake.gguf");
    std::fs::write(&fake, b"PK\x03\x04 a zip, not gguf").unwrap_or_else(|e| panic!("{e}"));
    let err = detect_err(&fake);
    assert!(err.contains("fake.gguf") && err.contains("magic"), "{err}");
    let short = dir.path().join("short.gguf");
    std::fs::write(&short, b"GG").unwrap_or_else(|e| panic!("{e}"));
    assert!(detect_err(&short).contains("magic"));
    let renamed = dir.path().join("weights.model");
    std::fs::write(&renamed, b"GGUF\x03\x00\x00\x00 rest").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(detect(&renamed).ok(), Some(ModelKind::Gguf));
    // A folder holding one GGUF file is that file.
    let one = dir.path().join("one");
    std::fs::create_dir_all(&one).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(one.join("m.gguf"), b"GGUF....").unwrap_or_else(|e| panic!("{e}"));
    let found = localist::hf::locate(&one).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(found.kind, ModelKind::Gguf);
    assert_eq!(found.path, one.join("m.gguf"));
}

/// A Hugging Face folder is told by its config's `model_type` or `architectures`.
#[test]
fn a_hugging_face_folder_is_told_by_its_config() {
    use localist::hf::{detect, ModelKind};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("config.json"),
        r#"{"architectures": ["BertModel"]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(detect(dir.path()).ok(), Some(ModelKind::HuggingFace));
    assert!(localist::hf::ImportedModel::looks_imported(dir.path()));
    if let Some(w) = model_file("all-MiniLM-L6-v2", "model.safetensors") {
        let folder = w.parent().map(PathBuf::from).unwrap_or_default();
        assert_eq!(detect(&folder).ok(), Some(ModelKind::HuggingFace));
        assert_eq!(detect(&w).ok(), Some(ModelKind::HuggingFace));
    }
}

/// Generation with the KV cache computes what a full forward computes, under the dial (modes A
/// and B), one position per step.
#[test]
fn the_kv_cache_gives_the_full_forwards_distribution() {
    use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
    use localist::engine::generate::next_distribution;
    use localist::model::backend::KvCache;
    let Some(m) = smollm2() else { return };
    let blocks = parity_blocks(m.config.vocab);
    let mixture = DialSetting {
        params: DialParams {
            mode: DialMode::Mixture,
            lambda: 0.5,
            ..DialParams::default()
        },
        schedule: LayerSchedule::Power { gamma: 1.0 },
    };
    for dial in [DialSetting::bias(0.0), DialSetting::bias(0.7), mixture] {
        let mut ids = m
            .encode("The capital of France is")
            .unwrap_or_else(|e| panic!("{e:#}"));
        let mut cache = KvCache::default();
        for step in 0..3 {
            let cached = next_distribution(&m, &blocks, &ids, &dial, &[], Some(&mut cache))
                .unwrap_or_else(|e| panic!("{e:#}"));
            assert_eq!(cache.len(), ids.len());
            let full = next_distribution(&m, &blocks, &ids, &dial, &[], None)
                .unwrap_or_else(|e| panic!("{e:#}"));
            let diff = cached
                .iter()
                .zip(&full)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                diff < 1e-5,
                "step {step} at {dial:?}: probabilities differ by {diff}"
            );
            let best = localist::hf::gguf_llama::top_k(&full, 1)[0] as u32;
            ids.push(best);
        }
    }
}

// ---- Hostile GGUF files and Hugging Face folders (issue 13): the crafted cases under
// tests/hostile/ (scripts/make_hostile_gguf.py) opened through the library, and good models
// still opened.

/// `tests/hostile/CASE/FILE`.
fn hostile(case: &str, file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(case)
        .join(file)
}

/// The error of opening `path` as an imported model (a panic if it opens).
fn import_err(path: &std::path::Path) -> String {
    match localist::hf::ImportedModel::open(path, &Device::Cpu) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// `msg` names `file` exactly once and contains every fragment of `want`.
fn names_once(msg: &str, file: &str, want: &[&str]) {
    assert_eq!(msg.matches(file).count(), 1, "{file} not named once: {msg}");
    for w in want {
        assert!(msg.contains(w), "{w:?} missing from: {msg}");
    }
}

#[test]
fn hostile_gguf_headers_are_refused_before_candle_reads_them() {
    use localist::hf::gguf_llama::header::read_header;
    for (case, want) in [
        (
            "gguf-alignment-zero",
            "general.alignment = 0 must be a power of two",
        ),
        (
            "gguf-dims-overflow-square",
            "[4294967296, 4294967296]: the element count overflows",
        ),
        (
            "gguf-dims-overflow-long",
            "[8, 2305843009213693965]: the element count overflows",
        ),
        ("gguf-five-dims", "tensor output_norm.weight has 5 dims"),
        ("gguf-truncated", "(truncated or damaged)"),
        (
            "gguf-string-past-end",
            "metadata general.architecture needs 1099511627776 bytes",
        ),
        ("gguf-count-past-end", "declares 1099511627776 tensors"),
        ("gguf-data-past-end", "tensor blk.0.ffn_up.weight: its data"),
    ] {
        let path = hostile(case, "model.gguf");
        let msg = match read_header(&path) {
            Ok(_) => panic!("{case} passed the header check"),
            Err(e) => e.to_string(),
        };
        names_once(&msg, "model.gguf", &[want]);
        names_once(&import_err(&path), "model.gguf", &[want]);
    }
}

#[test]
fn hostile_gguf_metadata_and_weights_are_refused_with_the_key_or_tensor_named() {
    for (case, want) in [
        (
            "gguf-head-count-zero",
            "llama.attention.head_count = 0 is outside 1..=1024",
        ),
        (
            "gguf-block-count-max",
            "llama.block_count = 4294967295 is outside 1..=256",
        ),
        (
            "gguf-heads-not-dividing",
            "llama.embedding_length = 32 is not a multiple of llama.attention.head_count = 3",
        ),
        (
            "gguf-shape-mismatch",
            "tensor blk.0.attn_k.weight has shape [32, 32], the metadata needs [16, 32]",
        ),
        (
            "gguf-nan-weight",
            "tensor blk.0.attn_q.weight holds NaN or infinite weights",
        ),
        (
            "gguf-inf-after-dequant",
            "tensor blk.0.ffn_gate.weight holds NaN or infinite weights",
        ),
    ] {
        let path = hostile(case, "model.gguf");
        // The header itself is sound: the problem is found after it.
        assert!(
            localist::hf::gguf_llama::header::read_header(&path).is_ok(),
            "{case}"
        );
        names_once(&import_err(&path), "model.gguf", &[want]);
    }
}

#[test]
fn hostile_hugging_face_folders_are_refused_with_the_file_named() {
    for (case, file, want) in [
        (
            "hf-layers-1e9",
            "config.json",
            "num_hidden_layers = 1000000000 is outside 1..=256",
        ),
        (
            "hf-vocab-huge",
            "config.json",
            "vocab_size = 1000000000000 is outside",
        ),
        (
            "hf-heads-not-dividing",
            "config.json",
            "hidden_size 8 is not a multiple of 3 heads",
        ),
        ("hf-tokenizer-not-json", "tokenizer.json", "not a tokenizer"),
        (
            "hf-tokenizer-more-words",
            "tokenizer.json",
            "9 words but config.json's vocab_size is 8",
        ),
        (
            "hf-config-directory",
            "config.json",
            "not a regular file (a folder)",
        ),
        (
            "hf-nan-weight",
            "model.safetensors",
            "tensor encoder.layer.0.attention.self.query.weight holds NaN",
        ),
        (
            "hf-weights-i32",
            "model.safetensors",
            "tensor encoder.layer.0.output.dense.weight has dtype I32",
        ),
        (
            "hf-shape-mismatch",
            "model.safetensors",
            "has shape [4, 16], the config needs [8, 8]",
        ),
        (
            "hf-safetensors-header-huge",
            "model.safetensors",
            "the header length 1152921504606846976",
        ),
        (
            "hf-tensor-missing",
            "model.safetensors",
            "tensor encoder.layer.0.output.LayerNorm.bias is missing",
        ),
    ] {
        let msg = import_err(&hostile(case, ""));
        names_once(&msg, file, &[want]);
    }
}

#[test]
fn a_tiny_sound_bert_opens_and_refuses_absurd_cluster_counts() {
    use localist::hf::ImportedModel;
    let dir = hostile("hf-clusters-million", "");
    let m = ImportedModel::open(&dir, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"));
    let tok = m.tokenizer();
    let blocks = m
        .kmeans_blocks(&tok, 2, 0)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(blocks.token_block.len(), 8);
    for (k, want) in [
        (1_000_000, "1000000 clusters are more than the 256 allowed"),
        (9, "9 clusters are more than the model's 8 words"),
        (0, "at least 1"),
    ] {
        let msg = match m.kmeans_blocks(&tok, k, 0) {
            Ok(_) => panic!("{k} clusters accepted"),
            Err(e) => format!("{e:#}"),
        };
        assert!(msg.contains(want), "{msg}");
    }
}

#[test]
fn the_real_models_pass_the_new_checks() {
    if let Some(path) = model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") {
        let h =
            localist::hf::gguf_llama::header::read_header(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((h.version, h.alignment), (3, 32));
        assert_eq!(
            h.tensors.len(),
            2 + 9 * 30,
            "token_embd, output_norm and 30 layers of 9"
        );
    }
    if let Some(path) = model_file("all-MiniLM-L6-v2", "model.safetensors") {
        let tensors =
            localist::hf::safetensors_header::read_header(&path).unwrap_or_else(|e| panic!("{e}"));
        let word = tensors
            .get("embeddings.word_embeddings.weight")
            .map(|t| t.shape.clone());
        assert_eq!(word, Some(vec![30522, 384]));
    }
}

#[test]
fn an_attention_only_capture_has_the_same_attention_and_skips_the_head() {
    use localist::model::capture::capture_attention;
    let path = common::root().join("tests/fuzz/seeds/base/model.gguf");
    let m =
        localist::hf::ImportedModel::open(&path, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"));
    let tok = m.tokenizer();
    let blocks = m
        .kmeans_blocks(&tok, 3, 0)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let ids = [0u32, 6, 7, 1, 2, 6, 3];
    for lambda in [0.0, 0.6] {
        let dial = DialSetting::bias(lambda);
        let full = capture(m.model(), &blocks, &ids, &dial).unwrap_or_else(|e| panic!("{e}"));
        let views =
            capture_attention(m.model(), &blocks, &ids, &dial).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(full.logits.len(), ids.len() * 9);
        assert!(views.logits.is_empty());
        assert_eq!(full.heads.len(), views.heads.len());
        for (a, b) in full.heads.iter().zip(&views.heads) {
            assert_eq!(a.attention, b.attention);
            assert_eq!(a.entropy_bits, b.entropy_bits);
            assert_eq!(a.margin, b.margin);
        }
    }
}
