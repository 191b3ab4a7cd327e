#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian 12 machine for SparseViT for QGIS:
#   apt packages (QGIS + Python bindings, venv, Xvfb), a venv that sees QGIS, pinned wheels,
#   the engine installed editable, and a sanity check. A re-run with nothing to do takes seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SPARSEVIT_VENV:-$ROOT/.venv}"
WHEELS="${SPARSEVIT_TORCH_WHEELS:-/opt/wheels}"
STAMP="$VENV/.sparsevit-setup-stamp"
log() { printf '[setup] %s\n' "$*"; }

# --- 1. Debian packages -------------------------------------------------------------------
APT_PKGS=(qgis python3-qgis xvfb xauth python3-venv)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- 2. venv from Debian's python3 (sees qgis, PyQt5, osgeo) -------------------------------
if [ ! -x "$VENV/bin/python" ]; then
  log "creating venv $VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check -q)

# --- 3. pinned wheels, skipped when the requirement files have not changed ------------------
want="$(cat "$ROOT"/requirements/*.txt "$ROOT/engine/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  log "venv up to date"
else
  TORCH="$(sed -n 's/^torch==//p' "$ROOT/requirements/torch.txt")"
  if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.__version__.startswith('$TORCH') else 1)" 2>/dev/null; then
    if ls "$WHEELS"/torch-"$TORCH"*cpu*.whl >/dev/null 2>&1; then
      log "installing torch $TORCH (CPU) from $WHEELS"
      "${PIP[@]}" install --no-deps --find-links "$WHEELS" "torch==$TORCH"
    else
      log "ERROR: no CPU torch $TORCH wheel in $WHEELS. Put one there (or set SPARSEVIT_TORCH_WHEELS)."
      log "       A plain 'pip install torch' pulls a multi-GB CUDA build, which this project refuses."
      exit 1
    fi
    # torch's own light dependencies, pinned
    "${PIP[@]}" install filelock==3.16.1 typing-extensions==4.12.2 sympy==1.13.3 mpmath==1.3.0 \
      networkx==3.3 jinja2==3.1.4 markupsafe==2.1.5 fsspec==2024.9.0 setuptools==78.1.0
  fi
  log "installing pinned engine and test dependencies"
  "${PIP[@]}" install -r "$ROOT/requirements/engine.txt" -r "$ROOT/requirements/onnx.txt" -r "$ROOT/requirements/dev.txt"
  "${PIP[@]}" install --no-deps -r "$ROOT/requirements/nodeps.txt"
  "${PIP[@]}" install --no-deps --no-build-isolation -e "$ROOT/engine"
  echo "$want" > "$STAMP"
fi

# --- 4. sanity: fail loudly when a CUDA torch or numpy 2 slipped in ------------------------
"$PY" - <<'PY'
import sys
import numpy, torch
problems = []
if int(numpy.__version__.split(".")[0]) >= 2:
    problems.append(f"numpy {numpy.__version__} (need 1.x: Debian's osgeo/scipy break on numpy 2)")
if torch.version.cuda is not None or "+cpu" not in torch.__version__:
    problems.append(f"torch {torch.__version__} is not the CPU build (cuda={torch.version.cuda})")
import sparsevit.compat  # noqa: F401  (makes torchvision importable for timm)
import timm, rasterio, sklearn, scipy, safetensors  # noqa: F401
import onnx, onnxruntime  # noqa: F401  (sparsevit export-model, benchmarks/bench_peers.py)
if problems:
    sys.exit("[setup] SANITY CHECK FAILED:\n  " + "\n  ".join(problems))
print(f"[setup] ok: python {sys.version.split()[0]}, numpy {numpy.__version__}, torch {torch.__version__}, "
      f"timm {timm.__version__}, rasterio {rasterio.__version__} (GDAL {rasterio.__gdal_version__})")
PY
if ! "$PY" -c 'import qgis.core' 2>/dev/null; then
  log "ERROR: the venv cannot import qgis.core (is python3-qgis installed?)"; exit 1
fi
