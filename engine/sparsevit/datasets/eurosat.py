"""EuroSAT-MS: ``<root>/<Class>/<Class>_<n>.tif``, 13 bands in EuroSAT order, 64x64, one label.

The per-class train/test split of the source patches is fixed (:func:`source_split`) and shared
with the EuroSAT mosaics, so a model trained on train mosaics never sees a test patch.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio

from ..bands import EUROSAT_BAND_ORDER, S2_BANDS
from ..errors import InputError
from ..schemes import load_scheme
from .base import Dataset, Sample, check_s2_bands

# Seed of the fixed source split. Changing it changes the benchmark: keep it.
SOURCE_SPLIT_SEED = 20200
TRAIN_FRACTION = 0.7  # 20 patches per class -> 14 train / 6 test
_NAME_RE = re.compile(r"^(?P<cls>[A-Za-z]+)_(?P<n>\d+)\.tif$")


def list_eurosat(root: str | Path) -> dict[str, list[Path]]:
    """Class name -> patch files sorted by their number; checks the folder layout."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("EuroSAT folder does not exist", path=root)
    scheme = load_scheme("eurosat")
    out: dict[str, list[Path]] = {}
    for cls in scheme.names:
        folder = root / cls
        files = [p for p in folder.glob(f"{cls}_*.tif") if _NAME_RE.match(p.name)] if folder.is_dir() else []
        if not files:
            raise InputError(f"not a EuroSAT-MS folder: no {cls}/{cls}_<n>.tif", path=root,
                             fix="point to the folder holding AnnualCrop/, Forest/, ... SeaLake/")
        out[cls] = sorted(files, key=lambda p: int(_NAME_RE.match(p.name)["n"]))
    return out


def source_split(files: Sequence[Path], split: str) -> list[Path]:
    """The fixed train/test share of one class's patches (seeded shuffle, 70/30, disjoint)."""
    if split not in ("train", "test"):
        raise InputError(f"unknown split '{split}'", fix="use train or test")
    order = np.random.default_rng(SOURCE_SPLIT_SEED).permutation(len(files))
    n_train = int(round(TRAIN_FRACTION * len(files)))
    chosen = order[:n_train] if split == "train" else order[n_train:]
    return [files[i] for i in sorted(chosen)]


def read_eurosat_patch(path: Path, bands: Sequence[str] = S2_BANDS) -> np.ndarray:
    with rasterio.open(path) as src:
        if src.count != len(EUROSAT_BAND_ORDER):
            raise InputError(f"EuroSAT-MS patch has {src.count} bands, expected 13", path=path,
                             fix="use the multispectral (MS) EuroSAT, not the RGB one")
        data = src.read()
    return data[[EUROSAT_BAND_ORDER.index(b) for b in bands]]


@lru_cache(maxsize=4)
def load_patch_bank(root: str, split: str) -> tuple[tuple[np.ndarray, ...], tuple[tuple[str, ...], ...]]:
    """All patches of a split in memory, canonical S2 order, uint16 [n, 13, 64, 64] per class.

    Cached: the 200 patches are ~21 MB and reading them costs ~0.5 s, once per process.
    """
    files = list_eurosat(root)
    arrays, ids = [], []
    for cls in load_scheme("eurosat").names:
        chosen = files[cls] if split == "all" else source_split(files[cls], split)
        arrays.append(np.stack([read_eurosat_patch(p) for p in chosen]).astype(np.uint16))
        ids.append(tuple(f"{cls}/{p.name}" for p in chosen))
    return tuple(arrays), tuple(ids)


class EuroSATDataset(Dataset):
    def __init__(self, root: str | Path = "data/eurosat_ms", split: str | None = None,
                 bands: Sequence[str] | None = None):
        self.root = Path(root)
        self.scheme = load_scheme("eurosat")
        self.s2_bands = check_s2_bands(bands, S2_BANDS)
        self.has_s1 = False
        files = list_eurosat(self.root)
        self._items: list[tuple[Path, int]] = []
        for ci, cls in enumerate(self.scheme.names):
            chosen = files[cls] if split is None else source_split(files[cls], split)
            self._items += [(p, ci) for p in chosen]

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return [f"{p.parent.name}/{p.name}" for p, _ in self._items]

    def __getitem__(self, index: int) -> Sample:
        path, ci = self._items[self._check_index(index)]
        s2 = read_eurosat_patch(path, self.s2_bands).astype(np.float32)
        labels = np.zeros(self.scheme.num_classes, dtype=np.float32)
        labels[ci] = 1.0
        mask = np.full(s2.shape[1:], ci, dtype=np.uint8)
        return Sample(s2=s2, s1=None, labels=labels, mask=mask, id=f"{path.parent.name}/{path.name}")
