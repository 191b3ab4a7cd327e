"""Iterative refinement: pseudomasks -> segmenter (it1) -> its own confident masks -> it2 ...

Each iteration trains a fresh segmenter on the current masks, with uncertain pixels as ignore
(255), then predicts new masks for the training scenes; pixels whose softmax confidence is
below ``ignore_below`` become ignore for the next iteration instead of being forced.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from ..evaluation.metrics import EvaluationSet
from ..progress import Progress, null_progress
from .data import IGNORE, MaskedSceneDataset
from .segmenter import build_segmenter
from .train import SegTrainConfig, predict_segmenter, train_segmenter


@dataclass
class RefineConfig:
    segmenter: str = "unet-mnv3"
    iterations: int = 2
    ignore_below: float = 0.5  # next-iteration masks: softmax confidence below -> ignore
    crop: int | None = 128
    train: SegTrainConfig = field(default_factory=SegTrainConfig)

    def to_dict(self) -> dict:
        return {"segmenter": self.segmenter, "iterations": self.iterations,
                "ignore_below": self.ignore_below, "crop": self.crop, "train": self.train.to_dict()}


def segmenter_masks(model: nn.Module, dataset: Any, normalizer, use_s1: bool = False,
                    ignore_below: float | None = None, batch_size: int = 8
                    ) -> dict[str, np.ndarray]:
    """The segmenter's own masks for every sample (low-confidence pixels -> ignore)."""
    ids, images = [], []

    def gen():
        for i in range(len(dataset)):
            s = dataset[i]
            ids.append(s.id)
            yield normalizer(s.s2, s.s1 if use_s1 else None)

    out = {}
    for k, (lab, conf) in enumerate(predict_segmenter(model, gen(), batch_size)):
        if ignore_below is not None:
            lab = lab.copy()
            lab[conf < ignore_below] = IGNORE
        out[ids[k]] = lab
    return out


def evaluate_segmenter(model: nn.Module, dataset: Any, normalizer, use_s1: bool = False,
                       batch_size: int = 8) -> dict:
    """Scores of the segmenter's arg-max against the dataset's true masks, every image counted."""
    ev = EvaluationSet(dataset.scheme.num_classes, class_names=list(dataset.scheme.names))
    masks = segmenter_masks(model, dataset, normalizer, use_s1, None, batch_size)
    for i in range(len(dataset)):
        s = dataset[i]
        ev.add(s.id, masks[s.id], s.mask)
    return ev.summary()


def train_on_masks(dataset: Any, masks: Mapping[str, np.ndarray] | None, normalizer, in_channels: int,
                   cfg: RefineConfig, use_s1: bool = False, seed_offset: int = 0,
                   progress: Progress | None = None, stage: str = "refine") -> tuple[nn.Module, dict]:
    torch.manual_seed(cfg.train.seed + seed_offset)
    model = build_segmenter(cfg.segmenter, in_channels, dataset.scheme.num_classes)
    data = MaskedSceneDataset(dataset, normalizer, masks, use_s1=use_s1, crop=cfg.crop,
                              augment=True, seed=cfg.train.seed + seed_offset)
    history = train_segmenter(model, data, cfg.train, progress, stage=stage)
    return model, history


def refine(dataset: Any, pseudomasks: Mapping[str, np.ndarray], normalizer, in_channels: int,
           cfg: RefineConfig, use_s1: bool = False, progress: Progress | None = None,
           on_iteration: Callable[[int, nn.Module, dict], None] | None = None) -> list[nn.Module]:
    """Run ``cfg.iterations`` rounds; returns the segmenter of every iteration (it1, it2, ...)."""
    progress = progress or null_progress()
    masks = dict(pseudomasks)
    models = []
    for it in range(1, cfg.iterations + 1):
        model, history = train_on_masks(dataset, masks, normalizer, in_channels, cfg, use_s1,
                                        seed_offset=it, progress=progress, stage=f"refine_it{it}")
        ignored = float(np.mean([np.mean(m == IGNORE) for m in masks.values()]))
        history["ignored_fraction_of_labels"] = round(ignored, 4)
        models.append(model)
        if on_iteration is not None:
            on_iteration(it, model, history)
        if it < cfg.iterations:
            with progress.stage(f"refine_it{it}_masks", total=None):
                masks = segmenter_masks(model, dataset, normalizer, use_s1, cfg.ignore_below)
    return models
