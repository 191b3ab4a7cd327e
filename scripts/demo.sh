#!/usr/bin/env bash
# make demo: the whole pipeline on the bundled sample scene with the bundled default model,
# through the plugin's Processing algorithm in a headless QGIS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
QT_QPA_PLATFORM=offscreen exec .venv/bin/python scripts/demo.py "$@"
