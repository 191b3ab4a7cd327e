"""20/60 m bands that an export upsampled by nearest neighbour, smoothed as the model saw them.

Many exports put every band on the 10 m grid by nearest neighbour (Google Earth Engine's default,
and so Sen1Floods11, the bundled sample): a 20 m band then comes as 2 x 2 blocks of one value.
The model was trained on EuroSAT-MS, whose 20 m bands are smooth (about 3 % of neighbouring
pixels equal, as in its 10 m bands), and it reacts to that block texture: the same scene read
from its native 20 m bands through the engine's bilinear warp gave a different class on 14 % of
the pixels (``benchmarks/bench_inputs.py``). So a coarse band found blocky is filtered with the
tent kernel of its native pixel size, which turns nearest-neighbour blocks into exactly the
bilinear upsampling of the native values (for a factor of 2: [1/4, 1/2, 1/4] per axis).

Detection compares equal-neighbour rates, per axis, of the 20 m bands with those of the 10 m
bands of the same raster (which carry whatever equalities the export's own grid adds, e.g. a
geographic grid narrower than 10 m): only a clear excess counts, so a smooth or quantised input
is left as it is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.ndimage import correlate1d

from ..bands import S2_RESOLUTION_M

# the 20 m group decides (six textured bands); the 60 m bands follow it, since in EuroSAT itself
# B01/B09 are partly blocky while its 20 m bands are smooth
_GROUP_20M = ("B05", "B06", "B07", "B8A", "B11", "B12")
_REFS_10M = ("B02", "B03", "B04", "B08")
# nearest upsampling by a factor k makes 1 - 1/k of the neighbour pairs along an axis equal
# (0.5 for 20 m on 10 m); a smooth band adds a few percent to what its 10 m bands show
MIN_EXCESS = 0.2
_SAMPLE = 512


@dataclass(frozen=True)
class Smoothing:
    """Tent half-widths in pixels (rows, columns) for each smoothed band, and why."""

    factors: dict[str, tuple[float, float]]
    rate_20m: tuple[float, float]  # equal-neighbour share (rows, columns) of the 20 m group
    rate_10m: tuple[float, float]

    def halo(self, band: str) -> tuple[int, int]:
        ky, kx = self.factors[band]
        return (max(0, math.ceil(ky) - 1), max(0, math.ceil(kx) - 1))

    def describe(self) -> str:
        bands = ", ".join(self.factors)
        return (f"{bands} look upsampled by nearest neighbour in this export ({_pct(self.rate_20m)} "
                f"of neighbouring 20 m pixels equal, {_pct(self.rate_10m)} in the 10 m bands): "
                "smoothed to what a bilinear upsampling of the native pixels gives, as the model "
                "was trained; --keep-blocky-bands reads them as stored")

    def to_dict(self) -> dict:
        return {"bands": {b: [round(k, 3) for k in f] for b, f in self.factors.items()},
                "equal_neighbours_20m": [round(v, 4) for v in self.rate_20m],
                "equal_neighbours_10m": [round(v, 4) for v in self.rate_10m]}


def _pct(rate: tuple[float, float]) -> str:
    return f"{100 * (rate[0] + rate[1]) / 2:.0f} %"


def equal_neighbour_rate(arr: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """Share of vertically and of horizontally adjacent valid pixel pairs with equal values."""
    out = []
    for axis in (0, 1):
        a0 = np.take(arr, range(arr.shape[axis] - 1), axis=axis)
        a1 = np.take(arr, range(1, arr.shape[axis]), axis=axis)
        m = np.take(valid, range(valid.shape[axis] - 1), axis=axis) & \
            np.take(valid, range(1, valid.shape[axis]), axis=axis)
        n = int(m.sum())
        out.append(float(((a0 == a1) & m).sum()) / n if n else 0.0)
    return out[0], out[1]


def detect(bands: list[str], res_m: tuple[float, float],
           sample: Callable[[str], tuple[np.ndarray, np.ndarray]]) -> Smoothing | None:
    """The smoothing to apply, or None. ``bands``: the input's bands on the target grid (not
    warped by the engine); ``res_m``: the grid's pixel size (x, y) in metres; ``sample(band)``:
    ``(values, valid)`` of one full-resolution window of the raw band."""
    g20 = [b for b in _GROUP_20M if b in bands]
    refs = [b for b in _REFS_10M if b in bands]
    rx, ry = res_m
    if not g20 or not refs or 20 / max(rx, ry) < 1.5:
        return None
    rates20 = np.array([equal_neighbour_rate(*sample(b)) for b in g20])
    rates10 = np.array([equal_neighbour_rate(*sample(b)) for b in refs])
    r20 = tuple(float(v) for v in np.median(rates20, axis=0))
    r10 = tuple(float(v) for v in np.median(rates10, axis=0))
    if (r20[0] - r10[0] + r20[1] - r10[1]) / 2 < MIN_EXCESS:
        return None
    factors = {}
    for b in bands:
        native = S2_RESOLUTION_M.get(b, 10)
        if native > 10 and native / max(rx, ry) >= 1.5:
            factors[b] = (native / ry, native / rx)
    return Smoothing(factors, r20, r10) if factors else None


def tent(k: float) -> np.ndarray:
    """Weights of a triangle of half-width ``k`` pixels at integer offsets, summing to 1."""
    half = max(0, math.ceil(k) - 1)
    d = np.arange(-half, half + 1, dtype=np.float64)
    w = np.clip(1 - np.abs(d) / k, 0, None)
    return (w / w.sum()).astype(np.float32)


def smooth(arr: np.ndarray, valid: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """``arr`` filtered with the tent of ``factors`` (rows, columns); invalid pixels and pixels
    outside the array get no weight (normalised convolution), so no-data does not bleed in, and
    keep their stored value, so the validity judged later on the result stays that of the file."""
    m = valid.astype(np.float32)
    num = np.where(valid, arr, 0).astype(np.float32)
    for axis, k in enumerate(factors):
        if k >= 1.5:
            w = tent(k)
            num = correlate1d(num, w, axis=axis, mode="constant")
            m = correlate1d(m, w, axis=axis, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / m
    return np.where(valid & (m > 1e-6), out, arr).astype(np.float32)
