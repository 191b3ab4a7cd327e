"""Multi-label classification scores: macro-F1, per-class F1, mAP."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, f1_score


def multilabel_scores(probs: np.ndarray, targets: np.ndarray, threshold: float = 0.5,
                      class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """``probs``/``targets``: [N, K]. F1 at ``threshold``; mAP averages only over classes that
    occur in ``targets`` (AP is undefined without positives)."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets) > 0.5
    pred = probs >= threshold
    k = targets.shape[1]
    per_f1 = f1_score(targets, pred, average=None, zero_division=0, labels=list(range(k)))
    present = targets.any(axis=0)
    ap = [float(average_precision_score(targets[:, c], probs[:, c])) if present[c] else None
          for c in range(k)]
    aps = [a for a in ap if a is not None]
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    return {
        "n": int(targets.shape[0]),
        # macro over classes present in the targets, so absent classes do not count as 0
        "macro_f1": float(np.mean(per_f1[present])) if present.any() else 0.0,
        "micro_f1": float(f1_score(targets, pred, average="micro", zero_division=0)),
        "mAP": float(np.mean(aps)) if aps else 0.0,
        "per_class_f1": {n: float(f) for n, f in zip(names, per_f1)},
        "per_class_ap": {n: a for n, a in zip(names, ap)},
        "exact_match": float((pred == targets).all(axis=1).mean()),
    }
