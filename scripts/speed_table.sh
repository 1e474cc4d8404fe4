#!/usr/bin/env bash
# Issue 14's speed table, every row measured in one run on this machine, printed as the
# Markdown table the README shows (our number, PyTorch's where it has one, the ratio, the
# target). Each row's command is in the table. Never part of the test suite.
#
# Usage: scripts/speed_table.sh [ROUNDS=3]
# Needs: python3 (bench_vs_torch.sh makes its torch environment on first use), the models of
# scripts/fetch_models.sh for the SmolLM2 rows (skipped, and said so, without them), and
# nvidia-smi for the GPU row (reported as not measured without a GPU). About 15 minutes on a
# 2-core machine; run it with nothing else busy.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
TARGET="${CARGO_TARGET_DIR:-target}"
LOG="$(mktemp -d)"
trap 'rm -rf "$LOG"' EXIT

cargo build --release -q --examples
cargo bench --bench engine --no-run -q 2>/dev/null
BENCH="$(ls -t "$TARGET"/release/deps/engine-* | grep -v '\.d$' | head -1)"

# median of a criterion benchmark (ms), via its bencher output: "test NAME ... bench: N ns/iter"
crit() { # THREADS FILTER
  LOCALIST_BENCH_THREADS="$1" "$BENCH" --bench --output-format bencher "$2" 2>/dev/null |
    sed -n 's/^test \(.*\) \.\.\. bench: *\([0-9,]*\) ns\/iter.*/\1 \2/p' | tr -d ','
}
ms() { python3 -c "print(f'{$1/1e6:.3g}')"; }

# Training against the peer: "lo–hi ours", "lo–hi torch", "mean ratio".
train_row() { # THREADS
  THREADS="$1" scripts/bench_vs_torch.sh "$ROUNDS" 200 > "$LOG/train$1.csv"
  python3 - "$LOG/train$1.csv" <<'EOF'
import sys
rows = [l.strip().split(',') for l in open(sys.argv[1]) if l[:1].isdigit()]
o = [float(r[1]) for r in rows]; t = [float(r[2]) for r in rows]; q = [float(r[3]) for r in rows]
k = lambda v: f"{v/1000:.1f}k"
print(f"{k(min(o))}–{k(max(o))} tokens/s|{k(min(t))}–{k(max(t))} tokens/s|**{sum(q)/len(q):.2f}** ({min(q):.2f}–{max(q):.2f})")
EOF
}

echo "measuring on: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, $(date -u +%Y-%m-%d)" >&2
T1="$(train_row 1)"
T2="$(train_row 2)"
TORCH="$("${LOCALIST_VENV:-$HOME/.cache/localist-torch-venv}/bin/python" -c \
  'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo "?")"
C1="$(crit 1 capture_64/capture_plus_metrics | awk '{print $2}')"
C2="$(crit 2 capture_64/capture_plus_metrics | awk '{print $2}')"
A1="$(crit 1 capture_64/capture_attention_plus_metrics | awk '{print $2}')"
A2="$(crit 2 capture_64/capture_attention_plus_metrics | awk '{print $2}')"

SMOL=models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
if [ -f "$SMOL" ]; then
  crit 1 smollm2/dial_change_64 > "$LOG/s1"
  crit 2 smollm2/dial_change_64 > "$LOG/s2"
  exact() { grep through_the_worker "$1" | awk '{print $2}'; }
  preview() { grep to_the_preview "$1" | awk '{print $2}'; }
  long() { # TOKENS -> "median s|peak MiB"
    CANDLE_NUM_THREADS=2 RAYON_NUM_THREADS=2 "$TARGET/release/examples/long_text" "$1" 3 |
      sed -n 's/.*median \([0-9.]*\) s; peak resident memory \([0-9]*\) MiB/\1 s|\2 MiB/p'
  }
  L2="$(long 2048)"
  L8="$(long 8192)"
fi

GPU="no NVIDIA GPU on this machine: not measured (\`scripts/gpu_check.sh\` where there is one)"
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  GPU="a GPU is present: run \`scripts/gpu_check.sh\` (builds --features cuda)"
fi

echo "| what (command) | ours | PyTorch $TORCH peer | ratio | target |"
echo "|---|---|---|---|---|"
echo "| training, tiny, batch 32 × 64, λ = 0.01 off-block, one thread each (\`scripts/bench_vs_torch.sh $ROUNDS 200\`) | ${T1%%|*} | $(echo "$T1" | cut -d'|' -f2) | $(echo "$T1" | cut -d'|' -f3) | ≥ 1.5 |"
echo "| the same, two threads each (\`THREADS=2 scripts/bench_vs_torch.sh $ROUNDS 200\`) | ${T2%%|*} | $(echo "$T2" | cut -d'|' -f2) | $(echo "$T2" | cut -d'|' -f3) | ≥ 1.5 |"
echo "| capture + metrics, tiny, 64 tokens, one / two threads (\`LOCALIST_BENCH_THREADS=1 cargo bench --bench engine -- capture_64/capture_plus_metrics\`) | $(ms "$C1") / $(ms "$C2") ms | – | – | ≤ 0.5 ms |"
echo "| the same without the logits, as the studio captures on a dial change (\`… capture_64/capture_attention_plus_metrics\`) | $(ms "$A1") / $(ms "$A2") ms | – | – | ≤ 0.5 ms |"
if [ -f "$SMOL" ]; then
  echo "| SmolLM2-135M, 64 tokens, dial change to new views through the worker, exact, one / two threads (\`LOCALIST_BENCH_THREADS=1 cargo bench --bench engine -- smollm2/dial_change_64\`) | $(ms "$(exact "$LOG/s1")") / $(ms "$(exact "$LOG/s2")") ms | – | – | ≤ 90 / 50 ms |"
  if [ -n "$(preview "$LOG/s1")" ]; then
    echo "| the same during a drag, to the bf16 preview, one / two threads | $(ms "$(preview "$LOG/s1")") / $(ms "$(preview "$LOG/s2")") ms | – | – | (a preview) |"
  fi
  echo "| SmolLM2, 2,048-token text, dial change, two threads (\`CANDLE_NUM_THREADS=2 RAYON_NUM_THREADS=2 cargo run --release --example long_text -- 2048\`): median of 3, peak memory | ${L2%%|*}, ${L2##*|} | – | – | ≤ 4 s, ≤ 2 GB |"
  echo "| SmolLM2, 8,192-token text, the same (\`… long_text -- 8192\`) | ${L8%%|*}, ${L8##*|} | – | – | works within 8 GB |"
else
  echo "| SmolLM2 rows | not measured: run \`scripts/fetch_models.sh\` first | | | |"
fi
echo "| CUDA training against PyTorch on the same GPU | $GPU | | | ≥ 1.0 |"
