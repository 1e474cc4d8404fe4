#!/usr/bin/env python3
"""Write tests/fixtures/qwen2.gguf: the tiny Qwen2 of tests/fixtures/families/qwen2 as a GGUF
file the way llama.cpp's converter writes a Qwen2 (architecture "qwen2", tensors renamed,
q/k not permuted: llama.cpp rotates Qwen2's halves; pre-tokenizer "qwen2"; no BOS added).

And tests/fixtures/llama3.gguf: the tiny LLaMA of tests/fixtures/families/llama as a LLaMA-3.1
file (q/k permuted for llama.cpp's interleaved RoPE, pre-tokenizer "llama-bpe", BOS added,
"llama3" RoPE scaling as the per-frequency factors rope_freqs.weight), with
tests/fixtures/llama3.json: what transformers computes for the folder under that scaling.

Run once with the `gguf`, `safetensors`, `torch` and `transformers` packages:
    python3 scripts/make_gguf_fixture.py
tests/gguf_qwen2.rs then checks that this file gives transformers' numbers for the folder.
It also writes tests/hostile/gguf-qwen2-bias-missing/model.gguf: the same without
blk.1.attn_k.bias (the file must be refused, naming it), and
tests/hostile/gguf-rope-freqs-zero/model.gguf: the LLaMA with a RoPE factor of 0, and
tests/hostile/gguf-tokenizer-wordpiece/model.gguf: the LLaMA saying its tokenizer is BERT's
WordPiece (tokenizer.ggml.model "bert", which this reader does not rebuild),
and tests/hostile/gguf-token-repeated/model.gguf: the Qwen2 with token 200 written as token 100.
And tests/fixtures/qwen3.gguf: the tiny Qwen3 of tests/fixtures/families/qwen3 (architecture
"qwen3", attention.key_length/value_length naming its head width of 16 over a width of 32 and
4 heads, q/k norms as attn_q_norm/attn_k_norm, unpermuted, pre-tokenizer "qwen2"), and
tests/hostile/gguf-qwen3-norm-missing/model.gguf: the same without blk.0.attn_k_norm.weight.
And tests/fixtures/phi3.gguf: the tiny Phi-3 (architecture "phi3": q/k/v fused in attn_qkv, gate
and up fused in ffn_up, RoPE on halves, phi3.attention.sliding_window 96, BOS added), and
tests/fixtures/phi3-window0.gguf: the same with a window of 0, which llama.cpp's converter
writes for a Phi-3-architecture model without one (Phi-4).
With the argument `phi3_longrope`, only tests/fixtures/phi3_longrope.gguf: the Phi-3 with
LongRoPE and a partial rotation of tests/fixtures/families/phi3_longrope, with the keys and
tensors llama.cpp's converter writes for them (rope.dimension_count 12,
rope.scaling.original_context_length, rope.scaling.attn_factor, rope_factors_long/short).
Made with gguf 0.19.0, torch 2.x and transformers 5.25.0.
"""
import json
import math
import pathlib
import sys

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/qwen2.gguf"



def read_folder(src):
    cfg = json.loads((src / "config.json").read_text())
    tok = json.loads((src / "tokenizer.json").read_text())
    weights = load_file(str(src / "model.safetensors"))
    vocab = tok["model"]["vocab"]
    for added in tok.get("added_tokens", []):
        vocab.setdefault(added["content"], added["id"])
    tokens = [None] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    assert all(t is not None for t in tokens), "token ids are not 0..n"
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]
    control = {a["content"] for a in tok.get("added_tokens", []) if a.get("special")}
    types = [gguf.TokenType.CONTROL if t in control else gguf.TokenType.NORMAL for t in tokens]
    return cfg, weights, vocab, tokens, merges, types



NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "self_attn.qkv_proj.weight": "attn_qkv.weight",
    "mlp.gate_up_proj.weight": "ffn_up.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(name):
    if name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if name == "model.norm.weight":
        return "output_norm.weight"
    if name == "lm_head.weight":
        return "output.weight"
    parts = name.split(".")
    assert parts[:2] == ["model", "layers"], name
    return f"blk.{parts[2]}.{NAMES['.'.join(parts[3:])]}"


def add_hparams(w, cfg):
    """The hyper-parameters of a LLaMA-family config.json, as the converter writes them (f32)."""
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)


def write(out, src, arch, drop=(), rope_factors=None, tokenizer_model="gpt2"):
    cfg, weights, vocab, tokens, merges, types = read_folder(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), arch)
    w.add_name(f"tiny {arch} fixture")
    add_hparams(w, cfg)
    add_longrope(w, cfg)
    w.add_tokenizer_model(tokenizer_model)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|endoftext|>"])
    if arch == "phi3" and cfg.get("sliding_window"):
        w.add_sliding_window(cfg["sliding_window"])
    if "head_dim" in cfg and arch == "qwen3":
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    if arch in ("qwen2", "qwen3"):
        w.add_tokenizer_pre("qwen2")
        w.add_add_bos_token(False)
    else:
        w.add_tokenizer_pre("llama-bpe")
        w.add_bos_token_id(vocab["<s>"])
        w.add_add_bos_token(True)
    if rope_factors is not None:
        w.add_tensor("rope_freqs.weight", np.asarray(rope_factors, dtype=np.float32))
    add_weights(w, weights, cfg, permute_qk=arch == "llama", drop=drop)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(tokens)} tokens, {len(merges)} merges)")


def add_longrope(w, cfg):
    """Phi-3.5's and Phi-4-mini's RoPE as llama.cpp's converter (conversion/phi.py) writes it:
    the turned dimensions, the original context, the attention factor and both factor
    tensors."""
    rope = cfg["rope_parameters"]
    if rope.get("rope_type") != "longrope":
        return
    n_embd, n_head = cfg["hidden_size"], cfg["num_attention_heads"]
    orig = rope["original_max_position_embeddings"]
    w.add_rope_dimension_count(int(rope.get("partial_rotary_factor", 1.0) * n_embd) // n_head)
    w.add_rope_scaling_orig_ctx_len(orig)
    scale = cfg["max_position_embeddings"] / orig
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(orig)))
    w.add_tensor("rope_factors_long.weight", np.asarray(rope["long_factor"], dtype=np.float32))
    w.add_tensor("rope_factors_short.weight", np.asarray(rope["short_factor"], dtype=np.float32))


def add_weights(w, weights, cfg, permute_qk, drop=()):
    """The folder's tensors under llama.cpp's names, in name order, f32; q and k permuted for
    llama.cpp's interleaved RoPE when `permute_qk` (LLaMA), the GGUF names in `drop` left out."""
    heads, kv_heads = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for name in sorted(weights):
        if gguf_name(name) in drop:
            continue
        t = weights[name]
        if permute_qk and name.endswith("q_proj.weight"):
            t = permute(t, heads)
        if permute_qk and name.endswith("k_proj.weight"):
            t = permute(t, kv_heads)
        w.add_tensor(gguf_name(name), np.ascontiguousarray(t, dtype=np.float32))


def permute(weights, n_head):
    """q or k rows reordered for llama.cpp's interleaved RoPE (as its converter does)."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def llama3_factors(cfg, scaling):
    """The per-frequency factors llama.cpp's converter writes for "llama3" RoPE scaling."""
    dim = cfg["head_dim"]
    base = cfg["rope_parameters"]["rope_theta"]
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old / low, old / high
    out = []
    for i in range(0, dim, 2):
        freq = 1.0 / (base ** (i / dim))
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return out


def llama3_reference(src, scaling, out):
    """transformers' ids, logits and first-layer attention for the folder under `scaling`."""
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(src)
    config.rope_parameters = {"rope_type": "llama3", "rope_theta": 10000.0, **scaling}
    model = transformers.AutoModelForCausalLM.from_pretrained(
        src, config=config, attn_implementation="eager"
    )
    fast = transformers.AutoTokenizer.from_pretrained(src)
    ref = json.loads((src / "reference.json").read_text())
    ids = fast(ref["text"])["input_ids"]
    with torch.no_grad():
        res = model(torch.tensor([ids]), output_attentions=True)
    data = {
        "text": ref["text"],
        "ids": ids,
        "scaling": scaling,
        "logits": [[round(x, 6) for x in row] for row in res.logits[0].tolist()],
        "attention_layer0": [
            [[round(x, 8) for x in row] for row in head] for head in res.attentions[0][0].tolist()
        ],
        "made_with": {"torch": torch.__version__, "transformers": transformers.__version__},
    }
    out.write_text(json.dumps(data, separators=(",", ":")))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


QWEN2 = ROOT / "tests/fixtures/families/qwen2"
LLAMA = ROOT / "tests/fixtures/families/llama"
SCALING = {
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}
def main():
    global read_folder
    if sys.argv[1:] == ["phi3_longrope"]:
        write(ROOT / "tests/fixtures/phi3_longrope.gguf",
              ROOT / "tests/fixtures/families/phi3_longrope", "phi3")
        return
    write(OUT, QWEN2, "qwen2")
    write(ROOT / "tests/hostile/gguf-qwen2-bias-missing/model.gguf", QWEN2, "qwen2",
          drop=("blk.1.attn_k.bias",))
    llama_cfg = read_folder(LLAMA)[0]
    factors = llama3_factors(llama_cfg, SCALING)
    print("llama3 RoPE factors", factors)
    write(ROOT / "tests/fixtures/llama3.gguf", LLAMA, "llama", rope_factors=factors)
    llama3_reference(LLAMA, SCALING, ROOT / "tests/fixtures/llama3.json")
    write(ROOT / "tests/hostile/gguf-rope-freqs-zero/model.gguf", LLAMA, "llama",
          rope_factors=[factors[0], 0.0] + factors[2:])
    write(ROOT / "tests/hostile/gguf-tokenizer-wordpiece/model.gguf", LLAMA, "llama",
          tokenizer_model="bert")
    QWEN3 = ROOT / "tests/fixtures/families/qwen3"
    write(ROOT / "tests/fixtures/qwen3.gguf", QWEN3, "qwen3")
    write(ROOT / "tests/hostile/gguf-qwen3-norm-missing/model.gguf", QWEN3, "qwen3",
          drop=("blk.0.attn_k_norm.weight",))
    write(ROOT / "tests/fixtures/phi3.gguf", ROOT / "tests/fixtures/families/phi3", "phi3")
    add_sliding_window = gguf.GGUFWriter.add_sliding_window
    gguf.GGUFWriter.add_sliding_window = lambda self, _: add_sliding_window(self, 0)
    write(ROOT / "tests/fixtures/phi3-window0.gguf", ROOT / "tests/fixtures/families/phi3", "phi3")
    gguf.GGUFWriter.add_sliding_window = add_sliding_window


    def with_a_repeated_token(src):
        cfg, weights, vocab, tokens, merges, types = _read(src)
        tokens = list(tokens)
        tokens[200] = tokens[100]
        return cfg, weights, vocab, tokens, merges, types

    _read = read_folder
    read_folder = with_a_repeated_token
    write(ROOT / "tests/hostile/gguf-token-repeated/model.gguf", QWEN2, "qwen2")
    read_folder = _read


if __name__ == "__main__":
    main()
