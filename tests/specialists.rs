//! Model-level recruitment (SPEC §10 and §11 item 13): on two disjoint domains, a pool started
//! from one specialist (trained on the first domain) recruits exactly one more, for the second
//! domain; DL_total never increases along the way; the pool saves and loads.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use localist::data::synthetic::{SyntheticCorpus, SyntheticSpec};
use localist::engine::corpus::{CorpusSource, TokenizerKind};
use localist::engine::specialists::{Pool, PoolConfig};
use localist::engine::train_job::{run, TrainJob};
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
    pool.grow(&documents, &cfg, |m| {
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
    })
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
    pool.grow(&documents, &cfg, |_| {}).unwrap();
    assert_eq!(pool.specialists.len(), 1, "{:#?}", pool.log);
    assert!(pool
        .log
        .iter()
        .any(|m| m.accepted && m.what.starts_with("merge copy")));
    assert!(pool.dl_total(&documents, &cfg) < before);
    assert!(pool.assignment.iter().all(|&a| a == 0));
}
