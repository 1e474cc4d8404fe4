//! Loading a training corpus and slicing it into batches the way the reference trainer does.
//!
//! A corpus is one UTF-8 text file. Users point the studio at arbitrary files, so loading checks
//! the failure modes that otherwise surface much later as nonsense (an empty file, a binary file,
//! a Latin-1 file) and says exactly where the problem is. The split and batch-offset helpers
//! reproduce the reference PyTorch trainer's arithmetic exactly, so a run can be replayed there.

use std::path::{Path, PathBuf};

use crate::files::{read_bytes, FileError, MAX_CORPUS_BYTES};

/// A file is treated as binary when more than this fraction of its bytes are control bytes
/// other than `\n`, `\r`, `\t` and form feed.
pub const MAX_CONTROL_FRACTION: f64 = 0.05;

/// Why a corpus file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The file could not be read at all: missing, not a regular file (a folder, a device such
    /// as `/dev/zero`), larger than [`MAX_CORPUS_BYTES`], or unreadable. The cause names the file
    /// and is not repeated as an error source.
    #[error("cannot read the corpus: {cause}")]
    Unreadable {
        /// The corpus path.
        path: PathBuf,
        /// Why (it names the path).
        cause: FileError,
    },
    /// The file has no non-whitespace content.
    #[error("corpus {} is empty (or whitespace only)", path.display())]
    Empty {
        /// The corpus path.
        path: PathBuf,
    },
    /// The file is UTF-16 or UTF-32 (it starts with their byte-order mark).
    #[error(
        "corpus {} is {bom}; save it as UTF-8",
        path.display()
    )]
    Utf16 {
        /// The corpus path.
        path: PathBuf,
        /// The mark, as hex bytes.
        bom: &'static str,
    },
    /// The file contains a NUL byte, so it is almost certainly not text.
    #[error("corpus {} looks binary: NUL byte at byte offset {offset}", path.display())]
    BinaryNul {
        /// The corpus path.
        path: PathBuf,
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// Too many control characters for a text file.
    #[error(
        "corpus {} looks binary: {:.1}% of bytes are control characters (first at byte offset {first_offset})",
        path.display(), fraction * 100.0
    )]
    BinaryControl {
        /// The corpus path.
        path: PathBuf,
        /// Fraction of bytes that are control characters.
        fraction: f64,
        /// Byte offset of the first control character.
        first_offset: usize,
    },
    /// The file is not valid UTF-8.
    #[error(
        "corpus {} is not UTF-8: invalid byte at line {line}, column {column} (byte offset {offset})",
        path.display()
    )]
    NotUtf8 {
        /// The corpus path.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column of the first invalid byte, counted in bytes.
        column: usize,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
}

/// A corpus file's text with its line endings made `"\n"`, and how many were not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorpusText {
    /// The text.
    pub text: String,
    /// `"\r\n"` line endings read as `"\n"` (Windows).
    pub crlf: usize,
    /// Lone `"\r"` line endings read as `"\n"` (classic Mac OS).
    pub lone_cr: usize,
}

impl CorpusText {
    /// A note naming the file and the line endings changed, or `None` when there were none.
    pub fn line_end_note(&self, path: &Path) -> Option<String> {
        let said: Vec<String> = [(self.crlf, "CR LF"), (self.lone_cr, "lone CR")]
            .into_iter()
            .filter(|&(n, _)| n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        (!said.is_empty()).then(|| {
            format!(
                "{}: {} line endings read as LF (newline)",
                path.display(),
                said.join(" and ")
            )
        })
    }
}

/// Read a corpus file as text, rejecting empty, binary and non-UTF-8 files, and normalising
/// `"\r\n"` and `"\r"` line endings to `"\n"` ([`read_corpus`] without the counts).
pub fn load_corpus(path: &Path) -> Result<String, CorpusError> {
    read_corpus(path).map(|c| c.text)
}

/// [`read_corpus`]'s text, its line-end note (if any) pushed onto `notes`.
pub fn read_corpus_noting(path: &Path, notes: &mut Vec<String>) -> Result<String, CorpusError> {
    let read = read_corpus(path)?;
    notes.extend(read.line_end_note(path));
    Ok(read.text)
}

/// Read a corpus file as text, rejecting empty, binary and non-UTF-8 files, and normalising
/// `"\r\n"` and `"\r"` line endings to `"\n"`, counted.
pub fn read_corpus(path: &Path) -> Result<CorpusText, CorpusError> {
    let bytes = read_bytes(path, MAX_CORPUS_BYTES, "a corpus").map_err(|cause| {
        CorpusError::Unreadable {
            path: path.to_path_buf(),
            cause,
        }
    })?;
    // Editors on Windows save UTF-8 with a byte-order mark; it is not part of the text.
    let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => bytes,
    };
    let path_buf = || path.to_path_buf();
    // UTF-32's marks first: FF FE 00 00 also begins with UTF-16's (it was called UTF-16).
    for (mark, bom) in [
        (
            &b"\xFF\xFE\x00\x00"[..],
            "UTF-32 text (byte-order mark FF FE 00 00)",
        ),
        (
            &b"\x00\x00\xFE\xFF"[..],
            "UTF-32 text (byte-order mark 00 00 FE FF)",
        ),
        (&b"\xFF\xFE"[..], "UTF-16 text (byte-order mark FF FE)"),
        (&b"\xFE\xFF"[..], "UTF-16 text (byte-order mark FE FF)"),
    ] {
        if bytes.starts_with(mark) {
            return Err(CorpusError::Utf16 {
                path: path_buf(),
                bom,
            });
        }
    }
    if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(CorpusError::BinaryNul {
            path: path_buf(),
            offset,
        });
    }
    let is_control = |b: &u8| b.is_ascii_control() && !matches!(b, b'\n' | b'\r' | b'\t' | 0x0c);
    let controls = bytes.iter().filter(|b| is_control(b)).count();
    let fraction = controls as f64 / bytes.len().max(1) as f64;
    if fraction > MAX_CONTROL_FRACTION {
        let first_offset = bytes.iter().position(is_control).unwrap_or(0);
        return Err(CorpusError::BinaryControl {
            path: path_buf(),
            fraction,
            first_offset,
        });
    }
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(err) => {
            let offset = err.utf8_error().valid_up_to();
            let (line, column) = line_column(err.as_bytes(), offset);
            return Err(CorpusError::NotUtf8 {
                path: path_buf(),
                line,
                column,
                offset,
            });
        }
    };
    if text.trim().is_empty() {
        return Err(CorpusError::Empty { path: path_buf() });
    }
    // Windows ends lines with CR LF, classic Mac OS with CR alone: both are line breaks.
    let crlf = text.matches("\r\n").count();
    let text = if crlf > 0 {
        text.replace("\r\n", "\n")
    } else {
        text
    };
    let lone_cr = text.matches('\r').count();
    let text = if lone_cr > 0 {
        text.replace('\r', "\n")
    } else {
        text
    };
    Ok(CorpusText {
        text,
        crlf,
        lone_cr,
    })
}

/// 1-based (line, byte column) of byte `offset` in `bytes`.
pub fn line_column(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = bytes.get(..offset).unwrap_or(bytes);
    let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - line_start + 1)
}

/// Number of leading tokens used for training; the rest is validation. Matches the reference
/// trainer's `int(0.9 * len(data))` exactly (same f64 rounding, truncation toward zero).
pub fn train_val_split(n: usize) -> usize {
    (0.9_f64 * n as f64) as usize
}

/// Start offsets of the `batch` rows of training step `step`, each row `seq` tokens long (plus
/// one target token), over a training split of `n_train` tokens.
///
/// Row `b` of step `s` starts at `((s * batch + b) * seq) mod (n_train - seq - 1)`, exactly as
/// the reference trainer computes it (with Python's unbounded integers; here the product is
/// reduced modulo first, so it never overflows). Returns an empty vector when
/// `n_train <= seq + 1`, because no window of `seq + 1` tokens then fits.
pub fn sequential_offsets(step: usize, batch: usize, seq: usize, n_train: usize) -> Vec<usize> {
    let Some(span) = n_train
        .checked_sub(seq.saturating_add(1))
        .filter(|&m| m > 0)
    else {
        return Vec::new();
    };
    let m = span as u128;
    let (s, bt, t) = (step as u128 % m, batch as u128 % m, seq as u128 % m);
    (0..batch)
        .map(|b| {
            let row = (s * bt + b as u128) % m;
            // Both factors are < m <= usize::MAX, so the result fits back in usize.
            ((row * t) % m) as usize
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carriage_returns_alone_or_before_a_newline_end_lines() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("mac.txt");
        std::fs::write(&path, "one two\rthree\r\nfour\r").unwrap_or_else(|e| panic!("{e}"));
        let text = load_corpus(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, "one two\nthree\nfour\n");
    }

    #[test]
    fn line_column_counts_from_one() {
        // "ab\ncd": byte 4 is 'd', on line 2, column 2.
        assert_eq!(line_column(b"ab\ncd", 4), (2, 2));
        assert_eq!(line_column(b"ab\ncd", 0), (1, 1));
        assert_eq!(line_column(b"ab\ncd", 3), (2, 1));
    }

    #[test]
    fn offsets_match_python_for_huge_steps() {
        // Python: [((10**15 * 4 + b) * 8) % (100 - 8 - 1) for b in range(4)] == [59, 67, 75, 83]
        let step = 1_000_000_000_000_000usize;
        assert_eq!(sequential_offsets(step, 4, 8, 100), vec![59, 67, 75, 83]);
    }
}
