//! `localist blocks`: give a checkpoint a new block map (k-means over its input embeddings, a
//! lexicon file, or the co-occurrence communities of a text) and write it as a new checkpoint
//! with fresh anchor keys.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use crate::cli::flags::{count_in, MAX_CLUSTERS};
use crate::engine::corpus::CorpusSource;
use crate::engine::jobs::blocks::{rebuild_blocks, BlockSource};
use crate::engine::{has_optimizer_state, OPTIMIZER_FILE};

/// Arguments of `localist blocks`.
#[derive(Args, Debug, Clone)]
pub struct BlocksArgs {
    /// Source checkpoint directory.
    #[arg(long, short)]
    pub checkpoint: PathBuf,
    /// Cluster the token embeddings into K blocks (1 to 256, and at most the vocabulary).
    #[arg(long, conflicts_with = "lexicon")]
    pub kmeans: Option<usize>,
    /// Or assign blocks from a lexicon file (word<TAB>block).
    #[arg(long, conflicts_with = "communities")]
    pub lexicon: Option<PathBuf>,
    /// Or the co-occurrence communities of a text (a file, or `synthetic[:N]`, `topics:K`):
    /// the groups `train --recruit` draws its candidates from, read with the checkpoint's
    /// tokenizer. Function-like tokens stay unassigned.
    #[arg(long, conflicts_with = "kmeans")]
    pub communities: Option<String>,
    /// Seed for k-means.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output checkpoint directory.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Run `localist blocks`.
pub fn run(args: BlocksArgs) -> Result<()> {
    let source = match (args.kmeans, &args.lexicon, &args.communities) {
        (Some(k), None, None) => BlockSource::KMeans {
            k: count_in("--kmeans", k, MAX_CLUSTERS)?,
        },
        (None, Some(path), None) => BlockSource::Lexicon(path.clone()),
        (None, None, Some(text)) => BlockSource::Communities(CorpusSource::parse(text, 0)?),
        _ => bail!("pass one of --kmeans K, --lexicon PATH or --communities TEXT"),
    };
    crate::cli::output::check_model_out(&args.out)?;
    let had_optimizer = has_optimizer_state(&args.checkpoint);
    let in_place = same_folder(&args.checkpoint, &args.out);
    let sizes = rebuild_blocks(&args.checkpoint, &source, args.seed, &args.out)?;
    for (name, n) in sizes {
        println!("{name:>20}: {n} tokens");
    }
    if had_optimizer {
        // Its Adam moments include the anchor keys', which were reset for the new block count.
        let what = if in_place {
            format!(
                "optimizer state removed: {}",
                args.out.join(OPTIMIZER_FILE).display()
            )
        } else {
            format!(
                "optimizer state not copied from {}",
                args.checkpoint.join(OPTIMIZER_FILE).display()
            )
        };
        eprintln!(
            "note: {what} (its moments were for the old blocks' anchor keys, which are reset); \
             a later train --resume {} restarts the optimizer",
            args.out.display()
        );
    }
    println!("checkpoint with new blocks: {}", args.out.display());
    Ok(())
}

/// Whether `a` and `b` name the same existing folder.
fn same_folder(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
