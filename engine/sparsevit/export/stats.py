"""Class areas of a classified raster, computed window by window.

Pixel area in any CRS:

* projected CRS: ``|a*e - b*d|`` of the geotransform, times the square of the CRS's linear unit
  in metres. That is the area *in the projection* (UTM's scale error is below 0.1% inside a
  zone); use an equal-area CRS for survey-grade totals.
* geographic CRS: the exact area of each row's latitude band on the CRS's ellipsoid (authalic
  formula), so a 0.0001 degree pixel at 60 N correctly counts about half of one at the equator.
  Rotated geographic grids use the local ``M * N * cos(lat)`` scale per pixel instead.
* no CRS: areas are unknown (``hectares`` is ``None``); pixel counts and shares still hold.

``percent`` is the share of the classified (non-nodata) *area*, not of the pixel count, so it
stays right on geographic grids where pixels differ in size.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..errors import InputError
from ..io.atomic import write_text_atomic
from ..io.scene import Grid
from ..schemes import ClassScheme
from .classes import open_raster, raster_scheme
from .edits import resolve_edits

_WGS84 = (6378137.0, 298.257223563)
_AUTO = "auto"


def _ellipsoid(crs) -> tuple[float, float]:
    """(semi-major axis in m, eccentricity) of a geographic CRS; WGS84 when the WKT lacks one."""
    m = re.search(r'(?:SPHEROID|ELLIPSOID)\["[^"]*",\s*([0-9.eE+-]+),\s*([0-9.eE+-]+)', crs.to_wkt())
    a, inv_f = (float(m.group(1)), float(m.group(2))) if m else _WGS84
    f = 0.0 if inv_f == 0 else 1.0 / inv_f  # inverse flattening 0 means a sphere
    return a, math.sqrt(f * (2 - f))


def _band_area(lat1: np.ndarray, lat2: np.ndarray, dlon_deg: float, a: float, e: float) -> np.ndarray:
    """Area (m^2) of the ellipsoid between two latitudes over ``dlon_deg`` of longitude."""
    b2 = (a * a) * (1 - e * e)

    def q(lat: np.ndarray) -> np.ndarray:
        s = np.sin(np.radians(np.clip(lat, -90.0, 90.0)))
        if e == 0:
            return 2 * s
        return s / (1 - e * e * s * s) + np.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return np.abs(math.radians(dlon_deg) * b2 / 2 * (q(lat2) - q(lat1)))


def area_method(grid: Grid) -> str | None:
    """How pixel areas are measured: on the ellipsoid, from the geographic cell or, for a
    projected CRS, from the projection's local scale (a Web Mercator pixel at 60 N covers a
    quarter of its nominal area, a UTM pixel up to ~0.2 % more or less)."""
    if grid.crs is None:
        return None
    return "ellipsoidal" if grid.crs.is_geographic else "ellipsoidal (projected cells)"


_LATTICE = 32  # px between the points where a projected grid's local scale is measured


def _projected_areas(grid: Grid, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """Ground area (m^2) of each pixel of a projected grid: the cell mapped to longitude and
    latitude by finite differences at lattice points, on the WGS84 ellipsoid, interpolated
    linearly in between (the scale varies slowly); [h, w] float64."""
    from rasterio.warp import transform as warp_points

    t = grid.transform
    # lattice anchored to the grid, not to the window: a pixel's area is the same whichever
    # block it is read in, so totals do not depend on the block size
    L = _LATTICE
    rows = np.arange(r0 // L * L, -(-(r0 + h) // L) * L + 1, L, dtype=np.float64) + 0.5
    cols = np.arange(c0 // L * L, -(-(c0 + w) // L) * L + 1, L, dtype=np.float64) + 0.5
    R, C = np.meshgrid(rows, cols, indexing="ij")
    offsets = ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5))  # (d col, d row)
    xs = np.concatenate([(t.a * (C + dc) + t.b * (R + dr) + t.c).ravel() for dc, dr in offsets])
    ys = np.concatenate([(t.d * (C + dc) + t.e * (R + dr) + t.f).ravel() for dc, dr in offsets])
    lon, lat = (np.asarray(v).reshape(4, *R.shape) for v in warp_points(grid.crs, "EPSG:4326", xs, ys))
    dlon_c, dlat_c = lon[0] - lon[1], lat[0] - lat[1]
    dlon_r, dlat_r = lon[2] - lon[3], lat[2] - lat[3]
    dlon_c, dlon_r = ((d + 180) % 360 - 180 for d in (dlon_c, dlon_r))  # across the antimeridian
    jac = np.abs(dlon_c * dlat_r - dlon_r * dlat_c)  # deg^2 per pixel
    a, e = _WGS84[0], math.sqrt((1 / _WGS84[1]) * (2 - 1 / _WGS84[1]))
    phi = np.radians(np.clip(lat.mean(axis=0), -90, 90))
    s2 = np.sin(phi) ** 2
    m = a * (1 - e * e) / (1 - e * e * s2) ** 1.5
    n = a / np.sqrt(1 - e * e * s2)
    lattice = jac * math.radians(1) ** 2 * m * n * np.cos(phi)
    if not np.isfinite(lattice).all():
        raise InputError("the raster's CRS cannot be mapped to longitude/latitude over its extent, "
                         "so areas cannot be measured", fix="reproject the raster to a CRS valid "
                         "there (its UTM zone, or EPSG:4326)")
    # separable linear interpolation to every pixel centre
    pr, pc = np.arange(r0, r0 + h) + 0.5, np.arange(c0, c0 + w) + 0.5
    by_row = np.stack([np.interp(pc, cols, lattice[i]) for i in range(len(rows))])
    return np.stack([np.interp(pr, rows, by_row[:, j]) for j in range(w)], axis=1)


def pixel_areas_m2(grid: Grid, window: Window) -> np.ndarray | None:
    """Pixel areas in m^2 for ``window``, broadcastable to its (height, width); ``None`` without a CRS."""
    if grid.crs is None:
        return None
    t = grid.transform
    det = abs(t.a * t.e - t.b * t.d)
    h, w = int(window.height), int(window.width)
    if not grid.crs.is_geographic:
        return _projected_areas(grid, int(window.row_off), int(window.col_off), h, w)
    a, e = _ellipsoid(grid.crs)
    r0, c0 = int(window.row_off), int(window.col_off)
    if t.b == 0 and t.d == 0:
        rows = np.arange(r0, r0 + h, dtype=np.float64)
        lat_top = t.f + t.e * rows
        return _band_area(lat_top, lat_top + t.e, abs(t.a), a, e)[:, None]
    rows, cols = np.mgrid[r0:r0 + h, c0:c0 + w].astype(np.float64)
    lat = np.radians(np.clip(t.d * (cols + 0.5) + t.e * (rows + 0.5) + t.f, -90, 90))
    s2 = np.sin(lat) ** 2
    m = a * (1 - e * e) / (1 - e * e * s2) ** 1.5
    n = a / np.sqrt(1 - e * e * s2)
    return det * math.radians(1) ** 2 * m * n * np.cos(lat)


def _strips(height: int, width: int, block_pixels: int):
    rows = max(1, block_pixels // max(width, 1))
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))


class _Accumulator:
    def __init__(self) -> None:
        self.pixels: dict[int, int] = {}
        self.m2: dict[int, float] = {}
        self.nodata = 0

    def add(self, values: np.ndarray, valid: np.ndarray, areas: np.ndarray | None) -> None:
        self.nodata += int(valid.size - valid.sum())
        vals = values[valid]
        if not vals.size:
            return
        weights = None if areas is None else np.broadcast_to(areas, values.shape)[valid]
        if vals.dtype == np.uint8:
            counts = np.bincount(vals, minlength=256)
            sums = np.bincount(vals, weights=weights, minlength=256) if weights is not None else None
            uniq = np.flatnonzero(counts)
            counts = counts[uniq]
            sums = sums[uniq] if sums is not None else None
        else:
            uniq, inverse = np.unique(vals, return_inverse=True)
            counts = np.bincount(inverse, minlength=uniq.size)
            sums = (np.bincount(inverse, weights=weights, minlength=uniq.size)
                    if weights is not None else None)
        for i, v in enumerate(uniq.tolist()):
            self.pixels[v] = self.pixels.get(v, 0) + int(counts[i])
            if sums is not None:
                self.m2[v] = self.m2.get(v, 0.0) + float(sums[i])


def _check_integer(dtype, path) -> None:
    if np.dtype(dtype).kind not in "iu":
        raise InputError(f"a class raster needs integer values, this one is {dtype}", path=path,
                         fix="give the classified output (uint8), not a probability or image raster")


def area_summary(source: str | Path | Grid, scheme: str | Path | ClassScheme | None = None,
                 array: np.ndarray | None = None, *, nodata: int | None | str = _AUTO,
                 band: int = 1, block_pixels: int = 1 << 22, classes=None, reclass=None,
                 progress=None) -> dict[str, Any]:
    """Class areas plus totals: ``{"classes": [...], "total_hectares", "classified_pixels",
    "nodata_pixels", "crs", "area_method", "scheme", "raster"}``.

    ``source`` is a raster path (read in strips of ``block_pixels``) or a :class:`Grid` with
    ``array`` (an in-memory class map on that grid). ``scheme``: a scheme name/path/object; for a
    path it defaults to the raster's class table, and values outside the scheme are still listed
    (``"in_scheme": False``), never dropped. ``nodata``: the value to leave out; ``"auto"`` uses
    the raster's nodata (255 for arrays). ``reclass`` / ``classes`` (raster paths only): see
    :mod:`sparsevit.export.edits`; the table then lists the new classes.
    """
    acc = _Accumulator()
    if isinstance(source, Grid):
        if array is None:
            raise ValueError("area_summary(grid, ...) needs the class array")
        arr = np.asarray(array)
        if arr.shape != (source.height, source.width):
            raise ValueError(f"array shape {arr.shape} does not match the grid "
                             f"{source.height}x{source.width}")
        _check_integer(arr.dtype, None)
        if classes is not None or reclass is not None:
            raise ValueError("class edits apply to raster files, not to in-memory arrays")
        grid, path = source, None
        nd = 255 if nodata == _AUTO else nodata
        scheme_obj = raster_scheme("", scheme) if scheme is not None else None
        windows = list(_strips(grid.height, grid.width, block_pixels))
        ctx = progress.stage("areas", total=len(windows)) if progress is not None else nullcontext()
        with ctx as st:
            for win in windows:
                sl = (slice(int(win.row_off), int(win.row_off + win.height)), slice(0, grid.width))
                vals = arr[sl]
                valid = np.ones(vals.shape, bool) if nd is None else vals != nd
                acc.add(vals, valid, pixel_areas_m2(grid, win))
                if st is not None:
                    st.advance()
    else:
        path = Path(source)
        edits = resolve_edits(path, scheme, classes, reclass, required=False)
        scheme_obj = edits.scheme
        with open_raster(path) as ds:
            if band > ds.count:
                raise InputError(f"raster has {ds.count} band(s), band {band} requested", path=path)
            _check_integer(ds.dtypes[band - 1], path)
            grid = Grid.of(ds)
            nd = ds.nodata if nodata == _AUTO else nodata
            use_mask = nodata == _AUTO
            windows = list(_strips(grid.height, grid.width, block_pixels))
            ctx = progress.stage("areas", total=len(windows)) if progress is not None else nullcontext()
            with ctx as st:
                for win in windows:
                    if use_mask:
                        m = ds.read(band, window=win, masked=True)
                        vals, valid = m.data, ~np.ma.getmaskarray(m)
                    else:
                        vals = ds.read(band, window=win)
                        valid = np.ones(vals.shape, bool) if nd is None else vals != nd
                    vals, valid = edits.apply(vals, valid)
                    acc.add(vals, valid, pixel_areas_m2(grid, win))
                    if st is not None:
                        st.advance()
    return _summary(acc, grid, scheme_obj, path)


def _summary(acc: _Accumulator, grid: Grid, scheme: ClassScheme | None, path) -> dict[str, Any]:
    known = grid.crs is not None
    total_m2 = sum(acc.m2.values()) if known else None
    total_px = sum(acc.pixels.values())
    entries: list[tuple[int, str, bool]] = []
    if scheme is not None:
        entries = [(c.value, c.name, True) for c in scheme.classes]
    listed = {v for v, _, _ in entries}
    entries += [(v, f"value {v}" if scheme is not None else f"class {v}", scheme is None)
                for v in sorted(acc.pixels) if v not in listed]
    rows = []
    for value, name, in_scheme in entries:
        px = acc.pixels.get(value, 0)
        m2 = acc.m2.get(value, 0.0) if known else None
        if known:
            pct = 100.0 * m2 / total_m2 if total_m2 else 0.0
        else:
            pct = 100.0 * px / total_px if total_px else 0.0
        rows.append({"value": int(value), "name": name, "pixels": int(px),
                     "hectares": None if m2 is None else m2 / 1e4, "percent": pct,
                     "in_scheme": in_scheme})
    return {"raster": None if path is None else str(path),
            "scheme": None if scheme is None else scheme.name,
            "crs": grid.crs.to_string() if grid.crs else None, "area_method": area_method(grid),
            "width": grid.width, "height": grid.height,
            "classified_pixels": int(total_px), "nodata_pixels": int(acc.nodata),
            "total_hectares": None if total_m2 is None else total_m2 / 1e4, "classes": rows}


def class_areas(source: str | Path | Grid, scheme: str | Path | ClassScheme | None = None,
                array: np.ndarray | None = None, **kwargs) -> list[dict[str, Any]]:
    """One row per class: ``{value, name, pixels, hectares, percent, in_scheme}`` (see
    :func:`area_summary` for the arguments)."""
    return area_summary(source, scheme, array, **kwargs)["classes"]


_CSV_FIELDS = ("value", "name", "pixels", "hectares", "percent")


def areas_csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_CSV_FIELDS)
    for r in rows:
        w.writerow([r["value"], r["name"], r["pixels"],
                    "" if r["hectares"] is None else f"{r['hectares']:.4f}", f"{r['percent']:.4f}"])
    return buf.getvalue()


def write_areas_csv(path: str | Path, summary_or_rows: dict | list) -> Path:
    """CSV with columns value,name,pixels,hectares,percent (hectares empty when unknown)."""
    rows = summary_or_rows["classes"] if isinstance(summary_or_rows, dict) else summary_or_rows
    return write_text_atomic(path, areas_csv_text(rows))


def write_areas_json(path: str | Path, summary_or_rows: dict | list) -> Path:
    """The :func:`area_summary` dict (or ``{"classes": rows}``) as strict JSON."""
    data = summary_or_rows if isinstance(summary_or_rows, dict) else {"classes": summary_or_rows}
    return write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def format_areas(summary: dict[str, Any]) -> str:
    """A plain-text table for the terminal."""
    rows = summary["classes"]
    width = max([len(r["name"]) for r in rows] + [5])
    lines = [f"{'value':>5}  {'class':<{width}}  {'pixels':>12}  {'hectares':>14}  {'percent':>7}"]
    for r in rows:
        ha = "n/a" if r["hectares"] is None else f"{r['hectares']:.2f}"
        lines.append(f"{r['value']:>5}  {r['name']:<{width}}  {r['pixels']:>12}  {ha:>14}  "
                     f"{r['percent']:>6.2f}%")
    total = summary.get("total_hectares")
    lines.append(f"total classified: {summary['classified_pixels']} px"
                 + ("" if total is None else f", {total:.2f} ha")
                 + f"; nodata {summary['nodata_pixels']} px")
    return "\n".join(lines)
