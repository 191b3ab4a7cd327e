"""``sparsevit:export``: a classified raster as COG (any CRS), polygons or a class-area table."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterCrs,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from ...core import protocol as roles
from ...core.predict_job import crs_arg
from ...core.styling import palette_classes
from .base import EngineAlgorithm, raster_path
from .postprocess import load_on_completion

FORMATS = ("cog", "gpkg", "csv", "json")
EXTENSIONS = {"cog": ".tif", "gpkg": ".gpkg", "csv": ".csv", "json": ".json"}


class ExportAlgorithm(EngineAlgorithm):
    engine_command = "export"
    group_id, group_title = "mapping", "Land-cover mapping"
    INPUT, FORMAT, CRS, OUTPUT, SUMMARY = "INPUT", "FORMAT", "CRS", "OUTPUT", "SUMMARY"

    display_name = "Export land cover"
    help_text = (
        "Exports a classified land-cover raster (a SparseViT result) as\n"
        "- cog: a Cloud Optimized GeoTIFF, optionally reprojected to CRS (nearest neighbour; "
        "colours and class names kept),\n"
        "- gpkg: class polygons in a GeoPackage (fields class_value, class_name, area_ha), "
        "optionally in CRS, loaded styled by class,\n"
        "- csv / json: the class-area table (hectares on the ground; CRS does not apply).\n"
        "The output file extension is set to match the format.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Classified land-cover raster")))
        self.addParameter(QgsProcessingParameterEnum(
            self.FORMAT, self.tr("Format"), options=list(FORMATS), defaultValue="cog",
            usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterCrs(
            self.CRS, self.tr("Target CRS (cog, gpkg; empty: the raster's)"), optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, self.tr("Output file"),
            fileFilter="GeoTIFF (*.tif);;GeoPackage (*.gpkg);;CSV (*.csv);;JSON (*.json)"))
        self.addOutput(QgsProcessingOutputString(self.SUMMARY, self.tr("Result (JSON)")))

    def _format(self, parameters, context) -> str:
        fmt = self.parameterAsEnumString(parameters, self.FORMAT, context) or "cog"
        if fmt not in FORMATS:
            raise QgsProcessingException(self.tr("Unknown format {0}; use one of {1}.")
                                         .format(fmt, ", ".join(FORMATS)))
        return fmt

    def _output(self, parameters, context, fmt: str) -> str:
        out = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        # A temporary output gets the filter's first extension whatever the format.
        if Path(out).suffix.lower() != EXTENSIONS[fmt]:
            out = str(Path(out).with_suffix(EXTENSIONS[fmt]))
        return out

    def engine_args(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("No classified raster given."))
        fmt = self._format(parameters, context)
        out = self._output(parameters, context, fmt)
        args = [raster_path(layer), "--out", out, "--format", fmt]
        crs = self.parameterAsCrs(parameters, self.CRS, context)
        if crs.isValid():
            if fmt in ("csv", "json"):
                feedback.pushWarning(self.tr("CRS ignored: class areas are ground areas in any CRS."))
            else:
                args += ["--crs", crs_arg(crs)]
        # What the user sees in the source layer colours the polygons (read now: the layer
        # belongs to this thread's context).
        self._classes = palette_classes(layer)
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        import json
        result = outcome.result or {}
        fmt = result.get("format") or self._format(parameters, context)
        path = result.get("path") or self._output(parameters, context, fmt)
        name = Path(path).stem
        if fmt == "cog":
            load_on_completion(context, path, name, self.OUTPUT, roles.LANDCOVER, result.get("scheme"))
        elif fmt == "gpkg":
            uri = path + (f"|layername={result['layer']}" if result.get("layer") else "")
            classes = getattr(self, "_classes", None) or None
            load_on_completion(context, uri, name, self.OUTPUT, roles.POLYGONS, result.get("scheme"), classes)
        return {self.OUTPUT: path,
                self.SUMMARY: json.dumps(result, sort_keys=True, default=str)}
