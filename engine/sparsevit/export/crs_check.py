"""Is a target CRS meant for where the data are? Measured, not looked up.

A CRS is only usable in its zone: UTM 50N over Spain stretches distances several times, Web
Mercator at 60 N doubles them. Rather than a table of areas of use (PROJ's database is not
reliably there in a pip install), the local scale of the target CRS is measured at the data's
centre and corners: ground steps of 100 m east and north, projected, compared with 100 m.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io.scene import Grid

_A, _INV_F = 6378137.0, 298.257223563
MAX_SCALE_ERROR = 0.01  # UTM stays within 0.1 % in its zone, and 0.6 % 6 degrees beyond it
MAX_ANISOTROPY = 0.02
_STEP_M = 100.0


def _points(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    from rasterio.warp import transform as warp_points

    t = grid.transform
    cols = np.array([0.5, grid.width - 0.5, 0.5, grid.width - 0.5, grid.width / 2])
    rows = np.array([0.5, 0.5, grid.height - 0.5, grid.height - 0.5, grid.height / 2])
    xs, ys = t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f
    lon, lat = warp_points(grid.crs, "EPSG:4326", xs.tolist(), ys.tolist())
    return np.asarray(lon), np.asarray(lat)


def target_crs_distortion(src: Grid, dst_crs) -> dict | None:
    """``{"scale", "anisotropy", "warning"}`` when ``dst_crs`` (a projected CRS) distorts the
    data's area beyond what a CRS is used for, else None. An unprojectable area is an error."""
    from rasterio.warp import transform as warp_points

    if src.crs is None or dst_crs is None or dst_crs.is_geographic:
        return None
    lon, lat = _points(src)
    f = 1 / _INV_F
    e2 = f * (2 - f)
    phi = np.radians(lat)
    s2 = np.sin(phi) ** 2
    m = _A * (1 - e2) / (1 - e2 * s2) ** 1.5
    n = _A / np.sqrt(1 - e2 * s2)
    dlat = np.degrees(_STEP_M / m)
    dlon = np.degrees(_STEP_M / (n * np.cos(phi)))
    name = dst_crs.to_string()
    unusable = InputError(f"{name} cannot hold this raster: its area cannot be projected there",
                          fix="choose a CRS meant for the data's region (its UTM zone, or EPSG:4326)")
    try:
        xs, ys = warp_points("EPSG:4326", dst_crs, np.r_[lon, lon + dlon, lon].tolist(),
                             np.r_[lat, lat, lat + dlat].tolist())
    except Exception as exc:  # GDAL: "Point outside of projection domain"
        raise unusable from exc
    xs, ys = np.asarray(xs).reshape(3, -1), np.asarray(ys).reshape(3, -1)
    try:
        unit = dst_crs.linear_units_factor[1]
    except Exception:
        unit = 1.0
    kx = np.hypot(xs[1] - xs[0], ys[1] - ys[0]) * unit / _STEP_M
    ky = np.hypot(xs[2] - xs[0], ys[2] - ys[0]) * unit / _STEP_M
    if not (np.isfinite(kx).all() and np.isfinite(ky).all()) or (kx == 0).any() or (ky == 0).any():
        raise unusable
    scale = float(max(np.abs(kx - 1).max(), np.abs(ky - 1).max()))
    aniso = float(np.abs(kx / ky - 1).max())
    if scale <= MAX_SCALE_ERROR and aniso <= MAX_ANISOTROPY:
        return None
    lon0, lat0 = float(lon[-1]), float(lat[-1])
    zone = int((lon0 + 180) // 6) % 60 + 1
    utm = f"EPSG:{32600 + zone if lat0 >= 0 else 32700 + zone}"
    worst = float(max(kx.max(), ky.max(), 1 / min(kx.min(), ky.min())))
    warning = (f"{name} is far from where it is meant to be used for this raster: it stretches or "
               f"shrinks distances here by up to {100 * (worst - 1):.0f} %"
               + (f" and squashes shapes by {100 * aniso:.0f} %" if aniso > MAX_ANISOTROPY else "")
               + f"; the data's own UTM zone is {utm}. Class areas are measured on the ground "
               "either way, but lengths, shapes and pixel sizes in the file are distorted")
    return {"scale": round(1 + scale, 4), "anisotropy": round(aniso, 4), "warning": warning,
            "suggested_crs": utm}
