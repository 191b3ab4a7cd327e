"""``sparsevit:export``: a classified raster as COG (any CRS), polygons or a class-area table."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterCrs,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
)

from ...core import protocol as roles
from ...core.predict_job import crs_arg
from ...core.reclassify import shown_classes, write_json
from ...core.styling import palette_classes
from .base import EngineAlgorithm, raster_path
from .postprocess import load_on_completion

FORMATS = ("cog", "gpkg", "csv", "json")
EXTENSIONS = {"cog": ".tif", "gpkg": ".gpkg", "csv": ".csv", "json": ".json"}


class ExportAlgorithm(EngineAlgorithm):
    engine_command = "export"
    group_id, group_title = "mapping", "Land-cover mapping"
    INPUT, FORMAT, CRS, OUTPUT, SUMMARY = "INPUT", "FORMAT", "CRS", "OUTPUT", "SUMMARY"
    # advanced parameters, gpkg only
    MIN_AREA_PIXELS, SIMPLIFY = "MIN_AREA_PIXELS", "SIMPLIFY"

    display_name = "Export land cover"
    help_text = (
        "Exports a classified land-cover raster (a SparseViT result) as\n"
        "- cog: a Cloud Optimized GeoTIFF, optionally reprojected to CRS (nearest neighbour; "
        "colours and class names kept),\n"
        "- gpkg: class polygons in a GeoPackage (fields class_value, class_name, area_ha), "
        "optionally in CRS, loaded styled by class,\n"
        "- csv / json: the class-area table (hectares on the ground; CRS does not apply).\n"
        "The output file extension is set to match the format.\n\n"
        "Advanced, gpkg only: Minimum area (pixels; 0 keeps every patch) merges smaller "
        "patches into their largest neighbour before polygonizing (at 10 m pixels 1 px = "
        "0.01 ha, so 100 px = 1 ha); Simplify (pixels; 0 keeps the exact pixel outlines) "
        "smooths each polygon's outline with that tolerance, after which neighbours may "
        "overlap or leave small gaps.")

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
        advanced = [
            QgsProcessingParameterNumber(
                self.MIN_AREA_PIXELS,
                self.tr("Minimum polygon area in pixels (gpkg; 0: keep every patch)"),
                type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0),
            QgsProcessingParameterNumber(
                self.SIMPLIFY, self.tr("Simplify outlines, tolerance in pixels (gpkg; 0: exact)"),
                type=QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
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

    def _polygon_args(self, parameters, context, fmt: str, feedback) -> list[str]:
        """``--min-area-pixels`` / ``--simplify``: gpkg only, each only when > 0."""
        min_area = self.parameterAsInt(parameters, self.MIN_AREA_PIXELS, context)
        simplify = self.parameterAsDouble(parameters, self.SIMPLIFY, context)
        if fmt != "gpkg":
            if min_area > 0 or simplify > 0:
                feedback.pushWarning(self.tr("Minimum area and Simplify ignored: they apply to "
                                             "polygons (gpkg) only."))
            return []
        args = []
        if min_area > 0:
            args += ["--min-area-pixels", str(min_area)]
        if simplify > 0:
            args += ["--simplify", f"{simplify:g}"]
        return args

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
        args += self._polygon_args(parameters, context, fmt, feedback)
        # What the user sees in the source layer colours the polygons (read now: the layer
        # belongs to this thread's context) and is what the export writes: class names and
        # colours edited in the Symbology reach the COG's colour table and the polygons' names.
        self._classes = palette_classes(layer)
        shown = shown_classes(self._classes)
        # only a layer of the project can carry the user's edits; a raster given as a path is
        # a fresh layer whose palette may be a GDAL colour table with entries beyond its classes
        project = context.project()
        in_project = project is not None and project.mapLayer(layer.id()) is not None
        if shown and in_project:
            path = QgsProcessingUtils.generateTempFilename("shown_classes.json")
            args += ["--classes", str(write_json(Path(path), shown))]
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
