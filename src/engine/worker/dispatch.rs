//! The command loop: wait for a command (or, while training runs, look for one between
//! steps) and hand it to the job that answers it.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::{RunState, Worker};
use crate::engine::protocol::{Command, Event};

/// A dial change this soon after the previous one is part of a drag: its capture is a bf16
/// preview where the model offers one ([`Worker::recapture`]).
const DRAG: Duration = Duration::from_millis(500);

/// After a preview, the exact capture starts once no command has come for this long (the
/// studio sends the next dial of a drag within a frame or two of drawing the preview).
const SETTLE: Duration = Duration::from_millis(40);

impl Worker {
    /// Serve commands until `Shutdown` or until the handle is gone.
    pub(super) fn run(&mut self, rx: &Receiver<Command>) {
        loop {
            let cmd = if self.exact_pending {
                match rx.recv_timeout(SETTLE) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else if self.state == RunState::Running {
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => return,
                }
            } else {
                match rx.recv() {
                    Ok(c) => Some(c),
                    Err(_) => return,
                }
            };
            match cmd {
                Some(Command::Shutdown) => return,
                Some(c) => self.handle(c),
                // A preview is on screen and nothing waits: its exact capture.
                None if self.exact_pending => {
                    let _busy = self.sink.busy("capturing (exact)…".into());
                    self.recapture();
                }
                None => self.step(),
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        let _busy = busy_label(&cmd).map(|what| self.sink.busy(what));
        // New run and Fine-tune send a set-up and then Train: when the set-up was refused, that
        // Train must not start (or resume) the model that was there before, nor hide the
        // refusal under "no training run is set up".
        let failures = self.sink.failures();
        let setup = matches!(cmd, Command::NewRun(_) | Command::Finetune(_));
        let after_refusal = std::mem::take(&mut self.setup_refused);
        match cmd {
            Command::Load(path) => self.load(path),
            Command::NewRun(job) => self.new_run(*job),
            Command::Finetune(job) => self.new_finetune(&job),
            Command::Train if after_refusal => {}
            Command::Train | Command::Resume => self.start_training(),
            Command::Pause => {
                if self.state == RunState::Running {
                    self.state = RunState::Paused;
                    self.sink.emit(Event::Paused);
                }
            }
            Command::Step => {
                if self.slot.steps() {
                    self.step();
                }
            }
            Command::BackToBest => self.back_to_best(false),
            Command::BestWeightsUnderTheseBlocks => self.back_to_best(true),
            Command::Stop => {
                if self.state != RunState::Idle {
                    self.state = RunState::Idle;
                    self.finish();
                }
            }
            Command::SetDial(d) => {
                self.dial = d;
                // In a drag the views follow the dial by previews; the exact capture comes
                // when it stops. A single change is captured exactly at once.
                self.preview_next = self.last_dial.is_some_and(|t| t.elapsed() < DRAG);
                self.last_dial = Some(Instant::now());
                self.recapture();
                self.preview_next = false;
            }
            Command::Capture(text) => {
                self.text = crate::files::without_bom(&text).to_string();
                self.recapture();
                self.threshold();
            }
            Command::Save(path) => self.save(path),
            Command::TheoryCurve(lambdas) => self.theory(&lambdas),
            Command::Compare(sides) => self.compare(&sides),
            Command::SetRules { text, off } => self.set_rules(text, off),
            Command::SetRecruitment(on) => self.set_recruitment(on),
            Command::RenameBlock(b, name) => self.rename_block(b, name),
            Command::SetImportedBlocks(src) => self.set_imported_blocks(&src),
            Command::Generate(n) => self.generate(n),
            Command::OpenPool(dir) => self.open_pool(&dir),
            Command::GrowPool(g) => self.grow_pool(*g),
            Command::AuditTestSet(set) => self.audit_test_set(set),
            Command::Shutdown => {}
            Command::DebugPanic => panic!("debug panic requested"),
        }
        self.setup_refused = setup && self.sink.failures() > failures;
    }

    /// Start or continue the current run.
    fn start_training(&mut self) {
        if self.slot.steps() {
            self.state = RunState::Running;
            self.run_started = Some((Instant::now(), 0));
        } else {
            self.sink.fail("no training run is set up");
        }
    }
}

/// What the status bar says while a long command runs; `None` for quick ones (and training,
/// which reports its own progress).
fn busy_label(cmd: &Command) -> Option<String> {
    let what = match cmd {
        Command::Load(path) => {
            let name = path.file_name().unwrap_or(path.as_os_str());
            format!("loading {}…", name.to_string_lossy())
        }
        Command::NewRun(_) => "setting up the run…".into(),
        Command::Finetune(_) => "setting up the fine-tune (held-out metrics first)…".into(),
        Command::SetDial(_) | Command::Capture(_) => "capturing…".into(),
        Command::TheoryCurve(_) => "computing the theory curve…".into(),
        Command::Compare(_) => "comparing…".into(),
        Command::SetRules { .. } => "checking the rules…".into(),
        Command::SetImportedBlocks(_) => "rebuilding the blocks…".into(),
        Command::Generate(_) => "generating…".into(),
        Command::Save(_) => "saving…".into(),
        Command::OpenPool(_) => "reading the pool…".into(),
        Command::GrowPool(_) => "growing the pool: reading and coding the documents…".into(),
        Command::AuditTestSet(_) => "auditing the rules over the test set…".into(),
        _ => return None,
    };
    Some(what)
}
