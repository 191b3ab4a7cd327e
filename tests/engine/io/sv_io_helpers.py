"""Helpers for the I/O tests: small synthetic rasters and a duck-typed class scheme."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

UTM = CRS.from_epsg(32633)


@dataclass
class Cls:
    value: int
    name: str
    color: str


@dataclass
class Scheme:
    name: str = "test"
    classes: list = field(default_factory=lambda: [
        Cls(0, "Water", "#0000ff"), Cls(1, "Forest", "#009900"), Cls(3, "Built-up & roads", "#ff0000")])




def write_raster(path, data, transform, crs=UTM, nodata=None, descriptions=None, tags=None):
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=data.dtype.name, transform=transform, nodata=nodata)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            ds.set_band_description(i, d)
        for i, t in (tags or {}).items():
            ds.update_tags(i, **t)
    return path


def s2_folder(tmp_path, names=("B02", "B03", "B04", "B08", "B05", "B11", "B01"), pattern="{}.tif",
              size=60):
    """Per-band files at native 10/20/60 m over the same 600 m square."""
    from sparsevit.bands import S2_RESOLUTION_M
    folder = tmp_path / "bands"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for n in names:
        res = S2_RESOLUTION_M[n]
        px = size * 10 // res
        data = (rng.integers(500, 3000, (px, px))).astype("uint16")
        write_raster(folder / pattern.format(n), data, Affine(res, 0, 500000, 0, -res, 5000000))
    return folder
