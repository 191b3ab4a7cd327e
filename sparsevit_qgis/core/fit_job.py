"""What the panel and Processing share about training on an analyst's labels: typed requests
for ``sparsevit grid`` (:class:`GridRequest`) and ``sparsevit fit`` (:class:`FitRequest`),
each turned into the engine's arguments by ``to_args``; the labels as a file the engine reads
(:func:`labels_for_engine`: the layer's own file, or a snapshot of what QGIS shows, with
unsaved tags); the names of the training stages and a rough time left.

No widgets here, so every caller (and a test) builds the same engine arguments.
"""
from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Iterable, Sequence

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsFields,
    QgsProviderRegistry,
    QgsRectangle,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from .band_mapping import band_order_args
from .predict_job import JobError, area_args, compute_args, normalize_device, resolve_model
from .tags import GRID_FIELD, GRID_LAYER

#: ``sparsevit fit`` stages in order (engine stage name, what the panel says)
FIT_STAGES = (
    ("labels", "Reading the labels"),
    ("classifier", "Training the classifier on the tags"),
    ("pseudomasks", "Making pseudomasks"),
    ("refine", "Training the map network"),
    ("predict", "Mapping the raster(s)"),
)
DEVICES = ("auto", "cpu", "cuda")  # the Processing enum; FitRequest also takes cuda:N
MIN_TILE = 16  # the engine's smallest tag tile (px)
LABELS_SNAPSHOT = "input_labels.gpkg"  # the labels a run read, kept in its folder
SCHEME_FILE = "input_classes.json"     # the class scheme a run read (--classes)


# the engine's own stage names (it reports finer ones than the five steps, e.g. "train epoch
# 1/8", "refine_it1", "spectral refinement") -> step number, by prefix
_STAGE_STEPS = (("labels", 1), ("read tiles", 1), ("classifier", 2), ("train", 2), ("pseudomask", 3),
                ("spectral", 3), ("refine", 4), ("predict", 5), ("areas", 5), ("overview", 5),
                ("polygons", 5))


def stage_step(stage: str) -> int | None:
    """The 1-based step of ``FIT_STAGES`` an engine stage belongs to; None when unknown."""
    name = (stage or "").strip().lower()
    return next((step for prefix, step in _STAGE_STEPS if name.startswith(prefix)), None)


def stage_title(stage: str) -> str:
    """``"Step 2/5: Training the classifier on the tags (train epoch 1/8)"`` for a fit stage
    (the engine's own name in brackets when it is a finer one); the name otherwise."""
    step = stage_step(stage)
    if step is None:
        return stage
    name, title = FIT_STAGES[step - 1]
    text = f"Step {step}/{len(FIT_STAGES)}: {title}"
    return text if stage == name else f"{text} ({stage})"


def eta_text(elapsed: float, fraction: float | None) -> str:
    """``"about 3 min left"`` from the time a stage has run and its done fraction; empty while
    there is too little to go on."""
    if fraction is None or fraction <= 0.02 or fraction >= 1.0 or elapsed < 2.0:
        return ""
    left = elapsed * (1.0 - fraction) / fraction
    if left < 60:
        return f"about {max(1, int(round(left)))} s left"
    if left < 3600:
        return f"about {int(round(left / 60))} min left"
    return f"about {left / 3600:.1f} h left"


def _check_rasters(rasters: Sequence[str]) -> list[str]:
    out = [str(r).strip() for r in rasters or [] if str(r).strip()]
    if not out:
        raise JobError("Choose at least one raster to train on (layer, file or folder).")
    return out


def _check_tile(tile: int, what: str = "tile size") -> None:
    if tile < 0 or 0 < tile < MIN_TILE:
        raise JobError(f"The {what} must be at least {MIN_TILE} px (or 0 for the model's own), not {tile}.")


def _band_order_args(band_order: str | None) -> list[str]:
    return band_order_args(band_order)


@dataclass
class GridRequest:
    """One ``sparsevit grid`` run: a tile grid GeoPackage (layer ``tiles``) over the rasters.

    ``tile``: 0 for the model's tag tile size. ``model``: empty for the engine's default model
    (only its tile size is used). ``area``: ``(rectangle, its CRS)`` or None for the whole
    raster(s)."""

    rasters: Sequence[str]
    out: str
    tile: int = 0
    model: str = ""
    area: tuple[QgsRectangle, QgsCoordinateReferenceSystem | None] | None = None
    band_order: str | None = None

    @property
    def out_path(self) -> str:
        """The GeoPackage written: ``out`` with the ``.gpkg`` extension the engine writes."""
        out = str(self.out or "").strip()
        return out if not out or out.lower().endswith(".gpkg") else str(Path(out).with_suffix(".gpkg"))

    def to_args(self) -> list[str]:
        rasters = _check_rasters(self.rasters)
        if not self.out_path:
            raise JobError("Choose where to write the tile grid (a .gpkg file).")
        _check_tile(self.tile)
        args = rasters + ["--out", self.out_path]
        if self.tile > 0:
            args += ["--tile", str(self.tile)]
        if (self.model or "").strip():
            args += ["--model", resolve_model(self.model)]
        if self.area is not None:
            args += area_args(*self.area)
        return args + _band_order_args(self.band_order)


@dataclass
class FitRequest:
    """One ``sparsevit fit`` run as the panel and Processing fill it in.

    ``labels``: a tile grid (``sparsevit grid``; ``field`` None) or a point/line/polygon file
    with the class ``field``; ``layer``: its layer in a multi-layer file. ``classes``: a scheme
    JSON file (None: the classes are the distinct label values). ``base``: the model to start
    from (empty: the engine's default); ``from_scratch`` starts from nothing instead. ``epochs``,
    ``refine_epochs``, ``iterations``, ``tile``, ``threads``: 0 for the engine's default. ``holdout``, ``seed``:
    None for the engine's default."""

    rasters: Sequence[str]
    labels: str
    out: str
    layer: str | None = None
    field: str | None = None
    classes: str | None = None
    tile: int = 0
    base: str = ""
    from_scratch: bool = False
    epochs: int = 0
    refine_epochs: int = 0
    iterations: int = 0
    holdout: float | None = None
    seed: int | None = None
    predict: bool = True
    threads: int = 0
    device: str = "auto"
    band_order: str | None = None
    extra: list[str] = dc_field(default_factory=list)

    def to_args(self) -> list[str]:
        """The engine arguments; raises :class:`JobError` with the fix for a value it cannot run."""
        rasters = _check_rasters(self.rasters)
        labels = (self.labels or "").strip()
        if not labels:
            raise JobError("Choose the labels: a tagged tile grid, or a point/line/polygon layer "
                           "and its class field.")
        if not (self.out or "").strip():
            raise JobError("Choose an output folder.")
        _check_tile(self.tile)
        for name, value in (("epochs", self.epochs), ("refine epochs", self.refine_epochs),
                            ("refinement iterations", self.iterations), ("threads", self.threads)):
            if value < 0:
                raise JobError(f"The {name} must be positive (or 0 for the engine's default), not {value}.")
        if self.holdout is not None and not 0.0 <= float(self.holdout) < 1.0:
            raise JobError(f"The held-out share must be at least 0 and below 1, not {self.holdout}.")
        device = normalize_device(self.device)
        base = (self.base or "").strip()
        if base and self.from_scratch:
            raise JobError("Either start from a model or from scratch, not both.")
        args = rasters + ["--labels", labels]
        if self.layer:
            args += ["--layer", str(self.layer)]
        if self.field:
            args += ["--field", str(self.field)]
        if self.classes:
            if not Path(self.classes).is_file():
                raise JobError(f"{self.classes}: the class scheme file does not exist.")
            args += ["--classes", str(self.classes)]
        args += ["--out", str(self.out)]
        if self.tile > 0:
            args += ["--tile", str(self.tile)]
        if base:
            args += ["--base", resolve_model(base)]
        elif self.from_scratch:
            args.append("--from-scratch")
        if self.epochs > 0:
            args += ["--epochs", str(self.epochs)]
        if self.refine_epochs > 0:
            args += ["--refine-epochs", str(self.refine_epochs)]
        if self.iterations > 0:
            args += ["--iterations", str(self.iterations)]
        if self.holdout is not None:
            args += ["--holdout", repr(float(self.holdout))]
        if self.seed is not None:
            args += ["--seed", str(int(self.seed))]
        if not self.predict:
            args.append("--no-predict")
        # the same --threads/--device (only when not the engine's choice) as predict
        args += compute_args(threads=self.threads)
        args += compute_args(device=device)
        return args + _band_order_args(self.band_order) + [str(a) for a in self.extra]


# --- labels as a file the engine reads ------------------------------------------------------
def ogr_source(layer: QgsVectorLayer) -> tuple[str, str | None] | None:
    """``(file, layer name)`` behind an OGR layer that shows its file as it is (no unsaved
    edits, no filter); None otherwise (memory layers, database layers, unsaved tags...)."""
    if layer is None or layer.providerType() != "ogr":
        return None
    if layer.isModified() or (layer.subsetString() or "").strip():
        return None
    parts = QgsProviderRegistry.instance().decodeUri("ogr", layer.source())
    path = parts.get("path") or ""
    if not path or not Path(path).is_file():
        return None
    name = parts.get("layerName") or None
    if not name and parts.get("layerId") not in (None, "", 0):
        return None  # a layer chosen by index: name it through a snapshot instead
    return path, name


def write_labels_snapshot(features: Iterable[QgsFeature], fields: QgsFields, wkb_type,
                          crs: QgsCoordinateReferenceSystem, path: str | Path, layer_name: str,
                          keep: Sequence[str] | None = None,
                          transform_context: QgsCoordinateTransformContext | None = None) -> Path:
    """Write labels (geometry and the ``keep`` fields only) as a one-layer GeoPackage.

    ``features`` may come from a layer (main thread) or a Processing feature source (any
    thread), so unsaved edits and filters are what the engine reads."""
    path = Path(path)
    if path.exists():
        path.unlink()
    out_fields = QgsFields()
    indices = []
    for name in keep or [f.name() for f in fields]:
        idx = fields.indexOf(name)
        if idx < 0:
            raise JobError(f"The labels have no field '{name}'.")
        if name.lower() == "fid":
            continue
        out_fields.append(fields.at(idx))
        indices.append(idx)
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    options.layerName = layer_name
    options.fileEncoding = "UTF-8"
    writer = QgsVectorFileWriter.create(str(path), out_fields, wkb_type, crs,
                                        transform_context or QgsCoordinateTransformContext(), options)
    if writer is None or writer.hasError() != QgsVectorFileWriter.NoError:
        message = writer.errorMessage() if writer is not None else "cannot create the file"
        raise JobError(f"{path}: cannot write the labels ({message}).")
    try:
        for feature in features:
            out = QgsFeature(out_fields)
            out.setGeometry(feature.geometry())
            out.setAttributes([feature.attribute(i) for i in indices])
            writer.addFeature(out)
    finally:
        del writer  # flushes and closes the GeoPackage
    return path


def labels_for_engine(layer: QgsVectorLayer, folder: str | Path, field: str | None = None,
                      force_snapshot: bool = False) -> tuple[str, str | None, bool]:
    """``(file, layer name or None, snapshot?)`` for ``--labels``/``--layer``.

    The layer's own file when it shows that file as it is; else (unsaved tags, a filter, a
    memory layer) a snapshot ``folder/input_labels.gpkg`` of the ``classes`` field (a grid,
    ``field`` None) or of ``field``. Main thread (reads the layer)."""
    if layer is None or not layer.isValid():
        raise JobError("Choose the labels layer.")
    wanted = field or GRID_FIELD
    if layer.fields().indexOf(wanted) < 0:
        raise JobError(f"{layer.name()}: has no field '{wanted}'" + (
            "; make a tile grid (Make tile grid) or pick a layer and its class field." if not field else "."))
    if not force_snapshot:
        source = ogr_source(layer)
        if source is not None:
            return source[0], source[1], False
    name = GRID_LAYER if field is None else "labels"
    path = write_labels_snapshot(layer.getFeatures(), layer.fields(), layer.wkbType(), layer.crs(),
                                 Path(folder) / LABELS_SNAPSHOT, name, keep=[wanted],
                                 transform_context=layer.transformContext())
    return str(path), name, True
