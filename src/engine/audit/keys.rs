//! The signing key that seals audit reports, and the public keys a verifier trusts.
//!
//! The key is an Ed25519 secret of 32 bytes drawn from the operating system, kept as hex in
//! `signing_key` in the user's config folder (`$LOCALIST_CONFIG_DIR`, else
//! `$XDG_CONFIG_HOME/localist-studio`, else `$HOME/.config/localist-studio`). It is created on
//! first use with mode 0600, and a key file that others can read is refused: a key anyone can
//! read proves nothing. Trusted public keys are hex, one a line (`#` starts a comment), in a
//! file given with `--key` or in `trusted_keys` in the same folder.

use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::files::{read_text, FileError};

/// The environment variable that overrides the config folder (tests use it).
pub const CONFIG_DIR_ENV: &str = "LOCALIST_CONFIG_DIR";
/// The signing key's file name in the config folder.
pub const SIGNING_KEY_FILE: &str = "signing_key";
/// The trusted public keys' file name in the config folder.
pub const TRUSTED_KEYS_FILE: &str = "trusted_keys";
/// Largest key file read (a key is 64 hex digits; a list of trusted keys a few lines).
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Neither `LOCALIST_CONFIG_DIR`, `XDG_CONFIG_HOME` nor `HOME` names a folder.
    #[error("no config folder for the signing key: set HOME, XDG_CONFIG_HOME or {CONFIG_DIR_ENV}")]
    NoConfigDir,
    /// The key file can be read by others.
    #[error("{}: the signing key is readable by others (mode {mode:03o}); it must be private: run `chmod 600 {}`", path.display(), path.display())]
    Exposed {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Not 64 hex digits.
    #[error("{}: {what}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// The folder or file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The operating system gave no random bytes.
    #[error("no random bytes from the operating system for a new signing key: {0}")]
    Random(String),
}

/// The config folder: `$LOCALIST_CONFIG_DIR`, else `$XDG_CONFIG_HOME/localist-studio`, else
/// `$HOME/.config/localist-studio`.
pub fn config_dir() -> Result<PathBuf, KeyError> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var(CONFIG_DIR_ENV) {
        return Ok(dir);
    }
    if let Some(xdg) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Ok(xdg.join("localist-studio"));
    }
    var("HOME")
        .map(|home| home.join(".config").join("localist-studio"))
        .ok_or(KeyError::NoConfigDir)
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string (either case), or why not.
pub fn from_hex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("{} hex digits (an odd number)", s.len()));
    }
    (0..s.len())
        .step_by(2)
        .map(|k| {
            s.get(k..k + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("not hexadecimal at character {}", k + 1))
        })
        .collect()
}

/// The user's signing key, created (mode 0600) on first use.
pub fn user_signing_key() -> Result<SigningKey, KeyError> {
    let path = config_dir()?.join(SIGNING_KEY_FILE);
    match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_signing_key(&path),
        _ => read_signing_key(&path),
    }
}

/// The user's public key, as hex (the key is created on first use).
pub fn user_public_key_hex() -> Result<String, KeyError> {
    Ok(to_hex(user_signing_key()?.verifying_key().as_bytes()))
}

/// Read a signing key file: a private regular file holding 64 hex digits.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = read_text(path, MAX_KEY_FILE_BYTES, "a signing key")?;
    refuse_exposed(path)?;
    let malformed = |what: String| KeyError::Malformed {
        path: path.to_path_buf(),
        what,
    };
    let bytes = from_hex(text.trim()).map_err(|e| malformed(format!("not a signing key: {e}")))?;
    let secret: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        malformed(format!(
            "not a signing key: {} bytes, an Ed25519 secret has 32",
            bytes.len()
        ))
    })?;
    Ok(SigningKey::from_bytes(&secret))
}

/// Refuse a key file whose mode lets the group or others read or write it.
#[cfg(unix)]
fn refuse_exposed(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn refuse_exposed(_path: &Path) -> Result<(), KeyError> {
    Ok(())
}

/// Make a new key from the operating system's randomness and write it at `path` (mode 0600),
/// atomically: written beside it, then linked into place, so a concurrent first use reads
/// either nothing or the whole key (and the one that loses the race reads the winner's).
fn create_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| KeyError::Io { path: p, source }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    private_dir_builder().create(dir).map_err(io(dir))?;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| KeyError::Random(e.to_string()))?;
    let key = SigningKey::from_bytes(&secret);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(
        ".{SIGNING_KEY_FILE}.{}.{nanos}",
        std::process::id()
    ));
    let written = write_private(&tmp, format!("{}\n", to_hex(&secret)).as_bytes());
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_signing_key(path),
        Err(e) => Err(io(path)(e)),
    }
}

/// A folder builder that makes missing folders private (0700) on Unix.
fn private_dir_builder() -> std::fs::DirBuilder {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b
}

/// Write a new file only its owner can read (0600 on Unix).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Public keys a verifier trusts, and the file they came from.
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    /// The file.
    pub source: PathBuf,
    /// The keys.
    pub keys: Vec<VerifyingKey>,
}

impl TrustedKeys {
    /// Read a file of public keys: hex, one a line; blank lines and `#` comments skipped.
    pub fn read(path: &Path) -> Result<Self, KeyError> {
        let text = read_text(path, MAX_KEY_FILE_BYTES, "a public key file")?;
        let mut keys = Vec::new();
        for (k, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let key = parse_public_key(line).map_err(|e| KeyError::Malformed {
                path: path.to_path_buf(),
                what: format!("line {}: {e}", k + 1),
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(KeyError::Malformed {
                path: path.to_path_buf(),
                what: "no public key in it (hex, one a line)".into(),
            });
        }
        Ok(Self {
            source: path.to_path_buf(),
            keys,
        })
    }

    /// The config folder's `trusted_keys`, when there is one.
    pub fn from_config() -> Result<Option<Self>, KeyError> {
        let path = config_dir()?.join(TRUSTED_KEYS_FILE);
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(None);
        }
        Self::read(&path).map(Some)
    }

    /// Whether `key` is one of them.
    pub fn contains(&self, key: &VerifyingKey) -> bool {
        self.keys.iter().any(|k| k == key)
    }
}

/// An Ed25519 public key from its hex, or why not.
pub fn parse_public_key(hex: &str) -> Result<VerifyingKey, String> {
    let bytes = from_hex(hex.trim())?;
    let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "{} bytes, an Ed25519 public key has 32 (64 hex digits)",
            bytes.len()
        )
    })?;
    VerifyingKey::from_bytes(&arr).map_err(|_| "not a valid Ed25519 public key".to_string())
}
