//! Where the worker's events go: the result channel (nothing dropped), the progress channel
//! (lossy, bounded) and the UI's repaint callback, called after every send. Every event the
//! worker sends goes through here.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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
    /// Set by the handle when the user cancels.
    cancel: CancelFlag,
    /// Failures sent so far (a command can tell whether it failed).
    failures: AtomicUsize,
}

/// One long job under way: what it is, since when, how far it is (0..1, when it can tell) and
/// whether the user may cancel it.
#[derive(Clone, Debug)]
pub(super) struct BusyJob {
    pub(super) what: String,
    pub(super) since: Instant,
    pub(super) fraction: Option<f32>,
    pub(super) cancellable: bool,
}

/// The long jobs under way, shared with the handle.
pub(super) type Busy = Arc<Mutex<Vec<BusyJob>>>;

/// The user's request to cancel the cancellable job under way, shared with the handle.
pub(super) type CancelFlag = Arc<AtomicBool>;

/// Marks the innermost job as cancellable until it is dropped, then gives it back its label.
pub(super) struct CancelGuard(Busy, Option<String>);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        set_innermost(&self.0, false, self.1.take());
    }
}

/// Mark the innermost job cancellable (or not, clearing its progress and setting its label
/// back to `label`); returns its label.
fn set_innermost(busy: &Busy, cancellable: bool, label: Option<String>) -> Option<String> {
    let mut jobs = busy.lock().ok()?;
    let job = jobs.last_mut()?;
    job.cancellable = cancellable;
    if !cancellable {
        job.fraction = None;
    }
    if let Some(l) = label {
        job.what = l;
    }
    Some(job.what.clone())
}

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
        cancel: CancelFlag,
    ) -> Self {
        Self {
            events,
            progress,
            repaint,
            busy,
            cancel,
            failures: AtomicUsize::new(0),
        }
    }

    /// Failures sent so far.
    pub(super) fn failures(&self) -> usize {
        self.failures.load(Ordering::Relaxed)
    }

    /// Say that a long job (`what`, e.g. "loading SmolLM2…") is under way until the guard is
    /// dropped, and ask for a repaint so the UI shows it at once.
    pub(super) fn busy(&self, what: String) -> BusyGuard {
        if let Ok(mut jobs) = self.busy.lock() {
            jobs.push(BusyJob {
                what,
                since: Instant::now(),
                fraction: None,
                cancellable: false,
            });
        }
        (self.repaint)();
        BusyGuard(Arc::clone(&self.busy))
    }

    /// The innermost job can be cancelled until the guard is dropped (an earlier cancel is
    /// forgotten); then it is no longer cancellable and its progress is cleared, so a job that
    /// goes on after the cancellable part is not offered for cancelling.
    pub(super) fn cancellable(&self) -> CancelGuard {
        self.cancel.store(false, Ordering::SeqCst);
        let what = set_innermost(&self.busy, true, None);
        (self.repaint)();
        CancelGuard(Arc::clone(&self.busy), what)
    }

    /// Say how far the innermost job is (`what` replaces its label); returns false when the
    /// user has asked to cancel it.
    pub(super) fn job_progress(&self, what: String, fraction: f32) -> bool {
        if let Ok(mut jobs) = self.busy.lock() {
            if let Some(job) = jobs.last_mut() {
                job.what = what;
                job.fraction = Some(fraction.clamp(0.0, 1.0));
            }
        }
        (self.repaint)();
        !self.cancel.load(Ordering::SeqCst)
    }

    /// Say what the innermost job is doing now, when it cannot say how far it is (`what`
    /// replaces its label); returns false when the user has asked to cancel it.
    pub(super) fn job_status(&self, what: String) -> bool {
        if let Ok(mut jobs) = self.busy.lock() {
            if let Some(job) = jobs.last_mut() {
                job.what = what;
            }
        }
        (self.repaint)();
        !self.cancel.load(Ordering::SeqCst)
    }

    /// Whether the user has asked to cancel the cancellable job under way.
    pub(super) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Send a result, a state change or an error (never dropped), then ask for a repaint.
    pub(super) fn emit(&self, ev: Event) {
        let _ = self.events.send(ev);
        (self.repaint)();
    }

    /// Send a failure message.
    pub(super) fn fail(&self, msg: impl Into<String>) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.emit(Event::Failed(crate::files::shorten_message(&msg.into())));
    }

    /// Send a progress message, then ask for a repaint.
    pub(super) fn emit_progress(&self, ev: Event) {
        // Lossy by design: a full channel means the UI has not drawn the last 64 steps yet.
        let _ = self.progress.try_send(ev);
        (self.repaint)();
    }
}
