//! The UI's handle on a worker thread: spawn it, send commands, drain or wait for events, and
//! end it when the handle is dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use super::sink::{Busy, CancelFlag, Sink};
use super::Worker;
use crate::engine::protocol::{Command, Event};

/// The UI's handle on a worker thread.
pub struct WorkerHandle {
    commands: Sender<Command>,
    events: Receiver<Event>,
    progress: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
    busy: Busy,
    cancel: CancelFlag,
}

/// The long job the worker is doing, as a UI shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct JobStatus {
    /// What it is ("capturing 2,048 tokens: layer 12 of 30…").
    pub what: String,
    /// How long it has run.
    pub running: Duration,
    /// How far it is, 0..1, when it can tell.
    pub fraction: Option<f32>,
    /// Whether [`WorkerHandle::cancel`] stops it.
    pub cancellable: bool,
}

impl WorkerHandle {
    /// Spawn a worker thread named `localist-worker`. `repaint` is called after every event.
    pub fn spawn(repaint: Box<dyn Fn() + Send>) -> std::io::Result<Self> {
        let (cmd_tx, cmd_rx) = unbounded();
        let (ev_tx, ev_rx) = unbounded();
        let (pr_tx, pr_rx) = bounded(64);
        let busy: Busy = Arc::new(Mutex::new(Vec::new()));
        let shared = Arc::clone(&busy);
        let cancel: CancelFlag = Arc::default();
        let cancel_shared = Arc::clone(&cancel);
        let thread = std::thread::Builder::new()
            .name("localist-worker".into())
            .spawn(move || {
                let mut worker =
                    Worker::new(Sink::new(ev_tx, pr_tx, repaint, shared, cancel_shared));
                let outcome = catch_unwind(AssertUnwindSafe(|| worker.run(&cmd_rx)));
                if let Err(panic) = outcome {
                    let msg = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    worker.sink.fail(format!(
                        "the worker crashed ({msg}); start a new one to continue"
                    ));
                }
            })?;
        Ok(Self {
            commands: cmd_tx,
            events: ev_rx,
            progress: pr_rx,
            thread: Some(thread),
            busy,
            cancel,
        })
    }

    /// The long job the worker is doing now (e.g. "loading SmolLM2-135M-Instruct.Q4_1.gguf…"),
    /// or `None` when it waits for commands or trains (training has its own progress). Read
    /// it every frame: it is the worker's present, not a queued event.
    pub fn busy(&self) -> Option<String> {
        self.busy_for().map(|(what, _)| what)
    }

    /// The long job under way, as [`Self::busy`], and how long it has run so far (a UI may
    /// wait a moment before showing it, so a quick capture does not flicker).
    pub fn busy_for(&self) -> Option<(String, Duration)> {
        self.job().map(|j| (j.what, j.running))
    }

    /// The long job under way with how far it is and whether it can be cancelled.
    pub fn job(&self) -> Option<JobStatus> {
        let jobs = self.busy.lock().ok()?;
        if !self.is_alive() {
            return None;
        }
        jobs.last().map(|j| JobStatus {
            what: j.what.clone(),
            running: j.since.elapsed(),
            fraction: j.fraction,
            cancellable: j.cancellable,
        })
    }

    /// Ask the cancellable job under way (a long capture) to stop; it ends within one layer,
    /// says so, and the worker keeps what it had. Does nothing to other jobs.
    pub fn cancel(&self) {
        let cancellable = self
            .busy
            .lock()
            .ok()
            .and_then(|jobs| jobs.last().map(|j| j.cancellable))
            .unwrap_or(false);
        if cancellable {
            self.cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Queue a command (returns false when the worker has ended).
    pub fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).is_ok()
    }

    /// Every event waiting now, results first, then the latest progress messages; never blocks.
    pub fn drain(&self) -> Vec<Event> {
        let mut out: Vec<Event> = self.progress.try_iter().collect();
        out.extend(self.events.try_iter());
        out
    }

    /// Wait up to `timeout` for the next non-progress event (tests and headless use).
    pub fn wait_event(&self, timeout: Duration) -> Option<Event> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Wait up to `timeout` for the next progress event.
    pub fn wait_progress(&self, timeout: Duration) -> Option<Event> {
        self.progress.recv_timeout(timeout).ok()
    }

    /// True while the thread runs.
    pub fn is_alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
