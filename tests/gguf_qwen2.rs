//! A Qwen2 GGUF file (`tests/fixtures/qwen2.gguf`, written by `scripts/make_gguf_fixture.py`
//! from the tiny Qwen2 folder of `tests/fixtures/families/qwen2`, as llama.cpp's converter
//! writes a Qwen2: architecture "qwen2", q/k/v biases, RoPE on halves, pre-tokenizer "qwen2"):
//! the same ids, logits and attention as transformers computed for the folder, Qwen2's split of
//! text as its regular expression splits it (a damaged one: `tests/hostile/gguf-qwen2-*`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use localist::data::tokenizer::Tokenizer;
use localist::hf::ImportedModel;

fn gguf() -> PathBuf {
    common::root().join("tests/fixtures/qwen2.gguf")
}

fn open(path: &Path) -> ImportedModel {
    ImportedModel::open(path, &Device::Cpu).unwrap_or_else(|e| panic!("{e:#}"))
}

fn max_diff<'a>(a: impl IntoIterator<Item = &'a f32>, b: impl IntoIterator<Item = &'a f32>) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The folder's reference.json: what transformers computed (text, ids, logits, attention).
#[test]
fn a_qwen2_gguf_matches_transformers() {
    let bytes = std::fs::read(common::family_fixture("qwen2").join("reference.json")).unwrap();
    let r: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let text: String = serde_json::from_value(r["text"].clone()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(r["ids"].clone()).unwrap();
    let logits: Vec<Vec<f32>> = serde_json::from_value(r["logits"].clone()).unwrap();
    let attention: Vec<Vec<Vec<Vec<f32>>>> =
        serde_json::from_value(r["attention"].clone()).unwrap();

    let m = open(&gguf());
    assert_eq!(m.arch_label(), "qwen2");
    assert!(
        m.kind_label().starts_with("Qwen2 decoder (GGUF"),
        "{}",
        m.kind_label()
    );
    assert_eq!(m.tokenizer().encode(&text), ids, "token ids");
    let out = m.model().forward_biased(&ids, &[], false).unwrap();
    let ours = out.logits.squeeze(0).unwrap().to_vec2::<f32>().unwrap();
    let dl = max_diff(ours.iter().flatten(), logits.iter().flatten());
    let mut da = 0f32;
    assert_eq!(out.attention.len(), attention.len(), "layers");
    for (a, want) in out.attention.iter().zip(&attention) {
        let a = a.squeeze(0).unwrap().to_vec3::<f32>().unwrap();
        da = da.max(max_diff(
            a.iter().flatten().flatten(),
            want.iter().flatten().flatten(),
        ));
    }
    eprintln!("qwen2 GGUF: logits max |Δ| {dl:.2e}, attention max |Δ| {da:.2e}");
    assert!(dl < 1e-4, "logits differ by {dl}");
    assert!(da < 1e-5, "attention differs by {da}");
}

/// GPT-2's map of bytes to printable characters (what a byte-level pre-tokenizer emits).
fn byte_level(s: &str) -> String {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut map = [0u32; 256];
    for &b in &printable {
        map[b as usize] = b;
    }
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            map[b as usize] = 256 + extra;
            extra += 1;
        }
    }
    printable.clear();
    s.bytes()
        .map(|b| char::from_u32(map[b as usize]).unwrap())
        .collect()
}

/// Qwen2's pre-tokenizer splits as its regular expression does. The pieces were computed by
/// Python's `regex` module with the pattern of Qwen2's tokenizer.json (not by the Rust library
/// under test); GPT-2's split gives other pieces (`'`, `M`; ` 1234`; `\n`, `\n`; …).
#[test]
fn qwen2_splits_text_as_its_pattern_does() {
    use tokenizers::PreTokenizer;
    let text = "I'M here: 1234 THE'LL  x\n\nyes!?\n  «Ünïcode» 3.14\tend";
    let want = [
        "I",
        "'M",
        " here",
        ":",
        " ",
        "1",
        "2",
        "3",
        "4",
        " THE",
        "'LL",
        " ",
        " x",
        "\n\n",
        "yes",
        "!?\n",
        " ",
        " «",
        "Ünïcode",
        "»",
        " ",
        "3",
        ".",
        "1",
        "4",
        "\tend",
    ];
    let m = localist::hf::gguf_llama::GgufLlama::open(&gguf(), &Device::Cpu).unwrap();
    let pre = m.hf_tokenizer().get_pre_tokenizer().unwrap();
    let mut s = tokenizers::PreTokenizedString::from(text);
    pre.pre_tokenize(&mut s).unwrap();
    let got: Vec<String> = s
        .get_splits(
            tokenizers::OffsetReferential::Original,
            tokenizers::OffsetType::Byte,
        )
        .into_iter()
        .map(|(piece, _, _)| piece.to_string())
        .collect();
    let want: Vec<String> = want.iter().map(|p| byte_level(p)).collect();
    assert_eq!(got, want);
}
