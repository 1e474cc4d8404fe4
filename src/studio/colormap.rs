//! The colormaps live in the engine's figures module (the command line draws report figures
//! with them too); this path re-exports them for the studio.

pub use crate::engine::figures::colormap::Colormap;
