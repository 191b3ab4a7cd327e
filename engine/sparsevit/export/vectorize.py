"""Class polygons from a classified raster, block by block, into a GeoPackage layer.

Design (memory bounded by one block, whatever the raster size):

* The raster is cut into blocks of ``block_size`` pixels. Polygons are **split at block
  borders**: a forest patch crossing a border becomes two features, each with a ``block``
  field (row-major block number) so they can be dissolved later (QGIS: Dissolve by
  ``class_value``). Rasters up to ``block_size`` on a side give one block and no splits.
* ``min_area_pixels``: patches smaller than that are merged into their largest neighbour
  (GDAL sieve, 4-connectivity) before polygonizing, the usual way to drop salt-and-pepper noise.
  Each block is sieved with a halo of ``min(min_area_pixels, 1024)`` pixels, so which patches go
  is what a whole-raster sieve would decide (a patch that reaches past the halo is already too
  big to be sieved); only the neighbour a patch merges into can differ, and only when that
  neighbour is bigger than the halo. Patches surrounded by nodata are kept (GDAL behaviour).
* ``area_ha`` is the ground area of the pixels of each polygon (the same pixel areas as
  :mod:`sparsevit.export.stats`, so per-class sums equal the class-area table), whatever the
  output CRS and before any simplification.
* ``simplify`` (in pixels) runs Douglas-Peucker per polygon (topology of each polygon is kept,
  but neighbours may then overlap or leave slivers - leave it off for exact boundaries).
* ``crs``: geometries are reprojected with GDAL (``rasterio.warp.transform_geom``).
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..errors import InputError, OutputError
from ..io.atomic import atomic_path
from ..io.scene import Grid
from ..schemes import ClassScheme
from .classes import import_pyogrio, open_raster, raster_scheme
from .stats import _check_integer, pixel_areas_m2

_MAX_HALO = 1024
_SIEVE_DTYPES = {"uint8", "int16", "uint16", "int32"}


def parse_crs(text, what: str = "--crs"):
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if text is None:
        return None
    try:
        return CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError) as exc:
        raise InputError(f"{what} '{text}' is not a coordinate reference system ({exc})",
                         fix="use e.g. EPSG:4326, EPSG:32633 or a WKT/PROJ string") from None


def _blocks(width: int, height: int, size: int) -> list[tuple[int, Window]]:
    out = []
    for r in range(0, height, size):
        for c in range(0, width, size):
            out.append((len(out), Window(c, r, min(size, width - c), min(size, height - r))))
    return out


def _components(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected patches of equal value: (labels int32 [0 = nodata], class value per label)."""
    from scipy import ndimage

    labels = np.zeros(values.shape, dtype=np.int32)
    classes = [0]
    next_id = 1
    for v in np.unique(values[valid]).tolist():
        lab, n = ndimage.label(valid & (values == v))
        if n:
            sel = lab > 0
            labels[sel] = lab[sel] + (next_id - 1)
            classes.extend([v] * n)
            next_id += n
    return labels, np.asarray(classes, dtype=np.int64)


def vectorize(classified_path: str | Path, out_gpkg: str | Path,
              scheme: str | Path | ClassScheme | None = None, *, min_area_pixels: int = 0,
              simplify: float | None = None, crs=None, layer: str | None = None,
              block_size: int = 2048, band: int = 1, progress=None) -> dict[str, Any]:
    """Polygonize ``classified_path`` into layer ``layer`` (default: the file stem) of a new
    GeoPackage ``out_gpkg`` (replaced only on success). Fields: ``class_value``, ``class_name``,
    ``area_ha``, ``pixels``, ``block``. Returns ``{"path", "layer", "features", "blocks", "crs",
    "features_per_class"}``.
    """
    import shapely
    from rasterio.features import shapes, sieve
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    if min_area_pixels < 0:
        raise InputError(f"--min-area-pixels must be >= 0, got {min_area_pixels}")
    if simplify is not None and simplify < 0:
        raise InputError(f"simplify must be >= 0 pixels, got {simplify}")
    if block_size < 16:
        raise ValueError("block_size must be at least 16")
    out = Path(out_gpkg)
    layer = layer or out.stem
    scheme_obj = raster_scheme(classified_path, scheme, required=False)
    names = {c.value: c.name for c in scheme_obj.classes} if scheme_obj is not None else {}
    dst_crs = parse_crs(crs)
    pyogrio_raw = import_pyogrio().raw

    with open_raster(classified_path) as ds:
        if band > ds.count:
            raise InputError(f"raster has {ds.count} band(s), band {band} requested",
                             path=classified_path)
        _check_integer(ds.dtypes[band - 1], classified_path)
        grid = Grid.of(ds)
        if dst_crs is not None and grid.crs is None:
            raise InputError("raster has no CRS, so its polygons cannot be reprojected",
                             path=classified_path, fix="assign a CRS first or leave out --crs")
        reproject = dst_crs is not None and dst_crs != grid.crs
        out_crs = dst_crs if dst_crs is not None else grid.crs
        tolerance = None if not simplify else float(simplify) * max(grid.res)
        halo = min(int(min_area_pixels), _MAX_HALO) if min_area_pixels > 1 else 0
        blocks = _blocks(grid.width, grid.height, block_size)
        per_class: dict[int, int] = {}
        written = 0
        ctx = progress.stage("vectorize", total=len(blocks)) if progress is not None else nullcontext()
        with atomic_path(out, suffix=".gpkg") as tmp, ctx as st:
            for block_id, core in blocks:
                r0 = max(0, int(core.row_off) - halo)
                c0 = max(0, int(core.col_off) - halo)
                r1 = min(grid.height, int(core.row_off + core.height) + halo)
                c1 = min(grid.width, int(core.col_off + core.width) + halo)
                m = ds.read(band, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
                values, valid = m.data, ~np.ma.getmaskarray(m)
                if halo:
                    if values.dtype.name not in _SIEVE_DTYPES:
                        values = values.astype(np.int32)
                    values = sieve(values, size=int(min_area_pixels), mask=valid, connectivity=4)
                ys = slice(int(core.row_off) - r0, int(core.row_off) - r0 + int(core.height))
                xs = slice(int(core.col_off) - c0, int(core.col_off) - c0 + int(core.width))
                values, valid = values[ys, xs], valid[ys, xs]
                labels, label_class = _components(values, valid)
                if len(label_class) > 1:
                    n_labels = len(label_class)
                    areas = pixel_areas_m2(grid, core)
                    counts = np.bincount(labels.ravel(), minlength=n_labels)
                    m2 = (np.bincount(labels.ravel(), weights=np.broadcast_to(areas, labels.shape).ravel(),
                                      minlength=n_labels) if areas is not None else None)
                    feats = [(g, int(v)) for g, v in shapes(labels, mask=labels > 0, connectivity=4,
                                                            transform=grid.window_transform(core))]
                    ids = np.array([v for _, v in feats], dtype=np.int64)
                    geoms = np.array([shape(g) for g, _ in feats], dtype=object)
                    if tolerance:
                        # in source pixels' units, before reprojection, so "N pixels" means that
                        geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
                    if reproject:
                        geoms = np.array([shape(g) for g in transform_geom(
                            grid.crs, out_crs, [g.__geo_interface__ for g in geoms])], dtype=object)
                    cls = label_class[ids]
                    fields = [cls.astype(np.int32),
                              np.array([names.get(int(v), f"value {v}" if names else f"class {v}")
                                        for v in cls], dtype=object),
                              (m2[ids] / 1e4 if m2 is not None else np.full(len(ids), np.nan)),
                              counts[ids].astype(np.int64),
                              np.full(len(ids), block_id, dtype=np.int32)]
                    _write(pyogrio_raw, tmp, layer, shapely.to_wkb(geoms), fields, out_crs,
                           append=written > 0)
                    written += len(ids)
                    for v in cls.tolist():
                        per_class[v] = per_class.get(v, 0) + 1
                if st is not None:
                    st.advance()
            if written == 0:
                _write(pyogrio_raw, tmp, layer, np.array([], dtype=object),
                       [np.array([], np.int32), np.array([], object), np.array([], np.float64),
                        np.array([], np.int64), np.array([], np.int32)], out_crs, append=False)
    return {"path": str(out), "layer": layer, "features": written, "blocks": len(blocks),
            "crs": out_crs.to_string() if out_crs else None,
            "features_per_class": {str(k): v for k, v in sorted(per_class.items())}}


_FIELDS = ["class_value", "class_name", "area_ha", "pixels", "block"]


def _write(raw, path: Path, layer: str, wkb, fields, crs, append: bool) -> None:
    try:
        raw.write(str(path), wkb, fields, _FIELDS, layer=layer, driver="GPKG",
                  geometry_type="Polygon", crs=None if crs is None else crs.to_wkt(),
                  append=append, promote_to_multi=False)
    except Exception as exc:  # pyogrio raises its own DataSourceError/FieldError types
        raise OutputError(f"cannot write the GeoPackage ({str(exc).splitlines()[0][:200]})",
                          path=path, fix="check free disk space and that the folder is writable") from exc
