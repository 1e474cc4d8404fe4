//! The audit report as one job for both faces: assemble and seal it from the rules in force
//! and their measurements, draw its figures, and write the HTML with its JSON twin. The studio
//! calls [`report_with_figures`] on its state; `localist audit report` runs [`audit_report`],
//! which measures the rules on a text first.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data::synthetic::{SyntheticCorpus, SyntheticSpec};
use crate::engine::audit::{
    figure_digests, make_report, report_html, sign_report, user_signing_key, AuditLog, AuditReport,
    TestSetSection,
};
use crate::engine::corpus::{asset_path, topic_corpus, CorpusSource};
use crate::engine::export::write_all_atomic;
use crate::engine::figures::{report_figures, Colormap, Figure};
use crate::engine::jobs::model::{checkpoint_anchors, open_checkpoint};
use crate::engine::jobs::rules::load_rules;
use crate::engine::protocol::RuleView;
use crate::engine::Capture;
use crate::model::checkpoint::{checkpoint_sha256, Checkpoint};
use crate::model::dial::DialSetting;
use crate::rules::inject::{capture_with_rules, RuleReport};

/// What a report is about.
pub struct ReportInputs<'a> {
    /// The model's path and SHA-256 (`None`: an unsaved model).
    pub model: Option<(PathBuf, String)>,
    /// The training corpus's path (when a file) and SHA-256 (`None`: unknown).
    pub corpus: Option<(Option<PathBuf>, String)>,
    /// The dial in force.
    pub dial: &'a DialSetting,
    /// The text the rules were measured on.
    pub text: &'a str,
    /// The rules in force.
    pub rules: &'a [RuleView],
    /// What each did on the text.
    pub reports: &'a [RuleReport],
    /// The log of rule changes.
    pub log: &'a AuditLog,
    /// The rules' pass/fail over a test set, measured under this model, dial and rules.
    pub test_set: Option<TestSetSection>,
}

/// Assemble, seal and sign the report (with the user's key, created on first use), and draw
/// its figures from `capture` (the capture of the report's text with the rules in force; no
/// figures without one). When the key cannot be had, the report stays unsigned and
/// [`report_files`] refuses to write it, saying why.
pub fn report_with_figures(
    inputs: ReportInputs<'_>,
    capture: Option<&Capture>,
    colormap: Colormap,
) -> (AuditReport, Vec<Figure>) {
    let mut report = make_report(
        inputs.model,
        inputs.corpus,
        inputs.dial,
        inputs.text,
        inputs.rules,
        inputs.reports,
        inputs.log,
    );
    report.test_set = inputs.test_set;
    // The figures are drawn from the rules before the report is sealed, so that the
    // signature covers each one's digest (`audit verify` checks the page's pictures by it).
    let figures = capture
        .map(|cap| report_figures(&report, cap, colormap))
        .unwrap_or_default();
    report.figures = figure_digests(&figures);
    let report = report.seal();
    let report = match user_signing_key() {
        Ok(key) => sign_report(report, &key),
        Err(_) => report,
    };
    (report, figures)
}

/// The report's two files: the HTML page (figures embedded) and the pretty-printed JSON twin.
/// A report that is not signed is refused, with the reason the key could not be had.
pub fn report_files(report: &AuditReport, figures: &[Figure]) -> Result<(Vec<u8>, Vec<u8>)> {
    if report.signature.is_empty() {
        user_signing_key().context("the report cannot be signed")?;
        bail!("the report is not signed; export it again");
    }
    let json = serde_json::to_string_pretty(report)?;
    Ok((report_html(report, figures).into_bytes(), json.into_bytes()))
}

/// Write an audit report's HTML at `path` and its JSON twin at `path` with `.json` (atomic).
pub fn write_report(path: &Path, html: &[u8], json: &[u8]) -> Result<()> {
    if path.with_extension("json") == path {
        bail!(
            "{}: the report is HTML and its JSON twin is written beside it with .json, which \
             would overwrite it: name the report .html",
            path.display()
        );
    }
    let most = crate::files::MAX_DOCUMENT_BYTES;
    if json.len() as u64 > most {
        bail!(
            "{}: the report's JSON would be {:.1} MiB, more than the {:.1} MiB `audit verify` \
             reads, so it could never be verified; audit fewer rules at a time",
            path.display(),
            json.len() as f64 / f64::from(1u32 << 20),
            most as f64 / f64::from(1u32 << 20)
        );
    }
    // Both or neither: a full disk left a page without the twin `audit verify` checks it by.
    write_all_atomic(&[(path, html), (&path.with_extension("json"), json)])
}

/// `localist audit report`: what to measure and where to write it.
#[derive(Clone, Debug)]
pub struct AuditJob {
    /// Checkpoint directory.
    pub checkpoint: PathBuf,
    /// Rule file.
    pub rules: PathBuf,
    /// The text the rules are measured on (default: [`default_text`]), truncated to the
    /// model's positions.
    pub text: Option<String>,
    /// The dial.
    pub dial: DialSetting,
    /// Output HTML file; the JSON twin goes beside it.
    pub out: PathBuf,
}

/// Measure the rules on the text, build the report with its figures (viridis) and write both
/// files. Returns the report, and a warning when part of the text is unreadable to the model's
/// tokenizer (most of it unreadable is an error: nothing in such a report would be measured).
pub fn audit_report(job: &AuditJob) -> Result<(AuditReport, Option<String>)> {
    let (ck, tok) = open_checkpoint(&job.checkpoint)?;
    let rules = load_rules(
        &job.rules,
        &ck.blocks,
        tok.as_ref(),
        &checkpoint_anchors(&ck),
        &crate::model::backend::AttentionModel::dims(&ck.model),
    )?;
    let text = match job.text.clone().or_else(|| default_text(&ck)) {
        Some(t) => t,
        None => match corpus_file(&ck).map(|f| {
            crate::files::check_regular(&f, crate::files::MAX_CORPUS_BYTES, "a training corpus")
        }) {
            Some(Err(e)) => bail!("no text to measure the rules on ({e}): pass --text"),
            _ => bail!("no text to measure the rules on: pass --text"),
        },
    };
    let text = crate::files::without_bom(&text);
    let mut ids = tok.encode(text);
    if ids.is_empty() {
        bail!(crate::engine::jobs::capture::no_tokens(
            "the text",
            text,
            tok.as_ref(),
            Some(&job.checkpoint)
        ));
    }
    let warning = crate::engine::jobs::capture::readable(text, &ck.meta.tokenizer, &ids)?;
    // The report names exactly the text measured (the model's positions at most).
    let text = if ids.len() > ck.model.config.max_seq_len {
        ids.truncate(ck.model.config.max_seq_len);
        tok.decode(&ids)
    } else {
        text.to_string()
    };
    let rc = capture_with_rules(&ck.model, &ck.blocks, &ids, &job.dial, &rules)?;
    let model_sha = checkpoint_sha256(&job.checkpoint)?;
    let corpus_sha = ck
        .meta
        .training
        .get("corpus_sha256")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let views = crate::engine::views::rule_views(&rules);
    let mut log = AuditLog::default();
    log.record_change(
        &[],
        &views,
        &model_sha,
        corpus_sha.as_deref().unwrap_or("unknown"),
    );
    // Signed as the studio signs each entry it logs (without a key the report is refused
    // when it is written, saying why).
    if let Ok(key) = user_signing_key() {
        log.sign_from(0, &key);
    }
    let inputs = ReportInputs {
        model: Some((job.checkpoint.clone(), model_sha)),
        corpus: corpus_sha.map(|h| (corpus_file(&ck), h)),
        dial: &job.dial,
        text: &text,
        rules: &views,
        reports: &rc.reports,
        log: &log,
        test_set: None,
    };
    let (report, figures) = report_with_figures(inputs, Some(&rc.capture), Colormap::Viridis);
    let (html, json) = report_files(&report, &figures)?;
    write_report(&job.out, &html, &json)?;
    Ok((report, warning))
}

/// The checkpoint's training corpus file, when it was trained on one.
fn corpus_file(ck: &Checkpoint) -> Option<PathBuf> {
    ck.meta
        .training
        .get("corpus")
        .and_then(|c| serde_json::from_value::<CorpusSource>(c.clone()).ok())
        .and_then(|c| match c {
            CorpusSource::File { path } => Some(asset_path(&path)),
            CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => None,
        })
}

/// The default text for a report: a synthetic record of each domain, or the corpus's first
/// non-empty line.
pub fn default_text(ck: &Checkpoint) -> Option<String> {
    let source: CorpusSource =
        serde_json::from_value(ck.meta.training.get("corpus")?.clone()).ok()?;
    match source {
        CorpusSource::Synthetic { seed, .. } => {
            let c = SyntheticCorpus::generate(&SyntheticSpec {
                seed,
                num_records: 40,
                ..Default::default()
            });
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
        CorpusSource::Topics { seed, topics } => topic_corpus(seed, topics)
            .text
            .lines()
            .next()
            .map(str::to_string),
        CorpusSource::File { path } => {
            // The path a checkpoint records: read with the corpus limit, regular files only.
            let text = crate::files::read_text(
                &asset_path(&path),
                crate::files::MAX_CORPUS_BYTES,
                "a training corpus",
            )
            .ok()?;
            text.lines()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        }
    }
}
