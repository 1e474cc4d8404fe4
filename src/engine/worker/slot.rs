//! The model the worker holds: nothing, a checkpoint, an imported pretrained model, or a
//! training run, as one enum, so at most one of them is ever held.

use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::jobs::finetune::FinetuneRun;
use crate::engine::jobs::model::OpenModel;
use crate::engine::protocol::{DEFAULT_CLUSTERS, IMPORTED_CAPTURE_LIMIT};
use crate::engine::train_job::Session;
use crate::hf::eval::RealEvalRow;
use crate::hf::{HfTokenizer, ImportedModel};
use crate::model::backend::AttentionModel;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{load_checkpoint, CheckpointMeta};
use crate::model::transformer::LocalistModel;

/// A checkpoint of ours, opened for inspection.
pub(super) struct Loaded {
    pub(super) model: LocalistModel,
    pub(super) blocks: BlockMap,
    pub(super) tokenizer: Box<dyn Tokenizer>,
    pub(super) meta: CheckpointMeta,
    /// The recruitment log beside it, when it describes its blocks (saved with it again).
    pub(super) recruiter: Option<crate::train::recruit::Recruiter>,
}

/// A pretrained model opened from a `.gguf` file or a Hugging Face folder.
pub(super) struct Imported {
    pub(super) model: ImportedModel,
    pub(super) blocks: BlockMap,
    pub(super) tokenizer: HfTokenizer,
}

/// The model the panels show.
pub(super) enum ModelSlot {
    /// Nothing loaded yet.
    Empty,
    /// A checkpoint directory.
    Checkpoint(Box<Loaded>),
    /// A pretrained model.
    Imported(Box<Imported>),
    /// A training run (its trainer owns the model).
    Run(Box<Session>),
    /// A fine-tune of an imported decoder (its tuner owns the model).
    Tune(Box<Tune>),
}

/// A fine-tune the worker drives.
pub(super) struct Tune {
    /// The run.
    pub(super) run: FinetuneRun,
    /// Held-out metrics before it started and at its last measurement.
    pub(super) before: Option<RealEvalRow>,
    pub(super) last_eval: Option<RealEvalRow>,
}

impl ModelSlot {
    /// The model the panels show, whatever its kind.
    pub(super) fn current(&self) -> Option<(&dyn AttentionModel, &BlockMap, &dyn Tokenizer)> {
        match self {
            Self::Imported(i) => Some((i.model.model(), &i.blocks, &i.tokenizer)),
            Self::Tune(t) => Some((
                t.run.tuner.base.model(),
                &t.run.tuner.blocks,
                &t.run.tokenizer,
            )),
            _ => self
                .current_own()
                .map(|(m, b, t)| (m as &dyn AttentionModel, b, t)),
        }
    }

    /// The current model when it is one of ours (training, λ*, anchors and saving need it).
    pub(super) fn current_own(&self) -> Option<(&LocalistModel, &BlockMap, &dyn Tokenizer)> {
        match self {
            Self::Run(s) => Some((
                &s.trainer.model,
                &s.trainer.blocks,
                s.corpus.tokenizer.as_ref(),
            )),
            Self::Checkpoint(l) => Some((&l.model, &l.blocks, l.tokenizer.as_ref())),
            Self::Imported(_) | Self::Tune(_) | Self::Empty => None,
        }
    }

    /// The block map the panels show, to edit.
    pub(super) fn blocks_mut(&mut self) -> Option<&mut BlockMap> {
        match self {
            Self::Run(s) => Some(&mut s.trainer.blocks),
            Self::Imported(i) => Some(&mut i.blocks),
            Self::Tune(t) => Some(&mut t.run.tuner.blocks),
            Self::Checkpoint(l) => Some(&mut l.blocks),
            Self::Empty => None,
        }
    }

    /// The recruitment log of the model's blocks: a run's recruiter, or the log opened with a
    /// checkpoint.
    pub(super) fn recruiter_mut(&mut self) -> Option<&mut crate::train::recruit::Recruiter> {
        match self {
            Self::Run(s) => s.recruiter.as_mut().or(s.earlier_log.as_mut()),
            Self::Checkpoint(l) => l.recruiter.as_mut(),
            _ => None,
        }
    }

    /// The training run, when one is set up.
    pub(super) fn session(&self) -> Option<&Session> {
        match self {
            Self::Run(s) => Some(s),
            _ => None,
        }
    }

    /// The training run, to step.
    pub(super) fn session_mut(&mut self) -> Option<&mut Session> {
        match self {
            Self::Run(s) => Some(s),
            _ => None,
        }
    }

    /// The checkpoint, when one is open.
    pub(super) fn checkpoint(&self) -> Option<&Loaded> {
        match self {
            Self::Checkpoint(l) => Some(l),
            _ => None,
        }
    }

    /// The fine-tune, to step.
    pub(super) fn tune_mut(&mut self) -> Option<&mut Tune> {
        match self {
            Self::Tune(t) => Some(t),
            _ => None,
        }
    }

    /// Whether a run of either kind (training or fine-tuning) is set up.
    pub(super) fn steps(&self) -> bool {
        matches!(self, Self::Run(_) | Self::Tune(_))
    }

    /// The imported model, to rebuild its blocks.
    pub(super) fn imported_mut(&mut self) -> Option<&mut Imported> {
        match self {
            Self::Imported(i) => Some(i),
            _ => None,
        }
    }
}

/// A model opened for the Compare panel beside the current one: a checkpoint or a pretrained
/// model, with its blocks (a pretrained model's saved ones, else k-means).
pub(super) struct Compared {
    /// Where it was opened from.
    pub(super) path: PathBuf,
    model: OpenModel,
    blocks: BlockMap,
}

impl Compared {
    /// Open a checkpoint folder, a `.gguf` file or a Hugging Face folder.
    pub(super) fn open(path: &Path) -> anyhow::Result<Self> {
        let model = OpenModel::open(path)?;
        let blocks = model.saved_or_kmeans_blocks(DEFAULT_CLUSTERS)?;
        Ok(Self {
            path: path.to_path_buf(),
            model,
            blocks,
        })
    }

    /// The model, its blocks, its tokenizer and how many tokens of the text a capture takes.
    pub(super) fn parts(&self) -> (&dyn AttentionModel, &BlockMap, &dyn Tokenizer, usize) {
        let m = self.model.model();
        let limit = match self.model {
            OpenModel::Checkpoint { .. } => m.dims().max_len,
            OpenModel::Imported { .. } => m.dims().max_len.min(IMPORTED_CAPTURE_LIMIT),
        };
        (m, &self.blocks, self.model.tokenizer(), limit)
    }
}

/// Read a checkpoint directory with its tokenizer; also returns the λ_train it records.
pub(super) fn open_checkpoint(
    path: &Path,
    device: &Device,
) -> Result<(Loaded, Option<f64>), String> {
    let ck = load_checkpoint(path, device).map_err(|e| e.to_string())?;
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .map_err(|e| format!("{}: tokenizer in config.json: {e}", path.display()))?;
    let tokenizer = spec
        .build()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let lambda_train = ck
        .meta
        .training
        .get("lambda_train")
        .and_then(|v| v.as_f64());
    Ok((
        Loaded {
            model: ck.model,
            blocks: ck.blocks,
            tokenizer,
            meta: ck.meta,
            recruiter: None,
        },
        lambda_train,
    ))
}
