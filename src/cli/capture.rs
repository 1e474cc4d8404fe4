//! `localist capture`: one text in, attention and metrics out as JSON or CSV.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::eval::DialArgs;
use crate::cli::output::write_atomic;
use crate::data::tokenizer::TokenizerSpec;
use crate::engine::export::{capture_csv, capture_json};
use crate::engine::train_job::default_device;
use crate::model::capture::capture;
use crate::model::checkpoint::load_checkpoint;

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// Everything, one JSON document.
    Json,
    /// One row per (layer, head, query, key) with the weight and per-row metrics.
    Csv,
}

/// Arguments of `localist capture`.
#[derive(Args, Debug, Clone)]
pub struct CaptureArgs {
    /// Checkpoint directory, or an imported model (a `.gguf` file or a Hugging Face folder).
    #[arg(long, short)]
    pub checkpoint: PathBuf,
    /// The text to capture (truncated to the model's positions).
    #[arg(long)]
    pub text: String,
    /// Inference dial λ_inf in [0, 1].
    #[arg(long, default_value = "0", value_parser = super::parse_lambda)]
    pub lambda: f64,
    /// Dial mode, schedule and temperature.
    #[command(flatten)]
    pub dial: DialArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Run `localist capture` (on a checkpoint, or on an imported model with the blocks saved
/// beside it or k-means blocks).
pub fn run(args: CaptureArgs) -> Result<()> {
    let device = default_device();
    if crate::hf::ImportedModel::looks_imported(&args.checkpoint) {
        let m = crate::hf::ImportedModel::open(&args.checkpoint, &candle_core::Device::Cpu)?;
        let tok = m.tokenizer();
        let blocks = match std::fs::read(m.blocks_path()) {
            Ok(b) => serde_json::from_slice(&b)
                .with_context(|| format!("{}", m.blocks_path().display()))?,
            Err(_) => m.kmeans_blocks(&tok, crate::engine::worker::DEFAULT_CLUSTERS, 0)?,
        };
        return capture_and_write(&args, m.model(), &blocks, &tok);
    }
    let ck = load_checkpoint(&args.checkpoint, &device)?;
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", args.checkpoint.display()))?;
    let tok = spec.build()?;
    capture_and_write(&args, &ck.model, &ck.blocks, tok.as_ref())
}

fn capture_and_write(
    args: &CaptureArgs,
    model: &dyn crate::model::backend::AttentionModel,
    blocks: &crate::model::blocks::BlockMap,
    tok: &dyn crate::data::tokenizer::Tokenizer,
) -> Result<()> {
    let mut ids = tok.encode(&args.text);
    if ids.is_empty() {
        bail!("--text is empty after tokenization");
    }
    let max = model.dims().max_len;
    if ids.len() > max {
        eprintln!(
            "note: text has {} tokens; capturing the first {max}",
            ids.len()
        );
        ids.truncate(max);
    }
    let dial = args.dial.setting(args.lambda)?;
    let cap = capture(model, blocks, &ids, &dial)?;
    let tokens: Vec<String> = ids.iter().map(|&i| tok.token_str(i)).collect();
    let text = match args.format {
        Format::Json => capture_json(&cap, &tokens)?,
        Format::Csv => capture_csv(&cap, &tokens),
    };
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => println!("{text}"),
    }
    Ok(())
}
