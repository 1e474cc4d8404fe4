//! What the worker says about the model it holds and the run it drives: the model summary,
//! training progress and the live held-out metrics.

use std::path::PathBuf;

use crate::engine::anchors::AnchorReport;
use crate::engine::theory::TheoryPoint;
use crate::train::eval::EvalReport;
use crate::train::trainer::StepStats;

/// Where an imported model's blocks come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportedBlocks {
    /// k-means over the embedding rows with k clusters.
    KMeans(usize),
    /// A lexicon file (`word<TAB>block`).
    Lexicon(PathBuf),
}

/// Tokens of the current text an imported model captures at most (its context is far longer
/// than a heatmap can show).
pub const IMPORTED_CAPTURE_LIMIT: usize = 256;

/// Most k-means clusters, in the studio and on the command line.
pub use crate::hf::limits::MAX_CLUSTERS;

/// Clusters of the k-means blocks an imported model gets when none were saved for it.
pub const DEFAULT_CLUSTERS: usize = 16;

/// The k-means clusters a model of `vocab` words gets when the user chose none:
/// [`DEFAULT_CLUSTERS`], or one per word when the vocabulary is smaller.
pub fn default_clusters(vocab: usize) -> usize {
    DEFAULT_CLUSTERS.min(vocab).max(1)
}

/// How a [`ModelSummary`] warning about a recruitment log that was not read ends (the
/// Recruitment tab repeats such warnings where the log would be).
pub const WITHOUT_ITS_LOG: &str = "; the model opened, without its recruitment log";

/// A summary of the loaded model for display.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSummary {
    /// Where it came from.
    pub source: String,
    /// Preset name.
    pub preset: String,
    /// Layers, heads, width, positions.
    pub shape: (usize, usize, usize, usize),
    /// Trainable scalars.
    pub parameters: usize,
    /// λ_train the weights were trained under, when known.
    pub lambda_train: Option<f64>,
    /// Block names.
    pub blocks: Vec<String>,
    /// A sentence from the model's own training corpus, when it can be regenerated (the
    /// synthetic corpus), so a newcomer sees in-vocabulary text.
    pub sample_text: Option<String>,
    /// Vocabulary tokens in each block (empty for positional windows).
    pub block_sizes: Vec<usize>,
    /// Anchor tokens measured on the training text, when the checkpoint has them.
    pub anchors: Option<AnchorReport>,
    /// |cos| between the anchor keys of layer 0, head 0 (K × K).
    pub anchor_coherence: Vec<Vec<f64>>,
    /// The Welch bound on the largest |cos| between K unit vectors in d_h dimensions, for the
    /// anchor keys above (0 when there are none).
    pub anchor_welch_bound: f64,
    /// The checkpoint directory and its SHA-256
    /// ([`checkpoint_sha256`](crate::model::checkpoint::checkpoint_sha256)), when the model was
    /// loaded from one (a fresh training run has none until it is saved).
    pub checkpoint: Option<(PathBuf, String)>,
    /// The training corpus: its file (when it is one) and SHA-256, when recorded.
    pub corpus: Option<(Option<PathBuf>, String)>,
    /// For a pretrained model opened from a `.gguf` file or a Hugging Face folder: what it is
    /// (e.g. "LLaMA-family decoder") and where its blocks come from.
    pub imported: Option<(String, String)>,
    /// Whether it predicts next tokens (false for an encoder).
    pub generates: bool,
    /// Whether it can be fine-tuned towards its blocks (an imported decoder: LLaMA family or
    /// GPT-2).
    pub finetunes: bool,
    /// Its identity in [`crate::engine::protocol::MeasuredOn::model`]: its SHA-256, or the
    /// name of an unsaved training run.
    pub model_id: String,
    /// What the user should know about it that is not an error: e.g. a training corpus of
    /// which 5–50% of the tokens are outside the tokenizer's vocabulary (more is refused).
    pub warnings: Vec<String>,
}

/// Held-out metrics measured while training runs (about once a second), for the live curves.
#[derive(Debug, Clone, PartialEq)]
pub struct LivePoint {
    /// Steps done.
    pub step: usize,
    /// Held-out metrics at λ_inf = 0 on a few windows.
    pub eval: EvalReport,
    /// The current text under the current dial against the derived bounds.
    pub theory: Option<TheoryPoint>,
}

/// Training progress (may be dropped when the UI falls behind).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The step's statistics.
    pub stats: StepStats,
    /// Steps planned in total.
    pub total_steps: usize,
    /// Tokens per second since the run (re)started.
    pub tokens_per_s: f64,
    /// Estimated seconds to the end.
    pub eta_s: f64,
}
