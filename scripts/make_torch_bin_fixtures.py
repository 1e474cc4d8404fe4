#!/usr/bin/env python3
"""Write the pytorch_model.bin fixtures (tests/fixtures/torch_bin/) and the hostile .bin cases
(tests/hostile/hf-bin-*) from the safetensors fixtures, with torch.save as transformers 4
wrote them (save_pretrained(safe_serialization=False) saved the state dict with torch.save).

    ~/.cache/localist-torch-venv/bin/python scripts/make_torch_bin_fixtures.py

Fixtures (each only the .bin and, for llama, its index: the tests copy the family folder's
config and tokenizer beside them):
  opt_350m/   the OPT-350m fixture's weights, f32, protocol 2 (as torch.save writes by default),
              named without the model. prefix (decoder.…), as OPTModel saved them
  codegen/    the CodeGen fixture's weights, pickle protocol 4 (FRAME, MEMOIZE, short strings)
  gpt2/       GPT-2's, with c_attn.weight stored transposed (a strided view on its storage) and
              lm_head.weight sharing wte's storage (as model.state_dict() saves a tied head)
  gpt2_legacy/  the same in the format before PyTorch 1.6 (_use_new_zipfile_serialization=False)
  llama/      LLaMA's in two shards with pytorch_model.bin.index.json
  views.bin   small tensors of every dtype read, with offsets and strides, of known values
  views_legacy.bin  the same in the format before PyTorch 1.6
  nested.bin, nested_legacy.bin  a training checkpoint: weights under "model" beside an
              optimizer's tensors (which the old format's storage list holds too)
and the torch_bin fuzz target's seeds (tests/fuzz/seeds/torch_bin/).
"""
import json
import os
import shutil
import struct
import zipfile
from collections import OrderedDict

import torch
from safetensors.torch import load_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAM = os.path.join(ROOT, "tests", "fixtures", "families")
OUT = os.path.join(ROOT, "tests", "fixtures", "torch_bin")
HOSTILE = os.path.join(ROOT, "tests", "hostile")


def state(name):
    return OrderedDict(sorted(load_file(os.path.join(FAM, name, "model.safetensors")).items()))


def fixtures():
    os.makedirs(OUT, exist_ok=True)
    for name, proto in [("opt_350m", 2), ("codegen", 4)]:
        os.makedirs(os.path.join(OUT, name), exist_ok=True)
        sd = state(name)
        if name == "opt_350m":  # as OPTModel saved them: decoder.…, without model.
            sd = OrderedDict((k.removeprefix("model."), v) for k, v in sd.items())
        torch.save(sd, os.path.join(OUT, name, "pytorch_model.bin"), pickle_protocol=proto)
    sd = state("gpt2")
    for k in list(sd):
        if k.endswith("attn.c_attn.weight"):
            sd[k] = sd[k].t().contiguous().t()
    wte = [k for k in sd if k.endswith("wte.weight")][0]
    sd["lm_head.weight"] = sd[wte]
    os.makedirs(os.path.join(OUT, "gpt2"), exist_ok=True)
    torch.save(sd, os.path.join(OUT, "gpt2", "pytorch_model.bin"))
    os.makedirs(os.path.join(OUT, "gpt2_legacy"), exist_ok=True)
    torch.save(sd, os.path.join(OUT, "gpt2_legacy", "pytorch_model.bin"),
               _use_new_zipfile_serialization=False)
    sd = state("llama")
    keys = list(sd)
    half = len(keys) // 2
    os.makedirs(os.path.join(OUT, "llama"), exist_ok=True)
    index = {"metadata": {}, "weight_map": {}}
    for i, part in enumerate([keys[:half], keys[half:]]):
        fname = f"pytorch_model-0000{i + 1}-of-00002.bin"
        torch.save(OrderedDict((k, sd[k]) for k in part), os.path.join(OUT, "llama", fname))
        index["weight_map"].update({k: fname for k in part})
    with open(os.path.join(OUT, "llama", "pytorch_model.bin.index.json"), "w") as f:
        json.dump(index, f, indent=1)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = OrderedDict()
    views["f32"] = base
    views["f32_t"] = base.t()  # stride (1, 6)
    views["f32_row"] = base[2]  # offset 12
    views["f32_cols"] = base[:, 1:5:2]  # offset 1, stride (6, 2)
    views["f16"] = base.to(torch.float16)[1:3]
    views["bf16"] = base.to(torch.bfloat16).t()[::2]
    views["f64"] = base.to(torch.float64)[3]
    views["i64"] = torch.arange(5, dtype=torch.int64)
    views["empty"] = torch.zeros(0, 3)
    torch.save(views, os.path.join(OUT, "views.bin"))
    torch.save(views, os.path.join(OUT, "views_legacy.bin"), _use_new_zipfile_serialization=False)
    # A training checkpoint: the weights under "model", beside an optimizer's tensors and a step.
    nested = {"step": 5, "optimizer": {"exp_avg": torch.ones(3)}, "model": {"w": base[1:3]}}
    torch.save(nested, os.path.join(OUT, "nested.bin"))
    torch.save(nested, os.path.join(OUT, "nested_legacy.bin"), _use_new_zipfile_serialization=False)


def rewrite(src, dst, edit):
    """Copy the zip at src to dst, each entry's bytes passed through edit(name, data)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info.filename))
            if data is not None:
                zout.writestr(info, data)


def case(name, why, expect, write, args=None):
    d = os.path.join(HOSTILE, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for f in ["config.json", "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json"]:
        shutil.copy(os.path.join(FAM, "gpt2", f), d)
    write(d)
    with open(os.path.join(d, "case.json"), "w") as f:
        json.dump({"why": why, "args": args or ["eval", "-c", "{case}", "--lambda", "0"],
                   "expect": expect}, f, indent=1)


def hostile():
    good = os.path.join(OUT, "gpt2", "pytorch_model.bin")
    bin_ = lambda d: os.path.join(d, "pytorch_model.bin")

    def pickle_swap(old, new):
        def edit(name, data):
            if name.endswith("data.pkl"):
                assert old in data, old
                return data.replace(old, new, 1)
            return data
        return edit

    # A pickle that asks for os.system before the state dict: never run, refused by name.
    code = (b"\x80\x02cos\nsystem\nq\x00X\x1b\x00\x00\x00touch /tmp/localist-pwned-binq\x01"
            b"\x85q\x02Rq\x03.")
    case("hf-bin-runs-code", "a pytorch_model.bin whose pickle calls os.system (it must never run)",
         ["pytorch_model.bin", "os.system", "never calls"],
         lambda d: rewrite(good, bin_(d), lambda n, b: code if n.endswith("data.pkl") else b))
    case("hf-bin-eval-global", "a pickle asking for builtins.eval through STACK_GLOBAL",
         ["pytorch_model.bin", "builtins.eval", "never calls"],
         lambda d: rewrite(good, bin_(d), lambda n, b: (
             b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x041+1\x85R." if n.endswith("data.pkl") else b)))
    legacy = os.path.join(OUT, "gpt2_legacy", "pytorch_model.bin")
    case("hf-bin-legacy-cut", "a checkpoint in the format before PyTorch 1.6, its last storage cut",
         ["pytorch_model.bin", "cut short"],
         lambda d: open(bin_(d), "wb").write(open(legacy, "rb").read()[:-100]))
    head = open(legacy, "rb").read()
    sys_end = head.index(b".", head.index(b"type_sizes")) + 1  # the third pickle's STOP
    case("hf-bin-legacy-runs-code", "the old format with os.system in place of the state dict",
         ["pytorch_model.bin", "os.system", "never calls"],
         lambda d: open(bin_(d), "wb").write(head[:sys_end] + code + head[sys_end:]))
    case("hf-bin-truncated", "a pytorch_model.bin cut in half",
         ["pytorch_model.bin", "damaged zip archive"],
         lambda d: open(bin_(d), "wb").write(open(good, "rb").read()[: os.path.getsize(good) // 2]))
    case("hf-bin-not-zip", "a pytorch_model.bin of text", ["pytorch_model.bin", "not a PyTorch checkpoint"],
         lambda d: open(bin_(d), "w").write("git-lfs pointer, not the weights\n"))

    def short_storage(d):
        rewrite(good, bin_(d), lambda n, b: b[:-8] if n.endswith("/data/0") else b)
    case("hf-bin-storage-short", "a storage entry shorter than its element count",
         ["pytorch_model.bin", "data/0", "needs"], short_storage)

    def compressed(d):
        with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bin_(d), "w", zipfile.ZIP_DEFLATED) as z:
            for info in zin.infolist():
                z.writestr(info.filename, zin.read(info.filename))
    case("hf-bin-compressed", "a zip archive whose entries are deflated (torch.save never does)",
         ["pytorch_model.bin", "compressed"], compressed)

    def past_end(d):
        # One tensor's view made to start near the end of its storage.
        def edit(n, b):
            if not n.endswith("data.pkl"):
                return b
            i = b.index(b"Q")  # the first BINPERSID; the offset follows as BININT1 0
            assert b[i + 1:i + 3] == b"K\x00", b[i:i + 4]
            return b[:i + 1] + b"M\xff\xff" + b[i + 3:]
        rewrite(good, bin_(d), edit)
    case("hf-bin-view-past-end", "a tensor whose view reaches past the end of its storage",
         ["pytorch_model.bin", "reaches past"], past_end)

    def huge_string(d):
        rewrite(good, bin_(d), lambda n, b: (b"\x80\x02X\xff\xff\xff\xff" + b"x" * 16) if n.endswith("data.pkl") else b)
    case("hf-bin-string-huge", "a pickle string claiming 4 GB in a file of a few hundred KB",
         ["pytorch_model.bin", "ends early"], huge_string)

    def nan(d):
        sd = state("gpt2")
        k = [k for k in sd if k.endswith("mlp.c_fc.weight")][0]
        sd[k][0, 0] = float("nan")
        torch.save(sd, bin_(d))
    case("hf-bin-nan-weight", "a NaN among the weights of a pytorch_model.bin",
         ["pytorch_model.bin", "NaN or infinite"], nan)

    def escape(d):
        with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
            json.dump({"weight_map": {"h.0.ln_1.weight": "../../../etc/passwd"}}, f)
    case("hf-bin-shard-path-escape", "a .bin shard index naming a file outside the folder",
         ["pytorch_model.bin.index.json", "is not a .bin file name in the model's folder"], escape)


def seeds():
    """The torch_bin fuzz target's seeds (tests/fuzz/seeds/torch_bin/): views.bin in pickle
    protocols 2 and 4, and small files of each hostile kind (the target reads up to 64 KB)."""
    d = os.path.join(ROOT, "tests", "fuzz", "seeds", "torch_bin")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    views = os.path.join(OUT, "views.bin")
    shutil.copy(views, os.path.join(d, "views.bin"))
    torch.save(torch.load(views), os.path.join(d, "views-protocol4.bin"), pickle_protocol=4)
    code = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idtR."
    rewrite(views, os.path.join(d, "runs-code.bin"), lambda n, b: code if n.endswith("data.pkl") else b)
    rewrite(views, os.path.join(d, "storage-short.bin"), lambda n, b: b[:-4] if n.endswith("/data/0") else b)
    torch.save(torch.load(views), os.path.join(d, "legacy.bin"), _use_new_zipfile_serialization=False)


if __name__ == "__main__":
    fixtures()
    hostile()
    seeds()
