//! Evaluation over a list of dial settings, for a checkpoint (held-out metrics on its training
//! corpus, or on a given text) and for an imported model (entropy, ε and perplexity on a
//! public-domain text, blocks by k-means or a lexicon), optionally with what each rule did.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::anchors::AnchorReport;
use crate::engine::corpus::{asset_path, prepare_corpus_checked, CorpusSource, TokenizerKind};
use crate::engine::held_out::recorded_overfit;
use crate::engine::jobs::model::{checkpoint_anchors, OpenModel};
use crate::engine::jobs::rules::{load_rules, rule_evals_on, RuleEval};
use crate::engine::train_job::TrainingInfo;
use crate::hf::eval::{eval_imported, RealEvalRow};
use crate::hf::{HfTokenizer, ImportedModel};
use crate::model::checkpoint::{Checkpoint, CheckpointMeta};
use crate::model::dial::DialSetting;
use crate::train::dataset::{train_split, TokenStream};
use crate::train::eval::{evaluate, EvalReport};

/// k-means clusters of an imported model with no blocks saved beside it.
pub const DEFAULT_EVAL_CLUSTERS: usize = 16;

/// What to evaluate, and how.
#[derive(Clone, Debug)]
pub struct EvalJob {
    /// A checkpoint directory, or an imported model (a `.gguf` file or a Hugging Face folder).
    pub model: PathBuf,
    /// The dial settings, one row of results each.
    pub dials: Vec<DialSetting>,
    /// Held-out text (default: the held-out 10% of a checkpoint's training corpus; for an
    /// imported model the bundled Shakespeare).
    pub corpus: Option<String>,
    /// Number of windows to score.
    pub windows: usize,
    /// A rule file: also measure, per setting, where each rule fired and its PF in scope.
    pub rules: Option<PathBuf>,
    /// Blocks of an imported model: this many k-means clusters of its embedding rows; None:
    /// the blocks saved beside it (an adapter's: the blocks it was trained towards), else
    /// [`DEFAULT_EVAL_CLUSTERS`].
    pub clusters: Option<usize>,
    /// Blocks of an imported model from a lexicon file instead of k-means.
    pub lexicon: Option<PathBuf>,
}

/// The metrics per dial setting.
#[derive(Clone, Debug)]
pub enum EvalRows {
    /// A checkpoint's held-out metrics.
    Checkpoint(Vec<EvalReport>),
    /// An imported model's curve.
    Imported(Vec<RealEvalRow>),
}

/// The result of an [`EvalJob`].
#[derive(Clone, Debug)]
pub struct EvalOutcome {
    /// The metrics.
    pub rows: EvalRows,
    /// What each rule did (with [`EvalJob::rules`]).
    pub rules: Option<Vec<RuleEval>>,
}

/// Run an evaluation. For an imported model, `on_note` first hears a one-line summary of the
/// model, its blocks and the text.
pub fn evaluate_model(job: &EvalJob, mut on_note: impl FnMut(&str)) -> Result<EvalOutcome> {
    if job.windows == 0 {
        anyhow::bail!("the number of windows to score (--windows) must be at least 1, got 0");
    }
    match OpenModel::open(&job.model)? {
        OpenModel::Checkpoint {
            checkpoint,
            tokenizer,
            ..
        } => {
            if let Some(said) = recorded_overfit(&checkpoint.meta.training) {
                on_note(&format!("note: {}: {said}", job.model.display()));
            }
            if let Some(why) = checkpoint.blocks.degenerate() {
                on_note(&format!("warning: {}: {why}", job.model.display()));
            }
            let out = evaluate_checkpoint(job, &checkpoint, tokenizer.as_ref(), &mut on_note)?;
            if let EvalRows::Checkpoint(rows) = &out.rows {
                let worst = rows.iter().map(|r| r.perplexity).reduce(f64::max);
                let vocab = checkpoint.model.config.vocab_size;
                let or = "a model of another text";
                if let Some(w) = worse_than_uniform(job, worst, vocab, "held-out perplexity", or) {
                    on_note(&w);
                }
            }
            Ok(out)
        }
        OpenModel::Imported { model, tokenizer } => {
            evaluate_imported(job, &model, &tokenizer, on_note)
        }
    }
}

/// The warning for a perplexity (`what`) worse than a uniform guess over `vocab` tokens, with
/// the likelier cause (`or`) besides damaged weights; None when it is not.
fn worse_than_uniform(
    job: &EvalJob,
    worst: Option<f64>,
    vocab: usize,
    what: &str,
    or: &str,
) -> Option<String> {
    let worst = worst.filter(|&w| w > vocab as f64)?;
    Some(format!(
        "warning: {}: {what} {} is worse than a uniform guess over its {vocab} tokens: damaged \
         weights, or {or}?",
        job.model.display(),
        crate::engine::jobs::tables::perplexity_text(worst)
    ))
}

fn evaluate_checkpoint(
    job: &EvalJob,
    ck: &Checkpoint,
    tok: &dyn Tokenizer,
    on_note: &mut impl FnMut(&str),
) -> Result<EvalOutcome> {
    if let Some(lexicon) = &job.lexicon {
        // Said, not ignored: a checkpoint evaluates under its own saved blocks.
        anyhow::bail!(
            "--lexicon {}: blocks from a lexicon are for imported models; {} evaluates under \
             its own blocks (rebuild them with `localist blocks -c … --lexicon …`)",
            lexicon.display(),
            job.model.display()
        );
    }
    if let Some(k) = job.clusters {
        // As --lexicon: it was ignored without a word.
        anyhow::bail!(
            "--clusters {k}: k-means blocks are for imported models; {} evaluates under its \
             own blocks (rebuild them with `localist blocks -c … --kmeans {k}`)",
            job.model.display()
        );
    }
    let (stream, seq) = held_out(job, ck)?;
    let first = stream.window(0, seq.min(ck.model.config.max_seq_len));
    if let Some(why) = first.and_then(|w| ck.blocks.weak_on(&w.x)) {
        on_note(&format!("warning: {}: {why}", job.model.display()));
    }
    let reports = job
        .dials
        .iter()
        .map(|dial| {
            evaluate(&ck.model, &ck.blocks, &stream, dial, seq, job.windows, 16).with_context(
                || match &job.corpus {
                    Some(c) => format!("evaluating {} on {c}", job.model.display()),
                    None => format!("evaluating {}", job.model.display()),
                },
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let rules = match &job.rules {
        Some(file) => {
            let rules = load_rules(
                file,
                &ck.blocks,
                tok,
                &checkpoint_anchors(ck),
                &crate::model::backend::AttentionModel::dims(&ck.model),
            )?;
            let t = seq.min(ck.model.config.max_seq_len);
            let windows: Vec<Vec<u32>> = (0..job.windows)
                .map_while(|w| stream.window(w * t, t).map(|win| win.x.to_vec()))
                .collect();
            Some(rule_evals_on(
                &ck.model, &ck.blocks, &rules, &windows, &job.dials,
            )?)
        }
        None => None,
    };
    Ok(EvalOutcome {
        rows: EvalRows::Checkpoint(reports),
        rules,
    })
}

/// The checkpoint's held-out token stream and the window length of its evaluation.
fn held_out(job: &EvalJob, ck: &Checkpoint) -> Result<(TokenStream, usize)> {
    held_out_stream(
        &ck.meta,
        ck.model.config.max_seq_len,
        job.corpus.as_deref(),
        &job.model,
    )
}

/// A checkpoint's held-out token stream and the window length of its evaluation, from its
/// recorded facts: the held-out tenth of its training corpus, or all of `corpus` when given.
/// `dir` names the checkpoint in errors.
pub fn held_out_stream(
    meta: &CheckpointMeta,
    max_seq_len: usize,
    corpus: Option<&str>,
    dir: &Path,
) -> Result<(TokenStream, usize)> {
    // A training record that cannot be read is named, not taken for "none recorded".
    let info: Option<TrainingInfo> = match serde_path_to_error::deserialize(meta.training.clone()) {
        Ok(info) => Some(info),
        Err(e) if corpus.is_none() && !meta.training.is_null() => anyhow::bail!(
            "{}: the \"training\" record in config.json cannot be read ({e}), so its training \
             corpus is unknown: pass --corpus to evaluate on a text of your choice",
            dir.display()
        ),
        Err(_) => None,
    };
    let tok: TokenizerSpec = serde_json::from_value(meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", dir.display()))?;
    let (source, held_out_only) = match (corpus, &info) {
        (Some(c), _) => (CorpusSource::parse(c, 0)?, false),
        (None, Some(i)) => (i.corpus.clone(), true),
        (None, None) => anyhow::bail!(
            "{}: no training corpus recorded; pass --corpus",
            dir.display()
        ),
    };
    let source = match source {
        CorpusSource::File { path } => CorpusSource::File {
            path: asset_path(&path),
        },
        s => s,
    };
    let recorded = info.as_ref().map_or("", |i| i.corpus_sha256.as_str());
    if held_out_only && recorded.is_empty() {
        eprintln!(
            "warning: {}: config.json records no SHA-256 of its training corpus, so {} cannot \
             be checked to be the text it was trained on",
            dir.display(),
            source.label()
        );
    }
    let corpus = prepare_corpus_checked(&source, TokenizerKind::Char, Some(&tok), |now| {
        if held_out_only && !recorded.is_empty() && recorded != now {
            // Its held-out tenth would be another text's, shown as the model's own.
            anyhow::bail!(
                "{}: its training corpus {} is not the text it was trained on (SHA-256 {} \
                 recorded, {} there now): pass --corpus to evaluate on a text of your choice",
                dir.display(),
                source.label(),
                short(recorded),
                short(now)
            );
        }
        Ok(())
    })?;
    let stream = if held_out_only {
        let (train, held) = corpus.stream.split_at(train_split(corpus.stream.len()));
        crate::engine::copies::warn_copies(&train.ids, &held.ids, &source.label());
        held
    } else {
        corpus.stream.clone()
    };
    let seq = info.map(|i| i.config.seq_len).unwrap_or(max_seq_len);
    // A window of one token attends to itself alone: entropy 0 and PF 1, read as perfect.
    if !(2..=max_seq_len).contains(&seq) {
        anyhow::bail!(
            "{}: config.json records training windows of {seq} tokens (training.config.seq_len), \
             outside 2..={max_seq_len} (the model's positions)",
            dir.display()
        );
    }
    Ok((stream, seq))
}

/// The first 12 hex digits of a SHA-256, enough to tell two apart in a message.
fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

/// Blocks by k-means over the embedding rows (or a lexicon), then per setting the entropy and
/// ε (and for a decoder the perplexity) in windows of 64 tokens (fewer for a model of fewer
/// positions).
fn evaluate_imported(
    job: &EvalJob,
    m: &ImportedModel,
    tok: &HfTokenizer,
    mut on_note: impl FnMut(&str),
) -> Result<EvalOutcome> {
    let path = match &job.corpus {
        Some(given) => asset_path(&PathBuf::from(given)),
        None => {
            crate::engine::corpus::bundled_path(Path::new("assets/corpora/shakespeare_1mb.txt"))
        }
    };
    let text = crate::data::corpus::load_corpus(&path)?;
    // Enough text for the windows asked for (about 4 characters per token).
    let take: String = text
        .chars()
        .take(job.windows.max(1).saturating_mul(64 * 6))
        .collect();
    let ids = tok.encode(&take);
    let dims = m.model().dims();
    let blocks = match &job.lexicon {
        Some(file) => crate::hf::lexicon_blocks(&crate::data::lexicon::Lexicon::load(file)?, tok)?,
        // An adapter's eval clustered blocks of its own while `capture` and the studio read
        // the blocks it was trained towards: ε and PF were of another map, unsaid.
        None => match (job.clusters, m.saved_blocks(tok)?) {
            (None, Some(saved)) => saved,
            (k, _) => m.kmeans_blocks(tok, k.unwrap_or(DEFAULT_EVAL_CLUSTERS), 0)?,
        },
    };
    on_note(&format!(
        "{}: {}, {} layers × {} heads; blocks: {} ({} blocks); {} tokens of {}",
        job.model.display(),
        m.kind_label(),
        dims.layers,
        dims.heads,
        blocks.source,
        blocks.num_blocks(),
        ids.len(),
        path.display()
    ));
    // Windows of 64 tokens, or of the model's positions when it has fewer (a model of 16
    // positions failed with "sequence of 64 tokens is longer than the model's 16").
    let win = 64.min(dims.max_len).max(1);
    if let Some(why) = blocks.weak_on(ids.get(..win).unwrap_or(&ids)) {
        on_note(&format!("warning: {}: {why}", job.model.display()));
    }
    let rows = eval_imported(m.model(), &blocks, &ids, &job.dials, win, job.windows)?;
    let worst = (rows.iter().filter_map(|r| r.perplexity)).reduce(f64::max);
    let or = "a tokenizer of another model";
    if let Some(w) = worse_than_uniform(job, worst, dims.vocab, "perplexity", or) {
        on_note(&w);
    }
    let rules = match &job.rules {
        Some(file) => {
            let rules = load_rules(file, &blocks, tok, &[], &dims)?;
            let windows: Vec<Vec<u32>> = ids
                .chunks(win)
                .filter(|w| w.len() == win)
                .take(job.windows)
                .map(<[u32]>::to_vec)
                .collect();
            Some(rule_evals_on(
                m.model(),
                &blocks,
                &rules,
                &windows,
                &job.dials,
            )?)
        }
        None => None,
    };
    Ok(EvalOutcome {
        rows: EvalRows::Imported(rows),
        rules,
    })
}

/// The anchor statistics recorded in a checkpoint's training facts (`None` when it has none).
pub fn recorded_anchors(checkpoint: &Path) -> Result<Option<AnchorReport>> {
    let path = checkpoint.join("config.json");
    let text = crate::files::read_text(&path, crate::files::MAX_CONFIG_BYTES, "a config.json")?;
    let meta: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))?;
    let info: Option<TrainingInfo> = serde_json::from_value(meta["training"].clone()).ok();
    Ok(info.and_then(|i| i.anchors))
}
