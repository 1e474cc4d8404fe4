//! The `localist` command line. All work lives in the library; this only parses and dispatches:
//! a subcommand runs through `cli`, and no subcommand (or `studio`) opens the window.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    localist::keep_freed_memory();
    say_closed_stdout();
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

/// Standard output that cannot be written is said, not a panic: `eval … > /dev/full` and
/// `capture --format csv | head -c 10` exited 101 with "thread 'main' panicked … failed
/// printing to stdout" (Rust's `println!` panics where the write fails). A reader that stopped
/// reading (a broken pipe) ends the run quietly with 141, as a Unix tool stopped by SIGPIPE
/// does; any other failure is an error naming standard output.
fn say_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = (payload.downcast_ref::<String>().map(String::as_str))
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if let Some(cause) = message.strip_prefix("failed printing to stdout: ") {
            if cause.contains("Broken pipe") {
                std::process::exit(141);
            }
            eprintln!("error: writing to standard output: {cause}");
            std::process::exit(1);
        }
        default(info);
    }));
}
