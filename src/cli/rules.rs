//! `localist rules check` and `localist audit report|verify`: rules and their audit, headless.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::cli::dial::DialArgs;
use crate::engine::audit::{read_report, verify_report};
use crate::engine::jobs::audit::{audit_report, AuditJob};
use crate::engine::jobs::rules::check_rules;
use crate::engine::jobs::tables::audit_rule_table;

/// `localist rules ...`.
#[derive(Subcommand, Debug)]
pub enum RulesCommand {
    /// Check a rule file: syntax, and (with --checkpoint) every block and token it names.
    Check {
        /// The rule file.
        file: PathBuf,
        /// Also resolve the rules against this checkpoint's blocks and vocabulary.
        #[arg(long, short)]
        checkpoint: Option<PathBuf>,
    },
}

/// `localist audit ...`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Write the audit report (HTML with its figures, and a JSON twin) without the studio.
    Report(ReportArgs),
    /// Recompute a report's hashes and its log's hash chain; say what, if anything, changed.
    Verify {
        /// The report's JSON twin.
        report: PathBuf,
    },
}

/// Arguments of `localist audit report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Checkpoint directory.
    #[arg(long, short)]
    pub checkpoint: PathBuf,
    /// Rule file.
    #[arg(long, short)]
    pub rules: PathBuf,
    /// The text the rules are measured on (default: the first records of the model's
    /// synthetic corpus, or the first line of its training text), truncated to the model's
    /// positions.
    #[arg(long)]
    pub text: Option<String>,
    /// Inference dial λ_inf, mode, schedule and temperature.
    #[arg(long, default_value_t = 0.0, value_parser = super::parse_lambda)]
    pub lambda: f64,
    /// Dial options.
    #[command(flatten)]
    pub dial: DialArgs,
    /// Output HTML file; the JSON twin goes beside it with `.json`.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Run `localist rules ...`.
pub fn run_rules(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Check { file, checkpoint } => {
            let rules = check_rules(&file, checkpoint.as_deref())?;
            let on = rules.iter().filter(|r| r.enabled).count();
            println!(
                "{}: {} rules, {on} on, no errors",
                file.display(),
                rules.len()
            );
            for r in &rules {
                println!(
                    "  {}{}: {}",
                    r.id,
                    if r.enabled { "" } else { " (off)" },
                    r.description
                );
            }
            Ok(())
        }
    }
}

/// Run `localist audit ...`.
pub fn run_audit(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Report(a) => {
            let job = AuditJob {
                dial: a.dial.setting(a.lambda)?,
                checkpoint: a.checkpoint,
                rules: a.rules,
                text: a.text,
                out: a.out,
            };
            let report = audit_report(&job)?;
            println!(
                "wrote {} and {}",
                job.out.display(),
                job.out.with_extension("json").display()
            );
            print!("{}", audit_rule_table(&report));
            Ok(())
        }
        AuditCommand::Verify { report } => verify(&report),
    }
}

/// `localist audit verify`: recompute a report's hashes and its log's chain.
fn verify(report: &std::path::Path) -> Result<()> {
    let r = read_report(report)?;
    let base = std::env::current_dir().unwrap_or_default();
    let problems = verify_report(&r, &base);
    if problems.is_empty() {
        println!(
            "{}: intact (report hash, {} log entries chained, model{} hashes match)",
            report.display(),
            r.log.entries.len(),
            if r.corpus_path.is_some() {
                " and corpus"
            } else {
                ""
            }
        );
        Ok(())
    } else {
        for p in &problems {
            eprintln!("{}: {p}", report.display());
        }
        bail!("{}: {} problem(s) found", report.display(), problems.len())
    }
}
