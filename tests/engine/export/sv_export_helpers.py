"""Small classified rasters for the export tests (imported by the tests in this folder)."""
from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from sparsevit.io.scene import Grid
from sparsevit.io.writers import write_classified
from sparsevit.schemes import load_scheme

UTM = CRS.from_epsg(32630)


def class_map(seed: int = 0, shape=(60, 80), block: int = 10) -> np.ndarray:
    """Blocky DFC2020 classes (Forest 1, Shrubland 2, Urban 7, Water 10) with a nodata corner."""
    rng = np.random.default_rng(seed)
    small = rng.choice([1, 2, 7, 10], (shape[0] // block, shape[1] // block)).astype(np.uint8)
    arr = np.kron(small, np.ones((block, block), np.uint8))
    arr[:5, :7] = 255
    return arr


def utm_grid(arr: np.ndarray, res: float = 10.0) -> Grid:
    return Grid(UTM, Affine(res, 0, 440000, 0, -res, 4220000), arr.shape[1], arr.shape[0])


def write_map(path, arr=None, grid=None, scheme="dfc2020"):
    arr = class_map() if arr is None else arr
    write_classified(path, grid or utm_grid(arr), load_scheme(scheme), arr)
    return path
