#!/usr/bin/env python3
"""Craft the checkpoints of the tests/hostile nan-* and capture-* cases (issue 13).

Every weight is finite, so a loader that refuses NaN weights accepts them; they go wrong only
at run time:

- overflow-attention: layer 1, head 1's query and key rows are scaled to 1e25, so its scores
  q.k (about 1e50) overflow f32 and softmax turns them into NaN. Layers 0 and the other
  heads stay finite: the error must name layer 1, head 1.
- overflow-logits: the output head is scaled to 3e38 and the final norm's bias set to 1, so
  every attention row is finite but the logits overflow to inf.
- long-positions: a legal tiny model (d_model 4, 8 layers x 4 heads) with 4,096 positions:
  a capture of 4,096 tokens needs about 10 GB of T x T tables.

Pure Python (no numpy): writes config.json, blocks.json and model.safetensors.
Run from the repository root: python3 scripts/craft_overflow_models.py
"""

import json
import os
import random
import struct

VOCAB = 96  # the char tokenizer's vocabulary, as in sample_models/tiny-shakespeare-l1


def config(layers, d_model, heads, positions):
    return {
        "version": 1,
        "model": {
            "preset": "tiny",
            "vocab_size": VOCAB,
            "num_layers": layers,
            "d_model": d_model,
            "num_heads": heads,
            "max_seq_len": positions,
            "mlp_ratio": 4,
            "tied_head": False,
            "activation": "GeluTanh",
            "layer_norm_eps": 1e-5,
        },
        "tokenizer": {"kind": "Char"},
        "dial": {
            "params": {"mode": "Bias", "lambda": 0.0, "tau": 1.0, "tau_min": 0.25, "sigma": 4.0},
            "schedule": "Uniform",
        },
    }


def blocks(width, positions):
    k = -(-positions // width)
    return {
        "kind": {"kind": "Windows", "width": width},
        "names": [f"window {b * width}-{(b + 1) * width - 1}" for b in range(k)],
        "token_block": [],
        "relevance": list(range(k)),
        "source": f"positional windows of {width} (not semantic)",
    }, k


def tensors(layers, d, heads, positions, k, rng):
    """name -> (shape, flat list), the checkpoint's layout (model/transformer.rs)."""
    f = 4 * d

    def normal(*shape):
        n = 1
        for s in shape:
            n *= s
        return (list(shape), [rng.gauss(0.0, 0.02) for _ in range(n)])

    def const(v, *shape):
        n = 1
        for s in shape:
            n *= s
        return (list(shape), [v] * n)

    out = {
        "tok.weight": normal(VOCAB, d),
        "pos.weight": normal(positions, d),
        "ln_f.weight": const(1.0, d),
        "ln_f.bias": const(0.0, d),
        "head.weight": normal(VOCAB, d),
        "head.bias": const(0.0, VOCAB),
    }
    for l in range(layers):
        p = f"blocks.{l}."
        out.update({
            p + "ln1.weight": const(1.0, d), p + "ln1.bias": const(0.0, d),
            p + "qkv.weight": normal(3 * d, d), p + "qkv.bias": const(0.0, 3 * d),
            p + "proj.weight": normal(d, d), p + "proj.bias": const(0.0, d),
            p + "ln2.weight": const(1.0, d), p + "ln2.bias": const(0.0, d),
            p + "fc1.weight": normal(f, d), p + "fc1.bias": const(0.0, f),
            p + "fc2.weight": normal(d, f), p + "fc2.bias": const(0.0, d),
        })
        out[f"anchors.{l}.keys"] = normal(heads, k, d // heads)
    return out


def save_safetensors(path, named):
    header, blobs, offset = {}, [], 0
    for name in sorted(named):
        shape, values = named[name]
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(h)))
        out.write(h)
        for b in blobs:
            out.write(b)


def write(folder, layers, d, heads, positions, width, tweak):
    os.makedirs(folder, exist_ok=True)
    bl, k = blocks(width, positions)
    named = tensors(layers, d, heads, positions, k, random.Random(13))
    tweak(named, d, heads)
    for _, values in named.values():
        assert all(abs(v) < 3.4e38 for v in values), "every weight must stay finite in f32"
    with open(os.path.join(folder, "config.json"), "w") as out:
        json.dump(config(layers, d, heads, positions), out, indent=2)
    with open(os.path.join(folder, "blocks.json"), "w") as out:
        json.dump(bl, out, indent=2)
    save_safetensors(os.path.join(folder, "model.safetensors"), named)


def overflow_attention(named, d, heads):
    """Layer 1, head 1: its query rows (1*dh..2*dh) and key rows (d+dh..d+2dh) times 1e25."""
    shape, w = named["blocks.1.qkv.weight"]
    dh = d // heads
    for row in list(range(dh, 2 * dh)) + list(range(d + dh, d + 2 * dh)):
        for c in range(d):
            w[row * d + c] *= 1e25


def overflow_logits(named, d, heads):
    """Logits = head . (normalised x + 1): about 8 x 3e38 per logit, inf in f32."""
    named["ln_f.bias"] = ([d], [1.0] * d)
    shape, w = named["head.weight"]
    named["head.weight"] = (shape, [3e38] * len(w))


def overflow_every_row(named, d, heads):
    """Layer 0's whole qkv weight rescaled to a largest entry of 3e38 (finite): queries and keys
    of mixed-sign infinities, so every score is inf + (-inf) = NaN. Whole rows of NaN, which a
    maximum that skips NaN once read as "nothing visible" and wrote as zeros."""
    shape, w = named["blocks.0.qkv.weight"]
    top = max(abs(v) for v in w)
    named["blocks.0.qkv.weight"] = (shape, [v / top * 3e38 for v in w])


def unchanged(named, d, heads):
    pass


CASES = {
    "tests/hostile/nan-attention-capture/model": (2, 8, 2, 64, 8, overflow_attention),
    "tests/hostile/nan-attention-eval/model": (2, 8, 2, 64, 8, overflow_attention),
    "tests/hostile/nan-attention-every-row/model": (2, 8, 2, 64, 8, overflow_every_row),
    "tests/hostile/nan-logits-capture/model": (2, 8, 2, 64, 8, overflow_logits),
    "tests/hostile/nan-logits-eval/model": (2, 8, 2, 64, 8, overflow_logits),
    "tests/hostile/capture-long-text/model": (8, 4, 4, 4096, 512, unchanged),
    "tests/hostile/capture-long-eval/model": (8, 4, 4, 4096, 512, unchanged),
}

if __name__ == "__main__":
    for folder, (layers, d, heads, positions, width, tweak) in CASES.items():
        write(folder, layers, d, heads, positions, width, tweak)
        print(folder)
