//! `localist train`: train a model and write a checkpoint, with a live progress bar.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::corpus::{asset_path, BlockSpec, CorpusSource, TokenizerKind};
use crate::engine::train_job::{default_device, run_with_recruitment, TrainJob};
use crate::train::dataset::Sampling;
use crate::train::recruit::RecruitConfig;
use crate::train::trainer::TrainConfig;

/// Tokenizer choice on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenizerArg {
    /// 96-symbol characters (the reference vocabulary).
    Char,
    /// Words fitted on the corpus.
    Word,
}

/// Arguments of `localist train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Corpus: a UTF-8 text file, `synthetic` or `synthetic:RECORDS`.
    #[arg(long, default_value = "assets/corpora/shakespeare_1mb.txt")]
    pub corpus: String,
    /// Tokenizer (the synthetic corpus always uses words).
    #[arg(long, value_enum, default_value_t = TokenizerArg::Char)]
    pub tokenizer: TokenizerArg,
    /// Model preset: tiny or small.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Blocks: single, windows:W, lexicon:PATH or corpus (the synthetic lexicon).
    #[arg(long)]
    pub blocks: Option<String>,
    /// Training dial λ_train in [0, 1] (weight of the off-block penalty).
    #[arg(long, default_value = "0", value_parser = super::parse_lambda)]
    pub lambda_train: f64,
    /// Penalty scale η.
    #[arg(long, default_value_t = 1.0)]
    pub eta: f64,
    /// Anchor-loss weight μ_anc.
    #[arg(long, default_value_t = 0.05)]
    pub mu_anchor: f64,
    /// A rule file to train towards (a penalty −log PF_mass where each rule fires).
    #[arg(long)]
    pub rules: Option<std::path::PathBuf>,
    /// Weight μ_rule of the rule penalty (used with --rules).
    #[arg(long, default_value_t = 1.0)]
    pub mu_rule: f64,
    /// Train only parameters whose names start with these (comma-separated, e.g.
    /// `head.bias,ln_f` to fine-tune a specialist cheaply); default: all.
    #[arg(long, value_delimiter = ',')]
    pub trainable: Vec<String>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Tokens per row (at most the preset's positions).
    #[arg(long, default_value_t = 64)]
    pub seq: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed for initialisation, sampling and the synthetic corpus.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use the reference's sequential batches instead of random ones.
    #[arg(long)]
    pub sequential: bool,
    /// Output checkpoint directory.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Write an intermediate checkpoint every N steps (0: only at the end).
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Initial weights in the reference's PyTorch names (safetensors).
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Resume from a checkpoint directory (continues to --steps in total).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Leave optimizer moments out of the checkpoint (smaller; cannot resume exactly).
    #[arg(long)]
    pub no_optimizer_state: bool,
    /// No progress bar (for logs).
    #[arg(long)]
    pub quiet: bool,
    /// Block recruitment.
    #[command(flatten)]
    pub recruitment: RecruitArgs,
}

/// `localist train --recruit` and its settings.
#[derive(Args, Debug, Clone)]
pub struct RecruitArgs {
    /// Grow blocks by recruitment (SPEC §9) from the starting map (default: one block), with
    /// unassigned tokens isolated, training and measuring at the dial --recruit-lambda; the
    /// decisions are printed and saved as recruitment.json in the checkpoint.
    #[arg(long)]
    pub recruit: bool,
    /// λ_rec: the mode-A dial the recruitment's data bits are measured (and trained) at.
    #[arg(long, default_value_t = 1.0, value_parser = super::parse_lambda)]
    pub recruit_lambda: f64,
    /// Steps before the first recruitment round.
    #[arg(long, default_value_t = 100)]
    pub recruit_warmup: usize,
    /// E_rec: steps between rounds.
    #[arg(long, default_value_t = 100)]
    pub recruit_every: usize,
    /// Probe steps per candidate (and for the control).
    #[arg(long, default_value_t = 20)]
    pub recruit_probe: usize,
    /// δ_rec in bits: a move must save more than this.
    #[arg(long, default_value_t = 64.0)]
    pub recruit_delta: f64,
    /// K_max: most blocks, block 0 included.
    #[arg(long, default_value_t = 16)]
    pub recruit_kmax: usize,
    /// P: stop after this many rounds without an accepted move.
    #[arg(long, default_value_t = 3)]
    pub recruit_patience: usize,
    /// Charge each block for its anchor keys (L·H·d_h parameters) although they do not enter
    /// the likelihood (see README, Recruitment).
    #[arg(long)]
    pub recruit_charge_anchors: bool,
    /// Held-out tokens in the recruitment buffer.
    #[arg(long, default_value_t = 32768)]
    pub recruit_buffer: usize,
}

impl Default for RecruitArgs {
    fn default() -> Self {
        let c = RecruitConfig::default();
        Self {
            recruit: false,
            recruit_lambda: c.lambda,
            recruit_warmup: 100,
            recruit_every: 100,
            recruit_probe: c.probe_steps,
            recruit_delta: c.delta_bits,
            recruit_kmax: c.k_max,
            recruit_patience: c.patience,
            recruit_buffer: c.buffer_tokens,
            recruit_charge_anchors: false,
        }
    }
}

impl TrainArgs {
    /// The engine job these arguments describe.
    pub fn job(&self) -> Result<TrainJob> {
        let corpus = match CorpusSource::parse(&self.corpus, self.seed)? {
            CorpusSource::File { path } => CorpusSource::File {
                path: asset_path(&path),
            },
            s => s,
        };
        let mut blocks = self.blocks.as_deref().map(BlockSpec::parse).transpose()?;
        if self.recruitment.recruit && blocks.is_none() {
            blocks = Some(BlockSpec::Single);
        }
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        Ok(TrainJob {
            corpus,
            tokenizer: match self.tokenizer {
                TokenizerArg::Char => TokenizerKind::Char,
                TokenizerArg::Word => TokenizerKind::Word,
            },
            preset: self.preset.clone(),
            blocks,
            train: TrainConfig {
                lambda_train: self.lambda_train,
                eta: self.eta,
                mu_anchor: self.mu_anchor,
                mu_rule: if self.rules.is_some() {
                    self.mu_rule
                } else {
                    0.0
                },
                trainable: self.trainable.clone(),
                batch_size: self.batch,
                seq_len: self.seq,
                steps: self.steps,
                seed: self.seed,
                sampling: if self.sequential {
                    Sampling::Sequential
                } else {
                    Sampling::Random
                },
                optimizer: crate::train::optimizer::AdamWConfig {
                    lr: self.lr,
                    ..Default::default()
                },
                ..TrainConfig::default()
            },
            out: Some(self.out.clone()),
            checkpoint_every: self.checkpoint_every,
            init_weights: self.init.clone(),
            resume: self.resume.clone(),
            eval_windows: 64,
            save_optimizer: !self.no_optimizer_state,
            rules: self.rules.clone(),
            recruit: self.recruitment.recruit.then(|| RecruitConfig {
                enabled: true,
                warmup: self.recruitment.recruit_warmup,
                every: self.recruitment.recruit_every,
                buffer_tokens: self.recruitment.recruit_buffer,
                lambda: self.recruitment.recruit_lambda,
                delta_bits: self.recruitment.recruit_delta,
                k_max: self.recruitment.recruit_kmax,
                patience: self.recruitment.recruit_patience,
                probe_steps: self.recruitment.recruit_probe,
                charge_anchor_keys: self.recruitment.recruit_charge_anchors,
                ..RecruitConfig::default()
            }),
        })
    }
}

/// A progress bar showing step, ETA, tokens/s and loss.
pub fn progress_bar(steps: usize, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(steps as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps, ETA {eta}  {msg}",
    ) {
        pb.set_style(style);
    }
    pb
}

/// Run `localist train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let job = args.job()?;
    let device = default_device();
    let pb = progress_bar(job.train.steps, args.quiet);
    let started = Instant::now();
    let mut tokens = 0usize;
    // Steady-state speed: timed from the end of step 10 (warm-up) to the last step.
    let mut timed: Option<(Instant, usize)> = None;
    let mut steady_tps = None;
    let recruiting = job.recruit.is_some();
    if recruiting {
        pb.println("recruitment: step  move     block                    data bits before → after, model bits, ΔDL, verdict");
    }
    let pb_events = pb.clone();
    let outcome = run_with_recruitment(
        &job,
        &device,
        |s| {
            tokens += s.tokens;
            match timed {
                None if s.step + 1 >= 10 => timed = Some((Instant::now(), tokens)),
                Some((t0, tok0)) => {
                    steady_tps = Some((tokens - tok0) as f64 / t0.elapsed().as_secs_f64().max(1e-9))
                }
                None => {}
            }
            let tps = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            pb.set_position(s.step as u64 + 1);
            pb.set_message(format!(
                "{tps:.0} tok/s  loss {:.4} nats  (ce {:.4}, Ω {:.4}, λ {:.2})",
                s.loss_nats, s.ce_nats, s.penalty, s.lambda
            ));
            true
        },
        |e| {
            if pb_events.is_hidden() {
                println!("{}", e.line());
            } else {
                pb_events.println(e.line());
            }
        },
    );
    pb.finish_and_clear();
    let outcome = outcome.with_context(|| {
        if args.out.join("config.json").exists() {
            format!(
                "training for {} (the last good checkpoint there is kept as it was)",
                args.out.display()
            )
        } else {
            format!(
                "training for {} (no checkpoint written)",
                args.out.display()
            )
        }
    })?;
    let e = &outcome.eval;
    let secs = started.elapsed().as_secs_f64();
    println!("device: {:?}", device.location());
    if let Some(tps) = steady_tps {
        println!("steady-state training speed: {tps:.0} tokens/s (after 10 warm-up steps)");
    }
    println!(
        "trained {} steps in {secs:.1} s ({:.0} tokens/s overall); held-out: perplexity {:.3}, top-1 {:.1}%, \
         entropy {:.3} bits, ε {:.4}, PF_mass {:.4}{}",
        outcome.session.trainer.step,
        tokens as f64 / secs.max(1e-9),
        e.perplexity,
        100.0 * e.top1_accuracy,
        e.entropy_bits,
        e.off_block_mass,
        e.pf_mass,
        e.pf_true_mass
            .map(|p| format!(", PF vs true targets {p:.4}"))
            .unwrap_or_default()
    );
    if let Some(rec) = &outcome.session.recruiter {
        let blocks = outcome.session.blocks();
        println!(
            "recruitment: {} rounds, {} accepted moves, {} blocks: {}{}",
            rec.rounds.len(),
            rec.accepted,
            blocks.num_blocks(),
            blocks.names.join(", "),
            rec.stopped
                .as_ref()
                .map(|r| format!(" (stopped: {r})"))
                .unwrap_or_default()
        );
        let (round, train) = rec.cost_ms();
        if train > 0.0 {
            println!(
                "recruitment cost: {:.0} ms in rounds against {:.0} ms of training between them ({:.0}%)",
                round,
                train,
                100.0 * round / train
            );
        }
        println!(
            "recruitment log: {}",
            args.out.join("recruitment.json").display()
        );
    }
    println!("checkpoint: {}", args.out.display());
    Ok(())
}
