//! Block-level recruitment (SPEC §9): grow the block map during training when the description
//! length in bits says a block pays for itself, and merge or prune blocks by the same test.
//!
//! **What a block buys here.** Recruitment starts from one block with
//! [`BlockMap::isolate_unassigned`](crate::model::blocks::BlockMap::isolate_unassigned) set:
//! an unassigned token belongs to no semantic block, so under the localist dial a query sees
//! only S(i) = {i, 0}. The data bits L(D | M) are measured on a held-out buffer at the
//! recruitment dial λ_rec (mode A, default 1: the fully localist model the framework is after). A recruited block lets its tokens attend to each other at λ_rec, so
//! its data bits fall when those tokens carry context for one another; a block of unrelated
//! tokens (or half a topic) does not pay for its model bits.
//!
//! **What a block costs.** Its header c_blk = log₂ K_max + 32 bits and its map entries L(b). A
//! block also owns anchor keys, one per head per layer (initialised to the normalised centroid
//! of its queries, then trained by the anchor loss), but in this model they are not attention
//! slots, so the likelihood does not depend on them and the code need not carry them: p_k = 0
//! by default. `charge_anchor_keys` charges p_k = L·H·d_h anyway; then, on the topic corpus,
//! merging two topic blocks costs fewer data bits (260–1,070 measured on 34k tokens) than the
//! 1,920 parameter bits it saves, and topics end up merged.
//!
//! **The probe.** A new block pays off only once the model has learned to use the keys it makes
//! visible, so each candidate is trained `probe_steps` steps and compared with a control trained
//! the same steps, from the same state, on the same batches, under the current map. Merges and
//! prunes are judged at once on the current model (`merge_probe` probes them too).
//!
//! **One round** (every `every` steps after `warmup`): measure per-position loss and attention
//! entropy on the buffer; take the unassigned tokens whose loss + entropy is at least the median;
//! cluster them by co-occurrence (PPMI, cosine) around the token that costs the most bits; try the
//! cluster as a new block; then try merging the two recruited blocks that co-occur most and
//! pruning blocks used by fewer than `prune_usage` of the positions. Every try is a
//! [`Decision`](crate::analysis::mdl::Decision) with its breakdown. A rejected move leaves
//! weights and map exactly as they were (nothing is changed until a move is accepted); its
//! token set goes on a tabu list. After `patience` rounds without an accepted move, at `k_max`
//! blocks, or after ⌊DL₀/δ⌋ accepted moves, recruitment stops.
//!
//! The files: `config.rs` (settings), `log.rs` (events and round summaries), `buffer.rs` (what
//! is measured on the buffer, and DL(M)), `maps.rs` (block-map edits), `cluster.rs`
//! (co-occurrence statistics), `candidates.rs` (where moves come from), `anchors.rs` (anchor
//! keys of a changed map), `recruiter.rs` (the state across rounds), `round.rs` (one round, in
//! steps) and `moves.rs` (the moves a round tries).

mod anchors;
mod buffer;
mod candidates;
mod cluster;
mod config;
mod log;
mod maps;
mod moves;
mod profile;
mod recruiter;
mod round;

pub use buffer::{block_params, buffer_stats, description_length, BufferStats};
pub use cluster::{adjusted_rand_index, otsu_cut};
pub use config::RecruitConfig;
pub use log::{MoveKind, RecruitEvent, RoundSummary};
pub use maps::{with_new_block, without_block};
pub use profile::{otsu_separability, Profile};
pub use recruiter::Recruiter;
