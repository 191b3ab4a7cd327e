#!/usr/bin/env bash
# Build dist/sparsevit_qgis-<version>.zip, the file uploaded to the QGIS plugin repository:
#   sparsevit_qgis/  plugin code + metadata.txt + LICENSE + icon + help
#   sparsevit_qgis/engine/     the engine's source (pip-installable) + pinned requirements
#   sparsevit_qgis/resources/  class schemes, mappings, styles, models, sample scene
# so an installed plugin can tell the user how to install its engine and find its resources.
# No bytecode, no compiled UI/resource modules. Usage: scripts/package.sh [OUT_DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="${1:-$ROOT/dist}"
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY="$(command -v python3)"; fi
fi

# .ts -> .qm when Qt's lrelease is around; translations are optional.
if compgen -G "$ROOT/sparsevit_qgis/i18n/*.ts" >/dev/null; then
  LRELEASE="$(command -v lrelease || command -v lrelease-qt5 || true)"
  if [ -n "$LRELEASE" ]; then
    "$LRELEASE" -silent "$ROOT"/sparsevit_qgis/i18n/*.ts
  else
    echo "[package] lrelease not found: translations not compiled" >&2
  fi
fi

"$PY" "$ROOT/scripts/package.py" "$ROOT" "$OUT_DIR"
