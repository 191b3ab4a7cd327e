"""Which class each cluster (or head) map stands for.

Two rules:

* :func:`assign_by_order` - the paper's: rank maps by foreground mean, rank predicted classes by
  probability, pair them rank for rank. It uses no spatial evidence about the classes, so a
  confidently predicted class that attention happens to highlight weakly gets the wrong region
  (the CPU prototype lost half its mIoU this way: 0.25 vs 0.47-0.50 with the best matching).
* :func:`assign_by_matching` - ours: correlate every map with a per-class evidence map (Grad-CAM,
  class-token attention, ...) and solve the one-to-one assignment maximising total correlation
  (Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from .maps import flatten_maps


def predicted_classes(probs: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, str | None]:
    """Classes with ``prob >= threshold``, most probable first; ``(classes, fallback)``.

    When no class reaches the threshold the top-1 class is returned with ``fallback="top1"``:
    the reference dropped such images, which silently shrinks the evaluation set.
    """
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    if probs.size == 0:
        raise ValueError("probs is empty")
    if not np.all(np.isfinite(probs)):
        raise ValueError("probs contains NaN or infinite values")
    # stable sort on -p: equal probabilities keep the lower class index first (deterministic)
    order = np.argsort(-probs, kind="stable")
    chosen = order[probs[order] >= threshold]
    if chosen.size == 0:
        return order[:1].copy(), "top1"
    return chosen, None


def assign_by_order(foreground_mean: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class of each map: the highest foreground mean gets ``classes[0]`` and so on.

    ``classes`` must be sorted most probable first. With fewer maps than classes the least
    probable classes get no map; with more maps than classes the weakest maps get -1.
    """
    fg_mean = np.asarray(foreground_mean, dtype=np.float64)
    classes = np.asarray(classes)
    out = np.full(fg_mean.shape[0], -1, dtype=np.int64)
    rank = np.argsort(-fg_mean, kind="stable")
    k = min(len(rank), len(classes))
    out[rank[:k]] = classes[:k]
    return out


def correlation_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation between every map of ``a [m, ...]`` and every map of ``b [n, ...]``.

    A constant map correlates 0 with everything (rather than NaN), so it is never preferred.
    """
    a = flatten_maps(np.asarray(a, dtype=np.float64))
    b = flatten_maps(np.asarray(b, dtype=np.float64))
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"maps differ in size: {a.shape[1]} vs {b.shape[1]} pixels")

    def standardise(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)

    return standardise(a) @ standardise(b).T


def assign_by_matching(maps: np.ndarray, class_maps: np.ndarray,
                       classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class of each map by maximum-correlation one-to-one matching.

    ``maps [m, h, w]``; ``class_maps [len(classes), h, w]``, row i the evidence for
    ``classes[i]``. Returns ``(map_class [m] with -1 for unmatched maps, similarity [m, n])``.
    With ``m < n`` the classes whose evidence fits no map stay unmatched (not the least
    probable ones, as with the ordering rule).
    """
    classes = np.asarray(classes)
    sim = correlation_matrix(maps, class_maps)
    out = np.full(sim.shape[0], -1, dtype=np.int64)
    if sim.size:
        rows, cols = linear_sum_assignment(sim, maximize=True)
        out[rows] = classes[cols]
    return out, sim
