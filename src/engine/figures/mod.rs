//! Figures and tables, drawn the same way for both faces: colormaps, heatmap pixels, PNG
//! encoding, the audit report's figures, and the one CSV/Markdown table writer. Nothing here
//! knows egui or candle: the studio turns these pixels into textures, the command line writes
//! them to files.

pub mod colormap;
pub mod heatmap;
pub mod png;
pub mod report;
pub mod table;

pub use colormap::Colormap;
pub use heatmap::{head_pixels, head_png, MASKED};
pub use png::{rgb_png, rgba_png};
pub use report::{report_figures, Figure};
pub use table::{csv_escape, or_dash, TableFormat, TableWriter};
