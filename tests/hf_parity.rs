//! Parity of our forward passes on real pretrained weights with the reference implementation
//! (transformers, f32), on the models `scripts/fetch_models.sh` unpacks into `models/`.
//! `.ci/run` fetches them and sets LOCALIST_REQUIRE_MODELS=1, so in CI a missing model fails;
//! elsewhere the tests say they were skipped.

use std::path::PathBuf;

use candle_core::Device;
use localist::hf::bert::Bert;

/// `models/DIR/FILE`, or None (said) when it is missing outside CI.
fn model_file(dir: &str, file: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(dir)
        .join(file);
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("LOCALIST_REQUIRE_MODELS").is_err(),
        "{} is missing: run scripts/fetch_models.sh",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (run scripts/fetch_models.sh)",
        path.display()
    );
    None
}

#[test]
fn minilm_matches_the_reference_embedding() {
    let Some(dir) = model_file("all-MiniLM-L6-v2", "model.safetensors")
        .and_then(|f| f.parent().map(PathBuf::from))
    else {
        return;
    };
    let bert = Bert::open(&dir, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"));
    let ids = bert
        .encode("Attention is all you need.")
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(ids, vec![101, 3086, 2003, 2035, 2017, 2342, 1012, 102]);
    let (mean, norm) = bert
        .mean_pooled(&ids, None)
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
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("pytorch_model.bin"), b"not unpickled")
        .unwrap_or_else(|e| panic!("{e}"));
    let err = match Bert::open(dir.path(), &Device::Cpu) {
        Ok(_) => panic!("opened a folder without safetensors"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("only model.safetensors is supported"), "{err}");
    assert!(err.contains("never loaded"), "{err}");
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

#[test]
fn the_dial_acts_on_smollm2_without_retraining() {
    use localist::hf::eval::eval_decoder;
    use localist::model::blocks::BlockMap;
    use localist::model::dial::DialSetting;
    let Some(path) = model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let m = localist::hf::gguf_llama::GgufLlama::open(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{e:#}"));
    // Two blocks by token id parity: the plumbing, not the semantics, is under test here.
    let pairs: Vec<(u32, String)> = (0..m.config.vocab as u32)
        .map(|id| (id, if id % 2 == 0 { "even" } else { "odd" }.to_string()))
        .collect();
    let blocks = BlockMap::from_assignments(m.config.vocab, &pairs, "parity");
    let ids = m
        .encode("To be, or not to be, that is the question: whether 'tis nobler in the mind")
        .unwrap_or_else(|e| panic!("{e:#}"));
    let t = ids.len() - 1;
    // λ = 0 reproduces the undialled logits.
    let plain = m.forward(&ids, None).unwrap_or_else(|e| panic!("{e:#}"));
    let zero = localist::hf::eval::dial_biases(
        &blocks.masks(&ids),
        &DialSetting::bias(0.0),
        m.config.layers,
        &Device::Cpu,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dialled = m
        .forward(&ids, Some(&zero))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let diff = (plain.logits - dialled.logits)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(diff < 1e-5, "λ = 0 changed the logits by {diff}");
    // λ = 1 leaves no attention off the relevant blocks and no NaN; λ = 0.5 lies between.
    let rows = eval_decoder(
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
    assert!(rows.iter().all(|r| r.perplexity.is_finite()));
    assert!(rows[2].epsilon < 1e-6, "ε at λ = 1: {}", rows[2].epsilon);
    assert!(rows[0].epsilon > rows[1].epsilon && rows[1].epsilon > rows[2].epsilon);
}
