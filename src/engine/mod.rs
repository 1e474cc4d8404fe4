//! Whole jobs that the command line (and the studio) start: corpora with their block maps,
//! training runs with checkpoints, and the λ sweep.
//!
//! The faces reach the model through one front door: [`protocol`] (the commands, the events
//! and every plain type they carry), answered by the [`worker`] thread. [`views`] builds the
//! protocol's plain views from the working types.

pub mod anchors;
pub mod audit;
pub mod best;
pub mod codelength;
pub mod compare;
pub mod copies;
pub mod corpus;
pub mod coverage;
pub mod export;
pub mod figures;
pub mod generate;
pub mod head_summary;
pub mod held_out;
pub mod jobs;
pub mod out_lock;
pub mod outputs;
pub mod protocol;
pub mod specialists;
pub mod theory;
pub mod threads;
pub mod threshold;
pub mod train_checks;
pub mod train_job;
pub mod train_run;
pub mod views;
pub mod worker;

// The studio depends on `engine` only: the value types it displays are re-exported here (they
// are the protocol's; `engine::protocol` names every one).
pub use self::protocol::{
    Capture, DialMode, DialParams, DialSetting, EvalReport, HeadCapture, LayerSchedule,
};
// Where a capture's kept attention lies and which of its cells are masked (the views grey them).
pub use crate::model::capture_layout::AttentionLayout;
// The dial's ranges, which the command line's flags share, and the check of a saved dial.
pub use crate::model::checkpoint_read::check_dial;
// Whether a checkpoint holds an optimizer state (`blocks` drops it, `train --resume` reads it).
pub use crate::model::checkpoint::{has_optimizer_state, OPTIMIZER_FILE};
pub use crate::model::dial::{MAX_GAMMA, MAX_TAU, MIN_TAU};
// Plain configuration and report types the faces construct or print.
pub use crate::data::synthetic::SyntheticSpec;
pub use crate::files;
pub use crate::train::dataset::Sampling;
pub use crate::train::optimizer::AdamWConfig;
pub use crate::train::recruit::RecruitConfig;
pub use crate::train::trainer::{LrSchedule, TrainConfig};

/// The compute device: CUDA when built with `--features cuda` and a GPU is present, else CPU.
pub fn default_device() -> candle_core::Device {
    #[cfg(feature = "cuda")]
    {
        if let Ok(d) = candle_core::Device::new_cuda(0) {
            return d;
        }
    }
    candle_core::Device::Cpu
}
