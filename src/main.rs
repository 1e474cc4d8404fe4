//! The `localist` command line. All work lives in the library; this only parses and dispatches.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = localist::cli::Cli::parse();
    match localist::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
