//! A checkpoint with a new block map (k-means over its input embeddings, a lexicon file, or
//! the co-occurrence communities of a text), saved as a new checkpoint with fresh anchor keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::analysis::kmeans::kmeans;
use crate::data::lexicon::Lexicon;
use crate::data::tokenizer::{Tokenizer, TokenizerSpec};
use crate::engine::corpus::{prepare_corpus, CorpusSource, TokenizerKind};
use crate::engine::jobs::model::open_checkpoint;
use crate::model::blocks::BlockMap;
use crate::model::checkpoint::save_checkpoint;
use crate::train::recruit::{name_part, Profile};

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
    /// The co-occurrence communities of a text, read with the checkpoint's tokenizer: the
    /// groups block recruitment draws its candidates from (function-like tokens and tokens
    /// between two communities stay unassigned).
    Communities(CorpusSource),
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
        BlockSource::Communities(source) => {
            let spec: TokenizerSpec = serde_json::from_value(ck.meta.tokenizer.clone())
                .with_context(|| format!("{}: tokenizer in config.json", from.display()))?;
            let corpus = prepare_corpus(source, TokenizerKind::Word, Some(&spec))?;
            communities_map(&corpus.stream.ids, tok.as_ref(), &source.label())
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
    if let Some(why) = map.degenerate() {
        bail!(
            "{}: not written: {why}; give the map two blocks or more (--kmeans 2 or more, a \
             lexicon of two blocks, a text with more than one community)",
            out.display()
        );
    }
    ck.model.reset_anchors(map.num_blocks(), seed)?;
    // What training measured under the old map no longer holds: its anchors (measured again
    // on the training text for the new map when asked for) and its final evaluation (`eval`
    // printed the old map's anchors, and the old PF_mass 0.964 where the new one is 0.788).
    let mut meta = ck.meta.clone();
    if let Some(training) = meta.training.as_object_mut() {
        training.remove("anchors");
        if training.contains_key("final_eval") {
            training.insert("final_eval".into(), serde_json::Value::Null);
        }
    }
    save_checkpoint(out, &meta, &map, &ck.model, None)?;
    Ok(map.names.iter().cloned().zip(map.block_sizes()).collect())
}

/// The block map of `ids`' co-occurrence communities ([`Profile`], ±4 tokens, tokens seen at
/// least 5 times), each block named after its two most frequent tokens.
pub fn communities_map(ids: &[u32], tok: &dyn Tokenizer, what: &str) -> BlockMap {
    // `<unk>` joined a content community on a text with many unknown words (`<unk>·,`): it
    // is set aside, and punctuation is function-like (`Profile::of_text`).
    let profile = Profile::of_text(ids, 4, 5, tok);
    // Profile rows are ranked by frequency, so a community's first rows are its most frequent.
    let mut members: BTreeMap<usize, Vec<(usize, u32)>> = BTreeMap::new();
    for (&id, &row) in &profile.index {
        if let Some(c) = profile.community_of(id) {
            members.entry(c).or_default().push((row, id));
        }
    }
    let mut pairs: Vec<(u32, String)> = Vec::new();
    for list in members.values_mut() {
        list.sort_unstable();
        let name: Vec<String> = list
            .iter()
            .take(2)
            .map(|&(_, id)| name_part(&tok.token_str(id)))
            .collect();
        let name = name.join("·");
        pairs.extend(list.iter().map(|&(_, id)| (id, name.clone())));
    }
    BlockMap::from_assignments(
        tok.vocab_size(),
        &pairs,
        &format!("co-occurrence communities of {what}"),
    )
}
