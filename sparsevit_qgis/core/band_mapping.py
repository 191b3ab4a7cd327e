"""Which band of the Sentinel-2 input file is which Sentinel-2 band: the panel's band-mapping
table turned into the engine's ``--band-order`` (names in file order; ``-`` leaves a band out),
checked before the engine is started so the message can point at the table row.

No Qt or QGIS here: the editor widget (gui/band_mapping.py) and the tests share this.
The names and presets mirror engine/sparsevit/bands.py; the plugin does not import the engine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

# ESA order; B10 (cirrus) exists in L1C products only.
S2_BAND_NAMES: tuple[str, ...] = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A",
                                  "B09", "B10", "B11", "B12")
UNUSED = "-"  # the engine's placeholder for a file band it is to leave out
UNUSED_LABEL = "(unused)"
# (name the engine accepts, label, names in file order)
PRESETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("eurosat", "EuroSAT-MS (13 bands: B10 10th, B8A last)",
     ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")),
    ("esa", "ESA order, L1C (13 bands, B01..B12 with B8A and B10)", S2_BAND_NAMES),
    ("esa12", "ESA order without B10, L2A (12 bands)", tuple(b for b in S2_BAND_NAMES if b != "B10")),
)
HOW_OVERRIDE = "override"
# A per-band folder, a SAFE product (folder, MTD_*.xml or zip) has one file per band: the engine
# names them from the file names, and an order across files would mean nothing.
_MULTI_FILE_SUFFIXES = {".zip", ".xml", ".safe"}
_NAME_RE = re.compile(r"^B(?:AND)?[_ ]?0?(1[0-2]|[1-9]|8A)$", re.I)


class BandMappingError(ValueError):
    """A mapping the engine cannot be given; the message names the row and the fix."""


@dataclass
class FileBand:
    """One band of the input file (``index`` 1-based) and what the last Inspect said of it."""

    index: int
    description: str = ""
    detected: str | None = None  # the engine's Sentinel-2 name; None: not used
    how: str | None = None  # description | tag | filename | position | override


def normalize_name(text: str | None) -> str | None:
    """``B4``, ``b04``, ``band_8a`` -> ``B04``/``B8A``; ``-``, ``(unused)``, empty -> ``-``;
    anything else None."""
    value = (text or "").strip()
    if value in ("", UNUSED, UNUSED_LABEL) or value.lower() in ("unused", "none"):
        return UNUSED
    m = _NAME_RE.match(value)
    if not m:
        return None
    num = m.group(1).upper()
    return "B8A" if num == "8A" else f"B{int(num):02d}"


def preset(name: str) -> tuple[str, ...] | None:
    key = (name or "").strip().lower()
    return next((names for value, _label, names in PRESETS if value == key), None)


def preset_of(names: Sequence[str]) -> str | None:
    """The preset with exactly these names, in this order (None: none)."""
    return next((value for value, _label, p in PRESETS if tuple(names) == p), None)


def split_names(text: str) -> list[str]:
    """A ``--band-order`` value (a preset or names separated by commas or spaces) as the list of
    names it stands for, as typed (check them with :func:`validate`)."""
    names = preset(text)
    if names is not None:
        return list(names)
    return [t for t in (text or "").replace(",", " ").split() if t]


def problems(names: Sequence[str | None], count: int | None = None) -> list[str]:
    """What stops ``names`` (file order, one per file band) from being a ``--band-order``."""
    out: list[str] = []
    if count is not None and len(names) != count:
        out.append(f"The mapping names {len(names)} band(s) but the file has {count}: give one "
                   "Sentinel-2 name (or (unused)) per file band, in file order.")
    canon: list[str] = []
    for row, name in enumerate(names, start=1):
        value = normalize_name(name)
        if value is None:
            out.append(f"File band {row}: '{name}' is not a Sentinel-2 band name; use "
                       f"{', '.join(S2_BAND_NAMES)} or {UNUSED_LABEL}.")
            value = UNUSED
        canon.append(value)
    seen: dict[str, list[int]] = {}
    for row, value in enumerate(canon, start=1):
        if value != UNUSED:
            seen.setdefault(value, []).append(row)
    for value, rows in seen.items():
        if len(rows) > 1:
            out.append(f"{value} is given to file bands {', '.join(map(str, rows))}: each "
                       "Sentinel-2 band can be one file band only; set the others to another "
                       f"band or {UNUSED_LABEL}.")
    if canon and not seen and not any("not a Sentinel-2" in p for p in out):
        out.append("Every band is set to (unused): name at least one band.")
    return out


def canonical(names: Sequence[str | None], count: int | None = None) -> list[str]:
    """``names`` in the engine's spelling (``-`` for unused); :class:`BandMappingError` with
    every problem otherwise."""
    found = problems(names, count)
    if found:
        raise BandMappingError("\n".join(found))
    return [normalize_name(n) or UNUSED for n in names]


def band_order_text(names: Sequence[str | None], count: int | None = None) -> str:
    """The ``--band-order`` value for ``names``: ``B04,B03,B02,-``."""
    return ",".join(canonical(names, count))


def band_order_args(band_order: str | None) -> list[str]:
    """``--band-order VALUE``; one ``--band-order=VALUE`` token when the value starts with ``-``
    (a first band left out), which argparse would otherwise take for an option."""
    value = (band_order or "").strip()
    if not value:
        return []
    return [f"--band-order={value}"] if value.startswith("-") else ["--band-order", value]


def is_multi_file(path: str | None) -> bool:
    """True for inputs made of one file per band (a folder, a SAFE product, its zip or XML)."""
    if not path:
        return False
    p = Path(path.split("|")[0])
    return p.is_dir() or p.suffix.lower() in _MULTI_FILE_SUFFIXES


def _same_file(a: str, b: str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def detected_bands(result: dict | None, path: str) -> dict[int, tuple[str, str]]:
    """From an ``info`` result (``{"products": [...]}``): file band index -> (Sentinel-2 name,
    how it was found), for the bands of ``path`` the engine uses."""
    out: dict[int, tuple[str, str]] = {}
    for product in (result or {}).get("products") or []:
        if product.get("kind") != "S2" or not isinstance(product.get("bands"), dict):
            continue
        for name, band in product["bands"].items():
            if isinstance(band, dict) and _same_file(str(band.get("path", "")), path):
                try:
                    out[int(band["index"])] = (str(name), str(band.get("how") or ""))
                except (KeyError, TypeError, ValueError):
                    continue
    return out


def file_bands(descriptions: Iterable[str], result: dict | None, path: str) -> list[FileBand]:
    """The table's rows: each file band (its description) with what ``result`` assigned to it."""
    found = detected_bands(result, path)
    rows = []
    for index, desc in enumerate(descriptions, start=1):
        name, how = found.get(index, (None, None))
        rows.append(FileBand(index, desc or "", name, how))
    return rows
