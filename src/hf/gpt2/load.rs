//! Reading the weights every family on GPT-2's block has out of a Hugging Face folder: the
//! safetensors headers checked against the shapes the config implies before any weight is
//! read, the tensors loaded (finite), the blocks read by the family's reader, and the token
//! embedding, final norm and head taken by their names ([`CoreNames`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::{DType, Device, Tensor};

use crate::hf::folder;
use crate::hf::gpt2::{tokenizer, Affine, Block, Core, Gpt2Config, Shape};

/// A tensor name without the `model.` prefix of `…ForCausalLM` exports (Phi's, StarCoder2's).
pub(super) fn model_unprefixed(name: &str) -> &str {
    name.strip_prefix("model.").unwrap_or(name)
}

/// A `Linear`'s weight [out, in] and bias [out] (`{name}.weight`, `{name}.bias`), read by
/// `take`; the bias zeros where the model has none (`bias` false).
pub(super) fn linear(
    take: &mut impl FnMut(&str) -> Result<Tensor>,
    name: &str,
    bias: bool,
) -> Result<Affine> {
    let w = take(&format!("{name}.weight"))?;
    let b = match bias {
        true => take(&format!("{name}.bias"))?,
        false => Tensor::zeros(w.dim(0)?, DType::F32, w.device())?,
    };
    Ok((w, b))
}

/// Where [`load_core`] finds the weights every family has.
#[derive(Clone, Copy, Debug)]
pub(super) struct CoreNames<'a> {
    /// The token embedding.
    pub embed: &'a str,
    /// The final norm: its weight, and its bias where it has one (zeros where it has none:
    /// MPT's). None where the model has no final norm (OPT-350m, which normalises after each
    /// sub-layer).
    pub norm: Option<(&'a str, Option<&'a str>)>,
    /// The output head, read when it is not tied to the embedding.
    pub head: &'a str,
}

impl<'a> From<[&'a str; 4]> for CoreNames<'a> {
    /// The embedding, the final norm's weight and bias, and the head.
    fn from([embed, norm_w, norm_b, head]: [&'a str; 4]) -> Self {
        Self {
            embed,
            norm: Some((norm_w, Some(norm_b))),
            head,
        }
    }
}

/// What [`load_core`] read: the weights every family has, the tokenizer, and the tensors left
/// for the family to take (learned positions, a head bias).
pub(super) struct Loaded {
    pub core: Core,
    pub tokenizer: tokenizers::Tokenizer,
    rest: HashMap<String, Tensor>,
    /// What errors about the weights name.
    file: PathBuf,
}

impl Loaded {
    /// Tensor `name` of those left.
    pub fn take(&mut self, name: &str) -> Result<Tensor> {
        folder::take(&mut self.rest, name, &self.file)
    }
}

/// The weights of a GPT-2-like folder `dir` of `config`: the safetensors headers checked
/// against `want` (names as `rename` gives them) before any weight is read, the tensors of
/// `want` loaded (finite), each block read by `block`, and the embedding, final norm and
/// untied head taken by `names`; its tokenizer.
pub(super) fn load_core<'a>(
    dir: &Path,
    device: &Device,
    spec: (&Gpt2Config, &[Shape], fn(&str) -> &str),
    names: impl Into<CoreNames<'a>>,
    block: impl FnMut(&mut HashMap<String, Tensor>, usize, &Path) -> Result<Block>,
) -> Result<Loaded> {
    load_core_copying(dir, device, spec, (names, 0), block)
}

/// [`load_core`] of a model whose blocks copy `copies` weights more than the file holds (key
/// and value heads repeated for the query heads that share them), counted in the memory check.
pub(super) fn load_core_copying<'a>(
    dir: &Path,
    device: &Device,
    (config, want, rename): (&Gpt2Config, &[Shape], fn(&str) -> &str),
    (names, copies): (impl Into<CoreNames<'a>>, u64),
    mut block: impl FnMut(&mut HashMap<String, Tensor>, usize, &Path) -> Result<Block>,
) -> Result<Loaded> {
    let names = names.into();
    let weights = folder::weights(dir)?;
    let file = weights.path.clone();
    folder::check_declared(&folder::declared(&weights, rename)?, want, &file)?;
    let mut t = folder::load_f32_copying(&weights, device, rename, want, copies)?;
    let tokenizer = tokenizer::read(dir, config.vocab_size)?;
    let parameters = t.values().map(Tensor::elem_count).sum();
    let blocks = (0..config.n_layer)
        .map(|l| block(&mut t, l, &file))
        .collect::<Result<Vec<_>>>()?;
    let mut take = |name: &str| folder::take(&mut t, name, &file);
    let wte = take(names.embed)?;
    let ln_f = match names.norm {
        Some((w, Some(b))) => Some((take(w)?, take(b)?)),
        Some((w, None)) => {
            let w = take(w)?;
            Some((w.clone(), w.zeros_like()?))
        }
        None => None,
    };
    let head = if config.tie_word_embeddings {
        wte.clone()
    } else {
        take(names.head)?
    };
    let core = Core {
        wte,
        ln_f,
        head,
        blocks,
        parameters,
    };
    Ok(Loaded {
        core,
        tokenizer,
        rest: t,
        file,
    })
}
