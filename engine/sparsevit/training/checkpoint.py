"""Checkpoints: safetensors weights + a JSON description beside them (never pickle).

``model.safetensors`` holds the weights; ``model.json`` the architecture, bands, normalisation,
class names, training description, metrics and pruned share. A resumable training checkpoint
adds ``model.state.safetensors`` (optimizer moments, RNG) and a ``training_state`` JSON entry.
Every file is written atomically; the JSON goes last, so a checkpoint without its JSON is
incomplete and refused.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from ..errors import InputError
from ..formats import read_json_document, read_safetensors
from ..io.atomic import atomic_path
from ..models.configs import ModelConfig
from ..models.vit import SparseViT
from .normalization import Normalizer

FORMAT = "sparsevit-checkpoint"
FORMAT_VERSION = 1


def checkpoint_paths(path: str | Path) -> tuple[Path, Path, Path]:
    """(weights, json, training state) for ``x.safetensors``, ``x.json`` or ``x``."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return (p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json"),
            p.with_name(p.name + ".state.safetensors"))


def _state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    model = getattr(model, "module", model)  # DDP
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(path: str | Path, model: SparseViT, normalizer: Normalizer,
                    class_names: list[str], scheme: str | None = None,
                    training: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None,
                    training_state: dict[str, Any] | None = None,
                    state_tensors: dict[str, torch.Tensor] | None = None,
                    half: bool = False) -> Path:
    """Write ``<path>.safetensors`` + ``<path>.json`` (+ ``<path>.state.safetensors`` when
    ``state_tensors``). Returns the weights path. ``half`` stores floating-point weights as
    float16 (for bundled models); loading copies them into the float32 model."""
    net: SparseViT = getattr(model, "module", model)
    weights, meta, state = checkpoint_paths(path)
    cfg = net.config
    if len(class_names) != cfg.num_classes:
        raise ValueError(f"{len(class_names)} class names for a {cfg.num_classes}-class model")
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "weights": weights.name,
        "architecture": cfg.to_dict(),
        "bands": {"s2": list(cfg.s2_bands), "has_s1": cfg.has_s1},
        "normalization": normalizer.to_dict(),
        "classes": {"scheme": scheme, "names": list(class_names)},
        "training": training or {},
        "metrics": metrics or {},
        "pruned_share": net.pruned_share(),
        "open_heads_per_block": net.open_heads_per_block(),
        "physically_pruned": not cfg.gated and sum(cfg.heads_per_block) < net.total_heads(),
    }
    if training_state is not None:
        doc["training_state"] = training_state
        doc["training_state"]["state_file"] = state.name
    tensors = _state_dict(net)
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    doc["stored_dtype"] = "float16" if half else "float32"
    with atomic_path(weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT,
                                                        "format_version": str(FORMAT_VERSION)})
    if state_tensors is not None:
        with atomic_path(state) as tmp:
            save_file({k: v.detach().cpu().contiguous() for k, v in state_tensors.items()},
                      str(tmp), metadata={"format": FORMAT + "-state"})
    with atomic_path(meta) as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=_json_default), encoding="utf-8")
    return weights


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


_FIX = "choose a model written by 'sparsevit train' (a .safetensors file with its .json beside it)"


def load_checkpoint_config(path: str | Path) -> dict[str, Any]:
    weights, meta, _ = checkpoint_paths(path)
    if not meta.is_file():
        raise InputError("model description (JSON) is missing", path=meta,
                         fix=f"keep the .json written next to {weights.name}; {_FIX}")
    doc = read_json_document(meta, FORMAT, "model description", _FIX, FORMAT_VERSION)
    for key in ("architecture", "normalization", "classes"):
        if key not in doc:
            raise InputError(f"model description lacks '{key}'", path=meta, fix=_FIX)
        if not isinstance(doc[key], dict):
            raise InputError(f"model description: '{key}' must be a JSON object", path=meta, fix=_FIX)
    return doc


def _read_safetensors(path: Path, what: str) -> dict[str, torch.Tensor]:
    return read_safetensors(path, what, _FIX)


def load_model(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[SparseViT, dict[str, Any]]:
    """``(model in eval mode, config dict)`` from ``x.safetensors`` / ``x.json`` / ``x``.

    ``config["normalization"]`` rebuilds the normaliser with :func:`normalizer_from_config`.
    """
    weights, meta, _ = checkpoint_paths(path)
    doc = load_checkpoint_config(path)
    try:
        cfg = ModelConfig.from_dict(doc["architecture"])
        Normalizer.from_dict(doc["normalization"])
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise InputError(f"model description is inconsistent ({exc})", path=meta, fix=_FIX) from exc
    names = doc["classes"].get("names", [])
    if not isinstance(names, list) or len(names) != cfg.num_classes:
        raise InputError("class names do not match the model's number of classes", path=meta,
                         fix=_FIX)
    tensors = _read_safetensors(weights, "model weights")
    model = SparseViT(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for label, keys in (("missing", missing), ("unexpected", unexpected),
                                               ("wrong shape", wrong)) if keys)
        raise InputError(f"weights do not match the architecture in {meta.name} ({detail})",
                         path=weights, fix=_FIX)
    model.load_state_dict(tensors)
    model.to(device).eval()
    return model, doc


def normalizer_from_config(config: dict[str, Any]) -> Normalizer:
    return Normalizer.from_dict(config["normalization"])


def load_training_state(path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(``training_state`` JSON entry, state tensors) of a resumable checkpoint."""
    _, meta, state = checkpoint_paths(path)
    doc = load_checkpoint_config(path)
    if "training_state" not in doc:
        raise InputError("this model has no training state to resume from", path=meta,
                         fix="resume from the last.safetensors that 'sparsevit train' writes "
                             "in its output folder")
    return doc["training_state"], _read_safetensors(state, "training state")
