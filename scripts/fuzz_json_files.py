#!/usr/bin/env python3
"""Structured fuzzing of the JSON files of every bundled model through the CLI.

The JSON files of each model folder (every Hugging Face family of tests/fixtures/families:
config.json, tokenizer_config.json, tokenizer.json; every checkpoint of sample_models:
config.json, blocks.json, recruitment.json), and the JSON header of each model.safetensors
(dtypes, shapes, data offsets), are fuzzed one at a time: each value (nested ones
too; of a large object or list only the first few) is replaced in turn by hostile values (zero,
negative, huge, fractional, null, wrong types, a list cut short or lengthened), or removed, and
`localist capture` opens the folder and captures a short text. A run passes when it captures
or refuses with an error that names the folder or its file; it fails on a panic, an abort (an
allocation refused under the memory limit is one), a signal, a hang past the time limit, or an
error that names neither.

Usage: BIN=target/release/localist python3 scripts/fuzz_json_files.py [DIR/FILE ...]
  (default: every file above). LIMIT_S, MEM_GB and JOBS as fuzz_common.py says. Prints each
  failure and a summary; exits 1 if any failed.
"""
import copy
import glob
import json
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_common import ROOT, TEXT, capture, check_binary, drive  # noqa: E402

FAMILIES = os.path.join(ROOT, "tests", "fixtures", "families")
FILES = ["config.json", "tokenizer_config.json", "tokenizer.json", "blocks.json",
         "recruitment.json", "model.safetensors"]


def load(path):
    """The file's JSON, and the bytes that follow it (a safetensors file's tensor data)."""
    with open(path, "rb") as fh:
        b = fh.read()
    if path.endswith(".safetensors"):
        n = struct.unpack_from("<Q", b)[0]
        return json.loads(b[8:8 + n]), b[8 + n:]
    return json.loads(b), None


def save(path, obj, tail):
    text = json.dumps(obj).encode()
    with open(path, "wb") as fh:
        if tail is not None:
            text += b" " * ((-len(text)) % 8)
            fh.write(struct.pack("<Q", len(text)) + text + tail)
        else:
            fh.write(text)


SCALARS = [0, -1, 1, 3, 2**31, 2**53, 1e308, -1e308, 0.5, -0.5, None, "abc", True, [], {}]


def leaves(obj, path=()):
    """Every value's path: dict keys and list indices, the containers themselves included."""
    yield path
    if isinstance(obj, dict):
        for k in list(obj)[:4] if len(obj) > 32 else obj:
            yield from leaves(obj[k], path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:4] if len(obj) > 8 else obj):
            yield from leaves(v, path + (i,))


def get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def mutations(config):
    for path in leaves(config):
        if not path:
            continue
        old = get(config, path)
        values = list(SCALARS)
        if isinstance(old, list) and old:
            values += [old[:-1], old + old[-1:]]
            if len(old) <= 64:
                values.append([str(x) for x in old])
        if isinstance(old, (int, float)) and not isinstance(old, bool) and old not in (0, 1):
            values += [old * 2, old + 1, old - 1]
        for v in values:
            if v == old and type(v) is type(old):
                continue
            c = copy.deepcopy(config)
            get(c, path[:-1])[path[-1]] = v
            yield f"{'.'.join(map(str, path))} = {json.dumps(v)}", c
        c = copy.deepcopy(config)
        parent = get(c, path[:-1])
        if isinstance(parent, dict):
            del parent[path[-1]]
            yield f"{'.'.join(map(str, path))} removed", c


def text_for(folder):
    """A text in the model's vocabulary: a word-level checkpoint knows only its corpus' words."""
    try:
        with open(os.path.join(folder, "config.json")) as fh:
            vocab = json.load(fh).get("tokenizer", {}).get("vocab")
    except (OSError, ValueError, AttributeError):
        vocab = None
    if isinstance(vocab, list) and len(vocab) > 22:
        return " ".join(w for w in vocab[2:22] if isinstance(w, str) and w.strip())
    return TEXT


def run(target, label, config, tail):
    src, name = os.path.split(target)
    with tempfile.TemporaryDirectory(prefix="fuzzcfg") as tmp:
        d = os.path.join(tmp, os.path.basename(src))
        os.mkdir(d)
        for f in os.listdir(src):
            if f != name:
                os.symlink(os.path.join(src, f), os.path.join(d, f))
        save(os.path.join(d, name), config, tail)
        return capture(d, text_for(src), os.path.relpath(target, ROOT), label, (d, name))


def main():
    targets = [os.path.abspath(t) for t in sys.argv[1:]] or sorted(
        p for d in glob.glob(os.path.join(FAMILIES, "*")) + glob.glob(
            os.path.join(ROOT, "sample_models", "tiny-*")) for p in
        (os.path.join(d, f) for f in FILES) if os.path.exists(p))
    # Files alike byte for byte (the families share tokenizers) are fuzzed once.
    seen = set()
    targets = [t for t in targets if not (open(t, "rb").read() in seen or seen.add(
        open(t, "rb").read()))]
    jobs = []
    for target in targets:
        base, tail = load(target)
        jobs += [(target, label, c, tail) for label, c in mutations(base)]
    drive(jobs, run, f"{len(targets)} JSON files")


if __name__ == "__main__":
    check_binary()
    main()
