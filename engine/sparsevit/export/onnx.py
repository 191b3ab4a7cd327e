"""A bundle's refined segmenter as an ONNX file for the Deepness QGIS plugin (and anyone else).

What the file expects and gives, written into its metadata as well:

* **input** ``[N, C, T, T]`` float32 (``N`` free, ``T`` the bundle's tile, 256 for the default
  model): the raw Sentinel-2 digital numbers (L1C/L2A convention: reflectance x 10000, no
  offset) of the bands listed in ``sparsevit_bands``, in that order. The model's clipping and
  normalisation are inside the graph. A pixel whose inputs are all 0, or any of them NaN/Inf,
  is no data: it is fed as the band means, as ``sparsevit predict`` does.
* **output** ``[N, K, T, T]`` float32: the class probabilities (softmax), classes in the order
  of ``class_names``.

**Deepness** (PUTvision/qgis-plugin-deepness) reads the raster bands as stored (no scaling of
its own), divides them by 255, then applies ``(x - standardization_mean) / standardization_std``
from the metadata. ``standardization_mean = 0`` and ``standardization_std = 1/255`` undo the
division, so the graph gets the digital numbers. A Deepness version that predates the
standardisation keys would feed DN/255: ``input_units="dn255"`` exports a graph that multiplies
its input by 255 itself (and sets the identity standardisation), which works with every version.
Other keys it reads: ``model_type`` ("Segmentor"), ``class_names``, ``resolution`` (cm/px),
``tile_size`` (``tiles_size`` in its docs; both written), ``tiles_overlap`` (integer percent of
the tile: Deepness overlaps ``int(T * p / 100 * 2) // 2`` px, so the smallest ``p`` whose overlap
is at least the bundle's is written), ``seg_thresh`` 0 and ``seg_small_segment`` 0 (arg-max over
all classes, no median filter: what ``sparsevit predict`` does).

A band-flexible model exported with a subset of its bands (``bands=[...]``) gets the others as
absent inside the graph (zero-filled, presence plane 0), exactly as a raster without them is
read by ``sparsevit predict``; a band listed that the model does not read (B10 of an L1C stack)
is an input channel the graph ignores, so a raster's own band order can be kept.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..bands import S2_BANDS, normalize_s2_name, parse_band_order
from ..errors import InputError
from ..io.atomic import atomic_path
from ..refine.segmenter import BandFlexible
from ..training.normalization import S2_CLIP_DN, Normalizer

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
INPUT_UNITS = ("dn", "dn255")
# Deepness divides every raster value by this before its standardisation
DEEPNESS_DIVISOR = 255.0
S2_RESOLUTION_CM = 1000  # the engine reads every band on the 10 m grid


def deepness_overlap_px(tile: int, percent: int) -> int:
    """The overlap in pixels Deepness uses for ``percent`` (its ``ProcessingOverlap``)."""
    return int(tile * percent / 100 * 2) // 2


def overlap_percent(tile: int, overlap_px: int) -> int:
    """The smallest integer percent whose Deepness overlap is at least ``overlap_px``."""
    p = max(0, math.floor(overlap_px * 100 / tile))
    while deepness_overlap_px(tile, p) < overlap_px and p < 99:
        p += 1
    return p


def export_bands(bundle, bands: str | Sequence[str] | None) -> list[str]:
    """The input channels of the exported graph: the model's bands, or the ``--bands`` list
    (names or a preset of :func:`~sparsevit.bands.parse_band_order`) in the order given."""
    model_bands = list(bundle.s2_bands)
    if bands is None:
        return model_bands
    raw = parse_band_order(bands) if isinstance(bands, str) else tuple(bands)
    names: list[str] = []
    for text in raw or ():
        name = normalize_s2_name(str(text))
        if name is None:
            raise InputError(f"'{text}' is not a Sentinel-2 band name", path=None,
                             fix=f"name bands like {', '.join(S2_BANDS[:4])} ... B12 or B8A")
        if name in names:
            raise InputError(f"band {name} is listed twice", fix="list each band once")
        names.append(name)
    if not names:
        raise InputError("--bands lists no band", fix="e.g. --bands B02,B03,B04,B08")
    used = [b for b in names if b in model_bands]
    if bundle.band_flexible:
        lacking = [b for b in bundle.min_bands if b not in used]
        if lacking:
            raise InputError(f"the model needs {', '.join(bundle.min_bands)}; --bands lacks "
                             f"{', '.join(lacking)}", path=bundle.path,
                             fix="add those bands to --bands")
    else:
        lacking = [b for b in model_bands if b not in used]
        if lacking:
            raise InputError(f"this model is not band-flexible and needs all its bands; --bands "
                             f"lacks {', '.join(lacking)}", path=bundle.path,
                             fix="export all of its bands (leave out --bands)")
    return names


class DeepnessSegmenter(nn.Module):
    """Raw DN of ``inputs`` bands -> class probabilities, the engine's normalisation, no-data
    rule and band-flexible convention inside. Used as the graph that is exported."""

    def __init__(self, segmenter: nn.Module, normalizer: Normalizer, model_bands: Sequence[str],
                 inputs: Sequence[str], input_scale: float = 1.0):
        super().__init__()
        model_bands, inputs = list(model_bands), list(inputs)
        self.segmenter = segmenter
        self.flexible = isinstance(segmenter, BandFlexible)
        self.input_scale = float(input_scale)
        self.per_image_max = normalizer.mode == "per_image_max"
        # which input channel feeds which model band (-1: absent)
        self.source = [inputs.index(b) if b in inputs else -1 for b in model_bands]
        used = [i for i in self.source if i >= 0]
        self.register_buffer("pick", torch.tensor(used, dtype=torch.long), persistent=False)
        if not self.per_image_max:
            mean = torch.tensor([normalizer.mean[k] for k, i in enumerate(self.source) if i >= 0])
            std = torch.tensor([normalizer.std[k] for k, i in enumerate(self.source) if i >= 0])
            self.register_buffer("mean", mean.float().view(1, -1, 1, 1), persistent=False)
            self.register_buffer("std", std.float().view(1, -1, 1, 1), persistent=False)
        present = torch.tensor([1.0 if i >= 0 else 0.0 for i in self.source])
        self.register_buffer("present", present.view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_scale != 1.0:
            x = x * self.input_scale
        finite = torch.isfinite(x)
        x = torch.where(finite, x, torch.zeros((), dtype=x.dtype))
        # no data: any input NaN/Inf, or every input 0 (the Sentinel-2 no-data value)
        bad = (~finite).to(x.dtype).amax(dim=1, keepdim=True) > 0
        empty = x.abs().amax(dim=1, keepdim=True) == 0
        nodata = bad | empty
        x = torch.index_select(x, 1, self.pick).clamp(*S2_CLIP_DN)
        if self.per_image_max:
            peak = x.amax(dim=(-2, -1), keepdim=True)
            x = x / torch.where(peak > 0, peak, torch.ones_like(peak))
        else:
            x = (x - self.mean) / self.std
        x = torch.where(nodata, torch.zeros((), dtype=x.dtype), x)
        if self.flexible:
            zero = torch.zeros_like(x[:, :1])
            planes, k = [], 0
            for i in self.source:
                if i >= 0:
                    planes.append(x[:, k:k + 1])
                    k += 1
                else:
                    planes.append(zero)
            full = torch.cat(planes, dim=1) if k < len(self.source) else x
            presence = zero + self.present  # [N, 1, H, W] + [1, C, 1, 1]: one plane per band
            logits = self.segmenter.net(torch.cat([full, presence], dim=1))
        else:
            logits = self.segmenter(x)
        return torch.softmax(logits, dim=1)


def deepness_metadata(bundle, inputs: Sequence[str], input_units: str) -> dict[str, Any]:
    """The metadata written into the ONNX file (values before JSON encoding)."""
    from .. import __version__

    tile, overlap = int(bundle.tile), int(bundle.overlap)
    pct = overlap_percent(tile, overlap)
    n = len(inputs)
    std = 1.0 / DEEPNESS_DIVISOR if input_units == "dn" else 1.0
    model_bands = list(bundle.s2_bands)
    units = ("raw Sentinel-2 digital numbers (reflectance x 10000, no offset)" if input_units == "dn"
             else "Sentinel-2 digital numbers divided by 255 (what Deepness feeds without "
                  "standardisation); the graph multiplies them by 255")
    return {
        # read by Deepness
        "model_type": "Segmentor",
        "class_names": {i: name for i, name in enumerate(bundle.scheme.names)},
        "resolution": S2_RESOLUTION_CM,
        "tile_size": tile,
        "tiles_size": tile,
        "tiles_overlap": pct,
        "seg_thresh": 0.0,
        "seg_small_segment": 0,
        "standardization_mean": [0.0] * n,
        "standardization_std": [std] * n,
        # for people and other tools
        "sparsevit_bands": list(inputs),
        "sparsevit_input_units": input_units,
        "sparsevit_input": (f"{units} of the bands in sparsevit_bands, in that order, float32 "
                            f"[N, {n}, {tile}, {tile}]; a pixel whose inputs are all 0 or any "
                            "NaN is no data (fed as the band means)"),
        "sparsevit_output": f"class probabilities (softmax) [N, {bundle.scheme.num_classes}, "
                            f"{tile}, {tile}], classes in the order of class_names",
        "sparsevit_model_bands": model_bands,
        "sparsevit_absent_bands": [b for b in model_bands if b not in inputs],
        "sparsevit_ignored_inputs": [b for b in inputs if b not in model_bands],
        "sparsevit_normalization": bundle.normalizer.to_dict(),
        "sparsevit_scheme": bundle.scheme.name,
        "sparsevit_class_values": list(bundle.scheme.values),
        "sparsevit_class_colors": list(bundle.scheme.colors),
        "sparsevit_overlap_px": overlap,
        "sparsevit_deepness_overlap_px": deepness_overlap_px(tile, pct),
        "sparsevit_segmenter": (bundle.segmenter_doc or {}).get("segmenter"),
        "sparsevit_engine_version": __version__,
        "sparsevit_source_bundle": Path(bundle.path).name,
    }


def export_onnx(bundle, out: str | Path, *, bands: str | Sequence[str] | None = None,
                input_units: str = "dn", batch_size: int | None = None, opset: int = OPSET,
                progress=None) -> dict[str, Any]:
    """Write ``bundle``'s segmenter to ``out`` (atomically); returns what was written."""
    try:
        import onnx
    except ImportError:  # optional: the plugin's engine install leaves it out (requirements/onnx.txt)
        raise InputError("ONNX export needs the onnx package, which this engine does not have",
                         fix="pip install -r requirements/onnx.txt into the engine's environment") from None

    if bundle.segmenter is None:
        raise InputError("this model has no refined segmenter to export (a plain classifier)",
                         path=bundle.path, fix="choose a model bundle with a segmenter "
                                               "(e.g. resources/models/default)")
    if bundle.has_s1:
        raise InputError("this model reads Sentinel-1 as well; only Sentinel-2 models can be "
                         "exported", path=bundle.path, fix="export an S2-only model")
    if input_units not in INPUT_UNITS:
        raise InputError(f"unknown input units '{input_units}'", fix=f"use one of {', '.join(INPUT_UNITS)}")
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size must be >= 1", fix="leave it out for a free batch size")
    inputs = export_bands(bundle, bands)
    tile = int(bundle.tile)
    seg = bundle.segmenter.float().eval()
    graph = DeepnessSegmenter(seg, bundle.normalizer, bundle.s2_bands, inputs,
                              input_scale=DEEPNESS_DIVISOR if input_units == "dn255" else 1.0).eval()
    example = torch.full((batch_size or 1, len(inputs), tile, tile), 1000.0)
    if input_units == "dn255":
        example = example / DEEPNESS_DIVISOR
    meta = deepness_metadata(bundle, inputs, input_units)
    out = Path(out)
    if out.is_dir():
        raise InputError("--onnx names a folder", path=out, fix="give a file name ending in .onnx")
    with atomic_path(out, suffix=".onnx") as tmp:
        import warnings
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(graph, (example,), str(tmp), dynamo=False, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes=None if batch_size else
                              {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
        model = onnx.load(str(tmp))
        _declare_output_shape(model, [batch_size, bundle.scheme.num_classes, tile, tile])
        model.producer_name = "sparsevit"
        model.doc_string = (__doc__ or "").split("\n\n")[0].strip()
        del model.metadata_props[:]
        for key, value in meta.items():
            prop = model.metadata_props.add()
            prop.key, prop.value = key, json.dumps(value)
        onnx.checker.check_model(model)
        onnx.save(model, str(tmp))
    return {"path": str(out), "bands": inputs, "input_units": input_units, "opset": opset,
            "batch": batch_size or "dynamic", "input_shape": [batch_size or "batch", len(inputs), tile, tile],
            "output_shape": [batch_size or "batch", bundle.scheme.num_classes, tile, tile],
            "size_mb": round(out.stat().st_size / 1e6, 2), "metadata": meta}


def _declare_output_shape(model, dims: list[int | None]) -> None:
    """Write the output's shape into the graph: the exporter's shape inference loses H and W
    through the decoder's resizes (it named them 'batch' and 'Softmax..._dim_3'), and Deepness
    refuses a segmentor whose output is not declared square."""
    shape = model.graph.output[0].type.tensor_type.shape
    for d, value in zip(shape.dim, dims):
        if value is None:
            d.Clear()
            d.dim_param = "batch"
        else:
            d.Clear()
            d.dim_value = int(value)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported file, JSON-decoded (as Deepness reads it)."""
    import onnx
    model = onnx.load(str(path), load_external_data=False)
    return {p.key: json.loads(p.value) for p in model.metadata_props}
