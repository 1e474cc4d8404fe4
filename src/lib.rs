//! Localist Studio: a locality dial, semantic blocks, rules and derived bounds for transformer
//! attention (see `README.md` and `SPEC.md`).
//!
//! Arrows point one way: `analysis` (pure math) ← `model` (candle) ← `data`, `train` ←
//! `engine` (whole jobs the CLI and the studio start) ← `cli`.

#![warn(missing_docs)]

/// The allocator of every binary that links the library (the app, tests and benches), so they
/// measure what users run: freed tensors' pages are kept for the next step (see Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its enum's value in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed memory for reuse instead of returning it to the OS: training steps free and
/// allocate the same large tensors every step, and pages handed back come back zeroed (a
/// SmolLM2 fine-tuning step: 9.1 s → 5.8 s). Call once, first thing.
pub fn keep_freed_memory() {
    // SAFETY: sets an integer option of the allocator; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

pub mod analysis;
pub mod cli;
pub mod contained;
pub mod data;
pub mod engine;
pub mod files;
pub mod hf;
pub mod model;
pub mod rules;
#[cfg(feature = "studio")]
pub mod studio;
pub mod train;
