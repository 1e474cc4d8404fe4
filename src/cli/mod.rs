//! The command line: one file per subcommand, each a thin layer over `engine`.

pub mod blocks;
pub mod capture;
pub mod corpus_gen;
pub mod dial;
pub mod eval;
pub mod finetune;
pub mod flags;
pub mod output;
pub mod recruit;
pub mod rules;
pub mod specialists;
pub mod sweep;
pub mod synth;
pub mod train;
mod train_resume;
mod train_summary;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

/// Localist Studio: train, dial and inspect localist transformers.
#[derive(Parser, Debug)]
#[command(name = "localist", version, about, long_about = None)]
pub struct Cli {
    /// CPU threads. Commands that train cut each step's batch over them (default: every CPU);
    /// the others give them to candle's matrix products (default: the count measured fastest
    /// on this machine, once, and remembered in the config folder's threads.json).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// What to do (default: open the studio on the bundled sample model).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (progress bar with ETA, tokens/s and loss).
    Train(Box<train::TrainArgs>),
    /// Evaluate a checkpoint under one or more dial settings.
    Eval(eval::EvalArgs),
    /// The AILA-style λ sweep: train-λ (one model per λ) against dial-λ (one model, dialled).
    Sweep(sweep::SweepArgs),
    /// Capture attention and metrics for one text as JSON or CSV.
    Capture(capture::CaptureArgs),
    /// Write the synthetic clinical/payments corpus with its lexicon and pointer targets.
    Synth(synth::SynthArgs),
    /// Write a corpus of the topic family (K topics, function words, markers) as a text file.
    CorpusGen(corpus_gen::CorpusGenArgs),
    /// Rebuild a checkpoint's block map (k-means over embeddings, or a lexicon).
    Blocks(blocks::BlocksArgs),
    /// Open the desktop studio (the default), optionally on a checkpoint.
    Studio {
        /// What to open: a checkpoint directory, a `.gguf` file or a Hugging Face folder (default:
        /// the bundled λ_train = 1 Shakespeare sample).
        checkpoint: Option<std::path::PathBuf>,
    },
    /// A short demonstration sweep on the bundled corpus (about 30 s), printed as a table and
    /// written to ./sweep-out (sweep.csv, sweep.md).
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

/// What a command line asks for once its own work is done.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The subcommand ran to completion.
    Done,
    /// Open the desktop studio, optionally on this checkpoint (the binary does: the command
    /// line reaches the model only through the engine and knows nothing of the window).
    Studio(Option<std::path::PathBuf>),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<Outcome> {
    if cli.threads == Some(0) {
        bail!("--threads must be at least 1");
    }
    // 100,000 threads aborted the process after a minute (no stack for the 100,001st).
    const MOST_THREADS: usize = 1024;
    if cli.threads.is_some_and(|n| n > MOST_THREADS) {
        bail!("--threads must be at most {MOST_THREADS}");
    }
    // A thread count in the environment is the user's choice, unless it is the one cargo's
    // config gives every test (`.cargo/config.toml`, marked by LOCALIST_CARGO_THREADS).
    let from_cargo = std::env::var_os("LOCALIST_CARGO_THREADS").is_some();
    let from_env =
        std::env::var("CANDLE_NUM_THREADS").is_ok_and(|n| n.parse::<usize>().is_ok_and(|n| n > 0));
    // A fine-tune (train --from) is one large forward a step, whose products do use threads.
    let trains = match &cli.command {
        Some(Command::Train(a)) => a.from.is_none(),
        Some(Command::Sweep(_) | Command::Demo | Command::Specialists(_)) => true,
        _ => false,
    };
    let threads = if cli.threads.is_some() || from_cargo || !from_env {
        Some(match cli.threads {
            // Training's shards scale with the CPUs (each a share of the batch); the measured
            // choice is for products, which do not.
            None if trains => std::thread::available_parallelism().map_or(1, |n| n.get()),
            requested => crate::engine::threads::choose(requested),
        })
    } else {
        None
    };
    // Read by candle before its first op; nothing has run yet. RAYON_NUM_THREADS sizes the
    // matmul parallelism, and setting it also stops candle from re-reading /proc/cpuinfo on
    // every matmul (a third of a 64-token capture's time).
    //
    // A command that trains cuts each step's batch over the threads instead, its shards'
    // products on one thread each (`train::trainer::shards`: 1.8 times one thread's speed on
    // two, where threaded products made it slower).
    //
    // The studio trains too: where its products measured fastest on one thread (and the user
    // did not ask for one), its training cuts the batch over every CPU the same way.
    let studio = matches!(cli.command, None | Some(Command::Studio { .. }));
    if let Some(n) = threads {
        let products = if trains && n > 1 {
            crate::engine::threads::set_training_threads(n);
            1
        } else {
            if studio && n == 1 && cli.threads.is_none() {
                let cpus = std::thread::available_parallelism().map_or(1, |c| c.get());
                crate::engine::threads::set_training_threads(cpus);
            }
            n
        };
        for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
            std::env::set_var(var, products.to_string());
        }
        crate::engine::threads::start_pool(products);
    }
    let done = |r: Result<()>| r.map(|()| Outcome::Done);
    match cli.command {
        Some(Command::Studio { checkpoint }) => Ok(Outcome::Studio(checkpoint)),
        None => Ok(Outcome::Studio(None)),
        Some(Command::Train(a)) if a.from.is_some() => done(finetune::run(&a)),
        Some(Command::Train(a)) => done(train::run(*a)),
        Some(Command::Eval(a)) => done(eval::run(a)),
        Some(Command::Sweep(a)) => done(sweep::run(a)),
        Some(Command::Capture(a)) => done(capture::run(a)),
        Some(Command::Synth(a)) => done(synth::run(a)),
        Some(Command::Blocks(a)) => done(blocks::run(a)),
        Some(Command::CorpusGen(a)) => done(corpus_gen::run(a)),
        Some(Command::Demo) => done(sweep::run(sweep::SweepArgs::demo())),
        Some(Command::Rules(c)) => done(rules::run_rules(c)),
        Some(Command::Specialists(a)) => done(specialists::run(a)),
        Some(Command::Audit(c)) => done(rules::run_audit(c)),
    }
}

/// Parse a λ value and check it is finite and lies in [0, 1].
pub fn parse_lambda(s: &str) -> Result<f64, String> {
    flags::unit(s)
}
