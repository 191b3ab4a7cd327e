"""Which bands a model reads, from its JSON files alone (no torch import: ``info`` stays fast).

A band-flexible model (``band_flexible`` in its architecture) runs on any subset of its bands
that holds its ``required_bands``; any other model needs every one of its bands.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class ModelBands:
    s2_bands: tuple[str, ...]
    required: tuple[str, ...]
    flexible: bool
    has_s1: bool

    def plan(self, available: Iterable[str], left_out: Iterable[str] = ()) -> dict:
        """What the model does with an input holding ``available`` S2 bands; ``left_out``: bands
        the input has but the model is not given (an input of another processing level, see
        io/processing_level.py): neither used nor missing."""
        out = [b for b in self.s2_bands if b in set(left_out)]
        have = set(available) - set(out)
        used = [b for b in self.s2_bands if b in have]
        return {"used": used, "missing": [b for b in self.s2_bands if b not in have and b not in out],
                "left_out": out, "lacking_required": [b for b in self.required if b not in have],
                "ignored": sorted(have - set(self.s2_bands)), "flexible": self.flexible}

    def describe(self, available: Iterable[str], left_out: Iterable[str] = ()) -> str:
        """One line for ``info``, from :meth:`plan`."""
        p = self.plan(available, left_out)
        if p["lacking_required"]:
            need = "every one of its bands" if not self.flexible else ", ".join(self.required)
            return (f"the model cannot run on this input: it lacks {', '.join(p['lacking_required'])} "
                    f"(the model needs {need})")
        text = f"the model uses {len(p['used'])} of its {len(self.s2_bands)} bands ({', '.join(p['used'])})"
        if p["missing"]:
            text += f"; missing {', '.join(p['missing'])}: read without them (band-flexible model)"
        if p["left_out"]:
            text += f"; {', '.join(p['left_out'])} present but left out for the processing level (below)"
        return text


def _classifier_json(path: Path) -> Path:
    if path.is_dir():
        try:
            doc = json.loads((path / "bundle.json").read_text(encoding="utf-8"))
            ref = doc["classifier"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InputError(f"cannot read the model folder's bundle.json ({exc})", path=path,
                             fix="choose a model folder with bundle.json") from None
        path = path / str(ref)
    if path.suffix == ".safetensors":
        path = path.with_suffix(".json")
    elif path.suffix != ".json":
        path = path.with_name(path.name + ".json")
    return path


def read_model_bands(model: str | Path) -> ModelBands:
    meta = _classifier_json(Path(model))
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
        arch = doc["architecture"]
        s2 = tuple(arch["s2_bands"])
        flexible = bool(arch.get("band_flexible", False))
        req = arch.get("required_bands")
        required = tuple(req) if flexible and req else s2
        return ModelBands(s2, required, flexible, bool(arch.get("has_s1", False)))
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the model description ({exc})", path=meta,
                         fix="choose a model written by SparseViT (bundle folder or .safetensors + .json)") from None


def read_trained_level(model: str | Path) -> str | None:
    """The processing level (``"L1C"`` / ``"L2A"``) a model bundle folder says it learnt, from its
    card (``trained_on_level``); None for a bare checkpoint or a card without it."""
    path = Path(model)
    if not path.is_dir():
        return None
    try:
        card = json.loads((path / "bundle.json").read_text(encoding="utf-8")).get("card") or {}
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    level = card.get("trained_on_level") if isinstance(card, dict) else None
    return level if isinstance(level, str) else None


def to_model_bands(data: np.ndarray, have: Sequence[str], model_bands: Sequence[str]) -> np.ndarray:
    """``data [len(have), H, W]`` in the model's band order: a band the input lacks is an all-NaN
    channel (the band-flexible models' convention), a band the model does not read is dropped."""
    have, model_bands = list(have), list(model_bands)
    if have == model_bands:
        return data
    full = np.full((len(model_bands),) + data.shape[1:], np.nan, np.float32)
    for i, b in enumerate(have):
        if b in model_bands:
            full[model_bands.index(b)] = data[i]
    return full
