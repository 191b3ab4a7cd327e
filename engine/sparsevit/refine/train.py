"""Training a segmentation network on (pseudo)masks; ignore label 255 for uncertain pixels."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..progress import Progress, null_progress
from ..schemes import IGNORE
from ..training.loop import lr_factor


@dataclass
class SegTrainConfig:
    epochs: int = 8
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    seed: int = 0
    # "balanced": cross-entropy weights from the labelled-pixel frequencies of the training
    # masks (median frequency / class frequency, clipped to [0.2, 5]); pseudomasks over-cover
    # the frequent classes, and an unweighted loss lets rare classes vanish from the map
    class_weighting: str = "none"

    def to_dict(self) -> dict:
        return asdict(self)


def warmup_cosine(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float,
                  min_ratio: float = 0.01):
    """The classifier's warmup + cosine schedule (training.loop.lr_factor) as a scheduler."""
    warmup = max(1, int(round(total_steps * warmup_fraction)))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, warmup, min_ratio))


def train_segmenter(model: nn.Module, dataset: Dataset, cfg: SegTrainConfig,
                    progress: Progress | None = None, stage: str = "refine") -> dict:
    """Train in place. ``dataset[i]`` -> (x float32 [C,H,W], y int64 [H,W], 255 = ignore);
    a dataset with ``set_epoch`` (e.g. :class:`~sparsevit.refine.data.MaskedSceneDataset`)
    is told the epoch, so its augmentation varies per epoch."""
    progress = progress or null_progress()
    torch.manual_seed(cfg.seed)
    data = dataset
    gen = torch.Generator().manual_seed(cfg.seed)
    loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=True, generator=gen, drop_last=False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = warmup_cosine(opt, cfg.epochs * len(loader), cfg.warmup_fraction)
    weights = None
    if cfg.class_weighting == "balanced":
        weights = balanced_class_weights(label_counts(dataset))
    elif cfg.class_weighting != "none":
        raise ValueError(f"class_weighting must be 'none' or 'balanced', got {cfg.class_weighting!r}")
    loss_fn = nn.CrossEntropyLoss(weight=weights, ignore_index=IGNORE)
    history = {"loss": [], "seconds": 0.0, "images": 0, "skipped_batches": 0,
               "class_weights": None if weights is None else [round(float(w), 4) for w in weights]}
    t0 = time.perf_counter()
    model.train()
    with progress.stage(stage, total=cfg.epochs * len(loader)) as st:
        for epoch in range(cfg.epochs):
            if hasattr(data, "set_epoch"):
                data.set_epoch(epoch)
            total, count = 0.0, 0
            for x, y in loader:
                if not (y != IGNORE).any():
                    # every pixel uncertain: no signal, and CE would return nan
                    history["skipped_batches"] += 1
                    st.advance()
                    continue
                loss = loss_fn(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                value = loss.item()
                total += value * len(x)
                count += len(x)
                history["images"] += len(x)
                st.advance(loss=round(value, 4), epoch=epoch)
            history["loss"].append(total / max(1, count))
    history["seconds"] = round(time.perf_counter() - t0, 2)
    history["images_per_s"] = round(history["images"] / max(1e-9, history["seconds"]), 2)
    model.eval()
    return history


def label_counts(dataset: Dataset) -> np.ndarray:
    """Labelled pixels per class over the whole (un-augmented) training set."""
    if hasattr(dataset, "label_counts"):
        return np.asarray(dataset.label_counts(), dtype=np.float64)
    counts = np.zeros(0)
    for i in range(len(dataset)):
        y = np.asarray(dataset[i][1]).ravel()
        c = np.bincount(y[y != IGNORE])
        counts = np.pad(counts, (0, max(0, len(c) - len(counts))))
        counts[:len(c)] += c
    return counts


def balanced_class_weights(counts: np.ndarray, clip: tuple[float, float] = (0.2, 5.0)) -> torch.Tensor:
    """median(freq) / freq per class, clipped; classes without pixels get weight 0 (unused)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    w = np.zeros_like(counts)
    if present.any():
        freq = counts[present] / counts[present].sum()
        w[present] = np.clip(np.median(freq) / freq, *clip)
    return torch.tensor(w, dtype=torch.float32)


@torch.no_grad()
def predict_segmenter(model: nn.Module, images: Iterable[torch.Tensor], batch_size: int = 8,
                      allowed: Iterable[np.ndarray | None] | None = None
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (labels uint8 [H,W], confidence float32 [H,W] = max softmax) per image.

    ``allowed`` (one bool [K] or None per image, aligned with ``images``): the classes the image
    is known to contain; the softmax is restricted to them and renormalised, so a training
    scene's mask never shows a class its image-level labels rule out.
    """
    from .segmenter import predict_logits_padded

    model.eval()
    batch: list[torch.Tensor] = []
    keep: list[np.ndarray | None] = []

    def flush():
        probs = torch.softmax(predict_logits_padded(model, torch.stack(batch)), dim=1)
        for i, a in enumerate(keep):
            if a is not None and np.any(a):
                m = torch.as_tensor(np.asarray(a, dtype=bool), dtype=probs.dtype)[:, None, None]
                p = probs[i] * m
                probs[i] = p / p.sum(dim=0, keepdim=True).clamp_min(1e-12)
        conf, lab = probs.max(dim=1)
        for i in range(len(batch)):
            yield lab[i].to(torch.uint8).numpy(), conf[i].float().numpy()

    allowed_iter = iter(allowed) if allowed is not None else None
    for x in images:
        batch.append(x)
        keep.append(next(allowed_iter) if allowed_iter is not None else None)
        if len(batch) == batch_size:
            yield from flush()
            batch, keep = [], []
    if batch:
        yield from flush()
