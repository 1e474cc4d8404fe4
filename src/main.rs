//! The `localist` command line. All work lives in the library; this only parses and dispatches:
//! a subcommand runs through `cli`, and no subcommand (or `studio`) opens the window.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = localist::cli::Cli::parse();
    let outcome = localist::cli::run(cli).and_then(|o| match o {
        localist::cli::Outcome::Done => Ok(()),
        localist::cli::Outcome::Studio(checkpoint) => localist::studio::run(checkpoint),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
