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
    let row = row.get(n0..).unwrap_or_default();
    let key_blocks = key_blocks.get(n0..).unwrap_or_default();
    if let Some(held) = masses.get_mut(..).filter(|m| m.len() <= HELD_BLOCKS) {
        return add_keys_held(row, key_blocks, held);
    }
    for (&a, &k) in row.iter().zip(key_blocks) {
        if let Some(m) = masses.get_mut(k) {
            *m += f64::from(a);
        }
    }
}

/// Up to this many blocks' masses are held in one vector register by [`add_keys_held`].
const HELD_BLOCKS: usize = 8;

/// Keys one by one into at most [`HELD_BLOCKS`] masses held in a register: every key adds its
/// weight to its block's mass and 0 to the others'. Each block's mass is the same sum in the
/// same order as adding into `masses` in memory (x + 0 is x for every sum of weights, which
/// start at +0), but the sums no longer wait on a store and a reload per key (a 64-token
/// capture of a few blocks spent 5% of its time so).
#[inline(always)]
fn add_keys_held(row: &[f32], key_blocks: &[usize], masses: &mut [f64]) {
    let mut held = [0f64; HELD_BLOCKS];
    let k = masses.len().min(HELD_BLOCKS);
    held.get_mut(..k)
        .unwrap_or_default()
        .copy_from_slice(masses.get(..k).unwrap_or_default());
    for (&a, &kb) in row.iter().zip(key_blocks) {
        let a = f64::from(a);
        for (b, m) in held.iter_mut().enumerate() {
            *m += if b == kb { a } else { 0.0 };
        }
    }
    masses
        .get_mut(..k)
        .unwrap_or_default()
        .copy_from_slice(held.get(..k).unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The masses of one row summed key by key in memory, in key order.
    fn in_order(row: &[f32], key_blocks: &[usize], k: usize) -> Vec<f64> {
        let mut m = vec![0.0; k];
        for (&a, &b) in row.iter().zip(key_blocks) {
            if let Some(x) = m.get_mut(b) {
                *x += f64::from(a);
            }
        }
        m
    }

    /// The sums of a long row as lanes in memory give them: key j into lane j mod LANES of its
    /// block over the whole groups, the lanes added pairwise, then the rest key by key.
    fn in_memory_lanes(row: &[f32], key_blocks: &[usize], k: usize) -> Vec<f64> {
        let n0 = lane_prefix(row.len(), key_blocks.len());
        let mut lanes = vec![[0f64; LANES]; k];
        for (j, (&a, &b)) in row.iter().zip(key_blocks).take(n0).enumerate() {
            if let Some(l) = lanes.get_mut(b) {
                l[j % LANES] += f64::from(a);
            }
        }
        let mut m: Vec<f64> = lanes.iter().map(|l| lane_total(*l)).collect();
        for (&a, &b) in row.iter().zip(key_blocks).skip(n0) {
            if let Some(x) = m.get_mut(b) {
                *x += f64::from(a);
            }
        }
        m
    }

    /// A row of `n` weights whose exponents lie far apart (so that another order of addition
    /// rounds differently) over blocks 0..k + 2 (keys of the last two are past the masses and
    /// not counted), from the xorshift state `seed`: [`add_block_masses`] must give `want`'s
    /// sums to the bit and leave its scratch zero.
    fn check(
        seed: &mut u64,
        (k, n): (usize, usize),
        want: fn(&[f32], &[usize], usize) -> Vec<f64>,
    ) {
        let mut next = || {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *seed
        };
        let row: Vec<f32> = (0..n)
            .map(|_| (next() % 1000) as f32 / 997.0 * 0.5f32.powi((next() % 40) as i32))
            .collect();
        let blocks: Vec<usize> = (0..n).map(|_| (next() % (k as u64 + 2)) as usize).collect();
        let mut masses = vec![0.0; k];
        let mut lanes = vec![[0.0; LANES]; k];
        add_block_masses(&row, &blocks, &mut lanes, &mut masses);
        let want = want(&row, &blocks, k);
        let same = masses
            .iter()
            .zip(&want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "k {k}, n {n}: {masses:?} against {want:?}");
        assert!(
            lanes.iter().all(|l| *l == [0.0; LANES]),
            "scratch left zero"
        );
    }

    /// Long rows, whose blocks are summed in lanes, give the lanes' sums to the bit, tails past
    /// the last whole group and keys of blocks past the masses included.
    #[test]
    fn long_rows_sum_each_block_as_lanes_in_memory() {
        let mut seed = 0x2545_f491_u64;
        for k in [1usize, 2, 4, 7, 8, 9, 12] {
            let lengths = [
                LANE_KEYS_PER_BLOCK * k,
                LANE_KEYS_PER_BLOCK * k + 5,
                2048 + 3,
            ];
            for n in lengths {
                check(&mut seed, (k, n), in_memory_lanes);
            }
        }
    }

    /// Rows shorter than the lanes' threshold give, to the bit, the in-order sums of each block,
    /// whether the masses are held in a register (up to 8 blocks) or not, with keys of blocks
    /// past the masses skipped.
    #[test]
    fn short_rows_sum_each_block_in_key_order() {
        let mut seed = 0x9e37_79b9_u64;
        for k in [1usize, 2, 3, 5, 8, 9, 12] {
            // (Longer rows are summed in lanes, in another order.)
            for n in [1usize, 7, 31, 64] {
                if n < LANE_KEYS_PER_BLOCK * k {
                    check(&mut seed, (k, n), in_order);
                }
            }
        }
        // Added into masses that already hold sums; a NaN weight stays in its block.
        let mut masses = vec![0.5, 0.25];
        let mut lanes = vec![[0.0; LANES]; 2];
        add_block_masses(&[0.1, f32::NAN, 0.2], &[0, 1, 0], &mut lanes, &mut masses);
        assert_eq!(masses[0], 0.5 + f64::from(0.1f32) + f64::from(0.2f32));
        assert!(masses[1].is_nan());
    }
}
