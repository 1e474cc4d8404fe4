#!/usr/bin/env python3
"""Write the crafted checkpoint folders tests/hostile/ck-*/ (issue 13).

Each case is a tiny but otherwise valid checkpoint (char tokenizer, 96 tokens, one layer,
d_model 8, two heads, 16 positions, a three-block semantic map, about 10 KB of weights) with
exactly one thing broken. `ck-control-good` is the unbroken model: it must evaluate, which
proves that every other case fails for its one defect. The safetensors format is written by
hand (8-byte little-endian header length, JSON header, data), so no package is needed.

Run from the repository root:  python3 scripts/make_hostile_ck.py
"""
import json
import math
import os
import random
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "hostile")

MODEL = {
    "preset": "tiny", "vocab_size": 96, "num_layers": 1, "d_model": 8, "num_heads": 2,
    "max_seq_len": 16, "mlp_ratio": 2, "tied_head": False, "activation": "GeluTanh",
    "layer_norm_eps": 1e-5,
}
DIAL = {"params": {"mode": "Bias", "lambda": 0.0, "tau": 1.0, "tau_min": 0.25, "sigma": 4.0},
        "schedule": "Uniform"}
TEXT = "To be, or not to be, that is the question.\n" * 4


def config():
    return {"version": 1, "model": dict(MODEL), "tokenizer": {"kind": "Char"},
            "training": {}, "dial": json.loads(json.dumps(DIAL))}


def blocks():
    # Three blocks: vowels, punctuation, the rest (ids follow the char tokenizer: chr(31 + id)).
    token_block = []
    for i in range(96):
        c = "\n" if i == 0 else chr(31 + i)
        token_block.append(1 if c in "aeiouAEIOU" else 2 if c in ",.;:!?" else 0)
    return {"kind": {"kind": "Semantic"}, "names": ["unassigned", "vowel", "punct"],
            "token_block": token_block, "relevance": [0, 1, 2], "source": "hostile test",
            "isolate_unassigned": False}


def shapes(m=MODEL, num_blocks=3):
    d, v, f = m["d_model"], m["vocab_size"], m["mlp_ratio"] * m["d_model"]
    out = [("tok.weight", [v, d]), ("pos.weight", [m["max_seq_len"], d]),
           ("ln_f.weight", [d]), ("ln_f.bias", [d]), ("head.weight", [v, d]), ("head.bias", [v])]
    for l in range(m["num_layers"]):
        p = "blocks.%d." % l
        out += [(p + "ln1.weight", [d]), (p + "ln1.bias", [d]), (p + "qkv.weight", [3 * d, d]),
                (p + "qkv.bias", [3 * d]), (p + "proj.weight", [d, d]), (p + "proj.bias", [d]),
                (p + "ln2.weight", [d]), (p + "ln2.bias", [d]), (p + "fc1.weight", [f, d]),
                (p + "fc1.bias", [f]), (p + "fc2.weight", [d, f]), (p + "fc2.bias", [d])]
        out.append(("anchors.%d.keys" % l, [m["num_heads"], num_blocks, d // m["num_heads"]]))
    return out


def tensors():
    rng = random.Random(13)
    out = []
    for name, shape in shapes():
        n = math.prod(shape)
        if ".ln" in name or name.startswith("ln_f"):
            vals = [1.0 if name.endswith("weight") else 0.0] * n
        else:
            vals = [rng.gauss(0.0, 0.2) for _ in range(n)]
        out.append([name, "F32", shape, struct.pack("<%df" % n, *vals)])
    return out


def safetensors(entries, header_extra=None, raw_header=None):
    """entries: [name, dtype, shape, bytes]; offsets follow the order given."""
    header, data, off = [], b"", 0
    for name, dtype, shape, blob in entries:
        header.append('"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}'
                      % (name, dtype, json.dumps(shape), off, off + len(blob)))
        data += blob
        off += len(blob)
    text = raw_header if raw_header is not None else "{" + ",".join(header) + "}"
    text = text.encode()
    return struct.pack("<Q", len(text)) + text + data


def write_case(name, why, expect, cfg=None, blk=None, weights=None, extra_args=None,
               exit_code=None):
    case = os.path.join(ROOT, name)
    shutil.rmtree(case, ignore_errors=True)
    model = os.path.join(case, "model")
    os.makedirs(model)
    with open(os.path.join(model, "config.json"), "w") as f:
        f.write(cfg if isinstance(cfg, str) else json.dumps(cfg or config(), indent=1))
    with open(os.path.join(model, "blocks.json"), "w") as f:
        f.write(blk if isinstance(blk, str) else json.dumps(blk or blocks()))
    with open(os.path.join(model, "model.safetensors"), "wb") as f:
        f.write(weights if weights is not None else safetensors(tensors()))
    with open(os.path.join(case, "text.txt"), "w") as f:
        f.write(TEXT)
    spec = {"why": why,
            "args": ["eval", "-c", "{case}/model", "--lambda", "0", "--corpus", "{case}/text.txt"]
            + (extra_args or []),
            "expect": expect}
    if exit_code is not None:
        spec["exit"] = exit_code
    with open(os.path.join(case, "case.json"), "w") as f:
        json.dump(spec, f, indent=1, ensure_ascii=False)
        f.write("\n")


def with_model(**changes):
    c = config()
    c["model"].update(changes)
    return c


def with_tensor(name, fn):
    out = tensors()
    for t in out:
        if t[0] == name:
            fn(t)
    return out


def set_value(t, value):
    t[3] = struct.pack("<f", value) + t[3][4:]


def main():
    write_case("ck-control-good", "the unbroken tiny checkpoint every ck-* case breaks",
               [], exit_code=0)
    write_case("ck-config-layers-huge", "num_layers = 1e9: the shapes table had 1e9 entries",
               ["config.json", "num_layers"], cfg=with_model(num_layers=1_000_000_000))
    write_case("ck-config-heads-not-dividing", "d_model 8 is not a multiple of 3 heads",
               ["config.json", "num_heads"], cfg=with_model(num_heads=3))
    write_case("ck-config-positions-huge", "max_seq_len past the 65,536 limit",
               ["config.json", "max_seq_len"], cfg=with_model(max_seq_len=10_000_000))
    write_case("ck-config-eps-negative", "layer_norm_eps = -1 was accepted",
               ["config.json", "layer_norm_eps"], cfg=with_model(layer_norm_eps=-1.0))
    dial = config()
    dial["dial"]["params"]["tau"] = 0.0
    write_case("ck-config-dial-tau-zero", "a saved dial with temperature 0",
               ["config.json", "tau"], cfg=dial)
    words = config()
    words["tokenizer"] = {"kind": "Word", "vocab": ["<unk>", "\n"] + ["w%d" % i for i in range(298)]}
    write_case("ck-config-tokenizer-larger", "300 tokenizer words for vocab_size 96: "
               "index-select invalid index", ["config.json", "300", "96"], cfg=words)
    write_case("ck-config-not-json", "config.json cut in the middle",
               ["config.json", "line 1 column 100"], cfg=json.dumps(config())[:100])
    write_case("ck-weights-i32", "weights declared I32",
               ["model.safetensors", "I32", "tok.weight"],
               weights=safetensors(with_tensor("tok.weight", lambda t: t.__setitem__(1, "I32"))))
    dup = tensors()
    dup.append(list(dup[-1]))
    write_case("ck-weights-named-twice", "anchors.0.keys twice: 'invalid offset' before",
               ["model.safetensors", "anchors.0.keys", "twice"], weights=safetensors(dup))
    write_case("ck-weights-missing", "fc2.bias left out", ["model.safetensors", "blocks.0.fc2.bias"],
               weights=safetensors([t for t in tensors() if t[0] != "blocks.0.fc2.bias"]))
    extra = tensors() + [["blocks.7.secret", "F32", [2], struct.pack("<2f", 1, 2)]]
    write_case("ck-weights-extra", "a tensor the config does not describe",
               ["model.safetensors", "blocks.7.secret"], weights=safetensors(extra))
    write_case("ck-weights-shape", "pos.weight declared [16, 4] but the config needs [16, 8]",
               ["model.safetensors", "pos.weight"],
               weights=safetensors(with_tensor("pos.weight", lambda t: (
                   t.__setitem__(2, [16, 4]), t.__setitem__(3, t[3][:16 * 4 * 4])))))
    write_case("ck-weights-empty-buffer", "a tensor whose offsets hold 0 bytes: 'Shape mismatch, "
               "got buffer of size 0' before", ["model.safetensors", "head.bias"],
               weights=safetensors(with_tensor("head.bias", lambda t: t.__setitem__(3, b""))))
    write_case("ck-weights-nan", "a NaN weight: perplexity NaN beside PF 1.000 before",
               ["model.safetensors", "blocks.0.qkv.weight", "nan"],
               weights=safetensors(with_tensor("blocks.0.qkv.weight",
                                               lambda t: set_value(t, float("nan")))))
    write_case("ck-weights-inf", "an infinite weight", ["model.safetensors", "tok.weight", "inf"],
               weights=safetensors(with_tensor("tok.weight", lambda t: set_value(t, float("inf")))))
    full = safetensors(tensors())
    write_case("ck-weights-truncated", "the data cut short",
               ["model.safetensors", "truncated"], weights=full[: len(full) // 2])
    write_case("ck-weights-header-huge", "a header length of 2^60 bytes",
               ["model.safetensors", "header"], weights=struct.pack("<Q", 1 << 60) + b"{}")
    b = blocks()
    b["token_block"][40] = 9
    write_case("ck-blocks-id-out-of-range", "token 40 mapped to block 9 of 3",
               ["blocks.json", "token_block[40]", "9"], blk=b)
    b = blocks()
    b["token_block"] = b["token_block"][:5]
    write_case("ck-blocks-too-few-tokens", "5 token entries for 96 tokens",
               ["blocks.json", "5 entries", "96"], blk=b)
    b = blocks()
    b["relevance"][1] = 42
    write_case("ck-blocks-relevance-42", "relevance pointing at block 42",
               ["blocks.json", "relevance[1]", "42"], blk=b)
    b = blocks()
    b["names"][2] = ""
    write_case("ck-blocks-empty-name", "an empty block name", ["blocks.json", "names[2]", "empty"],
               blk=b)
    b = blocks()
    b["names"][2] = "vowel"
    write_case("ck-blocks-duplicate-name", "two blocks named vowel",
               ["blocks.json", "vowel", "names[1]"], blk=b)
    b = blocks()
    b["names"], b["relevance"] = [], []
    write_case("ck-blocks-no-names", "no block at all (key_block underflowed for windows)",
               ["blocks.json", "names is empty"], blk=b)
    b = {"kind": {"kind": "Windows", "width": 1}, "names": ["window 0-0", "window 1-1"],
         "token_block": [], "relevance": [0, 1], "source": "hostile test"}
    write_case("ck-blocks-too-few-windows", "windows of width 1 but only 2 names for 16 "
               "positions: every later position fell into the last window, and eval reported "
               "eps 0.0000, PF 1.0000 (perfectly localist)",
               ["blocks.json", "names 2 windows of width 1", "need 16"], blk=b)

    write_case("ck-weights-trailing-bytes", "64 bytes after the last tensor's data (the "
               "safetensors format has none; a file extended by 1 MB was read as if whole)",
               ["model.safetensors", "64 bytes follow the last tensor"],
               weights=safetensors(tensors()) + b"\0" * 64)
    entries = tensors()
    header, data, off = [], b"", 0
    for k, (name, dtype, shape, blob) in enumerate(entries):
        if k == 1:
            data, off = data + b"\0" * 4, off + 4
        header.append('"%s":{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}'
                      % (name, dtype, json.dumps(shape), off, off + len(blob)))
        data, off = data + blob, off + len(blob)
    text = ("{" + ",".join(header) + "}").encode()
    write_case("ck-weights-gap", "4 unused bytes between two tensors (4 zero bytes inserted "
               "in the data shifted every later tensor, and eval reported perplexity 235.8)",
               ["model.safetensors", "4 unused bytes", "tok.weight"],
               weights=struct.pack("<Q", len(text)) + text + data)
    b = {"kind": {"kind": "Windows", "width": 8}, "names": ["window %d" % i for i in range(8)],
         "token_block": [], "relevance": list(range(8)), "source": "hostile test"}
    write_case("ck-blocks-too-many-windows", "8 window names but windows of 8 over 16 positions "
               "make 2 (a width raised from 8 to 64 read as one window: eps 0.0000, PF 1.0000)",
               ["blocks.json", "names 8 windows of width 8", "make 2"], blk=b)
    c = config()
    c["dial"]["schedule"] = {"PerLayer": []}
    write_case("ck-dial-per-layer-short", "a per-layer dial with no value for the one layer "
               "(read as lambda 0)", ["config.json", "per-layer schedule gives 0 values"], cfg=c)
    c = config()
    c["dial"]["params"]["tau"] = 1e300
    write_case("ck-dial-tau-huge", "tau 1e300 (the logits overflowed, and the error blamed the "
               "weights)", ["config.json", "tau = 1e300", "[0.001, 1000]"], cfg=c)
    write_case("ck-head-bias-perplexity-overflow", "one output bias at 65504: cross-entropy "
               "of tens of thousands of nats, and eval printed perplexity inf with exit 0",
               ["cross-entropy", "cannot be scored"],
               weights=safetensors(with_tensor("head.bias", lambda t: set_value(t, 65504.0))))


if __name__ == "__main__":
    main()
