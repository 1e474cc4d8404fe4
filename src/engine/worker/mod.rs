//! The worker: a named background thread that owns the model, the trainer and the data.
//!
//! A UI (the studio, or a test) sends [`Command`]s and drains [`Event`]s; it never touches
//! candle and never blocks. Events travel on two channels: progress on a bounded one, where a
//! message is dropped when the UI falls behind, and everything else (snapshots, results,
//! errors) on an unbounded one, where nothing is ever dropped. After each send the worker calls
//! the `repaint` callback the UI gave it (`egui::Context::request_repaint` in the studio).
//!
//! Training runs one optimizer step at a time and looks at the command queue between steps,
//! so pause and stop take effect within one step. A panic inside the worker is caught and
//! reported as [`Event::Failed`]; the handle then reports the worker dead, and a new one can
//! be spawned without restarting the app.
//!
//! The files of this folder each hold one concern: the thread handle (`handle.rs`), the event
//! sink (`sink.rs`), the model the worker holds (`slot.rs`), what results are measured on
//! (`measured.rs`), the command loop (`dispatch.rs`),
//! and one file per group of jobs: models, blocks, training, inspection, rules,
//! recruitment and pools of specialists.

mod blocks;
mod dispatch;
mod finetune;
mod handle;
mod inspection;
mod measured;
mod models;
mod pool;
mod recruitment;
mod rules;
mod sink;
mod slot;
mod test_set;
mod training;

use std::time::Instant;

use candle_core::Device;

use crate::model::dial::DialSetting;
use crate::rules::check::ResolvedRule;

pub use self::handle::{JobStatus, WorkerHandle};
pub use crate::engine::protocol::{
    Command, Event, ImportedBlocks, LivePoint, ModelSummary, Progress, DEFAULT_CLUSTERS,
    IMPORTED_CAPTURE_LIMIT,
};

use self::sink::Sink;
use self::slot::{Compared, ModelSlot};

/// Whether the current run is stepping.
#[derive(PartialEq)]
enum RunState {
    Idle,
    Running,
    Paused,
}

/// The rule file in force, as the worker holds it.
#[derive(Default)]
struct Rules {
    /// The rule file's text.
    text: String,
    /// The ids switched off.
    off: Vec<String>,
    /// The rules resolved against the current model.
    resolved: Vec<ResolvedRule>,
}

/// Everything the worker thread owns.
struct Worker {
    /// Where events go; a field of its own, so it can be used while the model is borrowed.
    sink: Sink,
    device: Device,
    /// The model the panels show.
    slot: ModelSlot,
    state: RunState,
    dial: DialSetting,
    text: String,
    /// When the run (re)started and the tokens trained since.
    run_started: Option<(Instant, usize)>,
    /// When live metrics were last measured.
    last_live: Option<Instant>,
    /// The models of a comparison, kept while they are compared.
    compare_models: Vec<Compared>,
    rules: Rules,
    /// The identity of the model held (see [`crate::engine::protocol::MeasuredOn::model`]).
    model_id: String,
    /// Training runs set up so far (an unsaved run is named by its number).
    runs: usize,
    /// The last command set up a run or a fine-tune and was refused (the Train that follows
    /// it is dropped).
    setup_refused: bool,
    /// The next capture follows a dial change: a pretrained model that offers a bf16 preview
    /// sends it first ([`Worker::recapture`]).
    preview_next: bool,
    /// A preview was sent: the exact capture is due as soon as no command waits.
    exact_pending: bool,
    /// When the last dial change came (a drag sends them a frame apart).
    last_dial: Option<Instant>,
}

impl Worker {
    /// A worker holding no model, sending into `sink`.
    fn new(sink: Sink) -> Self {
        Self {
            sink,
            device: crate::engine::train_job::default_device(),
            slot: ModelSlot::Empty,
            state: RunState::Idle,
            dial: DialSetting::default(),
            text: String::new(),
            run_started: None,
            last_live: None,
            compare_models: Vec::new(),
            rules: Rules::default(),
            model_id: String::new(),
            runs: 0,
            setup_refused: false,
            preview_next: false,
            exact_pending: false,
            last_dial: None,
        }
    }
}
