"""The engine never imports QGIS or the plugin (the other half of the rule lives in
tests/qgis/test_plugin.py): it must run in a plain venv, on a server, under torchrun."""
from __future__ import annotations

from pathlib import Path

from fixtures.imports import absolute_imports

ENGINE = Path(__file__).resolve().parents[2] / "engine" / "sparsevit"
FORBIDDEN = {"qgis", "PyQt5", "PyQt6", "sparsevit_qgis", "processing"}


def test_engine_never_imports_qgis_or_the_plugin():
    sources = sorted(ENGINE.rglob("*.py"))
    assert len(sources) > 50
    for path in sources:
        bad = set(absolute_imports(path)) & FORBIDDEN
        assert not bad, f"{path}: imports {sorted(bad)}"
