//! The LLaMA family's native view forward (`GgufLlama::forward_native`, what the studio's
//! captures of SmolLM2 run on a dial change) against candle's forward of the same model
//! (`GgufLlama::forward_candle`): logits, attention and biased scores in every dial mode, with a
//! γ schedule and a rules-style per-head bias; on the tiny LLaMA and Qwen2 folders (Qwen2 has
//! q/k/v biases and Hugging Face's half-rotation RoPE) and on SmolLM2 when it is fetched
//! (llama.cpp's interleaved RoPE, grouped-query attention with 9 heads over 3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use candle_core::{Device, Tensor};
use localist::hf::gguf_llama::GgufLlama;
use localist::hf::ImportedModel;
use localist::model::backend::AttentionModel;
use localist::model::blocks::BlockMap;
use localist::model::capture::{masks_for, sequence_biases};
use localist::model::dial::DialSetting;

fn parity_blocks(vocab: usize) -> BlockMap {
    let pairs: Vec<(u32, String)> = (0..vocab as u32)
        .map(|id| (id, if id % 3 == 0 { "a" } else { "b" }.to_string()))
        .collect();
    BlockMap::from_assignments(vocab, &pairs, "thirds")
}

fn flat(x: &Tensor) -> Vec<f32> {
    x.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// Largest |a − b| relative to max(|b|, 1); −∞ must meet −∞.
fn worst(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    flat(a)
        .iter()
        .zip(flat(b))
        .map(|(x, y)| {
            if x.is_infinite() || y.is_infinite() {
                assert_eq!(*x, y, "an infinite score on one side only");
                0.0
            } else {
                (x - y).abs() / y.abs().max(1.0)
            }
        })
        .fold(0.0, f32::max)
}

/// Native against candle over `ids` in modes A–D; returns the worst (logits, attention,
/// scores) differences.
fn compare(m: &GgufLlama, ids: &[u32]) -> (f32, f32, f32) {
    let blocks = parity_blocks(m.config.vocab);
    let masks = masks_for(m, &blocks, ids);
    let (h, n) = (m.config.heads, ids.len());
    let mut worst_all = (0f32, 0f32, 0f32);
    for (dial, rules) in common::native_check_dials() {
        let mode = dial.params.mode;
        let mut biases = sequence_biases(m, &masks, &dial, &Device::Cpu).unwrap();
        if rules {
            let extra = common::rules_extra(h, n);
            for b in &mut biases {
                b.extra = Some(extra.clone());
            }
        }
        let want = m.forward_candle(ids, &biases, true).unwrap();
        let got = m
            .forward_native(ids, &biases, true, true)
            .expect("the native pass applies on the CPU")
            .unwrap();
        let dl = worst(&got.logits, &want.logits);
        let (mut da, mut dz) = (0f32, 0f32);
        for l in 0..m.config.layers {
            da = da.max(worst(&got.attention[l], &want.attention[l]));
            dz = dz.max(worst(&got.scores[l], &want.scores[l]));
        }
        eprintln!("{mode:?}: logits {dl:.2e}, attention {da:.2e}, scores {dz:.2e}");
        worst_all = (
            worst_all.0.max(dl),
            worst_all.1.max(da),
            worst_all.2.max(dz),
        );
        // Attention-only views leave the logits empty.
        let att = m
            .forward_native(ids, &biases, false, false)
            .unwrap()
            .unwrap();
        assert_eq!(att.logits.dims(), &[1, n, 0]);
        assert!(att.scores.is_empty());
    }
    worst_all
}

#[test]
fn the_native_pass_matches_candle_on_the_llama_and_qwen2_folders() {
    for name in ["llama", "qwen2"] {
        let im = ImportedModel::open(&common::family_fixture(name), &Device::Cpu).unwrap();
        let m = im.decoder().expect("a LLaMA-family decoder");
        let ids: Vec<u32> = (0..23u32)
            .map(|i| (i * 7 + 3) % m.config.vocab as u32)
            .collect();
        let (dl, da, dz) = compare(m, &ids);
        eprintln!("{name}: logits {dl:.2e}, attention {da:.2e}, scores {dz:.2e}");
        assert!(dl < 1e-4 && da < 1e-5 && dz < 1e-4, "{name}");
        // The model's views go through it: an id outside the vocabulary is an error.
        let bad = [0u32, m.config.vocab as u32];
        let biases = sequence_biases(
            m,
            &masks_for(m, &parity_blocks(m.config.vocab), &bad),
            &DialSetting::default(),
            &Device::Cpu,
        )
        .unwrap();
        let err = m
            .forward_biased(&bad, &biases, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside the vocabulary"), "{err}");
    }
}

#[test]
fn the_native_pass_matches_candle_on_smollm2() {
    let Some(path) = common::model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m = GgufLlama::open(&path, &Device::Cpu).unwrap();
    let ids = m
        .encode("To be, or not to be, that is the question: whether 'tis nobler in the mind")
        .unwrap();
    let (dl, da, dz) = compare(&m, &ids);
    eprintln!("SmolLM2: logits {dl:.2e}, attention {da:.2e}, scores {dz:.2e}");
    assert!(dl < 1e-3 && da < 1e-4 && dz < 1e-3);
}
