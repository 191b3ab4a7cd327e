"""Tiny real wheels for the engine-installer tests: pip installs them offline, in seconds.

They stand in for the 1.4 GB of real wheels (torch, rasterio, ...) so the tests exercise the
installer's own work (venv, offline pip, progress, verification, clean-up) on every CI run;
the real wheel set is installed by hand with scripts/make_wheelhouse.sh (see the README).
"""
from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

ENGINE_VERSION = "9.8.7"

FAKE_ENGINE_MAIN = f'''import sys
if sys.argv[1:] == ["--version"]:
    import torch, sparsevit_fixture_dep  # the engine needs its dependencies
    print("sparsevit {ENGINE_VERSION}")
    sys.exit(0)
sys.exit(2)
'''
FAKE_TORCH = '''__version__ = "0.0.1"
class cuda:
    @staticmethod
    def is_available():
        return False
'''


def make_wheel(folder: Path, dist: str, version: str, files: dict[str, str]) -> Path:
    """A pure-Python wheel (PEP 427) holding ``files``."""
    folder.mkdir(parents=True, exist_ok=True)
    norm = dist.replace("-", "_")
    info = f"{norm}-{version}.dist-info"
    members = dict(files)
    members[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
    members[f"{info}/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: sparsevit-tests\n"
                                "Root-Is-Purelib: true\nTag: py3-none-any\n")
    record = []
    for name, text in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = folder / f"{norm}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def fixture_sources(root: Path):
    """Engine source + requirement files naming the fixture packages (same layout as the plugin)."""
    from sparsevit_qgis.core.engine_installer import EngineSources
    src = root / "engine"
    (src / "sparsevit").mkdir(parents=True, exist_ok=True)
    (src / "sparsevit" / "__init__.py").write_text(f'__version__ = "{ENGINE_VERSION}"\n')
    req = src / "requirements"
    req.mkdir(exist_ok=True)
    (req / "torch.txt").write_text("# pinned torch\ntorch==0.0.1\n")
    (req / "engine.txt").write_text("sparsevit-fixture-dep==1.0  # a dependency\n")
    (req / "nodeps.txt").write_text("sparsevit-fixture-nodep==1.0\n")
    return EngineSources(src, req)


def fixture_wheel_folder(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    wheels = {
        "torch": ("0.0.1", {"torch/__init__.py": FAKE_TORCH}),
        "sparsevit-fixture-dep": ("1.0", {"sparsevit_fixture_dep/__init__.py": ""}),
        "sparsevit-fixture-nodep": ("1.0", {"sparsevit_fixture_nodep/__init__.py": ""}),
        "sparsevit": (ENGINE_VERSION, {"sparsevit/__init__.py": f'__version__ = "{ENGINE_VERSION}"\n',
                                       "sparsevit/__main__.py": FAKE_ENGINE_MAIN}),
    }
    for dist, (version, files) in wheels.items():
        if dist not in skip:
            make_wheel(folder, dist, version, files)
    return folder
