//! `localist rules check` and `localist audit report|verify`: rules and their audit, headless.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::audit::{make_report, read_report, report_html, verify_report, AuditLog};
use crate::engine::corpus::CorpusSource;
use crate::engine::train_job::default_device;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{checkpoint_sha256, load_checkpoint, Checkpoint};
use crate::rules::check::ResolvedRule;
use crate::rules::inject::capture_with_rules;
use crate::rules::{parse_rules, resolve};

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
    pub dial: super::eval::DialArgs,
    /// Output HTML file; the JSON twin goes beside it with `.json`.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Anchor tokens per block recorded in a checkpoint.
pub fn checkpoint_anchors(ck: &Checkpoint) -> Vec<(String, Vec<String>)> {
    crate::engine::anchors::recorded_anchor_tokens(&ck.meta.training)
}

/// A checkpoint's tokenizer.
pub fn checkpoint_tokenizer(ck: &Checkpoint, dir: &Path) -> Result<Box<dyn Tokenizer>> {
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", dir.display()))?;
    Ok(spec.build()?)
}

/// Read, parse and resolve a rule file; every error is listed as FILE:LINE:COL: message.
pub fn load_rules(
    file: &Path,
    blocks: &BlockMap,
    tok: &dyn Tokenizer,
    anchors: &[(String, Vec<String>)],
) -> Result<Vec<ResolvedRule>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let name = file.display().to_string();
    let set = parse_rules(&text).map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))?;
    resolve(&set, blocks, tok, anchors).map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))
}

/// Run `localist rules ...`.
pub fn run_rules(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Check { file, checkpoint } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let name = file.display().to_string();
            let set = match parse_rules(&text) {
                Ok(s) => s,
                Err(e) => bail!(
                    "{}\n{name} rejected whole ({} error(s))",
                    e.with_file(&name),
                    e.errors.len()
                ),
            };
            if let Some(dir) = checkpoint {
                let ck = load_checkpoint(&dir, &default_device())?;
                let tok = checkpoint_tokenizer(&ck, &dir)?;
                if let Err(e) = resolve(&set, &ck.blocks, tok.as_ref(), &checkpoint_anchors(&ck)) {
                    bail!(
                        "{}\n{name} does not fit {} ({} error(s))",
                        e.with_file(&name),
                        dir.display(),
                        e.errors.len()
                    );
                }
            }
            let on = set.rules.iter().filter(|r| r.enabled).count();
            println!("{name}: {} rules, {on} on, no errors", set.rules.len());
            for r in &set.rules {
                println!(
                    "  {}{}: {}",
                    r.id.text,
                    if r.enabled { "" } else { " (off)" },
                    r.description
                );
            }
            Ok(())
        }
    }
}

/// The default text for a report: a synthetic record, or the corpus's first non-empty line.
fn default_text(ck: &Checkpoint) -> Option<String> {
    let source: CorpusSource =
        serde_json::from_value(ck.meta.training.get("corpus")?.clone()).ok()?;
    match source {
        CorpusSource::Synthetic { seed, .. } => {
            let c = crate::data::synthetic::SyntheticCorpus::generate(
                &crate::data::synthetic::SyntheticSpec {
                    seed,
                    num_records: 40,
                    ..Default::default()
                },
            );
            // One clinical note and one payment, so rules of both domains can fire.
            let first = |p: &str| {
                c.text
                    .lines()
                    .find(|l| l.starts_with(p))
                    .map(str::to_string)
            };
            let picked: Vec<String> = [first("note"), first("txn")]
                .into_iter()
                .flatten()
                .collect();
            Some(picked.join("\n"))
        }
        CorpusSource::Topics { seed, topics } => crate::engine::corpus::topic_corpus(seed, topics)
            .text
            .lines()
            .next()
            .map(str::to_string),
        CorpusSource::File { path } => {
            let text = std::fs::read_to_string(crate::engine::corpus::asset_path(&path)).ok()?;
            text.lines()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        }
    }
}

/// Run `localist audit ...`.
pub fn run_audit(cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Report(a) => {
            let ck = load_checkpoint(&a.checkpoint, &default_device())?;
            let tok = checkpoint_tokenizer(&ck, &a.checkpoint)?;
            let rules = load_rules(&a.rules, &ck.blocks, tok.as_ref(), &checkpoint_anchors(&ck))?;
            let text = match a.text.clone().or_else(|| default_text(&ck)) {
                Some(t) => t,
                None => bail!("no text to measure the rules on: pass --text"),
            };
            let mut ids = tok.encode(&text);
            if ids.is_empty() {
                bail!("--text is empty after tokenization");
            }
            // The report names exactly the text measured (the model's positions at most).
            let text = if ids.len() > ck.model.config.max_seq_len {
                ids.truncate(ck.model.config.max_seq_len);
                tok.decode(&ids)
            } else {
                text
            };
            let dial = a.dial.setting(a.lambda)?;
            let rc = capture_with_rules(&ck.model, &ck.blocks, &ids, &dial, &rules)?;
            let model_sha = checkpoint_sha256(&a.checkpoint)?;
            let corpus_sha = ck
                .meta
                .training
                .get("corpus_sha256")
                .and_then(|v| v.as_str())
                .map(str::to_string);
            let corpus_path = ck
                .meta
                .training
                .get("corpus")
                .and_then(|c| serde_json::from_value::<CorpusSource>(c.clone()).ok())
                .and_then(|c| match c {
                    CorpusSource::File { path } => Some(crate::engine::corpus::asset_path(&path)),
                    CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => None,
                });
            let views = crate::engine::views::rule_views(&rules);
            let mut log = AuditLog::default();
            log.record_change(
                &[],
                &views,
                &model_sha,
                corpus_sha.as_deref().unwrap_or("unknown"),
            );
            let report = make_report(
                Some((a.checkpoint.clone(), model_sha)),
                corpus_sha.map(|h| (corpus_path, h)),
                &dial,
                &text,
                &views,
                &rc.reports,
                &log,
            );
            let figures = crate::studio::panels::audit::report_figures(
                &report,
                &rc.capture,
                crate::studio::colormap::Colormap::Viridis,
            );
            let html = report_html(&report, &figures);
            crate::studio::app::write_report(
                &a.out,
                html.as_bytes(),
                serde_json::to_string_pretty(&report)?.as_bytes(),
            )?;
            println!(
                "wrote {} and {}",
                a.out.display(),
                a.out.with_extension("json").display()
            );
            println!("| rule | on | trigger | target | fired | PF_mass | target | result |");
            println!("|---|---|---|---|---|---|---|---|");
            for r in &report.rules {
                println!(
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.id,
                    if r.enabled { "on" } else { "off" },
                    r.trigger,
                    r.target,
                    r.report.fired.len(),
                    r.report
                        .pf_mass
                        .map(|v| format!("{v:.3}"))
                        .unwrap_or_else(|| "-".into()),
                    r.report
                        .target_pf
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "-".into()),
                    match r.report.pass {
                        Some(true) => "pass",
                        Some(false) => "FAIL",
                        None => "-",
                    }
                );
            }
            Ok(())
        }
        AuditCommand::Verify { report } => {
            let r = read_report(&report)?;
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
    }
}
