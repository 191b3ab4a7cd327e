"""The engine never imports QGIS or the plugin (the other half of the rule lives in
tests/qgis/test_plugin.py): it must run in a plain venv, on a server, under torchrun."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "engine" / "sparsevit"
FORBIDDEN = {"qgis", "PyQt5", "PyQt6", "sparsevit_qgis", "processing"}


def test_engine_never_imports_qgis_or_the_plugin():
    sources = sorted(ENGINE.rglob("*.py"))
    assert len(sources) > 50
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path}: imports {name}"
