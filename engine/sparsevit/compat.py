"""Import shims that keep the pinned CPU stack importable.

timm imports torchvision at import time. PyPI's torchvision wheel is built for CUDA; next to the
CPU torch its compiled ops library cannot load, and its Python side then fails on
``torchvision::nms`` at import. ViTs never call those ops, so when (and only when) the library is
missing we declare the two op schemas torchvision registers itself, which lets the import finish.
Import this module before timm or torchvision.
"""
from __future__ import annotations

import importlib.util
import os

import torch

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_lib = None  # keep the Library object alive: its definitions vanish when it is collected


def _torchvision_ops_loadable() -> bool:
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # nothing to patch
    for folder in spec.submodule_search_locations:
        for name in os.listdir(folder):
            if name.startswith("_C") and name.endswith(".so"):
                try:
                    torch.ops.load_library(os.path.join(folder, name))
                    return True
                except (OSError, RuntimeError):
                    return False
    return False


def ensure_torchvision_importable() -> None:
    global _lib
    if _lib is not None or _torchvision_ops_loadable():
        return
    _lib = torch.library.Library("torchvision", "DEF")
    for schema in _SCHEMAS.values():
        _lib.define(schema)


ensure_torchvision_importable()
