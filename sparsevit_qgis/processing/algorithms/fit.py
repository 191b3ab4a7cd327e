"""``sparsevit:fit``: train a model on an analyst's labels of their own rasters, then map them."""
from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
)

from ...core import protocol as roles
from ...core.fit_job import DEVICES, LABELS_SNAPSHOT, FitRequest, ogr_source, write_labels_snapshot
from ...core.predict_job import JobError, input_stem
from ...core.schemes import SchemeError, as_scheme
from ...core.tags import GRID_FIELD, GRID_LAYER
from .base import EngineAlgorithm, raster_path
from .postprocess import load_on_completion


class FitAlgorithm(EngineAlgorithm):
    engine_command = "fit"
    group_id, group_title = "training", "Training"
    INPUT, LABELS, FIELD, CLASSES, EPOCHS, REFINE_EPOCHS = (
        "INPUT", "LABELS", "FIELD", "CLASSES", "EPOCHS", "REFINE_EPOCHS")
    TILE, BASE, FROM_SCRATCH, HOLDOUT, SEED, PREDICT, DEVICE, BAND_ORDER = (
        "TILE", "BASE", "FROM_SCRATCH", "HOLDOUT", "SEED", "PREDICT", "DEVICE", "BAND_ORDER")
    ITERATIONS, THREADS = "ITERATIONS", "THREADS"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    MODEL, LANDCOVER, PSEUDOMASK, CONFIDENCE, AREAS, RUN, METRICS = (
        "MODEL", "LANDCOVER", "PSEUDOMASK", "CONFIDENCE", "AREAS", "RUN", "METRICS")
    TAGGED, TRAIN_TILES, HOLDOUT_TILES = "TAGGED", "TRAIN_TILES", "HOLDOUT_TILES"

    display_name = "Train on my labels"
    help_text = (
        "Trains a model on image-level tags of your own Sentinel-2 raster(s) and maps them with "
        "it. Labels: a tile grid from 'Make a tile grid for tagging' whose cells list the classes "
        "they contain (leave the class field empty), or any point, line or polygon layer with a "
        "class field (names or integer codes, e.g. SCP's MC_info/MC_ID or dzetsaka's class "
        "field): every tile a label touches gets that class.\n\nClass scheme: a JSON file "
        "{\"name\", \"title\", \"classes\": [{\"value\", \"name\", \"color\"}]} (the SparseViT "
        "panel writes one); empty: the classes are the distinct label values.\n\nThe output "
        "folder receives the model (a folder 'model' that 'Map land cover' and the panel's model "
        "selector accept) and, unless 'Map the rasters' is off, the land-cover map, pseudomask, "
        "confidence and class areas. Epochs 0: the engine's defaults. Training on a CPU takes "
        "minutes to hours depending on the number of tagged tiles.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUT, self.tr("Sentinel-2 raster(s)"), layerType=QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.LABELS, self.tr("Labels: a tagged tile grid, or points/lines/polygons with a class field"),
            types=[QgsProcessing.TypeVectorAnyGeometry]))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, self.tr("Class field (empty: the labels are a tile grid, field 'classes')"),
            parentLayerParameterName=self.LABELS, optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.CLASSES, self.tr("Class scheme JSON (empty: the distinct label values)"),
            behavior=QgsProcessingParameterFile.File, extension="json", optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.EPOCHS, self.tr("Classifier epochs (0: the engine's default)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            self.REFINE_EPOCHS, self.tr("Map network epochs (0: the engine's default)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.PREDICT, self.tr("Map the rasters with the trained model"), defaultValue=True))
        advanced = [
            QgsProcessingParameterNumber(
                self.ITERATIONS, self.tr("Refinement iterations of the map network (0: the engine's default)"),
                type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=10),
            QgsProcessingParameterNumber(
                self.TILE, self.tr("Tile size in pixels (0: the grid's cells or the model's tag tile)"),
                type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=4096),
            QgsProcessingParameterFile(
                self.BASE, self.tr("Start from this model (empty: the engine's default)"),
                behavior=QgsProcessingParameterFile.File,
                fileFilter="SparseViT model (bundle.json *.safetensors);;All files (*)", optional=True),
            QgsProcessingParameterBoolean(
                self.FROM_SCRATCH, self.tr("Start from scratch (no pretrained model)"), defaultValue=False),
            QgsProcessingParameterNumber(
                self.HOLDOUT, self.tr("Share of tagged tiles held out for scoring"),
                type=QgsProcessingParameterNumber.Double, defaultValue=0.2, minValue=0.0, maxValue=0.9),
            QgsProcessingParameterNumber(
                self.SEED, self.tr("Random seed"), type=QgsProcessingParameterNumber.Integer, defaultValue=0),
            QgsProcessingParameterNumber(
                self.THREADS, self.tr("CPU threads (0: the engine's default)"),
                type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0),
            QgsProcessingParameterEnum(
                self.DEVICE, self.tr("Device"), options=list(DEVICES), defaultValue="auto",
                usesStaticStrings=True),
            QgsProcessingParameterString(
                self.BAND_ORDER, self.tr("Band names in file order (e.g. B02,B03,B04,B08)"), optional=True),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputFolder(self.MODEL, self.tr("Trained model (folder)")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.LANDCOVER, self.tr("Land cover")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.PSEUDOMASK, self.tr("Attention pseudomask")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.CONFIDENCE, self.tr("Confidence")))
        self.addOutput(QgsProcessingOutputFile(self.AREAS, self.tr("Class areas (CSV)")))
        self.addOutput(QgsProcessingOutputFile(self.RUN, self.tr("Run record (JSON)")))
        self.addOutput(QgsProcessingOutputString(self.METRICS, self.tr("Scores (JSON)")))
        self.addOutput(QgsProcessingOutputNumber(self.TAGGED, self.tr("Tagged tiles")))
        self.addOutput(QgsProcessingOutputNumber(self.TRAIN_TILES, self.tr("Tiles trained on")))
        self.addOutput(QgsProcessingOutputNumber(self.HOLDOUT_TILES, self.tr("Tiles held out")))

    def _labels(self, parameters, context, field: str | None, out: Path) -> tuple[str, str | None]:
        """``(file, layer name)`` for the engine: the layer's own file, or a snapshot of it in
        the output folder (a memory layer, a filter, unsaved edits)."""
        layer = self.parameterAsVectorLayer(parameters, self.LABELS, context)
        if layer is None:
            raise QgsProcessingException(self.tr("No labels layer given."))
        wanted = field or GRID_FIELD
        if layer.fields().indexOf(wanted) < 0:
            hint = "" if field else self.tr(" Name the class field, or give a tile grid.")
            raise QgsProcessingException(self.tr("{0}: has no field '{1}'.{2}").format(layer.name(), wanted, hint))
        source = ogr_source(layer)
        if source is not None:
            return source
        features = self.parameterAsSource(parameters, self.LABELS, context)
        name = "labels" if field else GRID_LAYER
        try:
            path = write_labels_snapshot(features.getFeatures(), features.fields(), features.wkbType(),
                                         features.sourceCrs(), out / LABELS_SNAPSHOT, name, keep=[wanted],
                                         transform_context=context.transformContext())
        except JobError as exc:
            raise QgsProcessingException(str(exc)) from exc
        return str(path), name

    def engine_args(self, parameters, context, feedback):
        layers = self.parameterAsLayerList(parameters, self.INPUT, context)
        if not layers:
            raise QgsProcessingException(self.tr("No raster given."))
        rasters = [raster_path(lyr) for lyr in layers]
        out = Path(self.parameterAsString(parameters, self.OUTPUT_FOLDER, context))
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise QgsProcessingException(self.tr("Cannot create the output folder {0}: {1}")
                                         .format(out, exc)) from exc
        field = (self.parameterAsString(parameters, self.FIELD, context) or "").strip() or None
        labels, layer_name = self._labels(parameters, context, field, out)
        request = FitRequest(
            rasters=rasters, labels=labels, out=str(out), layer=layer_name, field=field,
            classes=self.parameterAsFile(parameters, self.CLASSES, context) or None,
            tile=self.parameterAsInt(parameters, self.TILE, context),
            base=self.parameterAsFile(parameters, self.BASE, context) or "",
            from_scratch=self.parameterAsBoolean(parameters, self.FROM_SCRATCH, context),
            epochs=self.parameterAsInt(parameters, self.EPOCHS, context),
            refine_epochs=self.parameterAsInt(parameters, self.REFINE_EPOCHS, context),
            iterations=self.parameterAsInt(parameters, self.ITERATIONS, context),
            holdout=self.parameterAsDouble(parameters, self.HOLDOUT, context),
            seed=self.parameterAsInt(parameters, self.SEED, context),
            predict=self.parameterAsBoolean(parameters, self.PREDICT, context),
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            band_order=self.parameterAsString(parameters, self.BAND_ORDER, context) or None)
        try:
            args = request.to_args()
        except JobError as exc:
            raise QgsProcessingException(str(exc)) from exc
        self._label = input_stem(rasters[0])
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        result = outcome.result or {}
        outs = result.get("outputs") or {}
        tiles = result.get("tiles") or {}
        scheme = None
        if result.get("scheme"):
            try:
                scheme = as_scheme(result["scheme"])
            except SchemeError as exc:
                feedback.pushWarning(str(exc))
        label = getattr(self, "_label", "") or "run"
        if outs.get(roles.LANDCOVER):
            load_on_completion(context, outs[roles.LANDCOVER], self.tr("Land cover (trained) — {0}").format(label),
                               self.LANDCOVER, roles.LANDCOVER, scheme)
        if outs.get(roles.ROLE_MODEL):
            feedback.pushInfo(self.tr("Trained model: {0}").format(outs[roles.ROLE_MODEL]))
        if tiles:
            feedback.pushInfo(self.tr("Tiles: {0} tagged, {1} trained on, {2} held out").format(
                tiles.get("tagged"), tiles.get("train"), tiles.get("holdout")))
        return {
            self.OUTPUT_FOLDER: self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
            self.MODEL: outs.get(roles.ROLE_MODEL), self.LANDCOVER: outs.get(roles.LANDCOVER),
            self.PSEUDOMASK: outs.get(roles.PSEUDOMASK), self.CONFIDENCE: outs.get(roles.CONFIDENCE),
            self.AREAS: outs.get(roles.AREAS_CSV), self.RUN: outs.get(roles.RUN),
            self.METRICS: json.dumps(result.get("metrics") or {}, sort_keys=True, default=str),
            self.TAGGED: tiles.get("tagged"), self.TRAIN_TILES: tiles.get("train"),
            self.HOLDOUT_TILES: tiles.get("holdout"),
        }
