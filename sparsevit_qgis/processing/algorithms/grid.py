"""``sparsevit:grid``: a tile grid over a raster, to tag with the classes each cell contains."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ...core import protocol as roles
from ...core.fit_job import GridRequest
from ...core.grid_style import style_grid
from ...core.predict_job import JobError
from ...core.tags import GRID_PROPERTY
from ...core.user_scheme import EditableScheme
from .base import EngineAlgorithm, raster_path


class GridStyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Styles a grid Processing loaded by the class scheme of the project (untagged: hollow)."""

    _alive: list["GridStyleOnLoad"] = []  # see postprocess.StyleOnLoad

    @classmethod
    def create(cls) -> "GridStyleOnLoad":
        inst = cls()
        cls._alive = cls._alive[-63:] + [inst]
        return inst

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802
        project = context.project() if context is not None else None
        scheme = EditableScheme.load_from_project(project) if project is not None else None
        scheme = scheme or EditableScheme.default()
        layer.setCustomProperty(GRID_PROPERTY, True)
        style_grid(layer, scheme.classes)


class GridAlgorithm(EngineAlgorithm):
    engine_command = "grid"
    group_id, group_title = "training", "Training"
    INPUT, TILE, MODEL, EXTENT, BAND_ORDER, OUTPUT = "INPUT", "TILE", "MODEL", "EXTENT", "BAND_ORDER", "OUTPUT"
    CELLS, TILE_USED = "CELLS", "TILE_USED"

    display_name = "Make a tile grid for tagging"
    help_text = (
        "Writes a grid of square cells over a Sentinel-2 raster, aligned to its pixel grid, as a "
        "GeoPackage (layer 'tiles', in the raster's CRS) with the fields tile_id, raster, row, col "
        "and classes. Tag each cell with the classes it contains (the 'classes' field, class "
        "names joined by ';'; empty: untagged), in the SparseViT panel's tagging tool or by "
        "editing the field, then train on it with 'Train on my labels'.\n\nTile size: the cell "
        "size in pixels; 0 uses the model's tag tile size (64 px for the bundled model).\n"
        "Extent: only cells over this rectangle.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, self.tr("Sentinel-2 raster")))
        self.addParameter(QgsProcessingParameterNumber(
            self.TILE, self.tr("Cell size in pixels (0: the model's tag tile size)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=4096))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, self.tr("Only this extent (empty: the whole raster)"), optional=True))
        model = QgsProcessingParameterFile(
            self.MODEL, self.tr("Model whose tag tile size to use (empty: bundled default)"),
            behavior=QgsProcessingParameterFile.File,
            fileFilter="SparseViT model (bundle.json *.safetensors);;All files (*)", optional=True)
        band_order = QgsProcessingParameterString(
            self.BAND_ORDER, self.tr("Band names in file order (e.g. B02,B03,B04,B08)"), optional=True)
        for p in (model, band_order):
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        out = QgsProcessingParameterVectorDestination(
            self.OUTPUT, self.tr("Tile grid"), type=QgsProcessing.TypeVectorPolygon)
        out.setSupportsNonFileBasedOutput(False)  # the engine writes a GeoPackage
        self.addParameter(out)
        self.addOutput(QgsProcessingOutputNumber(self.CELLS, self.tr("Number of cells")))
        self.addOutput(QgsProcessingOutputNumber(self.TILE_USED, self.tr("Cell size in pixels")))

    def _output(self, parameters, context) -> str:
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        if not out or out.startswith(("memory:", "ogr:", "postgres:", "postgis:")):
            raise QgsProcessingException(self.tr("The tile grid is written as a GeoPackage file; "
                                                 "choose a .gpkg file."))
        return GridRequest(rasters=["x"], out=out).out_path

    def engine_args(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        if layer is None:
            raise QgsProcessingException(self.tr("No raster given."))
        area = None
        if parameters.get(self.EXTENT) not in (None, ""):
            area = (self.parameterAsExtent(parameters, self.EXTENT, context),
                    self.parameterAsExtentCrs(parameters, self.EXTENT, context))
        request = GridRequest(
            rasters=[raster_path(layer)], out=self._output(parameters, context),
            tile=self.parameterAsInt(parameters, self.TILE, context),
            model=self.parameterAsFile(parameters, self.MODEL, context) or "", area=area,
            band_order=self.parameterAsString(parameters, self.BAND_ORDER, context) or None)
        try:
            args = request.to_args()
        except JobError as exc:
            raise QgsProcessingException(str(exc)) from exc
        Path(request.out_path).parent.mkdir(parents=True, exist_ok=True)
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        result = outcome.result or {}
        requested = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        path = (result.get("outputs") or {}).get(roles.ROLE_GRID) or self._output(parameters, context)
        if context.willLoadLayerOnCompletion(requested):
            details = context.layerToLoadOnCompletionDetails(requested)
            details.setPostProcessor(GridStyleOnLoad.create())
            if path != requested:  # the engine wrote .gpkg where another extension was asked for
                layers = dict(context.layersToLoadOnCompletion())
                layers.pop(requested, None)
                layers[path] = details
                context.setLayersToLoadOnCompletion(layers)
        feedback.pushInfo(self.tr("{0} cells of {1} px in {2}").format(
            result.get("cells", "?"), result.get("tile", "?"), path))
        return {self.OUTPUT: path, self.CELLS: result.get("cells"), self.TILE_USED: result.get("tile")}
