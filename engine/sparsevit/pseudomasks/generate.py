"""Pseudomasks for whole datasets or raster tiles: classifier pass + post-processing + relabel.

Every image yields a result for every requested method - images with no confident class fall
back to top-1 inside the methods, and an image whose post-processing raises is recorded as a
failure (``info["error"]``) with a top-1 mask, never dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from ..models.vit import SparseViT
from ..progress import Progress, null_progress
from .extract import ClassifierEvidence, classifier_evidence
from .postprocess import IGNORE, METHODS, PseudoMask, make_pseudomask, top1_fill

NEEDS_HEADS = frozenset(m for m, e in METHODS.items() if e.heads)
NEEDS_CLASS_TOKENS = frozenset(m for m, e in METHODS.items() if e.class_tokens)
NEEDS_GRADCAM = frozenset(m for m, e in METHODS.items() if e.gradcam)


@dataclass
class PseudomaskOptions:
    methods: Sequence[str] = ("top1_fill", "gradcam", "attention_faithful", "attention")
    threshold: float = 0.5
    attn_blocks: int = 1  # CLS attention of the open heads of the last K blocks
    relabel: Sequence[str] = ()  # methods whose masks also get the relabel pass
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)


def needs_gradcam(methods: Iterable[str], model: SparseViT) -> bool:
    """Grad-CAM is computed only when a method reads it; the class-token method fuses with the
    patch-head CAM instead when the model has one."""
    methods = set(methods)
    return bool(methods & NEEDS_GRADCAM) or bool(methods & NEEDS_CLASS_TOKENS and model.patch_head is None)


def probs_from_image_labels(probs: np.ndarray, labels: np.ndarray, threshold: float) -> np.ndarray:
    """Class scores that make the predicted set exactly the KNOWN image-level labels.

    For training scenes the weak labels are given, so the pseudomask should use them rather
    than the classifier's guess (standard WSSS practice; the classifier's errors would otherwise
    be baked into the masks). Labelled classes are lifted into [threshold, 1] and unlabelled
    ones pushed below the threshold, each group keeping the classifier's order, because the
    faithful rule assigns clusters by that order. An image with no label keeps its own scores.
    """
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return probs
    p = np.clip(np.asarray(probs, dtype=np.float64), 0.0, 1.0)
    return np.where(labels, threshold + (1.0 - threshold) * p, 0.999 * threshold * p)


def pseudomasks_for_batch(model: SparseViT, x: torch.Tensor, opts: PseudomaskOptions,
                          image_labels: np.ndarray | None = None
                          ) -> tuple[list[dict[str, PseudoMask]], ClassifierEvidence]:
    """``x``: normalised batch [B,C,H,W]. Returns one {method: PseudoMask} per image.

    ``image_labels [B, K]`` (multi-hot, optional): the known labels of training scenes; the
    masks then use exactly those classes (:func:`probs_from_image_labels`)."""
    methods = list(opts.methods)
    if not model.config.class_tokens and NEEDS_CLASS_TOKENS.intersection(methods):
        raise ValueError("pseudomask method attention_class_tokens needs a classifier trained with "
                         "class tokens (model config class_tokens=true); choose another method "
                         "or train one with `sparsevit train --class-tokens`")
    need_heads = any(m in NEEDS_HEADS for m in methods)
    need_cam = needs_gradcam(methods, model)
    ev = classifier_evidence(model, x, attn_blocks=opts.attn_blocks if need_heads else 0,
                             gradcam=need_cam)
    size = tuple(x.shape[-2:])
    out = []
    for i in range(x.shape[0]):
        per = {}
        probs = ev.probs[i] if image_labels is None else probs_from_image_labels(
            ev.probs[i], image_labels[i], opts.threshold)
        for m in methods:
            try:
                pm = make_pseudomask(m, probs, size, **ev.maps_for(m, i), threshold=opts.threshold,
                                     **opts.method_options.get(m, {}))
            except ValueError as exc:  # keep the image: top-1 mask, all uncertain, reason kept
                pm = top1_fill(probs, size)
                pm.uncertain[:] = True
                pm.info.update(error=str(exc), fallback="error_top1")
            per[m] = pm
        for m in opts.relabel:
            if m in per:
                per[f"{m}_relabel"] = relabel(model, x[i], per[m], allowed=None if image_labels is None
                                              else np.flatnonzero(image_labels[i]))
        out.append(per)
    return out, ev


@torch.no_grad()
def relabel(model: SparseViT, x: torch.Tensor, mask: PseudoMask, batch_size: int = 16,
            allowed: np.ndarray | None = None) -> PseudoMask:
    """Step 7 of the paper: classify each label region on its own and give it the arg-max class.

    ``allowed``: class indices a region may take (the known image labels of a training scene);
    None allows every class.
    Outside the region the normalised input is set to 0, i.e. the training-set mean of every
    band: a neutral value, where raw zeros would look like a no-data hole to the classifier.
    """
    labels = mask.labels
    regions = [int(v) for v in np.unique(labels) if v != IGNORE]
    new = labels.copy()
    info = dict(mask.info, relabel={})
    if len(regions) <= 1:
        info["relabel"] = {"skipped": "single region"}
        return PseudoMask(new, mask.confidence.copy(), mask.uncertain.copy(), info)
    keep = torch.stack([torch.as_tensor(labels == r) for r in regions])  # [R,H,W]
    probs = []
    for j in range(0, len(regions), batch_size):
        xb = x.unsqueeze(0) * keep[j:j + batch_size].unsqueeze(1).to(x.dtype)
        probs.append(torch.sigmoid(model(xb)))
    probs = torch.cat(probs).numpy()
    if allowed is not None and len(allowed):
        blocked = np.ones(probs.shape[1], dtype=bool)
        blocked[np.asarray(allowed, dtype=int)] = False
        probs[:, blocked] = -1.0
    for r, p in zip(regions, probs):
        c = int(np.argmax(p))
        new[labels == r] = c
        info["relabel"][str(r)] = c
    return PseudoMask(new, mask.confidence.copy(), mask.uncertain.copy(), info)


def iter_dataset_pseudomasks(model: SparseViT, normalizer, dataset: Any, opts: PseudomaskOptions,
                             batch_size: int = 16, use_s1: bool = False,
                             progress: Progress | None = None, indices: Iterable[int] | None = None,
                             use_image_labels: bool = False
                             ) -> Iterator[tuple[Any, dict[str, PseudoMask]]]:
    """Yield ``(sample, {method: PseudoMask})`` for every sample, in order.

    ``use_image_labels``: build the masks from each sample's known image-level labels (training
    scenes) instead of the classifier's predicted set."""
    progress = progress or null_progress()
    idx = list(range(len(dataset))) if indices is None else list(indices)
    with progress.stage("pseudomasks", total=len(idx)) as st:
        for j in range(0, len(idx), batch_size):
            samples = [dataset[i] for i in idx[j:j + batch_size]]
            x = torch.stack([normalizer(s.s2, s.s1 if use_s1 else None) for s in samples])
            labels = np.stack([s.labels for s in samples]) if use_image_labels else None
            masks, _ = pseudomasks_for_batch(model, x, opts, labels)
            for s, m in zip(samples, masks):
                yield s, m
            st.advance(len(samples))
