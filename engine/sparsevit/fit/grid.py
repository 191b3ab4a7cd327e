"""``sparsevit grid``: an editable tile grid over a raster, for tagging tiles with their classes.

Cells are squares of ``tile`` pixels aligned to the raster's pixel grid, in the raster's CRS;
fields ``tile_id``, ``raster``, ``row``, ``col`` (pixel offsets) and ``classes`` (class names
joined by ";", empty = untagged). The file is written atomically (a temporary GeoPackage renamed
into place).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, OutputError
from ..io.atomic import atomic_path
from ..io.scene import Grid
from .labels import GRID_FIELD, GRID_LAYER

FIELDS = ["tile_id", "raster", "row", "col", GRID_FIELD]


def grid_cells(grid: Grid, tile: int, window=None) -> list[tuple[int, int]]:
    """Pixel offsets (row, col) of the whole tiles inside ``window`` (default: the raster).
    Cells are aligned to multiples of ``tile`` from the raster's origin, so a grid over an area
    lines up with a grid over the whole raster."""
    if tile < 16:
        raise InputError(f"--tile must be at least 16 px, got {tile}")
    r0, c0 = (0, 0) if window is None else (int(window.row_off), int(window.col_off))
    r1, c1 = (grid.height, grid.width) if window is None else (r0 + int(window.height), c0 + int(window.width))
    first_r, first_c = -(-r0 // tile) * tile, -(-c0 // tile) * tile
    rows = range(first_r, min(r1, grid.height) - tile + 1, tile)
    cols = range(first_c, min(c1, grid.width) - tile + 1, tile)
    return [(r, c) for r in rows for c in cols]


def write_grid(out: str | Path, grids: Sequence[Grid], names: Sequence[str], tile: int,
               windows: Sequence | None = None) -> dict:
    """Write the grid of every raster into one layer ``tiles`` of the GeoPackage ``out``."""
    import shapely

    from ..export.classes import import_pyogrio

    raw = import_pyogrio().raw
    out = Path(out)
    if out.suffix.lower() != ".gpkg":
        raise OutputError("the grid is written as a GeoPackage", path=out, fix="name the output *.gpkg")
    crs = {str(g.crs) for g in grids}
    if len(crs) > 1:
        raise InputError(f"the rasters are in different CRSs ({', '.join(sorted(crs))})",
                         fix="make one grid per raster")
    geoms, ids, rasters, rows, cols = [], [], [], [], []
    for ri, grid in enumerate(grids):
        cells = grid_cells(grid, tile, None if windows is None else windows[ri])
        t = grid.transform
        for r, c in cells:
            x0, y0 = t * (c, r)
            x1, y1 = t * (c + tile, r + tile)
            geoms.append(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
            ids.append(len(ids) + 1)
            rasters.append(names[ri])
            rows.append(r)
            cols.append(c)
    if not geoms:
        raise InputError(f"no whole tile of {tile} px fits in the raster or area", fix="choose a smaller --tile "
                         "or a larger area")
    fields = [np.array(ids, dtype=np.int32), np.array(rasters, dtype=object),
              np.array(rows, dtype=np.int32), np.array(cols, dtype=np.int32),
              np.array([""] * len(ids), dtype=object)]
    with atomic_path(out) as tmp:
        try:
            raw.write(str(tmp), shapely.to_wkb(np.array(geoms, dtype=object)), fields, FIELDS,
                      layer=GRID_LAYER, driver="GPKG", geometry_type="Polygon",
                      crs=None if grids[0].crs is None else grids[0].crs.to_wkt())
        except Exception as exc:  # pyogrio's own error types
            raise OutputError(f"cannot write the GeoPackage ({str(exc).splitlines()[0][:200]})", path=out,
                              fix="check free disk space and that the folder is writable") from exc
    return {"outputs": {"grid": str(out)}, "cells": len(ids), "tile": tile, "layer": GRID_LAYER}
