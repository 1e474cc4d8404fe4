//! Growing a pool of specialists over a document collection by description length (SPEC §10),
//! as a job in steps the caller can report between: open, grow (each move as it is decided),
//! summarise, save.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::data::tokenizer::Tokenizer;
use crate::engine::export::write_atomic;
use crate::engine::jobs::finetune::{base_ref, blocks_for};
use crate::engine::specialists::{
    folder_note, read_documents, AdaptedConfig, AdaptedPool, Document, GrowthReport, Pool,
    PoolConfig, PoolMove,
};
use crate::hf::adapter::AdapterSpec;
use crate::hf::ImportedModel;
use crate::model::dial::DialSetting;

/// What to grow the pool from.
#[derive(Clone, Debug)]
pub struct PoolJob {
    /// The base specialist: a checkpoint directory of ours, or a pretrained decoder (a
    /// `.gguf` file, a LLaMA, Mistral, Phi-3, Qwen2, Qwen3, GPT-2, GPT-Neo, GPT-NeoX, Phi or Gemma folder), whose specialists are then adapters.
    pub base: PathBuf,
    /// Documents: a directory (one document per file) or a file.
    pub docs: PathBuf,
    /// The line that separates documents in a single file (default: blank lines).
    pub separator: Option<String>,
    /// Measure code lengths at the mode-A dial λ (default: the dial saved with the base; 0 for
    /// a pretrained one).
    pub lambda: Option<f64>,
    /// The search's settings.
    pub config: PoolConfig,
    /// On a pretrained base: its blocks (`kmeans:K`, `lexicon:PATH`, `saved`), what a
    /// specialist's adapter trains, and the λ_train of its fine-tune.
    pub adapted: AdaptedJob,
}

/// What a pool on a pretrained base needs besides the pool's settings.
#[derive(Clone, Debug)]
pub struct AdaptedJob {
    /// Blocks of the base: `kmeans:K`, `lexicon:PATH` or `saved`.
    pub blocks: String,
    /// What a specialist trains ([`crate::hf::adapter::AdapterSpec::parse`]).
    pub adapt: String,
    /// λ_train of a specialist's fine-tune (off-block mass penalty; 0: cross-entropy only).
    pub lambda_train: f64,
}

impl Default for AdaptedJob {
    fn default() -> Self {
        Self {
            blocks: "kmeans:16".into(),
            adapt: "lora:1:blk.last.attn_output".into(),
            lambda_train: 0.0,
        }
    }
}

/// True when `path` is a pretrained model (a pool on it grows adapters), not one of our
/// checkpoints.
pub fn is_pretrained(path: &Path) -> bool {
    ImportedModel::looks_imported(path)
}

/// The pool being grown: of our own checkpoints, or of adapters on a pretrained decoder.
enum Grown {
    Own(Box<Pool>),
    Adapted(Box<AdaptedPool>, Box<AdaptedConfig>),
}

/// A pool being grown over its documents.
pub struct PoolRun {
    pool: Grown,
    docs: Vec<Document>,
    config: PoolConfig,
    /// The documents' texts as read (saved beside the pool for the Specialists tab).
    texts: Vec<String>,
    /// What reading a folder of documents skipped or reached outside it.
    folder_note: Option<String>,
}

/// [`GrowthReport`] from two closures.
struct Report<'a, M, P>(M, P, &'a dyn Fn() -> bool);

impl<M: FnMut(&PoolMove), P: FnMut(&str)> GrowthReport for Report<'_, M, P> {
    fn on_move(&mut self, m: &PoolMove) {
        (self.0)(m);
    }
    fn progress(&mut self, line: &str) {
        (self.1)(line);
    }
    fn stopped(&self) -> bool {
        (self.2)()
    }
}

/// A pool to grow and the folder to save it in (the studio's Grow pool).
#[derive(Clone, Debug)]
pub struct GrowPool {
    /// What to grow it from.
    pub job: PoolJob,
    /// Where to save it.
    pub out: PathBuf,
}

/// A candidate adapter's fine-tuning defaults on a pretrained base: learning rate, window
/// length and windows per step (our own checkpoints' are [`PoolConfig::default`]'s).
pub const ADAPTER_TUNING: (f64, usize, usize) = (2e-3, 128, 2);

impl PoolJob {
    /// `localist specialists`' defaults for a pool grown from `base` over `docs`: a
    /// specialist of ours fine-tunes its output bias, one on a pretrained base an adapter
    /// ([`AdaptedJob::default`]), with the fine-tuning settings of its kind.
    pub fn defaults(base: PathBuf, docs: PathBuf) -> Self {
        let own = PoolConfig::default();
        let (lr, seq_len, batch_size) = if is_pretrained(&base) {
            ADAPTER_TUNING
        } else {
            (own.lr, own.seq_len, own.batch_size)
        };
        Self {
            base,
            docs,
            separator: None,
            lambda: None,
            config: PoolConfig {
                lr,
                seq_len,
                batch_size,
                trainable: vec!["head.bias".into()],
                ..own
            },
            adapted: AdaptedJob::default(),
        }
    }
}

/// One specialist's blocks in the summary.
#[derive(Clone, Debug)]
pub struct SpecialistBlocks {
    /// The specialist's name.
    pub name: String,
    /// Its blocks besides "unassigned".
    pub blocks: Vec<String>,
    /// Bits of blocks it adds over its parent.
    pub bits: f64,
}

impl PoolRun {
    /// Read the documents and start a pool of the base alone (at the job's dial, if given).
    pub fn open(job: PoolJob) -> Result<Self> {
        if let Some(lambda) = job.lambda {
            if !(0.0..=1.0).contains(&lambda) {
                anyhow::bail!("--lambda {lambda}: the dial lies in [0, 1]");
            }
        }
        let texts = read_documents(&job.docs, job.separator.as_deref())?;
        if texts.is_empty() {
            anyhow::bail!("{}: no documents found", job.docs.display());
        }
        if ImportedModel::looks_imported(&job.base) {
            return Self::open_adapted(job, &texts);
        }
        let (mut pool, docs) = Pool::from_checkpoint(&job.base, &texts)?;
        crate::engine::coverage::readable_documents(&pool.tokenizer, &texts, &job.docs)?;
        if let Some(base) = pool.specialists.first() {
            check_fine_tuning(&job.config, &base.model)?;
        }
        if let Some(lambda) = job.lambda {
            pool.set_dial(DialSetting::bias(lambda), &docs, &job.config)?;
        }
        Ok(Self {
            pool: Grown::Own(Box::new(pool)),
            docs,
            config: job.config,
            texts: texts.into_iter().map(|t| t.1).collect(),
            folder_note: folder_note(&job.docs),
        })
    }

    /// A pool of adapters on the pretrained decoder `job.base`: its tokenizer codes the
    /// documents, its blocks are built as a fine-tune's are.
    fn open_adapted(job: PoolJob, texts: &[(String, String)]) -> Result<Self> {
        let model = ImportedModel::open(&job.base, &candle_core::Device::Cpu)?;
        let tokenizer = model.tokenizer();
        let blocks = blocks_for(&model, &tokenizer, &job.adapted.blocks, job.config.seed)?;
        let docs: Vec<Document> = texts
            .iter()
            .map(|(name, text)| Document {
                name: name.clone(),
                ids: tokenizer.encode(text),
            })
            .filter(|d| d.ids.len() >= 2)
            .collect();
        let dial = DialSetting::bias(job.lambda.unwrap_or(0.0));
        let base_ref = base_ref(&model)?;
        let cfg = AdaptedConfig {
            pool: job.config.clone(),
            adapt: job.adapted.adapt.clone(),
            lambda_train: job.adapted.lambda_train,
        };
        if let Some(decoder) = model.trainable() {
            // A bad --adapt is named before every document is coded.
            let spec =
                AdapterSpec::parse(&cfg.adapt, decoder.num_layers()).map_err(anyhow::Error::msg)?;
            spec.check_on(decoder).map_err(anyhow::Error::msg)?;
        }
        let pool = AdaptedPool::new(model, base_ref, blocks, &docs, dial)?;
        Ok(Self {
            pool: Grown::Adapted(Box::new(pool), Box::new(cfg)),
            docs,
            config: job.config,
            texts: texts.iter().map(|t| t.1.clone()).collect(),
            folder_note: folder_note(&job.docs),
        })
    }

    /// Number of documents.
    pub fn documents(&self) -> usize {
        self.docs.len()
    }

    /// What the user should know before the pool grows: what reading a folder skipped or
    /// reached outside it, and [`Self::limits_note`].
    pub fn notes(&self) -> Vec<String> {
        self.folder_note
            .iter()
            .cloned()
            .chain(self.limits_note())
            .collect()
    }

    /// Why no new specialist can be tried on these documents, when that is so: one is split
    /// off a specialist's documents at a gap in bits per token, with two on each side.
    pub fn limits_note(&self) -> Option<String> {
        let least = crate::train::specialists::MIN_SPLIT_DOCUMENTS;
        (self.docs.len() < least).then(|| {
            format!(
                "{} document{}: a new specialist is split off at least {least} (two on each \
                 side of a gap in bits per token), so none will be tried, only re-routing and \
                 blocks. Give more documents: one per line, or a --separator line between them",
                self.docs.len(),
                if self.docs.len() == 1 { "" } else { "s" }
            )
        })
    }

    /// Tokens over all documents.
    pub fn tokens(&self) -> usize {
        self.docs.iter().map(|d| d.ids.len()).sum()
    }

    /// Total description length of the documents under the pool, bits.
    pub fn dl_total_bits(&self) -> f64 {
        match &self.pool {
            Grown::Own(p) => p.dl_total(&self.docs, &self.config),
            Grown::Adapted(p, _) => p.dl_total(&self.docs, &self.config),
        }
    }

    /// Grow the pool; `on_move` sees every move as it is decided, `progress` lines of progress
    /// while a specialist on a pretrained base fine-tunes. When `stop` says so, growth ends
    /// early (a candidate being fine-tuned stops training and is decided as it is), leaving the
    /// pool as its accepted moves made it.
    pub fn grow(
        &mut self,
        on_move: impl FnMut(&PoolMove),
        progress: impl FnMut(&str),
        stop: &dyn Fn() -> bool,
    ) -> Result<()> {
        match &mut self.pool {
            Grown::Own(p) => p.grow(&self.docs, &self.config, on_move, stop),
            Grown::Adapted(p, cfg) => p.grow(&self.docs, cfg, &mut Report(on_move, progress, stop)),
        }
    }

    /// The routing table (Markdown): each document's bits under each specialist, and where it
    /// is routed.
    pub fn routing_table(&self) -> String {
        match &self.pool {
            Grown::Own(p) => p.routing_table(&self.docs),
            Grown::Adapted(p, _) => p.routing_table(&self.docs),
        }
    }

    /// Each specialist's blocks and what they cost (a pool of adapters shares the base's
    /// blocks, and its specialists add none).
    pub fn specialist_blocks(&self) -> Vec<SpecialistBlocks> {
        match &self.pool {
            Grown::Own(pool) => {
                let bits = pool.block_bits(&self.config);
                pool.specialists
                    .iter()
                    .zip(bits)
                    .map(|(s, bits)| SpecialistBlocks {
                        name: s.name.clone(),
                        blocks: listed_blocks(&s.blocks),
                        bits,
                    })
                    .collect()
            }
            Grown::Adapted(pool, _) => pool
                .specialists
                .iter()
                .map(|s| SpecialistBlocks {
                    name: s.name.clone(),
                    blocks: listed_blocks(&pool.blocks),
                    bits: 0.0,
                })
                .collect(),
        }
    }

    /// What each specialist adds over the base: (name, parameters, description).
    pub fn specialist_sizes(&self) -> Vec<(String, usize, String)> {
        match &self.pool {
            Grown::Own(p) => p
                .specialists
                .iter()
                .map(|s| (s.name.clone(), s.added_params, "checkpoint".to_string()))
                .collect(),
            Grown::Adapted(p, _) => p
                .specialists
                .iter()
                .map(|s| {
                    let what = s.adapter.as_ref().map_or_else(
                        || format!("the base, {}", p.base_ref.path.display()),
                        |a| format!("adapter: {}, {} steps", a.spec.describe(), s.steps),
                    );
                    (s.name.clone(), s.added_params, what)
                })
                .collect(),
        }
    }

    /// Number of specialists.
    pub fn specialists(&self) -> usize {
        match &self.pool {
            Grown::Own(p) => p.specialists.len(),
            Grown::Adapted(p, _) => p.specialists.len(),
        }
    }

    /// Save the pool as a directory: one checkpoint (or adapter folder) per specialist,
    /// `manifest.json`, and `documents.txt` (the documents, blank-line separated, for the
    /// Specialists tab) when every document was routed and none holds a blank line.
    pub fn save(&self, dir: &Path) -> Result<()> {
        match &self.pool {
            Grown::Own(p) => p.save(dir, &self.docs)?,
            Grown::Adapted(p, cfg) => p.save(dir, &self.docs, cfg)?,
        }
        let texts: Vec<&str> = self.texts.iter().map(|t| t.trim()).collect();
        if texts.len() == self.docs.len() && texts.iter().all(|t| !t.contains("\n\n")) {
            write_atomic(&dir.join("documents.txt"), texts.join("\n\n").as_bytes())?;
        }
        Ok(())
    }
}

/// The fine-tuning settings against the base, named by their flags before any document is
/// coded (they were met only at the first round's fine-tune, or never with one document).
fn check_fine_tuning(
    c: &PoolConfig,
    base: &crate::model::transformer::LocalistModel,
) -> Result<()> {
    let positions = base.config.max_seq_len;
    if c.seq_len < 2 || c.seq_len > positions {
        anyhow::bail!(
            "--seq {} must lie between 2 and the base model's {positions} positions",
            c.seq_len
        );
    }
    if c.batch_size == 0 {
        anyhow::bail!("--batch must be at least 1 window, got 0");
    }
    let names: Vec<String> = base.params.iter().map(|(n, _)| n.clone()).collect();
    for prefix in &c.trainable {
        if !names.iter().any(|n| n.starts_with(prefix.as_str())) {
            anyhow::bail!(
                "--trainable {prefix}: no parameter of the base model starts with it (they \
                 are named like {})",
                names.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

/// The blocks a listing names: every block but 0 ("unassigned") of a semantic map; every
/// window of a positional one (its block 0 is the window of the first positions).
fn listed_blocks(b: &crate::model::blocks::BlockMap) -> Vec<String> {
    let skip = usize::from(matches!(b.kind, crate::model::blocks::BlockKind::Semantic));
    b.names.iter().skip(skip).cloned().collect()
}
