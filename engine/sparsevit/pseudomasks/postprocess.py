"""Pseudomasks from attention maps and class probabilities (Stage 2, model independent).

Every method takes arrays for ONE image - class probabilities ``probs [K]`` (after the sigmoid),
CLS->patch attention of the open heads ``head_maps [heads, h, w]`` at token resolution, and/or
per-class evidence ``class_maps [K, h, w]`` - and returns a :class:`PseudoMask` at the output
size ``(H, W)``. Nothing here knows about models; the caller runs the ViT.

Methods (see :data:`METHODS`):

``attention_faithful``
    The paper's rule: k-means of heads into n clusters, 2-means binarisation, classes assigned
    by ordering foreground means against probabilities, nearest fill.
``attention``
    Our candidate: the same clusters (or the heads themselves) assigned to classes by matching
    against per-class evidence maps.
``attention_weighted``
    No clustering: each predicted class gets an evidence-weighted average of the head maps;
    arg-max with an uncertainty margin.
``attention_class_tokens`` (:func:`from_class_attention`)
    Class-token models only: arg-max over the predicted classes' own class-token attention maps
    (Hanna & Borth 2025), fused (product) with a class activation map - the patch-head CAM of
    MCTformer-V2 when the model has one, else Grad-CAM. No clustering and no cluster-to-class
    assignment at all.
``gradcam`` (:func:`from_class_maps`)
    Arg-max over the predicted classes' normalised evidence maps: the Grad-CAM baseline.
``top1_fill``
    Every pixel the top-1 class: the trivial baseline any method must beat.

Common rules: the predicted set is ``probs >= threshold``; an empty set falls back to the top-1
class (``info["fallback"] == "top1"``) - images are never dropped; a single predicted class
covers the whole image.

Confidence and uncertainty
    ``confidence`` is in [0, 1], higher is more trustworthy, but its meaning depends on the path
    (it is a ranking within one image, not a calibrated probability):

    * attention methods with clusters/heads: the upsampled attention of the map that labelled the
      pixel (for filled pixels, the map whose label was copied in) - weak attention = weak claim;
    * ``attention_weighted``: the margin between the best and second-best class map;
    * ``gradcam``: the winning class's normalised evidence;
    * whole-image paths (n <= 1, top1_fill): the class probability, constant over the image.

    ``uncertain`` marks pixels that were filled from a neighbour rather than claimed by a map, or
    whose confidence is below ``min_confidence`` (a margin for ``attention_weighted``); refinement
    should treat them as ignore - :meth:`PseudoMask.with_ignore`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..schemes import IGNORE
from .assignment import assign_by_matching, assign_by_order, correlation_matrix, predicted_classes
from .fill import nearest_indices
from .maps import binarise_2means, cluster_heads, normalise_max, normalise_minmax, resize_bilinear, single_threaded


@dataclass
class PseudoMask:
    """One image's pseudomask.

    ``labels [H, W]``: a class index at every pixel (uint8 while K <= 255, else int32);
    ``confidence [H, W]`` float32 in [0, 1]; ``uncertain [H, W]`` bool; ``info``: JSON-safe
    facts about how the mask was made (method, predicted classes, fallback, clusters, ...).
    """

    labels: np.ndarray
    confidence: np.ndarray
    uncertain: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def with_ignore(self, ignore_index: int = IGNORE) -> np.ndarray:
        """Labels with uncertain pixels set to ``ignore_index`` (for training on the mask)."""
        dtype = self.labels.dtype if ignore_index <= np.iinfo(self.labels.dtype).max else np.int32
        out = self.labels.astype(dtype, copy=True)
        out[self.uncertain] = ignore_index
        return out


# --- input checks --------------------------------------------------------------------------

def _size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        H, W = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (H, W), got {size!r}") from None
    if H <= 0 or W <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return H, W


def _probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"probs must be [K], got shape {p.shape}")
    return p


def _stack(maps: np.ndarray, name: str, count: int | None = None) -> np.ndarray:
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"{name} must be [N, h, w], got shape {m.shape}")
    if count is not None and m.shape[0] != count:
        raise ValueError(f"{name} has {m.shape[0]} maps, expected {count} (one per class)")
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return m


def _label_dtype(num_classes: int) -> type:
    # 255 stays free for "ignore"
    return np.uint8 if num_classes <= IGNORE else np.int32


def _base_info(method: str, probs: np.ndarray, classes: np.ndarray, fallback: str | None,
               threshold: float) -> dict[str, Any]:
    return {"method": method, "threshold": float(threshold),
            "predicted_classes": [int(c) for c in classes] if fallback is None else [],
            "n_predicted": 0 if fallback else int(len(classes)),
            "fallback": fallback, "top1": int(np.argmax(probs))}


def _whole_image(cls: int, probs: np.ndarray, size: tuple[int, int], info: dict,
                 uncertain: bool = False) -> PseudoMask:
    H, W = size
    labels = np.full((H, W), cls, dtype=_label_dtype(len(probs)))
    conf = np.full((H, W), float(np.clip(probs[cls], 0, 1)), dtype=np.float32)
    unc = np.full((H, W), uncertain, dtype=bool)
    info.update(assigned_fraction=0.0 if uncertain else 1.0,
                uncertain_fraction=1.0 if uncertain else 0.0,
                classes_present=[int(cls)])
    return PseudoMask(labels, conf, unc, info)


def _start(method: str, probs, size, threshold):
    probs = _probs(probs)
    size = _size(size)
    classes, fallback = predicted_classes(probs, threshold)
    return probs, size, classes, fallback, _base_info(method, probs, classes, fallback, threshold)


def _paint_and_fill(up: np.ndarray, fg: np.ndarray, fg_mean: np.ndarray, map_class: np.ndarray,
                    probs: np.ndarray, size: tuple[int, int], info: dict,
                    min_confidence: float) -> PseudoMask:
    """Paint foregrounds weakest first (strongest wins overlaps), fill the rest, score pixels."""
    H, W = size
    K = len(probs)
    owner = np.full((H, W), -1, dtype=np.int64)  # index of the map that claimed the pixel
    for m in np.argsort(fg_mean, kind="stable"):
        if map_class[m] >= 0:
            owner[fg[m]] = m
    assigned = owner >= 0
    info["foreground_means"] = [float(v) for v in fg_mean]
    info["map_classes"] = [int(c) for c in map_class]
    if not assigned.any():
        info["fallback"] = info["fallback"] or "top1_nothing_assigned"
        return _whole_image(int(np.argmax(probs)), probs, size, info, uncertain=True)
    _, (iy, ix) = nearest_indices(assigned)
    owner = owner[iy, ix]
    labels = map_class[owner].astype(_label_dtype(K))
    rows, cols = np.indices((H, W), sparse=True)
    conf = np.clip(up[owner, rows, cols], 0.0, 1.0).astype(np.float32)
    uncertain = ~assigned | (conf < min_confidence)
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=K))
    info.update(assigned_fraction=float(assigned.mean()),
                uncertain_fraction=float(uncertain.mean()),
                classes_present=[int(c) for c in present],
                unassigned_classes=[c for c in info["predicted_classes"] if c not in set(present)])
    return PseudoMask(labels, conf, uncertain, info)


def _class_evidence(class_maps: np.ndarray, classes: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    ev = class_maps[classes]
    if ev.shape[1:] != grid:
        ev = resize_bilinear(ev, grid)
    return ev


def _one_thread(func: Callable[..., PseudoMask]) -> Callable[..., PseudoMask]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> PseudoMask:
        with single_threaded():
            return func(*args, **kwargs)
    return wrapper


# --- methods --------------------------------------------------------------------------------

@_one_thread
def attention_faithful(head_maps: np.ndarray, probs: np.ndarray, size: tuple[int, int],
                       threshold: float = 0.5, *, random_state: int = 0, n_init: int = 4,
                       min_confidence: float = 0.0) -> PseudoMask:
    """The paper's pseudomask: cluster heads, binarise, assign classes by ordering, fill.

    ``head_maps [heads, h, w]``: CLS->patch attention of the open heads at token resolution.
    With fewer distinct heads than predicted classes only as many clusters are made
    (``info["n_clusters"]``) and the least probable classes get none; with no open head the
    image falls back to the top-1 class (all pixels uncertain).
    """
    probs, size, classes, fallback, info = _start("attention_faithful", probs, size, threshold)
    if len(classes) == 1:
        return _whole_image(int(classes[0]), probs, size, info)
    maps = normalise_max(_stack(head_maps, "head_maps"))
    clusters, _, cinfo = cluster_heads(maps, len(classes), random_state, n_init)
    info.update(cinfo)
    up = resize_bilinear(clusters, size)
    fg, fg_mean = binarise_2means(up)
    map_class = assign_by_order(fg_mean, classes)
    return _paint_and_fill(up, fg, fg_mean, map_class, probs, size, info, min_confidence)


@_one_thread
def attention(head_maps: np.ndarray, probs: np.ndarray, class_maps: np.ndarray,
              size: tuple[int, int], threshold: float = 0.5, *, mode: str = "clusters",
              random_state: int = 0, n_init: int = 4,
              min_confidence: float = 0.0) -> PseudoMask:
    """Attention pseudomask with classes assigned by matching against evidence maps.

    ``class_maps [K, h', w']``: per-class evidence for all K classes (only the predicted rows
    are read; resized to the head grid if needed). ``mode="clusters"`` clusters the heads as the
    paper does and matches clusters to classes; ``mode="heads"`` skips k-means and matches the
    heads themselves, each predicted class taking its best distinct head. Matching maximises
    summed Pearson correlation at token resolution. Painting and fill follow the faithful method.
    """
    if mode not in ("clusters", "heads"):
        raise ValueError(f"mode must be 'clusters' or 'heads', got {mode!r}")
    probs, size, classes, fallback, info = _start("attention", probs, size, threshold)
    info["mode"] = mode
    class_maps = _stack(class_maps, "class_maps", len(probs))
    if len(classes) == 1:
        return _whole_image(int(classes[0]), probs, size, info)
    maps = normalise_max(_stack(head_maps, "head_maps"))
    if mode == "clusters":
        cand, _, cinfo = cluster_heads(maps, len(classes), random_state, n_init)
        info.update(cinfo)
    else:
        cand = maps
        info.update(n_heads=int(len(maps)))
    evidence = _class_evidence(class_maps, classes, maps.shape[1:])
    map_class, sim = assign_by_matching(cand, evidence, classes)
    info["similarity"] = [[round(float(v), 6) for v in row] for row in sim]
    used = map_class >= 0
    cand, map_class = cand[used], map_class[used]  # unmatched heads do not paint
    up = resize_bilinear(cand, size)
    fg, fg_mean = binarise_2means(up)
    return _paint_and_fill(up, fg, fg_mean, map_class, probs, size, info, min_confidence)


@_one_thread
def attention_weighted(head_maps: np.ndarray, probs: np.ndarray, class_maps: np.ndarray,
                       size: tuple[int, int], threshold: float = 0.5, *,
                       margin: float = 0.1) -> PseudoMask:
    """No clustering: per predicted class, the evidence-weighted mean of the head maps.

    Weight of head h for class c = max(0, corr(head_h, evidence_c)); a class no head
    correlates with positively uses its own evidence map. Each class map is rescaled to [0, 1]
    and upsampled; the pixel takes the arg-max class, and its confidence is the margin to the
    runner-up. Pixels with margin < ``margin`` are uncertain (the "background" where no class
    clearly wins).
    """
    probs, size, classes, fallback, info = _start("attention_weighted", probs, size, threshold)
    class_maps = _stack(class_maps, "class_maps", len(probs))
    if len(classes) == 1:
        return _whole_image(int(classes[0]), probs, size, info)
    maps = normalise_max(_stack(head_maps, "head_maps"))
    evidence = _class_evidence(class_maps, classes, maps.shape[1:])
    n_heads = len(maps)
    weights = np.maximum(correlation_matrix(evidence, maps), 0.0) if n_heads else np.zeros((len(classes), 0))
    total = weights.sum(axis=1)
    own = total <= 0
    combined = np.empty_like(evidence)
    if (~own).any():
        combined[~own] = np.einsum("ch,hyx->cyx", weights[~own] / total[~own, None], maps)
    combined[own] = evidence[own]
    combined = normalise_minmax(combined)
    up = resize_bilinear(combined, size)
    order = np.argsort(-up, axis=0, kind="stable")
    best = order[0]
    rows, cols = np.indices(size, sparse=True)
    top = up[best, rows, cols]
    second = up[order[1], rows, cols]
    conf = np.clip(top - second, 0.0, 1.0).astype(np.float32)
    labels = classes[best].astype(_label_dtype(len(probs)))
    uncertain = conf < margin
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=len(probs)))
    info.update(n_heads=int(n_heads), margin=float(margin),
                classes_from_own_evidence=[int(c) for c in classes[own]],
                head_weights=[[round(float(v), 6) for v in row] for row in weights],
                assigned_fraction=float((~uncertain).mean()),
                uncertain_fraction=float(uncertain.mean()),
                classes_present=[int(c) for c in present],
                unassigned_classes=[int(c) for c in classes if c not in set(present)])
    return PseudoMask(labels, conf, uncertain, info)


@_one_thread
def from_class_maps(class_maps: np.ndarray, probs: np.ndarray, size: tuple[int, int],
                    threshold: float = 0.5, *, min_confidence: float = 0.0) -> PseudoMask:
    """Grad-CAM-style pseudomask: arg-max over the predicted classes' evidence maps.

    Each predicted class's map is clipped at 0 (Grad-CAM's ReLU) and divided by its maximum,
    then upsampled. Confidence is the winning normalised value; below ``min_confidence`` the
    pixel is uncertain (no class has evidence there).
    """
    return _argmax_of_maps("gradcam", class_maps, "class_maps", probs, size, threshold, min_confidence)


@_one_thread
def from_class_attention(class_attention: np.ndarray, probs: np.ndarray, size: tuple[int, int],
                         threshold: float = 0.5, *, class_maps: np.ndarray | None = None,
                         fuse: bool = True, attention_power: float = 1.0,
                         min_confidence: float = 0.0) -> PseudoMask:
    """Class-token pseudomask: arg-max over the predicted classes' class-token attention maps.

    ``class_attention [K, h, w]``: class token c's attention to the patches (open heads, last
    blocks). ``class_maps [K, h', w']`` (optional): a CAM of every class; with ``fuse`` each
    predicted class's map is attention ** ``attention_power`` x CAM, both clipped at 0 and
    divided by their maximum; ``attention_power=0`` is the CAM alone (the benchmark's control
    for what the attention adds). Confidence as in Grad-CAM.
    """
    fused = None
    if fuse and class_maps is not None:
        att = _stack(class_attention, "class_attention", len(_probs(probs)))
        cam = _class_evidence(_stack(class_maps, "class_maps", len(att)), np.arange(len(att)),
                              att.shape[1:])
        fused = normalise_max(np.maximum(att, 0.0)) ** attention_power * normalise_max(np.maximum(cam, 0.0))
    pm = _argmax_of_maps("attention_class_tokens", class_attention if fused is None else fused,
                         "class_attention", probs, size, threshold, min_confidence)
    pm.info["fused_with_cam"] = fused is not None
    pm.info["attention_power"] = float(attention_power) if fused is not None else 1.0
    return pm


def _argmax_of_maps(method: str, class_maps: np.ndarray, name: str, probs: np.ndarray,
                    size: tuple[int, int], threshold: float, min_confidence: float) -> PseudoMask:
    probs, size, classes, fallback, info = _start(method, probs, size, threshold)
    class_maps = _stack(class_maps, name, len(probs))
    if len(classes) == 1:
        return _whole_image(int(classes[0]), probs, size, info)
    ev = normalise_max(np.maximum(class_maps[classes], 0.0))
    up = resize_bilinear(ev, size)
    best = np.argmax(up, axis=0)  # ties -> the more probable class (classes are sorted)
    rows, cols = np.indices(size, sparse=True)
    conf = np.clip(up[best, rows, cols], 0.0, 1.0).astype(np.float32)
    labels = classes[best].astype(_label_dtype(len(probs)))
    uncertain = conf < min_confidence
    present = np.flatnonzero(np.bincount(labels.ravel(), minlength=len(probs)))
    info.update(assigned_fraction=float((~uncertain).mean()),
                uncertain_fraction=float(uncertain.mean()),
                classes_present=[int(c) for c in present],
                unassigned_classes=[int(c) for c in classes if c not in set(present)])
    return PseudoMask(labels, conf, uncertain, info)


@_one_thread
def top1_fill(probs: np.ndarray, size: tuple[int, int]) -> PseudoMask:
    """Every pixel the most probable class (the trivial baseline)."""
    probs = _probs(probs)
    size = _size(size)
    classes, _ = predicted_classes(probs, threshold=np.inf)
    info = {"method": "top1_fill", "fallback": None, "top1": int(classes[0])}
    return _whole_image(int(classes[0]), probs, size, info)


def _needs(*names: str) -> Callable[[dict], None]:
    def check(given: dict) -> None:
        missing = [n for n in names if given.get(n) is None]
        if missing:
            raise ValueError(f"this method needs {', '.join(missing)}")
    return check


@dataclass(frozen=True)
class PseudomaskMethod:
    """One entry of :data:`METHODS`: how a method is called and what evidence it reads.

    ``needs``: the evidence it cannot run without (``head_maps``, ``class_maps``,
    ``class_attention``); ``heads``: it reads per-head attention (the classifier must return
    attention); ``gradcam``: it reads Grad-CAM class maps; ``class_tokens``: it needs a
    class-token classifier; ``call(ev, probs, size, options)`` runs it on the evidence dict.
    """

    name: str
    call: Callable[[dict, np.ndarray, tuple[int, int], dict], PseudoMask]
    needs: tuple[str, ...] = ()
    heads: bool = False
    gradcam: bool = False
    class_tokens: bool = False


#: every pseudomask method by name, in the order the CLI lists them (``register_method``)
METHODS: dict[str, PseudomaskMethod] = {}


def register_method(name: str, call, **props: Any) -> None:
    METHODS[name] = PseudomaskMethod(name, call, **props)


register_method("top1_fill", lambda ev, probs, size, o: top1_fill(probs, size))
register_method("gradcam", lambda ev, probs, size, o: from_class_maps(ev["class_maps"], probs, size, **o),
                needs=("class_maps",), gradcam=True)
register_method("attention_faithful",
                lambda ev, probs, size, o: attention_faithful(ev["head_maps"], probs, size, **o),
                needs=("head_maps",), heads=True)
register_method("attention",
                lambda ev, probs, size, o: attention(ev["head_maps"], probs, ev["class_maps"], size, **o),
                needs=("head_maps", "class_maps"), heads=True, gradcam=True)
register_method("attention_weighted",
                lambda ev, probs, size, o: attention_weighted(ev["head_maps"], probs, ev["class_maps"], size, **o),
                needs=("head_maps", "class_maps"), heads=True, gradcam=True)
# class maps are optional here: the patch-head CAM (or Grad-CAM without a patch head) it fuses with
register_method("attention_class_tokens",
                lambda ev, probs, size, o: from_class_attention(ev["class_attention"], probs, size,
                                                                class_maps=ev["class_maps"], **o),
                needs=("class_attention",), heads=True, class_tokens=True)


def make_pseudomask(method: str, probs: np.ndarray, size: tuple[int, int], *,
                    head_maps: np.ndarray | None = None, class_maps: np.ndarray | None = None,
                    class_attention: np.ndarray | None = None, **options: Any) -> PseudoMask:
    """Dispatch by method name (for the CLI and batch drivers); ``options`` go to the method."""
    if method not in METHODS:
        raise ValueError(f"unknown pseudomask method {method!r}; choose one of {sorted(METHODS)}")
    entry = METHODS[method]
    ev = {"head_maps": head_maps, "class_maps": class_maps, "class_attention": class_attention}
    _needs(*entry.needs)(ev)
    return entry.call(ev, probs, size, options)
