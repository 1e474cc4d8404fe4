//! Where the worker's events go: the result channel (nothing dropped), the progress channel
//! (lossy, bounded) and the UI's repaint callback, called after every send. Every event the
//! worker sends goes through here.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::engine::protocol::Event;

/// Both event channels and the repaint callback.
pub(super) struct Sink {
    events: Sender<Event>,
    progress: Sender<Event>,
    repaint: Box<dyn Fn() + Send>,
    /// The long jobs under way, outermost first (the handle reads the innermost).
    busy: Busy,
}

/// The long jobs under way, shared with the handle.
pub(super) type Busy = Arc<Mutex<Vec<(String, Instant)>>>;

/// Marks a long job as under way until it is dropped.
pub(super) struct BusyGuard(Busy);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.0.lock() {
            jobs.pop();
        }
    }
}

impl Sink {
    /// A sink sending results to `events` and progress to `progress`.
    pub(super) fn new(
        events: Sender<Event>,
        progress: Sender<Event>,
        repaint: Box<dyn Fn() + Send>,
        busy: Busy,
    ) -> Self {
        Self {
            events,
            progress,
            repaint,
            busy,
        }
    }

    /// Say that a long job (`what`, e.g. "loading SmolLM2…") is under way until the guard is
    /// dropped, and ask for a repaint so the UI shows it at once.
    pub(super) fn busy(&self, what: String) -> BusyGuard {
        if let Ok(mut jobs) = self.busy.lock() {
            jobs.push((what, Instant::now()));
        }
        (self.repaint)();
        BusyGuard(Arc::clone(&self.busy))
    }

    /// Send a result, a state change or an error (never dropped), then ask for a repaint.
    pub(super) fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
        (self.repaint)();
    }

    /// Send a failure message.
    pub(super) fn fail(&self, msg: impl Into<String>) {
        self.emit(Event::Failed(msg.into()));
    }

    /// Send a progress message, then ask for a repaint.
    pub(super) fn emit_progress(&self, ev: Event) {
        // Lossy by design: a full channel means the UI has not drawn the last 64 steps yet.
        let _ = self.progress.try_send(ev);
        (self.repaint)();
    }
}
