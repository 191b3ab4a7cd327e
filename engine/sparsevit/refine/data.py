"""(image, mask) pairs for training the segmenter on pseudomasks or true masks."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

from ..training.data import flip_rotate, random_crop, sample_generator
from ..training.normalization import Normalizer


class MaskedSceneDataset(Dataset):
    """``dataset[i]`` -> ``(x [C,H,W] normalised, y int64 [H,W])`` with ``y`` from ``masks``.

    ``masks`` maps sample id -> uint8 [H,W] class indices (255 = ignore, e.g. uncertain pixels
    of a pseudomask). ``masks=None`` uses the dataset's own true masks (the fully supervised
    upper bound). Augmentation applies the same crop/flip/rotation to image and mask, seeded by
    (seed, epoch, index) like the classifier's.
    """

    def __init__(self, dataset: Any, normalizer: Normalizer, masks: Mapping[str, np.ndarray] | None,
                 use_s1: bool = False, crop: int | None = None, augment: bool = True, seed: int = 0):
        self.dataset, self.normalizer, self.masks = dataset, normalizer, masks
        self.use_s1, self.crop, self.augment, self.seed = use_s1, crop, augment, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        # the scenes stay fixed (their pseudomasks were computed once); only augmentation varies
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def label_counts(self) -> np.ndarray:
        """Labelled pixels per class over all scenes (255 = ignore not counted)."""
        k = self.dataset.scheme.num_classes
        counts = np.zeros(k, dtype=np.int64)
        for i in range(len(self.dataset)):
            s = self.dataset[i]
            m = np.asarray(s.mask if self.masks is None else self.masks[s.id]).ravel()
            counts += np.bincount(m[m < k], minlength=k)[:k]
        return counts

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.dataset[index]
        mask = s.mask if self.masks is None else self.masks[s.id]
        if mask is None:
            raise ValueError(f"sample {s.id} has no mask")
        x = self.normalizer(s.s2, s.s1 if self.use_s1 else None)
        y = torch.as_tensor(np.asarray(mask), dtype=torch.long)
        if self.crop or self.augment:
            gen = sample_generator(self.seed, self.epoch, index)
            if self.crop:
                x, y = random_crop(x, self.crop, gen, y)
            if self.augment:
                x, y = flip_rotate(x, gen, y)
        return x, y
