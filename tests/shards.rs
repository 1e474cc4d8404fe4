//! A training step cut over threads (`train::trainer::shards`) computes the batch's loss and
//! moves the weights as the uncut step does, up to the order of float sums, with shards of
//! unequal size. Its own test binary: the training threads are set once per process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::Device;
use localist::analysis::rng::SplitMix64;
use localist::model::blocks::BlockMap;
use localist::model::config::ModelConfig;
use localist::model::transformer::LocalistModel;
use localist::train::dataset::TokenStream;
use localist::train::trainer::{set_training_threads, TrainConfig, Trainer};

const V: usize = 40;

fn trainer(shards: usize, config: TrainConfig) -> Trainer {
    let pairs: Vec<(u32, String)> = (4..V as u32).map(|w| (w, format!("b{}", w % 4))).collect();
    let mut blocks = BlockMap::from_assignments(V, &pairs, "test");
    blocks.set_relevance("b2", "b1").unwrap();
    let cfg = ModelConfig::preset("tiny", V).unwrap();
    let model = LocalistModel::new_random(&cfg, blocks.num_blocks(), 11, &Device::Cpu).unwrap();
    let mut rng = SplitMix64::new(12);
    let ids: Vec<u32> = (0..4000).map(|_| rng.below(V) as u32).collect();
    let stream = TokenStream {
        ids,
        targets: Vec::new(),
    };
    let mut t = Trainer::new(model, blocks, stream, config).unwrap();
    t.shards = shards;
    t
}

fn params(t: &Trainer) -> Vec<(String, Vec<f32>)> {
    t.model
        .params
        .iter()
        .map(|(n, v)| {
            let x = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            (n.clone(), x)
        })
        .collect()
}

#[test]
fn a_step_cut_over_threads_matches_the_whole_step() {
    set_training_threads(3);
    let config = TrainConfig {
        lambda_train: 1.0,
        eta: 1.0,
        anneal_fraction: 0.0,
        mu_anchor: 0.1,
        batch_size: 14, // shards of 5, 5 and 4 windows: unequal, so the weights matter
        seq_len: 32,
        seed: 5,
        ..TrainConfig::default()
    };
    let (mut whole, mut cut) = (trainer(1, config.clone()), trainer(3, config));
    assert_eq!(whole.shard_count(14), 1);
    assert_eq!(cut.shard_count(14), 3, "the step is cut in three");
    for step in 0..4 {
        let (a, b) = (whole.train_step().unwrap(), cut.train_step().unwrap());
        for (what, x, y) in [
            ("loss", a.loss_nats, b.loss_nats),
            ("ce", a.ce_nats, b.ce_nats),
            ("penalty", a.penalty, b.penalty),
            ("anchor", a.anchor_nats, b.anchor_nats),
        ] {
            assert!(
                (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                "step {step}: {what} {x} whole, {y} cut"
            );
        }
        assert!(a.penalty > 0.0 && a.anchor_nats > 0.0);
    }
    for ((name, x), (_, y)) in params(&whole).iter().zip(params(&cut)) {
        let diff = x
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-4, "{name} differs by {diff} after 4 steps");
    }
}
