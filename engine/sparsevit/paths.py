"""Where the shared data lives: ``resources/`` at the repository (or plugin) root.

Class schemes, palettes, QML styles, the sample scene and the default model are data read by
both the engine and the QGIS plugin, so they live outside the Python package.
``SPARSEVIT_RESOURCES`` overrides the location. An engine installed into its own venv (the
plugin's Install engine) finds it through ``<venv>/sparsevit-resources.txt``, one line naming the
plugin's ``resources/``, so the venv's ``sparsevit`` command works from a terminal too.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from .errors import SparseVitError

RESOURCES_POINTER = "sparsevit-resources.txt"  # in the venv's prefix; written by the plugin's installer


def locate_resources(env: str | None, prefix: Path, package_file: Path) -> Path | None:
    """``resources/``: the environment variable, else the pointer file in the interpreter's
    prefix, else the first parent of the package holding ``resources/schemes`` (a checkout)."""
    if env:
        return Path(env)
    pointer = Path(prefix) / RESOURCES_POINTER
    if pointer.is_file():
        named = Path(pointer.read_text(encoding="utf-8").strip())
        if (named / "schemes").is_dir():
            return named
    for parent in Path(package_file).resolve().parents:
        cand = parent / "resources"
        if (cand / "schemes").is_dir():
            return cand
    return None


@lru_cache(maxsize=None)
def resources_dir() -> Path:
    found = locate_resources(os.environ.get("SPARSEVIT_RESOURCES"), Path(sys.prefix), Path(__file__))
    if found is not None:
        return found
    here = Path(__file__).resolve()
    raise SparseVitError("cannot find the resources/ folder (class schemes, styles, models)",
                         path=str(here.parent),
                         fix="set SPARSEVIT_RESOURCES to the resources/ folder of SparseViT for QGIS "
                             f"(or write its path into {Path(sys.prefix) / RESOURCES_POINTER})")


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def default_model_path() -> Path:
    """The bundled default model folder (read by ``predict``, ``info`` and the plugin)."""
    return resource("models", "default")
