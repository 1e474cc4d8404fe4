//! Whole jobs that the command line (and the studio) start: corpora with their block maps,
//! training runs with checkpoints, and the λ sweep.

pub mod anchors;
pub mod audit;
pub mod codelength;
pub mod compare;
pub mod corpus;
pub mod export;
pub mod generate;
pub mod specialists;
pub mod theory;
pub mod threshold;
pub mod train_job;
pub mod worker;

// The studio depends on `engine` only: the value types it displays are re-exported here.
pub use crate::analysis::dial::{DialMode, DialParams, LayerSchedule};
pub use crate::model::capture::{Capture, HeadCapture};
pub use crate::model::dial::DialSetting;
pub use crate::train::eval::EvalReport;
