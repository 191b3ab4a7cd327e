"""Scenes composed from every real EuroSAT patch the repository carries, for a band-flexible model.

Sources (``data/``):

- EuroSAT-MS: ``eurosat_ms`` (200) and ``eurosat_ms_more/{train,test}`` (270; ``Highway_14`` is
  in both), 469 distinct 13-band L1C patches;
- EuroSAT RGB: ``eurosat_rgb/EuroSAT_RGB.zip``, 27,000 8-bit B04/B03/B02 patches, brought to
  L1C digital numbers by the committed calibration (:mod:`.rgb_calibration`).

Split (:func:`ms_patches`): the TEST patches are ``eurosat_ms``'s fixed test share (6 per class,
the same as the EuroSAT-mosaic benchmark) and ``eurosat_ms_more/test``; every other MS patch
trains. An RGB patch whose name is a test MS patch is never used for training (same pixels).

A scene is built like :class:`~.mosaic.EuroSatMosaic` (irregular regions of 1-4 classes, each
filled with rotated/flipped patches of its class) from one source: an MS scene (full bands,
maybe reduced by band dropout) or an RGB scene (B02, B03, B04 only). Bands a scene lacks are
all-NaN channels, the band-flexible input convention of :class:`~sparsevit.models.SparseViT`.
Training scenes are augmented the way real inputs differ: per-band gain and offset, haze,
an L2A-like dark-object subtraction, 8-bit quantisation of RGB-only scenes, scale (0.7-1.4x).
Every scene is a pure function of ``(seed, split, epoch, index)``.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..bands import S2_BANDS, S2_BANDS_NO_CIRRUS
from ..errors import InputError
from ..schemes import load_scheme
from . import rgb_calibration
from .base import Dataset, Sample, labels_from_mask
from .eurosat import list_eurosat, read_eurosat_patch, source_split
from .mosaic import PATCH, _fill, make_region_mask

RGB_BANDS: tuple[str, str, str] = ("B02", "B03", "B04")
_NAME_RE = re.compile(r"^(?P<cls>[A-Za-z]+)_(?P<n>\d+)\.tif$")
# Haze and path radiance fall with wavelength (Rayleigh ~ lambda^-4, aerosols ~ lambda^-1..-2);
# relative weights per band for the haze / dark-object augmentations, 1 at B01 (443 nm).
_WAVELENGTH_NM = {"B01": 443, "B02": 490, "B03": 560, "B04": 665, "B05": 705, "B06": 740,
                  "B07": 783, "B08": 842, "B8A": 865, "B09": 945, "B10": 1375, "B11": 1610,
                  "B12": 2190}
# Band sets of typical exports a user may hold (10 m bands; no 60 m bands; 10 + 20 m)
EXPORT_BAND_SETS: tuple[tuple[str, ...], ...] = (
    ("B02", "B03", "B04", "B08"),
    ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
    ("B02", "B03", "B04", "B08", "B11", "B12"),
    tuple(b for b in S2_BANDS_NO_CIRRUS if b not in ("B01", "B09")),
)
_SPLIT_CODE = {"train": 11, "test": 12}


def ms_patches(data_root: str | Path, split: str) -> list[tuple[str, int, Path]]:
    """``[(name, class index, path)]`` of the split's EuroSAT-MS patches (see module docstring)."""
    if split not in ("train", "test"):
        raise InputError(f"unknown split '{split}'", fix="use train or test")
    root = Path(data_root)
    scheme = load_scheme("eurosat")
    base = list_eurosat(root / "eurosat_ms")
    test: dict[str, tuple[int, Path]] = {}
    train: dict[str, tuple[int, Path]] = {}
    for ci, cls in enumerate(scheme.names):
        for p in source_split(base[cls], "test"):
            test[p.stem] = (ci, p)
        for p in source_split(base[cls], "train"):
            train[p.stem] = (ci, p)
        for sub, target in (("test", test), ("train", train)):
            folder = root / "eurosat_ms_more" / sub / cls
            for p in sorted(folder.glob(f"{cls}_*.tif")) if folder.is_dir() else []:
                if _NAME_RE.match(p.name):
                    target.setdefault(p.stem, (ci, p))
    chosen = test if split == "test" else {k: v for k, v in train.items() if k not in test}
    return [(n, ci, p) for n, (ci, p) in sorted(chosen.items(), key=lambda kv: (kv[1][0], kv[0]))]


@lru_cache(maxsize=2)
def _ms_bank(data_root: str, split: str) -> tuple[tuple[np.ndarray, ...], tuple[tuple[str, ...], ...]]:
    """Per class: uint16 [n, 13, 64, 64] in canonical band order, and the patch names."""
    per: list[list[np.ndarray]] = [[] for _ in range(10)]
    names: list[list[str]] = [[] for _ in range(10)]
    for name, ci, path in ms_patches(data_root, split):
        per[ci].append(read_eurosat_patch(path, S2_BANDS))
        names[ci].append(name)
    if any(not p for p in per):
        raise InputError(f"a class has no EuroSAT-MS {split} patch", path=data_root)
    return tuple(np.stack(p).astype(np.uint16) for p in per), tuple(tuple(n) for n in names)


@lru_cache(maxsize=1)
def _rgb_bank(data_root: str, exclude: frozenset[str]) -> tuple[tuple[np.ndarray, ...], tuple[tuple[str, ...], ...]]:
    """Per class: uint8 [n, 3, 64, 64] in B02, B03, B04 order (the RGB file holds R, G, B)."""
    patches = rgb_calibration.read_rgb_zip(Path(data_root) / "eurosat_rgb" / "EuroSAT_RGB.zip")
    scheme = load_scheme("eurosat")
    per: list[list[np.ndarray]] = [[] for _ in scheme.names]
    names: list[list[str]] = [[] for _ in scheme.names]
    for name, (cls, arr) in patches.items():
        if name in exclude:
            continue
        ci = scheme.names.index(cls)
        per[ci].append(arr[::-1])  # R,G,B -> B02,B03,B04
        names[ci].append(name)
    return tuple(np.stack(p) for p in per), tuple(tuple(n) for n in names)


class RealPatchScenes(Dataset):
    """Band-flexible scenes from real EuroSAT-MS and calibrated EuroSAT RGB patches.

    ``ms_share``: fraction of scenes drawn from the MS patches (the rest from RGB patches; the
    test split uses MS patches only). ``band_dropout``: MS training scenes sometimes keep only
    RGB, a typical export's bands or a random subset. ``bands`` forces every scene to that band
    subset (the others NaN): e.g. ``RGB_BANDS`` for the RGB-only benchmark.
    """

    def __init__(self, data_root: str | Path = "data", split: str = "train", num_scenes: int = 1000,
                 size: int = 128, seed: int = 0, classes_per_scene: tuple[int, int] = (1, 4),
                 ms_share: float = 0.4, augment: bool | None = None, band_dropout: bool | None = None,
                 bands: Sequence[str] | None = None, min_fraction: float = 0.02, epoch: int = 0,
                 scale_range: tuple[float, float] = (0.7, 1.4)):
        if split not in _SPLIT_CODE:
            raise InputError(f"unknown split '{split}'", fix="use train or test")
        if size < PATCH or num_scenes < 0:
            raise InputError(f"size must be >= {PATCH} and num_scenes >= 0")
        self.root, self.split, self.num_scenes, self.size = Path(data_root), split, int(num_scenes), int(size)
        self.seed, self.classes_per_scene, self.min_fraction = int(seed), tuple(classes_per_scene), float(min_fraction)
        self.ms_share = 1.0 if split == "test" else float(ms_share)
        self.augment = (split == "train") if augment is None else bool(augment)
        self.band_dropout = (split == "train") if band_dropout is None else bool(band_dropout)
        self.scale_range = scale_range
        self.s2_bands = S2_BANDS_NO_CIRRUS
        self.force_bands = None if bands is None else tuple(bands)
        if self.force_bands is not None:
            bad = [b for b in self.force_bands if b not in self.s2_bands]
            if bad:
                raise InputError(f"unknown band names {bad}", fix=f"use names from {self.s2_bands}")
        self.has_s1 = False
        self.scheme = load_scheme("eurosat")
        root = str(self.root.resolve())
        self._ms, self._ms_names = _ms_bank(root, split)
        self._rgb = self._rgb_names = None
        if self.ms_share < 1.0:
            test_names = frozenset(n for n, _, _ in ms_patches(root, "test"))
            self._rgb, self._rgb_names = _rgb_bank(root, test_names)
        self.calibration = rgb_calibration.load_cached(str(self.root / "eurosat_rgb" / "calibration.json"))
        self._ms_idx = np.array([S2_BANDS.index(b) for b in self.s2_bands])
        self.epoch = 0
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch) if self.split == "train" else 0

    def __len__(self) -> int:
        return self.num_scenes

    @property
    def source_names(self) -> set[str]:
        """Every patch name this dataset can draw from (to check splits)."""
        out = {n for names in self._ms_names for n in names}
        if self._rgb_names is not None:
            out |= {n for names in self._rgb_names for n in names}
        return out

    def scene_id(self, index: int) -> str:
        return f"real_{self.split}_s{self.seed}_e{self.epoch}_{index:05d}"

    def _bands_for(self, rng: np.random.Generator, from_rgb: bool) -> tuple[str, ...]:
        if self.force_bands is not None:
            return self.force_bands
        if from_rgb:
            return RGB_BANDS
        if not self.band_dropout:
            return self.s2_bands
        u = rng.random()
        if u < 0.4:
            return self.s2_bands
        if u < 0.6:
            return RGB_BANDS
        if u < 0.8:
            return EXPORT_BAND_SETS[int(rng.integers(len(EXPORT_BAND_SETS)))]
        others = [b for b in self.s2_bands if b not in RGB_BANDS and rng.random() < 0.5]
        return tuple(b for b in self.s2_bands if b in RGB_BANDS or b in others)

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index)
        rng = np.random.default_rng([self.seed, _SPLIT_CODE[self.split], self.epoch, index])
        from_rgb = rng.random() >= self.ms_share
        lo, hi = self.classes_per_scene
        k = int(rng.integers(lo, hi + 1))
        classes = np.sort(rng.choice(self.scheme.num_classes, size=k, replace=False))
        scale = float(np.exp(rng.uniform(*np.log(self.scale_range)))) if self.augment else 1.0
        gen_size = max(PATCH, int(round(self.size / scale)))
        region = make_region_mask(rng, gen_size, classes, self.min_fraction)
        if from_rgb:
            levels, _ = _fill(rng, region, self._rgb, np.arange(3))
            # B02,B03,B04 levels -> DN (the calibration works in R,G,B order)
            part = self.calibration.to_dn(levels[::-1].round().astype(np.uint8))[::-1]
            full = np.full((len(self.s2_bands), gen_size, gen_size), np.nan, np.float32)
            for j, b in enumerate(RGB_BANDS):
                full[self.s2_bands.index(b)] = part[j]
        else:
            full, _ = _fill(rng, region, self._ms, self._ms_idx)
        if gen_size != self.size:
            full, region = _resize(full, region, self.size)
        bands = self._bands_for(rng, from_rgb)
        if self.augment:
            full = _radiometric_augment(rng, full, self.s2_bands)
        if not from_rgb and set(bands) == set(RGB_BANDS) and self.augment and rng.random() < 0.5:
            # an 8-bit RGB export of an MS scene
            rgb = full[[self.s2_bands.index(b) for b in ("B04", "B03", "B02")]]
            back = self.calibration.to_dn(self.calibration.to_levels(rgb))
            for j, b in enumerate(("B04", "B03", "B02")):
                full[self.s2_bands.index(b)] = back[j]
        drop = [i for i, b in enumerate(self.s2_bands) if b not in bands]
        full[drop] = np.nan
        mask = region.astype(np.uint8)
        labels = labels_from_mask(mask, self.scheme.num_classes, self.min_fraction)
        return Sample(s2=full, s1=None, labels=labels, mask=mask, id=self.scene_id(index))


def _resize(data: np.ndarray, region: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    x = torch.from_numpy(np.nan_to_num(data, nan=0.0))[None]
    nan_bands = np.isnan(data).all(axis=(1, 2))
    out = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=data.shape[-1] > size)[0].numpy()
    out[nan_bands] = np.nan
    r = torch.from_numpy(region.astype(np.int64))[None, None].float()
    reg = F.interpolate(r, size=(size, size), mode="nearest")[0, 0].numpy().astype(region.dtype)
    return out.astype(np.float32), reg


def _radiometric_augment(rng: np.random.Generator, x: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """Per-band gain/offset, haze or an L2A-like dark-object subtraction, in DN."""
    w = np.array([(443.0 / _WAVELENGTH_NM[b]) ** 1.5 for b in bands], np.float32)[:, None, None]
    gain = np.exp(rng.normal(0.0, 0.07, (len(bands), 1, 1))).astype(np.float32) * \
        np.float32(np.exp(rng.normal(0.0, 0.08)))
    offset = rng.normal(0.0, 40.0, (len(bands), 1, 1)).astype(np.float32)
    x = x * gain + offset
    u = rng.random()
    if u < 0.25:  # haze: a bright veil, strongest in the blue
        x = x + np.float32(rng.uniform(100, 900)) * w
    elif u < 0.5:  # L2A-like: path radiance removed, blue bands darker
        x = x - np.float32(rng.uniform(100, 700)) * w
    return np.maximum(x, 0.0).astype(np.float32)
