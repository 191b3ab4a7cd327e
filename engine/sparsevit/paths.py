"""Where the shared data lives: ``resources/`` at the repository (or plugin) root.

Class schemes, palettes, QML styles, the sample scene and the default model are data read by
both the engine and the QGIS plugin, so they live outside the Python package.
``SPARSEVIT_RESOURCES`` overrides the location (e.g. for a packaged plugin).
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import SparseVitError


@lru_cache(maxsize=None)
def resources_dir() -> Path:
    env = os.environ.get("SPARSEVIT_RESOURCES")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent / "resources"
        if (cand / "schemes").is_dir():
            return cand
    raise SparseVitError("cannot find the resources/ folder (class schemes, styles, models)",
                         path=str(here.parent),
                         fix="set SPARSEVIT_RESOURCES to the resources/ folder of SparseViT for QGIS")


def resource(*parts: str) -> Path:
    return resources_dir().joinpath(*parts)


def default_model_path() -> Path:
    """The bundled default model folder (read by ``predict``, ``info`` and the plugin)."""
    return resource("models", "default")
