//! Model-level recruitment (SPEC §10 and §11 item 13): on two disjoint domains, a pool started
//! from one specialist (trained on the first domain) recruits exactly one more, for the second
//! domain; DL_total never increases along the way; the pool saves and loads. Inside a
//! specialist, a block is recruited for one topic's words; a rejected block move leaves the
//! pool exactly as it was; each specialist's blocks save and load.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::Device;
use localist::data::synthetic::{SyntheticCorpus, SyntheticSpec};
use localist::engine::corpus::{CorpusSource, TokenizerKind};
use localist::engine::specialists::{Pool, PoolConfig};
use localist::engine::train_job::TrainJob;
use localist::engine::train_run::run;
use localist::train::trainer::TrainConfig;

fn records(seed: u64, n: usize, clinical: f64) -> Vec<String> {
    SyntheticCorpus::generate(&SyntheticSpec {
        seed,
        num_records: n,
        clinical_fraction: clinical,
    })
    .text
    .lines()
    .map(str::to_string)
    .collect()
}

#[test]
fn two_disjoint_domains_recruit_exactly_one_more_specialist() {
    let dir = tempfile::tempdir().unwrap();
    // The base specialist knows clinical notes only (characters, so both domains encode).
    let corpus = dir.path().join("clinical.txt");
    std::fs::write(&corpus, records(1, 1500, 1.0).join("\n")).unwrap();
    let base = dir.path().join("base");
    run(
        &TrainJob {
            corpus: CorpusSource::File { path: corpus },
            tokenizer: TokenizerKind::Char,
            train: TrainConfig {
                steps: 150,
                batch_size: 8,
                seq_len: 64,
                seed: 2,
                ..TrainConfig::default()
            },
            out: Some(base.clone()),
            eval_windows: 4,
            save_optimizer: false,
            ..TrainJob::default()
        },
        &Device::Cpu,
        |_| true,
    )
    .unwrap();
    // Documents: 40 notes and 40 payments, interleaved.
    let notes = records(7, 40, 1.0);
    let payments = records(8, 40, 0.0);
    let docs: Vec<(String, String)> = notes
        .iter()
        .zip(&payments)
        .enumerate()
        .flat_map(|(k, (a, b))| {
            [
                (format!("note{k}"), a.clone()),
                (format!("txn{k}"), b.clone()),
            ]
        })
        .collect();
    let cfg = PoolConfig {
        trainable: vec!["head.bias".into()],
        ..PoolConfig::default()
    };
    let (mut pool, documents) = Pool::from_checkpoint(&base, &docs).unwrap();
    let dl0 = pool.dl_total(&documents, &cfg);
    let mut last = dl0;
    let mut dls = Vec::new();
    pool.grow(
        &documents,
        &cfg,
        |m| {
            eprintln!(
                "round {}: {} — DL {:.0} → {:.0} bits, {}",
                m.round,
                m.what,
                m.dl_before,
                m.dl_after,
                if m.accepted { "accepted" } else { "rejected" }
            );
            if m.accepted {
                dls.push(m.dl_after);
            }
        },
        &|| false,
    )
    .unwrap();
    for dl in dls {
        assert!(dl <= last + 1e-6, "DL_total rose: {last} → {dl}");
        last = dl;
    }
    eprintln!("{}", pool.routing_table(&documents));
    assert_eq!(pool.specialists.len(), 2, "{:#?}", pool.log);
    // The new specialist serves the payments, the base the notes.
    for (d, doc) in documents.iter().enumerate() {
        let want = usize::from(doc.name.starts_with("txn"));
        assert_eq!(
            pool.assignment[d], want,
            "{} went to {}",
            doc.name, pool.specialists[pool.assignment[d]].name
        );
    }
    assert!(pool.dl_total(&documents, &cfg) < dl0);
    // It was charged only for what it added over its parent.
    assert_eq!(
        pool.specialists[1].added_params,
        pool.specialists[1].model.config.vocab_size
    );
    assert_eq!(pool.specialists[1].parent, Some(0));

    // Save and load: the same routing.
    let out = dir.path().join("pool");
    pool.save(&out, &documents).unwrap();
    let (back, docs2) = Pool::load(&out, &docs, &cfg).unwrap();
    assert_eq!(back.specialists.len(), 2);
    assert_eq!(back.assignment, pool.assignment);
    assert_eq!(docs2.len(), documents.len());
}

#[test]
fn a_redundant_specialist_is_merged_away() {
    use localist::engine::specialists::Specialist;
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_models/tiny-clinical");
    let docs: Vec<(String, String)> = records(5, 20, 0.5)
        .into_iter()
        .enumerate()
        .map(|(k, t)| (format!("d{k}"), t))
        .collect();
    let (mut pool, documents) = Pool::from_checkpoint(&base, &docs).unwrap();
    // A copy of the base that codes its half of the documents one bit better each: not worth
    // its parameters and header.
    let copy = pool.specialists[0].model.clone();
    pool.specialists.push(Specialist {
        name: "copy".into(),
        parent: Some(0),
        model: copy,
        blocks: pool.specialists[0].blocks.clone(),
        added_params: 96,
    });
    for (d, row) in pool.bits.iter_mut().enumerate() {
        let b = row[0];
        row.push(if d % 2 == 1 { b - 1.0 } else { b + 1.0 });
    }
    for (d, a) in pool.assignment.iter_mut().enumerate() {
        *a = d % 2;
    }
    let cfg = PoolConfig {
        max_specialists: 2,
        ..PoolConfig::default()
    };
    let before = pool.dl_total(&documents, &cfg);
    pool.grow(&documents, &cfg, |_| {}, &|| false).unwrap();
    assert_eq!(pool.specialists.len(), 1, "{:#?}", pool.log);
    assert!(pool
        .log
        .iter()
        .any(|m| m.accepted && m.what.starts_with("merge copy")));
    assert!(pool.dl_total(&documents, &cfg) < before);
    assert!(pool.assignment.iter().all(|&a| a == 0));
}

/// A base for the block move: a distributed model (λ_train = 0, one block) trained on three
/// topics with disjoint vocabularies, saved with its one block isolating unassigned tokens and
/// the dial at λ = 1. Coded there, a query sees only itself and the start of its window, so a
/// block that lets one topic's words see each other gives the model back the context it
/// learned to use. Trained once for all the tests of this file.
fn topic_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        use localist::engine::corpus::BlockSpec;
        use localist::model::checkpoint::{load_checkpoint, save_checkpoint};
        use localist::model::dial::DialSetting;
        use localist::train::optimizer::AdamWConfig;
        let dir = tempfile::tempdir().unwrap().keep();
        let trained = dir.join("trained");
        let started = std::time::Instant::now();
        run(
            &TrainJob {
                corpus: CorpusSource::Topics { seed: 0, topics: 3 },
                tokenizer: TokenizerKind::Word,
                blocks: Some(BlockSpec::Single),
                train: TrainConfig {
                    steps: 200,
                    batch_size: 16,
                    seq_len: 32,
                    seed: 3,
                    optimizer: AdamWConfig {
                        lr: 3e-3,
                        ..Default::default()
                    },
                    ..TrainConfig::default()
                },
                out: Some(trained.clone()),
                eval_windows: 2,
                save_optimizer: false,
                ..TrainJob::default()
            },
            &Device::Cpu,
            |_| true,
        )
        .unwrap();
        eprintln!("base trained in {:.1} s", started.elapsed().as_secs_f64());
        let mut ck = load_checkpoint(&trained, &Device::Cpu).unwrap();
        ck.blocks.isolate_unassigned = true;
        ck.meta.dial = DialSetting::bias(1.0);
        let base = dir.join("base");
        save_checkpoint(&base, &ck.meta, &ck.blocks, &ck.model, None).unwrap();
        base
    })
}

/// Documents from the topic generator (another seed than the base's training text).
fn topic_documents(n: usize) -> Vec<(String, String)> {
    localist::engine::corpus::topic_corpus(1, 3)
        .text
        .lines()
        .take(n)
        .enumerate()
        .map(|(k, t)| (format!("doc{k}"), t.to_string()))
        .collect()
}

fn print_move(m: &localist::engine::specialists::PoolMove) {
    eprintln!(
        "round {}: {} — DL {:.0} → {:.0} bits, {}",
        m.round,
        m.what,
        m.dl_before,
        m.dl_after,
        if m.accepted { "accepted" } else { "rejected" }
    );
}

#[test]
fn a_block_is_recruited_inside_a_specialist_for_one_topic() {
    let started = std::time::Instant::now();
    let base = topic_base();
    let docs = topic_documents(60);
    let cfg = PoolConfig {
        max_specialists: 2,
        probe_steps: 20,
        ..PoolConfig::default()
    };
    let (mut pool, documents) = Pool::from_checkpoint(base, &docs).unwrap();
    assert_eq!(pool.specialists[0].blocks.num_blocks(), 1);
    let dl0 = pool.dl_total(&documents, &cfg);
    let mut last = dl0;
    let mut accepted = Vec::new();
    pool.grow(
        &documents,
        &cfg,
        |m| {
            print_move(m);
            if m.accepted {
                accepted.push(m.clone());
            }
        },
        &|| false,
    )
    .unwrap();
    for m in &accepted {
        assert!(
            m.dl_after <= last + 1e-6,
            "DL_total rose: {last} → {}",
            m.dl_after
        );
        if m.decision.is_some() {
            assert!(m.dl_before - m.dl_after > cfg.delta_bits, "{}", m.what);
        }
        last = m.dl_after;
    }
    // The pool's DL_total, priced from scratch, is where the last accepted move left it.
    let dl = pool.dl_total(&documents, &cfg);
    assert!((dl - last).abs() < 1e-6 * dl.abs(), "{dl} vs {last}");
    assert!(dl < dl0);
    let block_moves: Vec<_> = accepted
        .iter()
        .filter(|m| m.what.contains(" in specialist "))
        .collect();
    assert!(!block_moves.is_empty(), "{:#?}", pool.log);
    let d = block_moves[0].decision.as_ref().unwrap();
    assert!(d.data_bits_after < d.data_bits_before);
    assert!(d.model.header_bits > 0.0 && d.model.map_bits > 0.0);
    assert_eq!(
        d.model.parameter_bits, 0.0,
        "anchor keys are not charged by default"
    );

    // Each recruited block's words come mostly from one topic.
    let truth = localist::engine::corpus::topic_corpus(1, 3).truth;
    let tok = pool.tokenizer().unwrap();
    let topic_of = |id: u32| {
        let w = tok.decode(&[id]);
        truth
            .iter()
            .find(|(t, _)| t.trim() == w.trim())
            .map(|(_, k)| *k)
    };
    let mut recruited = 0;
    for s in &pool.specialists {
        for b in 1..s.blocks.num_blocks() {
            let ids: Vec<u32> = (0u32..)
                .zip(&s.blocks.token_block)
                .filter(|&(_, &k)| k == b)
                .map(|(id, _)| id)
                .collect();
            let mut by = [0usize; 3];
            for &id in &ids {
                if let Some(t) = topic_of(id) {
                    by[t] += 1;
                }
            }
            let purity = *by.iter().max().unwrap() as f64 / ids.len().max(1) as f64;
            eprintln!(
                "{}: block {} ({} tokens) by topic {by:?}: purity {purity:.3}",
                s.name,
                s.blocks.name(b),
                ids.len()
            );
            assert!(purity >= 0.8, "block {} is mixed: {by:?}", s.blocks.name(b));
            recruited += 1;
        }
    }
    assert!(recruited >= 1);
    eprintln!("{:.1} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_rejected_block_move_leaves_the_pool_exactly_as_it_was() {
    let base = topic_base();
    let docs = topic_documents(30);
    // δ so large that every move is rejected; one specialist at most, so the move tried is the
    // block move.
    let cfg = PoolConfig {
        delta_bits: 1e12,
        max_specialists: 1,
        ..PoolConfig::default()
    };
    let (mut pool, documents) = Pool::from_checkpoint(base, &docs).unwrap();
    let weights = |p: &Pool| -> Vec<(String, Vec<f32>)> {
        p.specialists[0]
            .model
            .params
            .tensors()
            .into_iter()
            .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
            .collect()
    };
    let (w0, blocks0) = (weights(&pool), pool.specialists[0].blocks.clone());
    let (bits0, routing0) = (pool.bits.clone(), pool.assignment.clone());
    let dl0 = pool.dl_total(&documents, &cfg);
    pool.grow(&documents, &cfg, print_move, &|| false).unwrap();
    let tried = pool
        .log
        .iter()
        .find(|m| m.what.contains(" in specialist base"))
        .expect("a block move was tried");
    assert!(!tried.accepted);
    assert!(
        tried.dl_after < tried.dl_before,
        "the proposal saves bits, only not δ"
    );
    assert_eq!(weights(&pool), w0);
    assert_eq!(pool.specialists[0].blocks, blocks0);
    assert_eq!(pool.bits, bits0);
    assert_eq!(pool.assignment, routing0);
    assert_eq!(pool.dl_total(&documents, &cfg), dl0);
}

#[test]
fn each_specialists_blocks_save_and_load() {
    use localist::engine::specialists::{read_manifest, Specialist};
    use localist::train::recruit::RecruitConfig;
    let base = topic_base();
    let docs = topic_documents(30);
    // One block at most (K_max = 2) is all this test needs.
    let cfg = PoolConfig {
        max_specialists: 1,
        blocks: RecruitConfig {
            k_max: 2,
            ..RecruitConfig::default()
        },
        ..PoolConfig::default()
    };
    let (mut pool, documents) = Pool::from_checkpoint(base, &docs).unwrap();
    // A copy of the base as it came, kept with its one block while the base recruits blocks.
    let mut copy = pool.specialists[0].model.clone();
    copy.params = copy.params.deep_clone().unwrap();
    let original = pool.specialists[0].blocks.clone();
    pool.grow(&documents, &cfg, print_move, &|| false).unwrap();
    assert!(
        pool.specialists[0].blocks.num_blocks() > 1,
        "{:#?}",
        pool.log
    );
    pool.specialists.push(Specialist {
        name: "kept".into(),
        parent: Some(0),
        model: copy,
        blocks: original.clone(),
        added_params: 0,
    });
    for row in &mut pool.bits {
        row.push(row[0] + 1000.0);
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pool");
    pool.save(&out, &documents).unwrap();
    let manifest = read_manifest(&out).unwrap();
    assert_eq!(
        manifest.specialists[0].blocks.as_ref(),
        Some(&pool.specialists[0].blocks.names)
    );
    let (back, _) = Pool::load(&out, &docs, &cfg).unwrap();
    assert_eq!(back.specialists.len(), 2);
    assert_eq!(back.specialists[0].blocks, pool.specialists[0].blocks);
    assert_eq!(back.specialists[1].blocks, original);
    assert_eq!(back.root_blocks, pool.root_blocks);
    // Coded under its own blocks again: the base's bits are the ones it was grown with.
    for (a, b) in back.bits.iter().zip(&pool.bits) {
        assert!((a[0] - b[0]).abs() < 1e-6 * b[0], "{} vs {}", a[0], b[0]);
    }
    assert_eq!(
        back.block_bits(&cfg)[0],
        pool.block_bits(&cfg)[0],
        "the base is still charged for its recruited blocks"
    );

    // A pool saved before specialists had their own blocks loads with the base's shared.
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_models/pool-clinical-payments");
    let text = std::fs::read_to_string(sample.join("documents.txt")).unwrap();
    let sample_docs: Vec<(String, String)> =
        localist::engine::specialists::split_documents(&text, None)
            .into_iter()
            .take(6)
            .enumerate()
            .map(|(k, t)| (format!("#{k}"), t))
            .collect();
    let (old, _) = Pool::load(&sample, &sample_docs, &PoolConfig::default()).unwrap();
    assert_eq!(old.specialists.len(), 2);
    assert_eq!(old.specialists[1].blocks, old.specialists[0].blocks);
    assert!(old
        .block_bits(&PoolConfig::default())
        .iter()
        .all(|&b| b == 0.0));
}

#[test]
fn blocks_are_charged_for_what_they_add_over_the_parent() {
    use localist::engine::specialists::blocks_over_parent;
    use localist::model::blocks::BlockMap;
    use localist::train::recruit::with_new_block;
    let parent = BlockMap::single(8);
    let child = with_new_block(&parent, &[1, 2, 5], "b");
    // By hand: one header, log2 16 + 32 = 36 bits; three entries, log2 8 + log2 16 = 7 bits each.
    let bits = blocks_over_parent(&child, Some(&parent), 16);
    assert_eq!(bits.parameter_bits, 0.0);
    assert!((bits.header_bits - 36.0).abs() < 1e-12);
    assert!((bits.map_bits - 21.0).abs() < 1e-12);
    // Nothing over itself, nor for the root (no parent).
    assert_eq!(blocks_over_parent(&child, Some(&child), 16).total(), 0.0);
    assert_eq!(blocks_over_parent(&child, None, 16).total(), 0.0);
    // One more token in the same block: one more entry, no new header.
    let grandchild = with_new_block(&parent, &[1, 2, 5, 6], "b");
    let more = blocks_over_parent(&grandchild, Some(&child), 16);
    assert_eq!(more.header_bits, 0.0);
    assert!((more.map_bits - 7.0).abs() < 1e-12);
}

#[test]
fn a_manifest_that_contradicts_itself_or_leads_out_of_its_pool_is_refused() {
    use localist::engine::specialists::read_manifest;
    let sample = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sample_models/pool-clinical-payments/manifest.json");
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let write = |v: &serde_json::Value| {
        std::fs::write(tmp.path().join("manifest.json"), v.to_string()).unwrap();
        read_manifest(tmp.path())
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    };
    assert_eq!(write(&base), Ok(()));
    let n = base["specialists"].as_array().unwrap().len();
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 8] = [
        (
            |v| {
                let row = v["routing"][0].clone();
                v["routing"] = vec![row; 5000].into();
            },
            "at most 4096 documents",
        ),
        (|v| v["version"] = 999.into(), "version 999"),
        (
            |v| v["specialists"][1]["name"] = "/etc".into(),
            "not a plain folder name",
        ),
        (
            |v| v["specialists"][1]["name"] = "..".into(),
            "not a plain folder name",
        ),
        (
            |v| v["specialists"][1]["name"] = "base".into(),
            "named twice",
        ),
        (
            |v| v["specialists"][1]["parent"] = "ghost".into(),
            "not an earlier specialist",
        ),
        (
            |v| v["routing"][0]["specialist"] = "nobody".into(),
            "not a specialist of the pool",
        ),
        (
            |v| v["routing"][0]["bits"] = vec![1.0].into(),
            "one finite, non-negative",
        ),
    ];
    assert!(n > 1, "the sample pool has {n} specialists");
    for (edit, want) in cases {
        let mut v = base.clone();
        edit(&mut v);
        let err = write(&v).unwrap_err();
        assert!(err.contains("manifest.json") && err.contains(want), "{err}");
    }
}
