//! A whole training run, as the CLI and the studio start it: corpus, tokenizer, block map,
//! model (fresh, from reference weights, or resumed), the step loop with a callback, periodic
//! atomic checkpoints, and the final held-out evaluation.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::engine::anchors::{anchor_report, AnchorReport};
use crate::engine::best::BestState;
use crate::engine::corpus::{
    build_blocks, prepare_corpus, BlockSpec, CorpusSource, PreparedCorpus, TokenizerKind,
};
use crate::engine::held_out::HeldOutPoint;
use crate::engine::train_checks::{
    check_steps_left, checked_split, earlier_log, for_recruitment, resumed_record, run_recruiter,
    write_recruitment,
};
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{
    load_checkpoint, read_tensors, save_checkpoint, CheckpointMeta, CHECKPOINT_VERSION,
};
use crate::model::config::ModelConfig;
use crate::model::dial::DialSetting;
use crate::model::transformer::LocalistModel;
use crate::train::dataset::TokenStream;
use crate::train::eval::{evaluate, EvalReport};
use crate::train::recruit::{RecruitConfig, RecruitEvent, Recruiter};
use crate::train::trainer::{StepStats, TrainConfig, Trainer};

pub use crate::engine::default_device;

/// Everything needed to start a run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainJob {
    /// Training text.
    pub corpus: CorpusSource,
    /// Tokenizer to fit (ignored when resuming).
    pub tokenizer: TokenizerKind,
    /// Model preset name.
    pub preset: String,
    /// Block map source (default: the corpus's lexicon, else windows of 8).
    pub blocks: Option<BlockSpec>,
    /// Hyper-parameters.
    pub train: TrainConfig,
    /// Checkpoint directory to write (None: keep in memory).
    pub out: Option<PathBuf>,
    /// Save a checkpoint every this many steps (0: only at the end).
    pub checkpoint_every: usize,
    /// Initial weights in reference (PyTorch state-dict) names.
    pub init_weights: Option<PathBuf>,
    /// Resume from this checkpoint directory.
    pub resume: Option<PathBuf>,
    /// Held-out windows for the final evaluation.
    pub eval_windows: usize,
    /// Write optimizer moments into checkpoints (needed to resume exactly).
    pub save_optimizer: bool,
    /// A rule file trained towards with weight `train.mu_rule`.
    #[serde(default)]
    pub rules: Option<PathBuf>,
    /// Block-level recruitment (SPEC §9); the block map starts with unassigned tokens open
    /// (they keep all context; recruited blocks narrow only their own queries).
    #[serde(default)]
    pub recruit: Option<RecruitConfig>,
    /// Steps between points of the held-out curve (None: about twenty a run; 0: none).
    #[serde(default)]
    pub eval_every: Option<usize>,
    /// End on the weights of the best point of the held-out curve when the last is worse.
    #[serde(default)]
    pub keep_best: bool,
    /// When the curve ends overfitting, or its best point's weights code the held-out text it
    /// does not read measurably better than the last step's, end on them under the final block
    /// map (the command line's default; `keep_best` goes back blocks and all).
    #[serde(default)]
    pub keep_best_on_overfit: bool,
}

impl Default for TrainJob {
    fn default() -> Self {
        Self {
            corpus: CorpusSource::Synthetic {
                seed: 0,
                records: 4000,
            },
            tokenizer: TokenizerKind::Char,
            preset: "tiny".into(),
            blocks: None,
            train: TrainConfig::default(),
            out: None,
            checkpoint_every: 0,
            init_weights: None,
            resume: None,
            eval_windows: 64,
            save_optimizer: true,
            rules: None,
            recruit: None,
            eval_every: None,
            keep_best: false,
            keep_best_on_overfit: false,
        }
    }
}

/// Training facts stored in a checkpoint's `config.json` under `training`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainingInfo {
    /// λ_train the weights were trained under.
    pub lambda_train: f64,
    /// Steps completed.
    pub steps_done: usize,
    /// Corpus source.
    pub corpus: CorpusSource,
    /// SHA-256 of the corpus text.
    pub corpus_sha256: String,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Loss of the last step, nats.
    pub last_loss_nats: Option<f64>,
    /// Held-out evaluation at the end (λ_inf = 0).
    pub final_eval: Option<EvalReport>,
    /// Anchor tokens of each block on the training text (SPEC §5).
    #[serde(default)]
    pub anchors: Option<AnchorReport>,
    /// The held-out curve of the run (λ_inf = 0, a few windows a point).
    #[serde(default)]
    pub held_out: Vec<HeldOutPoint>,
}

/// A run set up and ready to step.
pub struct Session {
    /// The prepared corpus.
    pub corpus: PreparedCorpus,
    /// The trainer (owns model and block map).
    pub trainer: Trainer,
    /// Held-out tokens.
    pub val: TokenStream,
    /// The job.
    pub job: TrainJob,
    /// Loss history.
    pub history: Vec<StepStats>,
    /// Block recruitment, when the job asks for it.
    pub recruiter: Option<Recruiter>,
    /// The resumed checkpoint's recruitment log when this run does not recruit (saved again).
    pub earlier_log: Option<Recruiter>,
    /// The held-out curve so far (carried over when resuming).
    pub held_out: Vec<HeldOutPoint>,
    /// The best point of the studio's live curve and the run's state there, for
    /// [`Command::BackToBest`](crate::engine::protocol::Command::BackToBest).
    pub best: Option<BestState>,
}

/// Outcome of [`run`](crate::engine::train_run::run).
pub struct Outcome {
    /// The session at its end.
    pub session: Session,
    /// Held-out evaluation at λ_inf = 0.
    pub eval: EvalReport,
    /// True when the callback stopped the run early.
    pub stopped: bool,
}

/// Set up corpus, blocks, model and trainer for a job.
pub fn setup(job: &TrainJob, device: &Device) -> Result<Session> {
    let resumed = match &job.resume {
        Some(dir) => Some(load_checkpoint(dir, device)?),
        None => None,
    };
    let tok_spec = match &resumed {
        Some(ck) => Some(
            serde_json::from_value(ck.meta.tokenizer.clone())
                .with_context(|| format!("{}: tokenizer description", dir_label(&job.resume)))?,
        ),
        None => None,
    };
    let mut corpus = prepare_corpus(&job.corpus, job.tokenizer, tok_spec.as_ref())?;
    let (train, val) = checked_split(&job.corpus.label(), job.train.seq_len, &corpus.stream)?;
    let copies = crate::engine::copies::warn_copies(&train.ids, &val.ids, &job.corpus.label());
    corpus.warnings.extend(copies);
    let mut held_out = Vec::new();
    let (model, blocks, step, opt_state) = match resumed {
        Some(ck) => {
            let (step, optimizer, curve) = resumed_state(job, &ck, device, &corpus)?;
            held_out = curve;
            (ck.model, ck.blocks, step, optimizer)
        }
        None => {
            let mut cfg = ModelConfig::preset(&job.preset, corpus.tokenizer.vocab_size())?;
            cfg.max_seq_len = cfg.max_seq_len.max(job.train.seq_len);
            let spec = job
                .blocks
                .clone()
                .unwrap_or_else(|| BlockSpec::default_for(&corpus));
            let blocks = build_blocks(&spec, &corpus, cfg.max_seq_len)?;
            let model = match &job.init_weights {
                Some(path) => {
                    let tensors = read_tensors(path, device)?;
                    LocalistModel::from_tensors(&cfg, &tensors, blocks.num_blocks(), device)
                        .with_context(|| format!("{}: initial weights", path.display()))?
                }
                None => {
                    LocalistModel::new_random(&cfg, blocks.num_blocks(), job.train.seed, device)?
                }
            };
            (model, blocks, 0, None)
        }
    };
    let mut train_cfg = job.train.clone();
    let mut blocks = blocks;
    if let Some(rc) = &job.recruit {
        for_recruitment(rc, &mut blocks, &mut train_cfg)?;
    }
    let mut trainer = Trainer::new(model, blocks, train, train_cfg)?;
    if let Some(path) = &job.rules {
        let text = crate::files::read_text(path, crate::files::MAX_DOCUMENT_BYTES, "a rules file")?;
        let name = path.display().to_string();
        let set = crate::rules::parse_rules(&text)
            .map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))?;
        trainer.rules =
            crate::rules::resolve(&set, &trainer.blocks, corpus.tokenizer.as_ref(), &[])
                .map_err(|e| anyhow::anyhow!("{}", e.with_file(&name)))?;
    }
    if let Some(state) = opt_state {
        trainer.resume(&state, step)?;
    } else if step > 0 {
        trainer.resume(&Default::default(), step)?;
    }
    Ok(Session {
        recruiter: run_recruiter(job.resume.as_deref(), job.recruit.as_ref(), &trainer)?,
        earlier_log: earlier_log(job.resume.as_deref(), job.recruit.as_ref(), &trainer.blocks),
        corpus,
        trainer,
        val,
        job: job.clone(),
        history: Vec::new(),
        held_out,
        best: None,
    })
}

/// Adam moments by parameter name, as a checkpoint saves them.
type OptimizerState = HashMap<String, Tensor>;

/// A resumed checkpoint's steps done (checked), optimizer state and held-out curve.
fn resumed_state(
    job: &TrainJob,
    ck: &crate::model::checkpoint::Checkpoint,
    device: &Device,
    corpus: &PreparedCorpus,
) -> Result<(usize, Option<OptimizerState>, Vec<HeldOutPoint>)> {
    let dir = dir_label(&job.resume);
    let info: Option<TrainingInfo> = resumed_record(&ck.meta.training, &dir)?;
    let step = info.as_ref().map(|i| i.steps_done).unwrap_or(0);
    check_steps_left(&dir, job.train.steps, step)?;
    // The curve goes on only over the held-out text it was measured on.
    let other_text = info
        .as_ref()
        .is_some_and(|i| !i.corpus_sha256.is_empty() && i.corpus_sha256 != corpus.sha256);
    if other_text {
        eprintln!(
            "note: resuming {dir} on {}, not the text it was trained on (its SHA-256 differs): \
             the held-out curve starts again on this text's held-out tenth",
            job.corpus.label()
        );
    }
    let held_out = info
        .filter(|_| !other_text)
        .map_or(Vec::new(), |i| i.held_out);
    let held_out = held_out.into_iter().filter(|p| p.step <= step).collect();
    let optimizer = ck.load_optimizer(device).with_context(|| {
        format!(
            "resuming {dir}: its optimizer state cannot be read; delete {} to resume with the \
             optimizer started afresh",
            crate::model::checkpoint::OPTIMIZER_FILE
        )
    })?;
    Ok((step, optimizer, held_out))
}

fn dir_label(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

impl Session {
    /// The checkpoint metadata for the current state.
    pub fn meta(&self, final_eval: Option<EvalReport>) -> Result<CheckpointMeta> {
        let info = TrainingInfo {
            lambda_train: self.job.train.lambda_train,
            steps_done: self.trainer.step,
            corpus: self.corpus.source.clone(),
            corpus_sha256: self.corpus.sha256.clone(),
            config: self.trainer.config.clone(),
            last_loss_nats: self.history.last().map(|s| s.loss_nats),
            anchors: final_eval.is_some().then(|| {
                anchor_report(
                    &self.trainer.train.ids,
                    &self.trainer.blocks,
                    self.corpus.tokenizer.as_ref(),
                    self.job.train.seq_len,
                    5,
                    8,
                )
            }),
            final_eval,
            held_out: self.held_out.clone(),
        };
        Ok(CheckpointMeta {
            version: CHECKPOINT_VERSION,
            model: self.trainer.model.config.clone(),
            tokenizer: serde_json::to_value(&self.corpus.tokenizer_spec)?,
            training: serde_json::to_value(info)?,
            dial: DialSetting::default(),
            weights_sha256: None,
        })
    }

    /// Write a checkpoint of the current state to `dir` (atomically), with the recruitment log
    /// as `recruitment.json` when recruitment ran.
    pub fn save(&self, dir: &Path, final_eval: Option<EvalReport>) -> Result<()> {
        self.save_checkpoint_only(dir, final_eval)?;
        if let Some(rec) = self.recruiter.as_ref().or(self.earlier_log.as_ref()) {
            write_recruitment(dir, rec)?;
        }
        Ok(())
    }

    fn save_checkpoint_only(&self, dir: &Path, final_eval: Option<EvalReport>) -> Result<()> {
        let opt = if self.job.save_optimizer {
            Some(self.trainer.optimizer_state()?)
        } else {
            None
        };
        save_checkpoint(
            dir,
            &self.meta(final_eval)?,
            &self.trainer.blocks,
            &self.trainer.model,
            opt.as_ref(),
        )?;
        Ok(())
    }

    /// Held-out evaluation under a dial.
    pub fn evaluate(&self, dial: &DialSetting) -> Result<EvalReport> {
        let t = self.job.train.seq_len;
        Ok(evaluate(
            &self.trainer.model,
            &self.trainer.blocks,
            &self.val,
            dial,
            t,
            self.job.eval_windows,
            16,
        )?)
    }

    /// Held-out evaluation on the first `windows` windows only (the live curves).
    pub fn evaluate_windows(&self, dial: &DialSetting, windows: usize) -> Result<EvalReport> {
        let t = self.job.train.seq_len;
        Ok(evaluate(
            &self.trainer.model,
            &self.trainer.blocks,
            &self.val,
            dial,
            t,
            windows.min(self.job.eval_windows).max(1),
            16,
        )?)
    }

    /// Run a recruitment round if one is due (and recruitment is on); returns its events.
    pub fn maybe_recruit(&mut self) -> Result<Vec<RecruitEvent>> {
        let Some(rec) = &mut self.recruiter else {
            return Ok(Vec::new());
        };
        if !rec.due(self.trainer.step) {
            return Ok(Vec::new());
        }
        let events = rec
            .round(
                &mut self.trainer,
                &self.val.ids,
                self.corpus.tokenizer.as_ref(),
            )
            .with_context(|| format!("recruitment round at step {}", self.trainer.step))?;
        Ok(events)
    }

    /// The block map in use.
    pub fn blocks(&self) -> &BlockMap {
        &self.trainer.blocks
    }
}
