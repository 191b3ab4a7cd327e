"""An analyst's labels -> image-level tags of square tiles of the raster(s).

Two kinds of labels (``read_labels``):

- **tile grid** (``sparsevit grid`` writes one): polygon cells whose ``classes`` field lists the
  classes each cell contains (``"Water;Forest"``); an empty field is an untagged cell, left out,
  not a negative. A cell becomes the square window of its size centred on it, so a grid drawn in
  another CRS or by another tool works too.
- **features**: points, lines (scribbles) or polygons with a class field (names or integer codes,
  e.g. SCP's ``MC_info``/``MC_ID``, dzetsaka's class field), in any CRS. The raster is cut into
  tiles of ``tile`` px; a tile holds every class whose labels touch it; untouched tiles are
  unlabelled.

The class scheme is the analyst's (``scheme``: names, values, colours), or the distinct label
values when none is given. Nothing is dropped silently: labels outside every raster, features
without geometry or class and untagged cells are counted in :attr:`Labels.report`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.scene import Grid
from ..io.vector_labels import as_number, is_missing, pick_layer, resolve_field
from ..schemes import ClassScheme, load_scheme, scheme_from_dict

GRID_LAYER = "tiles"
GRID_FIELD = "classes"
TAG_SEPARATOR = ";"
_SPLIT = re.compile(r"[;,]")
# distinct, colour-blind-friendly defaults for a scheme made from the label values (Okabe-Ito,
# then Tableau); the analyst recolours them in the plugin's scheme editor
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442",
           "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd", "#ff9896")


@dataclass
class TileTag:
    """One tagged tile: a ``size`` x ``size`` window of raster ``raster`` at pixel (row, col)."""

    raster: int
    row: int
    col: int
    size: int
    labels: np.ndarray  # float32 multi-hot over the scheme
    id: str


@dataclass
class Labels:
    scheme: ClassScheme
    tiles: list[TileTag]
    kind: str  # "grid" | "features"
    report: dict = field(default_factory=dict)

    def class_counts(self) -> dict[str, int]:
        counts = np.sum([t.labels for t in self.tiles], axis=0) if self.tiles else np.zeros(self.scheme.num_classes)
        return {n: int(c) for n, c in zip(self.scheme.names, counts)}


def split_tags(text: Any) -> list[str]:
    """``"Water; Forest"`` -> ``["Water", "Forest"]``; empty or missing -> ``[]``."""
    if is_missing(text):
        return []
    return [t.strip() for t in _SPLIT.split(str(text)) if t.strip()]


def scheme_from_labels(values: Sequence[Any], name: str = "user") -> ClassScheme:
    """A scheme of the distinct label values: integer codes keep their value ("class 3"), names
    get values 1..K in sorted order; colours from :data:`PALETTE`."""
    distinct = sorted({str(v).strip() if as_number(v) is None else as_number(v) for v in values},
                      key=lambda v: (isinstance(v, str), v))
    if not distinct:
        raise InputError("the labels hold no class", fix="tag at least one tile or label one feature")
    classes = []
    for i, v in enumerate(distinct):
        value = v if isinstance(v, int) else i + 1
        label = f"class {v}" if isinstance(v, int) else v
        classes.append({"value": value, "name": label, "color": PALETTE[i % len(PALETTE)]})
    bad = [c["value"] for c in classes if not 0 <= c["value"] < 255]
    if bad:
        raise InputError(f"class codes {bad} are outside 0..254", fix="give a class scheme (--classes) "
                         "whose values are 0..254, or use class names")
    return scheme_from_dict({"name": name, "title": "user classes", "classes": classes})


def _class_index(label: Any, scheme: ClassScheme, where: Path) -> int:
    num = as_number(label)
    if num is not None and num in scheme.values:
        return scheme.index_of(num)
    text = str(label).strip()
    if scheme.has_name(text):
        return scheme.index_of(scheme.by_name(text).value)
    if num is not None and scheme.has_name(f"class {num}"):
        return scheme.index_of(scheme.by_name(f"class {num}").value)
    raise InputError(f"label '{label}' is not a class of the scheme ({', '.join(scheme.names)})",
                     path=where, fix="add the class to the scheme (--classes) or fix the label")


def _geometries_in(wkb, src_crs, grid: Grid, where: Path):
    """Shapely geometries reprojected into the raster's CRS (missing -> None)."""
    import shapely
    from rasterio.warp import transform_geom

    geoms = shapely.from_wkb(wkb)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if src_crs and grid.crs is not None:
        from rasterio.crs import CRS
        src = CRS.from_user_input(src_crs)
        if src != grid.crs:
            idx = np.nonzero(present)[0]
            moved = transform_geom(src, grid.crs, [shapely.geometry.mapping(g) for g in geoms[idx]])
            geoms = geoms.copy()
            for i, g in zip(idx, moved):
                geoms[i] = shapely.geometry.shape(g)
    elif src_crs and grid.crs is None:
        raise InputError("the raster has no CRS, so labels in a CRS cannot be placed on it", path=where,
                         fix="georeference the raster (or give labels without a CRS in its pixel grid)")
    return geoms, present


def read_labels(path: str | Path, grids: Sequence[Grid], *, tile: int | None, layer: str | None = None,
                field: str | None = None, scheme: str | Path | ClassScheme | dict | None = None,
                raster_names: Sequence[str] | None = None) -> Labels:
    """Tags of tiles of the rasters on ``grids`` from the labels at ``path`` (see module doc).

    ``field`` given: a feature layer with that class field; else a tile grid (``classes``).
    ``tile``: the tile size in px (needed for feature labels; for a grid, None reads every cell
    at the grid's own cell size).
    """
    from ..export.classes import import_pyogrio

    pyogrio = import_pyogrio()
    where = Path(path)
    if not where.exists():
        raise InputError("labels file not found", path=where, fix="check the path given to --labels")
    if tile is not None and tile < 16:
        raise InputError(f"--tile must be at least 16 px, got {tile}")
    if tile is None and field is not None:
        raise ValueError("feature labels need a tile size")
    lay = pick_layer(pyogrio, where, layer,
                     preferred=(lambda name, _geom: name == GRID_LAYER) if field is None else None)
    info = pyogrio.read_info(str(where), layer=lay)
    kind = "features" if field is not None else "grid"
    if field is None:
        if GRID_FIELD not in [str(f) for f in info["fields"]]:
            raise InputError(f"layer '{lay}' has no '{GRID_FIELD}' field, so it is not a tile grid "
                             f"(fields: {', '.join(map(str, info['fields'])) or 'none'})", path=where,
                             fix="make a grid with `sparsevit grid`, or name the class field of a "
                                 "point/line/polygon layer with --field")
        field = GRID_FIELD
    else:
        field = resolve_field(info, field, where)
    meta, _, wkb, data = pyogrio.raw.read(str(where), layer=lay, columns=[field], return_fids=True)
    values = list(data[0].tolist()) if len(wkb) else []
    if not values:
        raise InputError(f"layer '{lay}' has no features", path=where, fix="label some tiles first")
    tags = [split_tags(v) for v in values] if kind == "grid" else \
        [[] if is_missing(v) else [v] for v in values]
    if isinstance(scheme, dict):
        scheme_obj = scheme_from_dict(scheme, where)
    elif scheme is not None:
        scheme_obj = load_scheme(scheme)
    else:
        scheme_obj = scheme_from_labels([t for ts in tags for t in ts])
    index = [[_class_index(t, scheme_obj, where) for t in ts] for ts in tags]
    report = {"labels": str(where), "layer": lay, "field": field, "kind": kind, "features": len(values),
              "without_class": sum(1 for ts in tags if not ts), "crs": meta.get("crs")}
    names = list(raster_names or [f"raster{i}" for i in range(len(grids))])
    tiles: list[TileTag] = []
    placed = np.zeros(len(values), dtype=bool)
    for ri, grid in enumerate(grids):
        geoms, present = _geometries_in(wkb, meta.get("crs"), grid, where)
        if kind == "grid":
            tiles += _grid_tiles(geoms, present, index, scheme_obj.num_classes, grid, ri, tile, placed)
        else:
            tiles += _feature_tiles(geoms, present, index, scheme_obj.num_classes, grid, ri, tile, placed,
                                    names[ri])
    with_class = np.array([bool(ts) for ts in tags])
    report["outside_rasters"] = int(np.sum(with_class & ~placed))
    report["tagged_tiles"] = len(tiles)
    if not tiles:
        raise InputError("no tagged tile lies on the raster" + ("s" if len(grids) > 1 else "")
                         + f" ({report['features']} features, {report['without_class']} without a class, "
                           f"{report['outside_rasters']} outside)", path=where,
                         fix="tag cells of a grid made for this raster, or label features that overlap it")
    out = Labels(scheme_obj, tiles, kind, report)
    report["tiles_per_class"] = out.class_counts()
    return out


def _grid_tiles(geoms, present, index, k: int, grid: Grid, ri: int, tile: int | None, placed) -> list[TileTag]:
    """One tile per tagged cell: the square window of the cell's size (in px) at its centre."""
    inv = ~grid.transform
    sides = []
    cells = []
    for i, g in enumerate(geoms):
        if not present[i] or not index[i]:
            continue
        minx, miny, maxx, maxy = g.bounds
        c = g.centroid
        col, row = inv * (c.x, c.y)
        c0, r0 = inv * (minx, maxy)
        c1, r1 = inv * (maxx, miny)
        side = max(abs(c1 - c0), abs(r1 - r0))
        sides.append(side)
        cells.append((i, row, col))
    if not cells:
        return []
    size = int(tile) if tile else int(round(float(np.median(sides))))
    if size < 16:
        raise InputError(f"the grid's cells are {size} px of this raster; tiles need at least 16 px",
                         fix="make the grid with larger cells (sparsevit grid --tile 64)")
    out = []
    seen: set[tuple[int, int]] = set()
    for i, row, col in cells:
        r, c = int(math.floor(row - size / 2 + 0.5)), int(math.floor(col - size / 2 + 0.5))
        # a cell hanging over the edge by less than half keeps its clipped-in square
        if r < -size // 2 or c < -size // 2 or r + size > grid.height + size // 2 or c + size > grid.width + size // 2:
            continue
        r, c = min(max(r, 0), grid.height - size), min(max(c, 0), grid.width - size)
        if r < 0 or c < 0 or (r, c) in seen:
            continue
        seen.add((r, c))
        placed[i] = True
        labels = np.zeros(k, dtype=np.float32)
        labels[index[i]] = 1.0
        out.append(TileTag(ri, r, c, size, labels, f"r{ri}_{r}_{c}"))
    return out


def _feature_tiles(geoms, present, index, k: int, grid: Grid, ri: int, tile: int, placed,
                   raster_name: str) -> list[TileTag]:
    """Tiles of ``tile`` px over the raster; a tile holds every class whose labels touch it."""
    import shapely
    from affine import Affine
    from rasterio.features import rasterize

    rows, cols = grid.height // tile, grid.width // tile
    if rows == 0 or cols == 0:
        raise InputError(f"the raster ({grid.width}x{grid.height} px) is smaller than one tile ({tile} px)",
                         path=raster_name, fix="choose a smaller --tile")
    transform = grid.transform * Affine.scale(tile)
    hit = np.zeros((k, rows, cols), dtype=bool)
    xs, ys = zip(*(transform * (c, r) for c, r in ((0, 0), (cols, rows))))
    tiled = shapely.box(min(xs), min(ys), max(xs), max(ys))
    for cls in range(k):
        members = [i for i in range(len(geoms)) if present[i] and cls in index[i]]
        if not members:
            continue
        burned = rasterize(((geoms[i], 1) for i in members), out_shape=(rows, cols), transform=transform,
                           fill=0, all_touched=True, dtype="uint8")
        hit[cls] = burned.astype(bool)
    # a feature counts as placed when it reaches the tiled part of the raster
    ok = present & shapely.intersects(np.where(present, geoms, shapely.Point(0, 0)), tiled)
    placed |= ok & np.array([bool(ix) for ix in index])
    out = []
    for r, c in zip(*np.nonzero(hit.any(0))):
        labels = hit[:, r, c].astype(np.float32)
        out.append(TileTag(ri, int(r) * tile, int(c) * tile, tile, labels, f"r{ri}_{int(r) * tile}_{int(c) * tile}"))
    return out
