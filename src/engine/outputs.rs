//! Where the tool writes, checked before anything is written, and before a long run starts:
//! an `--out` must never delete or overwrite what the user made. A saved model replaces its
//! folder as one step ([`crate::files::replace_dir`]), which removed everything in it: a
//! `train --out` into a folder of notes, or into the folder holding the corpus being trained
//! on, deleted them without a word. Now such a folder is refused, naming the file that would go.

use std::path::{Path, PathBuf};

/// What a saved model's folder may hold: a checkpoint, an adapter, the recruitment log. A
/// folder holding anything else is not replaced.
pub const MODEL_FOLDER_FILES: &[&str] = &[
    "config.json",
    "blocks.json",
    "model.safetensors",
    "optimizer.safetensors",
    "recruitment.json",
    "adapter.json",
    "adapter.safetensors",
];

/// Files a file manager leaves in folders it shows (Finder's view settings, Windows' thumbnail
/// cache and folder settings): nobody's work, so replacing a model's folder may delete them.
const SYSTEM_LITTER: [&str; 3] = [".DS_Store", "Thumbs.db", "desktop.ini"];

/// Whether a saved model may be written at `dir`: a new folder (its parent writable, no file
/// in the way), or a saved model's folder with nothing else in it. The error says why in a
/// sentence that follows the path ("PATH: holds notes.txt, …"): callers put the path first.
pub fn check_model_folder(dir: &Path) -> Result<(), String> {
    check_not_around_cwd(dir)?;
    check_names_itself(dir)?;
    match dir.symlink_metadata() {
        // A link (to a folder, or to nothing) was called "a file".
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "is a link{}; saving replaces the folder at this path, so give the folder itself",
            std::fs::read_link(dir).map_or(String::new(), |t| format!(" to {}", t.display()))
        )),
        Ok(m) if !m.is_dir() => Err("is a file, not a folder; a saved model is a folder, so \
                                     writing it there would replace the file: choose another \
                                     path"
            .into()),
        Ok(_) => {
            let entries = std::fs::read_dir(dir).map_err(|e| e.to_string())?;
            let mut first = None;
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                if !MODEL_FOLDER_FILES.contains(&name.as_str())
                    && !SYSTEM_LITTER.contains(&name.as_str())
                {
                    return Err(format!(
                        "holds {name}, which is not part of a saved model; saving there \
                         replaces the whole folder and would delete it. Choose a new or empty \
                         folder, or move {name} away"
                    ));
                }
                first = first.or((!SYSTEM_LITTER.contains(&name.as_str())).then_some(name));
            }
            // The names alone are not enough: a folder of another project's `config.json` (or
            // a file named model.safetensors holding "hi") was replaced.
            match first {
                Some(name) if !saved_model(dir) => Err(format!(
                    "holds {name}, but is not a folder Localist Studio saved (no config.json of \
                     a checkpoint, no adapter.json of an adapter); saving there replaces the \
                     whole folder and would delete it. Choose a new or empty folder"
                )),
                _ => Ok(()),
            }
        }
        Err(_) => check_not_in_saved_model(dir).and_then(|()| check_creatable(dir)),
    }
}

/// An output path must end in its own name: `CK/x/..` (which is CK) passed the checks as a new
/// folder `x/..`, and the run created `CK/x` and trained before the save refused.
pub fn check_names_itself(path: &Path) -> Result<(), String> {
    match path.file_name() {
        Some(_) => Ok(()),
        None => Err(
            "does not end in a name (it ends in `..` or is a root); give the path of \
                     the output itself"
                .into(),
        ),
    }
}

/// A new folder (or a folder of results) must not be made inside a saved model's folder, nor
/// be one: `train --out CK/sub`, `sweep --out-dir CK` and `synth --out CK` were accepted, and
/// CK then refused to be saved over ("holds sub"), its own folder no longer its own.
pub fn check_not_in_saved_model(dir: &Path) -> Result<(), String> {
    let Some(target) = resolved(dir) else {
        return Ok(());
    };
    if target.is_dir() && saved_model(&target) {
        return Err(
            "is the folder of a saved model; write elsewhere (saving that model \
                    again replaces the whole folder)"
                .into(),
        );
    }
    match target.parent().filter(|p| saved_model(p)) {
        Some(p) => Err(format!(
            "is inside {}, the folder of a saved model; write elsewhere (saving that model \
             again replaces the whole folder, and would refuse while this is there)",
            p.display()
        )),
        None => Ok(()),
    }
}

/// Whether `dir` holds a model this tool saved: a `config.json` with a checkpoint's `version`,
/// `model` and `tokenizer`, or an `adapter.json` with an adapter's `format` and `base`.
fn saved_model(dir: &Path) -> bool {
    let has = |file: &str, keys: &[&str]| {
        json_file(&dir.join(file)).is_some_and(|v| keys.iter().all(|k| v.get(k).is_some()))
    };
    has("config.json", &["version", "model", "tokenizer"])
        || has("adapter.json", &["format", "base"])
}

/// The JSON in the file at `path` (a regular file of at most 4 MiB), or None: for telling
/// whether a folder holds what this tool wrote, before writing over it. (Read here, not through
/// `crate::files`, which asks this module before it replaces a folder.)
pub fn json_file(path: &Path) -> Option<serde_json::Value> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > 4 << 20 {
        return None;
    }
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// Whether `dir` is a new or empty folder, as a pool of specialists needs: a pool is never
/// written over another, nor into a checkpoint (their files mixed), nor inside one. The CLI,
/// the worker and the studio's form all ask this one question.
pub fn check_new_or_empty(dir: &Path) -> Result<(), String> {
    if dir.is_file() {
        return Err("is a file, not a folder".into());
    }
    check_names_itself(dir)?;
    check_not_in_saved_model(dir)?;
    let holds_work = |d: std::fs::ReadDir| {
        d.flatten().any(|e| {
            let name = e.file_name();
            !SYSTEM_LITTER.contains(&name.to_string_lossy().as_ref())
        })
    };
    if dir.read_dir().is_ok_and(holds_work) {
        return Err(
            "already holds files; choose a new or empty folder (a pool is never \
                    written over another)"
                .into(),
        );
    }
    Ok(())
}

/// Whether a new folder can be made at `dir` (the error, like all here, without the path): its first existing ancestor is a folder, and a
/// folder can be created beside where `dir` will be (tried and removed at once), so that a run
/// learns this before it trains, not after.
pub fn check_creatable(dir: &Path) -> Result<(), String> {
    let parent = parent_of(dir);
    let mut up = Some(parent.as_path());
    while let Some(p) = up {
        if let Ok(m) = p.symlink_metadata() {
            if !m.is_dir() && !p.is_dir() {
                return Err(format!(
                    "cannot be created, because {} is a file, not a folder",
                    p.display()
                ));
            }
            break;
        }
        up = p.parent().filter(|q| !q.as_os_str().is_empty());
    }
    std::fs::create_dir_all(&parent)
        .map_err(|e| format!("cannot create {} ({e})", parent.display()))?;
    let probe = parent.join(format!(".localist-probe-{}", std::process::id()));
    std::fs::create_dir(&probe)
        .and_then(|()| std::fs::remove_dir(&probe))
        .map_err(|e| format!("cannot write in {} ({e})", parent.display()))
}

/// Refuse an output that is one of the command's inputs, or one of the files a model folder
/// among the inputs is read from: `capture -o` onto the model's weights, `audit report --out`
/// onto the rule file, a corpus generator's truth table onto its text.
pub fn check_not_an_input(out: &Path, inputs: &[&Path]) -> Result<(), String> {
    let Some(target) = resolved(out) else {
        return Ok(());
    };
    for input in inputs {
        let Some(source) = resolved(input) else {
            continue;
        };
        let inside = source.is_dir() && target.starts_with(&source) && model_file(&target);
        if target == source || inside {
            return Err(format!(
                "is {}, which this command reads; writing there would destroy it: choose \
                 another path",
                if target == source {
                    input.display().to_string()
                } else {
                    format!("inside {}", input.display())
                }
            ));
        }
    }
    // Any saved model's files, not only the inputs': `audit key --out CK/config.json` and
    // `capture -o CK/model.safetensors` of another model left CK unopenable.
    if let Some(dir) = target
        .parent()
        .filter(|p| model_file(&target) && saved_model(p))
    {
        return Err(format!(
            "is one of the files of the model saved in {}; writing there would destroy it: \
             choose another path",
            dir.display()
        ));
    }
    Ok(())
}

/// Whether `path` is a file a model folder is read from (weights, configs, tokenizers): a new
/// file written beside them (a capture saved into the model's folder) harms nothing.
fn model_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    const READ: &[&str] = &[
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "generation_config.json",
        "vocab.json",
        "merges.txt",
        "manifest.json",
        "documents.txt",
    ];
    MODEL_FOLDER_FILES.contains(&name.as_str())
        || READ.contains(&name.as_str())
        || [".safetensors", ".gguf"].iter().any(|e| name.ends_with(e))
}

/// A folder `dir` must not be the current folder or one above it: replacing it fails half-way
/// ("Device or resource busy") and would remove the folder the user works in.
fn check_not_around_cwd(dir: &Path) -> Result<(), String> {
    let (Some(d), Ok(cwd)) = (resolved(dir), std::env::current_dir()) else {
        return Ok(());
    };
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    if cwd.starts_with(&d) {
        return Err("is the current folder or one above it; choose a folder below it".into());
    }
    Ok(())
}

/// `path` made absolute with its symlinks resolved, also when it does not exist yet (its
/// parent resolved, its name kept); `None` when not even the parent resolves.
fn resolved(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let name = path.file_name()?;
    parent_of(path).canonicalize().ok().map(|p| p.join(name))
}

/// The parent of `path`, `.` for a bare name.
fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_the_users_files_or_a_file_is_refused_and_a_saved_model_is_not() {
        let d = tempfile::tempdir().unwrap();
        let new = d.path().join("new");
        assert!(check_model_folder(&new).is_ok());
        assert!(!d
            .path()
            .join(format!(".localist-probe-{}", std::process::id()))
            .exists());
        let model = d.path().join("model");
        std::fs::create_dir(&model).unwrap();
        for f in [
            "config.json",
            "blocks.json",
            "model.safetensors",
            "recruitment.json",
        ] {
            std::fs::write(model.join(f), "x").unwrap();
        }
        // The names alone: another project's config.json (or a file named model.safetensors
        // holding "x") is not a saved model, and its folder is kept.
        let e = check_model_folder(&model).unwrap_err();
        assert!(e.contains("is not a folder Localist Studio saved"), "{e}");
        let config = r#"{"version": 3, "model": {}, "tokenizer": {}}"#;
        std::fs::write(model.join("config.json"), config).unwrap();
        assert!(check_model_folder(&model).is_ok());
        let adapter = d.path().join("adapter");
        std::fs::create_dir(&adapter).unwrap();
        std::fs::write(adapter.join("adapter.json"), r#"{"name": "mine"}"#).unwrap();
        assert!(check_model_folder(&adapter).is_err());
        std::fs::write(
            adapter.join("adapter.json"),
            r#"{"format": "a", "base": {}}"#,
        )
        .unwrap();
        assert!(check_model_folder(&adapter).is_ok());
        std::fs::write(model.join("corpus.txt"), "my text").unwrap();
        let e = check_model_folder(&model).unwrap_err();
        assert!(e.contains("holds corpus.txt"), "{e}");
        let file = d.path().join("notes.txt");
        std::fs::write(&file, "x").unwrap();
        let e = check_model_folder(&file).unwrap_err();
        assert!(e.contains("is a file, not a folder"), "{e}");
        let e = check_model_folder(&file.join("sub")).unwrap_err();
        assert!(e.contains("notes.txt is a file"), "{e}");
        let e = check_model_folder(Path::new(".")).unwrap_err();
        assert!(e.contains("current folder"), "{e}");
    }

    #[test]
    fn an_output_onto_an_input_or_inside_an_input_folder_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let rules = d.path().join("my.rules");
        std::fs::write(&rules, "rule").unwrap();
        let model = d.path().join("model");
        std::fs::create_dir(&model).unwrap();
        let e = check_not_an_input(&rules, &[&model, &rules]).unwrap_err();
        assert!(e.contains("which this command reads"), "{e}");
        let inside = model.join("model.safetensors");
        assert!(check_not_an_input(&inside, &[&rules, &model]).is_err());
        assert!(check_not_an_input(&d.path().join("report.html"), &[&rules, &model]).is_ok());
        // A new file beside the model's own is no harm (a capture saved with the model).
        assert!(check_not_an_input(&model.join("capture.json"), &[&model]).is_ok());
    }
}
