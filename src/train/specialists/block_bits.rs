//! What blocks cost in DL_total: the header and map bits of the blocks each specialist adds
//! over its parent's (the base over the blocks its checkpoint came with). A specialist is
//! charged only for what it adds, its blocks as its weights.

use crate::analysis::mdl::{block_header_bits, map_list_bits, ModelBits};
use crate::model::blocks::BlockMap;
use crate::train::specialists::config::PoolConfig;
use crate::train::specialists::pool::Pool;

/// Header and map bits of the blocks `child` adds over `parent` (none without a parent): a
/// header c_blk = log₂ K_max + 32 for every block name the parent lacks, and log₂ V + log₂ K_max
/// for every token whose block (by name) differs from the parent's (`map_list_bits`: the pool
/// codes maps as lists). Parameter bits are 0 here.
pub fn blocks_over_parent(child: &BlockMap, parent: Option<&BlockMap>, k_max: usize) -> ModelBits {
    let Some(parent) = parent else {
        return ModelBits {
            parameter_bits: 0.0,
            header_bits: 0.0,
            map_bits: 0.0,
        };
    };
    let new_blocks = child
        .names
        .iter()
        .skip(1)
        .filter(|n| !parent.names.contains(n))
        .count();
    let changed = child
        .token_block
        .iter()
        .enumerate()
        .filter(|&(id, &b)| {
            let theirs = parent.token_block.get(id).map(|&p| parent.name(p));
            theirs != Some(child.name(b))
        })
        .count();
    ModelBits {
        parameter_bits: 0.0,
        header_bits: new_blocks as f64 * block_header_bits(k_max),
        map_bits: map_list_bits(changed, child.token_block.len(), k_max),
    }
}

/// The header and map bits of each specialist's blocks over its parent's (`root` for one
/// without a parent).
pub(super) fn block_model_bits(
    maps: &[&BlockMap],
    parents: &[Option<usize>],
    root: &BlockMap,
    cfg: &PoolConfig,
) -> Vec<ModelBits> {
    maps.iter()
        .zip(parents)
        .map(|(m, p)| {
            let parent = match p {
                Some(p) => maps.get(*p).copied(),
                None => Some(root),
            };
            blocks_over_parent(m, parent, cfg.blocks.k_max)
        })
        .collect()
}

/// [`block_model_bits`] in bits, one total per specialist.
fn block_bits_of(
    maps: &[&BlockMap],
    parents: &[Option<usize>],
    root: &BlockMap,
    cfg: &PoolConfig,
) -> Vec<f64> {
    block_model_bits(maps, parents, root, cfg)
        .iter()
        .map(ModelBits::total)
        .collect()
}

impl Pool {
    /// Header and map bits of the blocks each specialist adds over its parent.
    pub fn block_bits(&self, cfg: &PoolConfig) -> Vec<f64> {
        let parents: Vec<Option<usize>> = self.specialists.iter().map(|s| s.parent).collect();
        let maps: Vec<&BlockMap> = self.specialists.iter().map(|s| &s.blocks).collect();
        block_bits_of(&maps, &parents, &self.root_blocks, cfg)
    }

    /// [`Pool::block_bits`] with specialist `j` removed: its children then descend from its
    /// parent (as a merge leaves them).
    pub(super) fn block_bits_without(&self, j: usize, cfg: &PoolConfig) -> Vec<f64> {
        let removed_parent = self.specialists.get(j).and_then(|s| s.parent);
        let (maps, parents): (Vec<&BlockMap>, Vec<Option<usize>>) = self
            .specialists
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != j)
            .map(|(_, s)| (&s.blocks, reparented(s.parent, j, removed_parent)))
            .unzip();
        block_bits_of(&maps, &parents, &self.root_blocks, cfg)
    }
}

/// A specialist's parent index once specialist `j` (whose parent was `removed_parent`) is
/// removed: `j`'s children descend from its parent, and later indices shift down by one.
pub(super) fn reparented(
    parent: Option<usize>,
    j: usize,
    removed_parent: Option<usize>,
) -> Option<usize> {
    match parent {
        Some(p) if p == j => removed_parent,
        Some(p) if p > j => Some(p - 1),
        other => other,
    }
}
