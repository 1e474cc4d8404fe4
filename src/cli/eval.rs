//! `localist eval`: a checkpoint's held-out metrics under one or more dial settings.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};

use crate::analysis::dial::{DialMode, DialParams, LayerSchedule};
use crate::engine::corpus::{asset_path, prepare_corpus, CorpusSource, TokenizerKind};
use crate::engine::train_job::{default_device, TrainingInfo};
use crate::model::checkpoint::load_checkpoint;
use crate::model::dial::DialSetting;
use crate::train::dataset::train_split;
use crate::train::eval::{evaluate, EvalReport};

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

/// Dial options shared by `eval` and `capture`.
#[derive(Args, Debug, Clone)]
pub struct DialArgs {
    /// Dial mode.
    #[arg(long, value_enum, default_value_t = ModeArg::A)]
    pub mode: ModeArg,
    /// Per-layer schedule: `uniform` or `power:GAMMA` (λ_ℓ = λ(ℓ/(L−1))^γ).
    #[arg(long, default_value = "uniform")]
    pub schedule: String,
    /// Base temperature τ₀.
    #[arg(long, default_value_t = 1.0)]
    pub tau: f64,
}

impl DialArgs {
    /// The dial setting at λ.
    pub fn setting(&self, lambda: f64) -> Result<DialSetting> {
        let schedule = if self.schedule == "uniform" {
            LayerSchedule::Uniform
        } else if let Some(g) = self.schedule.strip_prefix("power:") {
            LayerSchedule::Power {
                gamma: g.parse().with_context(|| {
                    format!("--schedule {}: expected power:GAMMA", self.schedule)
                })?,
            }
        } else {
            anyhow::bail!(
                "--schedule {}: expected uniform or power:GAMMA",
                self.schedule
            );
        };
        if self.tau <= 0.0 {
            anyhow::bail!("--tau must be positive, got {}", self.tau);
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
}

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
    /// Number of 1×T windows to score.
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
    /// Blocks of an imported model (a `.gguf` file or a Hugging Face folder): k-means clusters
    /// of its embedding rows.
    #[arg(long, default_value_t = 16)]
    pub clusters: usize,
    /// Blocks of an imported model from a lexicon file (word<TAB>block) instead of k-means.
    #[arg(long)]
    pub lexicon: Option<PathBuf>,
}

/// What each rule did over the held-out windows at one λ.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RuleEval {
    /// λ_inf.
    pub lambda: f64,
    /// Rule id.
    pub id: String,
    /// Rows where it fired with a target.
    pub fired: usize,
    /// Mean PF_mass over those rows and the layers and heads in scope.
    pub pf_mass: Option<f64>,
    /// Mean PF_top1 likewise.
    pub pf_top1: Option<f64>,
    /// The rule's fidelity target, if any.
    pub target: Option<f64>,
    /// Fraction of windows where it fired in which it met its target.
    pub pass_rate: Option<f64>,
}

/// The checkpoint, its held-out token stream and the window length of `eval`.
fn held_out(
    args: &EvalArgs,
) -> Result<(
    crate::model::checkpoint::Checkpoint,
    crate::train::dataset::TokenStream,
    usize,
)> {
    let device = default_device();
    let ck = load_checkpoint(&args.checkpoint, &device)?;
    let info: Option<TrainingInfo> = serde_json::from_value(ck.meta.training.clone()).ok();
    let tok = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", args.checkpoint.display()))?;
    let (source, held_out_only) = match (&args.corpus, &info) {
        (Some(c), _) => (CorpusSource::parse(c, 0)?, false),
        (None, Some(i)) => (i.corpus.clone(), true),
        (None, None) => anyhow::bail!(
            "{}: no training corpus recorded; pass --corpus",
            args.checkpoint.display()
        ),
    };
    let source = match source {
        CorpusSource::File { path } => CorpusSource::File {
            path: asset_path(&path),
        },
        s => s,
    };
    let corpus = prepare_corpus(&source, TokenizerKind::Char, Some(&tok))?;
    let stream = if held_out_only {
        corpus.stream.split_at(train_split(corpus.stream.len())).1
    } else {
        corpus.stream.clone()
    };
    let seq = info
        .map(|i| i.config.seq_len)
        .unwrap_or(ck.model.config.max_seq_len);
    Ok((ck, stream, seq))
}

/// Evaluate a loaded checkpoint on its held-out text for each λ.
pub fn eval_reports(args: &EvalArgs) -> Result<Vec<EvalReport>> {
    let (ck, stream, seq) = held_out(args)?;
    args.lambda
        .iter()
        .map(|&lam| {
            let dial = args.dial.setting(lam)?;
            Ok(evaluate(
                &ck.model,
                &ck.blocks,
                &stream,
                &dial,
                seq,
                args.windows,
                16,
            )?)
        })
        .collect()
}

/// Each rule's firings and PF over the held-out windows, for each λ.
pub fn rule_evals(args: &EvalArgs, file: &std::path::Path) -> Result<Vec<RuleEval>> {
    let (ck, stream, seq) = held_out(args)?;
    let tok = super::rules::checkpoint_tokenizer(&ck, &args.checkpoint)?;
    let rules = super::rules::load_rules(
        file,
        &ck.blocks,
        tok.as_ref(),
        &super::rules::checkpoint_anchors(&ck),
    )?;
    let t = seq.min(ck.model.config.max_seq_len);
    let windows: Vec<Vec<u32>> = (0..args.windows)
        .map_while(|w| stream.window(w * t, t).map(|win| win.x.to_vec()))
        .collect();
    let dials: Vec<DialSetting> = args
        .lambda
        .iter()
        .map(|&l| args.dial.setting(l))
        .collect::<Result<_>>()?;
    rule_evals_on(&ck.model, &ck.blocks, &rules, &windows, &dials)
}

/// Each rule's firings and PF over `windows`, for each dial setting, on any model.
pub fn rule_evals_on(
    model: &dyn crate::model::backend::AttentionModel,
    blocks: &crate::model::blocks::BlockMap,
    rules: &[crate::rules::check::ResolvedRule],
    windows: &[Vec<u32>],
    dials: &[DialSetting],
) -> Result<Vec<RuleEval>> {
    use crate::rules::inject::capture_with_rules;
    let mut out = Vec::new();
    for dial in dials {
        let lam = dial.params.lambda;
        // Per rule: rows, Σ PF_mass·rows, Σ PF_top1·rows, windows fired, windows passed.
        let mut acc = vec![(0usize, 0.0f64, 0.0f64, 0usize, 0usize); rules.len()];
        for ids in windows {
            let rc = capture_with_rules(model, blocks, ids, dial, rules)?;
            for (k, rep) in rc.reports.iter().enumerate() {
                let rows = rep.fired.len() - rep.without_target.len();
                let Some(a) = acc.get_mut(k) else { continue };
                if rows == 0 {
                    continue;
                }
                let scoped: Vec<_> = rep.heads.iter().filter(|h| h.in_scope).collect();
                let n = scoped.len().max(1) as f64;
                a.0 += rows;
                a.1 += rows as f64 * scoped.iter().map(|h| h.pf_mass).sum::<f64>() / n;
                a.2 += rows as f64 * scoped.iter().map(|h| h.pf_top1).sum::<f64>() / n;
                a.3 += 1;
                if rep.pass == Some(true) {
                    a.4 += 1;
                }
            }
        }
        for (r, a) in rules.iter().zip(&acc) {
            let target = match r.strength {
                crate::rules::ast::Strength::Fidelity { target } => Some(target),
                crate::rules::ast::Strength::Bias { .. } => None,
            };
            out.push(RuleEval {
                lambda: lam,
                id: r.id.clone(),
                fired: a.0,
                pf_mass: (a.0 > 0).then(|| a.1 / a.0 as f64),
                pf_top1: (a.0 > 0).then(|| a.2 / a.0 as f64),
                target,
                pass_rate: (target.is_some() && a.3 > 0).then(|| a.4 as f64 / a.3 as f64),
            });
        }
    }
    Ok(out)
}

/// A Markdown table of per-rule results.
pub fn rule_table(rows: &[RuleEval]) -> String {
    let mut s = String::from(
        "| λ_inf | rule | rows fired | PF_mass | PF_top1 | target | windows passing |\n|---|---|---|---|---|---|---|\n",
    );
    let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
    for r in rows {
        s.push_str(&format!(
            "| {:.2} | {} | {} | {} | {} | {} | {} |\n",
            r.lambda,
            r.id,
            r.fired,
            f(r.pf_mass),
            f(r.pf_top1),
            r.target
                .map(|t| t.to_string())
                .unwrap_or_else(|| "–".into()),
            r.pass_rate
                .map(|p| format!("{:.0}%", 100.0 * p))
                .unwrap_or_else(|| "–".into())
        ));
    }
    s
}

/// A Markdown table of reports.
pub fn table(reports: &[EvalReport], mode: &str) -> String {
    let mut s = String::from(
        "| λ_inf | mode | perplexity | top-1 | entropy (bits) | ε | PF_mass | PF_top1 | PF true |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in reports {
        s.push_str(&format!(
            "| {:.2} | {mode} | {:.3} | {:.1}% | {:.3} | {:.4} | {:.4} | {:.4} | {} |\n",
            r.lambda,
            r.perplexity,
            100.0 * r.top1_accuracy,
            r.entropy_bits,
            r.off_block_mass,
            r.pf_mass,
            r.pf_top1,
            r.pf_true_mass
                .map(|p| format!("{p:.4}"))
                .unwrap_or_else(|| "–".into())
        ));
    }
    s
}

/// Print the anchor tokens stored in a checkpoint's training facts.
fn print_anchors(checkpoint: &std::path::Path) -> Result<()> {
    let path = checkpoint.join("config.json");
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    )
    .with_context(|| format!("{}: invalid JSON", path.display()))?;
    let info: Option<TrainingInfo> = serde_json::from_value(meta["training"].clone()).ok();
    let Some(rep) = info.and_then(|i| i.anchors) else {
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

/// Run `localist eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    if crate::hf::ImportedModel::looks_imported(&args.checkpoint) {
        return run_imported(&args);
    }
    let reports = eval_reports(&args)?;
    let rules = match &args.rules {
        Some(file) => Some(rule_evals(&args, file)?),
        None => None,
    };
    if args.json {
        match &rules {
            Some(r) => println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "eval": reports, "rules": r }))?
            ),
            None => println!("{}", serde_json::to_string_pretty(&reports)?),
        }
    } else {
        print!(
            "{}",
            table(&reports, DialMode::from(args.dial.mode).label())
        );
        if let Some(r) = &rules {
            println!();
            print!("{}", rule_table(r));
        }
    }
    if args.anchors {
        print_anchors(&args.checkpoint)?;
    }
    Ok(())
}

/// `eval` on an imported model (a `.gguf` file or a Hugging Face folder): blocks by k-means
/// over its embedding rows (or `--lexicon`), then per λ the entropy and ε (and for a decoder the
/// perplexity) on a public-domain text (default: the bundled Shakespeare), in windows of 64
/// tokens; with `--rules`, what each rule did.
fn run_imported(args: &EvalArgs) -> Result<()> {
    use crate::data::tokenizer::Tokenizer;
    use crate::hf::eval::{eval_imported, table};
    use crate::hf::ImportedModel;
    let device = candle_core::Device::Cpu;
    let m = ImportedModel::open(&args.checkpoint, &device)?;
    let tok = m.tokenizer();
    let path = asset_path(&PathBuf::from(
        args.corpus
            .clone()
            .unwrap_or_else(|| "assets/corpora/shakespeare_1mb.txt".into()),
    ));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    // Enough text for the windows asked for (about 4 characters per token).
    let take: String = text.chars().take(args.windows.max(1) * 64 * 6).collect();
    let ids = tok.encode(&take);
    let dims = m.model().dims();
    let blocks = match &args.lexicon {
        Some(file) => crate::hf::lexicon_blocks(&crate::data::lexicon::Lexicon::load(file)?, &tok)?,
        None => m.kmeans_blocks(&tok, args.clusters, 0)?,
    };
    eprintln!(
        "{}: {}, {} layers × {} heads; blocks: {} ({} blocks); {} tokens of {}",
        args.checkpoint.display(),
        m.kind_label(),
        dims.layers,
        dims.heads,
        blocks.source,
        blocks.num_blocks(),
        ids.len(),
        path.display()
    );
    let dials: Vec<DialSetting> = args
        .lambda
        .iter()
        .map(|&l| args.dial.setting(l))
        .collect::<Result<_>>()?;
    let rows = eval_imported(m.model(), &blocks, &ids, &dials, 64, args.windows)?;
    let rules = match &args.rules {
        Some(file) => {
            let rules = super::rules::load_rules(file, &blocks, &tok, &[])?;
            let windows: Vec<Vec<u32>> = ids
                .chunks(64)
                .filter(|w| w.len() == 64)
                .take(args.windows)
                .map(<[u32]>::to_vec)
                .collect();
            Some(rule_evals_on(m.model(), &blocks, &rules, &windows, &dials)?)
        }
        None => None,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "eval": rows, "rules": rules }))?
        );
    } else {
        print!("{}", table(&rows, DialMode::from(args.dial.mode).label()));
        if let Some(r) = &rules {
            println!();
            print!("{}", rule_table(r));
        }
    }
    Ok(())
}
