#!/usr/bin/env python3
"""Write tests/fixtures/qwen2.gguf: the tiny Qwen2 of tests/fixtures/families/qwen2 as a GGUF
file the way llama.cpp's converter writes a Qwen2 (architecture "qwen2", tensors renamed,
q/k not permuted: llama.cpp rotates Qwen2's halves; pre-tokenizer "qwen2"; no BOS added).

Run once with the `gguf` and `safetensors` packages (pip install gguf safetensors numpy):
    python3 scripts/make_gguf_fixture.py
tests/gguf_qwen2.rs then checks that this file gives transformers' numbers for the folder.
It also writes tests/hostile/gguf-qwen2-bias-missing/model.gguf: the same without
blk.1.attn_k.bias (the file must be refused, naming it).
"""
import json
import pathlib

import gguf
import numpy as np
from safetensors.numpy import load_file

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "tests/fixtures/families/qwen2"
OUT = ROOT / "tests/fixtures/qwen2.gguf"

cfg = json.loads((SRC / "config.json").read_text())
tok = json.loads((SRC / "tokenizer.json").read_text())
weights = load_file(str(SRC / "model.safetensors"))

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



NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
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


def write(out, drop=()):
    out.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(out), "qwen2")
    w.add_name("tiny qwen2 fixture")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_rope_freq_base(cfg["rope_parameters"]["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_eos_token_id(vocab["<|endoftext|>"])
    w.add_add_bos_token(False)
    for name in sorted(weights):
        if gguf_name(name) in drop:
            continue
        w.add_tensor(gguf_name(name), np.ascontiguousarray(weights[name], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(f"wrote {out} ({out.stat().st_size} bytes, {len(tokens)} tokens, {len(merges)} merges)")


write(OUT)
write(ROOT / "tests/hostile/gguf-qwen2-bias-missing/model.gguf", drop=("blk.1.attn_k.bias",))
