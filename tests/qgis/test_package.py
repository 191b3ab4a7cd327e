"""scripts/package.sh builds an installable plugin zip."""
from __future__ import annotations

import configparser
import re
import subprocess
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _plugin_version() -> str:
    meta = configparser.ConfigParser(interpolation=None)
    meta.read(REPO / "metadata.txt", encoding="utf-8")
    return meta["general"]["version"].strip()


def test_plugin_and_engine_carry_one_version():
    """metadata.txt (QGIS reads it as text) and sparsevit.__version__ (pip reads it through
    engine/pyproject.toml) are the two places a version is written; they must agree."""
    engine = re.search(r'__version__ = "([^"]+)"',
                       (REPO / "engine" / "sparsevit" / "__init__.py").read_text()).group(1)
    assert _plugin_version() == engine
    assert 'dynamic = ["version"]' in (REPO / "engine" / "pyproject.toml").read_text()


def test_package_zip_contents(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "scripts" / "package.sh"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    zips = list(tmp_path.glob("sparsevit_qgis-*.zip"))
    assert [z.name for z in zips] == [f"sparsevit_qgis-{_plugin_version()}.zip"]
    with zipfile.ZipFile(zips[0]) as zf:
        names = set(zf.namelist())
        metadata = zf.read("sparsevit_qgis/metadata.txt").decode()
    for required in ("__init__.py", "plugin.py", "metadata.txt", "LICENSE", "icons/icon.svg",
                     "engine/sparsevit/cli.py", "engine/pyproject.toml"):
        assert f"sparsevit_qgis/{required}" in names, required
    assert any(n.startswith("sparsevit_qgis/resources/schemes/") for n in names) or \
        not (REPO / "resources" / "schemes").is_dir()
    assert all(n.startswith("sparsevit_qgis/") for n in names)
    assert not [n for n in names if n.endswith((".pyc", ".pyo")) or "__pycache__" in n]
    assert not [n for n in names if Path(n).name.startswith("ui_") or Path(n).name == "resources_rc.py"]
    assert not [n for n in names if "/tests/" in n]
    assert "name=SparseViT for QGIS" in metadata and "hasProcessingProvider=yes" in metadata
