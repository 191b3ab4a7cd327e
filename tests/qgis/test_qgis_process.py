"""The provider from the command line: qgis_process with the plugin enabled in a throw-away profile.

``qgis_process`` only loads providers of plugins that are enabled in its profile; the profile
lives under $XDG_DATA_HOME (or $HOME/.local/share), so a temporary one keeps the user's own
settings untouched. The Debian ``qgis_process`` wrapper fails here (it reads /etc/default/qgis
and passes --noversioncheck), so the binary is called directly.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

QGIS_PROCESS = shutil.which("qgis_process.bin") or "/usr/bin/qgis_process.bin"


@pytest.fixture(scope="module")
def qgis_process_env(tmp_path_factory, real_engine) -> dict:
    if not Path(QGIS_PROCESS).exists():
        pytest.skip("qgis_process.bin not installed")
    root = tmp_path_factory.mktemp("qgis_process")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "sparsevit_qgis").symlink_to(REPO / "sparsevit_qgis", target_is_directory=True)
    # Nothing from the test process may point qgis_process at another profile or Python.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "SPARSEVIT_PYTHON") and not k.startswith("QGIS_")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(root / "home"),
               XDG_DATA_HOME=str(root / "home" / ".local" / "share"),
               QGIS_PLUGINPATH=str(plugins))
    proc = subprocess.run([QGIS_PROCESS, "plugins", "enable", "sparsevit_qgis"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 or "already enabled" in proc.stderr, proc.stdout + proc.stderr
    return env


def test_qgis_process_runs_info(qgis_process_env, real_engine):
    _python, sample = real_engine
    proc = subprocess.run([QGIS_PROCESS, "--json", "run", "sparsevit:info", "--",
                           f"INPUT={sample}"], env=qgis_process_env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout[proc.stdout.index("{"):])
    report = json.loads(out["results"]["REPORT"])
    assert report["products"][0]["bands"]["B04"]["index"] == 4


def test_qgis_process_knows_every_algorithm(qgis_process_env):
    proc = subprocess.run([QGIS_PROCESS, "help", "sparsevit:predict"], env=qgis_process_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name in ("INPUT", "MODEL", "EXTENT", "TILE", "OUTPUT_FOLDER", "LANDCOVER", "AREAS"):
        assert name in proc.stdout
    listing = subprocess.run([QGIS_PROCESS, "list"], env=qgis_process_env,
                             capture_output=True, text=True, timeout=120).stdout
    for alg in ("info", "predict", "export", "evaluate", "train"):
        assert f"sparsevit:{alg}" in listing
