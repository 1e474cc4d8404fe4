#!/bin/bash
# Recruitment on N corpora of the independent generator (gen.py) whose knobs are drawn at random
# (K 2-8, function words 0-40%, markers on or off, theme 3-6, segment lengths, 200-8,000
# documents, real or made-up words, theme fraction 0.9 or 1.0), each with the sample command
# at the default round spacing, two at a time.
# Usage: BIN=... scripts/recruit_probe/sweep.sh [OUT_DIR] [N=12] [SEED=2026]
# FLAGS="..." adds options to each train command; the README's sample command itself is
# FLAGS="--recruit-warmup 50 --recruit-every 25" (the issue's flags).
# Prints one line per corpus: its knobs, the ARI, held-out perplexity and the seconds it took.
# PLAIN=1 also trains each corpus the same steps without --recruit (issue 15 point 2) and
# prints that run's held-out perplexity and the ratio of the two. ORACLE=1 also trains it with
# the generator's true topic blocks given from the first step (--blocks lexicon:TRUTH.tsv, the
# localist model recruitment aims at) and prints that ratio: where both ratios are high the
# cost is the block structure's, not recruitment's. SENTENCES=1 rewrites each corpus in
# sentences (sentences.py: capitals, full stops, commas, CRLF) before training. UNEQUAL=1 makes
# the topics unequally common (gen.py: a segment is of topic k with weight 1/(k+1)). NSEG="A B"
# draws A-B segments a document (gen.py; default 3-6).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BIN="${BIN:-$HERE/../../target/release/localist}" HERE FLAGS="${FLAGS:-}"
export OUT="${1:-/tmp/recruit_sweep}"
N="${2:-12}"
SEED="${3:-2026}"
mkdir -p "$OUT"
python3 - "$N" "$SEED" > "$OUT/configs.txt" <<'PY'
import random, sys
r = random.Random(int(sys.argv[2]))
for i in range(int(sys.argv[1])):
    K = r.randint(2, 8); real = r.random() < 0.5
    fw = r.choice([0.0, 0.1, 0.2, 0.3, 0.4]); mk = int(r.random() < 0.5)
    th = r.randint(3, 6); s0 = r.randint(2, 6); s1 = s0 + r.randint(4, 10)
    docs = r.choice([200, 500, 1000, 2000, 4000, 8000])
    tp = r.choice([1.0, 1.0, 0.9])
    print(f"s{i} {100 + i} {K} {docs} {fw} {mk} {th} {s0} {s1} {int(real)} {tp}")
PY
one() {
  read -r name seed K docs fw mk th s0 s1 real tp <<< "$*"
  python3 "$HERE/gen.py" "$seed" "$K" "$docs" "$fw" "$mk" "$th" "$s0" "$s1" "$real" \
    "$OUT/$name.txt" "$OUT/$name.tsv" "$tp" latin "${UNEQUAL:-0}"
  if [ -n "${SENTENCES:-}" ]; then
    python3 "$HERE/sentences.py" "$OUT/$name.txt" "$OUT/$name.s.txt" "$seed"
    mv "$OUT/$name.s.txt" "$OUT/$name.txt"
  fi
  local start=$SECONDS
  "$BIN" train --corpus "$OUT/$name.txt" --tokenizer word --recruit --lambda-train 1 \
    --steps 800 --lr 3e-3 $FLAGS --out "$OUT/$name.ck" > "$OUT/$name.log" 2>&1
  local plain="" a
  a=$(grep -o 'held-out: perplexity [0-9.]*' "$OUT/$name.log" | grep -o '[0-9.]*$' || true)
  if [ -n "${PLAIN:-}" ]; then
    "$BIN" train --corpus "$OUT/$name.txt" --tokenizer word --lambda-train 1 \
      --steps 800 --lr 3e-3 --out "$OUT/$name.plain" > "$OUT/$name.plain.log" 2>&1
    local b
    b=$(grep -o 'held-out: perplexity [0-9.]*' "$OUT/$name.plain.log" | grep -o '[0-9.]*$')
    plain=" | without --recruit $b (ratio $(python3 -c "print(f'{$a/$b:.3f}')"))"
  fi
  if [ -n "${ORACLE:-}" ]; then
    "$BIN" train --corpus "$OUT/$name.txt" --tokenizer word --lambda-train 1 \
      --blocks "lexicon:$OUT/$name.tsv" --steps 800 --lr 3e-3 --out "$OUT/$name.oracle" \
      > "$OUT/$name.oracle.log" 2>&1
    local c
    c=$(grep -o 'held-out: perplexity [0-9.]*' "$OUT/$name.oracle.log" | grep -o '[0-9.]*$')
    plain="$plain | with the true blocks $c (ratio $(python3 -c "print(f'{$a/$c:.3f}')"))"
  fi
  echo "$name K=$K docs=$docs function=$fw markers=$mk theme=$th seg=$s0-$s1 real=$real" \
    "theme-fraction=$tp: $(python3 "$HERE/ari.py" "$OUT/$name.ck" "$OUT/$name.tsv")" \
    "| $(grep -o 'perplexity [0-9.]*' "$OUT/$name.log" | tail -1)$plain | $((SECONDS - start)) s"
}
export -f one
xargs -P 2 -I{} bash -c 'one {}' < "$OUT/configs.txt" | sort -V
