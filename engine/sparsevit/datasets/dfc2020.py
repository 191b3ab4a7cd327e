"""DFC2020 (IEEE GRSS Data Fusion Contest 2020) in its published folder layout.

``<root>/ROIs0000_<split>/{s1_0,s2_0,dfc_0}/ROIs0000_<split>_{s1,s2,dfc}_0_p<N>.tif``, 256x256;
S2: 13 bands (ESA order, B8A after B08), S1: VV, VH in dB, dfc: one band, values 1..10.
Image labels follow the paper: a class is present if it covers >= ``min_fraction`` of the valid
pixels after the class remap (8 classes: Savanna and Snow/Ice become ignore).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio

from ..bands import S1_BANDS, S2_BANDS
from ..errors import InputError
from ..schemes import load_mapping, load_scheme
from .base import Dataset, Sample, labels_from_mask

SPLITS = ("validation", "test")


class DFC2020Dataset(Dataset):
    def __init__(self, root: str | Path, split: str = "validation", classes: str = "dfc2020_8",
                 modalities: Sequence[str] = ("s2",), min_fraction: float = 0.10):
        if split not in SPLITS:
            raise InputError(f"unknown DFC2020 split '{split}'", fix=f"use one of {SPLITS}")
        if classes not in ("dfc2020", "dfc2020_8"):
            raise InputError(f"unknown DFC2020 class set '{classes}'", fix="use dfc2020 or dfc2020_8")
        mods = tuple(modalities)
        if "s2" not in mods or not set(mods) <= {"s1", "s2"}:
            raise InputError(f"modalities {mods} not supported", fix="use ('s2',) or ('s1', 's2')")
        self.root, self.split, self.min_fraction = Path(root), split, float(min_fraction)
        self.scheme = load_scheme(classes)
        self.s2_bands = S2_BANDS
        self.has_s1 = "s1" in mods
        self._dfc = load_scheme("dfc2020")
        self._remap = None if classes == "dfc2020" else load_mapping("dfc2020_to_dfc2020_8")
        self.split_dir = self._find_split_dir()
        self._files = self._index(("s1", "s2", "dfc") if self.has_s1 else ("s2", "dfc"))

    def _find_split_dir(self) -> Path:
        name = f"ROIs0000_{self.split}"
        if not self.root.is_dir():
            raise InputError("DFC2020 folder does not exist", path=self.root)
        cand = self.root if self.root.name == name else self.root / name
        if not cand.is_dir():
            raise InputError(f"not a DFC2020 folder: no '{name}' sub-folder", path=self.root,
                             fix=f"point to the folder that holds {name}/s2_0, {name}/dfc_0 (and s1_0)")
        return cand

    def _index(self, kinds: Sequence[str]) -> list[dict[str, Path]]:
        name = f"ROIs0000_{self.split}"
        per_kind: dict[str, dict[int, Path]] = {}
        for kind in kinds:
            folder = self.split_dir / f"{kind}_0"
            if not folder.is_dir():
                raise InputError(f"not a DFC2020 folder: '{kind}_0' is missing", path=self.split_dir,
                                 fix=f"expected {name}/{kind}_0/{name}_{kind}_0_p<N>.tif")
            pat = re.compile(rf"^{name}_{kind}_0_p(\d+)\.tif$", re.I)
            found = {int(m.group(1)): p for p in folder.iterdir() if (m := pat.match(p.name))}
            if not found:
                raise InputError(f"no {name}_{kind}_0_p<N>.tif files", path=folder,
                                 fix="check that this is the DFC2020 layout")
            per_kind[kind] = found
        ids = sorted(per_kind["s2"])
        for kind, found in per_kind.items():
            if set(found) != set(ids):
                diff = sorted(set(ids) ^ set(found))[:5]
                raise InputError(f"'{kind}_0' and 's2_0' hold different patches (e.g. p{diff})",
                                 path=self.split_dir, fix="restore the missing files")
        return [{k: per_kind[k][i] for k in kinds} for i in ids]

    def __len__(self) -> int:
        return len(self._files)

    def ids(self) -> list[str]:
        return [_patch_id(f["s2"]) for f in self._files]

    def read_mask(self, index: int) -> np.ndarray:
        """Class-index mask (uint8, 255 = ignore) in this dataset's scheme."""
        path = self._files[self._check_index(index)]["dfc"]
        with rasterio.open(path) as src:
            values = src.read(1)
        if self._remap is not None:
            values = self._remap.apply(values.astype(np.int64))
        return self.scheme.to_index(values)

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        files = self._files[index]
        with rasterio.open(files["s2"]) as src:
            if src.count != len(S2_BANDS):
                raise InputError(f"DFC2020 S2 patch has {src.count} bands, expected 13", path=files["s2"])
            s2 = src.read().astype(np.float32)
        s1 = None
        if self.has_s1:
            with rasterio.open(files["s1"]) as src:
                if src.count != len(S1_BANDS):
                    raise InputError(f"DFC2020 S1 patch has {src.count} bands, expected VV, VH",
                                     path=files["s1"])
                s1 = np.nan_to_num(src.read().astype(np.float32), nan=0.0)
        mask = self.read_mask(index)
        labels = labels_from_mask(mask, self.scheme.num_classes, self.min_fraction)
        return Sample(s2=s2, s1=s1, labels=labels, mask=mask, id=_patch_id(files["s2"]))


def _patch_id(s2_path: Path) -> str:
    """'ROIs0000_test_s2_0_p12.tif' -> 'ROIs0000_test_p12' (the same for all modalities)."""
    return s2_path.stem.replace("_s2_0_", "_")
