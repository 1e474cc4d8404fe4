//! A training run for a face that prints: run the job on the default device and hand back a
//! plain summary (steps, held-out metrics, what recruitment did) instead of the session.

use anyhow::{Context, Result};

use crate::engine::corpus::{asset_path, CorpusSource};
use crate::engine::train_job::{default_device, TrainJob};
use crate::engine::train_run::run_with_events;
pub use crate::engine::train_run::RunEvent;
use crate::files::{read_text, MAX_CONFIG_BYTES};
use crate::model::config::ModelConfig;
use crate::train::eval::EvalReport;
use crate::train::StepStats;

/// What recruitment did in a run.
#[derive(Clone, Debug)]
pub struct RecruitSummary {
    /// Rounds held.
    pub rounds: usize,
    /// Moves accepted.
    pub accepted: usize,
    /// The block names at the end.
    pub blocks: Vec<String>,
    /// Why it stopped, if it did.
    pub stopped: Option<String>,
    /// Milliseconds spent in rounds.
    pub round_ms: f64,
    /// Milliseconds of training between them.
    pub train_ms: f64,
}

/// The end of a training run.
#[derive(Clone, Debug)]
pub struct TrainSummary {
    /// The device it ran on (as candle names it).
    pub device: String,
    /// The step of the weights the run ended on.
    pub steps: usize,
    /// Steps run (more than `steps` when `keep_best` went back to an earlier step), counted
    /// from the start of the model's training.
    pub steps_run: usize,
    /// The step this run started at (0, or a resumed checkpoint's steps).
    pub started_at: usize,
    /// Held-out evaluation at λ_inf = 0.
    pub eval: EvalReport,
    /// Recruitment's summary, when the job recruited.
    pub recruitment: Option<RecruitSummary>,
    /// Why the final map's ε and PF say nothing: it holds every token in one block, or the
    /// held-out text's tokens are nearly all in one ([`crate::model::blocks::BlockMap::weak_on`]).
    pub degenerate: Option<String>,
}

/// Run `job` on the default device; `on_step` hears every step (return false to stop) and
/// `on_event` every recruitment decision, point of the held-out curve and overfitting warning.
pub fn train(
    job: &TrainJob,
    on_step: impl FnMut(&StepStats) -> bool,
    on_event: impl FnMut(&RunEvent),
) -> Result<TrainSummary> {
    let device = default_device();
    let outcome = run_with_events(job, &device, on_step, on_event)?;
    let session = &outcome.session;
    let recruitment = session.recruiter.as_ref().map(|rec| {
        let (round_ms, train_ms) = rec.cost_ms();
        RecruitSummary {
            rounds: rec.rounds.len(),
            accepted: rec.accepted,
            blocks: session.blocks().names.clone(),
            stopped: rec.stopped.clone(),
            round_ms,
            train_ms,
        }
    });
    Ok(TrainSummary {
        device: format!("{:?}", device.location()),
        steps: session.trainer.step,
        steps_run: session
            .history
            .last()
            .map_or(0, |s| s.step + 1)
            .max(session.trainer.step),
        started_at: session.history.first().map_or(0, |s| s.step),
        eval: outcome.eval.clone(),
        recruitment,
        degenerate: (session.blocks().degenerate()).or_else(|| {
            let t = session.trainer.model.config.max_seq_len;
            session
                .blocks()
                .weak_on(session.val.ids.get(..t).unwrap_or(&session.val.ids))
        }),
    })
}

/// The shape of the model a job trains, for checking its flags before anything is allocated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrainShape {
    /// Layers L.
    pub layers: usize,
    /// Heads H per layer.
    pub heads: usize,
    /// Width d_model.
    pub d_model: usize,
    /// Positions of a resumed model; `None` for a fresh one, whose positions follow `--seq`.
    pub positions: Option<usize>,
}

/// A checkpoint's `config.json` (its path and its JSON), read alone: no weights.
fn config_json(dir: &std::path::Path) -> Result<(std::path::PathBuf, serde_json::Value)> {
    let path = dir.join("config.json");
    let text = read_text(&path, MAX_CONFIG_BYTES, "a checkpoint's config.json")?;
    crate::files::check_single_keys(&text)
        .map_err(|m| anyhow::anyhow!("{}: {m}", path.display()))?;
    let meta =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    Ok((path, meta))
}

/// The corpus a checkpoint was trained on, as its `config.json` records it (a file path
/// resolved against the bundled assets), for a run that resumes it without naming a corpus.
pub fn resumed_corpus(dir: &std::path::Path) -> Result<CorpusSource> {
    let (path, meta) = config_json(dir)?;
    let recorded = &meta["training"]["corpus"];
    if recorded.is_null() {
        anyhow::bail!(
            "{}: no training corpus recorded; give --corpus to resume on a text of your choice",
            path.display()
        );
    }
    let source: CorpusSource = serde_json::from_value(recorded.clone()).with_context(|| {
        format!(
            "{}: its training corpus (\"training\".\"corpus\") cannot be read; give --corpus",
            path.display()
        )
    })?;
    let source = match source {
        CorpusSource::File { path } => CorpusSource::File {
            path: asset_path(&path),
        },
        s => s,
    };
    eprintln!(
        "note: resuming {} on the corpus it was trained on, {} (--corpus for another)",
        dir.display(),
        source.label()
    );
    Ok(source)
}

/// The shape of the model `job` trains: the resumed checkpoint's (read from its `config.json`
/// alone, no weights) or the preset's.
pub fn train_shape(job: &TrainJob) -> Result<TrainShape> {
    let (cfg, positions) = match &job.resume {
        Some(dir) => {
            let (path, meta) = config_json(dir)?;
            let cfg: ModelConfig = serde_json::from_value(meta["model"].clone())
                .with_context(|| format!("{}: the model's shape (\"model\")", path.display()))?;
            // The checks loading the model makes, before any size is judged by this shape
            // (a hand-edited max_seq_len = 1 was named as "the 1 positions of" the model).
            cfg.validate().with_context(|| path.display().to_string())?;
            let positions = cfg.max_seq_len;
            (cfg, Some(positions))
        }
        None => (ModelConfig::preset(&job.preset, 1)?, None),
    };
    Ok(TrainShape {
        layers: cfg.num_layers,
        heads: cfg.num_heads,
        d_model: cfg.d_model,
        positions,
    })
}
