#!/bin/bash
# Recruitment on corpora of the independent generator (gen.py), with the sample command at the default round spacing.
# Usage: scripts/recruit_probe/run.sh [OUT_DIR]   (BIN: the localist binary to run)
# Prints one line per corpus: its knobs, the ARI, held-out perplexity and the round cost.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="${BIN:-$HERE/../../target/release/localist}"
OUT="${1:-/tmp/recruit_probe}"
mkdir -p "$OUT"
# name seed K docs function-rate markers theme seg-min seg-max real theme-fraction
while read -r name seed K docs fw mk th s0 s1 real tp; do
  python3 "$HERE/gen.py" "$seed" "$K" "$docs" "$fw" "$mk" "$th" "$s0" "$s1" "$real" \
    "$OUT/$name.txt" "$OUT/$name.tsv" "$tp"
  "$BIN" train --corpus "$OUT/$name.txt" --tokenizer word --recruit --lambda-train 1 \
    --steps 800 --lr 3e-3 --out "$OUT/$name.ck" > "$OUT/$name.log" 2>&1
  echo "$name K=$K docs=$docs function=$fw markers=$mk theme=$th seg=$s0-$s1 real=$real" \
    "theme-fraction=$tp: $(python3 "$HERE/ari.py" "$OUT/$name.ck" "$OUT/$name.tsv")" \
    "| $(grep -o 'perplexity [0-9.]*' "$OUT/$name.log" | tail -1)" \
    "| $(grep -o 'recruitment cost.*' "$OUT/$name.log")"
done <<CFG
c1 7 4 500 0.2 1 4 4 12 0 0.7
c2 11 3 800 0.35 0 5 3 10 1 0.7
c3 13 6 1500 0.1 1 3 5 14 0 0.7
c4 17 5 1000 0.25 0 4 4 12 1 0.7
c5 19 8 2000 0.2 1 4 4 12 0 0.7
c2t 11 3 800 0.35 0 5 3 10 1 1.0
c4t 17 5 1000 0.25 0 4 4 12 1 1.0
c6 23 4 1000 0.2 0 4 4 12 1 1.0
CFG
