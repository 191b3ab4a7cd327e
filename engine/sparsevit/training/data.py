"""Torch adapter over the dataset contract (``Sample`` with s2/s1/labels/mask/id) + augmentation.

Every random choice (crop window, flips, rotation) comes from a generator seeded by
(seed, epoch, index): the data a step sees does not depend on worker count, and a resumed run
sees exactly what an uninterrupted one would have.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from .normalization import Normalizer


def sample_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 10_000_019 + index)


def random_crop(x: torch.Tensor, size: int, gen: torch.Generator,
                mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    h, w = x.shape[-2:]
    if size >= h and size >= w:
        return x, mask
    th, tw = min(size, h), min(size, w)
    top = int(torch.randint(0, h - th + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - tw + 1, (1,), generator=gen))
    x = x[..., top:top + th, left:left + tw]
    if mask is not None:
        mask = mask[..., top:top + th, left:left + tw]
    return x, mask


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return x[..., top:top + size, left:left + size]


def flip_rotate(x: torch.Tensor, gen: torch.Generator, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One of the 8 dihedral transforms, applied to the stacked S2+S1 tensor (and the mask),
    so both sensors stay co-registered."""
    k = int(torch.randint(0, 4, (1,), generator=gen))
    flip = bool(torch.randint(0, 2, (1,), generator=gen))
    x = torch.rot90(x, k, dims=(-2, -1))
    if mask is not None:
        mask = torch.rot90(mask, k, dims=(-2, -1))
    if flip:
        x = torch.flip(x, dims=(-1,))
        if mask is not None:
            mask = torch.flip(mask, dims=(-1,))
    return x.contiguous(), None if mask is None else mask.contiguous()


class TorchSampleDataset(Dataset):
    """``dataset[i]`` -> ``(x [C,H,W] normalised, labels [K], i)``.

    ``train=True``: random crop to ``crop`` px and random flip/rot90; ``train=False``: centre
    crop (when ``crop``) and no augmentation, so evaluation is deterministic.
    """

    def __init__(self, dataset: Any, normalizer: Normalizer, crop: int | None = None,
                 train: bool = True, augment: bool = True, seed: int = 0,
                 use_s1: bool | None = None, crop_label_fraction: float | None = None):
        self.dataset = dataset
        # A crop may lose classes of the full image; with a mask, relabel the crop (classes
        # covering >= this fraction of its valid pixels) instead of training on absent classes.
        self.crop_label_fraction = crop_label_fraction
        self.normalizer = normalizer
        self.crop = crop
        self.train = train
        self.augment = augment and train
        self.seed = seed
        self.epoch = 0
        self.use_s1 = bool(getattr(dataset, "has_s1", False)) if use_s1 is None else use_s1
        if self.use_s1 and not getattr(dataset, "has_s1", False):
            raise ValueError("S1 requested but the dataset has no S1 images")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        s = self.dataset[index]
        if self.use_s1 and s.s1 is None:
            raise ValueError(f"sample {s.id} has no S1 image")
        x = self.normalizer(s.s2, s.s1 if self.use_s1 else None)
        labels = torch.as_tensor(s.labels, dtype=torch.float32)
        mask = None
        if self.crop and self.crop_label_fraction is not None and s.mask is not None:
            mask = torch.as_tensor(s.mask)
        if self.train:
            gen = sample_generator(self.seed, self.epoch, index)
            if self.crop:
                x, mask = random_crop(x, self.crop, gen, mask)
            if self.augment:
                x, _ = flip_rotate(x, gen)
        elif self.crop:
            x = center_crop(x, self.crop)
            mask = None if mask is None else center_crop(mask, self.crop)
        if mask is not None:
            labels = labels_from_crop(mask, labels.numel(), self.crop_label_fraction)
        return x, labels, index


def labels_from_crop(mask: torch.Tensor, num_classes: int, min_fraction: float) -> torch.Tensor:
    counts = torch.bincount(mask.flatten().long(), minlength=256)[:num_classes].double()
    total = counts.sum()
    if total == 0:
        return torch.zeros(num_classes)
    return (counts / total >= min_fraction - 1e-9).float()
