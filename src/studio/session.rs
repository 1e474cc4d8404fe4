//! Session files: what a user needs to come back to the same view — the checkpoint and its
//! hash, the dial, the text, the layout, the training settings and (later) the rules — as a
//! versioned JSON file written atomically. The same format backs the autosave, and a marker
//! file tells the next start whether the studio closed cleanly, so it can offer to restore.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::compare::CompareSide;
use crate::engine::export::write_atomic;
use crate::engine::figures::Colormap;
use crate::engine::DialSetting;
use crate::studio::session_marker::{keep_audit_copy, marker_text, process_alive};
use crate::studio::settings::RunSettings;
use crate::studio::tab::Tab;

/// The `format` field of every session file.
pub const SESSION_FORMAT: &str = "localist-session";
/// Version of the session layout this build writes (and the newest it reads).
pub const SESSION_VERSION: u32 = 1;
/// File extension offered by the dialogs.
pub const SESSION_EXTENSION: &str = "localist-session.json";

/// A checkpoint a session refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRef {
    /// Its directory.
    pub path: PathBuf,
    /// SHA-256 of its contents when the session was saved.
    pub sha256: String,
}

/// How the window was arranged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Layout {
    /// The central view.
    pub tab: Tab,
    /// The enlarged head (layer, head).
    pub focus: Option<(usize, usize)>,
    /// Block-aggregated heatmaps.
    pub aggregated: bool,
    /// Heatmap colormap.
    pub colormap: Colormap,
    /// The two sides of the Compare panel.
    pub compare: [CompareSide; 2],
}

impl Default for Layout {
    fn default() -> Self {
        Self {
            tab: Tab::Attention,
            focus: None,
            aggregated: false,
            colormap: Colormap::Viridis,
            compare: default_compare(),
        }
    }
}

/// λ = 0 against λ = 1 on the current model.
pub fn default_compare() -> [CompareSide; 2] {
    [CompareSide::current_at(0.0), CompareSide::current_at(1.0)]
}

/// Everything a session file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionFile {
    /// Always [`SESSION_FORMAT`].
    pub format: String,
    /// Layout version.
    pub version: u32,
    /// Seconds since the Unix epoch when it was written.
    #[serde(default)]
    pub saved_at_unix: u64,
    /// The model, when it was loaded from (or saved to) a checkpoint.
    pub checkpoint: Option<CheckpointRef>,
    /// The inference dial.
    pub dial: DialSetting,
    /// The captured text.
    pub text: String,
    /// The window's arrangement.
    #[serde(default)]
    pub layout: Layout,
    /// Settings of the next training run.
    #[serde(default)]
    pub run_settings: RunSettings,
    /// Rule sources, one string per rule file (empty when no rules are in force).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Ids of rules switched off.
    #[serde(default)]
    pub rules_off: Vec<String>,
    /// The hash-chained log of rule changes.
    #[serde(default)]
    pub audit_log: crate::engine::audit::AuditLog,
}

impl SessionFile {
    /// A session of the given parts, stamped now.
    pub fn new(
        checkpoint: Option<CheckpointRef>,
        dial: DialSetting,
        text: String,
        layout: Layout,
        run_settings: RunSettings,
    ) -> Self {
        let saved_at_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Self {
            format: SESSION_FORMAT.into(),
            version: SESSION_VERSION,
            saved_at_unix,
            checkpoint,
            dial,
            text,
            layout,
            run_settings,
            rules: Vec::new(),
            rules_off: Vec::new(),
            audit_log: Default::default(),
        }
    }

    /// The same session with the rules in force (text, switched-off ids) and the audit log.
    pub fn with_rules(
        mut self,
        text: String,
        off: Vec<String>,
        log: crate::engine::audit::AuditLog,
    ) -> Self {
        self.rules = if text.trim().is_empty() {
            Vec::new()
        } else {
            vec![text]
        };
        self.rules_off = off;
        self.audit_log = log;
        self
    }

    /// The JSON text of the session.
    pub fn to_json(&self) -> Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Parse a session; `origin` names the file in errors.
    pub fn from_json(text: &str, origin: &Path) -> Result<Self> {
        // Read the header first, so a newer layout gets a version error rather than a
        // confusing field error.
        let header: serde_json::Value = serde_json::from_str(text)
            .with_context(|| format!("{}: not a JSON file", origin.display()))?;
        let format = header.get("format").and_then(|f| f.as_str());
        if format != Some(SESSION_FORMAT) {
            bail!(
                "{}: not a Localist session (its \"format\" is {:?}, expected {SESSION_FORMAT:?})",
                origin.display(),
                format.unwrap_or("missing")
            );
        }
        let version = header.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version == 0 || version > u64::from(SESSION_VERSION) {
            bail!(
                "{}: session version {version} is not supported (this studio reads 1 to \
                 {SESSION_VERSION}); update the studio",
                origin.display()
            );
        }
        let session: Self =
            serde_json::from_value(header).with_context(|| format!("{}", origin.display()))?;
        let most = crate::studio::text::MAX_TEXT_CHARS;
        let chars = session.text.chars().count();
        if chars > most {
            bail!(
                "{}: its text has {chars} characters, more than the {most} the studio holds",
                origin.display()
            );
        }
        // The model is not known yet: a per-layer schedule is checked value by value here; the
        // dial panel fits its length to the model's layers.
        let dials = std::iter::once(("dial", &session.dial)).chain(
            ["compare side 1's dial", "compare side 2's dial"]
                .into_iter()
                .zip(session.layout.compare.iter().map(|c| &c.dial)),
        );
        for (what, dial) in dials {
            let layers = match &dial.schedule {
                crate::engine::LayerSchedule::PerLayer(v) => v.len(),
                _ => 1,
            };
            crate::engine::check_dial(dial, layers)
                .map_err(|m| anyhow::anyhow!("{}: {what}: {m}", origin.display()))?;
        }
        Ok(session)
    }
}

/// Write a session atomically (a crash mid-write leaves the previous file intact).
pub fn save_session(path: &Path, session: &SessionFile) -> Result<()> {
    write_atomic(path, session.to_json()?.as_bytes())
}

/// Largest session file read (the audit log grows with every rule change; real sessions are
/// kilobytes).
pub const MAX_SESSION_BYTES: u64 = 64 << 20;

/// Read a session file (a regular file of at most [`MAX_SESSION_BYTES`]; errors name it).
pub fn load_session(path: &Path) -> Result<SessionFile> {
    let text = crate::engine::files::read_text(path, MAX_SESSION_BYTES, "a session file")?;
    SessionFile::from_json(&text, path)
}

/// What the autosave found at start.
#[derive(Debug, Default)]
pub struct AutosaveStart {
    /// The session to offer back: the last studio did not close cleanly.
    pub offer: Option<SessionFile>,
    /// The autosave could not be read: why, and where it was kept aside (it is never deleted
    /// and never silently overwritten).
    pub kept_aside: Option<String>,
    /// The autosave held audit entries: the copy kept before this studio writes over it, and
    /// how many entries it holds.
    pub kept_audit: Option<(PathBuf, usize)>,
}

/// Move an unreadable file out of the way, to `NAME.corrupt-<unix time>` beside it; returns
/// the new path.
pub fn keep_aside(path: &Path) -> Result<PathBuf> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".corrupt-{now}"));
    let aside = path.with_file_name(name);
    std::fs::rename(path, &aside).with_context(|| {
        format!(
            "{} could not be read and could not be moved aside to {}",
            path.display(),
            aside.display()
        )
    })?;
    Ok(aside)
}

/// The autosave: a session file written every few seconds when something changed, and a
/// marker that exists while a studio runs. A marker left by a process that is gone means the
/// studio did not close cleanly, and the next start offers the autosaved session back.
#[derive(Clone, Debug)]
pub struct Autosave {
    dir: PathBuf,
    last_written: Option<String>,
    last_check: Option<std::time::Instant>,
}

/// How often the autosave looks for changes.
pub const AUTOSAVE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Autosave {
    /// Autosave into `dir` (created when needed).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            last_written: None,
            last_check: None,
        }
    }

    /// The autosaved session file.
    pub fn session_path(&self) -> PathBuf {
        self.dir.join("autosave.localist-session.json")
    }

    fn marker_path(&self) -> PathBuf {
        self.dir.join("running.pid")
    }

    /// At start: the session to offer back when the last studio did not close cleanly (its
    /// marker is there and its process is gone), then mark this one as running. An autosave
    /// that cannot be read is moved aside (`NAME.corrupt-<unix time>`) and reported; when it
    /// cannot even be moved, this fails, so the autosave stays off and never overwrites it.
    pub fn start(&mut self) -> Result<AutosaveStart> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let marker = self.marker_path();
        let crashed = match std::fs::read_to_string(&marker) {
            Ok(pid) => !process_alive(pid.trim()),
            Err(_) => false,
        };
        let mut found = AutosaveStart::default();
        let path = self.session_path();
        if path.symlink_metadata().is_ok() {
            match load_session(&path) {
                Ok(session) => {
                    // This studio will write over it: an audit log in it is kept first.
                    found.kept_audit = keep_audit_copy(
                        &path,
                        session.audit_log.entries.len(),
                        session.saved_at_unix,
                    )?
                    .map(|copy| (copy, session.audit_log.entries.len()));
                    if crashed {
                        found.offer = Some(session);
                    }
                }
                Err(e) => {
                    let aside = keep_aside(&path)?;
                    found.kept_aside = Some(format!(
                        "the autosaved session could not be read ({e:#}); it was kept as {}",
                        aside.display()
                    ));
                }
            }
        }
        write_atomic(&marker, marker_text().as_bytes())?;
        // The first write waits one period like every later one, so a studio that is closed
        // or crashes right after start leaves the file it found (or kept aside) alone.
        self.last_check = Some(std::time::Instant::now());
        Ok(found)
    }

    /// Write `session` if it differs from the last write and [`AUTOSAVE_EVERY`] has passed
    /// (`force` skips the wait). Returns true when it wrote.
    pub fn tick(&mut self, session: &SessionFile, force: bool) -> Result<bool> {
        if !force
            && self
                .last_check
                .is_some_and(|t| t.elapsed() < AUTOSAVE_EVERY)
        {
            return Ok(false);
        }
        self.last_check = Some(std::time::Instant::now());
        // Compare without the time stamp, which changes on every call.
        let mut unstamped = session.clone();
        unstamped.saved_at_unix = 0;
        let key = unstamped.to_json()?;
        if self.last_written.as_deref() == Some(key.as_str()) {
            return Ok(false);
        }
        save_session(&self.session_path(), session)?;
        self.last_written = Some(key);
        Ok(true)
    }

    /// A clean exit: remove the marker so the next start offers nothing.
    pub fn finish(&self) {
        let _ = std::fs::remove_file(self.marker_path());
    }
}
