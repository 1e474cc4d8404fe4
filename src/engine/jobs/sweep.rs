//! The AILA-style λ sweep as a job: "train-λ" trains one model per λ (the penalty at
//! λ_train = λ) and evaluates it undialled; "dial-λ" trains one model at λ_train = 0 and turns
//! the inference dial to λ. Both are evaluated on the same held-out text; the rows are written
//! as CSV and Markdown.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::engine::figures::{or_dash, TableWriter};
use crate::engine::train_job::{default_device, Session, TrainJob};
use crate::engine::train_run::run as run_job;
use crate::model::dial::DialSetting;
use crate::train::eval::EvalReport;
use crate::train::StepStats;

/// One row of the sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepRow {
    /// "train-λ" or "dial-λ".
    pub variant: &'static str,
    /// The metrics.
    pub report: EvalReport,
}

/// Train `base` (kept in memory) at λ_train = `lambda`.
fn train_one(
    base: &TrainJob,
    lambda: f64,
    on_step: &mut impl FnMut(f64, &StepStats),
) -> Result<Session> {
    let mut job = base.clone();
    job.train.lambda_train = lambda;
    job.out = None;
    let outcome = run_job(&job, &default_device(), |s| {
        on_step(lambda, s);
        true
    })
    .with_context(|| format!("sweep: training at λ_train = {lambda}"))?;
    Ok(outcome.session)
}

/// Most λ values in one sweep: steps of 0.01 from 0 to 1. Each value trains a model; a grid of
/// 5,000 values ran for hours before anyone noticed.
pub const MAX_GRID: usize = 101;

/// A λ grid a sweep can run: not empty, at most [`MAX_GRID`] values, none twice (a repeated λ
/// trains the same model again and prints the same row twice).
pub fn check_grid(lambdas: &[f64]) -> Result<()> {
    if lambdas.is_empty() {
        anyhow::bail!("the λ grid is empty: give at least one value in [0, 1]");
    }
    if lambdas.len() > MAX_GRID {
        anyhow::bail!(
            "the λ grid has {} values; a sweep trains one model per value and takes at most \
             {MAX_GRID} (steps of 0.01)",
            lambdas.len()
        );
    }
    if let Some(a) = repeated(lambdas) {
        anyhow::bail!("the λ grid names {a} twice: each value trains one model");
    }
    Ok(())
}

/// The first value of `lambdas` given again later in the list (a sweep's grid, `eval --lambda`).
pub fn repeated(lambdas: &[f64]) -> Option<f64> {
    lambdas
        .iter()
        .enumerate()
        .find(|&(i, a)| lambdas[i + 1..].contains(a))
        .map(|(_, &a)| a)
}

/// Run every model of the sweep over `lambdas` (each trained as `base` at its λ_train;
/// `on_step` hears each step with the λ_train being trained) and return its rows.
pub fn sweep_rows(
    base: &TrainJob,
    lambdas: &[f64],
    mut on_step: impl FnMut(f64, &StepStats),
) -> Result<Vec<SweepRow>> {
    check_grid(lambdas)?;
    let undialled = train_one(base, 0.0, &mut on_step)?;
    let mut rows = Vec::new();
    for &lam in lambdas {
        let trained = if lam == 0.0 {
            undialled.evaluate(&DialSetting::default())?
        } else {
            train_one(base, lam, &mut on_step)?.evaluate(&DialSetting::default())?
        };
        rows.push(SweepRow {
            variant: "train-λ",
            report: EvalReport {
                lambda: lam,
                ..trained
            },
        });
    }
    for &lam in lambdas {
        rows.push(SweepRow {
            variant: "dial-λ",
            report: undialled.evaluate(&DialSetting::bias(lam))?,
        });
    }
    Ok(rows)
}

/// CSV of the rows.
pub fn sweep_csv(rows: &[SweepRow]) -> String {
    let mut t = TableWriter::csv([
        "variant",
        "lambda",
        "entropy_bits",
        "off_block_mass",
        "pf_mass",
        "pf_top1",
        "pf_true_mass",
        "perplexity",
        "top1_accuracy",
    ]);
    for r in rows {
        let e = &r.report;
        t.row([
            r.variant.to_string(),
            e.lambda.to_string(),
            format!("{:.5}", e.entropy_bits),
            format!("{:.5}", e.off_block_mass),
            format!("{:.5}", e.pf_mass),
            format!("{:.5}", e.pf_top1),
            e.pf_true_mass
                .map(|p| format!("{p:.5}"))
                .unwrap_or_default(),
            format!("{:.5}", e.perplexity),
            format!("{:.5}", e.top1_accuracy),
        ]);
    }
    t.finish()
}

/// Markdown table of the rows under `header`.
pub fn sweep_markdown(rows: &[SweepRow], header: &str) -> String {
    let mut t = TableWriter::markdown([
        "variant",
        "λ",
        "entropy (bits)",
        "ε",
        "PF_mass",
        "PF_top1",
        "PF true",
        "perplexity",
        "top-1",
    ]);
    for r in rows {
        let e = &r.report;
        t.row([
            r.variant.to_string(),
            format!("{:.2}", e.lambda),
            format!("{:.3}", e.entropy_bits),
            format!("{:.4}", e.off_block_mass),
            format!("{:.4}", e.pf_mass),
            format!("{:.4}", e.pf_top1),
            or_dash(e.pf_true_mass, 4),
            format!("{:.3}", e.perplexity),
            format!("{:.1}%", 100.0 * e.top1_accuracy),
        ]);
    }
    format!("{header}\n\n{}", t.finish())
}
