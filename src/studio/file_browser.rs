//! The built-in file browser, for desktops without a native file dialog.
//!
//! `rfd` needs an xdg-desktop-portal or GTK; on a minimal window manager, over remote X or in a
//! container it returns at once with nothing, which reads as a cancel: Open… and every Export
//! did nothing at all. The studio now notices a "cancel" that came too fast for a person
//! ([`NATIVE_MIN`]) and opens this browser instead, and `LOCALIST_FILE_DIALOG=builtin` uses it
//! always. It lists a folder over `std::fs` (folders first, hidden entries left out, files
//! filtered by extension), walks up and into folders, takes a typed location, and checks the
//! choice before returning it: an open needs an existing file or folder, a save a name and an
//! existing folder, and a save over an existing file asks once more.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A native dialog that "answers" faster than this was never shown.
pub const NATIVE_MIN: Duration = Duration::from_millis(300);

/// The environment variable that selects the built-in browser (`builtin`) over native dialogs.
pub const DIALOG_ENV: &str = "LOCALIST_FILE_DIALOG";

/// True unless `LOCALIST_FILE_DIALOG=builtin`.
pub fn native_dialogs() -> bool {
    std::env::var(DIALOG_ENV).map_or(true, |v| v.trim() != "builtin")
}

/// What the browser picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// An existing file.
    File,
    /// An existing folder.
    Folder,
    /// A file to write (new or replaced).
    Save,
}

/// The browser's state after a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still open.
    Open,
    /// The user chose this path.
    Chosen(PathBuf),
    /// The user cancelled.
    Cancelled,
}

/// One listed entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    name: String,
    is_dir: bool,
}

/// An open file browser.
#[derive(Clone, Debug)]
pub struct FileBrowser {
    title: String,
    pick: Pick,
    /// Extensions shown for files (lower case, no dot); empty: every file.
    exts: Vec<String>,
    dir: PathBuf,
    location: String,
    /// The file name (File, Save) or folder name (Folder) chosen in `dir`.
    name: String,
    entries: Vec<Entry>,
    error: Option<String>,
    /// A save over this existing file was asked once already.
    confirm: Option<PathBuf>,
}

impl FileBrowser {
    /// A browser titled `title` picking a `pick`, showing files ending in one of `exts`, in
    /// `start` (default: the working folder), with `name` proposed.
    pub fn new(title: &str, pick: Pick, exts: &[&str], start: Option<&Path>, name: &str) -> Self {
        let dir = start
            .map(Path::to_path_buf)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let mut b = Self {
            title: title.to_string(),
            pick,
            exts: exts
                .iter()
                .map(|e| e.trim_start_matches('.').to_lowercase())
                .filter(|e| e != "*")
                .collect(),
            dir: PathBuf::new(),
            location: String::new(),
            name: name.to_string(),
            entries: Vec::new(),
            error: None,
            confirm: None,
        };
        b.go(dir);
        b
    }

    /// The folder shown.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Show folder `dir` (an error, and the previous folder, when it cannot be read).
    pub fn go(&mut self, dir: PathBuf) {
        match list(&dir, self.pick, &self.exts) {
            Ok(entries) => {
                self.entries = entries;
                self.location = dir.display().to_string();
                self.dir = dir;
                self.error = None;
                self.confirm = None;
                if self.pick == Pick::Folder {
                    self.name.clear();
                }
            }
            Err(e) => {
                self.error = Some(format!("{}: {e}", dir.display()));
                self.location = self.dir.display().to_string();
            }
        }
    }

    /// The path the current choice names, checked for the pick; an error says what is wrong.
    pub fn choice(&mut self) -> Result<PathBuf, String> {
        let name = self.name.trim();
        match self.pick {
            Pick::Folder => {
                let path = if name.is_empty() {
                    self.dir.clone()
                } else {
                    self.dir.join(name)
                };
                if path.is_dir() {
                    Ok(path)
                } else {
                    Err(format!("{} is not a folder", path.display()))
                }
            }
            Pick::File => {
                if name.is_empty() {
                    return Err("choose a file".into());
                }
                let path = self.dir.join(name);
                if path.is_file() {
                    Ok(path)
                } else {
                    Err(format!("{} is not a file", path.display()))
                }
            }
            Pick::Save => {
                if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                    return Err("type a file name (without /)".into());
                }
                let path = self.dir.join(name);
                if path.is_dir() {
                    return Err(format!("{} is a folder", path.display()));
                }
                if path.exists() && self.confirm.as_ref() != Some(&path) {
                    self.confirm = Some(path.clone());
                    return Err(format!(
                        "{} exists: press Save again to replace it",
                        path.display()
                    ));
                }
                Ok(path)
            }
        }
    }

    /// Draw the browser as a modal window; returns what the user did this frame.
    pub fn show(&mut self, ctx: &egui::Context) -> Outcome {
        let mut outcome = Outcome::Open;
        egui::Modal::new(egui::Id::unique("file_browser")).show(ctx, |ui| {
            ui.set_width(560.0);
            ui.heading(&self.title);
            ui.label("No native file dialog is available here: the built-in browser.")
                .on_hover_text(
                    "Desktops without an xdg-desktop-portal or GTK have no native file \
                     dialog. Set LOCALIST_FILE_DIALOG=builtin to always use this one.",
                );
            self.location_row(ui);
            self.listing(ui);
            outcome = self.choice_row(ui);
            if ui.input(|i| i.key_pressed(egui::Key::Escape)) {
                outcome = Outcome::Cancelled;
            }
        });
        outcome
    }

    /// Up, home and the typed location.
    fn location_row(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if ui.button("Up").on_hover_text("The parent folder").clicked() {
                if let Some(p) = self.dir.parent() {
                    self.go(p.to_path_buf());
                }
            }
            if ui.button("Home").clicked() {
                if let Some(h) = std::env::var_os("HOME") {
                    self.go(PathBuf::from(h));
                }
            }
            let l = ui.label("location");
            let edit = ui
                .add(egui::TextEdit::singleline(&mut self.location).desired_width(360.0))
                .labelled_by(l.id);
            if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                let typed = PathBuf::from(self.location.trim());
                match (typed.is_dir(), typed.parent(), typed.file_name()) {
                    (true, _, _) => self.go(typed),
                    (false, Some(parent), Some(name)) if parent.is_dir() => {
                        self.name = name.to_string_lossy().to_string();
                        self.go(parent.to_path_buf());
                        self.name = name.to_string_lossy().to_string();
                    }
                    _ => self.error = Some(format!("{} does not exist", typed.display())),
                }
            }
        });
    }

    /// The folder's entries: a click selects, a double click (or a click on a folder when
    /// picking a file) enters.
    fn listing(&mut self, ui: &mut egui::Ui) {
        let mut enter = None;
        egui::ScrollArea::vertical()
            .max_height(300.0)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if self.entries.is_empty() {
                    ui.weak("(nothing to show here)");
                }
                for e in &self.entries {
                    // Folders end in a slash (emoji icons are not in every font).
                    let label = if e.is_dir {
                        format!("{}/", e.name)
                    } else {
                        e.name.clone()
                    };
                    let selected = self.name == e.name;
                    let resp = ui.selectable_label(selected, label);
                    if resp.double_clicked()
                        || (resp.clicked() && e.is_dir && self.pick != Pick::Folder)
                    {
                        enter = Some(e.name.clone());
                    } else if resp.clicked() && (e.is_dir == (self.pick == Pick::Folder)) {
                        self.name = e.name.clone();
                        self.confirm = None;
                    }
                }
            });
        if let Some(name) = enter {
            let keep = (self.pick == Pick::Save).then(|| self.name.clone());
            self.go(self.dir.join(name));
            if let Some(k) = keep {
                self.name = k;
            }
        }
    }

    /// The name field, the error, and the buttons.
    fn choice_row(&mut self, ui: &mut egui::Ui) -> Outcome {
        let mut outcome = Outcome::Open;
        let mut submit = false;
        ui.horizontal(|ui| {
            let what = match self.pick {
                Pick::Folder => "folder",
                _ => "file name",
            };
            let l = ui.label(what);
            let edit = ui
                .add(egui::TextEdit::singleline(&mut self.name).desired_width(360.0))
                .labelled_by(l.id);
            submit |= edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        });
        if let Some(e) = &self.error {
            ui.add(
                egui::Label::new(egui::RichText::new(e).color(ui.visuals().error_fg_color)).wrap(),
            );
        }
        ui.horizontal(|ui| {
            let action = match self.pick {
                Pick::File => "Open",
                Pick::Folder => "Choose folder",
                Pick::Save => "Save",
            };
            submit |= ui.button(action).clicked();
            if ui.button("Cancel").clicked() {
                outcome = Outcome::Cancelled;
            }
        });
        if submit {
            match self.choice() {
                Ok(p) => outcome = Outcome::Chosen(p),
                Err(e) => self.error = Some(e),
            }
        }
        outcome
    }
}

/// The entries of `dir` for a pick: folders first, then (unless picking a folder) files with
/// one of `exts`; names starting with a dot are left out; each group sorted without case.
fn list(dir: &Path, pick: Pick, exts: &[String]) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue;
        }
        // Follows links, so a link to a folder is a folder.
        let is_dir = entry.path().is_dir();
        let shown = is_dir
            || (pick != Pick::Folder
                && (exts.is_empty()
                    || Path::new(&name)
                        .extension()
                        .is_some_and(|e| exts.contains(&e.to_string_lossy().to_lowercase()))));
        if shown {
            out.push(Entry { name, is_dir });
        }
    }
    out.sort_by(|a, b| {
        b.is_dir
            .cmp(&a.is_dir)
            .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for f in ["b.gguf", "A.GGUF", "notes.txt", ".hidden.gguf"] {
            std::fs::write(d.path().join(f), b"x").unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::create_dir(d.path().join("zeta")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(d.path().join("Alpha")).unwrap_or_else(|e| panic!("{e}"));
        d
    }

    #[test]
    fn folders_come_first_and_files_are_filtered() {
        let d = scratch();
        let names = |b: &FileBrowser| b.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        let b = FileBrowser::new("t", Pick::File, &["gguf"], Some(d.path()), "");
        assert_eq!(names(&b), ["Alpha", "zeta", "A.GGUF", "b.gguf"]);
        let b = FileBrowser::new("t", Pick::Folder, &[], Some(d.path()), "");
        assert_eq!(names(&b), ["Alpha", "zeta"]);
        let b = FileBrowser::new("t", Pick::Save, &["*"], Some(d.path()), "");
        assert_eq!(names(&b).len(), 5);
    }

    #[test]
    fn choices_are_checked_and_a_replace_is_asked_once() {
        let d = scratch();
        let mut b = FileBrowser::new("t", Pick::File, &[], Some(d.path()), "missing.gguf");
        assert!(b.choice().is_err_and(|e| e.contains("is not a file")));
        b.name = "b.gguf".into();
        assert_eq!(b.choice(), Ok(d.path().join("b.gguf")));
        let mut s = FileBrowser::new("t", Pick::Save, &[], Some(d.path()), "notes.txt");
        assert!(s.choice().is_err_and(|e| e.contains("press Save again")));
        assert_eq!(s.choice(), Ok(d.path().join("notes.txt")));
        s.name = "a/b".into();
        assert!(s.choice().is_err());
        let mut f = FileBrowser::new("t", Pick::Folder, &[], Some(d.path()), "");
        assert_eq!(f.choice(), Ok(d.path().to_path_buf()));
        f.name = "zeta".into();
        assert_eq!(f.choice(), Ok(d.path().join("zeta")));
        // A folder that cannot be read keeps the browser where it was, with the error.
        f.go(d.path().join("nowhere"));
        assert_eq!(f.dir(), d.path());
        assert!(f.error.as_deref().is_some_and(|e| e.contains("nowhere")));
    }
}
