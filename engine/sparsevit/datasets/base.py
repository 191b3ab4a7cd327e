"""The sample type shared by every dataset reader, and small helpers they share.

Readers return raw values (S2 digital numbers = reflectance x 10000 as stored, S1 in dB) so that
normalisation stays a recorded model setting, not a property of the reader.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..bands import S2_BANDS, normalize_s1_name, normalize_s2_name
from ..errors import InputError
from ..schemes import ClassScheme


@dataclass
class Sample:
    s2: np.ndarray                 # float32 [C, H, W], in the dataset's ``s2_bands`` order
    s1: np.ndarray | None          # float32 [2, H, W] (VV, VH) in dB, or None
    labels: np.ndarray             # float32 [K] multi-hot over the dataset scheme
    mask: np.ndarray | None        # uint8 [H, W] class index 0..K-1, 255 = ignore; or None
    id: str


class Dataset:
    """Minimal common interface (numpy only; the torch adapter lives with the model)."""

    scheme: ClassScheme
    s2_bands: tuple[str, ...]
    has_s1: bool

    def __len__(self) -> int:  # pragma: no cover - overridden
        raise NotImplementedError

    def __getitem__(self, index: int) -> Sample:  # pragma: no cover - overridden
        raise NotImplementedError

    def __iter__(self) -> Iterator[Sample]:
        for i in range(len(self)):
            yield self[i]

    def _check_index(self, index: int) -> int:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of {n} samples")
        return index


def labels_from_mask(mask: np.ndarray, num_classes: int, min_fraction: float) -> np.ndarray:
    """Multi-hot: classes covering >= ``min_fraction`` of the VALID (non-ignore) pixels.

    The fraction is of valid pixels, so a patch that is half ignore (e.g. Savanna in the 8-class
    remap) still gets the labels its labelled half supports. No valid pixel -> all zeros.
    """
    counts = np.bincount(mask.ravel(), minlength=256)[:num_classes].astype(np.float64)
    total = counts.sum()
    if total == 0:
        return np.zeros(num_classes, dtype=np.float32)
    # tiny tolerance so that exactly min_fraction counts as covered despite float rounding
    return (counts / total >= min_fraction - 1e-9).astype(np.float32)


def band_order_from_descriptions(descriptions: Sequence[str | None], path: Path,
                                 kind: str = "s2") -> list[str]:
    norm = normalize_s2_name if kind == "s2" else normalize_s1_name
    names = [norm(d) if d else None for d in descriptions]
    if any(n is None for n in names):
        raise InputError(f"cannot tell which band is which (band descriptions {list(descriptions)})",
                         path=path, fix="write band descriptions such as B02 / VV into the file")
    return names  # type: ignore[return-value]


def reorder(array: np.ndarray, have: Sequence[str], want: Sequence[str], path: Path) -> np.ndarray:
    missing = [b for b in want if b not in have]
    if missing:
        raise InputError(f"bands {missing} are missing (file has {list(have)})", path=path)
    return array[[list(have).index(b) for b in want]]


def check_s2_bands(bands: Sequence[str] | None, default: Sequence[str]) -> tuple[str, ...]:
    if bands is None:
        return tuple(default)
    bad = [b for b in bands if b not in S2_BANDS]
    if bad:
        raise InputError(f"unknown Sentinel-2 band names {bad}", fix=f"use names from {S2_BANDS}")
    return tuple(bands)
