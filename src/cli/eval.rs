//! `localist eval`: a checkpoint's held-out metrics under one or more dial settings.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::analysis::dial::{DialMode, DialParams, LayerSchedule};
use crate::engine::corpus::{asset_path, prepare_corpus, CorpusSource, TokenizerKind};
use crate::engine::train_job::{default_device, TrainingInfo};
use crate::model::checkpoint::load_checkpoint;
use crate::model::dial::DialSetting;
use crate::train::dataset::train_split;
use crate::train::eval::{evaluate, EvalReport};

/// Dial mode on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Mode A: additive bias ln(1 − λ) off-block.
    A,
    /// Mode B: mixture with the block-local softmax.
    B,
    /// Mode C: positional bias −λ|i − j|/σ (comparison only).
    C,
    /// Mode D: mode A plus a falling temperature.
    D,
}

impl From<ModeArg> for DialMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::A => DialMode::Bias,
            ModeArg::B => DialMode::Mixture,
            ModeArg::C => DialMode::Positional,
            ModeArg::D => DialMode::Temperature,
        }
    }
}

/// Dial options shared by `eval` and `capture`.
#[derive(Args, Debug, Clone)]
pub struct DialArgs {
    /// Dial mode.
    #[arg(long, value_enum, default_value_t = ModeArg::A)]
    pub mode: ModeArg,
    /// Per-layer schedule: `uniform` or `power:GAMMA` (λ_ℓ = λ(ℓ/(L−1))^γ).
    #[arg(long, default_value = "uniform")]
    pub schedule: String,
    /// Base temperature τ₀.
    #[arg(long, default_value_t = 1.0)]
    pub tau: f64,
}

impl DialArgs {
    /// The dial setting at λ.
    pub fn setting(&self, lambda: f64) -> Result<DialSetting> {
        let schedule = if self.schedule == "uniform" {
            LayerSchedule::Uniform
        } else if let Some(g) = self.schedule.strip_prefix("power:") {
            LayerSchedule::Power {
                gamma: g.parse().with_context(|| {
                    format!("--schedule {}: expected power:GAMMA", self.schedule)
                })?,
            }
        } else {
            anyhow::bail!(
                "--schedule {}: expected uniform or power:GAMMA",
                self.schedule
            );
        };
        if self.tau <= 0.0 {
            anyhow::bail!("--tau must be positive, got {}", self.tau);
        }
        Ok(DialSetting {
            params: DialParams {
                mode: self.mode.into(),
                lambda,
                tau: self.tau,
                ..DialParams::default()
            },
            schedule,
        })
    }
}

/// Arguments of `localist eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Checkpoint directory.
    #[arg(long, short)]
    pub checkpoint: PathBuf,
    /// Inference dial λ_inf values in [0, 1] (comma-separated).
    #[arg(long, default_value = "0", value_delimiter = ',', value_parser = super::parse_lambda)]
    pub lambda: Vec<f64>,
    /// Dial mode, schedule and temperature.
    #[command(flatten)]
    pub dial: DialArgs,
    /// Held-out text (default: the held-out 10% of the checkpoint's training corpus).
    #[arg(long)]
    pub corpus: Option<String>,
    /// Number of 1×T windows to score.
    #[arg(long, default_value_t = 64)]
    pub windows: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list each block's anchor tokens (PMI, purity) and the coverage I(B;A).
    #[arg(long)]
    pub anchors: bool,
}

/// Evaluate a loaded checkpoint on its held-out text for each λ.
pub fn eval_reports(args: &EvalArgs) -> Result<Vec<EvalReport>> {
    let device = default_device();
    let ck = load_checkpoint(&args.checkpoint, &device)?;
    let info: Option<TrainingInfo> = serde_json::from_value(ck.meta.training.clone()).ok();
    let tok = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", args.checkpoint.display()))?;
    let (source, held_out_only) = match (&args.corpus, &info) {
        (Some(c), _) => (CorpusSource::parse(c, 0)?, false),
        (None, Some(i)) => (i.corpus.clone(), true),
        (None, None) => anyhow::bail!(
            "{}: no training corpus recorded; pass --corpus",
            args.checkpoint.display()
        ),
    };
    let source = match source {
        CorpusSource::File { path } => CorpusSource::File {
            path: asset_path(&path),
        },
        s => s,
    };
    let corpus = prepare_corpus(&source, TokenizerKind::Char, Some(&tok))?;
    let stream = if held_out_only {
        corpus.stream.split_at(train_split(corpus.stream.len())).1
    } else {
        corpus.stream.clone()
    };
    let seq = info
        .map(|i| i.config.seq_len)
        .unwrap_or(ck.model.config.max_seq_len);
    args.lambda
        .iter()
        .map(|&lam| {
            let dial = args.dial.setting(lam)?;
            Ok(evaluate(
                &ck.model,
                &ck.blocks,
                &stream,
                &dial,
                seq,
                args.windows,
                16,
            )?)
        })
        .collect()
}

/// A Markdown table of reports.
pub fn table(reports: &[EvalReport], mode: &str) -> String {
    let mut s = String::from(
        "| λ_inf | mode | perplexity | top-1 | entropy (bits) | ε | PF_mass | PF_top1 | PF true |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        s.push_str(&format!(
            "| {:.2} | {mode} | {:.3} | {:.1}% | {:.3} | {:.4} | {:.4} | {:.4} | {} |\n",
            r.lambda,
            r.perplexity,
            100.0 * r.top1_accuracy,
            r.entropy_bits,
            r.off_block_mass,
            r.pf_mass,
            r.pf_top1,
            r.pf_true_mass
                .map(|p| format!("{p:.4}"))
                .unwrap_or_else(|| "–".into())
        ));
    }
    s
}

/// Print the anchor tokens stored in a checkpoint's training facts.
fn print_anchors(checkpoint: &std::path::Path) -> Result<()> {
    let path = checkpoint.join("config.json");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{}: invalid JSON", path.display()))?;
    let info: Option<TrainingInfo> = serde_json::from_value(meta["training"].clone()).ok();
    let Some(rep) = info.and_then(|i| i.anchors) else {
        println!("\nno anchor statistics in this checkpoint");
        return Ok(());
    };
    println!(
        "\nanchor tokens (purity ≤ 0.2 bits, ranked by PMI); coverage I(B;A) = {:.4} bits",
        rep.coverage_bits
    );
    for (block, rows) in &rep.blocks {
        let list: Vec<String> = rows
            .iter()
            .map(|r| format!("{:?} ({:.2} bits, n={})", r.token, r.pmi_bits, r.count))
            .collect();
        let shown = if list.is_empty() {
            "–".to_string()
        } else {
            list.join(", ")
        };
        println!("  {block}: {shown}");
    }
    Ok(())
}

/// Run `localist eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let reports = eval_reports(&args)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        print!(
            "{}",
            table(&reports, DialMode::from(args.dial.mode).label())
        );
    }
    if args.anchors {
        print_anchors(&args.checkpoint)?;
    }
    Ok(())
}
