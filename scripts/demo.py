"""The main job on the bundled default: sample scene + default model, through the plugin's
Processing algorithm ``sparsevit:predict`` in a headless QGIS - the same path the QGIS plugin and
``qgis_process`` use (the engine runs as a separate process and reports JSON-lines progress).

    .venv/bin/python scripts/demo.py [--out out/demo]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the plugin looks for its engine here first (see sparsevit_qgis/core/engine_locator.py)
os.environ.setdefault("SPARSEVIT_PYTHON", str(REPO / ".venv" / "bin" / "python"))
sys.path.insert(0, str(REPO))
sys.path.append("/usr/share/qgis/python/plugins")  # QGIS's own Processing framework


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "out" / "demo"))
    ap.add_argument("--s2", default=str(REPO / "resources" / "sample" / "Spain_7370579_S2Hand.tif"))
    ap.add_argument("--model", default=str(REPO / "resources" / "models" / "default"))
    args = ap.parse_args()
    model = Path(args.model)
    if not (model / "bundle.json").is_file():
        print(f"demo: error: {model}: the default model is missing. Train it with 'make model'.",
              file=sys.stderr)
        return 2
    out = Path(args.out) / datetime.now().strftime("run_%Y%m%d-%H%M%S")
    out.mkdir(parents=True)

    from qgis.core import QgsApplication, QgsProcessingFeedback
    app = QgsApplication([], False)
    app.initQgis()
    provider = None
    try:
        from processing.core.Processing import Processing
        Processing.initialize()
        from sparsevit_qgis.processing.provider import SparseVitProvider
        provider = SparseVitProvider()
        QgsApplication.processingRegistry().addProvider(provider)
        import processing

        class Feedback(QgsProcessingFeedback):
            def __init__(self):
                super().__init__()
                self._last = -10

            def setProgressText(self, text):  # noqa: N802
                print(f"  [{text}]", flush=True)

            def pushInfo(self, info):  # noqa: N802
                print(f"  {info}", flush=True)

            def reportError(self, error, fatalError=False):  # noqa: N802
                print(f"  error: {error}", file=sys.stderr, flush=True)

        fb = Feedback()
        fb.progressChanged.connect(lambda p: None)
        t0 = time.perf_counter()
        print(f"SparseViT demo: sparsevit:predict on {Path(args.s2).name} with {model}")
        result = processing.run("sparsevit:predict", {
            "INPUT": args.s2, "MODEL": str(model / "bundle.json"), "OUTPUT_FOLDER": str(out),
            "POLYGONS": True, "OVERVIEW": True}, feedback=fb)
        print(f"\ndone in {time.perf_counter() - t0:.0f} s; outputs in {out}:")
        for f in sorted(out.iterdir()):
            print(f"  {f.relative_to(REPO) if f.is_relative_to(REPO) else f}")
        overview = next(out.glob("*_overview.png"), None)
        if overview:
            print(f"\noverview (RGB | attention pseudomask | land cover, detailed | coarse): {overview}")
        return 0 if result.get("LANDCOVER") else 1
    finally:
        if provider is not None:
            QgsApplication.processingRegistry().removeProvider(provider)
        app.exitQgis()


if __name__ == "__main__":
    sys.exit(main())
