"""``sparsevit:evaluate``: scores of a classified raster against a reference raster or points."""
from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ...core.resources import resources_dir
from .base import EngineAlgorithm, raster_path


def mapping_names() -> list[str]:
    res = resources_dir()
    folder = res / "mappings" if res is not None else None
    return sorted(p.stem for p in folder.glob("*.json")) if folder and folder.is_dir() else []


class EvaluateAlgorithm(EngineAlgorithm):
    engine_command = "evaluate"
    group_id, group_title = "accuracy", "Accuracy"
    PREDICTION, REFERENCE, POINTS, FIELD = "PREDICTION", "REFERENCE", "POINTS", "FIELD"
    SCHEME, REF_SCHEME, MAPPING, UNCOVERED, OUTPUT = "SCHEME", "REF_SCHEME", "MAPPING", "UNCOVERED", "OUTPUT"
    MIOU, OA, AA, MEAN_F1, REPORT = "MIOU", "OVERALL_ACCURACY", "AVERAGE_ACCURACY", "MEAN_F1", "REPORT"

    display_name = "Evaluate land cover"
    help_text = (
        "Confusion-matrix scores of a classified raster: mIoU, overall and average accuracy, "
        "mean F1, per-class IoU and F1, against either a reference class raster (reprojected "
        "on the fly) or a point layer whose FIELD holds the class value or name. Give "
        "REFERENCE or POINTS, not both. Class schemes and the class mapping are needed only "
        "when the reference uses other classes than the prediction. The full report is "
        "written as JSON to OUTPUT.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.PREDICTION, self.tr("Classified raster (prediction)")))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.REFERENCE, self.tr("Reference class raster"), optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POINTS, self.tr("Labelled points"), [QgsProcessing.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterField(
            self.FIELD, self.tr("Class field of the points"), parentLayerParameterName=self.POINTS,
            optional=True))
        advanced = [
            QgsProcessingParameterString(self.SCHEME, self.tr("Class scheme of the prediction "
                                                              "(empty: the raster's own)"), optional=True),
            QgsProcessingParameterString(self.REF_SCHEME, self.tr("Class scheme of the reference"),
                                         optional=True),
            QgsProcessingParameterEnum(self.MAPPING, self.tr("Class mapping reference -> prediction"),
                                       options=mapping_names(), optional=True, usesStaticStrings=True),
            QgsProcessingParameterEnum(self.UNCOVERED, self.tr("Reference pixels the prediction "
                                                               "does not cover"),
                                       options=["ignore", "miss"], defaultValue="ignore",
                                       usesStaticStrings=True),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, self.tr("Report"), fileFilter="JSON (*.json)"))
        for key, label in ((self.MIOU, "mIoU"), (self.OA, "Overall accuracy"),
                           (self.AA, "Average accuracy"), (self.MEAN_F1, "Mean F1")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))
        self.addOutput(QgsProcessingOutputString(self.REPORT, self.tr("Report (JSON text)")))

    def engine_args(self, parameters, context, feedback):
        pred = self.parameterAsRasterLayer(parameters, self.PREDICTION, context)
        if pred is None:
            raise QgsProcessingException(self.tr("No classified raster given."))
        ref = self.parameterAsRasterLayer(parameters, self.REFERENCE, context)
        has_points = parameters.get(self.POINTS) not in (None, "")
        if (ref is None) == (not has_points):
            raise QgsProcessingException(self.tr(
                "Give either a reference raster or labelled points (exactly one of them)."))
        args = ["--pred", raster_path(pred)]
        if ref is not None:
            args += ["--ref", raster_path(ref)]
            uncovered = self.parameterAsEnumString(parameters, self.UNCOVERED, context)
            if uncovered:
                args += ["--uncovered", uncovered]
        else:
            field = self.parameterAsString(parameters, self.FIELD, context)
            if not field:
                raise QgsProcessingException(self.tr("Choose the points' class field."))
            # The engine reads files: a memory or database layer is written out first.
            path, layer_name = self.parameterAsCompatibleSourceLayerPathAndLayerName(
                parameters, self.POINTS, context, ["gpkg", "shp", "geojson"], "gpkg", feedback)
            if not path:
                raise QgsProcessingException(self.tr("Cannot read the points layer."))
            args += ["--points", path, "--field", field]
            if layer_name:
                args += ["--layer", layer_name]
        for key, flag in ((self.SCHEME, "--scheme"), (self.REF_SCHEME, "--ref-scheme")):
            value = (self.parameterAsString(parameters, key, context) or "").strip()
            if value:
                args += [flag, value]
        mapping = self.parameterAsEnumString(parameters, self.MAPPING, context)
        if mapping:
            args += ["--mapping", mapping]
        args += ["--out", self.parameterAsFileOutput(parameters, self.OUTPUT, context)]
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        r = outcome.result or {}
        for key in ("miou", "overall_accuracy", "average_accuracy", "mean_f1"):
            if r.get(key) is not None:
                feedback.pushInfo(f"{key}: {r[key]:.4f}")
        for w in r.get("warnings") or []:
            feedback.pushWarning(str(w))
        return {self.OUTPUT: r.get("report") or self.parameterAsFileOutput(parameters, self.OUTPUT, context),
                self.MIOU: r.get("miou"), self.OA: r.get("overall_accuracy"),
                self.AA: r.get("average_accuracy"), self.MEAN_F1: r.get("mean_f1"),
                self.REPORT: json.dumps(r, sort_keys=True, default=str)}
