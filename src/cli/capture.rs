//! `localist capture`: one text in, attention and metrics out as JSON or CSV.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::cli::eval::DialArgs;
use crate::cli::output::write_atomic;
use crate::data::tokenizer::TokenizerSpec;
use crate::engine::train_job::default_device;
use crate::model::capture::{capture, Capture};
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

/// The JSON document: the capture plus readable tokens and summary numbers.
#[derive(Serialize)]
pub struct CaptureDoc<'a> {
    /// Token strings.
    pub tokens: Vec<String>,
    /// Mean entropy in bits.
    pub mean_entropy_bits: f64,
    /// Mean off-block mass.
    pub mean_off_block_mass: f64,
    /// The capture.
    pub capture: &'a Capture,
}

/// CSV rendering of a capture.
pub fn to_csv(cap: &Capture, tokens: &[String]) -> String {
    let t = cap.len();
    let mut s = String::from(
        "layer,head,query,key,query_token,key_token,relevant_block,key_block,weight,row_entropy_bits,row_off_block_mass,row_margin\n",
    );
    let tok = |i: usize| tokens.get(i).map(|x| csv_escape(x)).unwrap_or_default();
    for hc in &cap.heads {
        for i in 0..t {
            for j in 0..=i {
                let w = hc.attention.get(i * t + j).copied().unwrap_or(0.0);
                let _ = writeln!(
                    s,
                    "{},{},{i},{j},{},{},{},{},{w:.6},{:.5},{:.5},{:.4}",
                    hc.layer,
                    hc.head,
                    tok(i),
                    tok(j),
                    cap.relevant_blocks
                        .get(i)
                        .map(|&b| cap.block_names.get(b).cloned().unwrap_or_default())
                        .unwrap_or_default(),
                    cap.key_blocks
                        .get(j)
                        .map(|&b| cap.block_names.get(b).cloned().unwrap_or_default())
                        .unwrap_or_default(),
                    hc.entropy_bits.get(i).copied().unwrap_or(0.0),
                    hc.off_block_mass.get(i).copied().unwrap_or(0.0),
                    hc.margin.get(i).copied().unwrap_or(0.0),
                );
            }
        }
    }
    s
}

fn csv_escape(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', "\\n"))
    } else {
        s.to_string()
    }
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
        Format::Json => serde_json::to_string_pretty(&CaptureDoc {
            tokens,
            mean_entropy_bits: cap.mean_entropy_bits(None),
            mean_off_block_mass: cap.mean_off_block_mass(None),
            capture: &cap,
        })?,
        Format::Csv => to_csv(&cap, &tokens),
    };
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => println!("{text}"),
    }
    Ok(())
}
