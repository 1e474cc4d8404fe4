#!/usr/bin/env bash
# Fuzz one target for a while, starting from its committed seeds; exit 0 when no input made it
# panic, time out or blow the memory limit. Needs a nightly toolchain and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Usage (from the repository root): tests/fuzz/run.sh TARGET [SECONDS]
# TARGET: checkpoint gguf hf_folder rules audit_report session. Crashes go to
# tests/fuzz/artifacts/TARGET/, the grown corpus to tests/fuzz/corpus/TARGET/.
set -euo pipefail
target=${1:?usage: tests/fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-600}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
features=()
[ "$target" = session ] && features=(--features studio)
mkdir -p "tests/fuzz/corpus/$target" "tests/fuzz/artifacts/$target"
# -timeout: one input may take at most 10 s (a hang is a failure); -rss_limit_mb: 4 GB (a
# memory blow-up is a failure); -max_len: inputs up to 64 KB (the base files are ~11 KB).
exec cargo +nightly fuzz run --fuzz-dir tests/fuzz -O "${features[@]}" "$target" \
    "tests/fuzz/corpus/$target" "tests/fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -artifact_prefix="tests/fuzz/artifacts/$target/" -print_final_stats=1
