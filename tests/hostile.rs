//! The corpus of crafted bad inputs (`tests/hostile/`): every case runs the real binary on a
//! broken or hostile file or flag and must end in a clear error, never a panic, a hang, a
//! memory blow-up or a silent success.
//!
//! Each case is a folder `tests/hostile/NAME/` holding the crafted files and a `case.json`:
//!
//! ```json
//! { "why": "GGUF general.alignment = 0: candle's reader divides by it",
//!   "args": ["eval", "-c", "{case}/model.gguf", "--lambda", "0"],
//!   "expect": ["model.gguf", "alignment"] }
//! ```
//!
//! `{case}` in an argument is replaced by the case folder, `{tmp}` by a fresh temporary folder
//! and `{samples}` by `sample_models/`. The run must exit non-zero (or with `"exit": 0` when
//! the input must be accepted), its stderr must contain every `expect` fragment (ignoring
//! case), must not contain "panicked", and must stay under 64 KiB (errors are capped, not
//! listed by the million). Each run gets 8 GiB of address space (`ulimit -v`) and 120 s; a
//! blow-up or a hang fails the case with what it printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One crafted case, as `case.json` describes it.
#[derive(serde::Deserialize)]
struct Case {
    why: String,
    args: Vec<String>,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default = "failure")]
    exit: i32,
}

fn failure() -> i32 {
    1
}

const LIMIT: Duration = Duration::from_secs(120);

/// Run one case; `Err` says what went wrong.
fn run_case(dir: &Path) -> Result<(), String> {
    let case: Case = serde_json::from_str(
        &std::fs::read_to_string(dir.join("case.json")).map_err(|e| format!("case.json: {e}"))?,
    )
    .map_err(|e| format!("case.json: {e}"))?;
    let tmp = tempfile::tempdir().unwrap();
    let subst = |a: &str| {
        a.replace("{case}", &dir.display().to_string())
            .replace("{tmp}", &tmp.path().display().to_string())
            .replace("{samples}", &common::sample("").display().to_string())
    };
    let args: Vec<String> = case.args.iter().map(|a| subst(a)).collect();
    // 8 GiB of address space, as the review ran them.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 8388608 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_localist"))
        .args(&args)
        .env("CANDLE_NUM_THREADS", "1")
        .env("HOME", tmp.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start: {e}"))?;
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = (&mut stderr).take(1 << 20).read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {LIMIT:?} ({})", case.why));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let err_bytes = reader.join().unwrap();
    let err = String::from_utf8_lossy(&err_bytes);
    let tail: String = err.chars().take(600).collect();
    let code = status.code().unwrap_or(-1);
    if (case.exit == 0) != (code == 0) {
        return Err(format!("exit {code}, expected {} ({}): {tail}", case.exit, case.why));
    }
    if err.contains("panicked") {
        return Err(format!("panicked ({}): {tail}", case.why));
    }
    if err_bytes.len() >= 64 << 10 {
        return Err(format!("{} bytes of stderr ({})", err_bytes.len(), case.why));
    }
    let lower = err.to_lowercase();
    for want in &case.expect {
        if !lower.contains(&want.to_lowercase()) {
            return Err(format!("stderr lacks {want:?} ({}): {tail}", case.why));
        }
    }
    Ok(())
}

fn cases() -> Vec<PathBuf> {
    let root = common::root().join("tests/hostile");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    dirs.retain(|d| d.join("case.json").is_file());
    dirs.sort();
    dirs
}

#[test]
fn every_crafted_bad_input_gets_a_clear_error() {
    let dirs = cases();
    assert!(!dirs.is_empty(), "no cases under tests/hostile/");
    let only = std::env::var("HOSTILE_CASE").ok();
    let mut failed = Vec::new();
    let mut ran = 0;
    for d in &dirs {
        let name = d.file_name().unwrap().to_string_lossy().to_string();
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        ran += 1;
        if let Err(e) = run_case(d) {
            failed.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}
