//! Settings of the next training run, as the Training panel edits them and session files
//! and eframe storage keep them, and the training job they describe.

use crate::engine::corpus::{CorpusSource, TokenizerKind};
use crate::engine::protocol::{LrSchedule, RecruitConfig, TrainConfig};
use crate::engine::train_job::TrainJob;

/// The width of the positional windows that "windows until the first block" trains towards
/// (that of the default map of a run without recruitment).
pub const START_WINDOWS: usize = 8;

/// Settings of the next run (kept between frames).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RunSettings {
    /// Corpus path, or `synthetic[:N]`.
    pub corpus: String,
    /// Preset.
    pub preset: String,
    /// λ_train.
    pub lambda_train: f64,
    /// Learning rate.
    pub lr: f64,
    /// Warm the rate up over 5% of the steps, then decay it to a tenth on a cosine (else
    /// constant, as the PyTorch reference).
    pub lr_cosine: bool,
    /// Steps.
    pub steps: usize,
    /// Seed.
    pub seed: u64,
    /// Weight of the rule penalty: the rules in force are trained towards.
    pub mu_rule: f64,
    /// Weight μ_anc of the anchor loss.
    pub mu_anchor: f64,
    /// Grow blocks by recruitment from one block (SPEC §9).
    pub recruit: bool,
    /// Under recruitment, train every query towards positional windows of
    /// [`START_WINDOWS`] tokens until the first block is recruited
    /// (`train --recruit-start-windows 8`).
    pub windows_first: bool,
    /// Cut a text file into words fitted on it (letters of any script) instead of the 96
    /// characters; generated corpora always use words.
    pub word_tokens: bool,
    /// What a fine-tune of a pretrained decoder trains (`lora:8`, `qk`, ...).
    pub adapt: String,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            corpus: "assets/corpora/shakespeare_1mb.txt".into(),
            preset: "tiny".into(),
            lambda_train: 1.0,
            lr: 1e-3,
            lr_cosine: false,
            steps: 1000,
            seed: 0,
            mu_rule: 0.0,
            mu_anchor: 0.05,
            recruit: false,
            windows_first: false,
            word_tokens: false,
            adapt: "lora:8".into(),
        }
    }
}

impl RunSettings {
    /// The fine-tune of the held pretrained decoder these settings describe (windows of 128
    /// tokens, 2 per step: about 2.5 s a step for SmolLM2 on one CPU core).
    pub fn finetune_job(&self, from: &str) -> crate::engine::protocol::FinetuneJob {
        crate::engine::protocol::FinetuneJob {
            from: from.into(),
            corpus: self.corpus.clone().into(),
            blocks: "current".into(),
            adapt: self.adapt.clone(),
            lambda_train: self.lambda_train,
            eta: 1.0,
            lr: self.lr,
            steps: self.steps,
            seq_len: 128,
            batch_size: 2,
            seed: self.seed,
            rules: None,
            mu_rule: self.mu_rule,
            penalty: None,
            mu_anchor: self.mu_anchor,
        }
    }

    /// The job these settings describe.
    pub fn job(&self) -> anyhow::Result<TrainJob> {
        let corpus = match CorpusSource::parse(&self.corpus, self.seed)? {
            CorpusSource::File { path } => CorpusSource::File {
                path: std::path::absolute(crate::engine::corpus::asset_path(&path)).unwrap_or(path),
            },
            s => s,
        };
        let tokenizer = match corpus {
            CorpusSource::Synthetic { .. } | CorpusSource::Topics { .. } => TokenizerKind::Word,
            CorpusSource::File { .. } if self.word_tokens => TokenizerKind::Word,
            CorpusSource::File { .. } => TokenizerKind::Char,
        };
        let mut train = TrainConfig {
            lambda_train: self.lambda_train,
            steps: self.steps,
            seed: self.seed,
            mu_anchor: self.mu_anchor,
            mu_rule: self.mu_rule,
            schedule: if self.lr_cosine {
                LrSchedule::WARMUP_COSINE
            } else {
                LrSchedule::default()
            },
            ..TrainConfig::default()
        };
        train.optimizer.lr = self.lr;
        Ok(TrainJob {
            corpus,
            tokenizer,
            preset: self.preset.clone(),
            blocks: self
                .recruit
                .then_some(crate::engine::corpus::BlockSpec::Single),
            train,
            save_optimizer: true,
            recruit: self.recruit.then(|| RecruitConfig {
                warmup: 50,
                every: 50,
                // A small text (one that 100 steps read more than 10 times) gets rounds every
                // 25 steps, as on the command line without spacing flags.
                spacing_for_text: true,
                start_windows: if self.windows_first { START_WINDOWS } else { 0 },
                ..Default::default()
            }),
            ..TrainJob::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The studio's recruitment lets a small text space its rounds closer (the rule of
    /// `RecruitConfig::spaced_for`), from its own 50 and 50.
    #[test]
    fn studio_recruitment_spacing_follows_the_text() {
        let settings = RunSettings {
            recruit: true,
            ..RunSettings::default()
        };
        let job = settings.job().unwrap_or_else(|e| panic!("{e:#}"));
        let rc = job.recruit.unwrap_or_else(|| panic!("no recruitment"));
        assert_eq!((rc.warmup, rc.every, rc.spacing_for_text), (50, 50, true));
    }
}
