//! A checkpoint with a new block map (k-means over its input embeddings, or a lexicon file),
//! saved as a new checkpoint with fresh anchor keys.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::analysis::kmeans::kmeans;
use crate::data::lexicon::Lexicon;
use crate::engine::jobs::model::open_checkpoint;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::save_checkpoint;

/// Where the new blocks come from.
#[derive(Clone, Debug)]
pub enum BlockSource {
    /// `k` k-means clusters of the token embeddings.
    KMeans {
        /// Number of clusters (at least 1).
        k: usize,
    },
    /// A lexicon file (`word<TAB>block` lines).
    Lexicon(PathBuf),
}

/// Give the checkpoint at `from` the blocks of `source`, reset its anchor keys (seeded by
/// `seed`, as is k-means) and save it at `out`. Returns each block's name and size in tokens.
pub fn rebuild_blocks(
    from: &Path,
    source: &BlockSource,
    seed: u64,
    out: &Path,
) -> Result<Vec<(String, usize)>> {
    let (mut ck, tok) = open_checkpoint(from)?;
    let map = match source {
        BlockSource::KMeans { k } => {
            if *k > tok.vocab_size() {
                bail!(
                    "--kmeans {k} is more than the {} tokens of {}'s vocabulary",
                    tok.vocab_size(),
                    from.display()
                );
            }
            let rows: Vec<Vec<f32>> = ck.model.params.get("tok.weight")?.to_vec2()?;
            let assign = kmeans(&rows, *k, 100, seed);
            let pairs: Vec<(u32, String)> = assign
                .iter()
                .enumerate()
                .map(|(id, c)| (id as u32, format!("cluster {}", c + 1)))
                .collect();
            BlockMap::from_assignments(
                tok.vocab_size(),
                &pairs,
                &format!("k-means k={k} over input embeddings"),
            )
        }
        BlockSource::Lexicon(path) => {
            let lex = Lexicon::load(path)?;
            let pairs: Vec<(u32, String)> = lex
                .resolve(tok.as_ref())?
                .into_iter()
                .map(|(id, b)| (id, lex.block_names.get(b).cloned().unwrap_or_default()))
                .collect();
            BlockMap::from_assignments(
                tok.vocab_size(),
                &pairs,
                &format!("lexicon {}", path.display()),
            )
        }
    };
    ck.model.reset_anchors(map.num_blocks(), seed)?;
    save_checkpoint(out, &ck.meta, &map, &ck.model, None)?;
    Ok(map.names.iter().cloned().zip(map.block_sizes()).collect())
}
