//! Writing result files atomically (temp file + rename), so a failed run leaves no partial file.

pub use crate::engine::export::write_atomic;
