//! What a training run checks before it starts, with the corpus or checkpoint named: enough
//! text for a window of training and of held-out evaluation, steps left to train when it
//! resumes, and the recruitment log saved beside a checkpoint.

use std::path::Path;

use anyhow::{bail, Result};

use crate::engine::files::{read_bytes, MAX_DOCUMENT_BYTES};
use crate::model::blocks::BlockMap;
use crate::train::dataset::{train_split, TokenStream};
use crate::train::recruit::{RecruitConfig, Recruiter};
use crate::train::trainer::{TrainConfig, Trainer};

/// The corpus stream (`corpus` names it) cut into its training text and held-out tenth, each
/// long enough for a window of `seq_len` (a too-short held-out text was found only after
/// training).
pub(crate) fn checked_split(
    corpus: &str,
    seq_len: usize,
    stream: &TokenStream,
) -> Result<(TokenStream, TokenStream)> {
    let (train, val) = stream.split_at(train_split(stream.len()));
    let need = seq_len + 1;
    let fix = "a longer text or a smaller --seq";
    if train.len() <= need {
        bail!(
            "{corpus}: its training text has {} tokens; --seq {seq_len} needs more than {need} \
             ({fix})",
            train.len()
        );
    }
    if val.len() < need {
        bail!(
            "{corpus}: its held-out tenth has {} tokens; evaluating windows of --seq {seq_len} \
             needs at least {need} ({fix})",
            val.len()
        );
    }
    Ok((train, val))
}

/// A resumed run (of the checkpoint `dir`, `done` steps trained) has steps left to reach
/// `steps`: with none, nothing would train, yet the checkpoint would be written again with
/// this run's corpus recorded, and its provenance would be false.
pub(crate) fn check_steps_left(dir: &str, steps: usize, done: usize) -> Result<()> {
    if steps <= done {
        bail!(
            "{dir}: has trained {done} steps already, and the steps to train (--steps {steps}) \
             count from the start: give more than {done}"
        );
    }
    Ok(())
}

/// The training record of a checkpoint to resume: `None` when it has none (counted from step
/// 0, with a note); an error when it cannot be read (a malformed one restarted at step 0 and
/// trained every step again, unsaid).
pub(crate) fn resumed_record<T: serde::de::DeserializeOwned>(
    training: &serde_json::Value,
    dir: &str,
) -> Result<Option<T>> {
    if training.is_null() {
        eprintln!("note: {dir}: config.json records no training: resuming counts from step 0");
        return Ok(None);
    }
    serde_path_to_error::deserialize(training.clone())
        .map(Some)
        .map_err(|e| {
            anyhow::anyhow!(
                "{dir}: the \"training\" record in config.json cannot be read ({e}), so the steps \
             it has trained are unknown (a resumed run would train them all again)"
            )
        })
}

/// The recruitment log saved beside a checkpoint: `None` when there is none; an error naming
/// the file when it is not a regular file, too large, or not a log this version reads.
pub(crate) fn read_recruitment(dir: &Path) -> Result<Option<Recruiter>> {
    let path = dir.join("recruitment.json");
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let bytes = read_bytes(&path, MAX_DOCUMENT_BYTES, "a recruitment log")?;
    let rec: Recruiter = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: not a recruitment log ({e})", path.display()))?;
    rec.check_consistent()
        .map_err(|e| anyhow::anyhow!("{}: an inconsistent recruitment log: {e}", path.display()))?;
    Ok(Some(rec))
}

/// Save `rec` as the recruitment log beside the checkpoint `dir` (atomically), as
/// [`read_recruitment`] reads it.
pub(crate) fn write_recruitment(dir: &Path, rec: &Recruiter) -> Result<()> {
    crate::engine::export::write_atomic(
        &dir.join("recruitment.json"),
        &serde_json::to_vec_pretty(rec)?,
    )
}

/// The recruitment log saved beside the checkpoint `dir` whose blocks are `blocks`, as
/// [`read_recruitment`] reads it; an error naming the file when it is not the log of those
/// blocks ([`Recruiter::describes`]).
pub(crate) fn read_recruitment_of(dir: &Path, blocks: &BlockMap) -> Result<Option<Recruiter>> {
    let Some(rec) = read_recruitment(dir)? else {
        return Ok(None);
    };
    match rec.describes(blocks) {
        Ok(()) => Ok(Some(rec)),
        Err(why) => bail!(
            "{}: not the log of this checkpoint's blocks ({why})",
            dir.join("recruitment.json").display()
        ),
    }
}

/// A run's recruiter, when it recruits: a resumed run's goes on with the log saved beside the
/// checkpoint it resumes (`resume`), when there is one.
pub(crate) fn run_recruiter(
    resume: Option<&Path>,
    recruit: Option<&RecruitConfig>,
    trainer: &Trainer,
) -> Result<Option<Recruiter>> {
    let (Some(dir), Some(rc)) = (resume, recruit) else {
        return Ok(Recruiter::for_run(recruit, trainer));
    };
    let saved = read_recruitment_of(dir, &trainer.blocks).map_err(|e| {
        anyhow::anyhow!(
            "resuming {}: {e:#}; move it aside to start recruitment afresh",
            dir.display()
        )
    })?;
    Ok(match saved {
        Some(rec) => {
            eprintln!(
                "note: recruitment goes on from {} ({} decisions, {} moves accepted{})",
                dir.join("recruitment.json").display(),
                rec.log.len(),
                rec.accepted,
                rec.stopped
                    .as_ref()
                    .map_or(String::new(), |why| format!("; it had stopped: {why}"))
            );
            Some(rec.continued(rc))
        }
        None => Recruiter::for_run(recruit, trainer),
    })
}

/// The recruitment log of a checkpoint resumed without `--recruit`, when it describes the
/// checkpoint's blocks: the blocks do not change, so the log that made them is saved beside the
/// new checkpoint (a resume into the same folder deleted it). A log that cannot be read or
/// belongs to other blocks is left behind, with a note saying why.
pub(crate) fn earlier_log(
    resume: Option<&Path>,
    recruit: Option<&RecruitConfig>,
    blocks: &BlockMap,
) -> Option<Recruiter> {
    let dir = resume.filter(|_| recruit.is_none())?;
    let path = dir.join("recruitment.json");
    match read_recruitment_of(dir, blocks) {
        Ok(Some(rec)) => {
            eprintln!(
                "note: {} (how the blocks were recruited) is saved with the new checkpoint; \
                 this run does not recruit (--recruit goes on with it)",
                path.display()
            );
            Some(rec)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("note: {e:#}; it is not carried over");
            None
        }
    }
}

/// A run that recruits starts from semantic blocks with its unassigned tokens open, and the
/// penalty's start ([`RecruitConfig::start_windows`]).
pub(crate) fn for_recruitment(
    rc: &RecruitConfig,
    blocks: &mut BlockMap,
    train: &mut TrainConfig,
) -> Result<()> {
    if blocks.kind != crate::model::blocks::BlockKind::Semantic {
        bail!("recruitment needs semantic blocks (single or a lexicon), not positional windows");
    }
    // Open, and so not isolated: a map saved with both was refused when read back.
    blocks.open_unassigned = true;
    blocks.isolate_unassigned = false;
    train.start_windows = rc.start_windows_width();
    train.windows_throughout = rc.windows_throughout;
    Ok(())
}
