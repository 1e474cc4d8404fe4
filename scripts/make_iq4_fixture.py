#!/usr/bin/env python3
"""Write tests/fixtures/iq4/: llama.cpp's IQ4 quantizations checked against gguf-py's own
dequantization (the `gguf` package, llama.cpp's Python reader).

- `blocks.json`: random IQ4_NL and IQ4_XS blocks (hex) and the values gguf-py dequantizes
  them to;
- `llama_iq4nl.gguf`: tests/fixtures/llamacpp/llama.gguf with every matrix whose rows split
  into blocks of 32 stored as IQ4_NL (the others stay F32, as llama.cpp falls back), and
  `llama_iq4nl_f32.gguf`: the same model with those matrices as the F32 values gguf-py reads
  from the IQ4_NL file. The two must give the same logits.

Deterministic (seeded). Run with a Python that has numpy and gguf:
  ~/.cache/localist-torch-venv/bin/python scripts/make_iq4_fixture.py
"""
import json
import os
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import fuzz_gguf_metadata as G  # noqa: E402  (its GGUF reader and writer)

OUT = os.path.join(ROOT, "tests", "fixtures", "iq4")
LEVELS = np.array(quants.IQ4_NL.kvalues, dtype=np.float32)


def random_blocks(rng, kind, n):
    size = {T.IQ4_NL: 18, T.IQ4_XS: 136}[kind]
    b = rng.integers(0, 256, size=(n, size), dtype=np.uint8)
    d = rng.uniform(-0.02, 0.02, size=n).astype(np.float16)
    b[:, :2] = d.view(np.uint8).reshape(n, 2)
    return b


def quantize_iq4_nl(x):
    """Blocks of 32: the scale maps the block's largest magnitude to the level -127, each value
    to its nearest level (as ggml's reference quantizer starts; any valid block will do)."""
    blocks = x.reshape(-1, 32)
    out = np.zeros((blocks.shape[0], 18), dtype=np.uint8)
    for i, v in enumerate(blocks):
        m = v[np.argmax(np.abs(v))]
        d = np.float16(m / -127.0 if m != 0 else 1.0)
        idx = np.abs(v[:, None] / np.float32(d) - LEVELS[None, :]).argmin(axis=1).astype(np.uint8)
        out[i, :2] = np.array([d], dtype=np.float16).view(np.uint8)
        out[i, 2:] = idx[:16] | (idx[16:] << 4)
    return out


def rebuild(version, kvs, tensors, align):
    """A GGUF file of `tensors` ((name, dims, type, bytes)), data placed at aligned offsets."""
    infos, data = [], b""
    for name, dims, t, blob in tensors:
        data += b"\0" * ((-len(data)) % align)
        infos.append((name, dims, t, len(data)))
        data += blob
    path = os.path.join(OUT, "tmp.gguf")
    G.write(path, version, len(tensors), kvs, infos, data, align)
    with open(path, "rb") as fh:
        b = fh.read()
    os.remove(path)
    return b


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20261207)
    cases = []
    for kind, n in ((T.IQ4_NL, 12), (T.IQ4_XS, 6)):
        b = random_blocks(rng, kind, n)
        values = quants.dequantize(b.reshape(-1), kind).astype(np.float32)
        cases.append({"type": kind.name, "hex": b.tobytes().hex(),
                      "values": [float(v) for v in values]})
    with open(os.path.join(OUT, "blocks.json"), "w") as fh:
        json.dump({"made_by": "scripts/make_iq4_fixture.py (gguf-py's quants.dequantize)",
                   "cases": cases}, fh)
        fh.write("\n")

    src = os.path.join(ROOT, "tests", "fixtures", "llamacpp", "llama.gguf")
    version, _, kvs, infos, data, align = G.parse(src)
    quantized, twin = [], []
    for name, dims, t, offset in infos:
        assert t == 0, f"{name}: the fixture's tensors are F32"
        count = int(np.prod(dims))
        x = np.frombuffer(data[offset:offset + 4 * count], dtype=np.float32)
        if len(dims) == 2 and dims[0] % 32 == 0:
            q = quantize_iq4_nl(x)
            back = quants.dequantize(q.reshape(-1), T.IQ4_NL).astype(np.float32)
            quantized.append((name, dims, int(T.IQ4_NL), q.tobytes()))
            twin.append((name, dims, 0, back.tobytes()))
        else:
            quantized.append((name, dims, 0, x.tobytes()))
            twin.append((name, dims, 0, x.tobytes()))
    for file, tensors in (("llama_iq4nl.gguf", quantized), ("llama_iq4nl_f32.gguf", twin)):
        with open(os.path.join(OUT, file), "wb") as fh:
            fh.write(rebuild(version, kvs, tensors, align))
    print(f"wrote {OUT}: {sum(t == int(T.IQ4_NL) for _, _, t, _ in quantized)} of "
          f"{len(quantized)} tensors as IQ4_NL")


if __name__ == "__main__":
    main()
