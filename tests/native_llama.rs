//! The LLaMA family's native view forward (`GgufLlama::forward_native`, what the studio's
//! captures of SmolLM2 run on a dial change) against candle's forward of the same model
//! (`GgufLlama::forward_candle`): logits, attention and biased scores in every dial mode, with a
//! γ schedule and a rules-style per-head bias; on the tiny LLaMA and Qwen2 folders (Qwen2 has
//! q/k/v biases and Hugging Face's half-rotation RoPE) and on SmolLM2 when it is fetched
//! (llama.cpp's interleaved RoPE, grouped-query attention with 9 heads over 3). The streamed
//! forward of a long text (`GgufLlama::forward_rows_native`, chunks of query rows) is checked
//! against the same dense reference, chunk by chunk.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use candle_core::{Device, Tensor};
use localist::hf::gguf_llama::GgufLlama;
use localist::hf::ImportedModel;
use localist::model::attention::AttentionBias;
use localist::model::backend::{AttentionModel, RowStream};
use localist::model::blocks::BlockMap;
use localist::model::capture::{masks_for, sequence_biases};
use localist::model::dial::DialSetting;
use localist::model::transformer::ModelError;

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

/// The LLaMA-family folders the native passes run.
const NATIVE_FOLDERS: [&str; 17] = [
    "llama",
    "qwen2",
    "mistral",
    "qwen3",
    "phi3",
    "gemma",
    "gemma2",
    "gemma3_text",
    "olmo2",
    "smollm3",
    "granite",
    "stablelm",
    "olmo",
    "phi3_longrope",
    "gemma3_vision",
    "llama_yarn",
    "olmo3",
];

#[test]
fn the_native_pass_matches_candle_on_the_llama_family_folders() {
    // Qwen3: per-head q/k norms and a head width other than d / heads. Gemma: embeddings ×√d,
    // a GELU gate; Gemma 2: soft caps on scores and logits, query_pre_attn_scalar 24 ≠ d_h;
    // Gemma 3: post-norms, per-head q/k norms, the sliding layers' own RoPE base; OLMo 2: no
    // pre-norms, post-norms, q/k norms over all heads. StableLM: LayerNorms with biases, q/k/v
    // biases, a partial rotation; OLMo 1: LayerNorms without weights, q/k/v clipped;
    // phi3_longrope: LongRoPE's factors and attention factor on part of each head.
    for name in NATIVE_FOLDERS {
        let im = folder_matches_candle(name, 23);
        let m = im.decoder().expect("a LLaMA-family decoder");
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

/// A LongRoPE model over a text past its original context (150 tokens of 128): both passes
/// turn every position by the long factors.
#[test]
fn the_native_pass_matches_candle_past_a_longrope_original_context() {
    folder_matches_candle("phi3_longrope", 150);
}

/// The fixture folder `name`, its native pass checked against candle's ([`compare`]) over `n`
/// tokens: logits within 1e-4, attention 1e-5, scores 1e-4.
fn folder_matches_candle(name: &str, n: u32) -> ImportedModel {
    let im = ImportedModel::open(&common::family_fixture(name), &Device::Cpu).unwrap();
    let m = im.decoder().expect("a LLaMA-family decoder");
    let ids: Vec<u32> = (0..n)
        .map(|i| (i * 7 + 3) % m.config.vocab as u32)
        .collect();
    let (dl, da, dz) = compare(m, &ids);
    eprintln!("{name}, {n} tokens: logits {dl:.2e}, attention {da:.2e}, scores {dz:.2e}");
    assert!(dl < 1e-4 && da < 1e-5 && dz < 1e-4, "{name}");
    im
}

/// The families on GPT-2's block whose block differs from GPT-2's step aside from its native
/// view pass (candle's runs them): RoPE (GPT-NeoX, Phi, StarCoder2, CodeGen), ALiBi (BLOOM),
/// the parallel residual, OPT-350m's norms after each sub-layer and projected embeddings.
#[test]
fn the_gpt2_blocks_that_differ_step_aside_from_the_native_pass() {
    for name in [
        "gpt_neox",
        "phi",
        "bloom",
        "opt_350m",
        "starcoder2",
        "codegen",
    ] {
        let im = ImportedModel::open(&common::family_fixture(name), &Device::Cpu).unwrap();
        let ImportedModel::Gpt2(m) = &im else {
            panic!("{name}: not a GPT-2-family decoder")
        };
        let ids: Vec<u32> = (0..23u32).map(|i| (i * 7 + 3) % 300).collect();
        let plain = m.forward_native(&ids, &[], (false, true));
        assert!(plain.is_none(), "{name}: the native pass stepped in");
    }
}

/// GPT-2's native view pass (GPT-2, GPT-Neo's unscaled scores, OPT's ReLU, GPT-BigCode's
/// shared key and value) against candle's
/// forward in modes A–D with and without rules (the families whose block differs step aside:
/// the test before). Weights written through the projection interface
/// reach the native pass (its copy is made again).
#[test]
fn the_native_pass_matches_candle_on_the_gpt2_family_folders() {
    use localist::hf::gguf_llama::Projection;
    use localist::model::backend::KvCache;
    for name in ["gpt2", "gpt_neo", "opt", "gpt_bigcode", "gpt_bigcode_mha"] {
        let mut im = ImportedModel::open(&common::family_fixture(name), &Device::Cpu).unwrap();
        let ImportedModel::Gpt2(m) = &im else {
            panic!("{name}: not a GPT-2-family decoder")
        };
        let ids: Vec<u32> = (0..23u32).map(|i| (i * 7 + 3) % 300).collect();
        let blocks = parity_blocks(300);
        let masks = masks_for(m, &blocks, &ids);
        let mut worst_all = (0f32, 0f32, 0f32);
        for (dial, rules) in common::native_check_dials() {
            let mut biases = sequence_biases(m, &masks, &dial, &Device::Cpu).unwrap();
            if rules {
                let extra = common::rules_extra(4, ids.len());
                for b in &mut biases {
                    b.extra = Some(extra.clone());
                }
            }
            let want = m
                .forward_cached(&ids, &biases, true, &mut KvCache::default(), true)
                .unwrap();
            let got = m
                .forward_native(&ids, &biases, (true, true))
                .expect("the native pass applies")
                .unwrap();
            let mut w = (worst(&got.logits, &want.logits), 0f32, 0f32);
            for l in 0..want.attention.len() {
                w.1 = w.1.max(worst(&got.attention[l], &want.attention[l]));
                w.2 = w.2.max(worst(&got.scores[l], &want.scores[l]));
            }
            worst_all = (
                worst_all.0.max(w.0),
                worst_all.1.max(w.1),
                worst_all.2.max(w.2),
            );
        }
        let (dl, da, dz) = worst_all;
        eprintln!("{name}: logits {dl:.2e}, attention {da:.2e}, scores {dz:.2e}");
        assert!(dl < 1e-4 && da < 1e-5 && dz < 1e-4, "{name}");
        // A projection written through the trainable interface reaches the native pass.
        let before = im.model().forward_biased(&ids, &[], false).unwrap().logits;
        let d = im.trainable_mut().unwrap();
        let w = d.projection(0, Projection::Q).unwrap();
        d.replace_projection(0, Projection::Q, (w * 1.5).unwrap())
            .unwrap();
        let after = im.model().forward_biased(&ids, &[], false).unwrap().logits;
        assert!(
            worst(&before, &after) > 1e-4,
            "{name}: the new q reached the pass"
        );
        let ImportedModel::Gpt2(m) = &im else {
            unreachable!()
        };
        let candle = m
            .forward_cached(&ids, &[], false, &mut KvCache::default(), true)
            .unwrap()
            .logits;
        assert!(
            worst(&after, &candle) < 1e-4,
            "{name}: the pass reads the new weights"
        );
    }
}

/// A Gemma whose MLP is the exact (erf) GELU (`hidden_activation: "gelu"`) runs on candle's
/// passes: the native ones step aside.
#[test]
fn an_exact_gelu_gemma_steps_aside_from_the_native_passes() {
    let dir = common::copy_family_fixture("gemma3_text");
    common::edit_json(&dir.path().join("config.json"), |c| {
        c["hidden_activation"] = "gelu".into();
    });
    let im = ImportedModel::open(dir.path(), &Device::Cpu).unwrap();
    let m = im.decoder().expect("a LLaMA-family decoder");
    assert!(m.forward_native(&[1, 2, 3], &[], false, true).is_none());
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

/// A stream that hands out rows of full-sequence biases and keeps every chunk it is given.
struct Recorder {
    biases: Vec<AttentionBias>,
    /// (layer, r0, attention [1,H,n,kt], scores).
    chunks: Vec<(usize, usize, Tensor, Tensor)>,
    layers_done: usize,
}

impl RowStream for Recorder {
    fn bias(
        &mut self,
        l: usize,
        r0: usize,
        n: usize,
        kt: usize,
    ) -> candle_core::Result<AttentionBias> {
        let cut = |x: &Tensor| x.narrow(2, r0, n)?.narrow(3, 0, kt)?.contiguous();
        let b = &self.biases[l];
        Ok(AttentionBias {
            additive: cut(&b.additive)?,
            tau: b.tau,
            mixture: match &b.mixture {
                Some((lam, local)) => Some((*lam, cut(local)?)),
                None => None,
            },
            extra: b.extra.as_ref().map(cut).transpose()?,
        })
    }
    fn rows(&mut self, l: usize, r0: usize, a: &Tensor, z: &Tensor) -> Result<(), ModelError> {
        self.chunks.push((l, r0, a.clone(), z.clone()));
        Ok(())
    }
    fn layer_done(&mut self, l: usize) -> Result<(), ModelError> {
        assert_eq!(l, self.layers_done, "layers in order");
        self.layers_done += 1;
        Ok(())
    }
}

/// The native streamed forward against candle's dense forward, chunk by chunk, in modes A–D
/// (with rules in two); returns the worst (attention, scores) differences.
fn compare_rows(m: &GgufLlama, ids: &[u32], chunk: usize) -> (f32, f32) {
    let masks = masks_for(m, &parity_blocks(m.config.vocab), ids);
    let (h, n) = (m.config.heads, ids.len());
    let mut out = (0f32, 0f32);
    for (dial, rules) in common::native_check_dials() {
        let mut biases = sequence_biases(m, &masks, &dial, &Device::Cpu).unwrap();
        if rules {
            let extra = common::rules_extra(h, n);
            for b in &mut biases {
                b.extra = Some(extra.clone());
            }
        }
        let want = m.forward_candle(ids, &biases, true).unwrap();
        let mut rec = Recorder {
            biases,
            chunks: Vec::new(),
            layers_done: 0,
        };
        m.forward_rows_native(ids, chunk, &mut rec)
            .expect("the native pass applies on the CPU")
            .unwrap();
        assert_eq!(rec.layers_done, m.config.layers);
        assert_eq!(rec.chunks.len(), m.config.layers * n.div_ceil(chunk));
        for (l, r0, a, z) in &rec.chunks {
            let (_, _, rows, kt) = a.dims4().unwrap();
            assert_eq!(kt, r0 + rows, "a chunk sees the keys up to its last row");
            let cut = |x: &Tensor| x.narrow(2, *r0, rows).unwrap().narrow(3, 0, kt).unwrap();
            out.0 = out.0.max(worst(a, &cut(&want.attention[*l])));
            out.1 = out.1.max(worst(z, &cut(&want.scores[*l])));
        }
    }
    out
}

#[test]
fn the_native_streamed_forward_matches_candle_chunk_by_chunk() {
    for name in NATIVE_FOLDERS {
        let im = ImportedModel::open(&common::family_fixture(name), &Device::Cpu).unwrap();
        let m = im.decoder().expect("a LLaMA-family decoder");
        let ids: Vec<u32> = (0..23u32)
            .map(|i| (i * 5 + 1) % m.config.vocab as u32)
            .collect();
        for chunk in [1, 5, 23, 64] {
            let (da, dz) = compare_rows(m, &ids, chunk);
            eprintln!("{name}, chunks of {chunk}: attention {da:.2e}, scores {dz:.2e}");
            assert!(da < 1e-5 && dz < 1e-4, "{name}, chunks of {chunk}");
        }
    }
    let Some(path) = common::model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m = GgufLlama::open(&path, &Device::Cpu).unwrap();
    let ids = m
        .encode("To be, or not to be, that is the question: whether 'tis nobler in the mind")
        .unwrap();
    let (da, dz) = compare_rows(&m, &ids, 7);
    eprintln!("SmolLM2, chunks of 7: attention {da:.2e}, scores {dz:.2e}");
    assert!(da < 1e-4 && dz < 1e-3);
}

/// The studio's preview of a dial change (bf16 weight products, `GgufLlama::preview`) against
/// the exact pass: attention within 0.05 everywhere, on the tiny LLaMA, Qwen2 and Qwen3 folders
/// (q/k/v biases, odd sizes, q/k norms, heads wider than d / heads) and on SmolLM2 when
/// fetched. It is offered exactly where the CPU has
/// AVX-512 BF16. The exact pass without logits (which skips the last layer's output) gives the
/// same attention as the pass with them.
#[test]
fn the_bf16_preview_stays_close_to_the_exact_pass() {
    let mut models: Vec<ImportedModel> = [
        "llama",
        "qwen2",
        "qwen3",
        "gemma2",
        "gemma3_text",
        "olmo2",
        "stablelm",
        "olmo",
    ]
    .iter()
    .map(|n| ImportedModel::open(&common::family_fixture(n), &Device::Cpu).unwrap())
    .collect();
    if let Some(p) = common::model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") {
        models.push(ImportedModel::open(&p, &Device::Cpu).unwrap());
    }
    let available = localist::model::native::bf16::available();
    for im in &models {
        let m = im.decoder().expect("a LLaMA-family decoder");
        let ids: Vec<u32> = (0..37u32)
            .map(|i| (i * 11 + 5) % m.config.vocab as u32)
            .collect();
        let blocks = parity_blocks(m.config.vocab);
        let dial = DialSetting::bias(0.7);
        let biases = sequence_biases(m, &masks_for(m, &blocks, &ids), &dial, &Device::Cpu).unwrap();
        let full = m.forward_biased(&ids, &biases, false).unwrap();
        let exact = m.forward_attention(&ids, &biases, false).unwrap();
        for (a, b) in exact.attention.iter().zip(&full.attention) {
            assert_eq!(
                flat(a),
                flat(b),
                "the last layer's attention without logits"
            );
        }
        let preview = im.preview();
        assert_eq!(
            preview.is_some(),
            available,
            "offered exactly where the CPU has it"
        );
        let Some(p) = preview else { continue };
        let fast = p.forward_attention(&ids, &biases, false).unwrap();
        let mut worst_abs = 0f32;
        for (a, b) in fast.attention.iter().zip(&exact.attention) {
            for (x, y) in flat(a).iter().zip(flat(b)) {
                worst_abs = worst_abs.max((x - y).abs());
            }
        }
        eprintln!(
            "{}: preview attention within {worst_abs:.4}",
            m.path.display()
        );
        assert!(worst_abs < 0.05, "{worst_abs}");
        // Not the exact numbers: the preview is a different computation.
        assert!(worst_abs > 0.0);
    }
}
