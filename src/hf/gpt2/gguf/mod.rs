//! GGUF files of the families built on GPT-2's block, as llama.cpp's converter writes them:
//! Phi-2 (`phi2`, [`phi2`]); GPT-2 (`gpt2`), GPT-BigCode (`starcoder`), GPT-NeoX (`gptneox`),
//! BLOOM (`bloom`), Falcon (`falcon`) and MPT (`mpt`), each layer's q/k/v in one tensor
//! ([`fused`]). Each
//! is read into the same [`Gpt2`] decoder as its Hugging Face folder, with the byte-level BPE
//! of its metadata. The header, the metadata's sizes (each within its limit) and every tensor's
//! shape are checked before a weight is read, and the weights against the memory free; every
//! weight is dequantized to f32 and checked finite.

mod fused;
mod phi2;

use std::path::{Path, PathBuf};

use anyhow::Result;
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};

use crate::hf::gguf_llama::header::GgufHeader;
use crate::hf::gguf_llama::meta_read::meta_usize;
use crate::hf::gguf_llama::{metadata_tokenizer, read_tensor, ReadGguf};
use crate::hf::gpt2::{Block, Core, Gpt2};
use crate::hf::limits::in_range;

/// The GGUF architectures read here (every other goes to the LLaMA-family reader).
pub const ARCHES: [&str; 8] = [
    "phi2",
    "gpt2",
    "starcoder",
    "gptneox",
    "bloom",
    "falcon",
    "mpt",
    "starcoder2",
];

impl Gpt2 {
    /// Open the `.gguf` file `path`, already read by
    /// [`read_gguf`](crate::hf::gguf_llama::read_gguf), of architecture `arch`,
    /// one of [`ARCHES`].
    pub(crate) fn open_gguf(
        read: ReadGguf,
        path: &Path,
        arch: &str,
        device: &Device,
    ) -> Result<Self> {
        let f = Opened::new(read, path)?;
        match arch {
            "phi2" => phi2::open(f, device),
            _ => fused::open(f, arch, device),
        }
    }

    /// Whether it was read from a `.gguf` file rather than a folder.
    pub fn from_gguf(&self) -> bool {
        self.dir.is_file()
    }
}

/// Metadata `key`, an integer within 1..=`max`; an error names the file and the key.
fn sized(c: &gguf_file::Content, key: &str, max: usize, file: &Path) -> Result<usize> {
    let v = meta_usize(c, key, file)?;
    in_range(key, v, 1, max).map_err(|e| anyhow::anyhow!("{}: metadata {e}", file.display()))
}

/// The weights every family has, read by `q`: the token embedding, the final LayerNorm (its
/// bias zeros unless `norm_bias`), and the head (`output`, or the embedding when `tied`),
/// around `blocks`.
fn core(
    q: &mut impl FnMut(&str) -> Result<Tensor>,
    blocks: Vec<Block>,
    (tied, norm_bias): (bool, bool),
    parameters: usize,
) -> Result<Core> {
    let wte = q("token_embd.weight")?;
    let norm = q("output_norm.weight")?;
    let bias = match norm_bias {
        true => q("output_norm.bias")?,
        false => norm.zeros_like()?,
    };
    Ok(Core {
        head: if tied {
            wte.clone()
        } else {
            q("output.weight")?
        },
        ln_f: Some((norm, bias)),
        wte,
        blocks,
        parameters,
    })
}

/// Layer `l`'s weight and bias `name` (`blk.{l}.{name}.weight`, `.bias`), read by `q`.
fn layer_pair(
    q: &mut impl FnMut(&str) -> Result<Tensor>,
    l: usize,
    name: &str,
) -> Result<(Tensor, Tensor)> {
    let w = q(&format!("blk.{l}.{name}.weight"))?;
    Ok((w, q(&format!("blk.{l}.{name}.bias"))?))
}

/// A projection read as llama.cpp stores it ([out, in]) as GPT-2's `Conv1D` ([in, out]).
fn conv((w, b): (Tensor, Tensor)) -> Result<(Tensor, Tensor)> {
    Ok((w.t()?.contiguous()?, b))
}

/// A GGUF file being opened: its header, the file, candle's reading of its metadata, and the
/// vocabulary (the rows of `token_embd.weight`).
struct Opened {
    header: GgufHeader,
    file: std::fs::File,
    c: gguf_file::Content,
    vocab: usize,
    path: PathBuf,
}

impl Opened {
    /// The file at `path` as [`read_gguf`](crate::hf::gguf_llama::read_gguf) read it, `token_embd.weight` a matrix.
    fn new((header, file, c): ReadGguf, path: &Path) -> Result<Self> {
        let vocab = match header
            .tensor("token_embd.weight")
            .map(|t| t.shape.as_slice())
        {
            Some(&[v, _]) => v,
            _ => anyhow::bail!(
                "{}: tensor token_embd.weight is missing or not a matrix",
                path.display()
            ),
        };
        Ok(Self {
            header,
            file,
            c,
            vocab,
            path: path.to_path_buf(),
        })
    }

    /// Every tensor of `want` present with its shape, the weights (and `copies` more made at
    /// load, and the head kept transposed, twice when tied to the embedding of width `d`)
    /// within the memory free; then the tokenizer of the metadata for `arch`.
    fn prepare(
        &self,
        want: &[(String, Vec<usize>)],
        (arch, d, tied): (&str, usize, bool),
        copies: u64,
    ) -> Result<tokenizers::Tokenizer> {
        let file = &self.path;
        for (name, shape) in want {
            match self.header.tensor(name) {
                None => anyhow::bail!(
                    "{}: tensor {name} is missing (a {arch} file has it)",
                    file.display()
                ),
                Some(t) if &t.shape != shape => anyhow::bail!(
                    "{}: tensor {name} has shape {:?} where the metadata implies {shape:?}",
                    file.display(),
                    t.shape
                ),
                Some(_) => {}
            }
        }
        let head = (self.vocab * d) as u64 * 4 * if tied { 2 } else { 1 };
        crate::hf::memory::check_weights_fit(self.parameters() as u64, head + copies * 4, file)?;
        metadata_tokenizer(&self.c, arch, self.vocab, file)
    }

    /// The weights the file holds.
    fn parameters(&self) -> usize {
        let shapes = self.header.tensors.iter().map(|t| t.shape.as_slice());
        crate::hf::memory::weight_count(shapes) as usize
    }

    /// Tensor `name`, dequantized to f32 on `device` and checked finite.
    fn tensor(&mut self, name: &str, device: &Device) -> Result<Tensor> {
        read_tensor(
            &mut self.file,
            &self.header,
            &self.c,
            name,
            device,
            &self.path,
        )
    }
}
