//! One run at a time per output folder. Two runs given the same `--out` both trained, both
//! said they had saved, and the later save silently replaced the earlier (a review found it).
//! A run now holds an advisory lock on `.NAME.lock` beside its output folder for as long as
//! it writes there; a second run is refused at once, naming the process that holds it. The
//! operating system drops the lock when the process ends however it ends, so a killed run
//! leaves no lock behind (at most the empty file, which the next run takes over).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The lock on an output folder, held until dropped (the lock file is then removed).
#[derive(Debug)]
pub struct OutLock {
    file: File,
    path: PathBuf,
}

impl OutLock {
    /// Take the lock on `out` (a folder or file a run will write), or say which run holds it.
    /// The message follows the path ("PATH: …"): callers put the path first.
    pub fn take(out: &Path) -> Result<Self, String> {
        crate::engine::outputs::check_names_itself(out)?;
        let name = out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        let path = parent.join(format!(".{name}.lock"));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot create the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {
                // Whose it is, for the message a second run prints; the lock is what counts.
                let _ = file
                    .set_len(0)
                    .and_then(|()| file.write_all(std::process::id().to_string().as_bytes()));
                Ok(Self { file, path })
            }
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.rewind().and_then(|()| file.read_to_string(&mut pid));
                let who = match pid.trim() {
                    p if !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) => {
                        format!("process {p}")
                    }
                    _ => "another process".into(),
                };
                Err(format!(
                    "another run ({who}) is writing there now (it holds {}); wait for it to \
                     end, or choose another output",
                    path.display()
                ))
            }
            Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
        }
    }
}

impl Drop for OutLock {
    fn drop(&mut self) {
        // Removed while still held, so no run can take the old file after this one lets go.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::OutLock;

    #[test]
    fn a_second_run_on_one_output_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("model");
        let first = OutLock::take(&out).unwrap();
        let lock_file = dir.path().join(".model.lock");
        assert!(lock_file.is_file());
        let err = OutLock::take(&out).unwrap_err();
        assert!(
            err.contains(&format!("process {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains(".model.lock"), "{err}");
        // Another output beside it is free.
        let other = OutLock::take(&dir.path().join("model2")).unwrap();
        drop(first);
        assert!(!lock_file.exists());
        let again = OutLock::take(&out).unwrap();
        drop((again, other));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_lock_file_left_by_a_killed_run_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".m.lock"), "999999").unwrap();
        let lock = OutLock::take(&dir.path().join("m")).unwrap();
        drop(lock);
        assert!(!dir.path().join(".m.lock").exists());
    }
}
