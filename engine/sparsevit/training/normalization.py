"""Input normalisation, recorded with the model so inference repeats exactly what training did.

S1 is clipped to [-25, 0] dB and shifted to [0, 25]; S2 is clipped to [0, 10000] DN. Then either
``dataset_stats`` (per-band mean/std of the training set; default) or ``per_image_max`` (the
paper's: divide every band of every image by its own maximum).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

MODES = ("dataset_stats", "per_image_max")
S1_CLIP_DB = (-25.0, 0.0)
S2_CLIP_DN = (0.0, 10000.0)


def clip_and_stack(s2: np.ndarray | torch.Tensor, s1: np.ndarray | torch.Tensor | None
                   ) -> torch.Tensor:
    """Raw S2 DN [C,H,W] (+ S1 dB [2,H,W]) -> clipped float32 [C(+2),H,W] (S1 shifted to >= 0)."""
    s2t = torch.as_tensor(s2, dtype=torch.float32).clamp(*S2_CLIP_DN)
    if s1 is None:
        return s2t
    s1t = torch.as_tensor(s1, dtype=torch.float32).clamp(*S1_CLIP_DB) - S1_CLIP_DB[0]
    return torch.cat([s2t, s1t], dim=-3)


@dataclass
class Normalizer:
    mode: str = "dataset_stats"
    mean: list[float] | None = None
    std: list[float] | None = None
    stats_from: str | None = field(default=None)  # what the statistics were computed on

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"normalisation mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "dataset_stats" and (self.mean is None or self.std is None):
            raise ValueError("dataset_stats normalisation needs mean and std (compute_stats)")

    def __call__(self, s2: np.ndarray | torch.Tensor, s1: np.ndarray | torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Raw S2 [..., C, H, W] (+ S1) -> normalised stacked float32 tensor."""
        x = clip_and_stack(s2, s1)
        return self.apply_clipped(x)

    def apply_clipped(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "per_image_max":
            peak = x.amax(dim=(-2, -1), keepdim=True)
            return x / torch.where(peak > 0, peak, torch.ones_like(peak))
        if len(self.mean) != x.shape[-3]:
            raise ValueError(f"normaliser has statistics for {len(self.mean)} bands, "
                             f"input has {x.shape[-3]}")
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        return (x - mean) / std

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "mean": self.mean, "std": self.std,
                "stats_from": self.stats_from, "s1_clip_db": list(S1_CLIP_DB),
                "s2_clip_dn": list(S2_CLIP_DN)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Normalizer":
        return cls(mode=d["mode"], mean=d.get("mean"), std=d.get("std"),
                   stats_from=d.get("stats_from"))


def compute_stats(samples: Iterable[Any], description: str | None = None,
                  min_std: float = 1e-3) -> Normalizer:
    """Per-band mean/std over every pixel of ``samples`` (objects with ``.s2`` and ``.s1``)."""
    total = sq = count = None
    for s in samples:
        x = clip_and_stack(s.s2, s.s1).double()
        flat = x.reshape(x.shape[0], -1)
        # band-flexible datasets hold missing bands as NaN: each band counts its own pixels
        finite = torch.isfinite(flat)
        flat = torch.where(finite, flat, torch.zeros((), dtype=flat.dtype))
        if total is None:
            total = torch.zeros(flat.shape[0], dtype=torch.float64)
            sq = torch.zeros_like(total)
            count = torch.zeros_like(total)
        total += flat.sum(1)
        sq += (flat * flat).sum(1)
        count += finite.sum(1)
    if total is None:
        raise ValueError("cannot compute normalisation statistics from an empty dataset")
    if bool((count == 0).any()):
        raise ValueError("a band has no finite pixel in the statistics samples")
    mean = total / count
    std = (sq / count - mean * mean).clamp_min(0).sqrt().clamp_min(min_std)
    return Normalizer("dataset_stats", mean.tolist(), std.tolist(), stats_from=description)
