//! `localist blocks`: give a checkpoint a new block map (k-means over its input embeddings, or
//! a lexicon file) and write it as a new checkpoint with fresh anchor keys.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;

use crate::analysis::kmeans::kmeans;
use crate::data::lexicon::Lexicon;
use crate::data::tokenizer::TokenizerSpec;
use crate::engine::train_job::default_device;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::{load_checkpoint, save_checkpoint};

/// Arguments of `localist blocks`.
#[derive(Args, Debug, Clone)]
pub struct BlocksArgs {
    /// Source checkpoint directory.
    #[arg(long, short)]
    pub checkpoint: PathBuf,
    /// Cluster the token embeddings into K blocks.
    #[arg(long, conflicts_with = "lexicon")]
    pub kmeans: Option<usize>,
    /// Or assign blocks from a lexicon file (word<TAB>block).
    #[arg(long)]
    pub lexicon: Option<PathBuf>,
    /// Seed for k-means.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output checkpoint directory.
    #[arg(long, short)]
    pub out: PathBuf,
}

/// Run `localist blocks`.
pub fn run(args: BlocksArgs) -> Result<()> {
    let device = default_device();
    let mut ck = load_checkpoint(&args.checkpoint, &device)?;
    let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
        .with_context(|| format!("{}: tokenizer in config.json", args.checkpoint.display()))?;
    let tok = spec.build()?;
    let map = match (args.kmeans, &args.lexicon) {
        (Some(k), None) => {
            if k == 0 {
                bail!("--kmeans needs at least 1 cluster");
            }
            let rows: Vec<Vec<f32>> = ck.model.params.get("tok.weight")?.to_vec2()?;
            let assign = kmeans(&rows, k, 100, args.seed);
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
        (None, Some(path)) => {
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
        _ => bail!("pass --kmeans K or --lexicon PATH"),
    };
    ck.model.reset_anchors(map.num_blocks(), args.seed)?;
    save_checkpoint(&args.out, &ck.meta, &map, &ck.model, None)?;
    let sizes = map.block_sizes();
    for (name, n) in map.names.iter().zip(sizes) {
        println!("{name:>20}: {n} tokens");
    }
    println!("checkpoint with new blocks: {}", args.out.display());
    Ok(())
}
