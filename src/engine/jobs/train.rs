//! A training run for a face that prints: run the job on the default device and hand back a
//! plain summary (steps, held-out metrics, what recruitment did) instead of the session.

use anyhow::Result;

use crate::engine::train_job::{default_device, run_with_recruitment, TrainJob};
use crate::train::eval::EvalReport;
use crate::train::recruit::RecruitEvent;
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
    /// Steps completed.
    pub steps: usize,
    /// Held-out evaluation at λ_inf = 0.
    pub eval: EvalReport,
    /// Recruitment's summary, when the job recruited.
    pub recruitment: Option<RecruitSummary>,
}

/// Run `job` on the default device; `on_step` hears every step (return false to stop) and
/// `on_event` every recruitment decision.
pub fn train(
    job: &TrainJob,
    on_step: impl FnMut(&StepStats) -> bool,
    on_event: impl FnMut(&RecruitEvent),
) -> Result<TrainSummary> {
    let device = default_device();
    let outcome = run_with_recruitment(job, &device, on_step, on_event)?;
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
        eval: outcome.eval.clone(),
        recruitment,
    })
}
