"""BigEarthNet readers: v2 (stacked GeoTIFFs + labels.json) and v1 (one file per band).

Both give image-level labels over the 19-class nomenclature (``bigearthnet19``); v1 stores the
43 CORINE level-3 names, converted with the official 43->19 table
(``resources/mappings/corine43_to_bigearthnet19.json``), or kept with ``classes="corine43"``.
No pixel masks exist, so ``Sample.mask`` is None.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio.enums import Resampling

from ..bands import S2_BANDS_NO_CIRRUS, normalize_s1_name, normalize_s2_name
from ..errors import InputError
from ..schemes import load_mapping, load_scheme
from .base import Dataset, Sample, band_order_from_descriptions, check_s2_bands, reorder

PATCH_SIZE = 120


def _check_modalities(modalities: Sequence[str]) -> bool:
    mods = tuple(modalities)
    if "s2" not in mods or not set(mods) <= {"s1", "s2"}:
        raise InputError(f"modalities {mods} not supported", fix="use ('s2',) or ('s1', 's2')")
    return "s1" in mods


def _read_s1(paths: dict[str, Path], size: int) -> np.ndarray:
    out = np.empty((2, size, size), dtype=np.float32)
    for i, pol in enumerate(("VV", "VH")):
        with rasterio.open(paths[pol]) as src:
            out[i] = src.read(1, out_shape=(size, size), resampling=Resampling.nearest)
    return np.nan_to_num(out, nan=0.0)


class BigEarthNetV2Dataset(Dataset):
    """``<root>/<patch>_S2.tif`` (12 bands, no B10), ``<patch>_S1.tif`` (VV, VH), ``labels.json``.

    ``labels.json`` maps each S2 patch name to ``{"labels": [...19-class names], "split": ...}``.
    """

    def __init__(self, root: str | Path, split: str | None = None,
                 modalities: Sequence[str] = ("s2",), bands: Sequence[str] | None = None):
        self.root = Path(root)
        self.has_s1 = _check_modalities(modalities)
        self.scheme = load_scheme("bigearthnet19")
        self.s2_bands = check_s2_bands(bands, S2_BANDS_NO_CIRRUS)
        if "B10" in self.s2_bands:
            raise InputError("BigEarthNet has no B10 band", fix="leave B10 out of bands")
        meta_path = self.root / "labels.json"
        if not meta_path.is_file():
            raise InputError("not a BigEarthNet v2 folder: labels.json is missing", path=self.root,
                             fix="point to the folder with *_S2.tif, *_S1.tif and labels.json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"labels.json is not valid JSON ({exc})", path=meta_path) from None
        self.split = split
        self._items: list[tuple[str, dict]] = []
        for name in sorted(meta):
            rec = meta[name]
            if split is not None and rec.get("split") != split:
                continue
            if not (self.root / f"{name}_S2.tif").is_file():
                raise InputError(f"labels.json lists {name} but {name}_S2.tif is missing", path=self.root)
            if self.has_s1 and not (self.root / f"{name}_S1.tif").is_file():
                raise InputError(f"{name}_S1.tif is missing", path=self.root,
                                 fix="use modalities=('s2',) or add the S1 files")
            for lab in rec.get("labels", []):
                if not self.scheme.has_name(lab):
                    raise InputError(f"{name}: unknown BigEarthNet-19 label '{lab}'", path=meta_path)
            self._items.append((name, rec))

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return [n for n, _ in self._items]

    def __getitem__(self, index: int) -> Sample:
        name, rec = self._items[self._check_index(index)]
        path = self.root / f"{name}_S2.tif"
        with rasterio.open(path) as src:
            have = band_order_from_descriptions(src.descriptions, path, "s2")
            s2 = reorder(src.read().astype(np.float32), have, self.s2_bands, path)
        s1 = None
        if self.has_s1:
            p1 = self.root / f"{name}_S1.tif"
            with rasterio.open(p1) as src:
                have = band_order_from_descriptions(src.descriptions, p1, "s1")
                s1 = np.nan_to_num(reorder(src.read().astype(np.float32), have, ("VV", "VH"), p1))
        return Sample(s2=s2, s1=s1, labels=self.scheme.multi_hot(rec.get("labels", [])),
                      mask=None, id=name)

    def split_of(self, index: int) -> str | None:
        return self._items[self._check_index(index)][1].get("split")


class BigEarthNetV1Dataset(Dataset):
    """The original v1 layout: a folder per patch, one GeoTIFF per band, ``*_labels_metadata.json``.

    ``root`` may be a folder of S2 patch folders or hold ``BigEarthNet-S2*`` and ``BigEarthNet-S1*``
    folders; S1 partners are found through their ``corresponding_s2_patch`` metadata.
    20 m and 60 m bands are upsampled to 120x120 (``resampling='nearest'`` by default, as
    BigEarthNet v2 does, so v1 and v2 patches look alike to a model).
    """

    def __init__(self, root: str | Path, modalities: Sequence[str] = ("s2",),
                 classes: str = "bigearthnet19", bands: Sequence[str] | None = None,
                 resampling: str = "nearest"):
        self.root = Path(root)
        self.has_s1 = _check_modalities(modalities)
        if classes not in ("bigearthnet19", "corine43"):
            raise InputError(f"unknown BigEarthNet class set '{classes}'", fix="use bigearthnet19 or corine43")
        self.scheme = load_scheme(classes)
        self._to19 = load_mapping("corine43_to_bigearthnet19") if classes == "bigearthnet19" else None
        self.s2_bands = check_s2_bands(bands, S2_BANDS_NO_CIRRUS)
        try:
            self._resampling = Resampling[resampling]
        except KeyError:
            raise InputError(f"unknown resampling '{resampling}'", fix="use nearest or bilinear") from None
        if not self.root.is_dir():
            raise InputError("BigEarthNet v1 folder does not exist", path=self.root)
        s2_dirs, s1_by_s2 = [], {}
        for meta in sorted(self.root.rglob("*_labels_metadata.json")):
            folder = meta.parent
            if not meta.name.startswith(folder.name):
                continue
            files = list(folder.glob(f"{folder.name}_*.tif"))
            if any(normalize_s2_name(p.stem[len(folder.name):]) for p in files):
                s2_dirs.append(folder)
            elif any(normalize_s1_name(p.stem[len(folder.name):]) for p in files):
                partner = json.loads(meta.read_text(encoding="utf-8")).get("corresponding_s2_patch")
                if partner:
                    s1_by_s2[partner] = folder
        if not s2_dirs:
            raise InputError("not a BigEarthNet v1 folder: no <patch>/<patch>_B02.tif with "
                             "<patch>_labels_metadata.json", path=self.root)
        self._s2_dirs = s2_dirs
        self._s1_dirs = s1_by_s2
        if self.has_s1:
            missing = [d.name for d in s2_dirs if d.name not in s1_by_s2]
            if missing:
                raise InputError(f"no Sentinel-1 partner for {missing[:3]}", path=self.root,
                                 fix="add the BigEarthNet-S1 folders or use modalities=('s2',)")

    def __len__(self) -> int:
        return len(self._s2_dirs)

    def ids(self) -> list[str]:
        return [d.name for d in self._s2_dirs]

    def raw_labels(self, index: int) -> list[str]:
        """The 43-class CORINE names exactly as stored."""
        d = self._s2_dirs[self._check_index(index)]
        meta = json.loads((d / f"{d.name}_labels_metadata.json").read_text(encoding="utf-8"))
        return list(meta.get("labels", []))

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        d = self._s2_dirs[index]
        files = {normalize_s2_name(p.stem[len(d.name):]): p for p in d.glob(f"{d.name}_*.tif")}
        s2 = np.empty((len(self.s2_bands), PATCH_SIZE, PATCH_SIZE), dtype=np.float32)
        for i, band in enumerate(self.s2_bands):
            if band not in files:
                raise InputError(f"band file {d.name}_{band}.tif is missing", path=d)
            with rasterio.open(files[band]) as src:
                s2[i] = src.read(1, out_shape=(PATCH_SIZE, PATCH_SIZE), resampling=self._resampling)
        s1 = None
        if self.has_s1:
            d1 = self._s1_dirs[d.name]
            pols = {normalize_s1_name(p.stem[len(d1.name):]): p for p in d1.glob(f"{d1.name}_*.tif")}
            s1 = _read_s1(pols, PATCH_SIZE)
        names = self.raw_labels(index)
        try:
            names = self._to19.apply(names) if self._to19 else names
            labels = self.scheme.multi_hot(names)
        except InputError as err:
            raise InputError(f"{d.name}: {err.problem}", path=d) from None
        return Sample(s2=s2, s1=s1, labels=labels, mask=None, id=d.name)
