#!/usr/bin/env bash
# Opens the real QGIS window under Xvfb with the plugin enabled in a throw-away profile, runs the
# SparseViT panel's job on the bundled sample scene and saves out/screenshots/qgis_sparsevit.png
# and qgis_compare.png (swipe compare: true-colour input left of the line, the map right of it).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="${VENV:-.venv}/bin/python"
OUT="$REPO/out/screenshots"
mkdir -p "$OUT"
WORK="$(mktemp -d -t sparsevit-shot-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

for tool in xvfb-run qgis; do
    command -v "$tool" >/dev/null || { echo "$tool not found: run 'make setup' first" >&2; exit 1; }
done

# The real default model when it exists; otherwise an untrained test bundle (the map is then
# meaningless, but every panel, layer and style is the real one).
if [[ -f "$REPO/resources/models/default/bundle.json" ]]; then
    MODEL=""
    echo "model: bundled default ($REPO/resources/models/default)"
else
    MODEL="$WORK/tiny_bundle"
    mkdir -p "$MODEL"
    PYTHONPATH="$REPO/tests" "$PY" -c \
        "import sys, pathlib; from fixtures.bundle import write_tiny_bundle; write_tiny_bundle(pathlib.Path(sys.argv[1]))" \
        "$MODEL"
    echo "model: resources/models/default is missing; using an UNTRAINED tiny test bundle ($MODEL)"
fi

source scripts/qgis_shot_common.sh
shot_profile "$WORK" "$REPO/sparsevit_qgis" "$REPO/${VENV:-.venv}/bin/python"

export SPARSEVIT_SHOT_MODEL="$MODEL"
export SPARSEVIT_SHOT_S2="$REPO/resources/sample/Spain_7370579_S2Hand.tif"
export SPARSEVIT_SHOT_RUNS="$WORK/runs"
export SPARSEVIT_SHOT_PNG="$OUT/qgis_sparsevit.png"
export SPARSEVIT_SHOT_PNG_COMPARE="$OUT/qgis_compare.png"
mkdir -p "$SPARSEVIT_SHOT_RUNS"
rm -f "$SPARSEVIT_SHOT_PNG" "$SPARSEVIT_SHOT_PNG_COMPARE"

shot_run_qgis "$REPO/scripts/qgis_screenshot_startup.py" 600
shot_check "$SPARSEVIT_SHOT_PNG" "$SPARSEVIT_SHOT_PNG_COMPARE"
