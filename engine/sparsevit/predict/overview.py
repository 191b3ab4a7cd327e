"""The PNG overview of a prediction: RGB | attention pseudomask | land-cover map(s), with legends.

With a coarse level the coarse map gets a column of its own (after the detailed one, or instead
of it when only the coarse level was asked for) and a legend of its own.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.windows import Window

from ..io.clouds import CLOUD_CONFIDENCE
from ..report.figures import colorize, grid_png, palette_lut, rgb_image

MAX_SIDE = 768
# masked clouds and shadows (confidence -1): light grey stripes, told apart from the white of no data and
# from the grey of Highway
CLOUD_RGB, CLOUD_STRIPE_RGB, CLOUD_HEX = (236, 236, 236), (196, 196, 196), "#dcdcdc"


def _decimated_window_read(scene, window: Window, out_shape: tuple[int, int]):
    """RGB bands of ``window`` at ``out_shape``, without reading the full-resolution window."""
    bands = ("B04", "B03", "B02")
    if window.width * window.height <= 2048 * 2048:
        data, valid = scene.read(window, bands)
        idx = (np.linspace(0, data.shape[1] - 1, out_shape[0]).astype(int)[:, None],
               np.linspace(0, data.shape[2] - 1, out_shape[1]).astype(int)[None])
        return data[:, idx[0], idx[1]], valid[idx[0], idx[1]]
    # big areas: let GDAL decimate each band from its own file (overviews where present)
    out = np.zeros((3,) + out_shape, np.float32)
    tf = scene.grid.window_transform(window)
    bounds = rasterio.transform.array_bounds(int(window.height), int(window.width), tf)
    for i, b in enumerate(bands):
        src = scene.bands[b]
        with rasterio.open(src.path) as ds:
            win = rasterio.windows.from_bounds(bounds[0], bounds[1], bounds[2], bounds[3], ds.transform)
            out[i] = ds.read(src.index, window=win, out_shape=out_shape, boundless=True,
                             resampling=Resampling.average, out_dtype="float32")
    return out, np.any(out != 0, axis=0)


def write_overview(scene, window: Window, staged, scheme, path: Path, coarse_scheme=None,
                   detailed: bool = True) -> Path:
    h, w = int(window.height), int(window.width)
    f = min(1.0, MAX_SIDE / max(h, w))
    shape = (max(1, round(h * f)), max(1, round(w * f)))
    rgb, valid = _decimated_window_read(scene, window, shape)
    lut = palette_lut(scheme.colors, scheme.values, ignore_rgb=(255, 255, 255))
    cells = [rgb_image(rgb, ("B04", "B03", "B02"), valid=valid)]
    titles = ["Sentinel-2 RGB", "attention pseudomask"]
    maps = [(staged.pseudomask, lut)]
    coarse = coarse_scheme is not None and getattr(staged, "landcover_coarse", None) is not None
    if detailed or not coarse:
        maps.append((staged.landcover, lut))
        titles.append("land-cover map" if not coarse else "land cover, detailed")
    if coarse:
        maps.append((staged.landcover_coarse,
                     palette_lut(coarse_scheme.colors, coarse_scheme.values, ignore_rgb=(255, 255, 255))))
        titles.append("land cover, coarse")
    with rasterio.open(staged.confidence) as ds:
        cloud = ds.read(1, out_shape=shape, resampling=Resampling.nearest) == CLOUD_CONFIDENCE
    rows, cols = np.indices(shape)
    stripes = ((rows + cols) // 4) % 2 == 0
    for p, table in maps:
        with rasterio.open(p) as ds:
            img = colorize(ds.read(1, out_shape=shape, resampling=Resampling.nearest), table)
        img[cloud] = CLOUD_RGB
        img[cloud & stripes] = CLOUD_STRIPE_RGB
        cells.append(img)
    cell = 360 if len(cells) <= 3 else 320
    extra = [("cloud or shadow (masked)", CLOUD_HEX)] if cloud.any() else []
    detail = _legend(scheme) + extra
    if not coarse:
        return grid_png(path, [cells], titles, legend=detail, cell=cell)
    return grid_png(path, [cells], titles, cell=cell, legends=[
        (("pseudomask and detailed map: " if detailed else "pseudomask: ")
         + getattr(scheme, "title", scheme.name), detail),
        ("coarse map: " + getattr(coarse_scheme, "title", coarse_scheme.name),
         _legend(coarse_scheme) + extra)])


def _legend(scheme) -> list[tuple[str, str]]:
    """(text, colour) per class: readable labels where the scheme has them."""
    return [(getattr(c, "display_name", c.name), c.color) for c in scheme.classes]
