"""Open a dataset by name, as the CLI commands name them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..bands import S2_BANDS_NO_CIRRUS
from ..errors import InputError

DATASETS = ("eurosat-mosaic", "mosaic-folder", "dfc2020", "bigearthnet-v2")
# the split each dataset calls training / evaluation (the paper trains on DFC2020 "validation")
SPLITS = {"eurosat-mosaic": ("train", "test"), "dfc2020": ("validation", "test"),
          "bigearthnet-v2": ("train", "test")}


def open_dataset(name: str, root: str | Path, split: str, *, s1: bool = False,
                 scenes: int = 200, size: int = 256, seed: int = 0, epoch: int = 0) -> Any:
    """``split`` is 'train' or 'test' (mapped onto each dataset's own split names)."""
    root = Path(root)
    if not root.exists():
        raise InputError("dataset folder does not exist", path=root, fix="point --data at the dataset")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    mods = ("s1", "s2") if s1 else ("s2",)
    if name == "mosaic-folder":
        from .mosaic import MosaicFolderDataset
        return MosaicFolderDataset(root)
    if name == "eurosat-mosaic":
        from .mosaic import EuroSatMosaic
        if s1:
            raise InputError("EuroSAT-mosaic has no Sentinel-1 images", path=root,
                             fix="drop --s1 or use dfc2020 / bigearthnet-v2")
        return EuroSatMosaic(root, split, num_scenes=scenes, size=size, seed=seed,
                             bands=S2_BANDS_NO_CIRRUS, epoch=epoch)
    own = SPLITS[name][0 if split == "train" else 1]
    if name == "dfc2020":
        from .dfc2020 import DFC2020Dataset
        return DFC2020Dataset(root, own, modalities=mods)
    if name == "bigearthnet-v2":
        from .bigearthnet import BigEarthNetV2Dataset
        return BigEarthNetV2Dataset(root, own, modalities=mods)
    raise InputError(f"unknown dataset '{name}'", fix=f"use one of {', '.join(DATASETS)}")
