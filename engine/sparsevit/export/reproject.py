"""A classified raster as a Cloud Optimized GeoTIFF, optionally in another CRS / resolution.

Labels are resampled with nearest neighbour only (an average of "forest" and "water" is no
class). Pixels are pulled through a GDAL warped VRT one output window at a time, and written by
:class:`~sparsevit.io.writers.ClassifiedWriter`, so the colour table, the class-name RAT, the
``SPARSEVIT_CLASSES`` tag and the ``.qml`` style come along and the output is atomic.
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from ..io.scene import Grid
from ..io.tiles import tile_windows
from ..io.writers import IGNORE, ClassifiedWriter
from ..schemes import ClassScheme
from .classes import open_raster
from .crs_check import target_crs_distortion
from .edits import resolve_edits
from .stats import _check_integer
from .vectorize import parse_crs


def _resolution(resolution) -> tuple[float, float] | None:
    if resolution is None:
        return None
    res = (resolution, resolution) if np.isscalar(resolution) else tuple(resolution)
    if len(res) != 2 or not all(float(r) > 0 for r in res):
        raise InputError(f"resolution must be one or two positive numbers, got {resolution!r}")
    return float(res[0]), float(res[1])


def target_grid(src_grid: Grid, crs=None, resolution: float | Sequence[float] | None = None) -> Grid:
    """The grid GDAL would choose to hold ``src_grid`` in ``crs`` (default: its own CRS)."""
    from rasterio.warp import calculate_default_transform

    dst_crs = parse_crs(crs) if crs is not None else src_grid.crs
    res = _resolution(resolution)
    if dst_crs is None:
        if res is not None:
            raise InputError("a raster without CRS cannot be resampled to a resolution",
                             fix="assign a CRS first")
        return src_grid
    if dst_crs == src_grid.crs and res is None:
        return Grid(dst_crs, src_grid.transform, src_grid.width, src_grid.height)
    transform, width, height = calculate_default_transform(
        src_grid.crs, dst_crs, src_grid.width, src_grid.height, *src_grid.bounds,
        resolution=res)
    return Grid(dst_crs, transform, int(width), int(height))


def export_classified(src: str | Path, dst: str | Path, crs=None,
                      resolution: float | Sequence[float] | None = None, *,
                      scheme: str | Path | ClassScheme | None = None, classes=None, reclass=None,
                      band: int = 1, block: int = 1024, progress=None) -> dict[str, Any]:
    """Write ``src`` (a class raster) as a COG at ``dst`` in ``crs`` (default: the source CRS)
    with pixel size ``resolution`` in target-CRS units (default: GDAL's choice, which keeps about
    the source pixel count). Classes come from ``scheme`` or the source's class table. Source
    nodata and pixels outside the source become 255. ``reclass`` / ``classes``: see
    :mod:`sparsevit.export.edits`. Returns ``{"path", "grid", "scheme"}``.
    """
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    if Path(dst).suffix.lower() not in (".tif", ".tiff"):
        raise InputError("a classified raster export needs a .tif output", path=dst,
                         fix="name the output *.tif (or use .gpkg/.csv/.json for other formats)")
    edits = resolve_edits(src, scheme, classes, reclass)
    scheme_obj = edits.scheme
    with open_raster(src) as ds:
        if band > ds.count:
            raise InputError(f"raster has {ds.count} band(s), band {band} requested", path=src)
        _check_integer(ds.dtypes[band - 1], src)
        src_grid = Grid.of(ds)
        if crs is not None and src_grid.crs is None:
            raise InputError("raster has no CRS, so it cannot be reprojected", path=src,
                             fix="assign a CRS first or leave out --crs")
        grid = target_grid(src_grid, crs, resolution)
        warp = not grid.same_as(src_grid)
        distortion = target_crs_distortion(src_grid, grid.crs) if warp else None
        if distortion is not None and progress is not None:
            progress.log(distortion["warning"], level="warning")
        vrt = None
        if warp:
            vrt = WarpedVRT(ds, crs=grid.crs, transform=grid.transform, width=grid.width,
                            height=grid.height, resampling=Resampling.nearest,
                            src_nodata=ds.nodata, nodata=IGNORE)
        reader = vrt if vrt is not None else ds
        windows = [t.core for t in tile_windows(grid.width, grid.height, block)]
        ctx = progress.stage("export", total=len(windows)) if progress is not None else nullcontext()
        try:
            with ClassifiedWriter(dst, grid, scheme_obj) as writer, ctx as st:
                for win in windows:
                    m = reader.read(band, window=win, masked=True)
                    data, valid = edits.apply(m.data, ~np.ma.getmaskarray(m))
                    if data.dtype != np.uint8:
                        bad = (data < 0) | (data > 254)
                        if np.any(bad & valid):
                            raise InputError("raster holds values outside 0..254, which a class "
                                             "raster cannot carry", path=src,
                                             fix="map the values to scheme classes first (--reclass)")
                    out = np.where(valid, data, IGNORE).astype(np.uint8)
                    writer.write(out, win)
                    if st is not None:
                        st.advance()
        finally:
            if vrt is not None:
                vrt.close()
    return {"path": str(dst), "grid": grid.to_dict(), "scheme": scheme_obj.name,
            "reprojected": warp, "crs_distortion": distortion,
            "warnings": [distortion["warning"]] if distortion else []}
