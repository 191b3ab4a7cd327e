"""Array operations on attention / evidence maps: normalise, cluster, resize, binarise.

All functions take stacks of maps ``[C, h, w]`` and work on the whole stack at once.
"""
from __future__ import annotations

import warnings

import numpy as np


def flatten_maps(maps: np.ndarray) -> np.ndarray:
    """``[C, h, w] -> [C, h*w]``, also for an empty stack (reshape(-1) fails on size 0)."""
    return maps.reshape(maps.shape[0], int(np.prod(maps.shape[1:], dtype=np.int64)))


def normalise_max(maps: np.ndarray) -> np.ndarray:
    """Divide each map by its maximum (the paper's per-head normalisation).

    Maps whose maximum is not positive (all-zero or all-negative heads) become all zero rather
    than NaN or sign-flipped: they carry no "attended" region.
    """
    maps = np.asarray(maps, dtype=np.float64)
    peak = flatten_maps(maps).max(axis=1) if maps.shape[0] else np.zeros(0)
    out = np.zeros_like(maps)
    ok = peak > 0
    out[ok] = maps[ok] / peak[ok, None, None]
    return out


def normalise_minmax(maps: np.ndarray) -> np.ndarray:
    """Rescale each map to [0, 1]; constant maps become all zero."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.shape[0] == 0:
        return maps.copy()
    flat = flatten_maps(maps)
    lo = flat.min(axis=1)
    span = flat.max(axis=1) - lo
    out = np.zeros_like(maps)
    ok = span > 0
    out[ok] = (maps[ok] - lo[ok, None, None]) / span[ok, None, None]
    return out


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` interpolation weights along one axis.

    Pixel-centre aligned with edge clamping, i.e. the same as
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` when upsampling.
    """
    scale = n_in / n_out
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    src = np.clip(src, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, lo), 1 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def resize_bilinear(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a stack ``[C, h, w]`` to ``[C, H, W]`` with separable bilinear weights.

    Two small matrix products instead of a generic zoom: the whole stack of cluster maps is
    upsampled in one call at a fraction of a millisecond for 16x16 -> 256x256.
    """
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be [C, h, w], got shape {maps.shape}")
    H, W = int(size[0]), int(size[1])
    if maps.shape[1:] == (H, W):
        return maps.copy()
    my = bilinear_matrix(maps.shape[1], H)
    mx = bilinear_matrix(maps.shape[2], W)
    return np.matmul(np.matmul(my, maps), mx.T)


def binarise_2means(maps: np.ndarray, bins: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """1-D 2-means of each map's values: ``(foreground [C, ...] bool, foreground_mean [C])``.

    In 1-D the optimal 2-means split is a threshold, and minimising the within-group sum of
    squares equals maximising ``n1 * n2 * (mean1 - mean2)**2`` (Otsu). The threshold is searched
    exhaustively over ``bins`` evenly spaced levels of each map's range (group means use the
    exact values), so this is the global optimum to 1/``bins`` of the range - unlike Lloyd
    iterations, which may stop in a local one - and costs two bincounts instead of a sort.
    Foreground is the higher group. A constant map has no split: its foreground is empty and its
    "foreground mean" is the constant, so it never claims a pixel.
    """
    maps = np.asarray(maps, dtype=np.float64)
    C = maps.shape[0]
    flat = flatten_maps(maps)
    N = flat.shape[1]
    lo = flat.min(axis=1) if C else np.zeros(0)
    span = flat.max(axis=1) - lo if C else np.zeros(0)
    constant = span <= 0
    scale = np.where(constant, 0.0, bins / np.where(constant, 1.0, span))
    level = flat - lo[:, None]
    level *= scale[:, None]
    q = level.astype(np.int32)  # values are >= 0, so truncation is floor
    np.minimum(q, bins - 1, out=q)
    idx = (q + (np.arange(C, dtype=np.int32) * bins)[:, None]).ravel()
    counts = np.bincount(idx, minlength=C * bins).reshape(C, bins)
    sums = np.bincount(idx, weights=flat.ravel(), minlength=C * bins).reshape(C, bins)
    n1 = np.cumsum(counts, axis=1)[:, :-1].astype(np.float64)  # low group = bins 0..b
    s1 = np.cumsum(sums, axis=1)[:, :-1]
    total = sums.sum(axis=1, keepdims=True)
    n2 = N - n1
    valid = (n1 > 0) & (n2 > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = s1 / n1 - (total - s1) / n2
        score = np.where(valid, n1 * n2 * diff * diff, -1.0)
    best = np.argmax(score, axis=1) if bins > 1 else np.zeros(C, dtype=int)
    fg = q > best[:, None]
    fg[constant] = False
    # foreground statistics straight from the histograms: no second pass over the pixels
    upper = np.arange(bins)[None, :] > best[:, None]
    n_fg = np.where(upper, counts, 0).sum(axis=1)
    fg_sum = np.where(upper, sums, 0.0).sum(axis=1)
    n_fg[constant] = 0
    fg_mean = np.where(n_fg > 0, fg_sum / np.maximum(n_fg, 1), lo + span)
    return fg.reshape(maps.shape), fg_mean


def cluster_heads(maps: np.ndarray, n_clusters: int, random_state: int = 0,
                  n_init: int = 4) -> tuple[np.ndarray, np.ndarray, dict]:
    """k-means of head maps (heads are the samples, token-resolution pixels the features).

    Returns ``(cluster_maps [C, h, w], head_cluster [heads], info)`` with ``C <= n_clusters``:
    k-means cannot make more clusters than there are distinct heads, so C is capped at that
    number and ``info["n_clusters"]`` says what was used (the caller decides what to do with
    classes left without a cluster). Cluster maps are the mean of their heads' maps.
    """
    maps = np.asarray(maps, dtype=np.float64)
    n_heads = maps.shape[0]
    flat = flatten_maps(maps)
    distinct = len(np.unique(flat, axis=0)) if n_heads else 0
    C = int(min(n_clusters, n_heads, distinct))
    info = {"n_clusters_requested": int(n_clusters), "n_clusters": C, "n_heads": int(n_heads),
            "n_distinct_heads": int(distinct)}
    if C == 0:
        return np.zeros((0,) + maps.shape[1:]), np.zeros(0, dtype=int), info
    if C == 1:
        assign = np.zeros(n_heads, dtype=int)
    elif C == n_heads:
        # one head per cluster: k-means would return exactly this partition, slower
        assign = np.arange(n_heads)
    else:
        from sklearn.cluster import KMeans
        with warnings.catch_warnings(), single_threaded():
            # near-duplicate heads can still trigger sklearn's "fewer distinct points" warning
            warnings.simplefilter("ignore")
            km = KMeans(n_clusters=C, n_init=n_init, random_state=random_state).fit(flat)
        assign = km.labels_.astype(int)
    counts = np.bincount(assign, minlength=C)
    sums = np.zeros((C, flat.shape[1]))
    np.add.at(sums, assign, flat)
    keep = counts > 0
    cluster_maps = (sums[keep] / counts[keep, None]).reshape((-1,) + maps.shape[1:])
    if not keep.all():  # empty clusters: renumber so head_cluster indexes cluster_maps
        remap = np.cumsum(keep) - 1
        assign = remap[assign]
        info["n_clusters"] = int(keep.sum())
    return cluster_maps, assign, info


_CONTROLLER = None


def single_threaded():
    """Context limiting BLAS/OpenMP pools to one thread, cheaply (~10 us once set up).

    Per-image post-processing works on tiny arrays (36 x 256 k-means, 16 -> 256 matrix
    products), where thread start-up and spin-waits cost more than the work: measured 4 vs
    96 ms for the k-means and 0.3 vs 4 ms for the upsampling on a busy 2-core machine. Parallelise
    across images instead. The limit is process-wide while active, so a concurrent thread
    running BLAS is limited too for those milliseconds.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        import sklearn.cluster  # noqa: F401  (loads sklearn's OpenMP runtime so it is seen)
        from threadpoolctl import ThreadpoolController
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER.limit(limits=1)
