"""EuroSAT RGB -> L1C digital numbers: the calibration that puts the 27,000 RGB patches into the
radiometric space of the multispectral ones.

EuroSAT RGB is an 8-bit JPEG view of the same patches as EuroSAT-MS (R, G, B = B04, B03, B02).
On the patches present in both (same names, same pixels) each channel is a near-linear function
of its band's digital number, ``level = gain x DN + offset``, clipped at 255. :func:`fit` finds
gain and offset per channel by least squares on the unsaturated pixels of every pair;
``scripts/calibrate_eurosat_rgb.py`` writes the result to ``data/eurosat_rgb/calibration.json``,
which :func:`load` reads back. Saturated pixels (255) only tell that DN >= about 2750; they are
converted to that lower bound, a known loss for bright roofs, sand and clouds.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from ..bands import EUROSAT_BAND_ORDER
from ..errors import InputError

#: RGB channel order of EuroSAT RGB and the S2 band of each channel
RGB_CHANNEL_BANDS: tuple[str, str, str] = ("B04", "B03", "B02")
SATURATED = 255
_MEMBER_RE = re.compile(r"^EuroSAT_RGB/(?P<cls>[A-Za-z]+)/(?P<name>(?P=cls)_\d+)\.jpg$")


@dataclass(frozen=True)
class RgbCalibration:
    """``level = gain[b] x DN + offset[b]`` per band (keys B02, B03, B04)."""
    gain: dict[str, float]
    offset: dict[str, float]
    correlation: dict[str, float]
    rmse_levels: dict[str, float]
    pairs: int
    source: str = ""

    def to_dn(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 [3, H, W] in R, G, B order -> float32 DN [3, H, W] in the same order."""
        out = np.empty(rgb.shape, dtype=np.float32)
        for i, band in enumerate(RGB_CHANNEL_BANDS):
            out[i] = (rgb[i].astype(np.float32) - self.offset[band]) / self.gain[band]
        return np.maximum(out, 0.0)

    def to_levels(self, dn: np.ndarray) -> np.ndarray:
        """The 8-bit view of DN [3, H, W] (R, G, B order): what an RGB export would hold."""
        out = np.empty(dn.shape, dtype=np.float32)
        for i, band in enumerate(RGB_CHANNEL_BANDS):
            out[i] = dn[i] * self.gain[band] + self.offset[band]
        return np.clip(np.rint(out), 0, SATURATED).astype(np.uint8)

    def to_dict(self) -> dict:
        return {"model": "level = gain * DN + offset, clipped at 255", "gain": self.gain,
                "offset": self.offset, "correlation": self.correlation,
                "rmse_levels": self.rmse_levels, "pairs": self.pairs, "source": self.source}


def read_rgb_zip(zip_path: str | Path, names: Iterable[str] | None = None
                 ) -> dict[str, tuple[str, np.ndarray]]:
    """``{patch name: (class, uint8 [3, 64, 64] R,G,B)}`` from the EuroSAT RGB zip."""
    from PIL import Image

    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise InputError("EuroSAT RGB archive not found", path=zip_path,
                         fix="the repository carries it as data/eurosat_rgb/EuroSAT_RGB.zip")
    wanted = None if names is None else set(names)
    out: dict[str, tuple[str, np.ndarray]] = {}
    with zipfile.ZipFile(zip_path) as z:
        for member in sorted(z.namelist()):
            m = _MEMBER_RE.match(member)
            if not m or (wanted is not None and m["name"] not in wanted):
                continue
            with Image.open(io.BytesIO(z.read(member))) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
            out[m["name"]] = (m["cls"], np.ascontiguousarray(arr.transpose(2, 0, 1)))
    if not out:
        raise InputError("no EuroSAT RGB patches (EuroSAT_RGB/<Class>/<Class>_<n>.jpg) in the archive",
                         path=zip_path, fix="use the EuroSAT RGB zip the repository carries")
    return out


def paired_arrays(ms_files: dict[str, Path], rgb_zip: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """DN [N, 3, 64, 64] (B04, B03, B02) and levels [N, 3, 64, 64] of the patches in both sets."""
    import rasterio

    rgb = read_rgb_zip(rgb_zip, ms_files)
    names = sorted(set(rgb) & set(ms_files))
    if not names:
        raise InputError("no EuroSAT patch is in both the MS folders and the RGB archive",
                         path=rgb_zip)
    idx = [EUROSAT_BAND_ORDER.index(b) + 1 for b in RGB_CHANNEL_BANDS]
    dn = []
    for n in names:
        with rasterio.open(ms_files[n]) as src:
            dn.append(src.read(idx).astype(np.float32))
    return np.stack(dn), np.stack([rgb[n][1] for n in names])


def fit(dn: np.ndarray, levels: np.ndarray, source: str = "") -> RgbCalibration:
    """Least-squares ``level = gain x DN + offset`` per channel on unsaturated pixels."""
    gain, offset, corr, rmse = {}, {}, {}, {}
    for i, band in enumerate(RGB_CHANNEL_BANDS):
        x, y = dn[:, i].ravel().astype(np.float64), levels[:, i].ravel().astype(np.float64)
        keep = y < SATURATED
        a, b = np.polyfit(x[keep], y[keep], 1)
        gain[band], offset[band] = float(a), float(b)
        corr[band] = float(np.corrcoef(x[keep], y[keep])[0, 1])
        rmse[band] = float(np.sqrt(np.mean((a * x[keep] + b - y[keep]) ** 2)))
    return RgbCalibration(gain, offset, corr, rmse, int(dn.shape[0]), source)


def load(path: str | Path) -> RgbCalibration:
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        return RgbCalibration({k: float(v) for k, v in d["gain"].items()},
                              {k: float(v) for k, v in d["offset"].items()},
                              d.get("correlation", {}), d.get("rmse_levels", {}),
                              int(d.get("pairs", 0)), d.get("source", ""))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"cannot read the EuroSAT RGB calibration ({exc})", path=path,
                         fix="run scripts/calibrate_eurosat_rgb.py") from None


@lru_cache(maxsize=2)
def load_cached(path: str) -> RgbCalibration:
    return load(path)
