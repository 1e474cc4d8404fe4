//! `localist sweep`: the AILA-style λ experiment.
//!
//! Two variants over one λ grid: "train-λ" trains one model per λ (the penalty at λ_train = λ)
//! and evaluates it undialled; "dial-λ" trains one model at λ_train = 0 and turns the inference
//! dial to λ. Both are evaluated on the same held-out text; results go to CSV and Markdown.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::train::{TokenizerArg, TrainArgs, TrainBasics};
use crate::cli::train_summary::progress_bar;
use crate::engine::jobs::sweep::{sweep_csv, sweep_markdown, sweep_rows, SweepRow};

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

/// The training options of a sweep: `train`'s basics and the steps per model.
#[derive(Args, Debug, Clone)]
pub struct SweepTrain {
    /// Corpus, tokenizer, preset, blocks, batch and seed.
    #[command(flatten)]
    pub basics: TrainBasics,
    /// Steps per model.
    #[arg(long, default_value_t = 300)]
    pub steps: usize,
}

impl SweepArgs {
    /// The short demonstration run by `localist demo`.
    pub fn demo() -> Self {
        Self {
            lambdas: vec![0.0, 0.5, 1.0],
            out_dir: PathBuf::from("sweep-out"),
            train: SweepTrain {
                basics: TrainBasics {
                    corpus: None,
                    tokenizer: TokenizerArg::Char,
                    preset: "tiny".into(),
                    blocks: Some("windows:8".into()),
                    batch: 16,
                    seed: 0,
                },
                steps: 150,
            },
        }
    }

    /// The training arguments of every model (at λ_train = 0; the sweep sets each λ).
    fn train_args(&self) -> TrainArgs {
        TrainArgs {
            recruitment: Default::default(),
            basics: self.train.basics.clone(),
            lambda_train: 0.0,
            eta: 1.0,
            mu_anchor: Some(0.05),
            rules: None,
            mu_rule: 0.0,
            trainable: Vec::new(),
            steps: self.train.steps,
            seq: 64,
            lr: 1e-3,
            lr_schedule: super::flags::LrScheduleArg::Constant,
            sequential: false,
            out: PathBuf::new(),
            checkpoint_every: 0,
            init: None,
            resume: None,
            no_optimizer_state: true,
            quiet: true,
            eval_every: Some(0),
            keep_best: false,
            keep_last: true,
            from: None,
            adapt: None,
            dial_curve: Vec::new(),
            penalty: None,
        }
    }
}

/// Run every model of the sweep, with a progress bar, and return its rows.
pub fn rows(args: &SweepArgs) -> Result<Vec<SweepRow>> {
    let job = args.train_args().job()?;
    if matches!(job.blocks, Some(crate::engine::corpus::BlockSpec::Single)) {
        eprintln!(
            "warning: --blocks single holds every token in one block: every key is in the \
             query's own block, so ε reads 0 and PF 1 at every λ whatever the models do"
        );
    }
    let n_models = args.lambdas.iter().filter(|&&l| l > 0.0).count() + 1;
    let pb = progress_bar(n_models * args.train.steps, false);
    let mut started = Instant::now();
    let mut tokens = 0usize;
    let rows = sweep_rows(&job, &args.lambdas, |lambda, s| {
        if s.step == 0 {
            (started, tokens) = (Instant::now(), 0);
        }
        tokens += s.tokens;
        pb.inc(1);
        pb.set_message(format!(
            "λ_train {lambda:.2}: loss {:.3}, {:.0} tok/s",
            s.loss_nats,
            tokens as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ));
    })?;
    pb.finish_and_clear();
    Ok(rows)
}

/// Run `localist sweep`.
pub fn run(args: SweepArgs) -> Result<()> {
    crate::engine::jobs::sweep::check_grid(&args.lambdas)?;
    if args.out_dir.exists() && !args.out_dir.is_dir() {
        bail!(
            "--out-dir {}: is a file, not a folder; the sweep writes sweep.csv and sweep.md there",
            args.out_dir.display()
        );
    }
    crate::engine::outputs::check_not_in_saved_model(&args.out_dir)
        .and_then(|()| crate::engine::outputs::check_creatable(&args.out_dir.join("m")))
        .map_err(|m| anyhow::anyhow!("--out-dir {}: {m}", args.out_dir.display()))?;
    let started = Instant::now();
    let rows = rows(&args)?;
    let t = &args.train;
    let header = format!(
        "Sweep on {} ({} tokenizer, preset {}, {} steps per model, blocks {}); held-out metrics at λ_inf = 0 for train-λ, mode A at λ_inf = λ for dial-λ.",
        t.basics.corpus_or_default(),
        t.basics.tokenizer.label(),
        t.basics.preset,
        t.steps,
        t.basics.blocks.as_deref().unwrap_or("default")
    );
    let md = sweep_markdown(&rows, &header);
    crate::engine::export::write_all_atomic(&[
        (&args.out_dir.join("sweep.csv"), sweep_csv(&rows).as_bytes()),
        (&args.out_dir.join("sweep.md"), md.as_bytes()),
    ])?;
    println!("{md}");
    println!(
        "wrote {} and {} in {:.1} s",
        args.out_dir.join("sweep.csv").display(),
        args.out_dir.join("sweep.md").display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
