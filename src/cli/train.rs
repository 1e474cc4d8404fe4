//! `localist train`: train a model and write a checkpoint, with a live progress bar.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::cli::recruit::RecruitArgs;
use crate::cli::train_summary::{failure_context, print_event, print_summary, progress_bar};
use crate::engine::corpus::{asset_path, BlockSpec, CorpusSource, TokenizerKind};
use crate::engine::files::{check_regular, human_bytes, MAX_DOCUMENT_BYTES};
use crate::engine::jobs::train::{train, train_shape};
use crate::engine::train_job::TrainJob;
use crate::engine::{AdamWConfig, Sampling, TrainConfig};

/// Tokenizer choice on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenizerArg {
    /// 96-symbol characters (the reference vocabulary).
    Char,
    /// Words fitted on the corpus (letters of any script; Chinese, Thai: a character each).
    Word,
}

/// The corpus a run trains on when none is given (and it resumes nothing).
pub const DEFAULT_CORPUS: &str = "assets/corpora/shakespeare_1mb.txt";

/// The training flags `train` and `sweep` share: what to train on, which model, how.
#[derive(Args, Debug, Clone)]
pub struct TrainBasics {
    /// Corpus: a UTF-8 text file, `synthetic` or `synthetic:RECORDS` (default: the bundled
    /// Shakespeare; with `train --resume`, the corpus the checkpoint was trained on)
    #[arg(long)]
    pub corpus: Option<String>,
    /// Tokenizer (the synthetic corpus always uses words).
    #[arg(long, value_enum, default_value_t = TokenizerArg::Char)]
    pub tokenizer: TokenizerArg,
    /// Model preset: tiny or small.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Blocks: single, windows:W, lexicon:PATH or corpus (the synthetic lexicon).
    #[arg(long)]
    pub blocks: Option<String>,
    /// Rows per batch.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Seed for initialisation, sampling and the synthetic corpus.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl TokenizerArg {
    /// The engine's tokenizer kind.
    pub fn kind(self) -> TokenizerKind {
        match self {
            TokenizerArg::Char => TokenizerKind::Char,
            TokenizerArg::Word => TokenizerKind::Word,
        }
    }

    /// Its name on the command line.
    pub fn label(self) -> &'static str {
        match self {
            TokenizerArg::Char => "char",
            TokenizerArg::Word => "word",
        }
    }
}

/// Arguments of `localist train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Corpus, tokenizer, preset, blocks, batch and seed.
    #[command(flatten)]
    pub basics: TrainBasics,
    /// Training dial λ_train in [0, 1] (weight of the off-block penalty).
    #[arg(long, default_value = "0", value_parser = super::parse_lambda)]
    pub lambda_train: f64,
    /// Penalty scale η (in [0, 1e6]).
    #[arg(long, default_value_t = 1.0, value_parser = super::flags::weight)]
    pub eta: f64,
    /// Anchor-loss weight μ_anc (in [0, 1e6]); default 0.05, but 0 with --from (a pretrained
    /// model has no slot for anchor keys: there they only shape its queries, and are not kept).
    #[arg(long, value_parser = super::flags::weight)]
    pub mu_anchor: Option<f64>,
    /// A rule file to train towards (a penalty −log PF_mass where each rule fires).
    #[arg(long)]
    pub rules: Option<std::path::PathBuf>,
    /// Weight μ_rule of the rule penalty (used with --rules; in [0, 1e6]).
    #[arg(long, default_value_t = 1.0, value_parser = super::flags::weight, requires = "rules")]
    pub mu_rule: f64,
    /// Train only parameters whose names start with these (comma-separated, e.g.
    /// `head.bias,ln_f` to fine-tune a specialist cheaply); default: all.
    #[arg(long, value_delimiter = ',')]
    pub trainable: Vec<String>,
    /// Optimizer steps.
    #[arg(long, default_value_t = 500)]
    pub steps: usize,
    /// Tokens per row (at most the preset's positions).
    #[arg(long, default_value_t = 64)]
    pub seq: usize,
    /// Learning rate (in (0, 10⁶]; a huge one makes training diverge, which the trainer reports at the step).
    #[arg(long, default_value_t = 1e-3, value_parser = super::flags::learning_rate)]
    pub lr: f64,
    /// The learning rate over the run: `cosine` (5% linear warm-up, then cosine decay to a
    /// tenth of --lr) or `constant` (the PyTorch reference's).
    #[arg(long, value_enum, default_value = "constant")]
    pub lr_schedule: super::flags::LrScheduleArg,
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
    #[arg(long, conflicts_with = "resume")]
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
    /// Steps between points of the held-out curve (printed, and kept in the checkpoint); the
    /// run warns when the held-out perplexity rises more than 10% above its best twice in a
    /// row (overfitting). Default: about twenty points a run; 0: none
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// End on the weights of the best point of the held-out curve when the last step's are
    /// worse (for small corpora the model learns by heart); with --recruit, also on the block
    /// map and recruitment log of that point
    #[arg(long)]
    pub keep_best: bool,
    /// End on the last step's weights even when the held-out curve ends overfitting, or its
    /// best point's weights code the held-out text the curve does not read measurably better
    /// (by default such a run ends on them, under the block map it ended with)
    #[arg(long, conflicts_with = "keep_best")]
    pub keep_last: bool,
    /// Block recruitment.
    #[command(flatten)]
    pub recruitment: RecruitArgs,
    /// Fine-tune this pretrained decoder (a .gguf file, a LLaMA, Mistral, Phi-3, Qwen2, Qwen3, GPT-2, GPT-Neo, GPT-NeoX, Phi or Gemma folder, or an adapter
    /// folder) instead of training one of ours; --out is then the adapter folder. The model
    /// brings its own tokenizer and shape, and the fine-tune has no schedule, curve or
    /// optimizer file, so the flags for those are refused with it (they were ignored unsaid).
    #[arg(long, conflicts_with_all = [
        "tokenizer", "preset", "trainable", "sequential", "lr_schedule", "no_optimizer_state",
        "eval_every", "keep_best", "keep_last", "init", "resume",
    ])]
    pub from: Option<PathBuf>,
    /// With --from, what trains: qk, lora:R (on queries and keys), lora:R:NAMES or NAMES
    /// (default lora:8).
    #[arg(long)]
    pub adapt: Option<String>,
    /// Locality penalty: group (SPEC's, w_k = 1; default here), group-sqrt, or mass (the
    /// off-block mass ε; --from only, and its default there).
    #[arg(long, value_enum)]
    pub penalty: Option<super::flags::PenaltyArg>,
    /// With --from, also measure the untuned model under the dial at these λ (comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = super::parse_lambda)]
    pub dial_curve: Vec<f64>,
}

impl TrainBasics {
    /// The corpus given, or the bundled Shakespeare.
    pub fn corpus_or_default(&self) -> &str {
        self.corpus.as_deref().unwrap_or(DEFAULT_CORPUS)
    }

    /// The corpus source (a file path resolved against the bundled assets, and made absolute:
    /// recorded relative to the folder training ran in, it named another file elsewhere).
    fn corpus_source(&self) -> Result<CorpusSource> {
        Ok(
            match CorpusSource::parse(self.corpus_or_default(), self.seed)? {
                CorpusSource::File { path } => CorpusSource::File {
                    path: std::path::absolute(asset_path(&path)).unwrap_or(path),
                },
                s => s,
            },
        )
    }
}

impl TrainArgs {
    /// The engine job these arguments describe.
    pub fn job(&self) -> Result<TrainJob> {
        let b = &self.basics;
        // A resumed run goes on on the text its checkpoint was trained on unless told otherwise.
        let corpus = match (&b.corpus, &self.resume) {
            (None, Some(dir)) => crate::engine::jobs::train::resumed_corpus(dir)?,
            _ => b.corpus_source()?,
        };
        let mut blocks = b.blocks.as_deref().map(BlockSpec::parse).transpose()?;
        if self.recruitment.recruit && blocks.is_none() {
            blocks = Some(BlockSpec::Single);
        }
        if self.steps == 0 {
            bail!("--steps must be at least 1");
        }
        super::train_resume::refuse_unused(
            self.resume.as_deref(),
            b.blocks.as_deref(),
            self.adapt.is_some() || !self.dial_curve.is_empty(),
        )?;
        let r = &self.recruitment;
        r.check(self.seq, self.steps)?;
        if r.recruit_windows_throughout && (!r.recruit || r.recruit_start_windows == 0) {
            bail!(
                "--recruit-windows-throughout keeps the windows of --recruit-start-windows W for \
                 the unassigned queries: give --recruit and --recruit-start-windows W too"
            );
        }
        let job = TrainJob {
            corpus,
            tokenizer: b.tokenizer.kind(),
            preset: b.preset.clone(),
            blocks,
            train: self.train_config()?,
            out: Some(self.out.clone()),
            checkpoint_every: self.checkpoint_every,
            init_weights: self.init.clone(),
            resume: self.resume.clone(),
            eval_windows: 64,
            save_optimizer: !self.no_optimizer_state,
            rules: self.rules.clone(),
            recruit: self.recruitment.config(),
            eval_every: self.eval_every,
            keep_best: self.keep_best,
            keep_best_on_overfit: !self.keep_last,
        };
        check_sizes(&job)?;
        Ok(job)
    }

    fn train_config(&self) -> Result<TrainConfig> {
        if self.trainable.iter().any(|t| t.trim().is_empty()) {
            // An empty prefix matches every name: `--trainable ,` trained everything.
            anyhow::bail!(
                "--trainable {}: an empty name in the list (it would match every parameter)",
                self.trainable.join(",")
            );
        }
        let weights = self
            .penalty
            .map(super::flags::PenaltyArg::weighting)
            .transpose()?
            .unwrap_or_default();
        Ok(TrainConfig {
            lambda_train: self.lambda_train,
            eta: self.eta,
            mu_anchor: self.mu_anchor.unwrap_or(0.05),
            mu_rule: if self.rules.is_some() {
                self.mu_rule
            } else {
                0.0
            },
            trainable: self.trainable.clone(),
            batch_size: self.basics.batch,
            seq_len: self.seq,
            steps: self.steps,
            seed: self.basics.seed,
            sampling: if self.sequential {
                Sampling::Sequential
            } else {
                Sampling::Random
            },
            optimizer: AdamWConfig {
                lr: self.lr,
                ..Default::default()
            },
            weights,
            schedule: self.lr_schedule.schedule(),
            ..TrainConfig::default()
        })
    }
}

/// Refuse a `--batch` or `--seq` the model cannot take, or one whose step would need more
/// memory than [`TrainConfig::MAX_STEP_BYTES`], saying the limit, before anything is allocated.
pub fn check_sizes(job: &TrainJob) -> Result<()> {
    let t = &job.train;
    if t.batch_size == 0 || t.batch_size > TrainConfig::MAX_BATCH_SIZE {
        bail!(
            "--batch must lie between 1 and {} rows, got {}",
            TrainConfig::MAX_BATCH_SIZE,
            t.batch_size
        );
    }
    if let Some(rules) = &job.rules {
        // Read later by the trainer; refused here before a device or a 4 GB read.
        check_regular(rules, MAX_DOCUMENT_BYTES, "a rules file")?;
    }
    let shape = train_shape(job)?;
    let (limit, whose) = match (shape.positions, &job.resume) {
        (Some(p), Some(dir)) => (p, format!("the {p} positions of {}", dir.display())),
        _ => (
            TrainConfig::MAX_FRESH_SEQ_LEN,
            format!(
                "the limit of {} tokens for a new model",
                TrainConfig::MAX_FRESH_SEQ_LEN
            ),
        ),
    };
    if t.seq_len < 2 || t.seq_len > limit {
        bail!("--seq must lie between 2 and {whose}, got {}", t.seq_len);
    }
    let need = t.step_bytes(shape.layers, shape.heads, shape.d_model);
    if need > TrainConfig::MAX_STEP_BYTES {
        bail!(
            "--batch {} × --seq {} would need about {} per training step ({} layers × {} heads \
             × {}² attention weights per row); the limit is {}: lower --batch or --seq",
            t.batch_size,
            t.seq_len,
            human_bytes(need),
            shape.layers,
            shape.heads,
            t.seq_len,
            human_bytes(TrainConfig::MAX_STEP_BYTES)
        );
    }
    Ok(())
}

/// Run `localist train`.
pub fn run(args: TrainArgs) -> Result<()> {
    crate::cli::output::check_model_out(&args.out)?;
    // Held until the run ends: a second run writing the same --out is refused at once.
    let _lock = crate::engine::out_lock::OutLock::take(&args.out)
        .map_err(|m| anyhow::anyhow!("--out {}: {m}", args.out.display()))?;
    if let Some(dir) = &args.resume {
        let b = &args.basics;
        let shape_given = b.preset != "tiny" || matches!(b.tokenizer, TokenizerArg::Word);
        let now = [
            ("--lambda-train", args.lambda_train),
            ("--eta", args.eta),
            ("--lr", args.lr),
            ("--mu-anchor", args.mu_anchor.unwrap_or(0.05)),
        ];
        super::train_resume::notes(dir, shape_given, &now);
    }
    let job = args.job()?;
    let pb = progress_bar(job.train.steps, args.quiet);
    let started = Instant::now();
    let mut tokens = 0usize;
    // Steady-state speed: timed from the end of this run's 10th step (warm-up) to its last,
    // and printed only when at least 10 steps were timed (a resumed run counts its own steps:
    // it once timed from its first step, and a run of 11 steps printed one step's speed).
    let mut timed: Option<(Instant, usize)> = None;
    let mut steady_tps = None;
    let mut seen = 0usize;
    if job.recruit.is_some() {
        pb.println("recruitment: step  move     block                    data bits before → after, model bits, ΔDL, verdict");
    }
    let pb_events = pb.clone();
    let outcome = train(
        &job,
        |s| {
            tokens += s.tokens;
            seen += 1;
            match timed {
                None if seen >= 10 => timed = Some((Instant::now(), tokens)),
                Some((t0, tok0)) if seen >= 20 => {
                    steady_tps = Some((tokens - tok0) as f64 / t0.elapsed().as_secs_f64().max(1e-9))
                }
                _ => {}
            }
            let tps = tokens as f64 / started.elapsed().as_secs_f64().max(1e-9);
            pb.set_position(s.step as u64 + 1);
            pb.set_message(format!(
                "{tps:.0} tok/s  loss {:.4} nats  (ce {:.4}, Ω {:.4}, λ {:.2})",
                s.loss_nats, s.ce_nats, s.penalty, s.lambda
            ));
            true
        },
        |e| print_event(&pb_events, e),
    );
    pb.finish_and_clear();
    let summary = outcome.with_context(|| failure_context(&args.out))?;
    let secs = started.elapsed().as_secs_f64();
    print_summary(
        &args.out,
        &summary,
        steady_tps,
        tokens as f64 / secs.max(1e-9),
        secs,
    );
    Ok(())
}
