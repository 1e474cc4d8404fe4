//! A bounded reader for the GGUF header check ([`super::header`]): it knows its position and
//! the file's size, so every length is checked against the bytes actually left before a buffer
//! is sized by it, and every error says what was being read and where.

use std::io::Read;

/// A reader that knows where it is and how much of the file is left.
pub struct Cursor<R> {
    /// The file.
    pub inner: R,
    /// Bytes read so far.
    pub pos: u64,
    /// Bytes in the file.
    pub size: u64,
    /// Lengths and counts are u64 (v2, v3) rather than u32 (v1).
    pub wide: bool,
}

impl<R: Read> Cursor<R> {
    /// Bytes left after the position.
    pub fn left(&self) -> u64 {
        self.size.saturating_sub(self.pos)
    }

    /// An error unless `n` bytes are left for `what`.
    pub fn need(&self, n: u64, what: &str) -> Result<(), String> {
        if n > self.left() {
            return Err(format!(
                "{what} needs {n} bytes at offset {}, but the file ends {} bytes later \
                 (truncated or damaged)",
                self.pos,
                self.left()
            ));
        }
        Ok(())
    }

    /// The next `N` bytes.
    pub fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], String> {
        self.need(N as u64, what)?;
        let mut b = [0u8; N];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| format!("reading {what}: {e}"))?;
        self.pos += N as u64;
        Ok(b)
    }

    /// A little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length or count: u64, or u32 in v1.
    pub fn len(&mut self, what: &str) -> Result<u64, String> {
        if self.wide {
            self.u64(what)
        } else {
            self.u32(what).map(u64::from)
        }
    }

    /// Bytes of a length or count.
    pub fn len_size(&self) -> u64 {
        if self.wide {
            8
        } else {
            4
        }
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: u64, what: &str) -> Result<(), String> {
        self.need(n, what)?;
        let copied = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink())
            .map_err(|e| format!("reading {what}: {e}"))?;
        if copied != n {
            return Err(format!("{what}: the file ended early"));
        }
        self.pos += n;
        Ok(())
    }

    /// A length-prefixed string of at most `max` bytes.
    pub fn string(&mut self, what: &str, max: u64) -> Result<String, String> {
        let n = self.len(what)?;
        if n > max {
            return Err(format!(
                "{what} is {n} bytes long, more than the {max} allowed"
            ));
        }
        self.need(n, what)?;
        let mut b = vec![0u8; usize::try_from(n).map_err(|e| e.to_string())?];
        self.inner
            .read_exact(&mut b)
            .map_err(|e| format!("reading {what}: {e}"))?;
        self.pos += n;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    /// Skip a length-prefixed string.
    pub fn skip_string(&mut self, what: &str) -> Result<(), String> {
        let n = self.len(what)?;
        self.skip(n, what)
    }
}
