//! SPEC §11.9, the training effect: on the synthetic clinical-and-payments corpus, a tiny model
//! trained at λ_train = 1 has lower mean attention entropy and higher pointer fidelity against
//! the generator's true pointer targets (a dose's drug, an amount's currency) than the same
//! model trained at λ_train = 0, both measured at the default inference dial (λ_inf = 0).
//!
//! The SPEC asks for the direction, not the magnitude (AILA's 5.36 vs 7.18 bits come from a
//! setting we do not know). The settings are the CLI's defaults (`localist train`: η = 1,
//! μ_anc = 0.05, lr 1e-3, batch 16, T = 64, λ annealed over the first 10% of steps) with the
//! fewest steps that give a robust effect. Measured in the dev profile on the 2-core machine,
//! at 100 steps (seeds 0–3, same seed for both runs of a pair):
//!
//! | seed | entropy λ=0 → λ=1 (bits) | true PF_mass λ=0 → λ=1 |
//! |------|--------------------------|------------------------|
//! | 0    | 3.774 → 2.919            | 0.092 → 0.217          |
//! | 1    | 3.660 → 3.089            | 0.085 → 0.173          |
//! | 2    | 3.750 → 2.912            | 0.073 → 0.311          |
//! | 3    | 3.700 → 2.955            | 0.070 → 0.188          |
//!
//! (measured before the fused CPU ops of `model::fused` landed; with them seed 0, the one this
//! test uses, gives 3.773 → 2.923 bits and 0.092 → 0.219.)
//!
//! At 80 steps the PF effect is not yet there for every seed (seed 6: 0.070 → 0.067): the
//! pointer is learned in a fairly sharp transition between 80 and 150 steps. Without the anchor
//! loss (μ_anc = 0) the same transition needs about 150 steps. The whole test takes about 42 s
//! in the dev profile on the idle 2-core machine with the repository's one-thread candle
//! setting (`.cargo/config.toml`); it is a single test so the two trainings never compete for
//! the cores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::time::Instant;

use candle_core::Device;
use localist::engine::corpus::{
    build_blocks, prepare_corpus, BlockSpec, CorpusSource, TokenizerKind,
};
use localist::model::blocks::BlockMap;
use localist::model::config::ModelConfig;
use localist::model::dial::DialSetting;
use localist::model::transformer::LocalistModel;
use localist::train::dataset::{train_split, TokenStream};
use localist::train::eval::{evaluate, EvalReport};
use localist::train::trainer::{TrainConfig, Trainer};

/// Seed of the model initialisation and of the batch sampler (the same for both runs).
const SEED: u64 = 0;
/// Optimizer steps per run.
const STEPS: usize = 100;

fn train_and_evaluate(
    config: &ModelConfig,
    blocks: &BlockMap,
    train: &TokenStream,
    held_out: &TokenStream,
    lambda_train: f64,
) -> EvalReport {
    let model = LocalistModel::new_random(config, blocks.num_blocks(), SEED, &Device::Cpu).unwrap();
    let tc = TrainConfig {
        lambda_train,
        eta: 1.0,
        mu_anchor: 0.05,
        anneal_fraction: 0.1,
        batch_size: 16,
        seq_len: 64,
        steps: STEPS,
        seed: SEED,
        ..TrainConfig::default()
    };
    let mut trainer = Trainer::new(model, blocks.clone(), train.clone(), tc).unwrap();
    for _ in 0..STEPS {
        trainer.train_step().unwrap();
    }
    // Every held-out window (about 40 of 64 tokens), at the default dial: mode A, λ_inf = 0.
    let windows = (held_out.len() - 1) / 64;
    evaluate(
        &trainer.model,
        blocks,
        held_out,
        &DialSetting::default(),
        64,
        windows,
        8,
    )
    .unwrap()
}

#[test]
fn lambda_train_one_concentrates_attention_and_raises_pointer_fidelity() {
    let start = Instant::now();
    let source = CorpusSource::Synthetic {
        seed: 1,
        records: 1500,
    };
    let corpus = prepare_corpus(&source, TokenizerKind::Word, None).unwrap();
    let config = ModelConfig::preset("tiny", corpus.tokenizer.vocab_size()).unwrap();
    // The generator's own lexicon, with dose → drug and amount → currency as relevance.
    let blocks = build_blocks(&BlockSpec::Corpus, &corpus, config.max_seq_len).unwrap();
    for (from, to) in [("dose", "drug"), ("amount", "currency")] {
        let (f, t) = (blocks.index_of(from).unwrap(), blocks.index_of(to).unwrap());
        assert_eq!(
            blocks.relevance[f], t,
            "{from} queries should attend to {to}"
        );
    }
    let (train, held_out) = corpus.stream.split_at(train_split(corpus.stream.len()));
    assert!(
        held_out.targets.iter().flatten().count() > 100,
        "too few true pointer targets"
    );

    let dist = train_and_evaluate(&config, &blocks, &train, &held_out, 0.0);
    let local = train_and_evaluate(&config, &blocks, &train, &held_out, 1.0);
    eprintln!(
        "λ_train = 0: entropy {:.3} bits, true PF_mass {:.4}, CE {:.3} nats\n\
         λ_train = 1: entropy {:.3} bits, true PF_mass {:.4}, CE {:.3} nats\n\
         wall time {:.1} s",
        dist.entropy_bits,
        dist.pf_true_mass.unwrap_or(f64::NAN),
        dist.ce_nats,
        local.entropy_bits,
        local.pf_true_mass.unwrap_or(f64::NAN),
        local.ce_nats,
        start.elapsed().as_secs_f64()
    );

    // Both models learned the corpus (ln 250 ≈ 5.5 nats at initialisation; about 1.5 after 100
    // steps), so the comparison is between trained models.
    for r in [&dist, &local] {
        assert!(
            r.ce_nats < 2.0,
            "model did not train: CE {} nats",
            r.ce_nats
        );
        assert!(r.entropy_bits <= r.entropy_ceiling_bits);
    }
    // The check itself (SPEC §11.9): lower entropy and higher PF at λ_train = 1.
    assert!(
        local.entropy_bits < dist.entropy_bits,
        "mean attention entropy {} bits at λ_train = 1 is not below {} at λ_train = 0",
        local.entropy_bits,
        dist.entropy_bits
    );
    let (pf_dist, pf_local) = (dist.pf_true_mass.unwrap(), local.pf_true_mass.unwrap());
    assert!(
        pf_local > pf_dist,
        "true PF_mass {pf_local} at λ_train = 1 is not above {pf_dist} at λ_train = 0"
    );
    // And the dial's own measure: less off-block mass ε.
    assert!(local.off_block_mass < dist.off_block_mass);
}
