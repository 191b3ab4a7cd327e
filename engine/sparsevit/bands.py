"""Canonical Sentinel band names and the aliases found in real products.

Every reader maps what it finds (band descriptions, file names) onto these names, so the rest of
the engine never depends on band positions.
"""
from __future__ import annotations

import re

# ESA order. B10 (cirrus, 60 m) only exists in L1C products.
S2_BANDS: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A",
                             "B09", "B10", "B11", "B12")
# Bands the default model uses: every S2 band but B10, so L1C and L2A inputs both work.
S2_BANDS_NO_CIRRUS: tuple[str, ...] = tuple(b for b in S2_BANDS if b != "B10")
S2_RESOLUTION_M: dict[str, int] = {
    "B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
    "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20,
}
# The band order inside EuroSAT-MS GeoTIFFs (B8A last).
EUROSAT_BAND_ORDER: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08",
                                       "B09", "B10", "B11", "B12", "B8A")
S1_BANDS: tuple[str, ...] = ("VV", "VH")
RGB: tuple[str, str, str] = ("B04", "B03", "B02")
# In ``--band-order``, a file band the engine is to leave out (e.g. a cloud mask or an alpha band
# stacked with the spectral bands): every band needs an entry, so this one gets a placeholder.
UNUSED_BAND = "-"

_S2_RE = re.compile(r"(?<![A-Za-z0-9])B(?:AND)?[_ ]?0?(1[0-2]|[1-9]|8A)(?![0-9A-Za-z])", re.I)
_S1_RE = re.compile(r"(?<![A-Za-z])(VV|VH|HH|HV)(?![A-Za-z])", re.I)


# STAC EO common names (Earth Search asset keys, STAC-style COG distributions) and the spellings
# of other toolboxes for the Sentinel-2 bands; a plain "rededge" names three bands, so none.
COMMON_NAMES: dict[str, str] = {
    "coastal": "B01", "blue": "B02", "green": "B03", "red": "B04", "rededge1": "B05",
    "rededge2": "B06", "rededge3": "B07", "nir": "B08", "nir08": "B8A", "nir09": "B09",
    "cirrus": "B10", "swir16": "B11", "swir22": "B12", "swir1": "B11", "swir2": "B12",
}
# A label such as "Band 4" (what QGIS shows for an unnamed band, what ENVI and some exports
# write) counts bands; it does not say which Sentinel-2 band this is.
_GENERIC_RE = re.compile(r"^\s*band[_ \-]?\d+\s*$", re.I)


def normalize_s2_name(text: str) -> str | None:
    """'B4', 'B04', 'band_4', 'T33UUP_..._B04_10m', 'B8A', 'red', 'swir16' -> canonical name,
    else None."""
    m = _S2_RE.search(text)
    if m:
        num = m.group(1).upper()
        return "B8A" if num == "8A" else f"B{int(num):02d}"
    # a common name only as the whole label: "green?" or "red_edge_ratio" name no band
    return COMMON_NAMES.get(text.strip().lower())


def normalize_s2_filename(stem: str) -> str | None:
    """A band file's name: as :func:`normalize_s2_name`, or a common name as its last part
    (``S2B_30TXK_20230601_0_L2A_swir16`` of an Earth Search asset)."""
    return normalize_s2_name(stem) or COMMON_NAMES.get(re.split(r"[_\-. ]", stem.strip().lower())[-1])


def is_generic_band_label(text: str) -> bool:
    """True for 'Band 4', 'band_12': a band's position, not a Sentinel-2 band name."""
    return bool(_GENERIC_RE.match(text))


def normalize_s1_name(text: str) -> str | None:
    m = _S1_RE.search(text)
    return m.group(1).upper() if m else None


def parse_band_order(text: str | None) -> tuple[str, ...] | None:
    """``--band-order``: a preset (``eurosat``, ``esa``, ``esa12``) or names separated by commas
    or spaces, in the order of the raster's bands (``-`` for a band to leave out); None when not
    given."""
    if not text:
        return None
    presets = {"eurosat": EUROSAT_BAND_ORDER, "esa": S2_BANDS, "esa12": S2_BANDS_NO_CIRRUS}
    preset = presets.get(text.strip().lower())
    if preset:
        return preset
    return tuple(t for t in text.replace(",", " ").split() if t)
