//! Third-party code that panics on some malformed input (the `tokenizers` crate's
//! deserializers call `expect` on what a hostile `tokenizer.json` holds) runs through
//! [`contained`]: a panic becomes an error the caller words, and its message is not printed
//! (a user sees one clear error naming the file, not a panic trace).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs contained code: the panic hook stays quiet.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Run `f`; a panic inside it is caught and returned as its message. Other threads' panics
/// are reported as before (the previous hook runs for them).
pub fn contained<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let out = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    out.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "an internal error".to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_its_message_and_a_value_passes_through() {
        assert_eq!(contained(|| 7), Ok(7));
        let r: Result<(), String> = contained(|| panic!("bad {}", 1));
        assert_eq!(r, Err("bad 1".to_string()));
        let r: Result<(), String> = contained(|| std::panic::panic_any(3_u8));
        assert_eq!(r, Err("an internal error".to_string()));
    }
}
