"""Segmenter checkpoints: safetensors weights + JSON description, like the classifier's.

``half=True`` stores floating-point tensors as float16 (the bundled default model must stay
small); they are widened back to float32 on load, so inference runs in full precision.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import nn

from ..errors import InputError
from ..formats import read_json_document, read_safetensors
from ..io.atomic import atomic_path
from ..training.checkpoint import checkpoint_paths
from ..training.normalization import Normalizer
from .segmenter import SegmenterConfig, build_segmenter

FORMAT = "sparsevit-segmenter"
FORMAT_VERSION = 1
_FIX = "choose a segmenter written by 'sparsevit refine' (a .safetensors file with its .json beside it)"


def save_segmenter(path: str | Path, model: nn.Module, *, in_channels: int, class_names: list[str],
                   normalizer: Normalizer, s2_bands: list[str], has_s1: bool = False,
                   scheme: str | None = None, training: dict | None = None,
                   metrics: dict | None = None, half: bool = False) -> Path:
    weights, meta, _ = checkpoint_paths(path)
    cfg: SegmenterConfig = model.sparsevit_config
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        tensors[k] = v.half() if half and v.is_floating_point() else v
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "weights": weights.name,
           "segmenter": cfg.to_dict(), "in_channels": in_channels,
           "bands": {"s2": list(s2_bands), "has_s1": has_s1},
           "normalization": normalizer.to_dict(),
           "classes": {"scheme": scheme, "names": list(class_names)},
           "stored_dtype": "float16" if half else "float32",
           "training": training or {}, "metrics": metrics or {}}
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    with atomic_path(meta) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=float), encoding="utf-8")
    return weights


def load_segmenter(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    weights, meta, _ = checkpoint_paths(path)
    doc = read_json_document(meta, FORMAT, "segmenter description", _FIX, FORMAT_VERSION)
    try:
        model = build_segmenter(doc["segmenter"], int(doc["in_channels"]), len(doc["classes"]["names"]))
        Normalizer.from_dict(doc["normalization"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"segmenter description is inconsistent ({exc})", path=meta, fix=_FIX) from exc
    tensors = read_safetensors(weights, "segmenter weights", _FIX)
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(tensors)) + sorted(
        k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if bad:
        raise InputError(f"weights do not match the segmenter in {meta.name} ({', '.join(bad[:3])} ...)",
                         path=weights, fix=_FIX)
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()})
    return model.eval(), doc
