//! Exports: asking where to write a file a panel prepared (on a thread, atomically), cropped
//! screenshots of plots and heatmaps as drawn, and the outcome shown in the status bar.

use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::{Receiver, TryRecvError};

use super::dialogs::{BrowserFor, WriteFn};
use super::StudioApp;
use crate::studio::file_browser::{native_dialogs, FileBrowser, Pick, NATIVE_MIN};

/// A cropped screenshot: suggested file name and PNG bytes (or why it failed).
pub(super) type Shot = (String, Result<Vec<u8>, String>);

/// An export's outcome: the path written, why it failed, or (no native dialog answered) the
/// write, to be given a path by the built-in browser.
pub(super) enum ExportAnswer {
    /// Written here, or why not.
    Done(Result<PathBuf, String>),
    /// No native dialog: choose with the built-in browser.
    NoDialog(String, String, WriteFn),
}

/// Where an export's outcome comes back.
pub(super) type ExportOutcome = Receiver<ExportAnswer>;

impl StudioApp {
    /// Ask where to write a pending export, on a thread, and write it there atomically.
    pub(super) fn start_export(&mut self) {
        let Some((name, bytes)) = self.state.pending_export.take() else {
            return;
        };
        self.save_dialog("Export".into(), name, move |path| {
            crate::engine::export::write_atomic(path, &bytes)
        });
    }

    /// A save dialog on its own thread; `write` runs there on the chosen path, and its outcome
    /// comes back through `self.export` (shown in the status bar).
    pub(super) fn save_dialog(
        &mut self,
        title: String,
        file_name: String,
        write: impl FnOnce(&std::path::Path) -> anyhow::Result<()> + Send + 'static,
    ) {
        let write: WriteFn = Box::new(write);
        if !native_dialogs() {
            self.save_browser(&title, &file_name, write);
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("save-dialog".into())
            .spawn(move || {
                let t0 = Instant::now();
                let picked = rfd::FileDialog::new()
                    .set_title(&title)
                    .set_file_name(&file_name)
                    .save_file();
                match picked {
                    Some(path) => {
                        let result = write(&path).map(|()| path).map_err(|e| format!("{e:#}"));
                        let _ = tx.send(ExportAnswer::Done(result));
                    }
                    None if t0.elapsed() < NATIVE_MIN => {
                        let _ = tx.send(ExportAnswer::NoDialog(title, file_name, write));
                    }
                    None => {}
                }
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.export = Some(rx),
            Err(e) => self.state.error = Some(format!("could not open a file dialog: {e}")),
        }
    }

    /// The built-in browser for a save: `write` runs on the path chosen.
    fn save_browser(&mut self, title: &str, file_name: &str, write: WriteFn) {
        let start = self.last_export_dir.clone();
        let b = FileBrowser::new(title, Pick::Save, &[], start.as_deref(), file_name);
        self.browser = Some((b, BrowserFor::Write(write)));
    }

    /// Write an export chosen in the built-in browser, on a thread; the outcome comes back
    /// through `self.export` as a native dialog's does.
    pub(super) fn write_on_thread(&mut self, path: PathBuf, write: WriteFn) {
        self.last_export_dir = path.parent().map(std::path::Path::to_path_buf);
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("export-write".into())
            .spawn(move || {
                let result = write(&path).map(|()| path).map_err(|e| format!("{e:#}"));
                let _ = tx.send(ExportAnswer::Done(result));
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.export = Some(rx),
            Err(e) => self.state.error = Some(format!("could not write the export: {e}")),
        }
    }

    /// Take a screenshot of the next frame and crop it to the requested region, as a PNG.
    pub(super) fn start_screenshot(&mut self) {
        let Some((name, rect)) = self.state.screenshot_request.take() else {
            return;
        };
        let ppp = self.ctx.pixels_per_point();
        let tx = self.shots.0.clone();
        let ctx = self.ctx.clone();
        self.ctx.request_screenshot(move |img| {
            let crop = img.region(&rect, Some(ppp));
            let rgba: Vec<u8> = crop
                .pixels
                .iter()
                .flat_map(|c| c.to_srgba_unmultiplied())
                .collect();
            let png = crate::engine::figures::rgba_png(crop.width(), crop.height(), &rgba)
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send((name, png));
            ctx.request_repaint();
        });
        self.state.info = Some("taking a screenshot of the plot…".into());
    }

    /// Turn screenshots that have arrived into pending exports.
    pub(super) fn drain_shots(&mut self) {
        while let Ok((name, png)) = self.shots.1.try_recv() {
            match png {
                Ok(bytes) => self.state.pending_export = Some((name, bytes)),
                Err(e) => self.state.error = Some(format!("export failed: {e}")),
            }
        }
    }

    /// Show the outcome of the export under way, when it has come.
    pub(super) fn poll_export(&mut self) {
        let Some(rx) = &self.export else {
            return;
        };
        match rx.try_recv() {
            Ok(ExportAnswer::Done(Ok(path))) => {
                self.state.info = Some(format!("exported {}", path.display()));
                self.state.error = None;
                self.export = None;
            }
            Ok(ExportAnswer::Done(Err(e))) => {
                self.state.error = Some(format!("export failed: {e}"));
                self.export = None;
            }
            Ok(ExportAnswer::NoDialog(title, name, write)) => {
                self.export = None;
                self.save_browser(&title, &name, write);
            }
            Err(TryRecvError::Disconnected) => self.export = None,
            Err(TryRecvError::Empty) => {}
        }
    }
}
