//! Hugging Face folders whose weights are `pytorch_model.bin` (as OPT, CodeGen and most models
//! exported before 2023 are published), read weights-only (`src/hf/torch_bin`): the same
//! logits as the same weights in safetensors, for a plain protocol-2 file (OPT-350m), protocol 4
//! (CodeGen), a strided view and a storage shared by two tensors (GPT-2) and two `.bin` shards
//! with their index (LLaMA); every dtype, offset and stride of `views.bin` read to its known
//! value; and damaged files refused, naming the file, never a panic. The fixtures are written
//! by `scripts/make_torch_bin_fixtures.py` with torch.save; the hostile files are cases of
//! `tests/hostile/hf-bin-*`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use common::{max_diff, open_imported as open, open_imported_err as open_err};
use localist::data::tokenizer::Tokenizer;

fn bin_fixture(name: &str) -> PathBuf {
    common::root().join("tests/fixtures/torch_bin").join(name)
}

/// A folder with family fixture `family`'s config and tokenizer and the `.bin` weights of
/// `tests/fixtures/torch_bin/family` in place of its `model.safetensors`.
fn bin_folder(family: &str) -> tempfile::TempDir {
    bin_folder_of(family, family)
}

/// [`bin_folder`] with the weights of `tests/fixtures/torch_bin/weights`.
fn bin_folder_of(family: &str, weights: &str) -> tempfile::TempDir {
    let dir = common::copy_family_fixture(family);
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    common::copy_files(&bin_fixture(weights), dir.path());
    dir
}

/// The logits of the model at `dir` on its reference text.
fn logits(dir: &Path, text: &str) -> Vec<f32> {
    let m = open(dir);
    let ids = m.tokenizer().encode(text);
    let out = m.model().forward_biased(&ids, &[], false).unwrap();
    out.logits.flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

#[test]
fn a_pytorch_model_bin_gives_the_logits_of_the_same_weights_in_safetensors() {
    let text = "The quick brown fox jumps over the lazy dog, then sleeps.";
    for (family, weights) in [
        ("opt_350m", "opt_350m"),
        ("codegen", "codegen"),
        ("gpt2", "gpt2"),
        ("gpt2", "gpt2_legacy"),
        ("llama", "llama"),
    ] {
        let dir = bin_folder_of(family, weights);
        let m = open(dir.path());
        assert!(
            m.kind_label()
                .ends_with("(Hugging Face pytorch_model.bin, read weights-only)"),
            "{family}: {}",
            m.kind_label()
        );
        drop(m);
        let want = logits(&common::family_fixture(family), text);
        let got = logits(dir.path(), text);
        assert_eq!(got.len(), want.len(), "{family}");
        let d = max_diff(&got, &want);
        eprintln!("{weights}: pytorch_model.bin against model.safetensors, max |Δ| {d:e}");
        assert_eq!(d, 0.0, "{weights}: the same weights give other logits");
    }
}

#[test]
fn a_bin_file_inside_its_folder_opens_the_folder_and_a_loose_one_is_refused() {
    let dir = bin_folder("opt_350m");
    let m = open(&dir.path().join("pytorch_model.bin"));
    assert!(m.kind_label().starts_with("OPT"), "{}", m.kind_label());
    let loose = tempfile::tempdir().unwrap();
    let bin = loose.path().join("pytorch_model.bin");
    std::fs::copy(bin_fixture("opt_350m").join("pytorch_model.bin"), &bin).unwrap();
    let err = open_err(&bin);
    assert!(
        err.contains("pytorch_model.bin") && err.contains("on its own is not opened"),
        "{err}"
    );
    let err = open_err(loose.path());
    assert!(
        err.contains("pytorch_model.bin but no config.json"),
        "{err}"
    );
}

/// The model's hash (what audit reports name) covers the `.bin` weights: each shard of the
/// LLaMA folder, changed, changes it.
#[test]
fn the_model_hash_covers_every_bin_shard() {
    let dir = bin_folder("llama");
    let first = localist::hf::model_sha256(dir.path()).unwrap();
    assert_ne!(
        first,
        localist::hf::model_sha256(&common::family_fixture("llama")).unwrap()
    );
    let mut seen = vec![first];
    for shard in [
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    ] {
        let path = dir.path().join(shard);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 30;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let sha = localist::hf::model_sha256(dir.path()).unwrap();
        assert!(!seen.contains(&sha), "{shard}: the hash did not change");
        seen.push(sha);
    }
}

#[test]
fn views_bin_reads_every_dtype_offset_and_stride_to_its_value() {
    views_read_right(&bin_fixture("views.bin"));
    views_read_right(&bin_fixture("views_legacy.bin"));
}

/// A training checkpoint's weights under `model`, beside an optimizer's tensors: only the
/// weights are the state dict, and the old format's list of storages, which holds the
/// optimizer's too, is walked past them.
#[test]
fn the_weights_under_model_of_a_training_checkpoint_are_read() {
    use localist::hf::torch_bin;
    for file in ["nested.bin", "nested_legacy.bin"] {
        let path = bin_fixture(file);
        let names: Vec<String> = torch_bin::declared(&path).unwrap().into_keys().collect();
        assert_eq!(names, ["w"], "{file}");
        let loaded = torch_bin::load(&path, &Device::Cpu, |_| true).unwrap();
        let w = loaded[0].1.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let want: Vec<f32> = (6..18).map(|v| v as f32).collect();
        assert_eq!(w, want, "{file}");
    }
}

fn views_read_right(path: &Path) {
    use localist::hf::torch_bin;
    let declared = torch_bin::declared(path).unwrap();
    let dtypes: Vec<(&str, &str)> = declared
        .iter()
        .map(|(k, v)| (k.as_str(), v.dtype.as_str()))
        .collect();
    assert!(dtypes.contains(&("bf16", "BF16")) && dtypes.contains(&("i64", "I64")));
    let loaded = torch_bin::load(path, &Device::Cpu, |_| true).unwrap();
    let get = |name: &str| {
        let t = &loaded.iter().find(|(n, _)| n == name).unwrap().1;
        let v = t.to_dtype(DType::F64).unwrap().flatten_all().unwrap();
        (t.dims().to_vec(), v.to_vec1::<f64>().unwrap())
    };
    // base = arange(24).reshape(4, 6): element (r, c) is 6r + c.
    let base = |r: usize, c: usize| (6 * r + c) as f64;
    let grid = |rows: &[usize], cols: &[usize], t: bool| -> Vec<f64> {
        let mut out = Vec::new();
        for &a in rows {
            for &b in cols {
                out.push(if t { base(b, a) } else { base(a, b) });
            }
        }
        out
    };
    assert_eq!(
        get("f32"),
        (vec![4, 6], grid(&[0, 1, 2, 3], &[0, 1, 2, 3, 4, 5], false))
    );
    assert_eq!(
        get("f32_t"),
        (vec![6, 4], grid(&[0, 1, 2, 3, 4, 5], &[0, 1, 2, 3], true))
    );
    assert_eq!(
        get("f32_row"),
        (vec![6], grid(&[2], &[0, 1, 2, 3, 4, 5], false))
    );
    assert_eq!(
        get("f32_cols"),
        (vec![4, 2], grid(&[0, 1, 2, 3], &[1, 3], false))
    );
    assert_eq!(
        get("f16"),
        (vec![2, 6], grid(&[1, 2], &[0, 1, 2, 3, 4, 5], false))
    );
    assert_eq!(
        get("bf16"),
        (vec![3, 4], grid(&[0, 2, 4], &[0, 1, 2, 3], true))
    );
    assert_eq!(
        get("f64"),
        (vec![6], grid(&[3], &[0, 1, 2, 3, 4, 5], false))
    );
    assert_eq!(get("i64"), (vec![5], vec![0.0, 1.0, 2.0, 3.0, 4.0]));
    assert_eq!(get("empty"), (vec![0, 3], vec![]));
}

/// The pickle's first 1,500 bytes overwritten (five values every third byte), the file cut at
/// 40 lengths, and its last 400 bytes (the zip directory, or the old format's last storage)
/// changed.
fn damaged_copies(good: &[u8]) -> Vec<Vec<u8>> {
    let start = find(good, b"\x80\x02").unwrap();
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for at in (start..good.len().min(start + 1500)).step_by(3) {
        for x in [0x00u8, 0xff, b'R', b'(', b'Q'] {
            let mut b = good.to_vec();
            b[at] = x;
            cases.push(b);
        }
    }
    for cut in (0..good.len()).step_by(good.len() / 40) {
        cases.push(good[..cut].to_vec());
    }
    for at in (good.len() - 400..good.len()).step_by(7) {
        let mut b = good.to_vec();
        b[at] ^= 0x5a;
        cases.push(b);
    }
    cases
}

/// Damaged copies of GPT-2's `.bin`, as a zip archive and in the format before PyTorch 1.6:
/// each opens or is refused naming the file; none panics or runs away.
#[test]
fn a_damaged_pytorch_model_bin_is_refused_naming_it_and_never_panics() {
    for weights in ["gpt2", "gpt2_legacy"] {
        let good = std::fs::read(bin_fixture(weights).join("pytorch_model.bin")).unwrap();
        let dir = bin_folder_of("gpt2", weights);
        let bin = dir.path().join("pytorch_model.bin");
        let cases = damaged_copies(&good);
        let (mut opened, mut refused) = (0, 0);
        for b in &cases {
            std::fs::write(&bin, b).unwrap();
            match localist::hf::ImportedModel::open(dir.path(), &Device::Cpu) {
                Ok(_) => opened += 1,
                Err(e) => {
                    let e = format!("{e:#}");
                    assert!(e.contains("pytorch_model.bin"), "{e}");
                    refused += 1;
                }
            }
        }
        eprintln!(
            "{weights}: {} damaged files: {opened} opened, {refused} refused",
            cases.len()
        );
        assert!(refused > cases.len() / 2);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
