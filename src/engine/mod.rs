//! Whole jobs that the command line (and the studio) start: corpora with their block maps,
//! training runs with checkpoints, and the λ sweep.

pub mod anchors;
pub mod corpus;
pub mod train_job;
pub mod worker;
