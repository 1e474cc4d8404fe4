//! The model: configuration, blocks, the dial as biases, the candle transformer, capture and
//! checkpoints.

pub mod attention;
pub mod backend;
pub mod blocks;
pub mod blocks_check;
pub mod capture;
pub mod capture_data;
pub mod capture_layout;
pub mod capture_memory;
pub(crate) mod capture_rows;
pub mod capture_stream;
pub mod checkpoint;
pub mod checkpoint_error;
pub mod checkpoint_read;
pub mod config;
pub mod dial;
pub mod finite;
pub mod fused;
pub mod gelu;
pub mod masks;
pub mod native;
pub mod native_view;
pub mod params;
pub mod transformer;
pub mod weak_map;
pub mod weights_file;

pub use attention::AttentionBias;
pub use backend::{AttentionModel, ModelDims};
pub use blocks::{BlockMap, SequenceMasks};
pub use capture::{capture, Capture, HeadCapture};
pub use checkpoint::{load_checkpoint, save_checkpoint, Checkpoint, CheckpointMeta};
pub use config::ModelConfig;
pub use dial::DialSetting;
pub use transformer::{ForwardOptions, LocalistModel};
