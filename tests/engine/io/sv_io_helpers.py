"""Helpers for the I/O tests: small synthetic rasters and a duck-typed class scheme."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from affine import Affine

from fixtures.rasters import UTM, write_raster  # noqa: F401  (re-exported for the io tests)


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
