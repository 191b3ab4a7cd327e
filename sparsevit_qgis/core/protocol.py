"""The plugin-engine contract as the plugin reads it: ``resources/protocol.json`` (events, exit
codes, output roles; explained in ``docs/protocol.md``), the same file the engine reads
(``engine/sparsevit/protocol.py``). Standard library only, like the runner."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from .resources import resources_dir


@lru_cache(maxsize=None)
def spec() -> dict[str, Any]:
    res = resources_dir()
    if res is None or not (res / "protocol.json").is_file():
        raise RuntimeError("SparseViT: resources/protocol.json is missing from the plugin; "
                           "reinstall the plugin")
    return json.loads((res / "protocol.json").read_text(encoding="utf-8"))


def version() -> int:
    return int(spec()["protocol"])


def output_roles() -> tuple[str, ...]:
    return tuple(spec()["output_roles"])


# the output roles the plugin handles by name (each is a key of protocol.json "output_roles";
# tests/test_protocol.py checks that)
LANDCOVER = "landcover"
LANDCOVER_COARSE = "landcover_coarse"
PSEUDOMASK = "pseudomask"
CONFIDENCE = "confidence"
ATTENTION = "attention"
AREAS_CSV = "areas_csv"
AREAS_COARSE_CSV = "areas_coarse_csv"
POLYGONS = "polygons"
OVERVIEW = "overview"
RUN = "run"
#: ``sparsevit fit``: the trained model bundle folder (kind "model"); ``sparsevit grid``: the
#: tile grid GeoPackage (kind "vector")
ROLE_MODEL = "model"
ROLE_GRID = "grid"
#: the class rasters, coarse first: the order they are added to a run's group
CLASS_MAP_ROLES = (LANDCOVER_COARSE, LANDCOVER, PSEUDOMASK)
#: every raster role, in layer order (top first)
RASTER_ROLES = CLASS_MAP_ROLES + (CONFIDENCE, ATTENTION)


def mismatch_message(got: Any) -> str | None:
    """None when the engine speaks this plugin's protocol, else the user's message."""
    want = version()
    if got == want:
        return None
    said = f"protocol {got}" if got is not None else "an older protocol"
    return (f"The SparseViT engine speaks {said}; this plugin version expects protocol {want}. "
            "Install the engine shipped with this plugin version into its environment "
            "(Engine... in the SparseViT panel).")
