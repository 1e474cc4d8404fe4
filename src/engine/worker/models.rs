//! Model jobs: open a checkpoint or an imported pretrained model, describe it for the panels,
//! save it, and read a pool of specialists for display. Editing a model's blocks is in
//! `blocks.rs`.

use std::path::{Path, PathBuf};

use super::slot::{open_checkpoint, Imported, Loaded, ModelSlot};
use super::{RunState, Worker};
use crate::analysis::anchors::welch_bound;
use crate::engine::anchors::{anchor_coherence, checkpoint_anchors};
use crate::engine::corpus::{recorded_corpus, sample_text};
use crate::engine::protocol::{
    default_clusters, Event, ModelSummary, RecruitView, WITHOUT_ITS_LOG,
};
use crate::engine::train_checks::{read_recruitment_of, write_recruitment};
use crate::engine::views::read_pool;
use crate::hf::{HfTokenizer, ImportedModel};
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{checkpoint_sha256, save_checkpoint, CheckpointMeta};
use crate::model::transformer::LocalistModel;

impl Worker {
    /// Open a checkpoint directory, or an imported model when the path looks like one.
    pub(super) fn load(&mut self, path: PathBuf) {
        if ImportedModel::looks_imported(&path) {
            self.load_imported(path);
            return;
        }
        match open_checkpoint(&path, &self.device) {
            Ok((loaded, lambda_train)) => self.opened_checkpoint(&path, loaded, lambda_train),
            Err(e) => self.sink.fail(format!(
                "could not open {}: {e}; the current model is kept",
                path.display()
            )),
        }
    }

    /// Make an opened checkpoint the current model and tell the UI: its summary, its
    /// recruitment log when it has one, then the rules, a capture and λ*.
    fn opened_checkpoint(&mut self, path: &Path, mut loaded: Loaded, lambda_train: Option<f64>) {
        let training = &loaded.meta.training;
        let mut summary = own_summary(
            &loaded.model,
            &loaded.blocks,
            &path.display().to_string(),
            lambda_train,
        );
        summary.sample_text = sample_text(training);
        summary.anchors = checkpoint_anchors(training, &loaded.meta.tokenizer, &loaded.blocks);
        summary.checkpoint = checkpoint_sha256(path)
            .ok()
            .map(|h| (path.to_path_buf(), h));
        summary.corpus = recorded_corpus(training);
        let sha = summary.checkpoint.as_ref().map(|(_, h)| h.as_str());
        summary.model_id = self.new_model_id(sha, format!("checkpoint {}", path.display()));
        summary
            .warnings
            .extend(crate::engine::held_out::recorded_overfit(training));
        summary.warnings.extend(loaded.blocks.degenerate());
        let recruiter = match read_recruitment_of(path, &loaded.blocks) {
            Ok(rec) => rec,
            Err(e) => {
                summary.warnings.push(format!("{e:#}{WITHOUT_ITS_LOG}"));
                None
            }
        };
        self.state = RunState::Idle;
        let recruiter = recruiter.map(|rec| {
            let view = RecruitView::from(&rec);
            loaded.recruiter = Some(rec);
            view
        });
        self.slot = ModelSlot::Checkpoint(Box::new(loaded));
        self.sink.emit(Event::Loaded(Box::new(summary)));
        if let Some(view) = recruiter {
            self.sink.emit(Event::Recruitment(Box::new(view)));
        }
        self.refit_rules();
        self.recapture();
        self.threshold();
    }

    /// Open a `.gguf` file or a Hugging Face folder; its blocks are the ones saved beside it,
    /// else k-means over its embedding rows.
    fn load_imported(&mut self, path: PathBuf) {
        self.sink
            .emit(Event::Status(format!("opening {}…", path.display())));
        let model = match ImportedModel::open(&path, &self.device) {
            Ok(m) => m,
            Err(e) => {
                self.sink.fail(format!(
                    "could not open {}: {e:#}; the current model is kept",
                    path.display()
                ));
                return;
            }
        };
        let tokenizer = model.tokenizer();
        let Some(blocks) = self.imported_blocks(&path, &model, &tokenizer) else {
            return;
        };
        self.state = RunState::Idle;
        // The audit trail and sessions record what the model computes with.
        let hash = crate::hf::model_sha256(model.path())
            .ok()
            .map(|h| (model.path().to_path_buf(), h));
        let imported = Imported {
            model,
            blocks,
            tokenizer,
        };
        let mut summary = imported_summary(&imported.model, &imported.blocks);
        let sha = hash.as_ref().map(|(_, h)| h.clone());
        summary.model_id = self.new_model_id(sha.as_deref(), format!("model {}", path.display()));
        summary.checkpoint = hash;
        self.slot = ModelSlot::Imported(Box::new(imported));
        self.sink.emit(Event::Loaded(Box::new(summary)));
        self.refit_rules();
        self.recapture();
        // The bf16 weights of the previews a drag of the dial shows (SmolLM2: 212 MB, 0.4 s),
        // made now, after the first views, rather than on the drag's first frame.
        if let ModelSlot::Imported(i) = &self.slot {
            let _ = i.model.preview();
        }
    }

    /// The block map saved beside an imported model, else (saying why, when it was there but
    /// unusable) k-means over its embedding rows; `None` when k-means fails too.
    fn imported_blocks(
        &self,
        path: &Path,
        model: &ImportedModel,
        tokenizer: &HfTokenizer,
    ) -> Option<BlockMap> {
        match model.saved_blocks(tokenizer) {
            Ok(Some(b)) => return Some(b),
            Ok(None) => {}
            Err(e) => self.sink.fail(format!("{e:#}; rebuilt by k-means")),
        }
        let k = default_clusters(model.model().dims().vocab);
        self.sink.emit(Event::Status(format!(
            "{}: blocks by k-means (k = {k}) over the embedding rows…",
            path.display()
        )));
        match model.kmeans_blocks(tokenizer, k, 0) {
            Ok(b) => Some(b),
            Err(e) => {
                self.sink.fail(format!("k-means blocks failed: {e:#}"));
                None
            }
        }
    }

    /// Save the current model as a checkpoint directory (the dial in force is recorded).
    pub(super) fn save(&mut self, path: PathBuf) {
        let result = match &self.slot {
            ModelSlot::Imported(_) => {
                self.sink.fail(
                    "an imported model is not saved as a Localist checkpoint; its block names \
                     are saved beside it whenever you rename or rebuild them",
                );
                return;
            }
            ModelSlot::Run(s) => s.save(&path, None).map_err(|e| format!("{e:#}")),
            ModelSlot::Tune(t) => {
                // An adapter folder, named by its files' hash.
                let r = t
                    .run
                    .save(&path, t.last_eval.as_ref())
                    .map_err(|e| format!("{e:#}"));
                match r.and_then(|()| crate::hf::model_sha256(&path).map_err(|e| format!("{e:#}")))
                {
                    Ok(hash) => self.sink.emit(Event::Saved(path, hash)),
                    Err(e) => self.sink.fail(e),
                }
                return;
            }
            ModelSlot::Checkpoint(l) => {
                let meta = CheckpointMeta {
                    dial: self.dial.clone(),
                    ..l.meta.clone()
                };
                save_checkpoint(&path, &meta, &l.blocks, &l.model, None)
                    .map_err(|e| e.to_string())
                    .and_then(|()| match &l.recruiter {
                        // Saving replaces the folder: the log opened with it is written again.
                        Some(rec) => write_recruitment(&path, rec).map_err(|e| format!("{e:#}")),
                        None => Ok(()),
                    })
            }
            ModelSlot::Empty => Err("no model to save".to_string()),
        };
        match result.and_then(|()| checkpoint_sha256(&path).map_err(|e| e.to_string())) {
            Ok(hash) => self.sink.emit(Event::Saved(path, hash)),
            Err(e) => self.sink.fail(e),
        }
    }

    /// Read a pool of specialists for the Specialists panel (the current model stays).
    pub(super) fn open_pool(&mut self, dir: &Path) {
        let pool = read_pool(dir).map(Box::new).map_err(|e| format!("{e:#}"));
        self.sink.emit(Event::Pool(pool));
    }
}

/// The summary of one of our models (a checkpoint or a run's).
pub(super) fn own_summary(
    model: &LocalistModel,
    blocks: &BlockMap,
    source: &str,
    lambda_train: Option<f64>,
) -> ModelSummary {
    let c = &model.config;
    let coherence = anchor_coherence(model);
    let welch = match coherence.len() {
        0 => 0.0,
        k => welch_bound(k, c.d_model / c.num_heads.max(1)),
    };
    ModelSummary {
        source: source.to_string(),
        preset: c.preset.clone(),
        shape: (c.num_layers, c.num_heads, c.d_model, c.max_seq_len),
        parameters: model.params.num_scalars(),
        lambda_train,
        blocks: blocks.names.clone(),
        sample_text: None,
        block_sizes: blocks.block_sizes(),
        anchors: None,
        anchor_coherence: coherence,
        anchor_welch_bound: welch,
        checkpoint: None,
        corpus: None,
        imported: None,
        generates: true,
        finetunes: false,
        model_id: String::new(),
        warnings: Vec::new(),
    }
}

/// The summary of an imported model (its hash is added by the caller).
pub(super) fn imported_summary(model: &ImportedModel, blocks: &BlockMap) -> ModelSummary {
    let dims = model.model().dims();
    ModelSummary {
        source: model.path().display().to_string(),
        preset: model.arch_label().to_string(),
        shape: (dims.layers, dims.heads, model.d_model(), dims.max_len),
        parameters: model.parameters(),
        lambda_train: None,
        blocks: blocks.names.clone(),
        sample_text: None,
        block_sizes: blocks.block_sizes(),
        anchors: None,
        anchor_coherence: Vec::new(),
        anchor_welch_bound: 0.0,
        checkpoint: None,
        corpus: None,
        imported: Some((model.kind_label().to_string(), blocks.source.clone())),
        generates: dims.has_logits && dims.causal,
        finetunes: model.trainable().is_some(),
        model_id: String::new(),
        warnings: Vec::new(),
    }
}
