"""Nearest-label fill of unassigned pixels.

:func:`nearest_fill` is what the pipeline uses: one exact Euclidean distance transform with
indices (scipy), linear in the number of pixels. :func:`nearest_fill_reference` is the research
code's per-pixel search over all assigned pixels, kept only so the benchmark and the tests can
show that both agree and how much the transform saves.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def nearest_indices(assigned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel, the distance to and the (row, col) of the nearest assigned pixel.

    Returns ``(distance [H, W] float64, indices [2, H, W] intp)``; assigned pixels point at
    themselves with distance 0. ``assigned`` must contain at least one True.
    """
    assigned = np.asarray(assigned, dtype=bool)
    if assigned.ndim != 2:
        raise ValueError(f"assigned must be 2-D, got shape {assigned.shape}")
    if not assigned.any():
        raise ValueError("no assigned pixel to fill from")
    # edt measures the distance to the nearest zero, so the assigned pixels must be the zeros.
    distance, indices = ndimage.distance_transform_edt(~assigned, return_indices=True)
    return distance, indices


def nearest_fill(labels: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """Copy of ``labels`` where each unassigned pixel takes the label of the nearest assigned one.

    Ties (several assigned pixels at exactly the same distance) are broken by scipy's transform,
    which may pick another of the equidistant pixels than a row-major search would.
    """
    labels = np.asarray(labels)
    if labels.shape != np.shape(assigned):
        raise ValueError(f"labels {labels.shape} and assigned {np.shape(assigned)} differ in shape")
    _, (iy, ix) = nearest_indices(assigned)
    return labels[iy, ix]


def nearest_fill_reference(labels: np.ndarray, assigned: np.ndarray) -> np.ndarray:
    """Per-pixel nearest search, O(unassigned x assigned): the research code's approach.

    Only for speed comparisons and as an independent check of :func:`nearest_fill`; seconds per
    256x256 image, so never call it in the pipeline. Ties go to the first assigned pixel in
    row-major order.
    """
    labels = np.asarray(labels)
    assigned = np.asarray(assigned, dtype=bool)
    if not assigned.any():
        raise ValueError("no assigned pixel to fill from")
    out = labels.copy()
    src_y, src_x = np.nonzero(assigned)
    src_y = src_y.astype(np.float64)
    src_x = src_x.astype(np.float64)
    src_labels = labels[assigned]
    for y, x in zip(*np.nonzero(~assigned)):
        d2 = (src_y - y) ** 2 + (src_x - x) ** 2
        out[y, x] = src_labels[int(np.argmin(d2))]
    return out
