//! llama.cpp's IQ4 quantizations, which candle does not read, dequantized by our own reader
//! (`src/hf/gguf_llama/iq4.rs`) and checked against gguf-py, llama.cpp's Python reader
//! (`tests/fixtures/iq4/`, written by `scripts/make_iq4_fixture.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use localist::data::tokenizer::Tokenizer;
use localist::hf::gguf_llama::ggml_type::TensorType;
use localist::hf::gguf_llama::iq4::dequantize;

fn fixture(name: &str) -> std::path::PathBuf {
    common::root().join("tests/fixtures/iq4").join(name)
}

/// Random IQ4_NL and IQ4_XS blocks (every scale bit, every index) read to exactly the floats
/// gguf-py reads them to.
#[test]
fn iq4_blocks_read_as_gguf_py_reads_them() {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("blocks.json")).unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for c in cases {
        let kind = match c["type"].as_str().unwrap() {
            "IQ4_NL" => TensorType::Iq4Nl,
            "IQ4_XS" => TensorType::Iq4Xs,
            t => panic!("{t}"),
        };
        let hex = c["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let want: Vec<f32> = serde_json::from_value(c["values"].clone()).unwrap();
        let ours = dequantize(kind, &bytes);
        assert_eq!(ours.len(), want.len(), "{kind:?}");
        let off = ours.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(off, 0, "{kind:?}: {off} values differ from gguf-py's");
    }
}

/// A model whose matrices are IQ4_NL gives exactly the logits and attention of the same model
/// stored as the F32 values gguf-py reads from it.
#[test]
fn an_iq4_nl_gguf_runs_as_its_f32_twin() {
    let q = common::open_imported(&fixture("llama_iq4nl.gguf"));
    let f = common::open_imported(&fixture("llama_iq4nl_f32.gguf"));
    let ids = q
        .tokenizer()
        .encode("the quick brown fox jumps over the lazy dog");
    assert!(ids.len() > 5);
    let (a, b) = (
        q.model().forward_biased(&ids, &[], false).unwrap(),
        f.model().forward_biased(&ids, &[], false).unwrap(),
    );
    let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(flat(&a.logits), flat(&b.logits));
    for (x, y) in a.attention.iter().zip(&b.attention) {
        assert_eq!(flat(x), flat(y));
    }
    // The quantization moved the model (it is not read as the F32 original).
    let o = common::open_imported(&common::root().join("tests/fixtures/llamacpp/llama.gguf"));
    let c = o.model().forward_biased(&ids, &[], false).unwrap();
    let moved = common::max_diff(flat(&a.logits).iter(), flat(&c.logits).iter());
    assert!(
        moved > 1e-3,
        "IQ4_NL logits equal the F32 original's ({moved})"
    );
}

/// A tensor of IQ4_XS whose row does not split into blocks of 256 is refused naming it.
#[test]
fn an_iq4_xs_tensor_of_rows_shorter_than_its_block_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gguf");
    let mut b = std::fs::read(fixture("llama_iq4nl.gguf")).unwrap();
    let t = common::gguf_tensor_type_at(&b, "output.weight");
    assert_eq!(
        &b[t..t + 4],
        &20u32.to_le_bytes(),
        "output.weight is IQ4_NL"
    );
    b[t..t + 4].copy_from_slice(&23u32.to_le_bytes());
    std::fs::write(&file, b).unwrap();
    let err = common::open_imported_err(&file);
    assert!(
        err.contains("m.gguf") && err.contains("tensor output.weight") && err.contains("256"),
        "{err}"
    );
}
