//! The GGUF families whose layers hold one fused q/k/v projection, as llama.cpp's converter
//! writes them: GPT-2 (`gpt2`), GPT-BigCode (`starcoder`: SantaCoder, StarCoderBase,
//! tiny_starcoder), GPT-NeoX (`gptneox`: Pythia), BLOOM (`bloom`), Falcon (`falcon`:
//! falcon-7b, falcon-40b) and MPT (`mpt`: mpt-7b, its norms without biases), and StarCoder2
//! (`starcoder2`), whose q, k and v llama.cpp's converter writes apart (`attn_q`, `attn_k`,
//! `attn_v`: joined at load in the fused order). Each layer's weights under llama.cpp's names:
//! `attn_norm`, `attn_qkv` (every query, then the keys, then the values: the converter
//! reorders GPT-NeoX's and BLOOM's per-head interleaving and Falcon's groups so),
//! `attn_output`, the MLP's norm
//! (`ffn_norm`; for Falcon none, its one norm read by both, or for falcon-40b `attn_norm`, its
//! attention's then being `attn_norm_2`),
//! `ffn_up` and `ffn_down`; `output` or the embedding as the head. What tells them apart is
//! [`Plan`]: positions learned (`position_embd`), by RoPE or by ALiBi, the block parallel or
//! not, the activation, BLOOM's embedding norm, and which biases a file may leave out. Keys and
//! values shared by several query heads (GPT-BigCode's one, Falcon's groups) are repeated for
//! each at load, as their folders' readers do, so every one runs through GPT-2's passes.

use std::path::Path;

use anyhow::Result;
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};

use super::{conv, core, sized, Opened};
use crate::hf::family::Family;
use crate::hf::gguf_llama::meta_read::{meta, meta_f64, meta_usize, optional, wrong_type};
use crate::hf::gpt2::alibi::{alibi_slopes, mpt_alibi_slopes, Alibi};
use crate::hf::gpt2::qkv::repeat_kv;
use crate::hf::gpt2::{Affine, Block, Gpt2, Gpt2Config, Rotary, Variant};
use crate::hf::limits::{MAX_FF, MAX_HEADS, MAX_LAYERS, MAX_POSITIONS, MAX_WIDTH};

/// How a family gives positions.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Positions {
    /// Learned rows (`position_embd.weight`): GPT-2, GPT-BigCode.
    Learned,
    /// RoPE on the first `dims` of each head, halves rotated (GPT-NeoX's share, Falcon's all).
    Rope { dims: usize, base: f64 },
    /// ALiBi slopes: BLOOM's (None), or MPT's of its largest exponent (Some).
    Alibi(Option<f64>),
}

/// What a family's file holds and how its block runs.
#[derive(Clone, Debug)]
struct Plan {
    family: Family,
    positions: Positions,
    /// Attention and the MLP read the block's input side by side.
    parallel: bool,
    /// Attention's LayerNorm: `attn_norm`, or Falcon-40B's `attn_norm_2` (its `ln_attn`).
    attn_norm: &'static str,
    /// The MLP's own LayerNorm: `ffn_norm`, Falcon-40B's `attn_norm` (its `ln_mlp`), or none
    /// (attention's read by both).
    mlp_norm: Option<&'static str>,
    /// The activation as [`Gpt2Config`] names it.
    activation: &'static str,
    /// Biases the file may leave out (zeros then): GPT-NeoX's attention biases
    /// (`attention_bias` false), Falcon's and MPT's every one; the others' are required.
    optional_bias: bool,
    /// A LayerNorm of the embeddings (`token_embd_norm`, BLOOM's).
    embed_norm: bool,
    /// Key/value heads (the query heads when each has its own).
    kv: usize,
    /// q, k and v as three tensors (`attn_q`, `attn_k`, `attn_v`; their biases optional, as
    /// llama.cpp's loader has them) rather than one `attn_qkv`: StarCoder2's.
    apart: bool,
}

/// The family of `arch` and what its metadata says of positions, the block and the heads; an
/// error names the file and the key.
fn plan(c: &gguf_file::Content, arch: &str, config: &Gpt2Config, file: &Path) -> Result<Plan> {
    let key = |k: &str| format!("{arch}.{k}");
    let (d, heads) = (config.n_embd, config.n_head);
    let kv = optional(c, &key("attention.head_count_kv"), file, meta_usize)?.unwrap_or(heads);
    let base = optional(c, &key("rope.freq_base"), file, meta_f64)?.unwrap_or(10_000.0);
    let mut plan = Plan {
        family: Family::Gpt2,
        positions: Positions::Learned,
        parallel: false,
        attn_norm: "attn_norm",
        mlp_norm: Some("ffn_norm"),
        activation: "gelu_new",
        optional_bias: false,
        embed_norm: false,
        kv,
        apart: false,
    };
    match arch {
        "starcoder" => plan.family = Family::GptBigCode,
        "gptneox" => {
            let dims = sized(c, &key("rope.dimension_count"), MAX_WIDTH, file)?;
            plan.family = Family::GptNeox;
            plan.positions = Positions::Rope { dims, base };
            plan.parallel = meta_bool(c, &key("use_parallel_residual"), file)?;
            plan.activation = "gelu";
            plan.optional_bias = true;
        }
        "bloom" => {
            plan.family = Family::Bloom;
            plan.positions = Positions::Alibi(None);
            plan.activation = "gelu_pytorch_tanh";
            plan.embed_norm = true;
        }
        "falcon" => {
            let two = "blk.0.attn_norm_2.weight";
            plan.family = Family::Falcon;
            plan.positions = Positions::Rope {
                dims: d / heads,
                base,
            };
            plan.parallel = true;
            // llama.cpp's names for falcon-40b's ln_attn and ln_mlp.
            match c.tensor_infos.contains_key(two) {
                true => (plan.attn_norm, plan.mlp_norm) = ("attn_norm_2", Some("attn_norm")),
                false => plan.mlp_norm = None,
            }
            plan.activation = "gelu";
            plan.optional_bias = true;
        }
        "starcoder2" => {
            let dims = optional(c, &key("rope.dimension_count"), file, meta_usize)?;
            plan.family = Family::Starcoder2;
            plan.positions = Positions::Rope {
                dims: dims.unwrap_or(d / heads),
                base,
            };
            plan.activation = "gelu_pytorch_tanh";
            // llama.cpp reads either form; its converter writes them apart.
            plan.apart = !c.tensor_infos.contains_key("blk.0.attn_qkv.weight");
        }
        "mpt" => {
            plan.family = Family::Mpt;
            plan.positions = Positions::Alibi(Some(mpt_alibi(c, file)?));
            plan.activation = "gelu";
            plan.optional_bias = true;
        }
        _ => {}
    }
    check_heads(&plan, arch, config, file)?;
    Ok(plan)
}

/// MPT's largest ALiBi exponent (`mpt.attention.max_alibi_bias`), refusing by name what
/// transformers' MPT does not run: learned positions (0), clipped q/k/v (`clamp_kqv`), q/k
/// norms, activation scales.
fn mpt_alibi(c: &gguf_file::Content, file: &Path) -> Result<f64> {
    const MAX: &str = "mpt.attention.max_alibi_bias";
    let refuse = |what: String| {
        anyhow::anyhow!(
            "{}: {what}: not supported for MPT (transformers' MPT does not run it)",
            file.display()
        )
    };
    if let Some(clamp) = optional(c, "mpt.attention.clamp_kqv", file, meta_f64)? {
        return Err(refuse(format!(
            "metadata mpt.attention.clamp_kqv = {clamp}"
        )));
    }
    let extra = c
        .tensor_infos
        .keys()
        .find(|n| n.contains("attn_q_norm") || n.contains("attn_k_norm") || n.ends_with("scales"));
    if let Some(name) = extra {
        return Err(refuse(format!("tensor {name}")));
    }
    match optional(c, MAX, file, meta_f64)?.unwrap_or(0.0) {
        b if b.is_finite() && b > 0.0 => Ok(b),
        b => Err(refuse(format!(
            "metadata {MAX} = {b} (learned positions, or none)"
        ))),
    }
}

/// A boolean `key`; an error names the file and the key.
fn meta_bool(c: &gguf_file::Content, key: &str, file: &Path) -> Result<bool> {
    (meta(c, key, file)?.to_bool()).map_err(|e| wrong_type(file, key, "a boolean", &e))
}

/// The key/value heads and RoPE's dimensions fit the heads: key/value heads dividing the query
/// heads for Falcon (its groups), one or all of them for GPT-BigCode (its projection's order
/// for groups is not known), all of them elsewhere; RoPE on an even number of a head's.
fn check_heads(p: &Plan, arch: &str, config: &Gpt2Config, file: &Path) -> Result<()> {
    let (heads, kv) = (config.n_head, p.kv);
    let fits = match p.family {
        Family::Falcon | Family::Starcoder2 => kv >= 1 && heads % kv == 0,
        Family::GptBigCode => kv == 1 || kv == heads,
        _ => kv == heads,
    };
    if !fits {
        let allowed = match p.family {
            Family::Falcon | Family::Starcoder2 => "a divisor of the heads",
            Family::GptBigCode => "1 (one key and value shared by every head) or the heads",
            _ => "the heads",
        };
        anyhow::bail!(
            "{}: metadata {arch}.attention.head_count_kv = {kv} of {heads} heads: it must be \
             {allowed}",
            file.display()
        );
    }
    let head = config.n_embd / heads;
    if let Positions::Rope { dims, base } = p.positions {
        if dims > head || dims % 2 == 1 || !(base.is_finite() && base > 1.0) {
            anyhow::bail!(
                "{}: metadata {arch}.rope.dimension_count = {dims} (RoPE base {base}): RoPE must \
                 turn an even number of a head's {head} dimensions, at a finite base above 1",
                file.display()
            );
        }
    }
    Ok(())
}

/// A file's sizes as [`Gpt2Config`] names them (keys `{arch}.*`), each within its limit.
fn sizes(c: &gguf_file::Content, arch: &str, vocab: usize, file: &Path) -> Result<Gpt2Config> {
    let key = |k: &str| format!("{arch}.{k}");
    let size = |k: &str, max: usize| sized(c, &key(k), max, file);
    let config = Gpt2Config {
        vocab_size: vocab,
        n_positions: size("context_length", MAX_POSITIONS)?,
        n_embd: size("embedding_length", MAX_WIDTH)?,
        n_layer: size("block_count", MAX_LAYERS)?,
        n_head: size("attention.head_count", MAX_HEADS)?,
        n_inner: Some(size("feed_forward_length", MAX_FF)?),
        layer_norm_epsilon: meta_f64(c, &key("attention.layer_norm_epsilon"), file)?,
        activation_function: "gelu_new".into(),
        scale_attn_weights: true,
        scale_attn_by_inverse_layer_idx: false,
        tie_word_embeddings: true,
    };
    config.check().map_err(|e| {
        anyhow::anyhow!("{}: {e} (read from its {arch}.* metadata)", file.display())
    })?;
    Ok(config)
}

/// Every tensor the forward pass reads, with the shape (outermost first) `s` and `p` imply;
/// the optional biases only where the file `has` them.
fn expected_shapes(
    s: &Gpt2Config,
    p: &Plan,
    tied: bool,
    has: &impl Fn(&str) -> bool,
) -> Vec<(String, Vec<usize>)> {
    let (d, f, v) = (s.n_embd, s.ff(), s.vocab_size);
    let qkv = d + 2 * p.kv * (d / s.n_head);
    let mut want = vec![("token_embd.weight".to_string(), vec![v, d])];
    let mut pair = |name: &str, shape: Vec<usize>, bias: bool| {
        // A bias as long as the weight's output (a norm's: its width).
        let out = shape.first().copied().unwrap_or(d);
        let b = format!("{name}.bias");
        let optional = p.optional_bias || (p.apart && is_qkv_part(name));
        let bias = bias && (!optional || has(&b));
        want.push((format!("{name}.weight"), shape));
        if bias {
            want.push((b, vec![out]));
        }
    };
    pair("output_norm", vec![d], true);
    if !tied {
        pair("output", vec![v, d], false);
    }
    if p.positions == Positions::Learned {
        pair("position_embd", vec![s.n_positions, d], false);
    }
    if p.embed_norm {
        pair("token_embd_norm", vec![d], true);
    }
    for l in 0..s.n_layer {
        let norms = std::iter::once(p.attn_norm).chain(p.mlp_norm);
        for norm in norms {
            pair(&format!("blk.{l}.{norm}"), vec![d], true);
        }
        let kv_rows = p.kv * (d / s.n_head);
        let attention = match p.apart {
            true => vec![
                ("attn_q", vec![d, d]),
                ("attn_k", vec![kv_rows, d]),
                ("attn_v", vec![kv_rows, d]),
            ],
            false => vec![("attn_qkv", vec![qkv, d])],
        };
        for (name, shape) in attention.into_iter().chain([
            ("attn_output", vec![d, d]),
            ("ffn_up", vec![f, d]),
            ("ffn_down", vec![d, f]),
        ]) {
            pair(&format!("blk.{l}.{name}"), shape, true);
        }
    }
    want
}

/// Whether a layer's tensor `name` (`blk.{l}.attn_q`) is one of q, k and v held apart.
fn is_qkv_part(name: &str) -> bool {
    ["attn_q", "attn_k", "attn_v"]
        .iter()
        .any(|part| name.ends_with(&format!(".{part}")))
}

/// Open the file `path` of architecture `arch` (`gpt2`, `starcoder`, `gptneox`, `bloom`,
/// `falcon`, `mpt` or `starcoder2`; the caller read it).
pub(super) fn open(mut f: Opened, arch: &str, device: &Device) -> Result<Gpt2> {
    let path = &f.path.clone();
    let mut config = sizes(&f.c, arch, f.vocab, path)?;
    let p = plan(&f.c, arch, &config, path)?;
    let (d, h) = (config.n_embd, config.n_head);
    let kv_rows = p.kv * (d / h);
    let tied = f.header.tensor("output.weight").is_none();
    let has = |name: &str| f.header.tensor(name).is_some();
    let want = expected_shapes(&config, &p, tied, &has);
    // The shared keys and values repeated for each head: this many weights more than the file
    // holds.
    let copies = 2 * (d - kv_rows) * (d + 1) * config.n_layer;
    let tokenizer = f.prepare(&want, (arch, d, tied), copies as u64)?;
    let parameters = f.parameters();
    let present: std::collections::HashSet<String> = want.into_iter().map(|(n, _)| n).collect();
    let norm_bias = present.contains("output_norm.bias");
    let mut q = |name: &str| f.tensor(name, device);
    let blocks = (0..config.n_layer)
        .map(|l| read_block(&mut q, (l, &p, &present), (d, h)))
        .collect::<Result<Vec<_>>>()?;
    let core = core(&mut q, blocks, (tied, norm_bias), parameters)?;
    let variant = Variant {
        family: p.family,
        wpe: match p.positions {
            Positions::Learned => Some(q("position_embd.weight")?),
            _ => None,
        },
        rotary: match p.positions {
            Positions::Rope { dims, base } => Some(Rotary::new(dims, base)),
            _ => None,
        },
        parallel: p.parallel,
        head_bias: None,
        alibi: match p.positions {
            Positions::Alibi(mpt) => Some(Alibi {
                slopes: mpt.map_or_else(|| alibi_slopes(h), |b| mpt_alibi_slopes(h, b)),
                divisor: 1.0,
                bf16: false,
            }),
            _ => None,
        },
        embed_norm: match p.embed_norm {
            true => Some((q("token_embd_norm.weight")?, q("token_embd_norm.bias")?)),
            false => None,
        },
    };
    config.activation_function = p.activation.into();
    config.tie_word_embeddings = tied;
    Gpt2::assemble(config, path, tokenizer, core, variant)
}

/// Layer `l`'s weights read by `q` as GPT-2's `Conv1D`s ([in, out]), biases absent from the
/// file (not in `present`) as zeros, the shared keys and values repeated for each of the `h`
/// query heads of width `d`; the one norm of a block without the MLP's own read by both.
fn read_block(
    q: &mut impl FnMut(&str) -> Result<Tensor>,
    (l, p, present): (usize, &Plan, &std::collections::HashSet<String>),
    (d, h): (usize, usize),
) -> Result<Block> {
    let mut pair = |name: &str| -> Result<Affine> {
        let w = q(&format!("blk.{l}.{name}.weight"))?;
        let b = format!("blk.{l}.{name}.bias");
        let b = match present.contains(&b) {
            true => q(&b)?,
            false => Tensor::zeros(w.dim(0)?, DType::F32, w.device())?,
        };
        Ok((w, b))
    };
    let (w, b) = match p.apart {
        // Joined in the fused order: every query, then the keys, then the values.
        true => {
            let parts = [pair("attn_q")?, pair("attn_k")?, pair("attn_v")?];
            let (ws, bs): (Vec<Tensor>, Vec<Tensor>) = parts.into_iter().unzip();
            (Tensor::cat(&ws, 0)?, Tensor::cat(&bs, 0)?)
        }
        false => pair("attn_qkv")?,
    };
    let ln_1 = pair(p.attn_norm)?;
    let ln_2 = match p.mlp_norm {
        Some(name) => pair(name)?,
        None => ln_1.clone(),
    };
    Ok(Block {
        ln_1,
        c_attn: conv((repeat_kv(&w, (d, h), p.kv)?, repeat_kv(&b, (d, h), p.kv)?))?,
        c_proj: conv(pair("attn_output")?)?,
        ln_2,
        c_fc: conv(pair("ffn_up")?)?,
        mlp_proj: conv(pair("ffn_down")?)?,
    })
}
