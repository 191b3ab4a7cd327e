#!/usr/bin/env bash
# Fill a folder with every wheel the engine needs, for the plugin's offline "Install engine"
# (Local wheel folder). Run it on a machine with internet and the same OS, CPU architecture
# and Python minor version as the offline one, then copy the folder over.
#   scripts/make_wheelhouse.sh OUT_DIR [cpu|cu126|cu128|...]   (default: cpu)
# SPARSEVIT_TORCH_WHEELS: a folder that already holds the torch wheel (no download of it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/make_wheelhouse.sh OUT_DIR [cpu|cu126|...]}"
BUILD="${2:-cpu}"
PY="${PYTHON:-python3}"
REQ="$ROOT/requirements"
mkdir -p "$OUT"
PIP=("$PY" -m pip --disable-pip-version-check)
TORCH="$(grep -E '^torch==' "$REQ/torch.txt")"
INDEX="https://download.pytorch.org/whl/$BUILD"
if [ -n "${SPARSEVIT_TORCH_WHEELS:-}" ] && compgen -G "$SPARSEVIT_TORCH_WHEELS/torch-${TORCH#torch==}*.whl" >/dev/null; then
  cp "$SPARSEVIT_TORCH_WHEELS"/torch-"${TORCH#torch==}"*.whl "$OUT"/
else
  "${PIP[@]}" download --no-deps -d "$OUT" "$TORCH" --index-url "$INDEX"
fi
# torch's own dependencies (filelock, sympy, setuptools, ...; nvidia-* runtimes for CUDA builds),
# resolved against the torch wheel just fetched.
"${PIP[@]}" download -d "$OUT" --find-links "$OUT" "$TORCH" --extra-index-url "$INDEX"
"${PIP[@]}" download -d "$OUT" -r "$REQ/engine.txt"
"${PIP[@]}" download --no-deps -d "$OUT" -r "$REQ/nodeps.txt"
"${PIP[@]}" wheel --no-deps -w "$OUT" "$ROOT/engine"
echo "[wheelhouse] $(ls "$OUT" | wc -l) wheels in $OUT ($(du -sh "$OUT" | cut -f1))"
