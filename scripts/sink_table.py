#!/usr/bin/env python3
"""Where a model's attention goes, over every layer and head and every query after the first:
ε (SPEC's off-block mass, the first position and the query itself counted in R(i)), the mass
on the first token, on the query itself, and on the other keys of the query's own block.

Usage: scripts/sink_table.py LOCALIST_BIN TEXT_FILE MODEL [MODEL ...]

Each MODEL is captured on the text with `localist capture --format csv` at λ_inf = 0. The text
used in the README is the 500 characters of the bundled Shakespeare that start at the first
line break after 90% of the file (inside the held-out tenth).
"""

import csv
import io
import subprocess
import sys


def held_out_text(path: str, chars: int = 500) -> str:
    data = open(path, encoding="utf-8").read()
    start = data.index("\n", int(len(data) * 0.9)) + 1
    return data[start : start + chars]


def table_row(binary: str, model: str, text: str) -> tuple:
    out = subprocess.run(
        [binary, "capture", "-c", model, "--text", text, "--format", "csv"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for r in csv.DictReader(io.StringIO(out)):
        q = int(r["query"])
        if q == 0:
            continue
        key = (r["layer"], r["head"], q)
        acc = rows.setdefault(key, [0.0, 0.0, 0.0, float(r["row_off_block_mass"])])
        k, w = int(r["key"]), float(r["weight"])
        if k == 0:
            acc[0] += w
        elif k == q:
            acc[1] += w
        elif r["key_block"] == r["relevant_block"]:
            acc[2] += w
    n = max(len(rows), 1)
    first = sum(v[0] for v in rows.values()) / n
    own = sum(v[1] for v in rows.values()) / n
    block = sum(v[2] for v in rows.values()) / n
    eps = sum(v[3] for v in rows.values()) / n
    return eps, first, own, block


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    binary, text_file, models = sys.argv[1], sys.argv[2], sys.argv[3:]
    text = held_out_text(text_file)
    print("| model | ε | mass on the first token | on itself | on other keys of its own block |")
    print("|---|---|---|---|---|")
    for m in models:
        eps, first, own, block = table_row(binary, m, text)
        print(f"| {m} | {eps:.3f} | {first:.3f} | {own:.3f} | {block:.3f} |")


if __name__ == "__main__":
    main()
