//! Writing result files atomically (temp file + rename), so a failed run leaves no partial file.

pub use crate::engine::export::write_atomic;

/// `--out` of a command that saves a model folder (a checkpoint or an adapter), checked before
/// the run starts ([`crate::engine::outputs::check_model_folder`]): a folder of the user's files is
/// never replaced, and an unwritable path is said before training, not after.
pub fn check_model_out(out: &std::path::Path) -> anyhow::Result<()> {
    crate::engine::outputs::check_model_folder(out)
        .map_err(|m| anyhow::anyhow!("--out {}: {m}", out.display()))
}

/// An output file that must not be one of the command's inputs
/// ([`crate::engine::outputs::check_not_an_input`]).
pub fn check_file_out(
    flag: &str,
    out: &std::path::Path,
    inputs: &[&std::path::Path],
) -> anyhow::Result<()> {
    crate::engine::outputs::check_not_an_input(out, inputs)
        .map_err(|m| anyhow::anyhow!("{flag} {}: {m}", out.display()))
}
