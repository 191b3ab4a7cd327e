#!/usr/bin/env bash
# A new user's first minutes, in the real QGIS window under Xvfb: the plugin zip (make package)
# unpacked into a throw-away profile with no engine, the panel opened, then Install engine from
# a local wheel folder (scripts/make_wheelhouse.sh; offline). Saves
#   out/screenshots/qgis_first_open.png        the panel without an engine
#   out/screenshots/qgis_install_progress.png  the install dialog while pip runs
#   out/screenshots/qgis_installed.png         the dialog and panel once the engine works
# Usage: scripts/qgis_screenshot_install.sh WHEEL_FOLDER   (the venv, ~1.4 GB, is deleted after)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
WHEELS="$(cd "${1:?usage: scripts/qgis_screenshot_install.sh WHEEL_FOLDER}" && pwd)"
OUT="$REPO/out/screenshots"
mkdir -p "$OUT"
WORK="$(mktemp -d -t sparsevit-installshot-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
source scripts/qgis_shot_common.sh

bash scripts/package.sh "$WORK/dist" >/dev/null
python3 -m zipfile -e "$WORK"/dist/sparsevit_qgis-*.zip "$WORK/unzipped"
shot_profile "$WORK" "$WORK/unzipped/sparsevit_qgis"
export SPARSEVIT_SHOT_WHEELS="$WHEELS"
export SPARSEVIT_SHOT_PNG_FIRST="$OUT/qgis_first_open.png"
export SPARSEVIT_SHOT_PNG_PROGRESS="$OUT/qgis_install_progress.png"
export SPARSEVIT_SHOT_PNG_DONE="$OUT/qgis_installed.png"
rm -f "$SPARSEVIT_SHOT_PNG_FIRST" "$SPARSEVIT_SHOT_PNG_PROGRESS" "$SPARSEVIT_SHOT_PNG_DONE"
unset SPARSEVIT_PYTHON
shot_run_qgis "$REPO/scripts/qgis_screenshot_install_startup.py" 900
shot_check "$SPARSEVIT_SHOT_PNG_FIRST" "$SPARSEVIT_SHOT_PNG_PROGRESS" "$SPARSEVIT_SHOT_PNG_DONE"
[[ $QGIS_RC -eq 0 ]]
