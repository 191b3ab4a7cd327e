"""Clouds: from the product's own mask when it has one, else a flag for implausible brightness.

A cloud is no land cover: the model maps it as whatever bright class it resembles (Industrial,
Sea / lake), and the class areas would count it. So ``predict`` writes cloudy pixels as no data
in the land-cover and pseudomask rasters, -1 in the confidence raster, and leaves them out of
the class areas; the run record counts them and says where the mask came from.

Sources, first found wins:

* L2A scene classification (``*_SCL_20m.jp2`` in a SAFE product, or an ``SCL`` file / band
  next to the bands): classes 3 (cloud shadow), 8, 9 (cloud, medium / high probability) and
  10 (thin cirrus);
* L1C baseline >= 04.00 ``QI_DATA/MSK_CLASSI_B00.jp2`` (band 1 opaque clouds, band 2 cirrus);
* a ``cloud_mask`` file beside the bands (Major-TOM: 0 clear, 1 thick, 2 thin, 3 shadow);
* otherwise a brightness flag on the reflectances: blue and the visible mean above 0.3 (TOA or
  surface), not snow (NDSI < 0.4 when B11 is there), in patches of at least 5 x 5 pixels and of
  a cloud's colour (grey to bluish, not darker in the near infrared) so bright roofs stay
  mapped, grown by 80 m to take the thinner rims. It finds thick clouds and their rims only,
  not thin clouds on their own or cloud shadows, and says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

# the confidence raster's value for a masked cloudy pixel (no data is NaN)
CLOUD_CONFIDENCE = -1.0
SCL_CLOUDY = (3, 8, 9, 10)
BRIGHT_DN = 3000  # reflectance x 10000
SNOW_NDSI = 0.4
# a bright patch is a cloud when its median B04/B02 is at most this and B08/B04 at least that
MAX_RED_BLUE, MIN_NIR_RED = 1.06, 1.05
_OPEN = 5  # px: a bright patch smaller than this is a roof or a greenhouse, not a cloud
# px: the flag finds cloud cores; their thinner rims (mapped as Industrial when kept) are grown
# into the mask, as cloud masks of the Fmask family buffer theirs
BUFFER = 8
_DISK = np.hypot(*np.mgrid[-BUFFER:BUFFER + 1, -BUFFER:BUFFER + 1]) <= BUFFER

KIND_SCL, KIND_CLASSI, KIND_MASK, KIND_BRIGHT = "scl", "msk_classi", "cloud_mask", "brightness"
_DESCRIBE = {
    KIND_SCL: "the scene classification (SCL classes 3 cloud shadow, 8/9 cloud, 10 cirrus)",
    KIND_CLASSI: "the product's cloud mask MSK_CLASSI_B00 (opaque clouds and cirrus)",
    KIND_MASK: "the cloud mask beside the bands (non-zero: cloud or shadow)",
    KIND_BRIGHT: (f"a brightness flag (no cloud mask in the input): blue and visible reflectance "
                  f"above {BRIGHT_DN / 10000:g}, grey to bluish, not snow, grown by {BUFFER * 10} m; "
                  "thick clouds only, not thin clouds or cloud shadows"),
}


@dataclass(frozen=True)
class CloudSource:
    """A cloud mask file (band ``index``) of ``kind``; ``path`` None for the brightness flag."""

    kind: str
    path: Path | None = None
    index: int = 1

    def describe(self) -> str:
        where = f" ({self.path.name})" if self.path is not None else ""
        return _DESCRIBE[self.kind] + where

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path) if self.path else None,
                "index": self.index, "what": _DESCRIBE[self.kind]}

    def cloudy(self, values: np.ndarray) -> np.ndarray:
        """Cloud mask from the stored values of the mask file (one band, or two for CLASSI)."""
        if self.kind == KIND_SCL:
            return np.isin(values, SCL_CLOUDY)
        return values != 0  # CLASSI: band 1 or 2 set; Major-TOM: any non-zero code


_SCL_RE = re.compile(r"(^|[_\-.])SCL([_\-.]|$)", re.I)


def in_safe(files: Sequence) -> CloudSource | None:
    """The cloud mask of a SAFE product among its member ``files`` (paths or archive paths)."""
    scl = [f for f in files if _SCL_RE.search(Path(str(f)).stem) and "IMG_DATA" in str(f)]
    if scl:
        # the finest copy (R20m) wins over R60m
        def res(f):
            m = re.search(r"_(\d+)m$", Path(str(f)).stem)
            return int(m.group(1)) if m else 999
        return CloudSource(KIND_SCL, min(scl, key=res))
    classi = [f for f in files if Path(str(f)).stem.upper() == "MSK_CLASSI_B00"]
    if classi:
        return CloudSource(KIND_CLASSI, classi[0])
    return None


def by_name(path: Path, index: int, description: str | None, count: int) -> CloudSource | None:
    """A band the reader could not name as a spectral band, taken as a cloud mask by its name."""
    label = description or (path.stem if count == 1 else "")
    if not label:
        return None
    if _SCL_RE.search(label):
        return CloudSource(KIND_SCL, path, index)
    if re.search(r"MSK_CLASSI", label, re.I):
        return CloudSource(KIND_CLASSI, path, index)
    if re.search(r"cloud[_ \-]?mask|^clouds?$", label, re.I):
        return CloudSource(KIND_MASK, path, index)
    return None


def bright(data: np.ndarray, bands: Sequence[str], valid: np.ndarray) -> np.ndarray:
    """Brightness flag [H, W] on model DN ``data`` [C, H, W] whose channels are ``bands``
    (absent bands NaN); all False without B02, B03 and B04."""
    names = list(bands)
    try:
        b2, b3, b4 = (data[names.index(b)] for b in ("B02", "B03", "B04"))
    except ValueError:
        return np.zeros(valid.shape, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        flag = (b2 > BRIGHT_DN) & ((b2 + b3 + b4) / 3 > BRIGHT_DN) & valid
        if "B11" in names and np.isfinite(data[names.index("B11")]).any():
            b11 = data[names.index("B11")]
            ndsi = (b3 - b11) / np.maximum(b3 + b11, 1)
            flag &= ~(ndsi >= SNOW_NDSI)
    if not flag.any():
        return flag
    # edge padding: a cloud cut by the window border is not eroded there
    pad = _OPEN // 2
    opened = ndimage.binary_opening(np.pad(flag, pad, mode="edge"), np.ones((_OPEN, _OPEN), bool))
    opened = _cloud_coloured(opened[pad:-pad, pad:-pad], b2, b4,
                             data[names.index("B08")] if "B08" in names else None)
    return ndimage.binary_dilation(opened, _DISK) & valid if opened.any() else opened


def _cloud_coloured(patches: np.ndarray, b2: np.ndarray, b4: np.ndarray, b8: np.ndarray | None) -> np.ndarray:
    """The bright ``patches`` whose colour is a cloud's: grey to bluish in the visible and not
    darker in the near infrared. Bright roofs are redder than blue (B04/B02 1.09-1.27 on the
    flagged roofs of the EuroSAT Industrial patches) or darker in B08 than in B04 (0.91-0.99
    where they are grey); the clouds of the real scenes in ``data/`` measured B04/B02 0.97-1.02,
    B08/B04 1.13-1.56 (medians per patch, L1C and L2A alike)."""
    labels, n = ndimage.label(patches)
    if n == 0:
        return patches
    idx = np.arange(1, n + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = ndimage.median(b4 / b2, labels, idx) <= MAX_RED_BLUE
        if b8 is not None and np.isfinite(b8).any():
            keep &= ndimage.median(b8 / b4, labels, idx) >= MIN_NIR_RED
    return np.concatenate([[False], keep])[labels]
