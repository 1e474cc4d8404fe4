//! A pool of specialists on a pretrained decoder (issue 17, SPEC §10): its specialists are
//! adapters on the base, each charged for its adapter's parameters; the saved pool's adapters
//! reopen as models that code their documents in the bits the manifest says.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::path::Path;

use localist::data::synthetic::{SyntheticCorpus, SyntheticSpec};
use localist::data::tokenizer::Tokenizer;
use localist::engine::codelength::code_length_bits;
use localist::engine::jobs::finetune::{setup, FinetuneJob};
use localist::engine::jobs::specialists::{AdaptedJob, PoolJob, PoolRun};
use localist::engine::jobs::PoolConfig;
use localist::engine::specialists::{read_manifest, Pool};
use localist::engine::views::read_pool;
use localist::hf::ImportedModel;
use localist::model::dial::DialSetting;

/// Two domains as one file of blank-line separated documents: `n` passages of Shakespeare and
/// `n` groups of clinical notes; returns the path and, per document, whether it is clinical.
fn two_domains(dir: &Path, n: usize) -> (std::path::PathBuf, Vec<bool>) {
    let play =
        std::fs::read_to_string(common::root().join("assets/corpora/shakespeare_1mb.txt")).unwrap();
    let notes = SyntheticCorpus::generate(&SyntheticSpec {
        seed: 5,
        num_records: 8 * n,
        clinical_fraction: 1.0,
    })
    .text;
    let lines: Vec<&str> = notes.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut docs = Vec::new();
    let mut clinical = Vec::new();
    for k in 0..n {
        let start = 20_000 + k * 700;
        let passage: String = play[start..start + 600]
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        docs.push(passage);
        clinical.push(false);
        docs.push(lines[k * 8..(k + 1) * 8].join("\n"));
        clinical.push(true);
    }
    let path = dir.join("docs.txt");
    std::fs::write(&path, docs.join("\n\n")).unwrap();
    (path, clinical)
}

fn job(base: &Path, docs: &Path) -> PoolJob {
    PoolJob {
        base: base.to_path_buf(),
        docs: docs.to_path_buf(),
        separator: None,
        lambda: None,
        config: PoolConfig {
            delta_bits: 16.0,
            probe_steps: 40,
            lr: 2e-2,
            seq_len: 32,
            batch_size: 4,
            max_specialists: 3,
            ..PoolConfig::default()
        },
        adapted: AdaptedJob {
            blocks: "kmeans:4".into(),
            adapt: "lora:2:blk.last.attn_output".into(),
            lambda_train: 0.0,
        },
    }
}

/// The fixture (random weights) fine-tuned on Shakespeare: a base that knows one domain, saved
/// as an adapter folder (which opens as a model); with the fixture's folder, which it names.
fn shakespeare_base(dir: &Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let fixture = common::copy_family_fixture("llama");
    let corpus = dir.join("play.txt");
    let play =
        std::fs::read_to_string(common::root().join("assets/corpora/shakespeare_1mb.txt")).unwrap();
    std::fs::write(&corpus, &play[100_000..160_000]).unwrap();
    let mut run = setup(&FinetuneJob {
        from: fixture.path().to_path_buf(),
        corpus,
        blocks: "kmeans:4".into(),
        adapt: "lora:8:attn_q,attn_k,attn_v,attn_output,ffn_down".into(),
        lambda_train: 0.0,
        eta: 1.0,
        lr: 1e-2,
        steps: 150,
        seq_len: 32,
        batch_size: 8,
        seed: 3,
        rules: None,
        mu_rule: 0.0,
        penalty: None,
        mu_anchor: 0.0,
    })
    .unwrap();
    for _ in 0..150 {
        run.step().unwrap();
    }
    let out = dir.join("shakespeare-base");
    run.save(&out, None).unwrap();
    (fixture, out)
}

#[test]
fn a_pool_on_a_pretrained_decoder_grows_adapters_that_reopen_as_models() {
    let dir = tempfile::tempdir().unwrap();
    let (_fixture, base) = shakespeare_base(dir.path());
    let (docs, clinical) = two_domains(dir.path(), 6);
    let mut run = PoolRun::open(job(&base, &docs)).unwrap();
    assert_eq!(run.documents(), 12);
    let start = run.dl_total_bits();
    let mut moves = Vec::new();
    let mut progress = 0usize;
    run.grow(
        |m| {
            moves.push(m.clone());
        },
        |_| progress += 1,
        &|| false,
    )
    .unwrap();
    let table = run.routing_table();
    assert_eq!(table.lines().count(), 2 + 12, "{table}");
    // DL_total never rises, and every accepted move saved more than δ.
    for m in &moves {
        if m.accepted && !m.what.starts_with("prune") {
            assert!(m.dl_before - m.dl_after > 16.0, "{m:?}");
        }
    }
    let end = run.dl_total_bits();
    assert!(end <= start, "DL_total {start} -> {end}");
    let recruited: Vec<_> = moves
        .iter()
        .filter(|m| m.accepted && m.what.starts_with("recruit"))
        .collect();
    assert!(
        !recruited.is_empty(),
        "no specialist recruited: {:#?}",
        moves
    );
    assert!(progress > 0, "fine-tuning reported no progress");
    assert!(recruited[0]
        .what
        .contains("LoRA rank 2 of attn_output in 1 layer"));

    let out = dir.path().join("pool");
    run.save(&out).unwrap();
    let manifest = read_manifest(&out).unwrap();
    let based = manifest
        .base_model
        .clone()
        .expect("the manifest names its base");
    assert_eq!(based.sha256, localist::hf::model_sha256(&base).unwrap());
    assert!(manifest.specialists.len() >= 2);
    // Each specialist's parameters are its adapter's: rank 2 on one 32 × 32 projection.
    for s in manifest.specialists.iter().skip(1) {
        assert_eq!(s.added_params, 2 * (32 + 32), "{s:?}");
        assert_eq!(s.parent.as_deref(), Some("base"));
    }
    // The routing is by shortest code, and a reopened adapter codes its documents in the
    // bits the manifest records.
    let names: Vec<String> = manifest
        .specialists
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let texts = std::fs::read_to_string(&docs).unwrap();
    let texts = localist::engine::specialists::split_documents(&texts, None);
    let mut by_domain = [[0usize; 2]; 8];
    for (d, route) in manifest.routing.iter().enumerate() {
        let j = names.iter().position(|n| *n == route.specialist).unwrap();
        let best = route.bits.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(route.bits[j] <= best + 1e-9 || j == 0, "{route:?}");
        by_domain[j][usize::from(clinical[d])] += 1;
        if j > 0 {
            let m = ImportedModel::open(&out.join(&route.specialist), &candle_core::Device::Cpu)
                .unwrap();
            assert!(m
                .kind_label()
                .starts_with("decoder fine-tuned by an adapter"));
            let tok = m.tokenizer();
            let blocks = m.saved_blocks(&tok).unwrap().unwrap();
            let ids = tok.encode(&texts[d]);
            let (bits, _) =
                code_length_bits(m.model(), &blocks, &ids, &DialSetting::default()).unwrap();
            assert!(
                (bits - route.bits[j]).abs() < 1e-3 * bits.max(1.0),
                "{}: reopened {bits} bits, manifest {}",
                route.document,
                route.bits[j]
            );
        }
    }
    // A specialist serves one domain: the documents routed to each recruited one are all
    // clinical or all Shakespeare.
    for (j, counts) in by_domain.iter().enumerate().skip(1).take(names.len() - 1) {
        assert!(
            counts[0] == 0 || counts[1] == 0,
            "specialist {} serves both domains: {counts:?}",
            names[j]
        );
    }
    // The Specialists tab reads it; loading it as a pool of checkpoints says what it is.
    let view = read_pool(&out).unwrap();
    assert_eq!(view.manifest.routing.len(), 12);
    assert_eq!(view.texts.len(), 12);
    let err = Pool::load(&out, &[], &PoolConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("a pool of adapters on"), "{err}");
}

#[test]
fn a_pool_refuses_adapters_its_base_cannot_take() {
    let dir = tempfile::tempdir().unwrap();
    let (docs, _) = two_domains(dir.path(), 2);
    // GPT-2 takes adapters (its documents are coded when the pool opens), but has no gate.
    let gpt2 = common::copy_family_fixture("gpt2");
    let run = PoolRun::open(job(gpt2.path(), &docs)).unwrap();
    assert_eq!(run.specialists(), 1, "the base alone");
    assert!(run.dl_total_bits() > 0.0);
    let mut gate = job(gpt2.path(), &docs);
    gate.adapted.adapt = "lora:2:blk.last.ffn_gate".into();
    let err = PoolRun::open(gate).err().unwrap().to_string();
    assert!(err.contains("GPT-2 has no ffn_gate"), "{err}");
    let base = common::copy_family_fixture("llama");
    let mut bad = job(base.path(), &docs);
    bad.adapted.adapt = "lora:2:attn_x".into();
    let err = PoolRun::open(bad).err().unwrap().to_string();
    assert!(err.contains("attn_x"), "{err}");
}
