"""The tagged tiles of an analyst's raster as a training dataset (the ``Sample`` contract).

Tiles are read once (in the model's band order, converted to the model's radiometry, absent
bands NaN as for a band-flexible model) and kept in memory: a few hundred tiles of 64 px are a
few tens of MB. No-data pixels are filled with the tile's band medians, so they neither look
like dark surfaces nor poison the batch with NaN; tiles that are mostly no-data are dropped and
counted.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from rasterio.windows import Window

from ..datasets.base import Dataset, Sample
from ..io.processing_level import LevelPlan
from ..model_bands import to_model_bands
from ..progress import Progress, null_progress
from ..schemes import ClassScheme
from .labels import TileTag

MIN_VALID = 0.5  # a tile needs at least this share of valid pixels to be trained on


class TaggedTiles(Dataset):
    """``dataset[i]`` -> the ``i % n``-th tile; ``repeat`` > 1 makes an epoch see every tile
    ``repeat`` times (each with its own augmentation, seeded by the index)."""

    has_s1 = False

    def __init__(self, scenes: Sequence, tags: Sequence[TileTag], model_bands: Sequence[str],
                 scheme: ClassScheme, repeat: int = 1, progress: Progress | None = None,
                 stage: str = "read tiles", levels: Sequence[LevelPlan] | None = None):
        progress = progress or null_progress()
        self.scheme, self.s2_bands, self.repeat = scheme, tuple(model_bands), max(1, int(repeat))
        self.tags: list[TileTag] = []
        self.images: list[np.ndarray] = []
        self.dropped: list[str] = []
        with progress.stage(stage, total=len(tags)) as st:
            for t in tags:
                scene = scenes[t.raster]
                plan = levels[t.raster] if levels is not None else None
                used = [b for b in self.s2_bands if b in scene.bands
                        and (plan is None or b not in plan.dropped)]
                data, valid = scene.read(Window(t.col, t.row, t.size, t.size), used)
                if plan is not None:  # what predict will give the fitted model, as predict does it
                    data = plan.apply(data, used, valid)
                if valid.mean() < MIN_VALID:
                    self.dropped.append(t.id)
                else:
                    if not valid.all():
                        med = np.median(data[:, valid], axis=1)
                        data[:, ~valid] = med[:, None]
                    self.tags.append(t)
                    self.images.append(to_model_bands(data, used, self.s2_bands))
                st.advance()

    def subset(self, ids: set[str]) -> "TaggedTiles":
        out = object.__new__(TaggedTiles)
        out.scheme, out.s2_bands, out.repeat, out.dropped = self.scheme, self.s2_bands, 1, []
        keep = [i for i, t in enumerate(self.tags) if t.id in ids]
        out.tags = [self.tags[i] for i in keep]
        out.images = [self.images[i] for i in keep]
        return out

    def with_repeat(self, repeat: int) -> "TaggedTiles":
        out = self.subset({t.id for t in self.tags})
        out.repeat = max(1, int(repeat))
        return out

    def __len__(self) -> int:
        return len(self.tags) * self.repeat

    def __getitem__(self, index: int) -> Sample:
        index = self._check_index(index) % len(self.tags)
        t = self.tags[index]
        return Sample(s2=self.images[index], s1=None, labels=t.labels, mask=None, id=t.id)
