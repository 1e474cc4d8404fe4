//! Training: the step-at-a-time trainer, AdamW, the locality penalty and evaluation.

pub mod dataset;
pub mod eval;
pub mod optimizer;
pub mod penalty;
pub mod recruit;
pub mod trainer;

pub use dataset::{Sampling, TokenStream};
pub use eval::{evaluate, EvalReport};
pub use trainer::{StepStats, TrainConfig, TrainError, Trainer};
