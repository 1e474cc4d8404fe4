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
