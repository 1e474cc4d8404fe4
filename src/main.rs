//! The `localist` command line. All work lives in the library; this only parses and dispatches:
//! a subcommand runs through `cli`, and no subcommand (or `studio`) opens the window.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    localist::keep_freed_memory();
    let cli = localist::cli::Cli::parse();
    let outcome = localist::cli::run(cli).and_then(|o| match o {
        localist::cli::Outcome::Done => Ok(()),
        #[cfg(feature = "studio")]
        localist::cli::Outcome::Studio(checkpoint) => localist::studio::run(checkpoint),
        #[cfg(not(feature = "studio"))]
        localist::cli::Outcome::Studio(_) => Err(anyhow::anyhow!(
            "this build has no window (built without the `studio` feature); \
             use a subcommand, or rebuild with `cargo build --release`"
        )),
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let said = localist::files::shorten_message(&format!("{e:#}"));
            eprintln!("error: {said}");
            ExitCode::FAILURE
        }
    }
}
