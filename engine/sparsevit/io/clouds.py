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
  before 04.00 ``QI_DATA/MSK_CLOUDS_B00.gml`` (opaque and cirrus polygons, rasterised);
* a ``cloud_mask`` file beside the bands (Major-TOM: 0 clear, 1 thick, 2 thin, 3 shadow);
* otherwise a brightness flag on the reflectances: blue and the visible mean above 0.3 (TOA or
  surface), not snow (NDSI < 0.4 when B11 is there), in patches of at least 5 x 5 pixels and of
  a cloud's colour (grey to bluish, not darker in the near infrared) so bright roofs stay
  mapped, grown by 80 m to take the thinner rims. It finds thick clouds and their rims only,
  not thin clouds on their own, and says so.

Cloud shadows, for the masks that lack them (the brightness flag, MSK_CLASSI, the GML
polygons), where the input says where the sun was (a SAFE granule's ``MTD_TL.xml``, an Earth
Engine ``metadata.json`` or the same keys as tags): every cloud is swept away from the sun for cloud heights of 200 to
6000 m, and the dark land pixels there (near infrared below 0.6 of the clear land's median, not
water-like) are masked too, as patches with a 30 m edge. Without the sun's position shadows stay
mapped (the model reads them as water) and the log says so.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from .radiometry import local_name

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
# cloud shadows: searched this far from their cloud (cloud heights, m), and a shadowed pixel is
# darker in the near infrared than this share of the scene's clear-land median
SHADOW_HEIGHTS_M = (200, 6000)
SHADOW_NIR_SHARE = 0.6
# the shadow search reads the scene at most this many pixels on a side (decimated above)
SHADOW_MAX_SIDE = 2048

KIND_SCL, KIND_CLASSI, KIND_MASK, KIND_BRIGHT = "scl", "msk_classi", "cloud_mask", "brightness"
KIND_GML = "msk_clouds_gml"
# masks without cloud shadows, to which projected shadows are added
NO_SHADOWS = (KIND_BRIGHT, KIND_CLASSI, KIND_GML)
_DESCRIBE = {
    KIND_GML: "the product's cloud polygons MSK_CLOUDS_B00.gml (opaque clouds and cirrus)",
    KIND_SCL: "the scene classification (SCL classes 3 cloud shadow, 8/9 cloud, 10 cirrus)",
    KIND_CLASSI: "the product's cloud mask MSK_CLASSI_B00 (opaque clouds and cirrus)",
    KIND_MASK: "the cloud mask beside the bands (non-zero: cloud or shadow)",
    KIND_BRIGHT: (f"a brightness flag (no cloud mask in the input): blue and visible reflectance "
                  f"above {BRIGHT_DN / 10000:g}, grey to bluish, not snow, grown by {BUFFER * 10} m; "
                  "thick clouds only, not thin clouds"),
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
    gml = [f for f in files if Path(str(f)).name.upper() == "MSK_CLOUDS_B00.GML"]
    if gml:  # products before baseline 04.00 (2022) carry their cloud mask as polygons
        return CloudSource(KIND_GML, gml[0])
    return None


def gml_polygons(root) -> tuple[list[dict], str | None]:
    """The polygons (GeoJSON-like dicts) of an ``MSK_CLOUDS_B00.gml`` ElementTree root and the
    EPSG code they are in (``srsName``). An empty mask (no ``maskMembers``: a cloud-free
    granule) gives no polygons."""
    def ring(el) -> list[tuple[float, float]]:
        pos = next((c for c in el.iter() if local_name(c.tag) == "posList"), None)
        if pos is None or not (pos.text or "").split():
            raise ValueError("a ring without coordinates")
        dim = int(pos.get("srsDimension", "2"))
        vals = [float(v) for v in pos.text.split()]
        return [tuple(vals[i:i + 2]) for i in range(0, len(vals) - dim + 1, dim)]

    shapes = []
    for poly in (el for el in root.iter() if local_name(el.tag) == "Polygon"):
        rings = [ring(c) for c in poly if local_name(c.tag) == "exterior"] + \
                [ring(c) for c in poly if local_name(c.tag) == "interior"]
        if rings:
            shapes.append({"type": "Polygon", "coordinates": rings})
    # the first srsName in the document (the envelope's, then each polygon's: one CRS)
    m = re.search(r"EPSG::?(\d+)", " ".join(el.get("srsName", "") for el in root.iter()))
    return shapes, m.group(1) if m else None


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


def bright(data: np.ndarray, bands: Sequence[str], valid: np.ndarray, factor: int = 1) -> np.ndarray:
    """Brightness flag [H, W] on model DN ``data`` [C, H, W] whose channels are ``bands``
    (absent bands NaN); all False without B02, B03 and B04. ``factor``: pixels of ``factor``
    x 10 m (a decimated read), so the patch size and the buffer keep their ground size."""
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
    size = max(1, round(_OPEN / factor))
    pad = size // 2
    opened = ndimage.binary_opening(np.pad(flag, pad, mode="edge"), np.ones((size, size), bool))
    opened = _cloud_coloured(opened[pad:opened.shape[0] - pad, pad:opened.shape[1] - pad], b2, b4,
                             data[names.index("B08")] if "B08" in names else None)
    if not opened.any():
        return opened
    return ndimage.binary_dilation(opened, _disk(max(1, round(BUFFER / factor)))) & valid


def _disk(r: int) -> np.ndarray:
    return np.hypot(*np.mgrid[-r:r + 1, -r:r + 1]) <= r


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


# --------------------------------------------------------------------------------------------
# cloud shadows
@dataclass(frozen=True)
class SunAngles:
    """Mean sun zenith and azimuth (degrees, azimuth clockwise from north) and where they came
    from."""

    zenith: float
    azimuth: float
    source: str

    def to_dict(self) -> dict:
        return {"zenith": round(self.zenith, 2), "azimuth": round(self.azimuth, 2), "source": self.source}


def sun_from_json(meta: dict, source: str) -> SunAngles | None:
    """Earth Engine's ``MEAN_SOLAR_ZENITH_ANGLE`` / ``MEAN_SOLAR_AZIMUTH_ANGLE`` (in
    ``metadata.json`` or as tags)."""
    keys = {str(k).upper(): v for k, v in meta.items()}
    try:
        z, a = float(keys["MEAN_SOLAR_ZENITH_ANGLE"]), float(keys["MEAN_SOLAR_AZIMUTH_ANGLE"])
    except (KeyError, TypeError, ValueError):
        return None
    return SunAngles(z, a, source) if 0 <= z < 85 and 0 <= a <= 360 else None


def sun_from_tile_xml(root, source: str) -> SunAngles | None:
    """``Mean_Sun_Angle`` of a SAFE granule's ``MTD_TL.xml`` (an ElementTree root)."""
    for el in root.iter():
        if local_name(el.tag) == "Mean_Sun_Angle":
            vals = {local_name(c.tag): c.text for c in el}
            return sun_from_json({"MEAN_SOLAR_ZENITH_ANGLE": vals.get("ZENITH_ANGLE"),
                                  "MEAN_SOLAR_AZIMUTH_ANGLE": vals.get("AZIMUTH_ANGLE")}, source)
    return None


@dataclass
class ShadowMask:
    """Cloud shadows of an area read at ``factor`` x the grid's pixel size: ``mask`` [h, w]
    starts at (``row_off``, ``col_off``) of the grid."""

    mask: np.ndarray
    factor: int
    row_off: int
    col_off: int

    def crop(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """The shadows of a grid window, nearest neighbour onto the full grid."""
        f = self.factor
        rows = np.clip((np.arange(height) + row_off - self.row_off) // f, 0, self.mask.shape[0] - 1)
        cols = np.clip((np.arange(width) + col_off - self.col_off) // f, 0, self.mask.shape[1] - 1)
        return self.mask[rows[:, None], cols[None, :]]


def project_shadows(cloud: np.ndarray, dark: np.ndarray, sun: SunAngles, pixel_m: float,
                    heights_m: tuple[float, float] = SHADOW_HEIGHTS_M) -> np.ndarray:
    """Dark pixels where a cloud of ``cloud`` casts its shadow for any cloud height in
    ``heights_m``: the cloud mask swept away from the sun, one pixel at a time, as the
    geometric step of Fmask does (without its height matching)."""
    tan_z = np.tan(np.radians(sun.zenith))
    # the shadow lies opposite the sun: towards azimuth + 180 deg; rows grow southwards
    d_col, d_row = -np.sin(np.radians(sun.azimuth)), np.cos(np.radians(sun.azimuth))
    near, far = (h * tan_z / pixel_m for h in heights_m)
    swept = np.zeros_like(cloud)
    h, w = cloud.shape
    for d in np.arange(near, far + 1, 1.0):
        dr, dc = int(round(d * d_row)), int(round(d * d_col))
        if abs(dr) >= h or abs(dc) >= w:
            break
        src = cloud[max(0, -dr):h - max(0, dr), max(0, -dc):w - max(0, dc)]
        swept[max(0, dr):h - max(0, -dr), max(0, dc):w - max(0, -dc)] |= src
    shadow = swept & dark & ~cloud
    if not shadow.any():
        return shadow
    # a shadow is a patch: close the holes the per-pixel test leaves, drop specks, and take
    # its soft edge (about 30 m) as the cloud rims are taken
    k = max(1, round(30 / pixel_m))
    shadow = ndimage.binary_closing(shadow, _disk(k), border_value=0)
    labels, n = ndimage.label(shadow)
    sizes = ndimage.sum(shadow, labels, np.arange(1, n + 1))
    keep = np.concatenate([[False], sizes * pixel_m ** 2 >= _OPEN ** 2 * 100])
    shadow = ndimage.binary_dilation(keep[labels], _disk(k))
    return shadow & ~cloud


def dark_not_water(data: np.ndarray, bands: Sequence[str], valid: np.ndarray, clear: np.ndarray) -> np.ndarray:
    """Pixels darker in the near infrared than :data:`SHADOW_NIR_SHARE` of the clear land's
    median, and not water-like (NDWI < 0): shadowed land. Shadows on water are left alone (the
    map says water there either way)."""
    names = list(bands)
    b3, b8 = data[names.index("B03")], data[names.index("B08")]
    with np.errstate(invalid="ignore", divide="ignore"):
        ndwi = (b3 - b8) / np.maximum(b3 + b8, 1)
        land = clear & valid & (ndwi < 0)
        if land.sum() < 100:
            return np.zeros(valid.shape, bool)
        return valid & (ndwi < 0) & (b8 < SHADOW_NIR_SHARE * np.median(b8[land]))
