//! Model-level (hierarchical) recruitment, SPEC §10: a pool of specialists, each a localist
//! model with its own blocks, sharing the base's tokenizer and dial; documents routed to the
//! specialist that codes them in the fewest bits; and moves tried cheapest first, each kept
//! only when it lowers DL_total by more than δ bits (`grow.rs`):
//! 1. re-route documents ([`crate::analysis::mdl::reroute`]);
//! 2. recruit a block inside the specialist that serves the most bits, by the block-level
//!    machinery of [`crate::train::recruit`] run on its documents (`block_move.rs`);
//! 3. recruit a specialist: a copy of the specialist that codes a cluster of documents best
//!    (one side of its largest gap in bits per token, the side coded worse first), with its
//!    blocks, fine-tuned on that cluster with only a few parameters trainable (`head.bias`
//!    and the final LayerNorm by default), so it adds only those over its parent
//!    (`specialist_move.rs`);
//! 4. merge a specialist into the others (its documents go to their next best) when that
//!    saves more than δ, and prune one that no document is routed to (`merge.rs`).
//!
//! DL_total is [`crate::analysis::mdl::dl_total`] plus, for every specialist with documents,
//! the header and map bits of the blocks it adds over its parent ([`blocks_over_parent`]): a
//! specialist is charged only for what it adds, its weights and its blocks alike. Code lengths
//! are measured at the base checkpoint's saved dial; at λ = 0 blocks change nothing, and the
//! block move is not tried.
//!
//! A pool can also grow on a pretrained decoder: its specialists are adapters on that base,
//! each charged for its adapter's parameters (`adapted.rs`, `adapted_grow.rs`).
//!
//! The files, bottom up: `config.rs` and `documents.rs` (plain data), `pool.rs` (the pool and
//! its bits), `block_bits.rs` (what blocks cost), one file per move, `grow.rs` (the loop),
//! `routing.rs` (the table) and `manifest.rs` (the saved layout, and loading it). Saving a pool
//! is the engine's (`crate::engine::specialists`).

mod adapted;
mod adapted_grow;
mod block_bits;
mod block_move;
mod config;
mod documents;
mod grow;
mod manifest;
mod merge;
mod pool;
mod routing;
mod specialist_move;
mod table;

pub use adapted::{AdaptedConfig, AdaptedPool, AdaptedSpecialist};
pub use adapted_grow::GrowthReport;
pub use block_bits::blocks_over_parent;
pub use config::{PoolConfig, PoolMove, MAX_SPECIALISTS};
pub use documents::{folder_note, read_documents, split_documents, Document};
pub use manifest::{read_manifest, Manifest, ManifestRoute, ManifestSpecialist, MANIFEST_FORMAT};
pub use pool::{Pool, Specialist};
pub use table::MIN_SPLIT_DOCUMENTS;
