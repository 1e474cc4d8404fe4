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
    /// Checkpoint directory.
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

/// Run `localist capture`.
pub fn run(args: CaptureArgs) -> Result<()> {
    let device = default_device();
    let ck = load_checkpoint(&args.checkpoint, &device)?;
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", args.checkpoint.display()))?;
    let tok = spec.build()?;
    let mut ids = tok.encode(&args.text);
    if ids.is_empty() {
        bail!("--text is empty after tokenization");
    }
    let max = ck.model.config.max_seq_len;
    if ids.len() > max {
        eprintln!(
            "note: text has {} tokens; capturing the first {max}",
            ids.len()
        );
        ids.truncate(max);
    }
    let dial = args.dial.setting(args.lambda)?;
    let cap = capture(&ck.model, &ck.blocks, &ids, &dial)?;
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
