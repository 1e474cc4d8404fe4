//! Pure math on slices: attention metrics, the locality dial's reference formulas, the
//! group-sparsity penalty, derived bounds and anchor statistics.
//!
//! Nothing here knows about tensors, the UI or files. Keeping the math on plain slices lets
//! the model, the trainer, the theory panel and the tests share one definition of every
//! number the studio reports, and lets that definition be checked against hand-worked values
//! (SPEC §11) without loading a model. This module depends on nothing else in the crate.

pub mod anchors;
pub mod bounds;
pub mod capture_row;
pub mod dial;
pub mod kmeans;
pub(crate) mod lanes;
pub mod mdl;
pub mod metrics;
pub mod penalty;
pub mod rng;

pub use anchors::{
    coherence_matrix, coverage_bits, max_abs_cosine, orthonormal_vectors, pmi_bits, purity_bits,
    select_anchors, welch_bound, Anchor,
};
pub use bounds::{
    binary_entropy_bits, concentration_eps_bound, entropy_bound_at_margin_bits, entropy_bound_bits,
    eps_range_from_penalty, margin_needed, penalty_threshold, pf_bound, recruitment_max_moves,
    rho_needed,
};
pub use dial::{
    apply_dial_row, mode_a_bias, mode_a_off_block_mass, mode_b_off_block_mass, temperature,
    DialMode, DialParams, LayerSchedule,
};
pub use metrics::{
    block_masses, entropy_bits, kkt_gap, logit_margin, mass_on, max_mean_causal_entropy_bits,
    normalised_entropy, off_block_mass, pointer_fidelity, summarise_row, PointerFidelity, RowStats,
};
pub use penalty::{group_lasso, group_lasso_grad, group_sizes, BlockWeighting};
pub use rng::SplitMix64;
