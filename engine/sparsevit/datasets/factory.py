"""Open a dataset by name, as the CLI commands name them: one registry (``register_dataset``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..bands import S2_BANDS_NO_CIRRUS
from ..errors import InputError


@dataclass(frozen=True)
class DatasetEntry:
    """``open(root, own_split, modalities, scenes=, size=, seed=, epoch=)``; ``splits``: what the
    dataset itself calls the training and the evaluation split (the paper trains on DFC2020
    "validation")."""

    open: Callable[..., Any]
    splits: tuple[str, str] = ("train", "test")
    has_s1: bool = True


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(name: str, open: Callable[..., Any], **props: Any) -> None:
    _REGISTRY[name] = DatasetEntry(open, **props)


def _eurosat_mosaic(root, split, mods, **kw):
    from .mosaic import EuroSatMosaic
    return EuroSatMosaic(root, split, num_scenes=kw["scenes"], size=kw["size"], seed=kw["seed"],
                         bands=S2_BANDS_NO_CIRRUS, epoch=kw["epoch"])


def _mosaic_folder(root, split, mods, **kw):
    from .mosaic import MosaicFolderDataset
    return MosaicFolderDataset(root)


def _dfc2020(root, split, mods, **kw):
    from .dfc2020 import DFC2020Dataset
    return DFC2020Dataset(root, split, modalities=mods)


def _bigearthnet_v2(root, split, mods, **kw):
    from .bigearthnet import BigEarthNetV2Dataset
    return BigEarthNetV2Dataset(root, split, modalities=mods)


register_dataset("eurosat-mosaic", _eurosat_mosaic, has_s1=False)
register_dataset("mosaic-folder", _mosaic_folder)
register_dataset("dfc2020", _dfc2020, splits=("validation", "test"))
register_dataset("bigearthnet-v2", _bigearthnet_v2)

DATASETS = tuple(_REGISTRY)
SPLITS = {name: e.splits for name, e in _REGISTRY.items()}


def open_dataset(name: str, root: str | Path, split: str, *, s1: bool = False,
                 scenes: int = 200, size: int = 256, seed: int = 0, epoch: int = 0) -> Any:
    """``split`` is 'train' or 'test' (mapped onto each dataset's own split names)."""
    root = Path(root)
    if not root.exists():
        raise InputError("dataset folder does not exist", path=root, fix="point --data at the dataset")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    entry = _REGISTRY.get(name)
    if entry is None:
        raise InputError(f"unknown dataset '{name}'", fix=f"use one of {', '.join(DATASETS)}")
    if s1 and not entry.has_s1:
        raise InputError(f"{name} has no Sentinel-1 images", path=root,
                         fix="drop --s1 or use dfc2020 / bigearthnet-v2")
    own = entry.splits[0 if split == "train" else 1]
    return entry.open(root, own, ("s1", "s2") if s1 else ("s2",), scenes=scenes, size=size, seed=seed,
                      epoch=epoch)
