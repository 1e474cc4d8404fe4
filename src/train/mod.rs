//! Training: the step-at-a-time trainer, AdamW, the locality penalty, evaluation, code
//! lengths, and recruitment of blocks (SPEC §9) and of specialists (SPEC §10).

pub mod codelength;
pub mod dataset;
pub mod eval;
pub mod finetune;
pub mod group_lasso;
pub mod optimizer;
pub mod penalty;
pub mod recruit;
pub mod rule_penalty;
pub mod specialists;
pub mod trainer;

pub use dataset::{Sampling, TokenStream};
pub use eval::{evaluate, EvalReport};
pub use trainer::{StepStats, TrainConfig, TrainError, Trainer};
