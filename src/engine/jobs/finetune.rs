//! Fine-tuning an imported decoder towards its blocks, for both faces: set up from plain
//! inputs (the model's path, a corpus file, the blocks, what trains), step, evaluate and save
//! the adapter ([`crate::train::finetune`]).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::data::lexicon::Lexicon;
use crate::data::tokenizer::Tokenizer;
use crate::engine::corpus::{asset_path, sha256_hex};
use crate::files::{read_text, MAX_CORPUS_BYTES};
use crate::hf::adapter::{save_adapter, AdapterSpec, BaseRef};
use crate::hf::eval::RealEvalRow;
use crate::hf::{lexicon_blocks, HfTokenizer, ImportedModel};
use crate::model::blocks::BlockMap;
use crate::train::finetune::{FineTuneConfig, FineTuner};
use crate::train::StepStats;

pub use crate::hf::adapter::MAX_RANK;

/// What a fine-tune is asked to do.
#[derive(Clone, Debug)]
pub struct FinetuneJob {
    /// The base: a `.gguf` file, a LLaMA/Mistral/Phi-3/Qwen2/Qwen3 folder, or an adapter folder (tuned further).
    pub from: PathBuf,
    /// A UTF-8 text file.
    pub corpus: PathBuf,
    /// Blocks: `kmeans:K` (default 16), `lexicon:PATH`, or `saved` (the model's own).
    pub blocks: String,
    /// What trains (`qk`, `lora:R`, `lora:R:NAMES`, `NAMES`; see [`AdapterSpec::parse`]).
    pub adapt: String,
    /// λ_train, η, lr, steps, T, B, seed.
    pub lambda_train: f64,
    /// η.
    pub eta: f64,
    /// Learning rate.
    pub lr: f64,
    /// Steps.
    pub steps: usize,
    /// Window length.
    pub seq_len: usize,
    /// Windows per step.
    pub batch_size: usize,
    /// Seed.
    pub seed: u64,
    /// A rule file to train towards (the studio uses the rules in force instead).
    pub rules: Option<PathBuf>,
    /// Weight μ_rule of the rule penalty.
    pub mu_rule: f64,
    /// The locality term (`None`: the default of [`FineTuneConfig::new`]).
    pub penalty: Option<crate::train::finetune::LocalityPenalty>,
    /// Weight μ_anc of the anchor loss (0: off).
    pub mu_anchor: f64,
}

/// A set-up fine-tune with what its file records.
pub struct FinetuneRun {
    /// The run.
    pub tuner: FineTuner,
    /// The corpus file and its SHA-256.
    pub corpus: (PathBuf, String),
    /// The model's tokenizer.
    pub tokenizer: HfTokenizer,
}

/// Open the base, tokenize the corpus, build the blocks and the adapter.
pub fn setup(job: &FinetuneJob) -> Result<FinetuneRun> {
    let model = ImportedModel::open(&job.from, &candle_core::Device::Cpu)?;
    let tokenizer = model.tokenizer();
    let blocks = blocks_for(&model, &tokenizer, &job.blocks, job.seed)?;
    let prepared = prepare(job, &model, &tokenizer)?;
    let rules = match &job.rules {
        Some(file) => crate::engine::jobs::rules::load_rules(
            file,
            &blocks,
            &tokenizer,
            &[],
            &model.model().dims(),
        )?,
        None => Vec::new(),
    };
    let mut run = FinetuneRun::start(model, tokenizer, blocks, prepared)?;
    run.tuner.rules = rules;
    Ok(run)
}

/// Everything a fine-tune needs besides the model, checked against it: nothing is taken from
/// a caller that holds the model until this has succeeded.
pub struct Prepared {
    ids: Vec<u32>,
    corpus: (PathBuf, String),
    base_ref: BaseRef,
    config: FineTuneConfig,
}

/// Read and tokenize the corpus, parse what trains and check every setting against `model`.
pub fn prepare(
    job: &FinetuneJob,
    model: &ImportedModel,
    tokenizer: &HfTokenizer,
) -> Result<Prepared> {
    let base_path = model.path().to_path_buf();
    let Some(decoder) = model.trainable() else {
        bail!(
            "{}: a {} model; fine-tuning supports decoders (a .gguf file, or a LLaMA, Qwen2 or \
             GPT-2 folder)",
            base_path.display(),
            model.arch_label()
        );
    };
    let spec = AdapterSpec::parse(&job.adapt, decoder.num_layers()).map_err(anyhow::Error::msg)?;
    spec.check_on(decoder).map_err(anyhow::Error::msg)?;
    // Absolute, as a checkpoint records its corpus: adapter.json is read from other folders.
    let corpus_path =
        std::path::absolute(asset_path(&job.corpus)).unwrap_or_else(|_| job.corpus.clone());
    let text = read_text(&corpus_path, MAX_CORPUS_BYTES, "a corpus")?;
    if text.trim().is_empty() {
        bail!("{}: the corpus is empty", corpus_path.display());
    }
    let ids = tokenizer.encode(&text);
    let config = FineTuneConfig {
        lambda_train: job.lambda_train,
        eta: job.eta,
        lr: job.lr,
        steps: job.steps,
        seq_len: job.seq_len,
        batch_size: job.batch_size,
        seed: job.seed,
        mu_rule: job.mu_rule,
        mu_anchor: job.mu_anchor,
        ..FineTuneConfig::new(spec)
    };
    let config = FineTuneConfig {
        penalty: job.penalty.unwrap_or(config.penalty),
        ..config
    };
    config
        .check_for(decoder.context(), ids.len())
        .map_err(|e| anyhow::anyhow!("fine-tuning on {}: {e}", corpus_path.display()))?;
    let base_ref = base_ref(model)?;
    Ok(Prepared {
        ids,
        corpus: (corpus_path, sha256_hex(text.as_bytes())),
        base_ref,
        config,
    })
}

/// What an adapter records of `model`, its base. An adapter tuned further names that adapter
/// as its base (which names its own): opening the new one applies both, in order.
pub(crate) fn base_ref(model: &ImportedModel) -> Result<BaseRef> {
    let path = model.path();
    Ok(BaseRef {
        path: std::fs::canonicalize(path).unwrap_or(path.to_path_buf()),
        sha256: crate::hf::model_sha256(path)?,
        arch: model.arch_label().into(),
    })
}

/// The blocks `spec` names for `model`.
pub(crate) fn blocks_for(
    model: &ImportedModel,
    tok: &HfTokenizer,
    spec: &str,
    seed: u64,
) -> Result<BlockMap> {
    if spec == "saved" {
        return model.saved_blocks(tok)?.ok_or_else(|| {
            anyhow::anyhow!(
                "--blocks saved: no block map saved for this model ({})",
                model.blocks_path().display()
            )
        });
    }
    if let Some(k) = spec.strip_prefix("kmeans:") {
        let k: usize = k
            .parse()
            .with_context(|| format!("--blocks {spec}: '{k}' is not a whole number"))?;
        return model.kmeans_blocks(tok, k, seed);
    }
    if let Some(path) = spec.strip_prefix("lexicon:") {
        let lex = Lexicon::load(&asset_path(Path::new(path)))?;
        return Ok(lexicon_blocks(&lex, tok)?);
    }
    bail!("--blocks {spec}: expected kmeans:K, lexicon:PATH or saved")
}

impl FinetuneRun {
    /// Start a run on `model` with `blocks` (from [`prepare`] on the same model).
    pub fn start(
        model: ImportedModel,
        tokenizer: HfTokenizer,
        blocks: BlockMap,
        p: Prepared,
    ) -> Result<Self> {
        let tuner = FineTuner::new(model, p.base_ref, blocks, p.ids, p.config)?;
        Ok(Self {
            tuner,
            corpus: p.corpus,
            tokenizer,
        })
    }

    /// One step.
    pub fn step(&mut self) -> Result<StepStats> {
        Ok(self.tuner.train_step()?)
    }

    /// Held-out metrics at λ_inf = 0 with the adapter applied.
    pub fn evaluate(&self, windows: usize) -> Result<RealEvalRow> {
        self.tuner.evaluate(windows)
    }

    /// The base under the inference dial (mode A) at each λ of `lambdas`, on the held-out
    /// windows.
    pub fn dial_curve(&mut self, lambdas: &[f64], windows: usize) -> Result<Vec<RealEvalRow>> {
        let dials: Vec<_> = lambdas
            .iter()
            .map(|&l| crate::model::dial::DialSetting::bias(l))
            .collect();
        self.tuner.evaluate_base(&dials, windows)
    }

    /// Write the adapter folder `dir` (atomically), with `eval` when measured.
    pub fn save(&self, dir: &Path, eval: Option<&RealEvalRow>) -> Result<()> {
        let info = self
            .tuner
            .info(Some((&self.corpus.0, self.corpus.1.as_str())), eval);
        save_adapter(dir, &info, &self.tuner.adapter, &self.tuner.blocks)
    }

    /// "LoRA rank 8 of attn_q, attn_k in 30 layers: 138,240 scalars".
    pub fn describe(&self) -> String {
        format!(
            "{}: {} trainable scalars",
            self.tuner.adapter.spec.describe(),
            self.tuner.adapter.num_scalars()
        )
    }
}
