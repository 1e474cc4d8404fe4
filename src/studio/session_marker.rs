//! The autosave's crash marker and the copy kept of an audit log: whether the studio that wrote
//! a marker still runs (its process exists, is not a zombie, and started when the marker says),
//! and a copy of an autosave holding audit entries before a new studio writes over it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// What the marker holds: this process's id and its start time (clock ticks after boot,
/// `/proc/self/stat` field 22), so a later process that reuses the id is not taken for it.
pub(crate) fn marker_text() -> String {
    let pid = std::process::id();
    match start_ticks(pid) {
        Some(t) => format!("{pid} {t}"),
        None => pid.to_string(),
    }
}

/// State (field 3) and start time (field 22) of process `pid` from `/proc/PID/stat`.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: read after the last ')'.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

fn start_ticks(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|(_, t)| t)
}

/// Whether the studio that wrote `marker` still runs: its process exists, is not a zombie
/// (a `kill -9`ed process stays in /proc until its parent reaps it) and started when the
/// marker says. Off Linux, assume not, so a stale marker offers a restore the user can decline.
pub(crate) fn process_alive(marker: &str) -> bool {
    let mut parts = marker.split_whitespace();
    let Some(Ok(pid)) = parts.next().map(str::parse::<u32>) else {
        return false;
    };
    if pid == std::process::id() {
        return true;
    }
    let Some((state, start)) = proc_stat(pid) else {
        return false;
    };
    let same_start = parts
        .next()
        .and_then(|t| t.parse::<u64>().ok())
        .is_none_or(|t| t == start);
    !matches!(state, 'Z' | 'X' | 'x') && same_start
}

/// Keep a copy of an autosave that holds audit entries before a new studio writes over it:
/// `NAME.<saved_at>.keep` beside it, the five newest kept. `audit_entries` is how many entries
/// the autosave holds (no copy when none) and `saved_at_unix` when it was written. Returns the copy.
pub(crate) fn keep_audit_copy(
    path: &Path,
    audit_entries: usize,
    saved_at_unix: u64,
) -> Result<Option<PathBuf>> {
    if audit_entries == 0 {
        return Ok(None);
    }
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{saved_at_unix}.keep"));
    let copy = path.with_file_name(name);
    std::fs::copy(path, &copy)
        .with_context(|| format!("keeping a copy of {} as {}", path.display(), copy.display()))?;
    let stem = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    if let Some(dir) = path.parent() {
        let mut kept: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name().is_some_and(|n| {
                            let n = n.to_string_lossy();
                            n.starts_with(&stem) && n.ends_with(".keep")
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        kept.sort();
        let excess = kept.len().saturating_sub(5);
        for old in kept.into_iter().take(excess) {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(Some(copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zombie_or_a_reused_pid_is_not_the_studio_that_wrote_the_marker() {
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let pid = live.id();
        let start = start_ticks(pid).unwrap_or_else(|| panic!("no /proc/{pid}/stat"));
        assert!(process_alive(&format!("{pid} {start}")));
        assert!(
            process_alive(&pid.to_string()),
            "an old marker without a start time"
        );
        assert!(
            !process_alive(&format!("{pid} {}", start + 1)),
            "the id was reused"
        );
        // Killed and not yet reaped: a zombie, still in /proc.
        live.kill().unwrap_or_else(|e| panic!("{e}"));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(proc_stat(pid).map(|(s, _)| s), Some('Z'));
        assert!(!process_alive(&format!("{pid} {start}")));
        let _ = live.wait();
        assert!(!process_alive(&format!("{pid} {start}")));
        assert!(process_alive(&marker_text()));
        assert!(!process_alive("not a pid"));
    }
}
