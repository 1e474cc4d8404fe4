//! Row sums in lanes: keys j of a row summed into lane j mod [`LANES`], the lanes added
//! pairwise, then the keys past the last whole group one by one. The single metrics
//! ([`crate::analysis::metrics`]) and the capture's one-pass row
//! ([`crate::analysis::capture_row`]) both sum this way, so they give the same numbers, and in
//! lanes the additions of nearby keys do not wait on each other.

/// Lanes of the row sums ([`crate::analysis::metrics::off_block_mass`], the capture's one-pass
/// row).
pub(crate) const LANES: usize = 8;

/// Keys summed in lanes: the whole groups of [`LANES`] among the first `min(row, mask)` keys.
pub(crate) fn lane_prefix(row: usize, mask: usize) -> usize {
    row.min(mask) / LANES * LANES
}

/// The lanes added pairwise: ((0+1)+(2+3))+((4+5)+(6+7)).
pub(crate) fn lane_total(l: [f64; LANES]) -> f64 {
    ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))
}

/// Rows of fewer keys than this per block are summed key by key: for them, a total per block
/// would cost more than the waits the lanes save (a 64-token capture has rows of 1–64 keys).
const LANE_KEYS_PER_BLOCK: usize = 32;

/// [`crate::analysis::metrics::block_masses`] added into `masses`, with `lanes` (one per entry
/// of `masses`, zero) as scratch, left zero. In lanes, keys of one block a few apart do not
/// wait on each other's addition. A row of fewer than [`LANE_KEYS_PER_BLOCK`] keys per block is
/// summed key by key.
pub(crate) fn add_block_masses(
    row: &[f32],
    key_blocks: &[usize],
    lanes: &mut [[f64; LANES]],
    masses: &mut [f64],
) {
    add_block_masses_simd(row, key_blocks, lanes, masses);
}

crate::model::fused::simd::simd_dispatch! {
    /// [`add_block_masses`] built for the CPU's instruction set.
    fn add_block_masses_simd => add_block_masses_any(
        row: &[f32],
        key_blocks: &[usize],
        lanes: &mut [[f64; LANES]],
        masses: &mut [f64],
    )
}

#[inline(always)]
fn add_block_masses_any(
    row: &[f32],
    key_blocks: &[usize],
    lanes: &mut [[f64; LANES]],
    masses: &mut [f64],
) {
    let n0 = if row.len() >= LANE_KEYS_PER_BLOCK * lanes.len() {
        lane_prefix(row.len(), key_blocks.len())
    } else {
        0
    };
    if n0 > 0 {
        let groups = row.get(..n0).unwrap_or_default().chunks_exact(LANES);
        for (ac, kc) in groups.zip(key_blocks.chunks_exact(LANES)) {
            for (l, (&a, &k)) in ac.iter().zip(kc).enumerate() {
                if let Some(m) = lanes.get_mut(k) {
                    m[l] += f64::from(a);
                }
            }
        }
        for (m, l) in masses.iter_mut().zip(lanes.iter_mut()) {
            *m += lane_total(*l);
            *l = [0.0; LANES];
        }
    }
    for (&a, &k) in row.iter().zip(key_blocks).skip(n0) {
        if let Some(m) = masses.get_mut(k) {
            *m += f64::from(a);
        }
    }
}
