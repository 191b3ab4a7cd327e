"""EuroSAT mosaics: the repo's stand-in for the DFC2020 benchmark (pixel masks + image labels).

A scene (default 256x256 at 10 m) is built from the real 64x64 EuroSAT-MS patches:

1. 1..4 classes are drawn (``classes_per_scene``) and 2..(classes+3) Voronoi seeds are placed;
   every drawn class owns at least one cell.
2. Pixel coordinates are displaced by two smooth random fields (white noise on a 1/8 grid,
   Gaussian-smoothed, bilinearly upsampled, amplitude ~S/10 px) before the nearest-seed
   assignment, so region borders wander instead of being straight Voronoi edges.
3. Regions smaller than ``min_fraction`` of the scene (default 2% = 1311 px at 256x256) are
   slivers too small to be a fair image-level label: their pixels are given to the nearest kept
   region (Euclidean distance transform), so mask and labels always agree exactly.
4. Each region is filled by tiling (grid with a random offset) randomly rotated (k*90 deg) and
   flipped patches of its class, drawn from the split's source patches.

Labels = classes present in the final mask (each then covers >= ``min_fraction``). A scene is a
pure function of (seed, split, epoch, index): ``set_epoch`` gives fresh training scenes each epoch;
the test split ignores the epoch. Train and test scenes use disjoint source patches
(:func:`sparsevit.datasets.eurosat.source_split`, 14/6 per class). The realised number of
classes can be below the drawn one only when a drawn class ends as a sliver.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from scipy import ndimage

from ..bands import S2_BANDS
from ..errors import InputError
from ..schemes import load_mapping, load_scheme
from .base import Dataset, Sample, check_s2_bands, labels_from_mask
from .eurosat import load_patch_bank

PATCH = 64
_SPLIT_CODE = {"train": 1, "test": 2}
CLASS_SETS = ("eurosat", "dfc2020", "dfc2020_8")


def _smooth_fields(rng: np.random.Generator, size: int, amplitude: float) -> np.ndarray:
    """Two smooth displacement fields [2, size, size] with standard deviation ~``amplitude``."""
    coarse = max(4, size // 8)
    noise = rng.standard_normal((2, coarse, coarse)).astype(np.float32)
    noise = ndimage.gaussian_filter(noise, sigma=(0, 1.0, 1.0), mode="wrap")
    noise *= amplitude / (noise.std(axis=(1, 2), keepdims=True) + 1e-12)
    a = _interp_matrix(size, coarse)  # separable bilinear upsampling as two small matmuls
    return a @ noise @ a.T


@lru_cache(maxsize=8)
def _interp_matrix(size: int, coarse: int) -> np.ndarray:
    """[size, coarse] linear-interpolation weights (rows sum to 1), corners aligned."""
    pos = np.linspace(0, coarse - 1, size)
    return np.stack([np.interp(pos, np.arange(coarse), np.eye(coarse)[j]) for j in range(coarse)],
                    axis=1).astype(np.float32)


def make_region_mask(rng: np.random.Generator, size: int, classes: Sequence[int],
                     min_fraction: float) -> np.ndarray:
    """Irregular regions labelled with ``classes`` (int64 [size, size]); slivers absorbed."""
    k = len(classes)
    n_cells = int(rng.integers(max(2, k), k + 4)) if k > 1 else 1
    owners = np.concatenate([np.arange(k), rng.integers(0, k, n_cells - k)]) if k > 1 else np.zeros(1, int)
    rng.shuffle(owners)
    seeds = rng.uniform(0, size, (n_cells, 2))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + _smooth_fields(rng, size, size / 10)
    seeds = seeds.astype(np.float32)
    d2 = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    region = np.asarray(classes)[owners[np.argmin(d2, axis=0)]]
    # absorb slivers: smallest first, so a class is only dropped if it is still too small
    counts = {c: int((region == c).sum()) for c in classes}
    small = [c for c in sorted(counts, key=counts.get) if 0 < counts[c] < min_fraction * size * size]
    if small:
        drop = np.isin(region, small)
        if drop.all():  # cannot happen with min_fraction <= 1/k; keep the largest anyway
            drop &= region != max(counts, key=counts.get)
        _, (iy, ix) = ndimage.distance_transform_edt(drop, return_indices=True)
        region = region[iy, ix]
    return region


def _fill(rng: np.random.Generator, region: np.ndarray, bank: Sequence[np.ndarray],
          band_idx: np.ndarray) -> tuple[np.ndarray, list[int]]:
    size = region.shape[0]
    out = np.empty((len(band_idx), size, size), dtype=np.float32)
    oy, ox = rng.integers(0, PATCH, 2)
    used: list[int] = []
    for y0 in range(-int(oy), size, PATCH):
        for x0 in range(-int(ox), size, PATCH):
            ys, xs = slice(max(y0, 0), min(y0 + PATCH, size)), slice(max(x0, 0), min(x0 + PATCH, size))
            tile = region[ys, xs]
            present = np.flatnonzero(np.bincount(tile.ravel(), minlength=len(bank)))
            for c in present:
                j = int(rng.integers(len(bank[c])))
                used.append(int(c) * 1000 + j)
                patch = np.rot90(bank[c][j][band_idx], int(rng.integers(4)), axes=(1, 2))
                if rng.integers(2):
                    patch = patch[:, :, ::-1]
                patch = patch[:, ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
                if len(present) == 1:  # most tiles hold one region: plain copy, no mask
                    out[:, ys, xs] = patch
                else:
                    np.copyto(out[:, ys, xs], patch, where=(tile == c)[None])
    return out, used


class EuroSatMosaic(Dataset):
    """Synthetic-layout, real-pixel scenes from EuroSAT-MS patches (see module docstring)."""

    def __init__(self, root: str | Path = "data/eurosat_ms", split: str = "train",
                 num_scenes: int = 1000, size: int = 256, seed: int = 0,
                 classes_per_scene: tuple[int, int] = (1, 4), bands: Sequence[str] | None = None,
                 min_fraction: float = 0.02, classes: str = "eurosat", epoch: int = 0):
        if split not in _SPLIT_CODE:
            raise InputError(f"unknown mosaic split '{split}'", fix="use train or test")
        lo, hi = (int(v) for v in classes_per_scene)
        if not 1 <= lo <= hi <= 10:
            raise InputError(f"classes_per_scene {classes_per_scene} must satisfy 1 <= min <= max <= 10")
        if not 0 <= min_fraction <= 1.0 / hi:
            raise InputError(f"min_fraction {min_fraction} is impossible with {hi} classes per scene",
                             fix=f"use a value in [0, {1.0 / hi:.3f}]")
        if size < PATCH or num_scenes < 0:
            raise InputError(f"size must be >= {PATCH} and num_scenes >= 0")
        if classes not in CLASS_SETS:
            raise InputError(f"unknown class set '{classes}'", fix=f"use one of {CLASS_SETS}")
        self.root, self.split, self.num_scenes, self.size = Path(root), split, int(num_scenes), int(size)
        self.seed, self.classes_per_scene, self.min_fraction = int(seed), (lo, hi), float(min_fraction)
        self.s2_bands = check_s2_bands(bands, S2_BANDS)
        self.has_s1 = False
        self.source_scheme = load_scheme("eurosat")
        self.scheme = load_scheme(classes)
        self._map = None
        if classes != "eurosat":
            first = load_mapping("eurosat_to_dfc2020")
            lut = self.scheme.to_index(first.lut) if classes == "dfc2020" else \
                self.scheme.to_index(load_mapping("dfc2020_to_dfc2020_8").apply(first.lut))
            self._map = lut  # eurosat value (= index) -> target class index
        self._bank, self._bank_ids = load_patch_bank(str(Path(root).resolve()), split)
        self._band_idx = np.array([S2_BANDS.index(b) for b in self.s2_bands])
        self.epoch = 0
        self.set_epoch(epoch)

    # --- epochs -------------------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Training scenes change with the epoch; the test split stays fixed."""
        self.epoch = int(epoch) if self.split == "train" else 0

    @property
    def source_ids(self) -> dict[str, tuple[str, ...]]:
        """The EuroSAT patches this split draws from, per class ('Forest/Forest_3.tif')."""
        return dict(zip(self.source_scheme.names, self._bank_ids))

    def __len__(self) -> int:
        return self.num_scenes

    def scene_id(self, index: int) -> str:
        return f"{self.split}_s{self.seed}_e{self.epoch}_{index:05d}"

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, _SPLIT_CODE[self.split], self.epoch, index])

    def generate(self, index: int) -> tuple[Sample, list[str]]:
        """The scene and the source patches it used (``'Forest/Forest_3.tif'``, with repeats)."""
        index = self._check_index(index)
        rng = self.rng(index)
        lo, hi = self.classes_per_scene
        k = int(rng.integers(lo, hi + 1))
        classes = np.sort(rng.choice(self.source_scheme.num_classes, size=k, replace=False))
        region = make_region_mask(rng, self.size, classes, self.min_fraction)
        s2, used = _fill(rng, region, self._bank, self._band_idx)
        mask = region.astype(np.uint8) if self._map is None else self._map[region].astype(np.uint8)
        labels = labels_from_mask(mask, self.scheme.num_classes, self.min_fraction)
        sources = [self._bank_ids[u // 1000][u % 1000] for u in used]
        return Sample(s2=s2, s1=None, labels=labels, mask=mask, id=self.scene_id(index)), sources

    def __getitem__(self, index: int) -> Sample:
        return self.generate(index)[0]


class MosaicFolderDataset(Dataset):
    """Reads back a folder written by ``sparsevit mosaic build`` (s2/, mask/, labels.json)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta_path = self.root / "labels.json"
        if not meta_path.is_file():
            raise InputError("not a mosaic folder: labels.json is missing", path=self.root,
                             fix="build one with 'sparsevit mosaic build'")
        try:
            self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
            self.scheme = load_scheme(self.meta["scheme"])
            self.s2_bands = tuple(self.meta["s2_bands"])
            self._scenes = self.meta["scenes"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise InputError(f"labels.json is not a mosaic index ({exc})", path=meta_path) from None
        self.has_s1 = False

    def __len__(self) -> int:
        return len(self._scenes)

    def ids(self) -> list[str]:
        return [s["id"] for s in self._scenes]

    def __getitem__(self, index: int) -> Sample:
        rec = self._scenes[self._check_index(index)]
        with rasterio.open(self.root / rec["s2"]) as src:
            s2 = src.read().astype(np.float32)
        with rasterio.open(self.root / rec["mask"]) as src:
            mask = src.read(1)
        labels = self.scheme.multi_hot(rec["labels"])
        return Sample(s2=s2, s1=None, labels=labels, mask=mask, id=rec["id"])
