//! The app's side of the worker channel: sending the commands panels queued, draining events
//! at the start of a frame, and the short wait that lets a dial change land in its own frame.

use crate::engine::worker::{Command, Event};
use crate::studio::panels::specialists::PoolView;
use crate::studio::state::WorkerState;

use super::StudioApp;

/// Longest the UI waits for the capture of a dial change, so that it lands in the same frame.
const DIAL_WAIT: std::time::Duration = std::time::Duration::from_millis(30);

/// Longest the UI waits for a pool of specialists it asked for, so that an idle worker's answer
/// shows in the next frame (reading a manifest takes milliseconds). A busy worker answers later,
/// and the answer is taken in a later frame: the UI never waits longer than this.
const POOL_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

impl StudioApp {
    /// Send queued commands; true when a dial or rules change was among them.
    pub(super) fn flush_commands(&mut self) -> bool {
        let Some(w) = &self.worker else { return false };
        let mut dial = false;
        for cmd in self.state.outbox.drain(..) {
            dial |= matches!(cmd, Command::SetDial(_) | Command::SetRules { .. });
            w.send(cmd);
        }
        dial
    }

    /// Apply events until a new capture arrives or `DIAL_WAIT` has passed.
    pub(super) fn await_snapshot(&mut self) {
        let Some(w) = &self.worker else { return };
        let deadline = std::time::Instant::now() + DIAL_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(ev) = w.wait_event(left) else { break };
            let snapshot = matches!(ev, Event::Snapshot(..));
            self.state.apply(ev);
            if snapshot {
                break;
            }
        }
    }

    /// Ask the worker to read a pool of specialists, and apply events until it has answered
    /// or `POOL_WAIT` has passed (a later answer is taken in a later frame).
    pub(super) fn open_pool(&mut self, dir: std::path::PathBuf) {
        self.state.send(Command::OpenPool(dir));
        if self.flush_commands() {
            self.await_snapshot();
        }
        let Some(w) = &self.worker else { return };
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(ev) = w.wait_event(left) else { break };
            let answered = matches!(ev, Event::Pool(_));
            self.state.apply(ev);
            if answered {
                break;
            }
        }
        self.take_pool();
    }

    /// Show a pool the worker has read.
    fn take_pool(&mut self) {
        if let Some(pool) = self.state.pool_opened.take() {
            self.pool = Some(PoolView::from(pool));
        }
    }

    /// Apply waiting worker events (called at the start of every frame; public for tests).
    pub fn pump(&mut self) {
        self.drain_shots();
        if let Some(w) = &self.worker {
            for ev in w.drain() {
                self.state.apply(ev);
            }
            if !w.is_alive() {
                self.state.worker = WorkerState::Crashed;
            }
        }
        self.take_pool();
        self.poll_export();
        self.poll_dialog();
    }
}
