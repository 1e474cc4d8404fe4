//! `localist rules check` and `localist audit report|verify`: rules and their audit, headless.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crate::cli::dial::DialArgs;
use crate::engine::audit::{read_report, user_public_key_hex, verify_report_with, TrustedKeys};
use crate::engine::export::write_atomic;
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
    /// Check a report: its hashes and its log's hash chain, its signature (and, with --key or
    /// a `trusted_keys` file in the config folder, that the signer is expected), and that the
    /// model and corpus still have the hashes it names; say which check failed.
    Verify {
        /// The report's JSON twin.
        report: PathBuf,
        /// A public key file (hex, one key a line, as `localist audit key` prints): the report
        /// must be signed by one of its keys. Without it, the config folder's `trusted_keys`
        /// is used when there is one.
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// Print this user's public signing key (hex), creating the key on first use; give it to
    /// whoever verifies your reports (`audit verify --key FILE`).
    Key {
        /// Also write it to this file.
        #[arg(long, short)]
        out: Option<PathBuf>,
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
            let twin = a.out.with_extension("json");
            for out in [&a.out, &twin] {
                crate::cli::output::check_file_out("--out", out, &[&a.checkpoint, &a.rules])?;
            }
            // The twin is written beside the page under the same name: the user's own
            // notes.json beside notes.html was replaced without a word.
            let ours = |v: serde_json::Value| {
                v.get("format").and_then(serde_json::Value::as_str) == Some("localist-audit-report")
            };
            if twin.exists() && !crate::engine::outputs::json_file(&twin).is_some_and(ours) {
                anyhow::bail!(
                    "--out {}: the report's JSON twin would replace {}, which is not an audit \
                     report; choose another name",
                    a.out.display(),
                    twin.display()
                );
            }
            let job = AuditJob {
                dial: a.dial.setting(a.lambda)?,
                checkpoint: a.checkpoint,
                rules: a.rules,
                text: a.text,
                out: a.out,
            };
            let (report, warning) = audit_report(&job)?;
            if let Some(w) = warning {
                eprintln!("{w}");
            }
            println!(
                "wrote {} and {}",
                job.out.display(),
                job.out.with_extension("json").display()
            );
            print!("{}", audit_rule_table(&report));
            Ok(())
        }
        AuditCommand::Verify { report, key } => verify(&report, key.as_deref()),
        AuditCommand::Key { out } => print_key(out.as_deref()),
    }
}

/// `localist audit key`: print (and with `--out`, write) the public key.
fn print_key(out: Option<&Path>) -> Result<()> {
    let hex = user_public_key_hex()?;
    if let Some(path) = out {
        crate::cli::output::check_file_out("--out", path, &[])?;
        write_atomic(path, format!("{hex}\n").as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    println!("{hex}");
    Ok(())
}

/// `localist audit verify`: every check, each failure named.
fn verify(report: &Path, key: Option<&Path>) -> Result<()> {
    let r = read_report(report)?;
    let trusted = match key {
        Some(k) => Some(TrustedKeys::read(k)?),
        None => TrustedKeys::from_config()?,
    };
    // Relative paths in the report: from the current folder, else beside the report.
    let here = std::env::current_dir().unwrap_or_default();
    let beside = report.parent().map(|p| here.join(p)).unwrap_or_default();
    let mut problems = verify_report_with(&r, &[&here, &beside], trusted.as_ref());
    let html_path = report.with_extension("html");
    let html = if html_path.is_file() && html_path != report {
        let text = crate::engine::files::read_text(
            &html_path,
            crate::engine::files::MAX_DOCUMENT_BYTES,
            "an audit report",
        )?;
        match crate::engine::audit::html_twin_check(&r, &text) {
            Ok(note) => format!(
                "; its HTML twin {} reads the same{note}",
                html_path.display()
            ),
            Err(p) => {
                problems.push(format!("{}: {p}", html_path.display()));
                String::new()
            }
        }
    } else {
        format!(
            "; no HTML twin at {}: the JSON checked alone",
            html_path.display()
        )
    };
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{}: {p}", report.display());
        }
        bail!("{}: {} problem(s) found", report.display(), problems.len());
    }
    let signer = match &trusted {
        Some(t) => format!(
            "signed by {}, a trusted key from {}",
            r.public_key,
            t.source.display()
        ),
        None => format!(
            "signed by {} (not checked against a trusted key: pass --key FILE)",
            r.public_key
        ),
    };
    println!(
        "{}: intact (report hash, {} log entries chained, {signer}, model{} hashes match{html})",
        report.display(),
        r.log.entries.len(),
        if r.corpus_path.is_some() {
            " and corpus"
        } else {
            ""
        }
    );
    Ok(())
}
