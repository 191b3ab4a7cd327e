"""Segmentation scores from a streaming confusion matrix.

Conventions (used for every table the project reports):

* Pixels whose *target* is ``ignore_index`` are not scored at all.
* Predictions outside ``[0, num_classes)`` (e.g. 255 = "uncertain" in a pseudomask) on a scored
  pixel count as *no prediction*: a miss for the target class (lowers its recall and IoU) but a
  false positive for no class. They are kept in an extra column, so nothing is silently dropped.
* A class absent from both prediction and target has IoU/F1 = NaN and is excluded from mIoU and
  mean F1; a class with no target pixels has recall NaN and is excluded from average accuracy
  (its false positives still count: its IoU is 0, and the pixels it took are misses for their
  true classes).
* :meth:`ConfusionMatrix.scores` returns plain Python types; ``json_safe=True`` turns NaN into
  ``None`` so the result is strict JSON.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np


class ConfusionMatrix:
    """``matrix[t, p]`` = number of scored pixels with target class t and prediction p.

    Column ``num_classes`` holds scored pixels without a valid prediction.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255,
                 class_names: Sequence[str] | None = None):
        if num_classes < 1:
            raise ValueError("num_classes must be at least 1")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.matrix = np.zeros((num_classes, num_classes + 1), dtype=np.int64)

    # --- accumulation -----------------------------------------------------------------------
    def update(self, pred: np.ndarray, target: np.ndarray) -> "ConfusionMatrix":
        """Add one prediction/target pair (any shape, same shape, integer classes)."""
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
        K = self.num_classes
        t = target.reshape(-1).astype(np.int64, copy=False)
        p = pred.reshape(-1).astype(np.int64, copy=False)
        if self.ignore_index is not None:
            keep = t != self.ignore_index
            t, p = t[keep], p[keep]
        if t.size and (t.min() < 0 or t.max() >= K):
            bad = np.unique(t[(t < 0) | (t >= K)])[:5].tolist()
            raise ValueError(f"target has values {bad} outside 0..{K - 1} that are not the "
                             f"ignore index {self.ignore_index}: map them first")
        p = np.where((p < 0) | (p >= K), K, p)
        self.matrix += np.bincount(t * (K + 1) + p, minlength=K * (K + 1)).reshape(K, K + 1)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix's counts into this one (e.g. from parallel workers)."""
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError("cannot merge confusion matrices with different classes or ignore index")
        self.matrix += other.matrix
        return self

    def copy(self) -> "ConfusionMatrix":
        out = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)
        out.matrix = self.matrix.copy()
        return out

    @property
    def total(self) -> int:
        return int(self.matrix.sum())

    # --- scores -----------------------------------------------------------------------------
    def scores(self, json_safe: bool = False) -> dict[str, Any]:
        """mIoU, OA, AA, mean F1 and per-class IoU, F1, precision, recall, support."""
        K = self.num_classes
        m = self.matrix.astype(np.float64)
        tp = np.diag(m[:, :K])
        support = m.sum(axis=1)  # target pixels per class, including unpredicted ones
        predicted = m[:, :K].sum(axis=0)
        fp = predicted - tp
        fn = support - tp
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = tp / (tp + fp + fn)
            f1 = 2 * tp / (2 * tp + fp + fn)
            precision = tp / predicted
            recall = tp / support
        total = m.sum()
        present = (support + predicted) > 0

        def mean(values: np.ndarray) -> float:
            finite = values[~np.isnan(values)]
            return float(finite.mean()) if finite.size else float("nan")

        out: dict[str, Any] = {
            "miou": mean(iou),
            "overall_accuracy": float(tp.sum() / total) if total else float("nan"),
            "average_accuracy": mean(recall),
            "mean_f1": mean(f1),
            "pixels": int(total),
            "unpredicted_pixels": int(m[:, K].sum()),
            "classes_scored": int(present.sum()),
            "per_class": {
                "iou": iou.tolist(), "f1": f1.tolist(), "precision": precision.tolist(),
                "recall": recall.tolist(), "support": [int(s) for s in support],
                "predicted": [int(s) for s in predicted],
            },
            "confusion_matrix": self.matrix[:, :K].tolist(),
            "unpredicted_per_class": self.matrix[:, K].tolist(),
            "num_classes": K,
            "ignore_index": self.ignore_index,
        }
        if self.class_names is not None:
            out["class_names"] = list(self.class_names)
        return json_sanitize(out) if json_safe else out


def json_sanitize(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_sanitize(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_sanitize(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class EvaluationSet:
    """Scores over a whole split, keeping account of every image.

    ``add`` scores an image; ``add_failure`` records one the method could not handle - if its
    target is given, all its scored pixels count as unpredicted misses, so failures lower the
    scores instead of vanishing from them. Images whose pseudomask fell back (``info["fallback"]``)
    are scored normally and counted separately.
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255,
                 class_names: Sequence[str] | None = None):
        self.cm = ConfusionMatrix(num_classes, ignore_index, class_names)
        self.images: list[dict[str, Any]] = []
        self._ids: set[str] = set()

    def _register(self, image_id: Any) -> str:
        key = str(image_id)
        if key in self._ids:
            raise ValueError(f"image {key!r} was already added")
        self._ids.add(key)
        return key

    def add(self, image_id: Any, pred: np.ndarray, target: np.ndarray,
            info: dict[str, Any] | None = None) -> dict[str, Any]:
        key = self._register(image_id)
        one = ConfusionMatrix(self.cm.num_classes, self.cm.ignore_index).update(pred, target)
        self.cm.merge(one)
        fallback = (info or {}).get("fallback")
        pixels = one.total
        record = {"id": key, "status": "fallback" if fallback else "ok", "fallback": fallback,
                  "pixels": pixels,
                  "accuracy": float(np.trace(one.matrix[:, :-1]) / pixels) if pixels else None}
        self.images.append(record)
        return record

    def add_failure(self, image_id: Any, reason: str,
                    target: np.ndarray | None = None) -> dict[str, Any]:
        key = self._register(image_id)
        pixels = 0
        if target is not None:
            target = np.asarray(target)
            miss = np.full(target.shape, -1, dtype=np.int64)
            one = ConfusionMatrix(self.cm.num_classes, self.cm.ignore_index).update(miss, target)
            self.cm.merge(one)
            pixels = one.total
        record = {"id": key, "status": "failed", "reason": str(reason), "pixels": pixels,
                  "accuracy": 0.0 if pixels else None}
        self.images.append(record)
        return record

    def counts(self) -> dict[str, int]:
        statuses = [r["status"] for r in self.images]
        return {"images": len(statuses), "ok": statuses.count("ok"),
                "fallback": statuses.count("fallback"), "failed": statuses.count("failed")}

    def summary(self, json_safe: bool = True, per_image: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"counts": self.counts(), "scores": self.cm.scores(),
                               "failed": [r for r in self.images if r["status"] == "failed"],
                               "fallback_ids": [r["id"] for r in self.images
                                                if r["status"] == "fallback"]}
        if per_image:
            out["images"] = list(self.images)
        return json_sanitize(out) if json_safe else out


def confusion_from_pairs(pairs: Iterable[tuple[np.ndarray, np.ndarray]], num_classes: int,
                         ignore_index: int | None = 255) -> ConfusionMatrix:
    """Convenience: one matrix over an iterable of (pred, target) arrays."""
    cm = ConfusionMatrix(num_classes, ignore_index)
    for pred, target in pairs:
        cm.update(pred, target)
    return cm
