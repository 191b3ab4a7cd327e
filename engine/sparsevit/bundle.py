"""A model bundle: everything ``sparsevit predict`` needs, in one folder.

    bundle.json                 what is in the folder, pseudomask settings, tile size
    classifier.safetensors/json the (pruned) gated ViT: probabilities, attention, Grad-CAM
    segmenter.safetensors/json  the refined segmentation network (optional)
    MODEL_CARD.md               data, class scheme, metrics, limitations (for people)

A plain classifier checkpoint (``x.safetensors`` + ``x.json``) is also accepted: the land-cover
map is then the attention pseudomask itself.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from .errors import InputError
from .formats import read_json_document
from .io.atomic import write_text_atomic
from .models.vit import SparseViT
from .paths import default_model_path
from .schemes import ClassScheme, load_scheme, read_scheme_file
from .training.checkpoint import load_model, normalizer_from_config
from .training.normalization import Normalizer

FORMAT = "sparsevit-bundle"
FORMAT_VERSION = 1
_FIX = "choose a model folder with bundle.json (e.g. resources/models/default) or a classifier .safetensors"


@dataclass
class PseudomaskSettings:
    method: str = "attention"
    attn_blocks: int = 1
    options: dict[str, Any] = field(default_factory=dict)
    threshold: float = 0.5


@dataclass
class ModelBundle:
    path: Path
    classifier: SparseViT
    classifier_doc: dict
    normalizer: Normalizer
    scheme: ClassScheme
    segmenter: nn.Module | None = None
    segmenter_doc: dict | None = None
    pseudomask: PseudomaskSettings = field(default_factory=PseudomaskSettings)
    tile: int = 256
    overlap: int = 32
    card: dict = field(default_factory=dict)

    @property
    def s2_bands(self) -> tuple[str, ...]:
        return tuple(self.classifier.config.s2_bands)

    @property
    def has_s1(self) -> bool:
        return bool(self.classifier.config.has_s1)

    @property
    def band_flexible(self) -> bool:
        return bool(self.classifier.config.band_flexible)

    @property
    def min_bands(self) -> tuple[str, ...]:
        """The S2 bands an input must hold (band-flexible models read any superset)."""
        return tuple(self.classifier.config.min_bands)

    @property
    def coarse_mapping(self) -> str | None:
        return self.card.get("coarse_mapping") if isinstance(self.card, dict) else None

    def describe(self) -> dict:
        return {"path": str(self.path), "scheme": self.scheme.name, "classes": list(self.scheme.names),
                "s2_bands": list(self.s2_bands), "has_s1": self.has_s1,
                "band_flexible": self.band_flexible, "required_bands": list(self.min_bands),
                "segmenter": self.segmenter_doc["segmenter"] if self.segmenter_doc else None,
                "pruned_share": round(self.classifier.pruned_share(), 4),
                "pseudomask": self.pseudomask.__dict__, "tile": self.tile, "overlap": self.overlap}


def _scheme_for(doc: dict, where: Path, own: Path | None = None) -> ClassScheme:
    """The classifier's scheme: the bundle's own ``scheme.json`` (a model trained on an
    analyst's classes by ``sparsevit fit``) or one of ``resources/schemes`` by name."""
    classes = doc.get("classes", {})
    name = classes.get("scheme") if isinstance(classes, dict) else None
    if not name:
        raise InputError("the model names no class scheme", path=where, fix=_FIX)
    scheme = read_scheme_file(own) if own is not None else load_scheme(name)
    if list(scheme.names) != list(classes.get("names", [])):
        raise InputError(f"the model's class names do not match scheme '{name}'", path=where,
                         fix="retrain the model or fix its JSON 'classes'")
    return scheme


def _member(folder: Path, ref: object, meta: Path) -> Path:
    """A file named by bundle.json; it must lie inside the bundle folder (no ``../`` escapes)."""
    if not isinstance(ref, str) or not ref:
        raise InputError("bundle.json names its model files wrongly (not a file name)", path=meta, fix=_FIX)
    target = (folder / ref).resolve()
    if folder.resolve() not in target.parents:
        raise InputError(f"bundle.json points outside the model folder ({ref})", path=meta, fix=_FIX)
    return folder / ref


def load_bundle(path: str | Path | None = None) -> ModelBundle:
    from .refine.checkpoint import load_segmenter

    p = Path(path) if path is not None else default_model_path()
    if p.is_dir():
        meta = p / "bundle.json"
        if not meta.is_file():
            raise InputError("model folder has no bundle.json", path=p, fix=_FIX)
        doc = read_json_document(meta, FORMAT, "model bundle (bundle.json)", _FIX, FORMAT_VERSION)
        # bundle.json may come from anywhere: a wrong type must be an InputError, not a crash.
        try:
            pm = PseudomaskSettings(**doc.get("pseudomask", {}))
            tile, overlap = int(doc.get("tile", 256)), int(doc.get("overlap", 32))
            card = doc.get("card", {})
            if not isinstance(card, dict) or tile < 1 or overlap < 0:
                raise ValueError("'card' must be an object, 'tile' >= 1, 'overlap' >= 0")
        except (TypeError, ValueError) as exc:
            raise InputError(f"bundle.json is inconsistent ({exc})", path=meta, fix=_FIX) from exc
        if "classifier" not in doc:
            raise InputError("bundle.json names no classifier", path=meta, fix=_FIX)
        model, cdoc = load_model(_member(p, doc["classifier"], meta))
        seg, sdoc = (None, None)
        if doc.get("segmenter"):
            seg, sdoc = load_segmenter(_member(p, doc["segmenter"], meta))
            if sdoc.get("bands") != cdoc["bands"]:
                raise InputError("classifier and segmenter were trained on different bands",
                                 path=meta, fix=_FIX)
            if bool(sdoc["segmenter"].get("band_flexible")) != bool(model.config.band_flexible):
                raise InputError("one of classifier and segmenter is band-flexible, the other not",
                                 path=meta, fix=_FIX)
        own = _member(p, doc["scheme"], meta) if doc.get("scheme") else None
        return ModelBundle(p, model, cdoc, normalizer_from_config(cdoc), _scheme_for(cdoc, meta, own),
                           seg, sdoc, pm, tile, overlap, card)
    if not p.exists() and not p.with_suffix(".safetensors").exists() and not Path(str(p) + ".safetensors").exists():
        raise InputError("model not found", path=p, fix=_FIX)
    model, cdoc = load_model(p)
    return ModelBundle(p, model, cdoc, normalizer_from_config(cdoc), _scheme_for(cdoc, p))


def write_bundle_json(folder: str | Path, *, classifier: str, segmenter: str | None,
                      pseudomask: PseudomaskSettings, tile: int = 256, overlap: int = 32,
                      card: dict | None = None, scheme: str | None = None) -> Path:
    """``scheme``: the bundle's own class scheme file (e.g. ``scheme.json``), for classes that
    are not in ``resources/schemes``."""
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "classifier": classifier,
           "segmenter": segmenter, "pseudomask": pseudomask.__dict__, "tile": tile,
           "overlap": overlap, "card": card or {}}
    if scheme:
        doc["scheme"] = scheme
    return write_text_atomic(Path(folder) / "bundle.json", json.dumps(doc, indent=2, default=float))
