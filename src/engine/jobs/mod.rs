//! Whole jobs that both faces (the command line and the studio) start with plain inputs:
//! opening a model, evaluation over a list of dial settings, rule files and their measurement,
//! the audit report with its figures, captures, block maps, the synthetic corpus, the λ sweep,
//! specialist pools and training runs. The faces parse their input, call these and print or
//! draw the plain results; no face calls the layers below the engine.

pub mod audit;
pub mod blocks;
pub mod capture;
pub mod eval;
pub mod finetune;
pub mod model;
pub mod rules;
pub mod specialists;
pub mod sweep;
pub mod synth;
pub mod tables;
pub mod test_set;
pub mod train;

pub use crate::engine::specialists::PoolConfig;
