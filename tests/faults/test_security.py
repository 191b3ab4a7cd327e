"""Untrusted files are data, never code: static checks over the engine and the plugin."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = sorted((REPO / "engine" / "sparsevit").rglob("*.py")) + sorted((REPO / "sparsevit_qgis").rglob("*.py"))

BANNED_CALLS = {"eval", "exec", "compile", "__import__"}
BANNED_ATTRS = {("torch", "load"), ("os", "system"), ("os", "popen"), ("pickle", "load"),
                ("pickle", "loads"), ("marshal", "loads"), ("yaml", "load"), ("yaml", "unsafe_load"),
                ("numpy", "load"), ("np", "load"), ("shelve", "open"), ("subprocess", "getoutput"),
                ("subprocess", "getstatusoutput")}
BANNED_IMPORTS = {"pickle", "cPickle", "dill", "marshal", "shelve", "joblib"}


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            out += [f"{where} import {a.name}" for a in node.names if a.name.split(".")[0] in BANNED_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in BANNED_IMPORTS:
            out.append(f"{where} from {node.module} import")
        elif isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id in BANNED_CALLS:
                out.append(f"{where} {f.id}()")
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) \
                    and (f.value.id, f.attr) in BANNED_ATTRS:
                out.append(f"{where} {f.value.id}.{f.attr}()")
            for kw in node.keywords:
                if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    out.append(f"{where} shell=")
    return out


def test_sources_found():
    assert len(SOURCES) > 40


def test_no_code_execution_from_data():
    assert [f for path in SOURCES for f in _findings(path)] == []


def test_scanner_catches_what_it_claims(tmp_path):
    bad = REPO / "engine" / "sparsevit" / "_scan_probe_not_shipped.py"
    try:
        bad.write_text("import pickle\nimport torch, subprocess, yaml\neval('1')\ntorch.load('x')\n"
                       "subprocess.run('ls', shell=True)\nyaml.load(s)\n")
        found = _findings(bad)
    finally:
        bad.unlink()
    assert len(found) == 5, found


def test_engine_environment_is_sanitised():
    from sparsevit_qgis.core.engine_runner import sanitized_environment
    env = sanitized_environment(base={"PYTHONPATH": "/qgis/python", "PROJ_LIB": "/qgis/proj",
                                      "QGIS_PREFIX_PATH": "/usr", "GDAL_DATA": "/qgis/gdal",
                                      "HOME": "/home/a", "PATH": "/usr/bin"})
    assert env["HOME"] == "/home/a" and env["PATH"] == "/usr/bin"
    assert not {"PYTHONPATH", "PROJ_LIB", "QGIS_PREFIX_PATH", "GDAL_DATA"} & set(env)
    assert env["PYTHONUTF8"] == "1"


def test_engine_command_is_an_argument_list():
    from sparsevit_qgis.core.engine_runner import build_command
    cmd = build_command("/venv/bin/python", "predict", ["a b.tif; rm -rf ~", "--out", "$(reboot)"])
    assert cmd[-3:] == ["a b.tif; rm -rf ~", "--out", "$(reboot)"]
