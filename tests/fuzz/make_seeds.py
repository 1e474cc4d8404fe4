#!/usr/bin/env python3
"""Write the fuzz targets' base files and seed corpora under tests/fuzz/seeds/.

base/hf/ is the unbroken tiny BERT folder the hf_folder target breaks one file at a time, and
base/model.gguf the unbroken tiny LLaMA. Each target's seeds are the base files plus every
crafted bad file of tests/hostile/ of its kind; for the folder targets a seed is one byte
(which file to replace) followed by that file's bytes, as the targets read their input.
Run from the repository root: python3 tests/fuzz/make_seeds.py
"""

import glob
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import make_hostile_gguf as mk  # noqa: E402

SEEDS = os.path.join(HERE, "seeds")
HOSTILE = os.path.join(ROOT, "tests", "hostile")

CHECKPOINT = ["config.json", "blocks.json", "model.safetensors"]
HF = ["config.json", "tokenizer.json", "model.safetensors"]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


def folder_seeds(target, names, folders):
    for case, folder in folders:
        for i, name in enumerate(names):
            p = os.path.join(folder, name)
            if os.path.isfile(p):
                write(os.path.join(SEEDS, target, f"{case}-{name}"), bytes([i]) + read(p))


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)
    base_hf = os.path.join(SEEDS, "base", "hf")
    write(os.path.join(base_hf, "config.json"), json.dumps(mk.BERT, indent=1))
    write(os.path.join(base_hf, "tokenizer.json"), mk.tokenizer_json(mk.WORDS))
    write(os.path.join(base_hf, "model.safetensors"), mk.safetensors(mk.bert_tensors(mk.BERT)))
    good_gguf = mk.gguf(mk.llama_metadata(), mk.llama_tensors())
    write(os.path.join(SEEDS, "base", "model.gguf"), good_gguf)

    ck = [(os.path.basename(d), os.path.join(d, "model"))
          for d in sorted(glob.glob(os.path.join(HOSTILE, "ck-*")))]
    folder_seeds("checkpoint", CHECKPOINT, ck)
    hf = [("base", base_hf)] + [(os.path.basename(d), d)
                                for d in sorted(glob.glob(os.path.join(HOSTILE, "hf-*")))]
    folder_seeds("hf_folder", HF, hf)

    write(os.path.join(SEEDS, "gguf", "base.gguf"), good_gguf)
    for p in sorted(glob.glob(os.path.join(HOSTILE, "*", "*.gguf"))):
        write(os.path.join(SEEDS, "gguf", os.path.basename(os.path.dirname(p)) + ".gguf"), read(p))
    for kind, pattern in [("rules", "*.rules"), ("audit_report", "report.json"),
                          ("session", "*.localist-session.json")]:
        for p in sorted(glob.glob(os.path.join(HOSTILE, "*", pattern))):
            name = os.path.basename(os.path.dirname(p)) + "-" + os.path.basename(p)
            write(os.path.join(SEEDS, kind, name), read(p))
    rules = sorted(glob.glob(os.path.join(ROOT, "assets", "**", "*.rules"), recursive=True))
    for p in rules:
        write(os.path.join(SEEDS, "rules", os.path.basename(p)), read(p))
    session = {"format": "localist-session", "version": 1, "saved_at_unix": 0,
               "checkpoint": None, "dial": {"params": {"mode": "Bias", "lambda": 0.5}},
               "text": "patient paid 40 euros", "rules_off": []}
    write(os.path.join(SEEDS, "session", "minimal.json"), json.dumps(session, indent=1))
    session["rules"] = [read(rules[0]).decode()] if rules else []
    write(os.path.join(SEEDS, "session", "with-rules.json"), json.dumps(session, indent=1))


if __name__ == "__main__":
    main()
