//! Fine-tuning an imported decoder towards its blocks (issue 17): the training forward against
//! the inference forward, gradients against finite differences (and none for frozen weights),
//! a run that lowers the off-block mass, and adapters as files (reopened on their base, refused
//! on another).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;
use common::edit_json;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use localist::hf::adapter::{open_adapted, save_adapter, Adapter, AdapterSpec, BaseRef};
use localist::hf::gguf_llama::{NoDelta, ProjectionDelta};
use localist::hf::ImportedModel;
use localist::model::blocks::BlockMap;
use localist::train::finetune::{FineTuneConfig, FineTuner};
use localist::train::penalty::{group_lasso, GroupWeights, PenaltyTensors};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/families")
        .join(name)
}

fn ids(n: usize, vocab: u32) -> Vec<u32> {
    // A text-like stream: a few recurring phrases with noise, so there is something to learn.
    let mut rng = localist::analysis::rng::SplitMix64::new(7);
    let phrases: Vec<Vec<u32>> = (0..12)
        .map(|_| {
            (0..6)
                .map(|_| 3 + rng.below(vocab as usize - 3) as u32)
                .collect()
        })
        .collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.extend_from_slice(&phrases[rng.below(phrases.len())]);
    }
    out.truncate(n);
    out
}

fn blocks(m: &ImportedModel) -> BlockMap {
    m.kmeans_blocks(&m.tokenizer(), 4, 0).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

#[test]
fn the_training_forward_equals_the_inference_forward() {
    // Every decoder folder, and GPT-NeoX with its MLP after attention.
    let names = common::DECODER_FOLDERS
        .into_iter()
        .chain(["gpt_neox_sequential"]);
    for name in names {
        let m = ImportedModel::open(&fixture(name), &Device::Cpu).unwrap();
        let d = m.trainable().unwrap();
        let x = ids(24, 300);
        let inf = m.model().forward_biased(&x, &[], false).unwrap();
        let tr = d
            .train_forward(
                &Tensor::from_vec(x.clone(), (1, 24), &Device::Cpu).unwrap(),
                &NoDelta,
            )
            .unwrap();
        let logits = inf.logits.squeeze(0).unwrap();
        assert!(max_diff(&logits, &tr.logits) < 1e-4, "{name}: logits");
        assert_eq!(inf.attention.len(), tr.attention.len(), "{name}");
        for (a, b) in inf.attention.iter().zip(&tr.attention) {
            assert!(max_diff(a, b) < 1e-5, "{name}: attention");
        }
        // One query per head and position, of the head's width.
        let dims = m.model().dims();
        assert_eq!(tr.queries.len(), dims.layers, "{name}");
        let q = tr.queries[0].dims4().unwrap();
        assert_eq!((q.0, q.1, q.2), (1, dims.heads, 24), "{name}: queries");
    }
}

/// A projection read and written back through the family's interface is the same model, and
/// a changed one changes it (GPT-2's q, k and v are slices of one fused matrix).
#[test]
fn projections_round_trip_on_every_family() {
    use localist::hf::gguf_llama::Projection;
    for name in [
        "llama", "gpt2", "qwen3", "phi3", "gpt_neox", "gpt_neo", "phi", "opt", "bloom", "mpt",
        "gptj",
    ] {
        let mut m = ImportedModel::open(&fixture(name), &Device::Cpu).unwrap();
        let x = ids(16, 300);
        let before = m.model().forward_biased(&x, &[], false).unwrap().logits;
        let d = m.trainable_mut().unwrap();
        for p in [
            Projection::Q,
            Projection::K,
            Projection::V,
            Projection::O,
            Projection::Down,
        ] {
            let w = d.projection(1, p).unwrap();
            d.replace_projection(1, p, w).unwrap();
        }
        let same = m.model().forward_biased(&x, &[], false).unwrap().logits;
        assert!(max_diff(&before, &same) == 0.0, "{name}");
        let d = m.trainable_mut().unwrap();
        let k0 = d.projection(0, Projection::K).unwrap();
        let bigger = (d.projection(0, Projection::V).unwrap() * 1.5).unwrap();
        d.replace_projection(0, Projection::V, bigger.clone())
            .unwrap();
        assert!(max_diff(&bigger, &d.projection(0, Projection::V).unwrap()) == 0.0);
        // Its neighbours in GPT-2's fused matrix are untouched.
        assert!(max_diff(&k0, &d.projection(0, Projection::K).unwrap()) == 0.0);
        let changed = m.model().forward_biased(&x, &[], false).unwrap().logits;
        assert!(
            max_diff(&before, &changed) > 1e-4,
            "{name}: V changed nothing"
        );
        let wrong = Tensor::zeros((3, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let err = m
            .trainable_mut()
            .unwrap()
            .replace_projection(0, Projection::K, wrong)
            .unwrap_err()
            .to_string();
        assert!(err.contains("attn_k"), "{name}: {err}");
    }
    // GPT-2 has no gate: named, with what it has.
    let m = ImportedModel::open(&fixture("gpt2"), &Device::Cpu).unwrap();
    let spec = AdapterSpec::parse("lora:2:ffn_gate", 2).unwrap();
    let err = spec.check_on(m.trainable().unwrap()).unwrap_err();
    assert!(err.contains("ffn_gate") && err.contains("c_attn"), "{err}");
}

/// CE + penalty of one batch through `delta`.
fn loss(m: &ImportedModel, blocks: &BlockMap, delta: &dyn ProjectionDelta) -> Tensor {
    let d = m.trainable().unwrap();
    let x = ids(33, 300);
    let xs = Tensor::from_vec(x[..32].to_vec(), (1, 32), &Device::Cpu).unwrap();
    let ys = Tensor::from_vec(x[1..].to_vec(), 32, &Device::Cpu).unwrap();
    let out = d.train_forward(&xs, delta).unwrap();
    let ce = candle_nn::loss::cross_entropy(&out.logits, &ys).unwrap();
    let pt = PenaltyTensors::new(
        &[blocks.masks(&x[..32])],
        blocks.num_blocks(),
        GroupWeights::Unit,
        false,
        &Device::Cpu,
    )
    .unwrap();
    let mut total = ce;
    for a in &out.attention {
        total = (total + group_lasso(a, &pt, 1e-12).unwrap()).unwrap();
    }
    total
}

#[test]
fn adapter_gradients_match_finite_differences() {
    for (family, text) in [
        ("llama", "lora:2:attn_q,attn_k,attn_v,ffn_down"),
        ("llama", "qk"),
        // Qwen3's queries and keys go through their own RMSNorm before RoPE.
        ("qwen3", "lora:2:attn_q,attn_k,attn_v,attn_output"),
        ("qwen3", "qk"),
        (
            "gpt2",
            "lora:2:attn_q,attn_k,attn_v,attn_output,ffn_up,ffn_down",
        ),
        ("gpt2", "qk"),
        // GPT-NeoX: RoPE on a quarter of each head, the MLP beside attention.
        (
            "gpt_neox",
            "lora:2:attn_q,attn_k,attn_v,attn_output,ffn_up,ffn_down",
        ),
        ("gpt_neox_sequential", "qk"),
        ("gpt_neo", "lora:2:attn_q,attn_v,ffn_up"),
        ("phi", "lora:2:attn_q,attn_k,attn_output,ffn_down"),
        // Gemma 2: soft-capped scores, post-norms, GELU; Gemma 3: q/k norms, two RoPE bases.
        (
            "gemma2",
            "lora:2:attn_q,attn_k,attn_output,ffn_gate,ffn_down",
        ),
        ("gemma3_text", "qk"),
        // Granite: four multipliers.
        (
            "granite",
            "lora:2:attn_q,attn_v,attn_output,ffn_up,ffn_down",
        ),
        // SmolLM3: a layer without RoPE.
        ("smollm3", "lora:2:attn_q,attn_k,attn_v,ffn_gate"),
        // LongRoPE with a partial rotation (q and k reordered at load), and YaRN.
        ("phi3_longrope", "qk"),
        ("llama_yarn", "lora:2:attn_q,attn_k,ffn_down"),
        // LayerNorms (with biases; without weights), q/k/v biases, a quarter turned.
        ("stablelm", "lora:2:attn_q,attn_k,attn_v,ffn_up"),
        ("olmo", "lora:2:attn_q,attn_output,ffn_gate"),
        // BLOOM: ALiBi, normed embeddings, the fused projection.
        ("bloom", "lora:2:attn_q,attn_k,attn_output,ffn_up"),
        // OLMo 2: no pre-norms, q/k norms over all heads.
        ("olmo2", "lora:2:attn_q,attn_k,attn_v,ffn_up"),
    ] {
        adapter_gradients_on(&fixture(family), text);
    }
    // OPT (q, k and v apart with biases, positions two rows on), its ReLU MLP run as a GELU
    // here: central differences over a step of 1e-2 cross ReLU's kinks (2% off on the
    // fixture), and ReLU's backward is candle's own.
    let dir = common::copy_family_fixture("opt");
    edit_json(&dir.path().join("config.json"), |c| {
        c["activation_function"] = "gelu".into()
    });
    adapter_gradients_on(
        dir.path(),
        "lora:2:attn_q,attn_v,attn_output,ffn_up,ffn_down",
    );
}

fn adapter_gradients_on(dir: &Path, text: &str) {
    let m = ImportedModel::open(dir, &Device::Cpu).unwrap();
    let b = blocks(&m);
    let d = m.trainable().unwrap();
    {
        let spec = AdapterSpec::parse(text, 2).unwrap();
        let adapter = Adapter::new(d, spec, 1).unwrap();
        // Move every change off zero so each part has a gradient.
        let mut rng = localist::analysis::rng::SplitMix64::new(3);
        for (_, v) in adapter.params.iter() {
            let t = v.as_tensor();
            let r: Vec<f32> = (0..t.elem_count())
                .map(|_| (rng.normal() * 0.05) as f32)
                .collect();
            let r = Tensor::from_vec(r, t.shape(), &Device::Cpu).unwrap();
            v.set(&(t + r).unwrap()).unwrap();
        }
        let l0 = loss(&m, &b, &adapter);
        let grads = l0.backward().unwrap();
        for (name, v) in adapter.params.iter() {
            let g = grads.get(v.as_tensor()).expect(name);
            let gv = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                gv.iter().any(|x| x.abs() > 0.0),
                "{text}: {name} got no gradient"
            );
            // Central differences on the largest-gradient entry.
            let (k, &gk) = gv
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap();
            let base = v
                .as_tensor()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let h = 1e-2f32;
            let at = |delta: f32| {
                let mut w = base.clone();
                w[k] += delta;
                v.set(&Tensor::from_vec(w, v.as_tensor().shape(), &Device::Cpu).unwrap())
                    .unwrap();
                loss(&m, &b, &adapter).to_scalar::<f32>().unwrap()
            };
            let fd = (at(h) - at(-h)) / (2.0 * h);
            at(0.0);
            assert!(
                (fd - gk).abs() <= 2e-2 * gk.abs().max(1e-2),
                "{text}: {name}[{k}]: backward {gk}, finite differences {fd}"
            );
        }
    }
}

fn base_ref(path: &Path, m: &ImportedModel) -> BaseRef {
    BaseRef {
        path: path.to_path_buf(),
        sha256: localist::hf::model_sha256(path).unwrap(),
        arch: m.arch_label().into(),
    }
}

#[test]
fn fine_tuning_lowers_the_off_block_mass_and_reopens_as_an_adapter() {
    let base_dir = common::copy_family_fixture("llama");
    let m = ImportedModel::open(base_dir.path(), &Device::Cpu).unwrap();
    let r = base_ref(base_dir.path(), &m);
    let b = blocks(&m);
    let mut cfg = FineTuneConfig::new(AdapterSpec::parse("qk", 2).unwrap());
    cfg.lambda_train = 1.0;
    cfg.eta = 4.0;
    cfg.lr = 3e-2;
    cfg.steps = 200;
    cfg.seq_len = 32;
    cfg.batch_size = 4;
    let mut ft = FineTuner::new(m, r, b.clone(), ids(6000, 300), cfg).unwrap();
    let before = ft.evaluate(8).unwrap();
    let mut pen = Vec::new();
    for _ in 0..200 {
        pen.push(ft.train_step().unwrap().penalty);
    }
    let after = ft.evaluate(8).unwrap();
    assert!(
        after.epsilon < 0.8 * before.epsilon,
        "ε {:.4} → {:.4} (penalty {:?} → {:?})",
        before.epsilon,
        after.epsilon,
        pen.first(),
        pen.last()
    );
    // The untuned model is measured on W₀ and the tuned one is back after it.
    let untuned = ft
        .evaluate_base(&[localist::model::dial::DialSetting::default()], 8)
        .unwrap();
    assert!((untuned[0].epsilon - before.epsilon).abs() < 1e-6);
    let again = ft.evaluate(8).unwrap();
    assert!((again.epsilon - after.epsilon).abs() < 1e-6);

    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tuned");
    save_adapter(&dir, &ft.info(None, Some(&after)), &ft.adapter, &ft.blocks).unwrap();
    // Reopened, it is the base with the changes merged: the same held-out numbers.
    let opened = ImportedModel::open(&dir, &Device::Cpu).unwrap();
    assert!(matches!(opened, ImportedModel::Adapted(_)));
    let saved = opened.saved_blocks(&opened.tokenizer()).unwrap().unwrap();
    assert_eq!(saved, b);
    let x = ids(24, 300);
    let merged = opened
        .decoder()
        .unwrap()
        .forward_with(&x, &[], false)
        .unwrap();
    // Between steps the run's base holds W₀ + Δ: the same model.
    let live = ft
        .base
        .decoder()
        .unwrap()
        .forward_with(&x, &[], false)
        .unwrap();
    assert!(max_diff(&merged.logits, &live.logits) < 1e-4);
    // The file holds only what changed: the adapter's tensors, none of the base's.
    let saved =
        localist::model::checkpoint::read_tensors(&dir.join("adapter.safetensors"), &Device::Cpu)
            .unwrap();
    let mut names: Vec<&String> = saved.keys().collect();
    names.sort();
    let want: Vec<&String> = ft.adapter.params.iter().map(|(n, _)| n).collect();
    assert_eq!(names, want);

    // Another base (one weight file changed) is refused, with both hashes.
    let f = base_dir.path().join("model.safetensors");
    let mut bytes = std::fs::read(&f).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&f, bytes).unwrap();
    let err = match open_adapted(&dir, &Device::Cpu) {
        Ok(_) => panic!("an adapter applied to another base"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("refusing") && err.contains(&ft.base_ref.sha256),
        "{err}"
    );
    // A damaged adapter names its file and tensor.
    std::fs::copy(fixture("llama").join("model.safetensors"), &f).unwrap();
    std::fs::write(dir.join("adapter.safetensors"), b"not a safetensors file").unwrap();
    let err = match open_adapted(&dir, &Device::Cpu) {
        Ok(_) => panic!("a damaged adapter opened"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("adapter.safetensors"), "{err}");
    // Ending the run gives the base back at W₀ (a second fine-tune starts from the base).
    let fresh = ImportedModel::open(&fixture("llama"), &Device::Cpu).unwrap();
    let want = fresh
        .decoder()
        .unwrap()
        .forward_with(&x, &[], false)
        .unwrap();
    let (back, _) = ft.into_base().unwrap();
    let got = back
        .decoder()
        .unwrap()
        .forward_with(&x, &[], false)
        .unwrap();
    assert!(max_diff(&want.logits, &got.logits) == 0.0);
    assert!(
        max_diff(&want.logits, &merged.logits) > 1e-3,
        "the fine-tune changed nothing"
    );
}

/// The rule penalty trains a pretrained decoder as it trains our own models: −log PF_mass on
/// the rows where a rule fires falls.
#[test]
fn fine_tuning_trains_towards_the_rules() {
    let m = ImportedModel::open(&fixture("llama"), &Device::Cpu).unwrap();
    let vocab = m.model().dims().vocab;
    // Two blocks over the ids the stream uses: "low" and "high".
    let pairs: Vec<(u32, String)> = (3..vocab as u32)
        .map(|id| (id, if id < 150 { "low" } else { "high" }.to_string()))
        .collect();
    let blocks = BlockMap::from_assignments(vocab, &pairs, "test");
    let set = localist::rules::parse::parse_rules(
        "rule hi_to_lo \"high attends to low\"\n  when query.block = high\n  target previous block low\n  layers all\n  heads all\n  fidelity 0.9\nend\n",
    )
    .unwrap();
    let rules = localist::rules::resolve(&set, &blocks, &m.tokenizer(), &[]).unwrap();
    let r = base_ref(&fixture("llama"), &m);
    let mut cfg = FineTuneConfig::new(AdapterSpec::parse("lora:4", 2).unwrap());
    cfg.lambda_train = 0.0;
    cfg.mu_rule = 1.0;
    cfg.lr = 3e-2;
    cfg.steps = 120;
    cfg.seq_len = 32;
    cfg.batch_size = 4;
    let mut ft = FineTuner::new(m, r, blocks, ids(6000, 300), cfg).unwrap();
    ft.rules = rules;
    let nll: Vec<f64> = (0..120)
        .map(|_| ft.train_step().unwrap().rule_nats)
        .collect();
    let first: f64 = nll[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = nll[110..].iter().sum::<f64>() / 10.0;
    assert!(first > 0.0, "the rule never fired");
    assert!(last < 0.7 * first, "rule penalty {first:.3} → {last:.3}");
}

/// The mass penalty is the metric: its value on a window equals the capture's ε there.
#[test]
fn the_mass_penalty_equals_the_measured_off_block_mass() {
    use localist::train::penalty::{off_block_keys, off_block_mass};
    let m = ImportedModel::open(&fixture("qwen2"), &Device::Cpu).unwrap();
    let b = blocks(&m);
    let x = ids(40, 300);
    let out = m
        .decoder()
        .unwrap()
        .forward_train(
            &Tensor::from_vec(x.clone(), (1, 40), &Device::Cpu).unwrap(),
            &NoDelta,
        )
        .unwrap();
    let off = off_block_keys(&[b.masks(&x)], &Device::Cpu).unwrap();
    let mut sum = 0.0f64;
    for a in &out.attention {
        sum += f64::from(off_block_mass(a, &off).unwrap().to_scalar::<f32>().unwrap());
    }
    let penalty = sum / out.attention.len() as f64;
    let cap = localist::model::capture::capture(
        m.model(),
        &b,
        &x,
        &localist::model::dial::DialSetting::default(),
    )
    .unwrap();
    let eps = cap.mean_off_block_mass(None);
    assert!(eps > 0.05, "ε {eps}: nothing to compare");
    assert!(
        (penalty - eps).abs() < 1e-5,
        "penalty {penalty} against ε {eps}"
    );
}

/// GPT-2 fine-tunes as the LLaMA family does: the off-block mass falls, and the adapter saved
/// on it reopens as the same model on its base.
#[test]
fn gpt2_fine_tunes_and_reopens_as_an_adapter() {
    let base_dir = common::copy_family_fixture("gpt2");
    let m = ImportedModel::open(base_dir.path(), &Device::Cpu).unwrap();
    let r = base_ref(base_dir.path(), &m);
    let b = blocks(&m);
    let mut cfg = FineTuneConfig::new(AdapterSpec::parse("lora:4", 2).unwrap());
    cfg.lambda_train = 1.0;
    cfg.eta = 4.0;
    cfg.lr = 3e-2;
    cfg.steps = 150;
    cfg.seq_len = 32;
    cfg.batch_size = 4;
    let mut ft = FineTuner::new(m, r, b, ids(6000, 300), cfg).unwrap();
    let before = ft.evaluate(8).unwrap();
    for _ in 0..150 {
        ft.train_step().unwrap();
    }
    let after = ft.evaluate(8).unwrap();
    assert!(
        after.epsilon < 0.8 * before.epsilon,
        "GPT-2: ε {:.4} → {:.4}",
        before.epsilon,
        after.epsilon
    );
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tuned-gpt2");
    save_adapter(&dir, &ft.info(None, Some(&after)), &ft.adapter, &ft.blocks).unwrap();
    let opened = ImportedModel::open(&dir, &Device::Cpu).unwrap();
    assert!(matches!(opened, ImportedModel::Adapted(_)));
    let x = ids(24, 300);
    let merged = opened.model().forward_biased(&x, &[], false).unwrap();
    let live = ft.base.model().forward_biased(&x, &[], false).unwrap();
    assert!(max_diff(&merged.logits, &live.logits) < 1e-4);
    let (back, _) = ft.into_base().unwrap();
    let plain = back.model().forward_biased(&x, &[], false).unwrap();
    assert!(
        max_diff(&plain.logits, &merged.logits) > 1e-3,
        "the fine-tune changed nothing"
    );
}

/// The anchor loss of SPEC §5 trains a pretrained decoder's queries towards their blocks'
/// anchor keys: it falls, the keys are trained with the adapter, and the run records μ_anc.
#[test]
fn fine_tuning_trains_the_anchor_loss() {
    for family in ["llama", "gpt2"] {
        let m = ImportedModel::open(&fixture(family), &Device::Cpu).unwrap();
        let r = base_ref(&fixture(family), &m);
        let b = blocks(&m);
        let mut cfg = FineTuneConfig::new(AdapterSpec::parse("lora:4", 2).unwrap());
        cfg.lambda_train = 0.0;
        cfg.mu_anchor = 1.0;
        cfg.lr = 3e-2;
        cfg.steps = 100;
        cfg.seq_len = 32;
        cfg.batch_size = 4;
        let k = b.num_blocks();
        let mut ft = FineTuner::new(m, r, b, ids(6000, 300), cfg).unwrap();
        let k0 = ft.anchors.get("anchors.0.keys").unwrap().copy().unwrap();
        let heads = ft.base.model().dims().heads;
        assert_eq!(
            k0.dims()[..2],
            [heads, k],
            "{family}: one key per head and block"
        );
        let nats: Vec<f64> = (0..100)
            .map(|_| ft.train_step().unwrap().anchor_nats)
            .collect();
        let first: f64 = nats[..10].iter().sum::<f64>() / 10.0;
        let last: f64 = nats[90..].iter().sum::<f64>() / 10.0;
        assert!(first > 0.0, "{family}: no anchor loss");
        assert!(
            last < 0.7 * first,
            "{family}: anchor loss {first:.3} → {last:.3}"
        );
        let k1 = ft.anchors.get("anchors.0.keys").unwrap();
        assert!(
            max_diff(&k0, &k1) > 1e-3,
            "{family}: the anchor keys did not train"
        );
        let info = ft.info(None, None);
        assert_eq!(info.training["mu_anchor"], 1.0);
    }
    // Off by default: no keys, no term.
    let m = ImportedModel::open(&fixture("llama"), &Device::Cpu).unwrap();
    let r = base_ref(&fixture("llama"), &m);
    let b = blocks(&m);
    let mut cfg = FineTuneConfig::new(AdapterSpec::parse("lora:4", 2).unwrap());
    cfg.seq_len = 32;
    let mut ft = FineTuner::new(m, r, b, ids(6000, 300), cfg).unwrap();
    assert!(ft.anchors.is_empty());
    assert_eq!(ft.train_step().unwrap().anchor_nats, 0.0);
}

/// `mass-own-block` counts attention on the sequence start as off-block unless the first token
/// is in the query's block (SPEC's ε does not), and a fine-tune lowers it.
#[test]
fn the_own_block_mass_counts_the_sequence_start() {
    use localist::train::finetune::LocalityPenalty;
    use localist::train::penalty::{off_block_keys, outside_own_block_keys};
    let m = ImportedModel::open(&fixture("llama"), &Device::Cpu).unwrap();
    let b = blocks(&m);
    let x = ids(32, 300);
    let masks = b.masks(&x);
    let plain = off_block_keys(std::slice::from_ref(&masks), &Device::Cpu).unwrap();
    let own = outside_own_block_keys(std::slice::from_ref(&masks), false, &Device::Cpu).unwrap();
    let keys = outside_own_block_keys(std::slice::from_ref(&masks), true, &Device::Cpu).unwrap();
    let keys = keys.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let plain = plain.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let own = own.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let mut checked = 0;
    for i in 1..32 {
        let other = masks.key_blocks[0] != masks.relevant_blocks[i];
        assert_eq!(plain[i * 32], 0.0, "SPEC's R(i) holds the first position");
        assert_eq!(own[i * 32], if other { 1.0 } else { 0.0 }, "row {i}");
        assert_eq!(own[i * 32 + i], 0.0, "the query itself is never off");
        for j in 1..i {
            assert_eq!(own[i * 32 + j], plain[i * 32 + j], "row {i} key {j}");
        }
        // mass-block-keys: only earlier keys of the block are on; itself is off; a row with
        // none of them is left out.
        let has = (0..i).any(|j| masks.key_blocks[j] == masks.relevant_blocks[i]);
        for j in 0..=i {
            let want = has && !(j < i && masks.key_blocks[j] == masks.relevant_blocks[i]);
            assert_eq!(
                keys[i * 32 + j],
                f32::from(u8::from(want)),
                "row {i} key {j}"
            );
        }
        checked += usize::from(other);
    }
    assert!(
        checked > 0,
        "no row whose block differs from the first token's"
    );
    let r = base_ref(&fixture("llama"), &m);
    let mut cfg = FineTuneConfig::new(AdapterSpec::parse("qk", 2).unwrap());
    cfg.penalty = LocalityPenalty::MassOwnBlock;
    cfg.lambda_train = 1.0;
    cfg.eta = 4.0;
    cfg.lr = 3e-2;
    cfg.steps = 120;
    cfg.seq_len = 32;
    cfg.batch_size = 4;
    let mut ft = FineTuner::new(m, r, b, ids(6000, 300), cfg).unwrap();
    let pen: Vec<f64> = (0..120).map(|_| ft.train_step().unwrap().penalty).collect();
    let first: f64 = pen[..10].iter().sum::<f64>() / 10.0;
    let last: f64 = pen[110..].iter().sum::<f64>() / 10.0;
    assert!(last < 0.8 * first, "own-block mass {first:.3} → {last:.3}");
}

/// An adapter folder saved from a fine-tuner that has not trained (LoRA rank 2 on Q and K).
fn saved_adapter(base: &Path, dir: &Path) {
    let m = ImportedModel::open(base, &Device::Cpu).unwrap();
    let r = base_ref(base, &m);
    let b = blocks(&m);
    let mut cfg = FineTuneConfig::new(AdapterSpec::parse("lora:2", 2).unwrap());
    cfg.seq_len = 16;
    cfg.batch_size = 2;
    let ft = FineTuner::new(m, r, b, ids(600, 300), cfg).unwrap();
    save_adapter(dir, &ft.info(None, None), &ft.adapter, &ft.blocks).unwrap();
}

fn open_error(dir: &Path) -> String {
    match ImportedModel::open(dir, &Device::Cpu) {
        Ok(_) => panic!("{} opened", dir.display()),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn adapters_that_overflow_chain_or_repeat_a_target_are_refused_naming_their_file() {
    let base_dir = common::copy_family_fixture("llama");
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("a");
    saved_adapter(base_dir.path(), &dir);
    assert!(ImportedModel::open(&dir, &Device::Cpu).is_ok());

    // α/r beyond f32's range: finite tensors, infinite merged weights. Once opened and run
    // on NaN attention shown as rows of zeros.
    edit_json(&dir.join("adapter.json"), |v| {
        v["spec"]["change"]["alpha"] = serde_json::json!(1e39);
    });
    let e = open_error(&dir);
    assert!(
        e.contains("adapter.json") && e.contains("not finite"),
        "{e}"
    );

    // The same change named twice: "tensor … is missing" before.
    edit_json(&dir.join("adapter.json"), |v| {
        v["spec"]["change"]["alpha"] = serde_json::json!(2.0);
        let first = v["spec"]["targets"][0].clone();
        v["spec"]["targets"].as_array_mut().unwrap().push(first);
    });
    let e = open_error(&dir);
    assert!(e.contains("adapter.json") && e.contains("twice"), "{e}");

    // Adapters on adapters (a specialist on a fine-tuned base) open; a chain of 1,000
    // overflowed the stack, and past 8 levels one is refused.
    let mut below = out.path().join("good");
    saved_adapter(base_dir.path(), &below);
    for level in 1..=9 {
        let above = out.path().join(format!("level{level}"));
        saved_adapter(base_dir.path(), &above);
        let sha = localist::hf::model_sha256(&below).unwrap();
        edit_json(&above.join("adapter.json"), |v| {
            v["base"]["path"] = serde_json::json!(below);
            v["base"]["sha256"] = serde_json::json!(sha);
        });
        if level < 8 {
            assert!(
                ImportedModel::open(&above, &Device::Cpu).is_ok(),
                "level {level}"
            );
        } else {
            let e = open_error(&above);
            assert!(
                e.contains("stacked more than 8 levels deep"),
                "level {level}: {e}"
            );
        }
        below = above;
    }
}
