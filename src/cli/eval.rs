//! `localist eval`: a checkpoint's (or an imported model's) held-out metrics under one or more
//! dial settings, optionally with what each rule did, as a table or JSON.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::cli::dial::DialArgs;
use crate::cli::flags::{count_in, MAX_CLUSTERS, MAX_WINDOWS};
use crate::engine::anchors::AnchorReport;
use crate::engine::jobs::eval::{evaluate_model, recorded_anchors, EvalJob, EvalRows};
use crate::engine::jobs::rules::RuleEval;
use crate::engine::jobs::tables::{eval_table, imported_eval_table, rule_table};

/// Arguments of `localist eval`.
#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    /// Checkpoint directory.
    #[arg(long, short)]
    pub checkpoint: PathBuf,
    /// Inference dial λ_inf values in [0, 1] (comma-separated).
    #[arg(long, default_value = "0", value_delimiter = ',', value_parser = super::parse_lambda)]
    pub lambda: Vec<f64>,
    /// Dial mode, schedule and temperature.
    #[command(flatten)]
    pub dial: DialArgs,
    /// Held-out text (default: the held-out 10% of the checkpoint's training corpus).
    #[arg(long)]
    pub corpus: Option<String>,
    /// Number of 1×T windows to score (1 to 100000).
    #[arg(long, default_value_t = 64)]
    pub windows: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also list each block's anchor tokens (PMI, purity) and the coverage I(B;A).
    #[arg(long)]
    pub anchors: bool,
    /// A rule file: also report, per λ, where each rule fired and its PF in scope.
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Blocks of an imported model (a `.gguf` file, a Hugging Face folder, an adapter):
    /// k-means clusters of its embedding rows (1 to 256). Default: the blocks saved beside the
    /// model (an adapter's, the studio's), else 16 clusters.
    #[arg(long)]
    pub clusters: Option<usize>,
    /// Blocks of an imported model from a lexicon file (word<TAB>block) instead of k-means.
    #[arg(long)]
    pub lexicon: Option<PathBuf>,
}

impl EvalArgs {
    /// The engine job these arguments describe.
    pub fn job(&self) -> Result<EvalJob> {
        Ok(EvalJob {
            model: self.checkpoint.clone(),
            dials: self.dial.settings(&self.lambda)?,
            corpus: self.corpus.clone(),
            windows: count_in("--windows", self.windows, MAX_WINDOWS)?,
            rules: self.rules.clone(),
            clusters: (self.clusters)
                .map(|k| count_in("--clusters", k, MAX_CLUSTERS))
                .transpose()?,
            lexicon: self.lexicon.clone(),
        })
    }
}

/// Run `localist eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let outcome = evaluate_model(&args.job()?, |note| eprintln!("{note}"))?;
    let mode = args.dial.mode_label();
    let rules = &outcome.rules;
    let imported = matches!(outcome.rows, EvalRows::Imported(_));
    if args.json {
        println!("{}", json_text(&args, &outcome.rows, rules.as_deref())?);
        return Ok(());
    }
    match &outcome.rows {
        EvalRows::Checkpoint(r) => print!("{}", eval_table(r, mode)),
        EvalRows::Imported(r) => print!("{}", imported_eval_table(r, mode)),
    }
    if let Some(r) = rules {
        println!();
        print!("{}", rule_table(r));
    }
    if args.anchors && !imported {
        print_anchors(&args)?;
    }
    Ok(())
}

/// The `--json` output: a checkpoint's reports alone (an array, in their fields' order), or an
/// object `{"eval", "rules"}` with `--rules` or for an imported model, plus `"anchors"` with
/// `--anchors` on a checkpoint (so stdout stays one JSON document).
fn json_text(args: &EvalArgs, rows: &EvalRows, rules: Option<&[RuleEval]>) -> Result<String> {
    let value = match rows {
        EvalRows::Checkpoint(r) if args.anchors => {
            let anchors = recorded_anchors(&args.checkpoint)?.map(|rep| anchors_json(&rep));
            serde_json::json!({ "eval": r, "rules": rules, "anchors": anchors })
        }
        EvalRows::Checkpoint(r) if rules.is_none() => serde_json::to_value(r)?,
        EvalRows::Checkpoint(r) => serde_json::json!({ "eval": r, "rules": rules }),
        EvalRows::Imported(r) => serde_json::json!({ "eval": r, "rules": rules }),
    };
    Ok(serde_json::to_string_pretty(&value)?)
}

/// An anchor report as JSON: `{"coverage_bits", "blocks": [{"block", "anchors": [...]}]}`.
fn anchors_json(rep: &AnchorReport) -> serde_json::Value {
    let blocks: Vec<serde_json::Value> = rep
        .blocks
        .iter()
        .map(|(block, rows)| serde_json::json!({ "block": block, "anchors": rows }))
        .collect();
    serde_json::json!({ "coverage_bits": rep.coverage_bits, "blocks": blocks })
}

/// Print the anchor tokens stored in a checkpoint's training facts.
fn print_anchors(args: &EvalArgs) -> Result<()> {
    let Some(rep) = recorded_anchors(&args.checkpoint)? else {
        println!("\nno anchor statistics in this checkpoint");
        return Ok(());
    };
    println!(
        "\nanchor tokens (purity ≤ 0.2 bits, ranked by PMI); coverage I(B;A) = {:.4} bits",
        rep.coverage_bits
    );
    for (block, rows) in &rep.blocks {
        let list: Vec<String> = rows
            .iter()
            .map(|r| format!("{:?} ({:.2} bits, n={})", r.token, r.pmi_bits, r.count))
            .collect();
        let shown = if list.is_empty() {
            "–".to_string()
        } else {
            list.join(", ")
        };
        println!("  {block}: {shown}");
    }
    Ok(())
}
