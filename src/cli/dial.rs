//! The dial on the command line: mode, per-layer schedule and temperature, shared by `eval`,
//! `capture` and `audit report`.

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::cli::flags::{MAX_TAU, MIN_TAU};
use crate::engine::{DialMode, DialParams, DialSetting, LayerSchedule};

/// Dial mode on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModeArg {
    /// Mode A: additive bias ln(1 − λ) off-block.
    A,
    /// Mode B: mixture with the block-local softmax.
    B,
    /// Mode C: positional bias −λ|i − j|/σ (comparison only).
    C,
    /// Mode D: mode A plus a falling temperature.
    D,
}

impl From<ModeArg> for DialMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::A => DialMode::Bias,
            ModeArg::B => DialMode::Mixture,
            ModeArg::C => DialMode::Positional,
            ModeArg::D => DialMode::Temperature,
        }
    }
}

/// Dial options shared by `eval`, `capture` and `audit report`.
#[derive(Args, Debug, Clone)]
pub struct DialArgs {
    /// Dial mode.
    #[arg(long, value_enum, default_value_t = ModeArg::A)]
    pub mode: ModeArg,
    /// Per-layer schedule: `uniform` or `power:GAMMA` (λ_ℓ = λ(ℓ/(L−1))^γ).
    #[arg(long, default_value = "uniform")]
    pub schedule: String,
    /// Base temperature τ₀ (in [0.001, 1000]).
    #[arg(long, default_value_t = 1.0, value_parser = super::flags::tau)]
    pub tau: f64,
}

impl DialArgs {
    /// The dial setting at λ.
    pub fn setting(&self, lambda: f64) -> Result<DialSetting> {
        let schedule = if self.schedule == "uniform" {
            LayerSchedule::Uniform
        } else if let Some(g) = self.schedule.strip_prefix("power:") {
            LayerSchedule::Power {
                gamma: super::flags::gamma(g)
                    .map_err(|e| anyhow::anyhow!("--schedule {}: {e}", self.schedule))?,
            }
        } else {
            anyhow::bail!(
                "--schedule {}: expected uniform or power:GAMMA",
                self.schedule
            );
        };
        // Also checked when parsed; a `DialArgs` built in code passes here too.
        if !(MIN_TAU..=MAX_TAU).contains(&self.tau) {
            anyhow::bail!(
                "--tau must be a finite number in [{MIN_TAU}, {MAX_TAU}], got {}",
                self.tau
            );
        }
        Ok(DialSetting {
            params: DialParams {
                mode: self.mode.into(),
                lambda,
                tau: self.tau,
                ..DialParams::default()
            },
            schedule,
        })
    }

    /// The dial settings at each λ.
    pub fn settings(&self, lambdas: &[f64]) -> Result<Vec<DialSetting>> {
        // As `sweep` does: `--lambda 0.5,0.5` printed the same row twice.
        if let Some(l) = crate::engine::jobs::sweep::repeated(lambdas) {
            anyhow::bail!("--lambda: {l} is given twice (each value is one row)");
        }
        lambdas.iter().map(|&l| self.setting(l)).collect()
    }

    /// The mode's short label (for tables).
    pub fn mode_label(&self) -> &'static str {
        DialMode::from(self.mode).label()
    }
}
