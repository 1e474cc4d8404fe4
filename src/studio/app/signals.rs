//! Termination signals: SIGTERM, SIGINT and SIGHUP close the studio as its close button does,
//! so the last autosave is written and the crash marker removed (a plain `kill` used to leave
//! the marker behind, and the next start offered a restore for a clean exit). A second signal
//! while the first is handled ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use super::StudioApp;

/// Start the thread that waits for the signals; the flag it sets is read every frame.
pub(super) fn watch(ctx: &egui::Context) -> Option<Arc<AtomicBool>> {
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]).ok()?;
    let flag = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&flag);
    let ctx = ctx.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if seen.swap(true, Ordering::SeqCst) {
                    std::process::exit(128 + sig);
                }
                ctx.request_repaint();
            }
        })
        .ok()?;
    Some(flag)
}

impl StudioApp {
    /// Close on SIGTERM, SIGINT or SIGHUP as the window's close button does.
    pub fn with_signals(mut self) -> Self {
        self.signals = watch(&self.ctx);
        self
    }

    /// Called every frame: a signal that arrived asks the window to close.
    pub(super) fn close_on_signal(&mut self, ctx: &egui::Context) {
        if self
            .signals
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst))
        {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}
