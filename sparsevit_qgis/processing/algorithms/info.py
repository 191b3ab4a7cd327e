"""``sparsevit:info``: what the engine finds in an input raster (bands, CRS, size)."""
from __future__ import annotations

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from .base import EngineAlgorithm, raster_path, result_json


class InfoAlgorithm(EngineAlgorithm):
    engine_command = "info"
    INPUT = "INPUT"
    S1 = "S1"
    BAND_ORDER = "BAND_ORDER"
    REPORT = "REPORT"

    display_name = "Inspect input raster"
    help_text = (
        "Reports what the SparseViT engine sees in a Sentinel-2 or Sentinel-1 raster: the "
        "band mapping it found (which band is B2, B3, ..., VV, VH), data type, CRS, size and "
        "pixel size. Use it before a run to check that bands are recognised. The report is "
        "returned as JSON in the REPORT output and written to the log.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Input raster (Sentinel-2 or Sentinel-1)")))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.S1, self.tr("Sentinel-1 raster to align with the Sentinel-2 input"), optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.BAND_ORDER, self.tr("Band names in file order (e.g. B01,B02,... or eurosat, esa, esa12)"),
            optional=True))
        self.addOutput(QgsProcessingOutputString(self.REPORT, self.tr("Band report (JSON)")))

    def engine_args(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("No input raster given."))
        args = [raster_path(layer)]
        s1 = self.parameterAsRasterLayer(parameters, self.S1, context)
        if s1 is not None:
            args += ["--s1", raster_path(s1)]
        band_order = (self.parameterAsString(parameters, self.BAND_ORDER, context) or "").strip()
        if band_order:
            args += ["--band-order", band_order]
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        report = result_json(outcome)
        feedback.pushInfo(report)
        return {self.REPORT: report}
