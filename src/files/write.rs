//! Writing an output file whole or not at all: a temporary sibling and a rename, so a reader (or
//! a crash) never sees half a file. Every writer of user-facing outputs goes through here: the
//! engine's (checkpoint JSON, captures, reports) through `engine::export::write_atomic`, which
//! adds the path to the error, and `synth`'s three files directly.

use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

/// Longest file name most file systems take, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// Write `contents` to `path` via a temporary sibling and a rename. A path that is a device,
/// a FIFO or a socket (`-o /dev/null`, `-o /dev/stdout`) is written in place: the rename put a
/// regular file where `/dev/null` stood, for every program, when run as root. A link to a
/// file is followed, so the link stays and its file is replaced. A file replaced keeps its
/// permissions; the temporary file is removed when the write or the rename fails (a full disk
/// left `.NAME.tmp-PID` behind).
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    write_all_atomic(&[(path, contents)]).map_err(|(_, e)| e)
}

/// Write several files that belong together (a report and its JSON twin, a corpus and its
/// truth) whole or not at all: every temporary file is written first, and only when all are
/// written are they renamed into place, so a full disk no longer left an HTML report without
/// its twin. The error names the file it came from (its index in `files`).
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<(), (usize, io::Error)> {
    // (index in `files`, temporary, final path)
    let mut staged: Vec<(usize, PathBuf, PathBuf)> = Vec::new();
    let discard = |staged: &[(usize, PathBuf, PathBuf)]| {
        for (_, tmp, _) in staged {
            let _ = std::fs::remove_file(tmp);
        }
    };
    for (k, &(path, contents)) in files.iter().enumerate() {
        if let Ok(meta) = std::fs::metadata(path) {
            if !meta.is_file() && !meta.is_dir() {
                // A device is written in place, last of all (it cannot be taken back).
                continue;
            }
        }
        match stage(path, contents) {
            Ok((tmp, to)) => staged.push((k, tmp, to)),
            Err(e) => {
                discard(&staged);
                return Err((k, e));
            }
        }
    }
    for (n, (k, tmp, path)) in staged.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp, path) {
            discard(&staged[n..]);
            return Err((*k, e));
        }
    }
    for (k, &(path, contents)) in files.iter().enumerate() {
        if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            std::fs::write(path, contents).map_err(|e| (k, e))?;
        }
    }
    Ok(())
}

/// A link to a file, followed (the link stays and its file is replaced); else `path`.
fn resolve(path: &Path) -> PathBuf {
    let linked = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match linked.then(|| std::fs::canonicalize(path).ok()).flatten() {
        Some(p) => p,
        None => path.to_path_buf(),
    }
}

/// `contents` written to the temporary sibling of `path` (which keeps the permissions of the
/// file it will replace): (temporary, final path). Nothing is left when it fails.
fn stage(path: &Path, contents: &[u8]) -> io::Result<(PathBuf, PathBuf)> {
    let path = resolve(path);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temporary_sibling(&path);
    if let Err(e) = std::fs::write(&tmp, contents) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // A report kept private at 600 came back 644.
    if let Ok(meta) = std::fs::metadata(&path) {
        let _ = std::fs::set_permissions(&tmp, meta.permissions());
    }
    Ok((tmp, path))
}

/// Give `path` the mode a new file gets here (the user's umask: 0644 under 022). For files
/// written by a library through a private temporary file: the safetensors crate's weights came
/// out 0600, unreadable to others beside a 0644 `config.json`. The mode is read from an empty
/// probe file made beside `path`, and the probe removed.
pub fn give_default_mode(path: &Path) -> io::Result<()> {
    let probe = temporary_sibling(&path.with_extension("mode-probe"));
    std::fs::write(&probe, b"")?;
    let mode = std::fs::metadata(&probe).map(|m| m.permissions());
    let _ = std::fs::remove_file(&probe);
    std::fs::set_permissions(path, mode?)
}

/// The temporary name beside `path`: `.NAME.tmp-PID`, or, where that would pass 255 bytes (an
/// output whose own name fits was refused, naming the output), the name cut at a character
/// boundary with a hash of the whole name, so two long names that share a beginning differ.
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let suffix = format!(".tmp-{}", std::process::id());
    let full = format!(".{name}{suffix}");
    if full.len() <= MAX_NAME_BYTES {
        return path.with_file_name(full);
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let tag = format!("-{:016x}", h.finish());
    let room = MAX_NAME_BYTES - 1 - suffix.len() - tag.len();
    let mut cut = room.min(name.len());
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    path.with_file_name(format!(".{}{tag}{suffix}", &name[..cut]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_of_255_bytes_gets_a_temporary_name_that_fits_and_is_written() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        // 'é' is two bytes: the cut must fall between characters.
        let name = format!("{}{}.json", "é".repeat(100), "a".repeat(50));
        assert_eq!(name.len(), 255);
        let path = dir.path().join(&name);
        let tmp = temporary_sibling(&path);
        let tmp_name = tmp.file_name().map(|n| n.len()).unwrap_or(0);
        assert!(tmp_name <= MAX_NAME_BYTES, "{tmp:?}");
        let other = dir
            .path()
            .join(format!("{}{}.json", "é".repeat(100), "b".repeat(50)));
        assert_ne!(tmp, temporary_sibling(&other));
        write_atomic(&path, b"kept").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&path).ok().as_deref(), Some(&b"kept"[..]));
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn files_that_belong_together_are_written_all_or_none() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let page = dir.path().join("report.html");
        std::fs::write(&page, "old page").unwrap_or_else(|e| panic!("{e}"));
        // The twin cannot be written (its folder is a file): neither is, and nothing is left.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap_or_else(|e| panic!("{e}"));
        let twin = blocker.join("report.json");
        let err = write_all_atomic(&[(&page, b"new page"), (&twin, b"{}")]);
        assert_eq!(err.map_err(|(k, _)| k), Err(1));
        assert_eq!(std::fs::read(&page).ok().as_deref(), Some(&b"old page"[..]));
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["file", "report.html"]);
        let twin = dir.path().join("report.json");
        assert!(write_all_atomic(&[(&page, b"new page"), (&twin, b"{}")]).is_ok());
        assert_eq!(std::fs::read(&twin).ok().as_deref(), Some(&b"{}"[..]));
        assert_eq!(std::fs::read(&page).ok().as_deref(), Some(&b"new page"[..]));
    }

    #[test]
    fn a_short_name_keeps_the_plain_temporary_name() {
        let tmp = temporary_sibling(Path::new("/x/out.json"));
        assert_eq!(
            tmp,
            PathBuf::from(format!("/x/.out.json.tmp-{}", std::process::id()))
        );
    }
}
