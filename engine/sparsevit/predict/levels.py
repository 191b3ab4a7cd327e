"""Levels of the land-cover map: the model's own classes (detailed) and a coarse view of them.

The coarse map is derived from the finished detailed map through a class mapping
(``resources/mappings``): a lookup table applied strip by strip, so memory does not grow with
the raster. Which mapping: the model card's ``coarse_mapping`` (a mapping name, or a JSON file
relative to the model folder), else the bundled default for the model's scheme.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from ..errors import InputError
from ..io.writers import ClassifiedWriter
from ..schemes import IGNORE, Mapping, load_mapping

LEVELS = ("detailed", "coarse", "both")
# detailed scheme -> mapping giving its coarse view
DEFAULT_COARSE = {"eurosat": "eurosat_to_eurosat_coarse"}
_STRIP_ROWS = 512  # the writers' block size: every strip fills whole blocks


def check_level(level: str | None) -> None:
    if level is not None and level not in LEVELS:
        raise InputError(f"level '{level}' is not one of {', '.join(LEVELS)}",
                         fix="use --level detailed, coarse or both")


def wants_detailed(level: str | None) -> bool:
    return level != "coarse"


def coarse_mapping(bundle, level: str | None) -> Mapping | None:
    """The mapping of the coarse map, or None when this run writes none.

    ``level`` None (the default) means both levels where the model's scheme has a coarse
    mapping and the detailed map alone otherwise; an explicit ``coarse``/``both`` without a
    mapping is an :class:`InputError`.
    """
    check_level(level)
    if level == "detailed":
        return None
    scheme = bundle.scheme
    card = bundle.card if isinstance(getattr(bundle, "card", None), dict) else {}
    name = card.get("coarse_mapping") or DEFAULT_COARSE.get(scheme.name)
    if not name:
        if level is None:
            return None
        raise InputError(f"the model's classes (scheme '{scheme.name}') have no coarse level",
                         path=bundle.path,
                         fix="use --level detailed, or name a mapping from resources/mappings "
                             "as \"coarse_mapping\" in the card of the model's bundle.json")
    ref = str(name)
    if ref.lower().endswith(".json") and not Path(ref).is_absolute() and Path(str(bundle.path)).is_dir():
        ref = str(Path(str(bundle.path)) / ref)
    mapping = load_mapping(ref)
    if tuple(mapping.source.names) != tuple(scheme.names) or \
            tuple(mapping.source.values) != tuple(scheme.values):
        raise InputError(f"the coarse mapping '{mapping.name}' maps scheme '{mapping.source.name}', "
                         f"not the model's scheme '{scheme.name}'", path=bundle.path,
                         fix="name a mapping whose source is the model's scheme, or use "
                             "--level detailed")
    return mapping


def coarse_lut(mapping: Mapping) -> np.ndarray:
    """uint8[256]: detailed value -> coarse value; no data and unmapped classes -> 255."""
    lut = mapping.lut[:256].copy()
    lut[(lut == mapping.target.ignore_value) | (lut < 0) | (lut > 254)] = IGNORE
    lut[IGNORE] = IGNORE
    return lut.astype(np.uint8)


def write_coarse(detailed: str | Path, out: str | Path, grid, mapping: Mapping,
                 progress=None) -> Path:
    """Write the coarse class map of the class raster ``detailed`` (same grid) to ``out``: a COG
    with the coarse scheme's colour table, class names and ``.qml``, like the detailed map."""
    lut = coarse_lut(mapping)
    strips = [Window(0, r, grid.width, min(_STRIP_ROWS, grid.height - r))
              for r in range(0, grid.height, _STRIP_ROWS)]
    with rasterio.open(detailed) as src, \
            ClassifiedWriter(out, grid, mapping.target,
                             tags={"SPARSEVIT_MAPPING": mapping.name,
                                   "SPARSEVIT_DETAILED_SCHEME": mapping.source.name}) as w:
        if progress is None:
            for win in strips:
                w.write(lut[src.read(1, window=win)], win)
        else:
            with progress.stage("coarse", total=len(strips)) as st:
                for win in strips:
                    w.write(lut[src.read(1, window=win)], win)
                    st.advance()
    return Path(out)

