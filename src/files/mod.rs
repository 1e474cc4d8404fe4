//! Reading the files a user hands us, defensively: only regular files are read (never a device
//! such as `/dev/zero`, a FIFO or a folder), never more than a stated limit, and every error
//! names the file and the problem once.
//!
//! Every loader of user input (corpora, rules, lexicons, configs, tokenizers, reports,
//! sessions, checkpoints' JSON) goes through here, so a hostile path can neither hang the tool
//! nor take all the memory before a size check has run. The limits are generous for real use
//! and small against the machine: a corpus of 256 MiB is a lot of text; a 10 GB "corpus" is a
//! mistake or an attack.

use std::io::Read;
use std::path::{Path, PathBuf};

pub mod hidden;
pub mod json_keys;
pub mod write;
pub use hidden::{hidden_character, hidden_in, hidden_in_name, MAX_NAME_CHARS};
pub use json_keys::{check_single_keys, duplicate_key};
pub use write::{give_default_mode, write_all_atomic, write_atomic};

/// Largest corpus (plain text) read into memory.
pub const MAX_CORPUS_BYTES: u64 = 256 << 20;
/// Largest rules file, lexicon, session or audit report.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;
/// Largest JSON metadata file (a checkpoint's or a Hugging Face model's `config.json`,
/// `blocks.json`, `training.json`, ...).
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;
/// Largest `tokenizer.json` (real ones are a few MB; 64 MiB leaves ample room).
pub const MAX_TOKENIZER_BYTES: u64 = 64 << 20;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Nothing at that path.
    #[error("{}: no such file", .0.display())]
    NotFound(PathBuf),
    /// A folder, device, FIFO or socket where a file was expected.
    #[error("{}: not a regular file ({kind}); give the path of a file", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// Larger than the limit for this kind of file.
    #[error(
        "{}: {} is more than the {} allowed for {what}",
        path.display(),
        human_bytes(*size),
        human_bytes(*limit)
    )]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Its size in bytes (or at least this much, for a file that grew while read).
        size: u64,
        /// The limit in bytes.
        limit: u64,
        /// What kind of file it was read as ("a corpus", "a rules file", ...).
        what: &'static str,
    },
    /// Not valid UTF-8 where text was expected.
    #[error("{}: not UTF-8 text (invalid byte at offset {offset}); save it as UTF-8", path.display())]
    NotUtf8 {
        /// The path.
        path: PathBuf,
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// Any other I/O failure (permissions, a read error).
    #[error("{}: {cause}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
}

/// `n` bytes for a reader: "512 B", "3.0 KiB", "4.0 GiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n} B"),
        _ => format!("{v:.1} {}", UNITS.get(unit).copied().unwrap_or("B")),
    }
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

/// Check that `path` is a regular file (following symlinks) of at most `limit` bytes; returns
/// its size. `what` names the kind of file in the error ("a corpus").
pub fn check_regular(path: &Path, limit: u64, what: &'static str) -> Result<u64, FileError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FileError::NotFound(path.to_path_buf()),
        _ => FileError::Io {
            path: path.to_path_buf(),
            cause: e,
        },
    })?;
    if !meta.is_file() {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta),
        });
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit,
            what,
        });
    }
    Ok(meta.len())
}

/// The bytes of a regular file of at most `limit` bytes. The read itself stops past the limit
/// too, so a file that grows while it is read cannot take more memory than that.
pub fn read_bytes(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, FileError> {
    let size = check_regular(path, limit, what)?;
    let io = |cause| FileError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: buf.len() as u64,
            limit,
            what,
        });
    }
    Ok(buf)
}

/// `text` without a leading byte-order mark (U+FEFF): a text pasted into the studio or given
/// with `--text` may start with one copied from a file, and it must read as a file's does
/// ([`read_text`] drops it), not as an unknown first word.
pub fn without_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

/// The text of a regular UTF-8 file of at most `limit` bytes, without a leading byte-order
/// mark (editors on Windows write one).
pub fn read_text(path: &Path, limit: u64, what: &'static str) -> Result<String, FileError> {
    let bytes = read_bytes(path, limit, what)?;
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    match std::str::from_utf8(body) {
        Ok(s) => Ok(s.to_string()),
        Err(e) => Err(FileError::NotUtf8 {
            path: path.to_path_buf(),
            offset: e.valid_up_to() + (bytes.len() - body.len()),
        }),
    }
}

/// Write the folder `dir` as one step: `fill` writes its files into a temporary sibling
/// (`.NAME.tmp-PID`), which then replaces `dir` by rename (the old folder moved aside first and
/// removed after), so a reader or a crash sees the old folder or the new one, never half of
/// one. `io` turns an I/O error on a path into the caller's error.
pub fn replace_dir<E>(
    dir: &Path,
    io: impl Fn(&Path, std::io::Error) -> E,
    fill: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    use std::fs;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "folder".into());
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Never a file, the user's folder of other things, or the folder the user is in.
    crate::engine::outputs::check_model_folder(dir)
        .map_err(|m| io(dir, std::io::Error::other(m)))?;
    fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
    // A failure leaves what was there, and no half-written folder beside it.
    let discard = |e: E| {
        let _ = fs::remove_dir_all(&tmp);
        e
    };
    fill(&tmp).map_err(discard)?;
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if dir.exists() {
        fs::rename(dir, &old).map_err(|e| discard(io(dir, e)))?;
    }
    if let Err(e) = fs::rename(&tmp, dir) {
        let _ = fs::rename(&old, dir);
        return Err(discard(io(dir, e)));
    }
    if old.exists() {
        fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    Ok(())
}

/// Longest line of an error message shown whole; longer lines keep their start and end.
pub const MAX_MESSAGE_LINE: usize = 400;

/// An error message as a person reads it: each line over [`MAX_MESSAGE_LINE`] characters keeps
/// its first 300 and last 80, with the count left out between. Messages quote the bad value
/// they found, and a value of 100,000 characters (a rule token, a lexicon word, a JSON string)
/// made 100 KB of error.
pub fn shorten_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(8 * MAX_MESSAGE_LINE));
    for (k, line) in message.split('\n').enumerate() {
        if k > 0 {
            out.push('\n');
        }
        let n = line.chars().count();
        if n <= MAX_MESSAGE_LINE {
            out.push_str(line);
            continue;
        }
        let (head, tail) = (300, 80);
        out.extend(line.chars().take(head));
        out.push_str(&format!(" …[{} characters left out]… ", n - head - tail));
        out.extend(line.chars().skip(n - tail));
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_large_files_are_refused_and_a_bom_is_dropped() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let err = read_text(Path::new("/dev/zero"), 10, "a corpus").map(|_| ());
        assert!(matches!(
            err,
            Err(FileError::NotRegular {
                kind: "a character device",
                ..
            })
        ));
        let err = read_text(dir.path(), 10, "a corpus").map(|_| ());
        assert!(matches!(
            err,
            Err(FileError::NotRegular {
                kind: "a folder",
                ..
            })
        ));
        let big = dir.path().join("big.txt");
        std::fs::write(&big, vec![b'a'; 2048]).unwrap_or_else(|e| panic!("{e}"));
        let msg = read_text(&big, 1024, "a rules file")
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("big.txt") && msg.contains("2.0 KiB") && msg.contains("1.0 KiB"));
        assert!(msg.contains("a rules file"), "{msg}");
        let bom = dir.path().join("bom.rules");
        std::fs::write(&bom, b"\xEF\xBB\xBFrule x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_text(&bom, 100, "a rules file").ok().as_deref(),
            Some("rule x")
        );
        let bad = dir.path().join("bad.txt");
        std::fs::write(&bad, b"ok\xFFno").unwrap_or_else(|e| panic!("{e}"));
        let err = read_text(&bad, 100, "a corpus").map(|_| ());
        assert!(matches!(err, Err(FileError::NotUtf8 { offset: 2, .. })));
        let missing = read_text(&dir.path().join("none"), 100, "a corpus").map(|_| ());
        assert!(matches!(missing, Err(FileError::NotFound(_))));
    }

    #[test]
    fn long_lines_of_a_message_keep_their_ends() {
        let long = format!("rules.r:3:5: unexpected `{}` here", "é".repeat(100_000));
        let short = shorten_message(&format!("first line\n{long}\nlast"));
        assert!(short.len() < 1_000, "{} bytes", short.len());
        assert!(short.starts_with("first line\nrules.r:3:5: unexpected `é"));
        assert!(short.ends_with("éé` here\nlast"));
        assert!(short.contains("[99651 characters left out]"));
        assert_eq!(shorten_message("short\nlines"), "short\nlines");
    }
}
