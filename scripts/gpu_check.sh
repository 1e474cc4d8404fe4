#!/usr/bin/env bash
# The GPU check of the speed issue, as one prepared script for a machine with an NVIDIA GPU:
#   1. builds the release binary and examples with `--features cuda`;
#   2. CPU against CUDA loss parity on the PyTorch-parity setup (examples/device_parity.rs);
#   3. training speed against PyTorch on the same GPU: our `localist train` (CUDA) and the
#      PyTorch peer (../shared/reference/torch_baseline.py, run on CUDA through a wrapper that
#      puts its model and batches on the GPU), alternating, same configuration as
#      scripts/bench_vs_torch.sh; prints the ratio.
# Without a GPU it says so and exits 0: nothing here can be measured on a CPU-only machine.
#
# Usage: scripts/gpu_check.sh [ROUNDS=3] [STEPS=300] [PARITY_STEPS=20]
# Output: a summary on stdout and every log under ${OUT:-/tmp/gpu_check}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${1:-3}"
STEPS="${2:-300}"
PARITY_STEPS="${3:-20}"
OUTDIR="${OUT:-/tmp/gpu_check}"
mkdir -p "$OUTDIR"
REF="${LOCALIST_REFERENCE:-../shared/reference/torch_baseline.py}"
CORPUS="assets/corpora/shakespeare_1mb.txt"
VENV="${LOCALIST_VENV:-$HOME/.cache/localist-torch-venv}"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "no NVIDIA GPU on this machine (nvidia-smi finds none): the CUDA build, CPU/GPU parity"
  echo "and the GPU speed against PyTorch were not measured."
  exit 0
fi
nvidia-smi -L | tee "$OUTDIR/gpu.txt"
command -v nvcc >/dev/null 2>&1 || export PATH="/usr/local/cuda/bin:$PATH"

echo "== building with --features cuda" >&2
cargo build --release --features cuda --bin localist --example device_parity \
  > "$OUTDIR/build.log" 2>&1 || { tail -40 "$OUTDIR/build.log"; exit 1; }
TARGET="${CARGO_TARGET_DIR:-target}/release"

echo "== CPU against CUDA loss parity ($PARITY_STEPS steps)" >&2
"$TARGET/examples/device_parity" "$PARITY_STEPS" | tee "$OUTDIR/parity.txt" | tail -8

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q torch numpy safetensors
fi
"$VENV/bin/python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' || {
  echo "PyTorch in $VENV has no CUDA: the speed comparison needs a CUDA build of torch" >&2
  exit 1
}
# The peer on the GPU: its module, with tensors created on CUDA and its batches moved there.
cat > "$OUTDIR/torch_cuda.py" <<PY
import sys, importlib.util, torch
spec = importlib.util.spec_from_file_location("tb", "$REF")
tb = importlib.util.module_from_spec(spec); spec.loader.exec_module(tb)
get_batch = tb.get_batch
tb.get_batch = lambda *a, **k: tuple(t.cuda(non_blocking=True) for t in get_batch(*a, **k))
torch.set_default_device("cuda")
sys.argv = ["torch_baseline.py"] + sys.argv[1:]
tb.main()
PY

ours() {
  "$TARGET/localist" train --corpus "$CORPUS" --blocks windows:8 --lambda-train 0.01 \
    --batch 32 --seq 64 --sequential --mu-anchor 0 --steps $((STEPS + 10)) --no-optimizer-state \
    --quiet --out "$OUTDIR/ours" | sed -n 's/^steady-state training speed: \([0-9.]*\) tokens.*/\1/p'
}
torch_gpu() {
  "$VENV/bin/python" "$OUTDIR/torch_cuda.py" --corpus "$CORPUS" --threads 1 --batch 32 --seq 64 \
    --lam 0.01 --group offblock --block 8 --steps "$STEPS" --warmup 10 --eval-batches 2 \
    --lat-iters 20 | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["train_tokens_per_s"])'
}
echo "== training on the GPU against PyTorch on the same GPU ($ROUNDS rounds, $STEPS steps)" >&2
echo "round,ours_tokens_per_s,torch_tokens_per_s,ratio" | tee "$OUTDIR/speed.csv"
for r in $(seq 1 "$ROUNDS"); do
  o=$(ours); t=$(torch_gpu)
  echo "$r,$o,$t,$(python3 -c "print(f'{$o/$t:.3f}')")" | tee -a "$OUTDIR/speed.csv"
done
# GPU busy time during one of our runs (host-bound runs leave the GPU idle most of the time).
nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 200 > "$OUTDIR/util.txt" &
SMI=$!
ours > /dev/null
kill "$SMI" 2>/dev/null || true
python3 - "$OUTDIR/util.txt" <<'PY'
import sys
v = [float(x) for x in open(sys.argv[1]) if x.strip()]
print(f"GPU busy during our training: mean {sum(v)/max(len(v),1):.0f}% over {len(v)} samples")
PY
