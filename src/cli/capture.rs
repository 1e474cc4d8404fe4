//! `localist capture`: one text in, attention and metrics out as JSON or CSV.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::dial::DialArgs;
use crate::cli::output::write_atomic;
use crate::engine::export::{capture_csv, capture_json_with, check_capture_text};
use crate::engine::head_summary;
use crate::engine::jobs::capture::capture_text_with;
use crate::engine::protocol::{CapturePlan, STUDIO_GRID};

/// Output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// Everything, one JSON document.
    Json,
    /// One row per (layer, head, query, key) with the weight and per-row metrics.
    Csv,
}

/// How much of every head's summaries a capture writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Summaries {
    /// One row per query (and per group of queries for block masses of long texts).
    Rows,
    /// One summary per head: the means over its queries.
    Heads,
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
    /// Keep the attention of these heads only, as LAYER.HEAD (e.g. `0.1,3.2`); the summaries
    /// (entropy, ε, margin, block masses) of every head are always kept.
    #[arg(long, value_delimiter = ',', value_parser = parse_head)]
    pub heads: Vec<(usize, usize)>,
    /// Keep the attention of query rows START..END only (e.g. `100..164`).
    #[arg(long, value_parser = parse_range)]
    pub rows: Option<(usize, usize)>,
    /// Keep the attention to keys START..END only (default: every key the rows see).
    #[arg(long, value_parser = parse_range)]
    pub keys: Option<(usize, usize)>,
    /// Pool each kept head's attention into at most N × N cells (0: full resolution). Texts
    /// longer than 256 tokens are pooled to at most 256 unless this says otherwise (fewer for
    /// a model of many heads: about 4.2 million cells over all heads; SmolLM2 124).
    #[arg(long)]
    pub grid: Option<usize>,
    /// Summaries of every head: `rows` (entropy, ε, margin and block masses per query) or
    /// `heads` (their means over queries, and the smallest margin: K + 6 numbers a head
    /// whatever the text's length; JSON only).
    #[arg(long, value_enum, default_value_t = Summaries::Rows)]
    pub summaries: Summaries,
}

/// `LAYER.HEAD` as a pair.
fn parse_head(s: &str) -> Result<(usize, usize), String> {
    let (l, h) = s
        .trim()
        .split_once('.')
        .ok_or_else(|| format!("'{s}' is not LAYER.HEAD (e.g. 3.1)"))?;
    let num = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| format!("'{s}' is not LAYER.HEAD (e.g. 3.1)"))
    };
    Ok((num(l)?, num(h)?))
}

/// `START..END` (END exclusive, larger than START) as a pair.
fn parse_range(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{s}' is not a range START..END (e.g. 100..164)");
    let (a, b) = s.trim().split_once("..").ok_or_else(bad)?;
    let a = a.trim().parse::<usize>().map_err(|_| bad())?;
    let b = b.trim().parse::<usize>().map_err(|_| bad())?;
    if b <= a {
        return Err(format!(
            "the range {a}..{b} is empty (END must be larger than START)"
        ));
    }
    Ok((a, b))
}

impl CaptureArgs {
    /// The streamed capture's plan when an option asks for one.
    fn plan(&self) -> Option<CapturePlan> {
        let asked = !self.heads.is_empty()
            || self.rows.is_some()
            || self.keys.is_some()
            || self.grid.is_some();
        asked.then(|| CapturePlan {
            heads: (!self.heads.is_empty()).then(|| self.heads.clone()),
            rows: self.rows,
            keys: self.keys,
            max_grid: self.grid.unwrap_or(STUDIO_GRID),
            chunk_rows: None,
        })
    }
}

/// Run `localist capture` (on a checkpoint, or on an imported model with the blocks saved
/// beside it or k-means blocks).
pub fn run(args: CaptureArgs) -> Result<()> {
    if let Some(out) = &args.out {
        crate::cli::output::check_file_out("-o", out, &[&args.checkpoint])?;
    }
    let heads_only = args.summaries == Summaries::Heads;
    if heads_only && matches!(args.format, Format::Csv) {
        anyhow::bail!(
            "--summaries heads writes JSON (--format json): every CSV line carries its query's \
             summaries"
        );
    }
    let dial = args.dial.setting(args.lambda)?;
    let plan = args.plan();
    let mut cap = capture_text_with(&args.checkpoint, &args.text, &dial, plan.as_ref())?;
    if let Some(note) = &cap.note {
        eprintln!("{note}");
    }
    if let Some(n) = cap.truncated_from {
        eprintln!(
            "note: text has {n} tokens; capturing the first {}",
            cap.capture.len()
        );
    }
    if let Some(kept) = &cap.capture.layout {
        for (what, asked, got) in [
            ("rows", args.rows, kept.rows),
            ("keys", args.keys, kept.keys),
        ] {
            if let Some((a, b)) = asked.filter(|&r| r != got) {
                eprintln!(
                    "note: {what} {a}..{b} asked for; kept {}..{} (the text has {} tokens)",
                    got.0,
                    got.1,
                    cap.capture.len()
                );
            }
        }
    }
    let heads = heads_only.then(|| head_summary::heads_only(&mut cap.capture));
    check_capture_text(&cap.capture, matches!(args.format, Format::Csv))?;
    let text = match args.format {
        Format::Json => capture_json_with(&cap.capture, &cap.tokens, heads)?,
        Format::Csv => capture_csv(&cap.capture, &cap.tokens),
    };
    match &args.out {
        Some(path) => write_atomic(path, text.as_bytes())?,
        None => println!("{text}"),
    }
    Ok(())
}
