//! Loaders the integration tests share: the repository root, the bundled sample models, and a
//! sample checkpoint with its tokenizer. Each test binary uses a part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod st;

use std::path::{Path, PathBuf};

use candle_core::Device;
use localist::data::tokenizer::{Tokenizer, TokenizerSpec};
use localist::model::checkpoint::{load_checkpoint, Checkpoint};

/// The tiny decoder folders of `tests/fixtures/families/` (made by
/// `scripts/make_family_fixtures.py`) that every path test and the training-forward check run
/// on: one per family and per feature that changes the forward.
pub const DECODER_FOLDERS: [&str; 32] = [
    "gpt2",
    "llama",
    "qwen2",
    "mistral",
    "qwen3",
    "phi3",
    "gpt_neox",
    "gpt_neo",
    "phi",
    "gemma",
    "gemma2",
    "gemma3_text",
    "olmo2",
    "opt",
    "bloom",
    "smollm3",
    "granite",
    "phi3_longrope",
    "llama_yarn",
    "stablelm",
    "olmo",
    "gemma3_vision",
    "gpt_bigcode",
    "falcon",
    "falcon_rw",
    "falcon_new",
    "mpt",
    "gptj",
    "opt_350m",
    "starcoder2",
    "codegen",
    "olmo3",
];

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A bundled sample model's folder (`sample_models/NAME`).
pub fn sample(name: &str) -> PathBuf {
    root().join("sample_models").join(name)
}

/// The tokenizer a checkpoint records.
pub fn tokenizer_of(ck: &Checkpoint) -> Box<dyn Tokenizer> {
    serde_json::from_value::<TokenizerSpec>(ck.meta.tokenizer.clone())
        .unwrap()
        .build()
        .unwrap()
}

/// A checkpoint folder loaded on the CPU, with its tokenizer.
pub fn load(dir: &Path) -> (Checkpoint, Box<dyn Tokenizer>) {
    let ck = load_checkpoint(dir, &Device::Cpu).unwrap();
    let tok = tokenizer_of(&ck);
    (ck, tok)
}

/// A bundled sample model loaded on the CPU, with its tokenizer.
pub fn load_sample(name: &str) -> (Checkpoint, Box<dyn Tokenizer>) {
    load(&sample(name))
}

/// `models/DIR/FILE` (a fetched pretrained model), or `None` (said) when it is missing outside
/// CI; with `LOCALIST_REQUIRE_MODELS` set (CI), a missing model is a failure.
pub fn model_file(dir: &str, file: &str) -> Option<PathBuf> {
    let path = root().join("models").join(dir).join(file);
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

/// A model family's test fixture (`tests/fixtures/families/NAME`).
pub fn family_fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/families").join(name)
}

/// What transformers computes for the LLaMA fixture folder under "llama3" RoPE scaling
/// (`tests/fixtures/llama3.json`, made by `scripts/make_gguf_fixture.py`).
pub struct Llama3Reference {
    /// The scaling's four settings, as the config writes them.
    pub scaling: serde_json::Value,
    /// The text (the LLaMA folder's reference text).
    pub text: String,
    /// Token ids of the reference text, `<s>` first.
    pub ids: Vec<u32>,
    /// [T][V]
    pub logits: Vec<Vec<f32>>,
    /// The first layer's attention, [H][T][T].
    pub attention_layer0: Vec<Vec<Vec<f32>>>,
}

/// The LLaMA-3 reference ([`Llama3Reference`]).
pub fn llama3_reference() -> Llama3Reference {
    let bytes = std::fs::read(root().join("tests/fixtures/llama3.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let field = |k: &str| r[k].clone();
    Llama3Reference {
        scaling: field("scaling"),
        text: serde_json::from_value(field("text")).unwrap(),
        ids: serde_json::from_value(field("ids")).unwrap(),
        logits: serde_json::from_value(field("logits")).unwrap(),
        attention_layer0: serde_json::from_value(field("attention_layer0")).unwrap(),
    }
}

/// `model`'s logits and first-layer attention on the reference ids against transformers'
/// under "llama3" scaling (1e-4, 1e-5); `what` names it in the messages.
pub fn assert_matches_llama3(model: &dyn localist::model::backend::AttentionModel, what: &str) {
    let r = llama3_reference();
    let out = model.forward_biased(&r.ids, &[], false).unwrap();
    let logits = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    let a0 = out.attention[0]
        .squeeze(0)
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let diff = |a: Vec<f32>, b: Vec<f32>| {
        assert_eq!(a.len(), b.len(), "{what}: shapes");
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let flat2 = |v: &[Vec<f32>]| v.concat();
    let dl = diff(flat2(&logits), flat2(&r.logits));
    let da = diff(
        a0.iter().flat_map(|h| flat2(h)).collect(),
        r.attention_layer0.iter().flat_map(|h| flat2(h)).collect(),
    );
    eprintln!("{what}: logits max |Δ| {dl:.2e}, layer-0 attention max |Δ| {da:.2e}");
    assert!(dl < 1e-4, "{what}: logits differ by {dl}");
    assert!(da < 1e-5, "{what}: attention differs by {da}");
}

/// Copy the files of folder `from` into folder `to` (which must exist).
pub fn copy_files(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// A copy of family fixture `name` in a new temporary folder.
pub fn copy_family_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_files(&family_fixture(name), dir.path());
    dir
}

/// The dial settings a native view pass is checked against candle's forward in: modes A–D at
/// λ = 0.6 under a γ = 2 schedule, each with whether a rules-style bias ([`rules_extra`]) is
/// added (modes B and D).
pub fn native_check_dials() -> Vec<(localist::model::dial::DialSetting, bool)> {
    use localist::analysis::dial::{DialMode, DialParams, LayerSchedule};
    [
        (DialMode::Bias, false),
        (DialMode::Mixture, true),
        (DialMode::Positional, false),
        (DialMode::Temperature, true),
    ]
    .into_iter()
    .map(|(mode, rules)| {
        let dial = localist::model::dial::DialSetting {
            params: DialParams {
                mode,
                lambda: 0.6,
                ..DialParams::default()
            },
            schedule: LayerSchedule::Power { gamma: 2.0 },
        };
        (dial, rules)
    })
    .collect()
}

/// A rules-style per-head bias [1, H, T, T] of varied values (−1.2 … 1.2).
pub fn rules_extra(heads: usize, n: usize) -> candle_core::Tensor {
    let extra: Vec<f32> = (0..heads * n * n)
        .map(|i| ((i % 13) as f32 - 6.0) * 0.2)
        .collect();
    candle_core::Tensor::from_vec(extra, (1, heads, n, n), &Device::Cpu).unwrap()
}

/// `dir/small.txt`: 40 lines of 30 words drawn from 60 by a fixed LCG, a corpus with nothing
/// to learn but its lines (a run on it overfits within a few hundred steps).
pub fn learned_by_heart(dir: &Path) -> PathBuf {
    let mut x: u64 = 5;
    let mut text = String::new();
    for _ in 0..40 {
        let line: Vec<String> = (0..30)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("w{:02}", (x >> 33) % 60)
            })
            .collect();
        text += &(line.join(" ") + "\n");
    }
    let corpus = dir.join("small.txt");
    std::fs::write(&corpus, text).unwrap();
    corpus
}

/// Run the real `localist` binary in `cwd`, candle's products on one thread.
pub fn localist_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_localist"))
        .args(args)
        .current_dir(cwd)
        .env("CANDLE_NUM_THREADS", "1")
        .output()
        .unwrap()
}

/// A run's standard error as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The run failed, and its standard error holds every one of `needles`.
pub fn assert_fails_with(o: &std::process::Output, needles: &[&str]) {
    assert!(
        !o.status.success(),
        "expected failure, got success: {}",
        stderr(o)
    );
    let err = stderr(o);
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
}

/// Read the JSON file at `path`, change it with `edit`, and write it back (indented).
pub fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// An imported model (a Hugging Face folder, a GGUF file), or a panic with the whole error.
pub fn open_imported(path: &Path) -> localist::hf::ImportedModel {
    localist::hf::ImportedModel::open(path, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The whole error of opening `path` as an imported model (a panic when it opens).
pub fn open_imported_err(path: &Path) -> String {
    match localist::hf::ImportedModel::open(path, &Device::Cpu) {
        Ok(_) => panic!("{} opened", path.display()),
        Err(e) => format!("{e:#}"),
    }
}

/// Largest |a − b| over two equally long runs of values.
pub fn max_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `m` against fixture `name`'s `reference_long.json` (a text past a LongRoPE model's original
/// context; transformers' logits and attention rows of its last positions only): asserts the
/// ids, and the logits and attention within 1e-4 and 1e-5; returns both differences.
pub fn assert_matches_long_reference(m: &localist::hf::ImportedModel, name: &str) -> (f32, f32) {
    let (dl, da) = long_reference_diff(m, name);
    assert!(
        dl < 1e-4,
        "{name}: logits past the original context differ by {dl}"
    );
    assert!(
        da < 1e-5,
        "{name}: attention past the original context differs by {da}"
    );
    (dl, da)
}

/// [`assert_matches_long_reference`]'s differences (logits, attention), not asserted.
pub fn long_reference_diff(m: &localist::hf::ImportedModel, name: &str) -> (f32, f32) {
    let bytes = std::fs::read(family_fixture(name).join("reference_long.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let text: String = serde_json::from_value(r["text"].clone()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["ids"].clone()).unwrap();
    let tail = r["tail"].as_u64().unwrap() as usize;
    let logits: Vec<Vec<f32>> = serde_json::from_value(r["logits"].clone()).unwrap();
    let attention: Vec<Vec<Vec<Vec<f32>>>> =
        serde_json::from_value(r["attention"].clone()).unwrap();
    assert_eq!(m.tokenizer().encode(&text), ids, "{name}: long text's ids");
    let out = m.model().forward_biased(&ids, &[], false).unwrap();
    let t = ids.len();
    let ours = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    let diff = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len(), "{name}: shapes");
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    let dl = (ours[t - tail..].iter().zip(&logits))
        .map(|(a, b)| diff(a, b))
        .fold(0f32, f32::max);
    let mut da = 0f32;
    for (a, want) in out.attention.iter().zip(&attention) {
        let a = a.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        for (head, want) in a.iter().zip(want) {
            for (row, want) in head[t - tail..].iter().zip(want) {
                da = da.max(diff(row, want));
            }
        }
    }
    assert_eq!(out.attention.len(), attention.len(), "{name}: layers");
    eprintln!("{name}, {t} tokens: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    (dl, da)
}

/// Where the type of tensor `name` is written in the GGUF file `b` (its tensor table's entry:
/// name, number of dims, dims, then the type).
pub fn gguf_tensor_type_at(b: &[u8], name: &str) -> usize {
    let mut needle = (name.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(name.as_bytes());
    let at = b
        .windows(needle.len())
        .rposition(|w| w == needle.as_slice())
        .unwrap_or_else(|| panic!("tensor {name} not in the file"));
    let dims_at = at + needle.len();
    let n_dims = u32::from_le_bytes(b[dims_at..dims_at + 4].try_into().unwrap()) as usize;
    dims_at + 4 + 8 * n_dims
}
