"""A dataset whose samples are made once and kept in memory as compact integers.

Composed scenes (:class:`~sparsevit.datasets.eurosat_real.RealPatchScenes`) cost ~20-100 ms
each to compose and augment; the segmenter's refinement reads the same fixed scenes in every
epoch, every iteration, for its pseudomasks and its class weights. Measured on 2 cores: making
the scenes took longer than training on them at 64 px crops. S2 values are kept as uint16 digital
numbers (rounded: the composed scenes' augmentation adds far more than 0.5 DN of noise), an
absent band as a sentinel, so 1600 scenes of 12 bands at 256 px take 2.5 GB.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Sample

_ABSENT = np.uint16(65535)


class CachedScenes:
    """``CachedScenes(dataset)[i]`` is ``dataset[i]``, made on first use and kept; every other
    attribute (``scheme``, ``s2_bands``, ...) is the wrapped dataset's."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self._store: dict[int, tuple] = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: int) -> Sample:
        index = int(index)
        if index < 0:
            index += len(self)
        hit = self._store.get(index)
        if hit is None:
            s = self.dataset[index]
            absent = np.isnan(s.s2)
            dn = np.where(absent, 0, np.clip(np.rint(s.s2), 0, 65534)).astype(np.uint16)
            dn[absent] = _ABSENT
            hit = (dn, s.s1, s.labels, s.mask, s.id)
            self._store[index] = hit
        dn, s1, labels, mask, sid = hit
        s2 = dn.astype(np.float32)
        s2[dn == _ABSENT] = np.nan
        return Sample(s2=s2, s1=s1, labels=labels, mask=mask, id=sid)
