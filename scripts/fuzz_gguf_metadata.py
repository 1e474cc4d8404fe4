#!/usr/bin/env python3
"""Structured fuzzing of every bundled GGUF file's metadata and tensor table through the CLI.

Each metadata value of each GGUF fixture (tests/fixtures/*.gguf, tests/fixtures/llamacpp/*.gguf
and tests/fixtures/iq4/*.gguf) is replaced in turn by hostile values of its own type (zero, the
type's largest and smallest, NaN and infinities, an empty or lengthened string, an array cut
short, emptied or lengthened), by a value of another type, or removed; so is each field of the
first tensors' entries in the tensor table (a dimension, the number of dimensions, the data
type, the offset). The file is written again with its tensor data re-aligned, and `localist
capture` opens and captures a short text, judged as fuzz_common.py says.

Usage: BIN=target/release/localist python3 scripts/fuzz_gguf_metadata.py [FILE ...]
  LIMIT_S, MEM_GB and JOBS as fuzz_common.py says.
"""
import glob
import os
import struct
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fuzz_common import ROOT, TEXT, capture, check_binary, drive  # noqa: E402

# GGUF value types: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64
FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q",
       11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9


class Reader:
    def __init__(self, b, pos=0):
        self.b, self.pos = b, pos

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.b[self.pos:self.pos + n]
        self.pos += n
        return s

    def value(self, t):
        if t in FMT:
            return self.take(FMT[t])
        if t == STRING:
            return self.string()
        if t == ARRAY:
            et, n = self.take("<I"), self.take("<Q")
            return (et, [self.value(et) for _ in range(n)])
        raise ValueError(f"type {t}")


def pack(t, v):
    if t in FMT:
        return struct.pack(FMT[t], v)
    if t == STRING:
        return struct.pack("<Q", len(v)) + v
    et, items = v
    return struct.pack("<IQ", et, len(items)) + b"".join(pack(et, x) for x in items)


def parse(path):
    b = open(path, "rb").read()
    r = Reader(b)
    assert r.take("<I") == 0x46554747, path
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    kvs = []
    for _ in range(n_kv):
        k = r.string()
        t = r.take("<I")
        kvs.append((k, t, r.value(t)))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        dims = [r.take("<Q") for _ in range(r.take("<I"))]
        infos.append((name, dims, r.take("<I"), r.take("<Q")))
    align = next((v for k, t, v in kvs if k == b"general.alignment"), 32)
    data_start = (r.pos + align - 1) // align * align
    return version, n_tensors, kvs, infos, b[data_start:], align


def write(path, version, n_tensors, kvs, infos, data, align):
    head = struct.pack("<IIQQ", 0x46554747, version, n_tensors, len(kvs))
    for k, t, v in kvs:
        head += struct.pack("<Q", len(k)) + k + struct.pack("<I", t) + pack(t, v)
    for name, dims, t, offset in infos:
        head += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(dims))
        head += b"".join(struct.pack("<Q", d) for d in dims) + struct.pack("<IQ", t, offset)
    head += b"\0" * ((-len(head)) % align)
    with open(path, "wb") as fh:
        fh.write(head + data)


def hostile(t, v):
    """Values of the same type, then of other types."""
    out = []
    if t in (0, 2, 4, 10):
        out += [(t, 0), (t, 1), (t, (1 << (8 * struct.calcsize(FMT[t]))) - 1)]
    elif t in (1, 3, 5, 11):
        bits = 8 * struct.calcsize(FMT[t])
        out += [(t, 0), (t, -1), (t, (1 << (bits - 1)) - 1), (t, -(1 << (bits - 1)))]
    elif t in (6, 12):
        out += [(t, x) for x in (0.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e30)]
    elif t == 7:
        out += [(t, not v)]
    elif t == STRING:
        out += [(t, b""), (t, b"\xff\xfe"), (t, v + b"x"), (t, v * 50)]
    elif t == ARRAY:
        et, items = v
        out += [(t, (et, items[:-1])), (t, (et, [])), (t, (et, items + items[-1:]))]
        if items and et in (4, 5, 6, 0, 1):
            out += [(t, (et, items[:len(items) // 2]))]
        if len(items) <= 64:
            out += [(t, (STRING, [b"x"] * len(items)))]
    if t != STRING:
        out += [(STRING, b"12")]
    if t not in (4, STRING, ARRAY):
        out += [(4, 7)]
    if t != 6:
        out += [(6, 2.5)]
    return out


def cases(path):
    version, n_tensors, kvs, infos, data, align = parse(path)
    for i, (k, t, v) in enumerate(kvs):
        if k == b"general.alignment":
            continue
        for nt, nv in hostile(t, v):
            new = kvs[:i] + [(k, nt, nv)] + kvs[i + 1:]
            label = f"{k.decode(errors='replace')}: type {t} -> {nt} {repr(nv)[:60]}"
            yield label, (version, n_tensors, new, infos, data, align)
        yield f"{k.decode(errors='replace')} removed", \
            (version, n_tensors, kvs[:i] + kvs[i + 1:], infos, data, align)
    for i, (name, dims, t, offset) in enumerate(infos[:4] + infos[-1:]):
        i = i if i < 4 else len(infos) - 1
        tried = []
        for j in range(len(dims)):
            for d in (0, 1, dims[j] + 1, dims[j] * 2, 1 << 32, (1 << 63) - 1, (1 << 64) - 1):
                tried.append((f"dim {j} = {d}", (name, dims[:j] + [d] + dims[j + 1:], t, offset)))
        tried += [("no dims", (name, [], t, offset)), ("one more dim", (name, dims + [1], t, offset)),
                  ("one dim fewer", (name, dims[:-1], t, offset))]
        tried += [(f"type {nt}", (name, dims, nt, offset)) for nt in (0, 1, 2, 8, 12, 30, 99)
                  if nt != t]
        tried += [(f"offset {o}", (name, dims, t, o)) for o in
                  (offset + 1, offset + 32, offset + (1 << 40), (1 << 64) - 1) + ((0,) if offset else ())]
        for label, info in tried:
            new = infos[:i] + [info] + infos[i + 1:]
            yield f"tensor {name.decode(errors='replace')}: {label}", \
                (version, n_tensors, kvs, new, data, align)


def run(path, label, parts):
    with tempfile.TemporaryDirectory(prefix="fuzzgguf") as tmp:
        f = os.path.join(tmp, os.path.basename(path))
        write(f, *parts)
        return capture(f, TEXT, os.path.relpath(path, ROOT), label, (f,))


def main():
    files = sys.argv[1:] or sorted(
        glob.glob(os.path.join(ROOT, "tests/fixtures/*.gguf")) +
        glob.glob(os.path.join(ROOT, "tests/fixtures/llamacpp/*.gguf")) +
        glob.glob(os.path.join(ROOT, "tests/fixtures/iq4/*.gguf")))
    jobs = [(f, label, parts) for f in files for label, parts in cases(f)]
    drive(jobs, run, f"{len(files)} GGUF models")


if __name__ == "__main__":
    check_binary()
    main()
