#!/usr/bin/env bash
# Our trainer against the PyTorch peer (../shared/reference/torch_baseline.py) on the same
# configuration and batches: tiny preset, batch 32 x 64, sequential batches, off-block group
# penalty over windows of 8 at λ = 0.01, THREADS threads each (default 1), alternating runs.
# Prints the ratio of training tokens per second (ours / torch). Never part of the test suite.
# Ours runs without the held-out curve (--eval-every 0): the peer, too, times training steps
# only and evaluates after them.
#
# Usage: [THREADS=1] scripts/bench_vs_torch.sh [ROUNDS=3] [STEPS=200]
# Needs python3 with pip; creates a virtual environment with torch, numpy and safetensors
# (about 2.8 GB) under ${LOCALIST_VENV:-$HOME/.cache/localist-torch-venv} on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
STEPS="${2:-200}"
THREADS="${THREADS:-1}"
REF="${LOCALIST_REFERENCE:-../shared/reference/torch_baseline.py}"
CORPUS="assets/corpora/shakespeare_1mb.txt"
VENV="${LOCALIST_VENV:-$HOME/.cache/localist-torch-venv}"
[ -f "$REF" ] || { echo "error: reference script not found at $REF (set LOCALIST_REFERENCE)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "creating $VENV (torch, numpy, safetensors)..." >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch numpy safetensors
fi

cargo build --release -q
OURS=target/release/localist
if [ -n "${CARGO_TARGET_DIR:-}" ]; then OURS="$CARGO_TARGET_DIR/release/localist"; fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

ours_tps() {
  CANDLE_NUM_THREADS=$THREADS RAYON_NUM_THREADS=$THREADS "$OURS" --threads "$THREADS" train --corpus "$CORPUS" --blocks windows:8 --lambda-train 0.01 \
    --batch 32 --seq 64 --sequential --mu-anchor 0 --steps $((STEPS + 10)) --no-optimizer-state \
    --eval-every 0 --quiet --out "$TMP/ours" | sed -n 's/^steady-state training speed: \([0-9.]*\) tokens.*/\1/p'
}
torch_tps() {
  OMP_NUM_THREADS=$THREADS "$VENV/bin/python" "$REF" --corpus "$CORPUS" --threads "$THREADS" --batch 32 --seq 64 \
    --lam 0.01 --group offblock --block 8 --steps "$STEPS" --warmup 10 --eval-batches 2 \
    --lat-iters 20 | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["train_tokens_per_s"])'
}

echo "threads $THREADS each"
echo "round,ours_tokens_per_s,torch_tokens_per_s,ratio"
sum_ratio=0
for r in $(seq 1 "$ROUNDS"); do
  o=$(ours_tps); t=$(torch_tps)
  ratio=$(python3 -c "print(f'{$o/$t:.3f}')")
  sum_ratio=$(python3 -c "print($sum_ratio + $ratio)")
  echo "$r,$o,$t,$ratio"
done
python3 -c "print(f'mean ratio ours/torch over $ROUNDS rounds: {$sum_ratio/$ROUNDS:.3f}')"
