//! Streamed captures (the speed issue's long texts): the summaries and the kept attention of a
//! capture whose rows stream by in chunks are those of the dense capture; pooled grids are the
//! means they claim to be; a zoomed region is the dense one's cells; cancelling stops it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use candle_core::Device;
use common::{load_sample, model_file};
use localist::model::backend::AttentionModel;
use localist::model::blocks::BlockMap;
use localist::model::capture::{capture_attention, Capture};
use localist::model::capture_stream::{capture_streamed, CapturePlan};
use localist::model::dial::DialSetting;
use localist::model::transformer::ModelError;

const TEXT: &str = "patient was given 20 mg of ibuprofen for pain after surgery and the dose \
                    was reduced the next day because of nausea; payment of 120 EUR was made";

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a == b) || (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Every head's summaries agree; the kept attention agrees where both hold it.
fn assert_same_summaries(dense: &Capture, streamed: &Capture) {
    assert_eq!(dense.heads.len(), streamed.heads.len());
    for (d, s) in dense.heads.iter().zip(&streamed.heads) {
        let at = format!("layer {} head {}", d.layer, d.head);
        for (i, (a, b)) in d.entropy_bits.iter().zip(&s.entropy_bits).enumerate() {
            assert!(close(*a, *b, 2e-4), "{at} entropy row {i}: {a} vs {b}");
        }
        for (i, (a, b)) in d.off_block_mass.iter().zip(&s.off_block_mass).enumerate() {
            assert!(close(*a, *b, 1e-4), "{at} ε row {i}: {a} vs {b}");
        }
        for (i, (a, b)) in d.margin.iter().zip(&s.margin).enumerate() {
            assert!(close(*a, *b, 1e-4), "{at} margin row {i}: {a} vs {b}");
        }
        if streamed.block_stride == 1 {
            for (i, (a, b)) in d.block_mass.iter().zip(&s.block_mass).enumerate() {
                assert!(close(*a, *b, 1e-4), "{at} block mass {i}: {a} vs {b}");
            }
        }
    }
}

fn tiny() -> (localist::model::checkpoint::Checkpoint, Vec<u32>) {
    let (ck, tok) = load_sample("tiny-clinical");
    let mut ids = tok.encode(TEXT);
    ids.truncate(ck.model.dims().max_len);
    assert!(ids.len() >= 20, "the text is {} tokens", ids.len());
    (ck, ids)
}

#[test]
fn a_streamed_capture_of_a_tiny_model_is_its_dense_capture() {
    let (ck, ids) = tiny();
    for dial in [
        DialSetting::bias(0.0),
        DialSetting::bias(0.7),
        DialSetting {
            params: localist::analysis::dial::DialParams {
                mode: localist::analysis::dial::DialMode::Mixture,
                lambda: 0.5,
                ..Default::default()
            },
            ..Default::default()
        },
    ] {
        let dense = capture_attention(&ck.model, &ck.blocks, &ids, &dial).unwrap();
        let plan = CapturePlan::default();
        let streamed =
            capture_streamed(&ck.model, &ck.blocks, &ids, &dial, &plan, &mut |_| true).unwrap();
        assert!(
            streamed.layout.is_none(),
            "full resolution is the dense layout"
        );
        assert_same_summaries(&dense, &streamed);
        for (d, s) in dense.heads.iter().zip(&streamed.heads) {
            for (a, b) in d.attention.iter().zip(&s.attention) {
                assert!(close(*a, *b, 1e-6), "{a} vs {b}");
            }
        }
    }
}

#[test]
fn a_pooled_grid_holds_the_mean_row_mass_of_its_cells() {
    let (ck, ids) = tiny();
    let t = ids.len();
    let dial = DialSetting::bias(0.5);
    let dense = capture_attention(&ck.model, &ck.blocks, &ids, &dial).unwrap();
    let plan = CapturePlan {
        max_grid: 8,
        ..CapturePlan::default()
    };
    let pooled =
        capture_streamed(&ck.model, &ck.blocks, &ids, &dial, &plan, &mut |_| true).unwrap();
    let lay = pooled.attention_layout();
    let s = lay.stride;
    assert_eq!(s, t.div_ceil(8));
    let (gr, gc) = lay.grid();
    assert_eq!((gr, gc), (t.div_ceil(s), t.div_ceil(s)));
    for (d, p) in dense.heads.iter().zip(&pooled.heads) {
        for r in 0..gr {
            let rows: Vec<usize> = (r * s..((r + 1) * s).min(t)).collect();
            let mut row_sum = 0.0f32;
            for c in 0..gc {
                let mut want = 0.0f32;
                for &i in &rows {
                    for j in c * s..((c + 1) * s).min(t) {
                        want += d.attention[i * t + j];
                    }
                }
                want /= rows.len() as f32;
                let got = p.attention[r * gc + c];
                assert!(close(got, want, 1e-5), "cell ({r},{c}): {got} vs {want}");
                row_sum += got;
                if lay.masked(r, c, (true, None)) {
                    assert_eq!(got, 0.0, "a masked cell holds weight");
                }
            }
            assert!(
                (row_sum - 1.0).abs() < 1e-4,
                "grid row {r} sums to {row_sum}"
            );
        }
    }
}

#[test]
fn a_zoomed_region_and_chosen_heads_are_the_dense_cells() {
    let (ck, ids) = tiny();
    let t = ids.len();
    let dial = DialSetting::bias(0.3);
    let dense = capture_attention(&ck.model, &ck.blocks, &ids, &dial).unwrap();
    let plan = CapturePlan {
        heads: Some(vec![(1, 2)]),
        rows: Some((5, 17)),
        keys: Some((2, 11)),
        max_grid: 0,
        chunk_rows: Some(3),
    };
    let zoom = capture_streamed(&ck.model, &ck.blocks, &ids, &dial, &plan, &mut |_| true).unwrap();
    assert_same_summaries(&dense, &zoom);
    for hc in &zoom.heads {
        if (hc.layer, hc.head) != (1, 2) {
            assert!(
                hc.attention.is_empty(),
                "head {}.{} kept",
                hc.layer,
                hc.head
            );
            continue;
        }
        assert_eq!(hc.attention.len(), 12 * 9);
        let d = dense.head(1, 2).unwrap();
        for i in 5..17 {
            for j in 2..11 {
                let (a, b) = (hc.attention[(i - 5) * 9 + (j - 2)], d.attention[i * t + j]);
                assert!(close(a, b, 1e-6), "({i},{j}): {a} vs {b}");
            }
        }
    }
    // Rows past the text are refused, not silently empty.
    let bad = CapturePlan {
        rows: Some((t + 5, t + 9)),
        ..CapturePlan::default()
    };
    let e = capture_streamed(&ck.model, &ck.blocks, &ids, &dial, &bad, &mut |_| true);
    assert!(matches!(e, Err(ModelError::Input(_))), "{e:?}");
}

#[test]
fn cancelling_stops_a_streamed_capture_after_the_layer() {
    let (ck, ids) = tiny();
    let mut seen = Vec::new();
    let e = capture_streamed(
        &ck.model,
        &ck.blocks,
        &ids,
        &DialSetting::bias(0.2),
        &CapturePlan::default(),
        &mut |done| {
            seen.push(done);
            false
        },
    );
    assert!(matches!(e, Err(ModelError::Cancelled)), "{e:?}");
    assert_eq!(seen, vec![1], "stopped after the first layer");
}

fn smollm2() -> Option<localist::hf::gguf_llama::GgufLlama> {
    let path = model_file("smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")?;
    Some(localist::hf::gguf_llama::GgufLlama::open(&path, &Device::Cpu).unwrap())
}

/// Two blocks by token-id parity.
fn parity_blocks(vocab: usize) -> BlockMap {
    let pairs: Vec<(u32, String)> = (0..vocab as u32)
        .map(|id| (id, if id % 2 == 0 { "even" } else { "odd" }.to_string()))
        .collect();
    BlockMap::from_assignments(vocab, &pairs, "parity")
}

#[test]
fn smollm2_streamed_in_chunks_of_rows_is_its_dense_capture() {
    let Some(m) = smollm2() else { return };
    let blocks = parity_blocks(m.config.vocab);
    let ids = m.encode(TEXT).unwrap();
    let dial = DialSetting::bias(0.6);
    let dense = capture_attention(&m, &blocks, &ids, &dial).unwrap();
    // Chunks of 7 rows: every chunk sees a different number of keys.
    let plan = CapturePlan {
        chunk_rows: Some(7),
        ..CapturePlan::default()
    };
    let mut layers = Vec::new();
    let streamed = capture_streamed(&m, &blocks, &ids, &dial, &plan, &mut |l| {
        layers.push(l);
        true
    })
    .unwrap();
    assert_eq!(layers, (1..=30).collect::<Vec<_>>());
    assert_same_summaries(&dense, &streamed);
    let t = ids.len();
    for (d, s) in dense.heads.iter().zip(&streamed.heads) {
        for i in 0..t {
            for j in 0..=i {
                let (a, b) = (d.attention[i * t + j], s.attention[i * t + j]);
                assert!(
                    close(a, b, 1e-4),
                    "{}.{} ({i},{j}): {a} vs {b}",
                    d.layer,
                    d.head
                );
            }
        }
    }
}

/// The LLaMA-family folders through the native streamed forward, each head's summaries taken
/// on the thread that computed it (`RowStream::chunk_sink`): a capture streamed in chunks of 5
/// rows is the dense capture, in every dial mode, cell by cell.
#[test]
fn llama_family_folders_streamed_are_their_dense_captures() {
    for name in ["llama", "qwen2"] {
        let im =
            localist::hf::ImportedModel::open(&common::family_fixture(name), &Device::Cpu).unwrap();
        let m = im.decoder().expect("a LLaMA-family decoder");
        let ids: Vec<u32> = (0..23u32)
            .map(|i| (i * 5 + 1) % m.config.vocab as u32)
            .collect();
        let blocks = parity_blocks(m.config.vocab);
        for (dial, _) in common::native_check_dials() {
            let dense = capture_attention(m, &blocks, &ids, &dial).unwrap();
            let plan = CapturePlan {
                chunk_rows: Some(5),
                ..CapturePlan::default()
            };
            let streamed = capture_streamed(m, &blocks, &ids, &dial, &plan, &mut |_| true).unwrap();
            assert_same_summaries(&dense, &streamed);
            let t = ids.len();
            for (d, s) in dense.heads.iter().zip(&streamed.heads) {
                for (c, (a, b)) in d.attention.iter().zip(&s.attention).enumerate() {
                    assert!(
                        close(*a, *b, 1e-5),
                        "{name} {:?} {}.{} cell ({}, {}): {a} vs {b}",
                        dial.params.mode,
                        d.layer,
                        d.head,
                        c / t,
                        c % t
                    );
                }
            }
        }
    }
}

/// The native streamed forward cuts a chunk's heads into parts of rows when the heads do not
/// spread evenly over the threads (SmolLM2's 9 heads on 2 or 4 threads), each cut at a row
/// where no pooled grid row or block-mass row spans it (here a stride of 5). Captured with 1, 2
/// and 4 threads in chunks of 64 rows, it is the dense capture: summaries, block masses and
/// pooled cells.
#[test]
fn smollm2_heads_cut_in_parts_over_threads_are_the_dense_capture() {
    let Some(m) = smollm2() else { return };
    let blocks = parity_blocks(m.config.vocab);
    let text = format!("{TEXT} {TEXT} {TEXT} {TEXT}");
    let ids = m.encode(&text).unwrap();
    let t = ids.len();
    assert!(t > 128, "{t} tokens: two chunks of 64 and a part of one");
    let dial = DialSetting::bias(0.6);
    let dense = capture_attention(&m, &blocks, &ids, &dial).unwrap();
    let plan = CapturePlan {
        chunk_rows: Some(64),
        max_grid: t.div_ceil(5),
        ..CapturePlan::default()
    };
    for threads in [1, 2, 4] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let streamed = pool
            .install(|| capture_streamed(&m, &blocks, &ids, &dial, &plan, &mut |_| true))
            .unwrap();
        assert_same_summaries(&dense, &streamed);
        let lay = streamed.attention_layout();
        assert_eq!(lay.stride, 5);
        let (gr, gc) = lay.grid();
        for (d, p) in dense.heads.iter().zip(&streamed.heads) {
            for r in 0..gr {
                let rows = r * 5..((r + 1) * 5).min(t);
                for c in 0..gc {
                    let mut want = 0.0f32;
                    for i in rows.clone() {
                        want += d.attention[i * t + c * 5..i * t + ((c + 1) * 5).min(t)]
                            .iter()
                            .sum::<f32>();
                    }
                    want /= rows.len() as f32;
                    let got = p.attention[r * gc + c];
                    assert!(
                        close(got, want, 1e-4),
                        "{threads} threads, {}.{} cell ({r},{c}): {got} vs {want}",
                        d.layer,
                        d.head
                    );
                }
            }
        }
    }
}
