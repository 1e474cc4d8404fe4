//! The Hugging Face LLaMA loader on a real model (issue 17): SmolLM2's GGUF rewritten as the
//! folder `save_pretrained` would write (f32 safetensors with the Q and K rows un-permuted from
//! llama.cpp's interleaved RoPE layout to Hugging Face's half-rotation one, config.json, the
//! tokenizer as tokenizer.json) in a temporary folder, opened through `ImportedModel` like any
//! folder, and compared with the GGUF forward. Run: `cargo run --release --example
//! smollm2_hf_folder` after `scripts/fetch_models.sh` (it writes about 540 MB, then removes it).

use std::collections::HashMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use localist::data::tokenizer::Tokenizer as _;
use localist::hf::ImportedModel;

/// Rows of a GGUF Q or K matrix back in Hugging Face's order: llama.cpp's converter permuted
/// each head's rows (h, 2, d_h/2) → (h, d_h/2, 2); this undoes it.
fn unpermute(w: &Tensor, heads: usize) -> Result<Tensor> {
    let (rows, din) = w.dims2()?;
    let dh = rows / heads;
    Ok(w.reshape((heads, dh / 2, 2, din))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((rows, din))?)
}

/// The GGUF's tensors under Hugging Face's names.
fn hf_tensors(gguf: &Path, heads: usize, kv_heads: usize) -> Result<HashMap<String, Tensor>> {
    let dev = Device::Cpu;
    let mut f = std::fs::File::open(gguf).with_context(|| gguf.display().to_string())?;
    let c = gguf_file::Content::read(&mut f)?;
    let layers = c
        .metadata
        .get("llama.block_count")
        .context("block_count")?
        .to_u32()?;
    let mut get = |n: &str| -> Result<Tensor> { Ok(c.tensor(&mut f, n, &dev)?.dequantize(&dev)?) };
    let mut t = HashMap::new();
    t.insert(
        "model.embed_tokens.weight".into(),
        get("token_embd.weight")?,
    );
    t.insert("model.norm.weight".into(), get("output_norm.weight")?);
    for l in 0..layers {
        let p = format!("model.layers.{l}");
        let b = |n: &str| format!("blk.{l}.{n}.weight");
        let q = unpermute(&get(&b("attn_q"))?, heads)?;
        let k = unpermute(&get(&b("attn_k"))?, kv_heads)?;
        for (name, w) in [
            ("input_layernorm", get(&b("attn_norm"))?),
            ("self_attn.q_proj", q),
            ("self_attn.k_proj", k),
            ("self_attn.v_proj", get(&b("attn_v"))?),
            ("self_attn.o_proj", get(&b("attn_output"))?),
            ("post_attention_layernorm", get(&b("ffn_norm"))?),
            ("mlp.gate_proj", get(&b("ffn_gate"))?),
            ("mlp.up_proj", get(&b("ffn_up"))?),
            ("mlp.down_proj", get(&b("ffn_down"))?),
        ] {
            t.insert(format!("{p}.{name}.weight"), w);
        }
    }
    Ok(t)
}

/// Largest |a − b|.
fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
    Ok((a - b)?.abs()?.max_all()?.to_scalar::<f32>()?)
}

fn main() -> Result<()> {
    let dev = Device::Cpu;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let gguf = root.join("models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let g = ImportedModel::open(&gguf, &dev)?;
    let ImportedModel::Llama(gl) = &g else {
        bail!("{}: not a LLaMA GGUF", gguf.display());
    };
    let c = &gl.config;
    let dir = tempfile::tempdir()?;
    let out = dir.path();
    candle_core::safetensors::save(
        &hf_tensors(&gguf, c.heads, c.kv_heads)?,
        out.join("model.safetensors"),
    )?;
    gl.hf_tokenizer()
        .save(out.join("tokenizer.json"), false)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cfg = serde_json::json!({
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": c.vocab,
        "hidden_size": c.d_model, "intermediate_size": c.ff, "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads, "num_key_value_heads": c.kv_heads,
        "max_position_embeddings": c.context, "rms_norm_eps": c.rms_eps,
        "rope_theta": c.rope_base, "tie_word_embeddings": true, "hidden_act": "silu"
    });
    std::fs::write(out.join("config.json"), serde_json::to_vec_pretty(&cfg)?)?;
    let started = std::time::Instant::now();
    let h = ImportedModel::open(out, &dev)?;
    let open_s = started.elapsed().as_secs_f64();
    println!("opened the folder in {open_s:.2} s: {}", h.kind_label());
    let text = "The capital of France is";
    let ids = g.tokenizer().encode(text);
    println!("ids: GGUF {ids:?}, folder {:?}", h.tokenizer().encode(text));
    let a = g.model().forward_biased(&ids, &[], false)?;
    let b = h.model().forward_biased(&ids, &[], false)?;
    let mut da = 0f32;
    for (x, y) in a.attention.iter().zip(&b.attention) {
        da = da.max(max_diff(x, y)?);
    }
    let last = b.logits.squeeze(0)?.get(ids.len() - 1)?.to_vec1::<f32>()?;
    let top = localist::hf::gguf_llama::top_k(&last, 5);
    let best = top.first().copied().unwrap_or(0);
    println!(
        "against the GGUF forward: logits max |Δ| {:.2e}, attention max |Δ| {da:.2e}; \
         top-5 {top:?}, top-1 {:?} at {:.3}",
        max_diff(&a.logits, &b.logits)?,
        h.tokenizer().token_str(best as u32),
        last.get(best).copied().unwrap_or(f32::NAN),
    );
    Ok(())
}
