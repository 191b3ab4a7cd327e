"""Write dist/sparsevit_qgis-<version>.zip (see scripts/package.sh for what goes in it).

Usage: python scripts/package.py ROOT OUT_DIR
"""
import configparser
import fnmatch
import os
import sys
import zipfile
from pathlib import Path

root, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
meta = configparser.ConfigParser(interpolation=None)
meta.read(root / "metadata.txt", encoding="utf-8")
version = meta["general"]["version"].strip()
name = "sparsevit_qgis"

EXCLUDE_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".git", "tests", ".hypothesis"}
EXCLUDE_FILES = ["*.pyc", "*.pyo", "ui_*.py", "resources_rc.py", "*.ts", "*.pro", "*~", ".DS_Store",
                 "*.egg-info", "metadata.txt"]

def files_under(base: Path):
    for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in EXCLUDE_DIRS and not d.endswith(".egg-info"))
        for fn in sorted(filenames):
            if any(fnmatch.fnmatch(fn, pat) for pat in EXCLUDE_FILES):
                continue
            yield Path(dirpath) / fn

entries = []  # (archive name, source file)
for f in files_under(root / name):
    entries.append((f"{name}/{f.relative_to(root / name).as_posix()}", f))
entries.append((f"{name}/metadata.txt", root / "metadata.txt"))  # real file, not the dev link
entries.append((f"{name}/LICENSE", root / "LICENSE"))
for extra in ("pyproject.toml", "README.md"):
    if (root / "engine" / extra).is_file():
        entries.append((f"{name}/engine/{extra}", root / "engine" / extra))
for f in files_under(root / "engine" / "sparsevit"):
    entries.append((f"{name}/engine/{f.relative_to(root / 'engine').as_posix()}", f))
for req in ("engine.txt", "nodeps.txt", "torch.txt"):
    if (root / "requirements" / req).is_file():
        entries.append((f"{name}/engine/requirements/{req}", root / "requirements" / req))
if (root / "resources").is_dir():
    for f in files_under(root / "resources"):
        entries.append((f"{name}/resources/{f.relative_to(root / 'resources').as_posix()}", f))

icon = meta["general"].get("icon", "").strip()
names = {a for a, _ in entries}
for required in ("__init__.py", "metadata.txt", "LICENSE", icon):
    if f"{name}/{required}" not in names:
        sys.exit(f"[package] missing {required} in the plugin folder")

out_dir.mkdir(parents=True, exist_ok=True)
target = out_dir / f"{name}-{version}.zip"
tmp = target.with_suffix(".zip.tmp")
with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
    for arc, src in entries:
        zf.write(src.resolve(), arc)  # resolve(): links are stored as the files they point to
os.replace(tmp, target)
print(f"[package] {target} ({len(entries)} files, {target.stat().st_size / 1e6:.1f} MB)")
