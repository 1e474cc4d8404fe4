//! File dialogs: what each is for, opening one on its own thread (rfd blocks), and acting on
//! the path it returns.

use std::path::PathBuf;
use std::time::Instant;

use crossbeam_channel::TryRecvError;

use crate::studio::file_browser::{native_dialogs, FileBrowser, Outcome, Pick, NATIVE_MIN};

use crate::engine::protocol::TestSet;
use crate::engine::worker::{Command, ImportedBlocks};
use crate::studio::session::SESSION_EXTENSION;
use crate::studio::state::FileRequest;

use super::StudioApp;

/// What a pending file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DialogKind {
    Open,
    OpenModelFile,
    OpenModelFolder,
    Lexicon,
    Sentences,
    CompareFolder(usize),
    CompareFile(usize),
    Save,
    OpenSession,
    SaveSession,
    OpenPool,
}

impl From<FileRequest> for DialogKind {
    fn from(req: FileRequest) -> Self {
        match req {
            FileRequest::ModelFile => Self::OpenModelFile,
            FileRequest::ModelFolder => Self::OpenModelFolder,
            FileRequest::Lexicon => Self::Lexicon,
            FileRequest::Sentences => Self::Sentences,
            FileRequest::CompareFolder(k) => Self::CompareFolder(k),
            FileRequest::CompareFile(k) => Self::CompareFile(k),
        }
    }
}

/// A native dialog's answer.
pub(super) enum DialogAnswer {
    /// The user chose this path.
    Picked(PathBuf),
    /// The user cancelled.
    Cancelled,
    /// The dialog answered before anyone could have seen it: there is no native dialog.
    NoDialog,
}

/// A function that writes an export to the path chosen.
pub(super) type WriteFn = Box<dyn FnOnce(&std::path::Path) -> anyhow::Result<()> + Send>;

/// What the built-in browser's choice is for.
pub(super) enum BrowserFor {
    /// The same as a native dialog of this kind.
    Dialog(DialogKind),
    /// Writing an export there.
    Write(WriteFn),
}

/// Show the dialog for `kind` and wait for the user's choice (`None`: cancelled).
fn pick(kind: DialogKind) -> Option<PathBuf> {
    let dialog = rfd::FileDialog::new();
    let session = |d: rfd::FileDialog| {
        d.add_filter("Localist session", &["json"])
            .add_filter("all files", &["*"])
    };
    match kind {
        DialogKind::Open => dialog
            .set_title("Open a Localist checkpoint folder")
            .pick_folder(),
        DialogKind::OpenModelFile => dialog
            .set_title("Open a pretrained model: a .gguf file (LLaMA family)")
            .add_filter("GGUF model", &["gguf"])
            .add_filter("all files", &["*"])
            .pick_file(),
        DialogKind::OpenModelFolder => dialog
            .set_title(
                "Open a pretrained model: a Hugging Face folder (config.json, \
                 model.safetensors, tokenizer.json)",
            )
            .pick_folder(),
        DialogKind::Lexicon => dialog
            .set_title("Blocks from a lexicon (word<TAB>block per line)")
            .add_filter("lexicon", &["tsv", "txt", "lexicon"])
            .add_filter("all files", &["*"])
            .pick_file(),
        DialogKind::Sentences => dialog
            .set_title("A test set for the audit: sentences, one per line")
            .add_filter("text", &["txt"])
            .add_filter("all files", &["*"])
            .pick_file(),
        DialogKind::CompareFolder(_) => dialog
            .set_title("Compare: a checkpoint folder or a Hugging Face folder")
            .pick_folder(),
        DialogKind::CompareFile(_) => dialog
            .set_title("Compare: a .gguf file (LLaMA family)")
            .add_filter("GGUF model", &["gguf"])
            .add_filter("all files", &["*"])
            .pick_file(),
        DialogKind::Save => dialog
            .set_title("Save the model as a checkpoint folder")
            .set_file_name("checkpoint")
            .save_file(),
        DialogKind::OpenSession => session(dialog.set_title("Open a session")).pick_file(),
        DialogKind::OpenPool => dialog
            .set_title("Open a pool of specialists (a folder with manifest.json)")
            .pick_folder(),
        DialogKind::SaveSession => session(dialog.set_title("Save the session"))
            .set_file_name(format!("session.{SESSION_EXTENSION}"))
            .save_file(),
    }
}

/// The built-in browser for `kind`, starting in the working folder.
pub(super) fn browser_for(kind: DialogKind) -> FileBrowser {
    let (title, pick, exts, name): (&str, Pick, &[&str], String) = match kind {
        DialogKind::Open => (
            "Open a Localist checkpoint folder",
            Pick::Folder,
            &[],
            String::new(),
        ),
        DialogKind::OpenModelFile => (
            "Open a pretrained model: a .gguf file (LLaMA family)",
            Pick::File,
            &["gguf"],
            String::new(),
        ),
        DialogKind::OpenModelFolder => (
            "Open a pretrained model: a Hugging Face folder (config.json, model.safetensors, \
             tokenizer.json)",
            Pick::Folder,
            &[],
            String::new(),
        ),
        DialogKind::Lexicon => (
            "Blocks from a lexicon (word<TAB>block per line)",
            Pick::File,
            &["tsv", "txt", "lexicon"],
            String::new(),
        ),
        DialogKind::Sentences => (
            "A test set for the audit: sentences, one per line",
            Pick::File,
            &["txt"],
            String::new(),
        ),
        DialogKind::CompareFolder(_) => (
            "Compare: a checkpoint folder or a Hugging Face folder",
            Pick::Folder,
            &[],
            String::new(),
        ),
        DialogKind::CompareFile(_) => (
            "Compare: a .gguf file (LLaMA family)",
            Pick::File,
            &["gguf"],
            String::new(),
        ),
        DialogKind::Save => (
            "Save the model as a checkpoint folder",
            Pick::Save,
            &[],
            "checkpoint".into(),
        ),
        DialogKind::OpenSession => ("Open a session", Pick::File, &["json"], String::new()),
        DialogKind::SaveSession => (
            "Save the session",
            Pick::Save,
            &["json"],
            format!("session.{SESSION_EXTENSION}"),
        ),
        DialogKind::OpenPool => (
            "Open a pool of specialists (a folder with manifest.json)",
            Pick::Folder,
            &[],
            String::new(),
        ),
    };
    FileBrowser::new(title, pick, exts, None, &name)
}

impl StudioApp {
    /// Open the dialog for `kind`: the native one on its own thread (its answer arrives
    /// through `self.dialog`), or the built-in browser when native dialogs are switched off.
    pub(super) fn open_dialog(&mut self, kind: DialogKind) {
        if !native_dialogs() {
            self.browser = Some((browser_for(kind), BrowserFor::Dialog(kind)));
            return;
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let t0 = Instant::now();
                let picked = pick(kind);
                // No answer sooner than a person could cancel: there was no dialog to see.
                let answer = match picked {
                    Some(p) => DialogAnswer::Picked(p),
                    None if t0.elapsed() < NATIVE_MIN => DialogAnswer::NoDialog,
                    None => DialogAnswer::Cancelled,
                };
                let _ = tx.send(answer);
                ctx.request_repaint();
            });
        match spawned {
            Ok(_) => self.dialog = Some((kind, rx)),
            Err(e) => self.state.error = Some(format!("could not open a file dialog: {e}")),
        }
    }

    /// Act on the pending dialog's answer, when it has come.
    pub(super) fn poll_dialog(&mut self) {
        let Some((kind, rx)) = &self.dialog else {
            return;
        };
        let kind = *kind;
        match rx.try_recv() {
            Ok(DialogAnswer::Picked(path)) => {
                self.dialog = None;
                self.open_picked(kind, path);
            }
            Ok(DialogAnswer::NoDialog) => {
                self.dialog = None;
                self.browser = Some((browser_for(kind), BrowserFor::Dialog(kind)));
            }
            Ok(DialogAnswer::Cancelled) | Err(TryRecvError::Disconnected) => self.dialog = None,
            Err(TryRecvError::Empty) => {}
        }
    }

    /// Draw the built-in browser, when one is open, and act on its choice.
    pub(super) fn show_browser(&mut self) {
        let Some((browser, _)) = &mut self.browser else {
            return;
        };
        match browser.show(&self.ctx) {
            Outcome::Open => {}
            Outcome::Cancelled => self.browser = None,
            Outcome::Chosen(path) => {
                let Some((_, target)) = self.browser.take() else {
                    return;
                };
                match target {
                    BrowserFor::Dialog(kind) => self.open_picked(kind, path),
                    BrowserFor::Write(write) => self.write_on_thread(path, write),
                }
            }
        }
    }

    /// Do what the dialog of `kind` was opened for, with the path the user chose.
    pub(super) fn open_picked(&mut self, kind: DialogKind, path: PathBuf) {
        match kind {
            DialogKind::Open | DialogKind::OpenModelFile | DialogKind::OpenModelFolder => {
                self.state.send(Command::Load(path))
            }
            DialogKind::Lexicon => self
                .state
                .send(Command::SetImportedBlocks(ImportedBlocks::Lexicon(path))),
            DialogKind::Sentences => {
                self.state.rules.sentences_path = path.display().to_string();
                self.state.rules.test_set = TestSet::Sentences(path);
                self.state.audit_test_set();
            }
            DialogKind::CompareFolder(k) | DialogKind::CompareFile(k) => {
                let cmp = &mut self.state.compare;
                if let (Some(side), Some(typed)) = (cmp.sides.get_mut(k), cmp.paths.get_mut(k)) {
                    *typed = path.display().to_string();
                    side.checkpoint = Some(path);
                }
            }
            DialogKind::Save => self.state.send(Command::Save(path)),
            DialogKind::OpenSession => self.open_session_from(&path),
            DialogKind::SaveSession => self.save_session_to(&path),
            DialogKind::OpenPool => self.open_pool(path),
        }
    }
}
