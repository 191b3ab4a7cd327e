"""Radiometry of a Sentinel-2 input: which convention its numbers are in, and the conversion to
the one convention the models read.

The model's convention (``CANONICAL``) is what EuroSAT and the training data hold: L1C/L2A
digital numbers = reflectance x 10000, with no offset. Products carry other conventions:

- processing baseline >= 04.00 (every ESA product since 2022-01-25, and the reprocessed
  archive): DN = reflectance x 10000 + 1000 (``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` = -1000
  in ``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``);
- STAC/COG distributions publish GDAL band scale/offset (reflectance = DN * 0.0001 - 0.1);
- exports in float reflectance (0..1), and 8-bit renderings (refused: the scaling is lost).

Each band gets one linear conversion ``model_dn = raw * scale + offset`` (:class:`BandConversion`)
from the first of these sources that says something: a user override, the SAFE metadata found
beside or above the band files, GDAL scale/offset, dataset/band tags, an Earth Engine
``metadata.json`` beside the bands, the value range. Whatever was not found is said in a
warning rather than guessed silently.
"""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Iterable, Sequence

import numpy as np

from ..bands import S2_BANDS, normalize_s2_name
from ..errors import InputError
from .archive import ArchivePath, is_zip, listing
from .archive import verify as verify_members

CANONICAL = "dn"
CANONICAL_TEXT = "L1C/L2A digital numbers = reflectance x 10000, no offset"
# --radiometry presets: model_dn = raw * scale + offset
OVERRIDES: dict[str, tuple[float, float]] = {
    "dn": (1.0, 0.0),
    "reflectance": (10000.0, 0.0),
    "dn-offset-1000": (1.0, -1000.0),
}
OVERRIDE_HELP = ("dn (reflectance x 10000, no offset), reflectance (0..1 floats), dn-offset-1000 "
                 "(ESA baseline >= 04.00: DN carry +1000), or SCALE,OFFSET meaning "
                 "reflectance = value * SCALE + OFFSET (GDAL's convention)")

SRC_OVERRIDE = "override"
SRC_SAFE = "SAFE metadata"
SRC_GDAL = "GDAL scale/offset"
SRC_TAGS = "tags"
SRC_EE = "Earth Engine metadata.json"
SRC_RANGE = "value range"
SRC_DTYPE = "data type"  # integer bands without any metadata: DN as they are

MTD_NAMES = ("MTD_MSIL1C.xml", "MTD_MSIL2A.xml")
# ESA band ids (band_id="0" .. "12" in the product metadata)
ESA_BAND_IDS = {i: b for i, b in enumerate(S2_BANDS)}
OFFSET_BASELINE = (4, 0)
DEFAULT_QUANTIFICATION = 10000.0
# float data whose valid values lie in [-_REFL_MAX, _REFL_MAX] for at least this share: reflectance
_REFL_MAX = 1.5
_REFL_SHARE = 0.9
_MTD_LEVELS_UP = 5  # band dir + 4 parents: SAFE/GRANULE/<granule>/IMG_DATA/R10m/band.jp2
_PRODUCT_RE = re.compile(r"S2[A-D]_MSIL(1C|2A)(?:_\d{8}T\d{6}_N(\d{2})(\d{2}))?", re.I)
_OFFSET_KEY_RE = re.compile(r"^(?:BOA_|RADIO_)?ADD_OFFSET(?:[_:](.+))?$")
_SAMPLE_SIDE = 128


# --------------------------------------------------------------------------------------------
# conversions
@dataclass(frozen=True)
class BandConversion:
    """``model_dn = raw * scale + offset`` for one band, and where that came from."""

    scale: float = 1.0
    offset: float = 0.0
    source: str = SRC_RANGE

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.offset == 0.0

    def apply(self, arr: np.ndarray) -> np.ndarray:
        """float32 ``arr`` converted in place (returned unchanged for the identity)."""
        if self.identity:
            return arr
        if self.scale != 1.0:
            np.multiply(arr, np.float32(self.scale), out=arr)
        if self.offset != 0.0:
            np.add(arr, np.float32(self.offset), out=arr)
        return arr

    def value(self, v: float | None) -> float | None:
        return None if v is None else v * self.scale + self.offset

    def to_dict(self) -> dict:
        return {"scale": self.scale, "offset": self.offset, "source": self.source}


def _form(c: BandConversion) -> str:
    for name, (s, o) in OVERRIDES.items():
        if math.isclose(c.scale, s) and math.isclose(c.offset, o, abs_tol=1e-6):
            return name
    return "scaled"


@dataclass
class ProductInfo:
    """Level, baseline and offsets as one source states them (any of them may be unknown)."""

    source: str  # SRC_SAFE | SRC_TAGS | SRC_EE | "product name"
    where: str | None = None  # file that said so
    level: str | None = None  # "L1C" | "L2A"
    baseline: str | None = None  # "04.00"
    quantification: float | None = None
    offsets: dict[str, float] | None = None  # band -> ADD_OFFSET in DN; None: not stated
    offset_all: float | None = None  # one offset for every band
    harmonized: bool | None = None  # Earth Engine: offset already removed

    @property
    def baseline_has_offset(self) -> bool | None:
        b = parse_baseline(self.baseline)
        return None if b is None else b >= OFFSET_BASELINE

    def offset_for(self, band: str) -> float | None:
        if self.offsets is not None and band in self.offsets:
            return self.offsets[band]
        return self.offset_all

    @property
    def states_offset(self) -> bool:
        return bool(self.offsets) or self.offset_all is not None


def parse_baseline(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    m = re.match(r"^\s*N?(\d{1,2})\.?(\d{2})\s*$", str(text))
    if not m:
        return None
    major, minor = int(m.group(1)), int(m.group(2))
    if (major, minor) == (99, 99):  # locally processed (sen2cor) products: no ESA baseline
        return None
    return (major, minor)


def _level(text: str | None) -> str | None:
    if not text:
        return None
    m = re.search(r"(?:L(?:EVEL)?[-_ ]?|MSI)(1C|2A)", str(text).upper())
    return f"L{m.group(1)}" if m else None


def local_name(tag: str) -> str:
    """An XML tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def read_xml(path: Path):
    """The ElementTree root of a product's XML metadata (a file, or an
    :class:`~sparsevit.io.archive.ArchivePath` inside a zipped product)."""
    try:
        # inside a zip: the member's bytes (an InputError naming the archive when it is damaged)
        data = path.read_bytes()
        # ESA's product metadata has no DTD; one that declares entities could expand them
        # without bound (the "billion laughs"), so it is refused before parsing
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise ET.ParseError("declares a DTD or entities, which product metadata never does")
        return ET.fromstring(data)  # nosec B314: no DTD, no entities (checked above)
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"the product metadata is not readable XML ({exc})", path=path,
                         fix="download the product again, or remove the damaged file") from exc


def read_mtd(path: Path) -> ProductInfo:
    """Level, baseline, quantification and per-band offsets from MTD_MSIL1C.xml / MTD_MSIL2A.xml
    (a file, or an :class:`~sparsevit.io.archive.ArchivePath` inside a zipped product)."""
    root = read_xml(path)
    info = ProductInfo(SRC_SAFE, str(path))
    band_of_id = dict(ESA_BAND_IDS)
    offsets_by_id: dict[str, float] = {}
    for el in root.iter():
        name, text = local_name(el.tag), (el.text or "").strip()
        if name == "PROCESSING_LEVEL" and info.level is None:
            info.level = _level(text)
        elif name == "PRODUCT_TYPE" and info.level is None:
            info.level = _level(text)
        elif name == "PROCESSING_BASELINE" and info.baseline is None:
            info.baseline = text
        elif name.endswith("QUANTIFICATION_VALUE") and not name.startswith(("AOT", "WVP")):
            try:
                info.quantification = float(text)
            except ValueError:
                pass
        elif name in ("RADIO_ADD_OFFSET", "BOA_ADD_OFFSET"):
            try:
                offsets_by_id[el.attrib.get("band_id", "")] = float(text)
            except ValueError:
                pass
        elif name == "Spectral_Information":
            b = normalize_s2_name(el.attrib.get("physicalBand", ""))
            try:
                if b:
                    band_of_id[int(el.attrib.get("bandId", ""))] = b
            except ValueError:
                pass
    info.level = info.level or _level(path.name)
    if offsets_by_id:
        info.offsets = {}
        for bid, off in offsets_by_id.items():
            try:
                b = band_of_id.get(int(bid))
            except ValueError:
                b = None
            if b:
                info.offsets[b] = off
    elif info.baseline_has_offset is False:
        info.offset_all = 0.0  # before 04.00 products state no offset: there is none
    return info


def find_mtd(path: Path, levels: int = _MTD_LEVELS_UP) -> Path | None:
    """MTD_MSIL1C.xml / MTD_MSIL2A.xml in the folder of ``path`` or up to ``levels - 1`` above
    (inside the zip archive when ``path`` is in one; never above the archive's top)."""
    if isinstance(path, ArchivePath):
        folder = path.parent
        for _ in range(levels):
            for name in MTD_NAMES:
                if (folder / name).is_file():
                    return folder / name
            if not folder.member:
                break
            folder = folder.parent
        return None
    folder = Path(path).resolve().parent
    for _ in range(levels):
        for name in MTD_NAMES:
            if (folder / name).is_file():
                return folder / name
        if folder.parent == folder:
            break
        folder = folder.parent
    return None


def _is_mtd(p: Path) -> bool:
    return p.suffix.lower() == ".xml" and p.name.upper().startswith("MTD_MSIL")


def zip_product_mtd(archive: Path) -> ArchivePath:
    """The MTD_MSIL1C.xml / MTD_MSIL2A.xml of the one SAFE product in a zip archive (as
    downloaded: ``X.SAFE/MTD_MSIL2A.xml``; the shallowest one, at any depth).

    :class:`InputError` naming the archive when it is damaged, holds no product or several.
    """
    files, _ = listing(archive)
    mtds = [n for n in files if n.rsplit("/", 1)[-1] in MTD_NAMES]
    if not mtds:
        raise InputError(
            "the zip archive holds no Sentinel-2 product (no MTD_MSIL1C.xml or MTD_MSIL2A.xml in it)",
            path=archive, fix="give a Sentinel-2 L1C/L2A product zip as downloaded (S2*_MSIL1C_*.SAFE.zip "
            "or S2*_MSIL2A_*.SAFE.zip, holding its .SAFE folder), or unzip the archive and give the "
            "band files or their folder")
    depth = min(n.count("/") for n in mtds)
    top = sorted(n for n in mtds if n.count("/") == depth)
    if len(top) > 1:
        folders = ", ".join(n.rsplit("/", 1)[0] if "/" in n else n for n in top[:4])
        raise InputError(f"the zip archive holds {len(top)} Sentinel-2 products ({folders})",
                         path=archive, fix="give one product per zip, or unzip it and give each .SAFE folder")
    return ArchivePath.of(archive, top[0])


def safe_root(item: str | Path) -> Path | None:
    """The product folder when ``item`` is an MTD_MSIL*.xml file or a folder holding one."""
    p = Path(item)
    if p.is_file() and _is_mtd(p):
        return p.parent
    if p.is_dir() and any((p / n).is_file() for n in MTD_NAMES):
        return p
    return None


def _res_of(path: Path) -> int:
    m = re.search(r"_(\d+)m$", path.stem) or re.search(r"^R(\d+)m$", path.parent.name)
    return int(m.group(1)) if m else 0


def safe_band_files(root: Path) -> list[Path]:
    """The spectral band files of a SAFE product (GRANULE/*/IMG_DATA), finest copy of each;
    ``root`` is a folder, or an :class:`~sparsevit.io.archive.ArchivePath` in a zipped product.

    Quality masks (``QI_DATA/MSK_DETFOO_B01.jp2``, ...) carry band names too and are not bands;
    L2A products hold each band at several resolutions (R10m/R20m/R60m).
    """
    if isinstance(root, ArchivePath):
        files = root.files()
    else:
        files = [f for f in sorted(root.glob("GRANULE/*/IMG_DATA/**/*")) if f.is_file()]
    found: dict[tuple[str, str], Path] = {}
    for f in files:
        rel = f.relative_to(root).parts  # GRANULE/<granule>/IMG_DATA/[R10m/]band.jp2
        if len(rel) < 4 or rel[0] != "GRANULE" or rel[2] != "IMG_DATA":
            continue
        if f.suffix.lower() not in (".jp2", ".tif", ".tiff"):
            continue
        band = normalize_s2_name(f.stem)
        if band is None:
            continue
        key = (rel[1], band)
        old = found.get(key)
        if old is None or _res_of(f) < _res_of(old):
            found[key] = f
    if not found:
        raise InputError("the product holds no band files under GRANULE/*/IMG_DATA",
                         path=root.archive if isinstance(root, ArchivePath) else root,
                         fix="download the complete product (or unzip it fully), or give the band files")
    return sorted(found.values())


def expand_safe(inputs: str | Path | Sequence[str | Path]) -> tuple[object, list[Path]]:
    """Replace SAFE folders, MTD files and zipped SAFE products in ``inputs`` by their band files
    (for a zip: :class:`~sparsevit.io.archive.ArchivePath` members, read in place by GDAL).

    Returns ``(inputs, metadata files given)``; inputs without a SAFE product come back as given.
    A zip that is not a readable SAFE product is an :class:`InputError` naming the zip.
    """
    items = [inputs] if isinstance(inputs, (str, PurePath)) else list(inputs)
    out: list = []
    mtds: list[Path] = []
    changed = False
    for item in items:
        if is_zip(item):
            mtd = zip_product_mtd(Path(item))
            root = mtd.parent
        else:
            root = safe_root(item)
            if root is None:
                out.append(item)
                continue
            mtd = Path(item) if Path(item).is_file() else next(root / n for n in MTD_NAMES if (root / n).is_file())
        changed = True
        read_mtd(mtd)  # a damaged metadata file given as the input is an error, not a warning
        mtds.append(mtd)
        bands = safe_band_files(root)
        if isinstance(root, ArchivePath):
            verify_members(bands)  # GDAL reads damaged deflated members without an error
        out.extend(bands)
    return (out if changed else inputs), mtds


def product_name_info(paths: Iterable[Path]) -> ProductInfo | None:
    """Level and baseline from an ESA product name in a file or folder name (S2A_MSIL2A_..._N0400_...)."""
    best: ProductInfo | None = None
    for p in paths:
        p = p if isinstance(p, ArchivePath) else Path(p).resolve()
        for part in [p.stem] + [q.name for q in list(p.parents)[:_MTD_LEVELS_UP]]:
            m = _PRODUCT_RE.search(part)
            if not m:
                continue
            info = ProductInfo("product name", part, level=f"L{m.group(1).upper()}")
            if m.group(2):
                info.baseline = f"{m.group(2)}.{m.group(3)}"
                if parse_baseline(info.baseline) is None:
                    info.baseline = None
            if best is None or (best.baseline is None and info.baseline is not None):
                best = info
            break
    return best


def ee_metadata_json(folder: Path) -> dict | None:
    """The properties of an Earth Engine export's ``metadata.json`` beside the band files
    (SSL4EO-S12 and friends); None when there is none or it is not a JSON object."""
    f = folder / "metadata.json"
    if not f.is_file():
        return None
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def ee_metadata(folder: Path) -> ProductInfo | None:
    """Level, baseline and offset of an Earth Engine export from its ``metadata.json``."""
    f = folder / "metadata.json"
    meta = ee_metadata_json(folder)
    if meta is None or "PROCESSING_BASELINE" not in meta:
        return None
    sid = str(meta.get("system:id") or meta.get("PRODUCT_ID") or "")
    info = ProductInfo(SRC_EE, str(f), baseline=str(meta["PROCESSING_BASELINE"]))
    info.level = ("L2A" if ("S2_SR" in sid or "MSIL2A" in sid) else
                  "L1C" if ("COPERNICUS/S2" in sid or "MSIL1C" in sid) else _level(sid))
    if "COPERNICUS/" in sid:
        info.harmonized = "HARMONIZED" in sid
        has_offset = info.baseline_has_offset
        if info.harmonized or has_offset is False:
            info.offset_all = 0.0
        elif has_offset:
            # COPERNICUS/S2 and S2_SR keep the +1000 of baseline >= 04.00 (the _HARMONIZED
            # collections remove it)
            info.offset_all = -1000.0
    elif info.baseline_has_offset is False:
        info.offset_all = 0.0
    return info


def tags_info(ds_tags: dict, band_tags: dict, band: str) -> ProductInfo | None:
    """PROCESSING_BASELINE, PROCESSING_LEVEL, *_ADD_OFFSET, *QUANTIFICATION_VALUE from tags."""
    info = ProductInfo(SRC_TAGS)
    said = False
    for scope, tags in (("dataset", ds_tags), ("band", band_tags)):
        for key, value in tags.items():
            k = str(key).upper()
            v = str(value).strip()
            if k.endswith("PROCESSING_BASELINE"):
                info.baseline, said = v, True
            elif k in ("PROCESSING_LEVEL", "PRODUCT_TYPE", "LEVEL"):
                lv = _level(v)
                if lv:
                    info.level, said = lv, True
            elif k.endswith("QUANTIFICATION_VALUE") and not k.startswith(("AOT", "WVP")):
                try:
                    info.quantification, said = float(v), True
                except ValueError:
                    pass
            else:
                m = _OFFSET_KEY_RE.match(k)
                if not m:
                    continue
                try:
                    off = float(v)
                except ValueError:
                    continue
                suffix = m.group(1)
                if suffix is None:
                    info.offset_all, said = off, True
                    continue
                named = (ESA_BAND_IDS.get(int(suffix)) if suffix.isdigit()
                         else normalize_s2_name(suffix))
                if named == band:
                    info.offsets = {band: off}
                    said = True
    if not said:
        return None
    if not info.states_offset and info.baseline_has_offset is False:
        info.offset_all = 0.0
    return info


def parse_override(text: str | None) -> tuple[float, float, str] | None:
    """``--radiometry`` -> (scale, offset, label) in model DN, or None."""
    if text is None or str(text).strip() == "":
        return None
    t = str(text).strip().lower()
    if t in OVERRIDES:
        return (*OVERRIDES[t], t)
    parts = [p for p in re.split(r"[,\s]+", t) if p]
    try:
        if len(parts) != 2:
            raise ValueError
        s, o = float(parts[0]), float(parts[1])
        if not (math.isfinite(s) and math.isfinite(o)) or s <= 0:
            raise ValueError
    except ValueError:
        raise InputError(f"--radiometry '{text}' is not understood",
                         fix=f"give {OVERRIDE_HELP}") from None
    return (s * 10000.0, o * 10000.0, f"reflectance = value * {s:g} + {o:g}")


# --------------------------------------------------------------------------------------------
# the scene's radiometry
@dataclass
class Radiometry:
    """How every band of one input is converted to ``CANONICAL``; see :func:`detect`."""

    bands: dict[str, BandConversion]
    level: str | None = None
    baseline: str | None = None
    product_from: str | None = None  # where level/baseline were read ("SAFE metadata: path")
    quantification: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def applied(self) -> bool:
        return any(not c.identity for c in self.bands.values())

    @property
    def input_form(self) -> str:
        forms = {_form(c) for c in self.bands.values()}
        return forms.pop() if len(forms) == 1 else "mixed"

    @property
    def sources(self) -> list[str]:
        return sorted({c.source for c in self.bands.values()})

    def apply(self, band: str, arr: np.ndarray) -> np.ndarray:
        c = self.bands.get(band)
        return arr if c is None else c.apply(arr)

    def value(self, band: str, v: float | None) -> float | None:
        c = self.bands.get(band)
        return v if c is None else c.value(v)

    def formula(self) -> str:
        convs = {(c.scale, c.offset) for c in self.bands.values()}
        if len(convs) != 1:
            return "per band (see bands)"
        s, o = convs.pop()
        if (s, o) == (1.0, 0.0):
            return "read as is"
        text = "value" if s == 1.0 else f"value x {s:g}"
        if o:
            text += f" {'+' if o > 0 else '-'} {abs(o):g}"
        return text

    def describe(self) -> str:
        """One line for ``info`` and logs."""
        what = " ".join(x for x in (self.level, f"baseline {self.baseline}" if self.baseline else None) if x)
        head = f"{what} " if what else ""
        src = ", ".join(self.sources)
        return (f"{head}input {self.input_form} (from {src}) -> model DN (reflectance x 10000, "
                f"no offset): {self.formula()}"
                + (f"; level/baseline from {self.product_from}" if self.product_from else ""))

    def to_dict(self) -> dict:
        return {"convention": CANONICAL_TEXT, "input": self.input_form, "level": self.level,
                "baseline": self.baseline, "product_info_from": self.product_from,
                "source": ", ".join(self.sources), "quantification_value": self.quantification,
                "applied": self.applied, "formula": self.formula(),
                "bands": {b: c.to_dict() for b, c in self.bands.items()},
                "notes": list(self.notes)}


def _gdal_conversion(scale: float | None, offset: float | None) -> BandConversion | None:
    s = 1.0 if scale is None or not math.isfinite(scale) else float(scale)
    o = 0.0 if offset is None or not math.isfinite(offset) else float(offset)
    if s == 1.0 and o == 0.0:
        return None
    if s == 0:
        return None
    if math.isclose(s, 1.0):
        # scale 1: the offset is in DN (e.g. -1000), the result is DN already
        return BandConversion(1.0, o, SRC_GDAL)
    # otherwise the scaled value is reflectance (STAC/COG: 0.0001 and -0.1)
    return BandConversion(s * 10000.0, o * 10000.0, SRC_GDAL)


def _from_product(info: ProductInfo, band: str) -> BandConversion | None:
    off = info.offset_for(band)
    if off is None:
        return None
    q = info.quantification or DEFAULT_QUANTIFICATION
    k = DEFAULT_QUANTIFICATION / q
    return BandConversion(k, off * k, info.source)


def _looks_reflectance(sample: np.ndarray) -> bool | None:
    v = sample[np.isfinite(sample)]
    v = v[v != 0]
    if v.size == 0:
        return None
    return bool(np.mean(np.abs(v) <= _REFL_MAX) >= _REFL_SHARE and np.percentile(np.abs(v), 99) > 1e-3)


def detect(scene, override: str | None = None) -> Radiometry:
    """The :class:`Radiometry` of an opened :class:`~sparsevit.io.scene.S2Scene`.

    Appends what was assumed or could not be found to ``scene.warnings``; raises
    :class:`InputError` for 8-bit input without an override.
    """
    from .scene import _decimated, _open  # scene imports this module

    notes: list[str] = []
    ov = parse_override(override)
    by_file: dict[Path, list[str]] = {}
    for b in scene.band_names:
        by_file.setdefault(scene.bands[b].path, []).append(b)
    given_mtds = [Path(p) for p in getattr(scene, "metadata_files", []) or []]

    # product information per folder (SAFE metadata is shared by every band file of a product)
    mtd_cache: dict[Path, ProductInfo | None] = {}

    bands: dict[str, BandConversion] = {}
    overridden: dict[str, list[str]] = {}  # source the override contradicts -> bands
    products: list[ProductInfo] = []
    reflectance_files: list[str] = []
    for path, names in by_file.items():
        safe = _product_mtd(path, given_mtds, mtd_cache, notes)
        ee = ee_metadata(path.parent)
        ds = _open(path)
        try:
            dtypes = {b: np.dtype(ds.dtypes[scene.bands[b].index - 1]) for b in names}
            ds_tags = ds.tags()
            if ov is None and any(dt.itemsize == 1 for dt in dtypes.values()):
                raise InputError(
                    f"8-bit data ({', '.join(sorted({dt.name for dt in dtypes.values()}))}): an 8-bit "
                    "export (e.g. a rendered or stretched image) has lost the reflectance scale",
                    path=path, fix="give the 16-bit or float product bands, or state the scaling with "
                    "--radiometry SCALE,OFFSET (reflectance = value * SCALE + OFFSET)")
            float_refl = (_float_looks_reflectance(ds, scene, names, _decimated)
                          if any(dt.kind == "f" for dt in dtypes.values()) else None)
            for b in names:
                src = scene.bands[b]
                tinfo = tags_info(ds_tags, ds.tags(src.index), b)
                products.extend(i for i in (safe, tinfo, ee) if i is not None)
                conv = _stated_conversion(b, safe, tinfo, ee, ds.scales[src.index - 1], ds.offsets[src.index - 1])
                if float_refl and (conv is None or (conv.source != SRC_GDAL and conv.scale < 100)):
                    if ov is None and conv is not None and conv.offset:
                        notes.append(f"{path.name}: {conv.source} gives a DN offset ({conv.offset:g}) "
                                     "but the values are float reflectance (0..1): read as "
                                     "reflectance x 10000, offset not applied")
                    conv = BandConversion(10000.0, 0.0, SRC_RANGE)
                    if path.name not in reflectance_files:
                        reflectance_files.append(path.name)
                if conv is None:
                    conv = BandConversion(1.0, 0.0, SRC_RANGE if dtypes[b].kind == "f" else SRC_DTYPE)
                if ov is not None:
                    if conv.source not in (SRC_RANGE, SRC_DTYPE) and not (
                            math.isclose(conv.scale, ov[0]) and math.isclose(conv.offset, ov[1])):
                        overridden.setdefault(conv.source, []).append(b)
                    conv = BandConversion(ov[0], ov[1], f"{SRC_OVERRIDE} ({ov[2]})")
                bands[b] = conv
        finally:
            ds.close()

    # what the product says about itself, best source first
    names_info = product_name_info(scene.inputs)
    if names_info is not None:
        products.append(names_info)
    radio, baseline_info = _summarise(products, bands, notes)
    baseline = radio.baseline

    if reflectance_files and ov is None:
        notes.append(f"float reflectance (0..1) in {', '.join(reflectance_files[:4])}: "
                     "multiplied by 10000")
    if ov is not None:
        notes.append(f"radiometry given by the user: {ov[2]}"
                     + "".join(f"; it overrides the {src} of {', '.join(bs)}" for src, bs in overridden.items()))
    # a baseline with offsets and no offset found: never a silent guess
    if ov is None and baseline_info is not None and baseline_info.baseline_has_offset:
        blind = [b for b, c in bands.items() if c.source in (SRC_RANGE, SRC_DTYPE) and c.scale == 1.0]
        if blind:
            scene.warnings.append(
                f"processing baseline {baseline} ({baseline_info.source}) means the digital numbers "
                f"carry a +1000 offset, but no offset was found for {', '.join(blind)} (no "
                "MTD_MSIL*.xml, scale/offset or ADD_OFFSET tag): the map may be wrong. Pass "
                "--radiometry dn-offset-1000 if these are the product's DN as delivered, "
                "--radiometry dn if the offset was already removed")
    _plausibility(scene, radio, _open, _decimated)
    scene.warnings.extend(notes)
    return radio


def _product_mtd(path: Path, given_mtds: list[Path], cache: dict, notes: list[str]) -> ProductInfo | None:
    """The SAFE metadata of the product a band file belongs to (found beside it, or one the
    user gave as input), read once per product; an unreadable one is noted and ignored."""
    mtd = find_mtd(path)
    for g in given_mtds:
        if mtd is None and path.resolve().is_relative_to(g.resolve().parent):
            mtd = g
    if mtd is None:
        return None
    if mtd not in cache:
        try:
            cache[mtd] = read_mtd(mtd)
        except InputError as exc:
            notes.append(f"{exc.path}: {exc.problem}; ignored")
            cache[mtd] = None
    return cache[mtd]


def _float_looks_reflectance(ds, scene, names: list[str], _decimated) -> bool | None:
    """Whether a file's float bands hold reflectance 0..1 (rather than DN), from a sample."""
    idx = [scene.bands[b].index for b in names]
    sample = _decimated(ds, idx if len(idx) > 1 else idx[0], _SAMPLE_SIDE)
    nd = scene.bands[names[0]].nodata
    if nd is not None and not np.isnan(nd):
        sample = np.where(sample == nd, np.nan, sample)
    return _looks_reflectance(sample)


def _stated_conversion(band: str, safe, tinfo, ee, gdal_scale, gdal_offset) -> BandConversion | None:
    """The conversion the data states, best source first: SAFE metadata, GDAL scale/offset,
    band/dataset tags, Earth Engine metadata; None when none states one."""
    conv = _from_product(safe, band) if safe is not None else None
    if conv is None:
        conv = _gdal_conversion(gdal_scale, gdal_offset)
    if conv is None and tinfo is not None:
        conv = _from_product(tinfo, band)
    if conv is None and ee is not None:
        conv = _from_product(ee, band)
    return conv


def _summarise(products: list, bands: dict, notes: list) -> tuple[Radiometry, object]:
    """``(Radiometry, the product info that gave the baseline)`` from every source found."""
    level = next((p.level for p in products if p.level), None)
    baseline_info = next((p for p in products if parse_baseline(p.baseline) is not None), None)
    baseline = baseline_info.baseline if baseline_info else None
    first = next((p for p in products if p.level or p.baseline), None)
    product_from = None
    if first is not None:
        product_from = first.source + (f": {first.where}" if first.where else "")
    quant = next((p.quantification for p in products if p.quantification), None)
    return Radiometry(bands, level, baseline, product_from, quant, notes), baseline_info


def _plausibility(scene, radio: Radiometry, _open, _decimated) -> None:
    """Warn when an applied offset turns most values negative (offset already removed, ...)."""
    probe = [b for b in ("B04", "B08", "B11", "B03", "B02") if b in scene.bands
             and radio.bands[b].offset < 0][:3]
    worst_neg, neg_band = 0.0, None
    for b in probe:
        src = scene.bands[b]
        with _open(src.path) as ds:
            a = _decimated(ds, src.index, _SAMPLE_SIDE).ravel()
        ok = np.isfinite(a) & (a != 0)
        if src.nodata is not None and not np.isnan(src.nodata):
            ok &= a != src.nodata
        a = a[ok]
        if a.size < 16:
            continue
        neg = float(np.mean(radio.bands[b].value(a) < 0))
        if neg > worst_neg:
            worst_neg, neg_band = neg, b
    # ESA keeps the offset so that dark pixels may go slightly below 0; a quarter is not noise
    if worst_neg > 0.25:
        c = radio.bands[neg_band]
        scene.warnings.append(
            f"after the conversion ({c.source}: {radio.formula()}) {100 * worst_neg:.0f}% of the "
            f"{neg_band} pixels are negative: the offset may already have been removed from these "
            "values (pass --radiometry dn if so)")
