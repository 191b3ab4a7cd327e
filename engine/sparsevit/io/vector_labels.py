"""Labels in vector files (GeoPackage, GeoJSON, Shapefile), read the same way everywhere:
``evaluate --points`` (reference points) and ``fit --labels`` (tile grids, points, lines,
polygons). Layer choice, class-field lookup and label values live here so both commands give
the same errors for the same file."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import InputError


def pick_layer(pyogrio, path: Path, layer: str | int | None, *, what: str = "labels",
               preferred: Callable[[str, str], bool] | None = None) -> str | int:
    """The layer to read: ``layer`` when given (a name, or an index), the only layer, or the
    only one ``preferred(name, geometry_type)`` accepts; otherwise a clear error naming them."""
    try:
        layers = [(str(n), str(t or "")) for n, t in pyogrio.list_layers(str(path))]
    except Exception as exc:  # pyogrio's DataSourceError: not a vector file
        raise InputError(f"not a readable vector file ({str(exc).splitlines()[0][:160]})", path=path,
                         fix=f"give a GeoPackage, GeoJSON or Shapefile of {what}") from None
    names = [n for n, _ in layers]
    if layer is not None:
        if isinstance(layer, int) or str(layer) in names:
            return layer
        raise InputError(f"no layer '{layer}' (layers: {', '.join(names)})", path=path,
                         fix="pass one of the listed layer names with --layer")
    if len(names) == 1:
        return names[0]
    chosen = [n for n, t in layers if preferred is not None and preferred(n, t)]
    if len(chosen) == 1:
        return chosen[0]
    raise InputError(f"the file has {len(names)} layers ({', '.join(names)})", path=path,
                     fix=f"choose the {what} layer with --layer")


def resolve_field(info: dict, field: str, path: Path, what: str = "labels") -> str:
    """``field`` as the layer spells it (exact, else the one case-insensitive match)."""
    fields = [str(f) for f in info["fields"]]
    if field in fields:
        return field
    folded = [f for f in fields if f.lower() == field.lower()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(f"no field '{field}' in the {what} layer (fields: {', '.join(fields) or 'none'})",
                     path=path, fix="pass the field holding the class with --field")


def as_number(label: Any) -> int | None:
    """An integer class code (3, 3.0, "3", "-1"), or None for names, fractions and booleans."""
    if isinstance(label, (bool, np.bool_)):
        return None
    if isinstance(label, (int, np.integer)):
        return int(label)
    if isinstance(label, (float, np.floating)):
        return int(label) if math.isfinite(label) and float(label).is_integer() else None
    if isinstance(label, str) and label.strip().lstrip("-").isdigit():
        return int(label.strip())
    return None


def is_missing(label: Any) -> bool:
    """NULL, NaN or blank: no label (not a class)."""
    return label is None or (isinstance(label, (float, np.floating)) and math.isnan(label)) or \
        (isinstance(label, str) and not label.strip())
