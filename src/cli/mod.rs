//! The command line: one file per subcommand, each a thin layer over `engine`.

pub mod blocks;
pub mod capture;
pub mod dial;
pub mod eval;
pub mod output;
pub mod recruit;
pub mod rules;
pub mod specialists;
pub mod sweep;
pub mod synth;
pub mod train;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

/// Localist Studio: train, dial and inspect localist transformers.
#[derive(Parser, Debug)]
#[command(name = "localist", version, about, long_about = None)]
pub struct Cli {
    /// CPU threads for candle (1 is fastest on 2-core machines; sets CANDLE_NUM_THREADS).
    #[arg(long, global = true, default_value_t = 1)]
    pub threads: usize,
    /// What to do (default: open the studio on the bundled sample model).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (progress bar with ETA, tokens/s and loss).
    Train(train::TrainArgs),
    /// Evaluate a checkpoint under one or more dial settings.
    Eval(eval::EvalArgs),
    /// The AILA-style λ sweep: train-λ (one model per λ) against dial-λ (one model, dialled).
    Sweep(sweep::SweepArgs),
    /// Capture attention and metrics for one text as JSON or CSV.
    Capture(capture::CaptureArgs),
    /// Write the synthetic clinical/payments corpus with its lexicon and pointer targets.
    Synth(synth::SynthArgs),
    /// Rebuild a checkpoint's block map (k-means over embeddings, or a lexicon).
    Blocks(blocks::BlocksArgs),
    /// Open the desktop studio (the default), optionally on a checkpoint.
    Studio {
        /// What to open: a checkpoint directory, a `.gguf` file or a Hugging Face folder (default:
        /// the bundled λ_train = 1 Shakespeare sample).
        checkpoint: Option<std::path::PathBuf>,
    },
    /// A short demonstration sweep on the bundled corpus (about 30 s), printed as a table.
    Demo,
    /// Grow a pool of specialists over documents by description length; print the routing.
    Specialists(specialists::SpecialistsArgs),
    /// Rule files: check them.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// The audit report: write it headless, or verify one.
    #[command(subcommand)]
    Audit(rules::AuditCommand),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if cli.threads == 0 {
        bail!("--threads must be at least 1");
    }
    // Read by candle before its first op; nothing has run yet. RAYON_NUM_THREADS sizes the
    // matmul parallelism, and setting it also stops candle from re-reading /proc/cpuinfo on
    // every matmul (a third of a 64-token capture's time).
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, cli.threads.to_string());
        }
    }
    match cli.command {
        Some(Command::Train(a)) => train::run(a),
        Some(Command::Eval(a)) => eval::run(a),
        Some(Command::Sweep(a)) => sweep::run(a),
        Some(Command::Capture(a)) => capture::run(a),
        Some(Command::Synth(a)) => synth::run(a),
        Some(Command::Blocks(a)) => blocks::run(a),
        Some(Command::Studio { checkpoint }) => crate::studio::run(checkpoint),
        Some(Command::Demo) => sweep::run(sweep::SweepArgs::demo()),
        Some(Command::Rules(c)) => rules::run_rules(c),
        Some(Command::Specialists(a)) => specialists::run(a),
        Some(Command::Audit(c)) => rules::run_audit(c),
        None => crate::studio::run(None),
    }
}

/// Parse a λ value and check it lies in [0, 1].
pub fn parse_lambda(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("λ must lie in [0, 1], got {v}"));
    }
    Ok(v)
}
