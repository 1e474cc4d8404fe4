//! Where a streamed capture's time goes (the speed issue, point 5): SmolLM2's streamed forward
//! on N tokens with a stream that only builds the biases, against the full streamed capture.
//! `cargo run --release --example stream_profile -- 2048`. `CHUNK=N` sets the query rows per
//! chunk (default: what the capture chooses); `KEEPNONE=1` keeps no head's attention, only the
//! summaries.
use std::time::Instant;

use anyhow::Result;
use candle_core::Tensor;
use localist::data::tokenizer::Tokenizer;
use localist::model::attention::AttentionBias;
use localist::model::backend::RowStream;
use localist::model::capture_stream::{capture_streamed, CapturePlan};
use localist::model::dial::{layer_bias_rows, DialSetting};
use localist::model::transformer::ModelError;

struct BiasOnly<'a>(&'a localist::model::blocks::SequenceMasks, DialSetting);

impl RowStream for BiasOnly<'_> {
    fn bias(
        &mut self,
        l: usize,
        r0: usize,
        n: usize,
        kt: usize,
    ) -> candle_core::Result<AttentionBias> {
        let p = self.1.per_layer(30)[l].clone();
        AttentionBias::from_layer(
            &layer_bias_rows(self.0, &p, r0, n, kt),
            n,
            kt,
            &candle_core::Device::Cpu,
        )
    }
    fn rows(&mut self, _: usize, _: usize, _: &Tensor, _: &Tensor) -> Result<(), ModelError> {
        Ok(())
    }
    fn rows_host(
        &mut self,
        _: usize,
        _: usize,
        _: (usize, usize, usize),
        _: &[f32],
        _: &[f32],
    ) -> Result<(), ModelError> {
        Ok(())
    }
    fn layer_done(&mut self, _: usize) -> Result<(), ModelError> {
        Ok(())
    }
}

fn main() -> Result<()> {
    let tokens: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2048);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = root.join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let corpus = std::fs::read_to_string(root.join("../shared/corpora/shakespeare_modern.txt"))?;
    let im = localist::hf::ImportedModel::open(&model, &candle_core::Device::Cpu)?;
    let text: String = corpus.chars().take(tokens * 5).collect();
    let mut ids = im.tokenizer().encode(&text);
    ids.truncate(tokens);
    let blocks = im.kmeans_blocks(&im.tokenizer(), 16, 0)?;
    let m = im.model();
    let dial = DialSetting::bias(0.5);
    let masks = localist::model::capture::masks_for(m, &blocks, &ids);
    let chunk = std::env::var("CHUNK")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| localist::model::capture_memory::stream_chunk_rows(9, ids.len()));
    for _ in 0..2 {
        let t = Instant::now();
        m.forward_streamed(&ids, chunk, &mut BiasOnly(&masks, dial.clone()))?;
        let fwd = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let plan = CapturePlan {
            chunk_rows: Some(chunk),
            heads: std::env::var("KEEPNONE").ok().map(|_| vec![]),
            ..CapturePlan::studio()
        };
        let _ = capture_streamed(m, &blocks, &ids, &dial, &plan, &mut |_| true)?;
        let cap = t.elapsed().as_secs_f64();
        println!(
            "{} tokens, chunk {chunk}: forward with biases {fwd:.2} s; capture {cap:.2} s",
            ids.len()
        );
    }
    Ok(())
}
