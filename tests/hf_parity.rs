//! Parity of our forward passes on real pretrained weights with the reference implementation
//! (transformers, f32), on the models `scripts/fetch_models.sh` unpacks into `models/`.
//! `.ci/run` fetches them and sets LOCALIST_REQUIRE_MODELS=1, so in CI a missing model fails;
//! elsewhere the tests say they were skipped.

use std::path::PathBuf;

use candle_core::Device;
use localist::hf::bert::Bert;

fn model_dir(name: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name);
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("LOCALIST_REQUIRE_MODELS").is_err(),
        "{} is missing: run scripts/fetch_models.sh",
        dir.display()
    );
    eprintln!(
        "skipped: {} is missing (run scripts/fetch_models.sh)",
        dir.display()
    );
    None
}

#[test]
fn minilm_matches_the_reference_embedding() {
    let Some(dir) = model_dir("all-MiniLM-L6-v2") else {
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
