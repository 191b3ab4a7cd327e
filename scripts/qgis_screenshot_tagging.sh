#!/usr/bin/env bash
# Opens the real QGIS window under Xvfb with the plugin enabled in a throw-away profile and drives
# the SparseViT panel's Train section on the bundled sample scene: Make tile grid (sparsevit grid),
# a water/land class scheme, about 24 cells tagged with the tagging map tool (from the sample's
# reference mask), then Train (sparsevit fit, 2 + 2 epochs, 2 threads). Saves
#   out/screenshots/qgis_tagging.png   the tagging tool in use over the tagged grid
#   out/screenshots/qgis_fit_map.png   the trained map's layer group in the two classes
# Training on the CPU takes minutes; SPARSEVIT_SHOT_FIT_TIMEOUT (s, default 900) bounds it.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
PY="${VENV:-.venv}/bin/python"
OUT="$REPO/out/screenshots"
mkdir -p "$OUT"
WORK="$(mktemp -d -t sparsevit-tagshot-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

for tool in xvfb-run qgis; do
    command -v "$tool" >/dev/null || { echo "$tool not found: run 'make setup' first" >&2; exit 1; }
done
[[ -x "$PY" ]] || { echo "$PY not found: run 'make setup' first" >&2; exit 1; }
# training fine-tunes the bundled default model ("Start from: the engine's default")
if [[ ! -f "$REPO/resources/models/default/bundle.json" ]]; then
    echo "resources/models/default is missing: training from the panel needs the bundled model" >&2
    exit 1
fi

source scripts/qgis_shot_common.sh
shot_profile "$WORK" "$REPO/sparsevit_qgis" "$REPO/${VENV:-.venv}/bin/python"

export SPARSEVIT_SHOT_S2="$REPO/resources/sample/Spain_7370579_S2Hand.tif"
export SPARSEVIT_SHOT_LABELS="$REPO/resources/sample/Spain_7370579_LabelHand.tif"
export SPARSEVIT_SHOT_RUNS="$WORK/runs"
export SPARSEVIT_SHOT_PNG_TAGGING="$OUT/qgis_tagging.png"
export SPARSEVIT_SHOT_PNG_MAP="$OUT/qgis_fit_map.png"
FIT_TIMEOUT="${SPARSEVIT_SHOT_FIT_TIMEOUT:-900}"
export SPARSEVIT_SHOT_FIT_TIMEOUT="$FIT_TIMEOUT"
mkdir -p "$SPARSEVIT_SHOT_RUNS"
rm -f "$SPARSEVIT_SHOT_PNG_TAGGING" "$SPARSEVIT_SHOT_PNG_MAP"

# grid + tagging + training + a margin for QGIS to start and stop
shot_run_qgis "$REPO/scripts/qgis_screenshot_tagging_startup.py" $((FIT_TIMEOUT + 600))
shot_check "$SPARSEVIT_SHOT_PNG_TAGGING" "$SPARSEVIT_SHOT_PNG_MAP"
[[ $QGIS_RC -eq 0 ]]
