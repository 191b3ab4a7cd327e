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

# --profiles-path DIR keeps profiles in DIR/profiles/<name>
PROFILES="$WORK/qgis"
PROFILE="$PROFILES/profiles/default"
mkdir -p "$PROFILE/python/plugins" "$PROFILE/QGIS"
ln -s "$REPO/sparsevit_qgis" "$PROFILE/python/plugins/sparsevit_qgis"
cat > "$PROFILE/QGIS/QGIS3.ini" <<INI
[PythonPlugins]
sparsevit_qgis=true

[qgis]
checkVersion=false
showTips=false

[sparsevit]
engine\\python=$REPO/${VENV:-.venv}/bin/python
INI

export SPARSEVIT_SHOT_S2="$REPO/resources/sample/Spain_7370579_S2Hand.tif"
export SPARSEVIT_SHOT_LABELS="$REPO/resources/sample/Spain_7370579_LabelHand.tif"
export SPARSEVIT_SHOT_RUNS="$WORK/runs"
export SPARSEVIT_SHOT_PNG_TAGGING="$OUT/qgis_tagging.png"
export SPARSEVIT_SHOT_PNG_MAP="$OUT/qgis_fit_map.png"
FIT_TIMEOUT="${SPARSEVIT_SHOT_FIT_TIMEOUT:-900}"
export SPARSEVIT_SHOT_FIT_TIMEOUT="$FIT_TIMEOUT"
mkdir -p "$SPARSEVIT_SHOT_RUNS"
rm -f "$SPARSEVIT_SHOT_PNG_TAGGING" "$SPARSEVIT_SHOT_PNG_MAP"
unset QT_QPA_PLATFORM  # the Makefile exports offscreen; here QGIS draws on the Xvfb display

start=$(date +%s)
rc=0
# grid + tagging + training + a margin for QGIS to start and stop
timeout $((FIT_TIMEOUT + 600)) xvfb-run -a -s "-screen 0 1600x1000x24" \
    qgis --profiles-path "$PROFILES" --nologo --noversioncheck \
    --code "$REPO/scripts/qgis_screenshot_tagging_startup.py" || rc=$?
echo "QGIS ran $(( $(date +%s) - start )) s (exit $rc)"

missing=0
for png in "$SPARSEVIT_SHOT_PNG_TAGGING" "$SPARSEVIT_SHOT_PNG_MAP"; do
    if [[ -s "$png" ]]; then
        echo "screenshot: $png"
    else
        echo "no screenshot was written: $png" >&2
        missing=1
    fi
done
if [[ $missing -ne 0 || $rc -ne 0 ]]; then
    exit 1
fi
