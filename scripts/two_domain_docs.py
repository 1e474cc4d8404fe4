#!/usr/bin/env python3
"""Write a file of documents from two clearly different domains, blank-line separated, for
`localist specialists` (the demonstration of specialists as adapters on a pretrained base):
passages of the bundled Shakespeare and groups of clinical notes from `localist synth`.

usage: scripts/two_domain_docs.py NOTES_CORPUS OUT [--passages N] [--note-docs M]
           [--notes-per-doc K] [--chars C]
  NOTES_CORPUS  corpus.txt written by `localist synth --clinical-fraction 1 --out DIR`
"""
import argparse
from pathlib import Path

p = argparse.ArgumentParser()
p.add_argument("notes", type=Path)
p.add_argument("out", type=Path)
p.add_argument("--passages", type=int, default=16, help="Shakespeare passages")
p.add_argument("--note-docs", type=int, default=48, help="documents of clinical notes")
p.add_argument("--notes-per-doc", type=int, default=12)
p.add_argument("--chars", type=int, default=900, help="characters per passage")
a = p.parse_args()
play = (Path(__file__).parent.parent / "assets/corpora/shakespeare_1mb.txt").read_text()
notes = [l for l in a.notes.read_text().splitlines() if l.strip()]
if len(notes) < a.note_docs * a.notes_per_doc:
    raise SystemExit(f"{a.notes}: {len(notes)} notes, need {a.note_docs * a.notes_per_doc}")
# Passages spread over the plays (the first 100,000 characters skipped), whole lines only.
stride = (len(play) - 100_000 - a.chars) // max(a.passages, 1)
passages = []
for k in range(a.passages):
    start = 100_000 + k * stride
    lines = play[start:start + a.chars].splitlines()[1:-1]
    passages.append("\n".join(l for l in lines if l.strip()))
groups = ["\n".join(notes[k * a.notes_per_doc:(k + 1) * a.notes_per_doc]) for k in range(a.note_docs)]
docs = []
for k in range(max(a.passages, a.note_docs)):
    if k < a.passages:
        docs.append(passages[k])
    if k < a.note_docs:
        docs.append(groups[k])
a.out.write_text("\n\n".join(docs) + "\n")
print(f"wrote {len(docs)} documents ({a.passages} Shakespeare passages, {a.note_docs} groups of "
      f"{a.notes_per_doc} clinical notes) to {a.out}")
