//! `localist sweep`: the AILA-style λ experiment.
//!
//! Two variants over one λ grid: "train-λ" trains one model per λ (the penalty at λ_train = λ)
//! and evaluates it undialled; "dial-λ" trains one model at λ_train = 0 and turns the inference
//! dial to λ. Both are evaluated on the same held-out text; results go to CSV and Markdown.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use crate::cli::output::write_atomic;
use crate::cli::train::{progress_bar, TokenizerArg, TrainArgs};
use crate::engine::train_job::{default_device, run as run_job, Session};
use crate::model::dial::DialSetting;
use crate::train::eval::EvalReport;

/// Arguments of `localist sweep`.
#[derive(Args, Debug, Clone)]
pub struct SweepArgs {
    /// λ grid (comma-separated, each in [0, 1]).
    #[arg(long, value_delimiter = ',', default_value = "0,0.25,0.5,0.75,1", value_parser = super::parse_lambda)]
    pub lambdas: Vec<f64>,
    /// Output directory for sweep.csv and sweep.md.
    #[arg(long, default_value = "sweep-out")]
    pub out_dir: PathBuf,
    /// Training options shared by every model (its --out is ignored).
    #[command(flatten)]
    pub train: SweepTrain,
}

/// The training options of a sweep (a subset of `train`'s).
#[derive(Args, Debug, Clone)]
pub struct SweepTrain {
    /// Corpus: a UTF-8 text file, `synthetic` or `synthetic:RECORDS`.
    #[arg(long, default_value = "assets/corpora/shakespeare_1mb.txt")]
    pub corpus: String,
    /// Tokenizer.
    #[arg(long, value_enum, default_value_t = TokenizerArg::Char)]
    pub tokenizer: TokenizerArg,
    /// Model preset.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Blocks: single, windows:W, lexicon:PATH or corpus.
    #[arg(long)]
    pub blocks: Option<String>,
    /// Steps per model.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SweepArgs {
    /// The short demonstration run by `localist` with no subcommand.
    pub fn demo() -> Self {
        Self {
            lambdas: vec![0.0, 0.5, 1.0],
            out_dir: PathBuf::from("sweep-out"),
            train: SweepTrain {
                corpus: "assets/corpora/shakespeare_1mb.txt".into(),
                tokenizer: TokenizerArg::Char,
                preset: "tiny".into(),
                blocks: Some("windows:8".into()),
                steps: 150,
                batch: 16,
                seed: 0,
            },
        }
    }

    fn train_args(&self, lambda: f64) -> TrainArgs {
        let t = &self.train;
        TrainArgs {
            recruitment: Default::default(),
            corpus: t.corpus.clone(),
            tokenizer: t.tokenizer,
            preset: t.preset.clone(),
            blocks: t.blocks.clone(),
            lambda_train: lambda,
            eta: 1.0,
            mu_anchor: 0.05,
            rules: None,
            mu_rule: 0.0,
            trainable: Vec::new(),
            steps: t.steps,
            batch: t.batch,
            seq: 64,
            lr: 1e-3,
            seed: t.seed,
            sequential: false,
            out: PathBuf::new(),
            checkpoint_every: 0,
            init: None,
            resume: None,
            no_optimizer_state: true,
            quiet: true,
        }
    }
}

/// One row of the sweep.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SweepRow {
    /// "train-λ" or "dial-λ".
    pub variant: &'static str,
    /// The metrics.
    pub report: EvalReport,
}

fn train_one(args: &SweepArgs, lambda: f64, pb: &indicatif::ProgressBar) -> Result<Session> {
    let mut job = args.train_args(lambda).job()?;
    job.out = None;
    let device = default_device();
    let started = Instant::now();
    let mut tokens = 0usize;
    let outcome = run_job(&job, &device, |s| {
        tokens += s.tokens;
        pb.inc(1);
        pb.set_message(format!(
            "λ_train {lambda:.2}: loss {:.3}, {:.0} tok/s",
            s.loss_nats,
            tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
        true
    })
    .with_context(|| format!("sweep: training at λ_train = {lambda}"))?;
    Ok(outcome.session)
}

/// Run every model of the sweep and return its rows.
pub fn sweep_rows(args: &SweepArgs) -> Result<Vec<SweepRow>> {
    let n_models = args.lambdas.iter().filter(|&&l| l > 0.0).count() + 1;
    let pb = progress_bar(n_models * args.train.steps, false);
    let base = train_one(args, 0.0, &pb)?;
    let mut rows = Vec::new();
    for &lam in &args.lambdas {
        let trained = if lam == 0.0 {
            base.evaluate(&DialSetting::default())?
        } else {
            train_one(args, lam, &pb)?.evaluate(&DialSetting::default())?
        };
        rows.push(SweepRow {
            variant: "train-λ",
            report: EvalReport {
                lambda: lam,
                ..trained
            },
        });
    }
    for &lam in &args.lambdas {
        rows.push(SweepRow {
            variant: "dial-λ",
            report: base.evaluate(&DialSetting::bias(lam))?,
        });
    }
    pb.finish_and_clear();
    Ok(rows)
}

/// CSV of the rows.
pub fn to_csv(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "variant,lambda,entropy_bits,off_block_mass,pf_mass,pf_top1,pf_true_mass,perplexity,top1_accuracy\n",
    );
    for r in rows {
        let e = &r.report;
        let _ = writeln!(
            s,
            "{},{},{:.5},{:.5},{:.5},{:.5},{},{:.5},{:.5}",
            r.variant,
            e.lambda,
            e.entropy_bits,
            e.off_block_mass,
            e.pf_mass,
            e.pf_top1,
            e.pf_true_mass
                .map(|p| format!("{p:.5}"))
                .unwrap_or_default(),
            e.perplexity,
            e.top1_accuracy
        );
    }
    s
}

/// Markdown table of the rows.
pub fn to_markdown(rows: &[SweepRow], header: &str) -> String {
    let mut s = format!(
        "{header}\n\n| variant | λ | entropy (bits) | ε | PF_mass | PF_top1 | PF true | perplexity | top-1 |\n|---|---|---|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let e = &r.report;
        let _ = writeln!(
            s,
            "| {} | {:.2} | {:.3} | {:.4} | {:.4} | {:.4} | {} | {:.3} | {:.1}% |",
            r.variant,
            e.lambda,
            e.entropy_bits,
            e.off_block_mass,
            e.pf_mass,
            e.pf_top1,
            e.pf_true_mass
                .map(|p| format!("{p:.4}"))
                .unwrap_or_else(|| "–".into()),
            e.perplexity,
            100.0 * e.top1_accuracy
        );
    }
    s
}

/// Run `localist sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    let started = Instant::now();
    let rows = sweep_rows(&args)?;
    let header = format!(
        "Sweep on {} ({} tokenizer, preset {}, {} steps per model, blocks {}); held-out metrics at λ_inf = 0 for train-λ, mode A at λ_inf = λ for dial-λ.",
        args.train.corpus,
        match args.train.tokenizer {
            TokenizerArg::Char => "char",
            TokenizerArg::Word => "word",
        },
        args.train.preset,
        args.train.steps,
        args.train.blocks.as_deref().unwrap_or("default")
    );
    let md = to_markdown(&rows, &header);
    write_atomic(&args.out_dir.join("sweep.csv"), to_csv(&rows).as_bytes())?;
    write_atomic(&args.out_dir.join("sweep.md"), md.as_bytes())?;
    println!("{md}");
    println!(
        "wrote {} and {} in {:.1} s",
        args.out_dir.join("sweep.csv").display(),
        args.out_dir.join("sweep.md").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
