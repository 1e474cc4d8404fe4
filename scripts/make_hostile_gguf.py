#!/usr/bin/env python3
"""Write the crafted bad GGUF files and Hugging Face folders under tests/hostile/.

Each case is a tiny model (a few KB) broken in one way, with the case.json that says how the
real binary must fail. GGUF v3 is written by hand with `struct` (magic, version, counts,
metadata, tensor infos, aligned data), safetensors too (8-byte little-endian header length,
JSON header, data). Run from the repository root: python3 scripts/make_hostile_gguf.py
"""

import json
import math
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "hostile")

U32, I32, F32, STRING, ARRAY = 4, 5, 6, 8, 9
GGML_F32, GGML_Q8_0 = 0, 8


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def value(t, v):
    if t == U32:
        return struct.pack("<I", v)
    if t == I32:
        return struct.pack("<i", v)
    if t == F32:
        return struct.pack("<f", v)
    if t == STRING:
        return gstr(v)
    if t == ARRAY:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(value(et, x) for x in items)
    raise ValueError(t)


# A tiny LLaMA: 1 layer, width 32, 2 heads (1 key/value head), MLP 64, 8 words.
D, FF, HEADS, KV, LAYERS = 32, 64, 2, 1, 1
TOKENS = ["a", "b", "c", "d", "e", "\u0120", "\u0120a", "\u0120b", "<|end|>"]


def llama_metadata(**over):
    m = {
        "general.architecture": (STRING, "llama"),
        "llama.block_count": (U32, LAYERS),
        "llama.embedding_length": (U32, D),
        "llama.attention.head_count": (U32, HEADS),
        "llama.attention.head_count_kv": (U32, KV),
        "llama.feed_forward_length": (U32, FF),
        "llama.context_length": (U32, 64),
        "llama.attention.layer_norm_rms_epsilon": (F32, 1e-5),
        "llama.rope.freq_base": (F32, 10000.0),
        "tokenizer.ggml.model": (STRING, "gpt2"),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, TOKENS)),
        "tokenizer.ggml.merges": (ARRAY, (STRING, ["\u0120 a"])),
    }
    m.update(over)
    return {k: v for k, v in m.items() if v is not None}


def llama_tensors():
    """(name, dims outermost first, ggml type, raw bytes) of the tiny model, in f32."""
    kv = KV * (D // HEADS)
    shapes = [("token_embd.weight", [len(TOKENS), D]), ("output_norm.weight", [D])]
    for name, shape in [
        ("attn_norm", [D]), ("attn_q", [D, D]), ("attn_k", [kv, D]), ("attn_v", [kv, D]),
        ("attn_output", [D, D]), ("ffn_norm", [D]), ("ffn_gate", [FF, D]),
        ("ffn_up", [FF, D]), ("ffn_down", [D, FF]),
    ]:
        shapes.append((f"blk.0.{name}.weight", shape))
    out = []
    for i, (name, shape) in enumerate(shapes):
        n = math.prod(shape)
        vals = [((j * 7 + i) % 13 - 6) / 50.0 for j in range(n)]
        out.append([name, shape, GGML_F32, struct.pack(f"<{n}f", *vals)])
    return out


def gguf(metadata, tensors, alignment=32, offsets=None, raw_dims=None):
    """The bytes of a GGUF v3 file. `offsets` overrides tensor data offsets by name,
    `raw_dims` overrides the dims written (innermost first) by name."""
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(metadata))
    for k, (t, v) in metadata.items():
        head += gstr(k) + struct.pack("<I", t) + value(t, v)
    data, infos, off = b"", b"", 0
    for name, shape, ggml, raw in tensors:
        dims = (raw_dims or {}).get(name, list(reversed(shape)))
        pad = (-off) % 32
        data += b"\0" * pad
        off += pad
        o = (offsets or {}).get(name, off)
        infos += gstr(name) + struct.pack("<I", len(dims)) + b"".join(
            struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", ggml, o)
        data += raw
        off += len(raw)
    body = head + infos
    body += b"\0" * ((-len(body)) % alignment if alignment else 0)
    return body + data


def case(name, why, args, expect, files):
    d = os.path.join(ROOT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for rel, content in files.items():
        p = os.path.join(d, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump({"why": why, "args": args, "expect": expect}, f, indent=1)
        f.write("\n")


def gguf_case(name, why, expect, blob):
    args = ["eval", "-c", "{case}/model.gguf", "--lambda", "0"]
    case(name, why, args, ["model.gguf"] + expect, {"model.gguf": blob})


def q8_0_inf(n):
    """Q8_0 blocks of n values whose f16 scale is +inf: finite bytes, infinite weights once
    dequantized."""
    return b"".join(struct.pack("<H", 0x7C00) + bytes([1] * 32) for _ in range(n // 32))


def make_gguf_cases():
    t = llama_tensors()
    md = llama_metadata()
    gguf_case("gguf-alignment-zero", "general.alignment = 0 divides by zero inside candle's reader",
              ["general.alignment = 0", "power of two"],
              gguf(llama_metadata(**{"general.alignment": (U32, 0)}), t))
    gguf_case("gguf-head-count-zero", "llama.attention.head_count = 0 divides by zero",
              ["llama.attention.head_count = 0", "1..=1024"],
              gguf(llama_metadata(**{"llama.attention.head_count": (U32, 0)}), t))
    gguf_case("gguf-block-count-max", "llama.block_count = u32::MAX sizes a vector of 4 billion layers",
              ["llama.block_count = 4294967295", "1..=256"],
              gguf(llama_metadata(**{"llama.block_count": (U32, 2**32 - 1)}), t))
    gguf_case("gguf-dims-overflow-square", "dims [2^32, 2^32]: the element count overflows u64",
              ["token_embd.weight", "element count overflows"],
              gguf(md, t, raw_dims={"token_embd.weight": [2**32, 2**32]}))
    gguf_case("gguf-dims-overflow-long", "dims [8, 2^61+13]: the element count overflows u64",
              ["blk.0.attn_q.weight", "element count overflows"],
              gguf(md, t, raw_dims={"blk.0.attn_q.weight": [8, 2**61 + 13]}))
    gguf_case("gguf-five-dims", "a tensor with 5 dims (ggml allows 4)",
              ["output_norm.weight", "5 dims"],
              gguf(md, t, raw_dims={"output_norm.weight": [2, 2, 2, 2, 2]}))
    full = gguf(md, t)
    gguf_case("gguf-truncated", "a valid file cut in the middle of its metadata",
              ["metadata key #11", "truncated"], full[:580])
    gguf_case("gguf-data-past-end", "a tensor whose data offset lies beyond the end of the file",
              ["tensor blk.0.ffn_up.weight", "runs past the end of the file"],
              gguf(md, t, offsets={"blk.0.ffn_up.weight": 1 << 40}))
    blob = bytearray(full)
    at = blob.index(gstr("general.architecture")) + len(gstr("general.architecture")) + 4
    blob[at:at + 8] = struct.pack("<Q", 1 << 40)
    gguf_case("gguf-string-past-end", "a metadata string whose length runs past the end of the file",
              ["metadata general.architecture", "truncated"], bytes(blob))
    gguf_case("gguf-count-past-end", "a header that declares 2^40 tensors in a few KB",
              ["1099511627776 tensors", "more than the"],
              b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0) + b"\0" * 64)
    nan = [list(x) for x in t]
    q = next(x for x in nan if x[0] == "blk.0.attn_q.weight")
    q[3] = struct.pack("<f", float("nan")) + q[3][4:]
    gguf_case("gguf-nan-weight", "a NaN among the weights",
              ["tensor blk.0.attn_q.weight", "NaN or infinite"], gguf(md, nan))
    inf = [list(x) for x in t]
    g = next(x for x in inf if x[0] == "blk.0.ffn_gate.weight")
    g[2], g[3] = GGML_Q8_0, q8_0_inf(FF * D)
    gguf_case("gguf-inf-after-dequant", "a Q8_0 tensor with an infinite scale: finite bytes, "
              "infinite weights after dequantization",
              ["tensor blk.0.ffn_gate.weight", "NaN or infinite"], gguf(md, inf))
    gguf_case("gguf-heads-not-dividing", "3 heads do not divide the width 32",
              ["llama.embedding_length = 32", "head_count = 3"],
              gguf(llama_metadata(**{"llama.attention.head_count": (U32, 3)}), t))
    bad = [list(x) for x in t]
    k = next(x for x in bad if x[0] == "blk.0.attn_k.weight")
    k[1] = [D, D]
    k[3] = struct.pack(f"<{D * D}f", *([0.01] * (D * D)))
    gguf_case("gguf-shape-mismatch", "attn_k shaped for 2 key/value heads where the metadata says 1",
              ["tensor blk.0.attn_k.weight has shape [32, 32]", "[16, 32]"], gguf(md, bad))
    # Linear scaling is honoured since 2026-12-07; YaRN, computed llama.cpp's own way, is not.
    gguf_case("gguf-rope-scaling-yarn", "YaRN RoPE scaling (factor 4) was ignored: the "
              "attention of another model, shown as this one's",
              ["llama.rope.scaling.type", "yarn"],
              gguf(llama_metadata(**{"llama.rope.scaling.type": (STRING, "yarn"),
                                     "llama.rope.scaling.factor": (F32, 4.0)}), t))
    gguf_case("gguf-rope-scaling-linear-negative", "a linear RoPE stretch of -8 was run",
              ["llama.rope.scaling.factor is -8"],
              gguf(llama_metadata(**{"llama.rope.scaling.type": (STRING, "linear"),
                                     "llama.rope.scaling.factor": (F32, -8.0)}), t))
    # (rope_freqs.weight, once refused here as gguf-rope-freqs-tensor, is read since LLaMA-3.)
    extra = t + [["blk.1.attn_norm.weight", [D], GGML_F32, struct.pack(f"<{D}f", *[1.0] * D)]]
    gguf_case("gguf-extra-layer-tensor", "weights of a layer past llama.block_count were ignored",
              ["blk.1.attn_norm.weight", "not one this LLaMA forward reads"], gguf(md, extra))
    gguf_case("gguf-freq-base-string", "llama.rope.freq_base as a string fell back to 10000",
              ["llama.rope.freq_base", "not a number"],
              gguf(llama_metadata(**{"llama.rope.freq_base": (STRING, "500000")}), t))
    gguf_case("gguf-merge-without-space", "a merge that is not two tokens: the error named no file",
              ["tokenizer.ggml.merges[0]", "two tokens and a space"],
              gguf(llama_metadata(**{"tokenizer.ggml.merges": (ARRAY, (STRING, ["nospace"]))}), t))


# A tiny BERT: 1 layer, width 8, 2 heads, MLP 16, 8 words, 16 positions.
BERT = {"architectures": ["BertModel"], "model_type": "bert", "vocab_size": 8,
        "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 16, "max_position_embeddings": 16, "type_vocab_size": 2,
        "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
WORDS = ["[UNK]", "[CLS]", "[SEP]", "a", "b", "c", "d", "e"]


def tokenizer_json(words):
    return json.dumps({
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": {w: i for i, w in enumerate(words)},
                  "unk_token": "[UNK]"}})


def bert_tensors(cfg):
    d, f = cfg["hidden_size"], cfg["intermediate_size"]
    t = {"embeddings.word_embeddings.weight": [cfg["vocab_size"], d],
         "embeddings.position_embeddings.weight": [cfg["max_position_embeddings"], d],
         "embeddings.token_type_embeddings.weight": [cfg["type_vocab_size"], d],
         "embeddings.LayerNorm.weight": [d], "embeddings.LayerNorm.bias": [d]}
    p = "encoder.layer.0"
    for name, shape in [("attention.self.query", [d, d]), ("attention.self.key", [d, d]),
                        ("attention.self.value", [d, d]), ("attention.output.dense", [d, d]),
                        ("intermediate.dense", [f, d]), ("output.dense", [d, f])]:
        t[f"{p}.{name}.weight"] = shape
        t[f"{p}.{name}.bias"] = [shape[0]]
    for norm in ["attention.output.LayerNorm", "output.LayerNorm"]:
        t[f"{p}.{norm}.weight"] = [d]
        t[f"{p}.{norm}.bias"] = [d]
    return {k: ["F32", v, [((i * 5 + j) % 11 - 5) / 40.0 for j in range(math.prod(v))]]
            for i, (k, v) in enumerate(t.items())}


def safetensors(tensors, header_len=None):
    header, data = {}, b""
    for name, (dtype, shape, vals) in tensors.items():
        fmt = {"F32": "f", "I32": "i"}[dtype]
        raw = struct.pack(f"<{len(vals)}{fmt}", *vals)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * ((-len(h)) % 8)
    return struct.pack("<Q", header_len if header_len is not None else len(h)) + h + data


def hf_case(name, why, expect, cfg=None, tensors=None, tok=None, extra=None, more=()):
    cfg = dict(BERT, **(cfg or {}))
    files = {"config.json": json.dumps(cfg, indent=1),
             "model.safetensors": tensors if isinstance(tensors, bytes)
             else safetensors(tensors or bert_tensors(BERT)),
             "tokenizer.json": tok if tok is not None else tokenizer_json(WORDS)}
    for k, v in (extra or {}).items():
        if v is None:
            files.pop(k, None)
        else:
            files[k] = v
    case(name, why, ["eval", "-c", "{case}", "--lambda", "0", *more], expect, files)


def make_hf_cases():
    hf_case("hf-layers-1e9", "num_hidden_layers 1000000000 would size a billion layers",
            ["config.json", "num_hidden_layers = 1000000000", "1..=256"],
            cfg={"num_hidden_layers": 1000000000})
    hf_case("hf-layers-float", "num_hidden_layers written 1e9, a float",
            ["config.json", "not a BERT config", "floating point"], cfg={"num_hidden_layers": 1e9})
    hf_case("hf-heads-not-dividing", "3 heads do not divide hidden_size 8",
            ["config.json", "hidden_size 8 is not a multiple of 3 heads"],
            cfg={"num_attention_heads": 3})
    hf_case("hf-vocab-huge", "vocab_size 10^12", ["config.json", "vocab_size = 1000000000000"],
            cfg={"vocab_size": 10**12})
    hf_case("hf-tokenizer-not-json", "tokenizer.json holds no JSON",
            ["tokenizer.json", "not a tokenizer"], tok="this is not JSON {")
    hf_case("hf-tokenizer-more-words", "a tokenizer with more words than vocab_size",
            ["tokenizer.json", "9 words", "vocab_size is 8"], tok=tokenizer_json(WORDS + ["f"]))
    hf_case("hf-config-directory", "config.json is a folder",
            ["config.json", "not a regular file"],
            extra={"config.json": None, "config.json/README": "a folder named config.json\n"})
    t = bert_tensors(BERT)
    t["encoder.layer.0.attention.self.query.weight"][2][3] = float("nan")
    hf_case("hf-nan-weight", "a NaN among the weights",
            ["model.safetensors", "tensor encoder.layer.0.attention.self.query.weight", "NaN or infinite"],
            tensors=t)
    t = bert_tensors(BERT)
    w = t["encoder.layer.0.output.dense.weight"]
    w[0], w[2] = "I32", [int(x * 100) for x in w[2]]
    hf_case("hf-weights-i32", "weights declared I32",
            ["model.safetensors", "tensor encoder.layer.0.output.dense.weight", "dtype I32"], tensors=t)
    t = bert_tensors(BERT)
    t["embeddings.word_embeddings.weight"][1] = [4, 16]
    hf_case("hf-shape-mismatch", "the word embeddings disagree with the config",
            ["tensor embeddings.word_embeddings.weight has shape [4, 16]", "[8, 8]"], tensors=t)
    hf_case("hf-safetensors-header-huge", "a safetensors header length of 2^60",
            ["model.safetensors", "header length"], tensors=safetensors(bert_tensors(BERT), 1 << 60))
    t = bert_tensors(BERT)
    del t["encoder.layer.0.output.LayerNorm.bias"]
    hf_case("hf-tensor-missing", "a LayerNorm bias is missing",
            ["model.safetensors", "tensor encoder.layer.0.output.LayerNorm.bias is missing"], tensors=t)
    hf_case("hf-relative-key", "relative-key position embeddings were ignored",
            ["config.json", "position_embedding_type \"relative_key\""],
            cfg={"position_embedding_type": "relative_key"})
    hf_case("hf-is-decoder", "a BERT decoder (causal) was run as an encoder",
            ["config.json", "is_decoder"], cfg={"is_decoder": True})
    t = bert_tensors(BERT)
    t.update({k.replace("layer.0.", "layer.1."): v for k, v in bert_tensors(BERT).items()
              if "layer.0." in k})
    hf_case("hf-weights-past-layers", "two layers of weights under num_hidden_layers 1: the "
            "second was ignored", ["model.safetensors", "belongs to layer 1", "1 layers"], tensors=t)
    vocab = {w: i for i, w in enumerate(WORDS)}
    vocab["e"] = 99
    tok = json.loads(tokenizer_json(WORDS))
    tok["model"]["vocab"] = vocab
    hf_case("hf-tokenizer-id-past-vocab", "8 words, one numbered 99 of 8 rows: the error was "
            "'index-select invalid index' naming no file",
            ["tokenizer.json", "\"e\" as 99", "8 rows"], tok=json.dumps(tok))
    tok = json.loads(tokenizer_json(WORDS))
    tok["normalizer"] = {"type": "Replace", "pattern": {"Regex": "."}, "content": "e" * 1000}
    hf_case("hf-tokenizer-normalizer-bomb", "a normalizer replacing every character by 100,000 "
            "once took 2.4 GB for a short text (here 1,000 characters)",
            ["tokenizer.json", "inserts a string of 1000 characters"], tok=json.dumps(tok))
    hf_case("hf-eps-denormal", "layer_norm_eps 1e-320 is 0 in f32: a division by zero at run time",
            ["config.json", "layer_norm_eps = 1e-320"], cfg={"layer_norm_eps": 1e-320})
    hf_case("hf-clusters-million", "a million k-means clusters would run for hours; the flag's "
            "limit refuses it before the model is opened",
            ["--clusters 1000000", "limit"], more=("--clusters", "1000000"))


if __name__ == "__main__":
    make_gguf_cases()
    make_hf_cases()
