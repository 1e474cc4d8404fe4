//! File dialogs: what each is for, opening one on its own thread (rfd blocks), and acting on
//! the path it returns.

use std::path::PathBuf;

use crossbeam_channel::TryRecvError;

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
        }
    }
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

impl StudioApp {
    /// Open the dialog for `kind` on its own thread; its answer arrives through `self.dialog`.
    pub(super) fn open_dialog(&mut self, kind: DialogKind) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let ctx = self.ctx.clone();
        let spawned = std::thread::Builder::new()
            .name("file-dialog".into())
            .spawn(move || {
                let picked = pick(kind);
                let _ = tx.send(picked);
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
        match rx.try_recv() {
            Ok(Some(path)) => {
                let kind = *kind;
                self.dialog = None;
                self.open_picked(kind, path);
            }
            Ok(None) | Err(TryRecvError::Disconnected) => self.dialog = None,
            Err(TryRecvError::Empty) => {}
        }
    }

    /// Do what the dialog of `kind` was opened for, with the path the user chose.
    fn open_picked(&mut self, kind: DialogKind, path: PathBuf) {
        match kind {
            DialogKind::Open | DialogKind::OpenModelFile | DialogKind::OpenModelFolder => {
                self.state.send(Command::Load(path))
            }
            DialogKind::Lexicon => self
                .state
                .send(Command::SetImportedBlocks(ImportedBlocks::Lexicon(path))),
            DialogKind::Save => self.state.send(Command::Save(path)),
            DialogKind::OpenSession => self.open_session_from(&path),
            DialogKind::SaveSession => self.save_session_to(&path),
            DialogKind::OpenPool => self.open_pool(path),
        }
    }
}
