//! What `train --resume` says before it runs: what it keeps of the checkpoint, what it takes
//! from the command instead, and whether the optimizer goes on exactly; and the flags a run of
//! our own would ignore, refused.

use std::path::Path;

use anyhow::{bail, Result};

/// Refuse what `train` without `--from` would ignore without a word: `--blocks` on a resumed
/// run (it keeps the checkpoint's), and `--adapt` or `--dial-curve` (`fine_tune_flags`), which
/// only a fine-tune reads (clap's `requires = "from"` let both through).
pub fn refuse_unused(
    resume: Option<&Path>,
    blocks: Option<&str>,
    fine_tune_flags: bool,
) -> Result<()> {
    if let (Some(dir), Some(blocks)) = (resume, blocks) {
        bail!(
            "--blocks {blocks} with --resume {}: a resumed run keeps the checkpoint's blocks \
             (they were ignored unsaid); give it new ones first with `localist blocks -c {} \
             --out NEW ...`, then resume NEW",
            dir.display(),
            dir.display()
        );
    }
    if fine_tune_flags {
        bail!(
            "--adapt and --dial-curve apply to fine-tuning a pretrained decoder: give --from \
             MODEL, or leave them out"
        );
    }
    Ok(())
}

/// The notes of a run resumed from `dir`, on stderr: `shape_given` when --preset or
/// --tokenizer was given, `now` the run's training settings by flag (`--lambda-train`, `--eta`,
/// `--lr`, `--mu-anchor`).
pub fn notes(dir: &Path, shape_given: bool, now: &[(&str, f64)]) {
    // A resumed run keeps the checkpoint's model and tokenizer: said, not silently ignored.
    if shape_given {
        eprintln!(
            "note: --resume {}: the model and tokenizer are the checkpoint's; --preset and \
             --tokenizer are not used",
            dir.display()
        );
    }
    if let Some(note) = changed_settings(dir, now) {
        eprintln!("note: --resume {}: {note}", dir.display());
    }
    if !crate::engine::has_optimizer_state(dir) && dir.is_dir() {
        eprintln!(
            "note: --resume {}: no optimizer state ({}) there; the optimizer restarts \
             (Adam moments from zero), so the run is not an exact continuation",
            dir.display(),
            crate::engine::OPTIMIZER_FILE
        );
    }
}

/// The training settings of this run that differ from those the checkpoint at `dir` was
/// trained with, said as a note: a resumed run takes the command's, and `--lambda-train` left
/// out went back to 0 from the checkpoint's 1 without a word.
fn changed_settings(dir: &Path, now: &[(&str, f64)]) -> Option<String> {
    let saved = crate::engine::outputs::json_file(&dir.join("config.json"))?;
    let config = saved.get("training")?.get("config")?;
    let read = |v: &serde_json::Value, key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    let said: Vec<String> = now
        .iter()
        .map(|&(flag, now)| {
            let was = match flag {
                "--lr" => config.get("optimizer").and_then(|o| read(o, "lr")),
                _ => read(config, &flag[2..].replace('-', "_")),
            };
            (flag, was, now)
        })
        .filter_map(|(flag, was, now)| {
            let was = was?;
            ((was - now).abs() > 1e-12 * was.abs().max(1.0))
                .then(|| format!("{flag} {now} (was {was})"))
        })
        .collect();
    (!said.is_empty()).then(|| {
        format!(
            "this run trains with {}; a resumed run takes the command's settings, not the \
             checkpoint's",
            said.join(", ")
        )
    })
}
