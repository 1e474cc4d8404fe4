//! `localist capture`: one text in, attention and metrics out as JSON or CSV.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::dial::DialArgs;
use crate::cli::output::write_atomic;
use crate::engine::export::{capture_csv, capture_json};
use crate::engine::jobs::capture::capture_text;

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
    let dial = args.dial.setting(args.lambda)?;
    let cap = capture_text(&args.checkpoint, &args.text, &dial)?;
    if let Some(n) = cap.truncated_from {
        eprintln!(
            "note: text has {n} tokens; capturing the first {}",
            cap.capture.len()
        );
    }
    let text = match args.format {
        Format::Json => capture_json(&cap.capture, &cap.tokens)?,
        Format::Csv => capture_csv(&cap.capture, &cap.tokens),
    };
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => println!("{text}"),
    }
    Ok(())
}
