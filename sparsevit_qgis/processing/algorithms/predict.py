"""``sparsevit:predict``: land cover of a Sentinel-2 (+ Sentinel-1) raster of any size."""
from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputFile,
    QgsProcessingOutputRasterLayer,
    QgsProcessingOutputString,
    QgsProcessingOutputVectorLayer,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
)

from ...core import protocol as roles
from ...core.fit_job import DEVICES
from ...core.predict_job import DEFAULT_BATCH_SIZE, LEVELS, PRECISIONS, JobError, PredictRequest, input_stem
from ...core.results import class_area_line
from .base import EngineAlgorithm, raster_path
from .postprocess import load_on_completion


class PredictAlgorithm(EngineAlgorithm):
    engine_command = "predict"
    group_id, group_title = "mapping", "Land-cover mapping"
    INPUT, S1, MODEL, EXTENT, TILE, LEVEL = "INPUT", "S1", "MODEL", "EXTENT", "TILE", "LEVEL"
    INPUT_PATH = "INPUT_PATH"
    ATTENTION, POLYGONS, OVERVIEW, OUTPUT_FOLDER = "ATTENTION", "POLYGONS", "OVERVIEW", "OUTPUT_FOLDER"
    MASK_CLOUDS = "MASK_CLOUDS"
    LANDCOVER, PSEUDOMASK, CONFIDENCE = "LANDCOVER", "PSEUDOMASK", "CONFIDENCE"
    LANDCOVER_COARSE, AREAS_COARSE = "LANDCOVER_COARSE", "AREAS_COARSE"
    ATTENTION_MAPS, POLYGON_LAYER, AREAS, RUN, DEVICE = (
        "ATTENTION_MAPS", "POLYGON_LAYER", "AREAS", "RUN", "DEVICE")
    # advanced parameters; DEVICE is also the output naming the device used
    THREADS, PRECISION, BATCH_SIZE, BAND_ORDER = "THREADS", "PRECISION", "BATCH_SIZE", "BAND_ORDER"

    display_name = "Map land cover"
    help_text = (
        "Maps land cover on a Sentinel-2 raster (optionally with Sentinel-1 VV/VH) of any "
        "size, tile by tile, in a separate engine process. The input is a raster layer or a "
        "product path (a folder of per-band JP2/GeoTIFF files, a .SAFE folder as downloaded, "
        "its .zip or its MTD_*.xml), exactly one of the two. Writes into the output folder a "
        "land-cover map (paletted GeoTIFF with class names and a .qml style), the attention "
        "pseudomask, a confidence raster (0..1), class-area tables (CSV/JSON) and optionally "
        "polygons and per-head attention maps. The land-cover map is added to the project "
        "styled.\n\nLevel: the detailed map has the model's own classes (the 10 EuroSAT "
        "classes for the bundled model); the coarse map merges them into Water, Built-up, "
        "Cropland, Grassland and Forest (with its own class areas) and is added on top of the "
        "detailed one. 'Both' writes the detailed map alone for a model whose classes have no "
        "coarse level.\n\nModel: a model folder (with bundle.json) or a classifier .safetensors; "
        "empty uses the bundled default model.\nExtent: only this rectangle is mapped (the "
        "engine has no polygon clip).\n\nAdvanced: Device (auto: the GPU when the engine's "
        "PyTorch finds one, else the CPU), CPU threads (0: the engine's default), precision "
        "(auto: bf16 on GPUs and on CPUs with native bf16, else fp32) and batch size (tiles per batch, 8 by default); "
        "the Device output says what the run used. Band order: the Sentinel-2 name of each band "
        "in file order (- for a band to leave out) or a preset (eurosat, esa, esa12), for a "
        "raster whose bands the engine cannot name or names wrongly (see Inspect input raster); "
        "empty: the engine names them.")

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.INPUT, self.tr("Sentinel-2 raster"), optional=True))
        # products that are no single raster layer: batch mode, the model builder and
        # qgis_process need them as a path (exactly one of the two is given)
        self.addParameter(QgsProcessingParameterFile(
            self.INPUT_PATH, self.tr("…or a Sentinel-2 product path: per-band folder, .SAFE folder "
                                     "(or its .zip / MTD_*.xml file)"),
            behavior=QgsProcessingParameterFile.Folder, optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.S1, self.tr("Sentinel-1 raster (VV, VH; models trained with S1)"), optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.MODEL, self.tr("Model (bundle.json / its folder, or classifier .safetensors; "
                                "empty: bundled default)"),
            behavior=QgsProcessingParameterFile.File,
            fileFilter="SparseViT model (bundle.json *.safetensors);;All files (*)", optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, self.tr("Only this extent (empty: the whole raster)"), optional=True))
        tile = QgsProcessingParameterNumber(
            self.TILE, self.tr("Tile size in pixels (0: the model's)"),
            type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0, maxValue=8192)
        self.addParameter(tile)
        self.addParameter(QgsProcessingParameterEnum(
            self.LEVEL, self.tr("Land-cover level"), options=[self.tr(label) for _v, label in LEVELS],
            defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            self.ATTENTION, self.tr("Also write per-head attention maps"), defaultValue=False))
        self.addParameter(QgsProcessingParameterBoolean(
            self.POLYGONS, self.tr("Also write land-cover polygons (GeoPackage)"), defaultValue=False))
        self.addParameter(QgsProcessingParameterBoolean(
            self.MASK_CLOUDS, self.tr("Mask clouds (no data in the maps, out of the class areas)"),
            defaultValue=True))
        overview = QgsProcessingParameterBoolean(
            self.OVERVIEW, self.tr("Write a PNG overview"), defaultValue=True)
        advanced = [
            overview,
            QgsProcessingParameterEnum(
                self.DEVICE, self.tr("Device"), options=list(DEVICES), defaultValue="auto",
                usesStaticStrings=True),
            QgsProcessingParameterNumber(
                self.THREADS, self.tr("CPU threads (0: the engine's default)"),
                type=QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0),
            QgsProcessingParameterEnum(
                self.PRECISION, self.tr("Precision"), options=[v for v, _label in PRECISIONS],
                defaultValue="auto", usesStaticStrings=True),
            QgsProcessingParameterNumber(
                self.BATCH_SIZE, self.tr("Batch size (tiles per batch)"),
                type=QgsProcessingParameterNumber.Integer, defaultValue=DEFAULT_BATCH_SIZE,
                minValue=1, maxValue=4096),
            QgsProcessingParameterString(
                self.BAND_ORDER, self.tr("Band names in file order (e.g. B01,B02,... or eurosat, esa, esa12)"),
                optional=True),
        ]
        for p in advanced:
            p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
            self.addParameter(p)
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, self.tr("Output folder")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.LANDCOVER, self.tr("Land cover")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.LANDCOVER_COARSE,
                                                      self.tr("Land cover, coarse")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.PSEUDOMASK, self.tr("Attention pseudomask")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.CONFIDENCE, self.tr("Confidence")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.ATTENTION_MAPS, self.tr("Attention maps")))
        self.addOutput(QgsProcessingOutputVectorLayer(
            self.POLYGON_LAYER, self.tr("Land-cover polygons"), QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputFile(self.AREAS, self.tr("Class areas (CSV)")))
        self.addOutput(QgsProcessingOutputFile(self.AREAS_COARSE, self.tr("Coarse class areas (CSV)")))
        self.addOutput(QgsProcessingOutputFile(self.RUN, self.tr("Run record (JSON)")))
        self.addOutput(QgsProcessingOutputString(self.DEVICE, self.tr("Device used")))

    def engine_args(self, parameters, context, feedback):
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        product = (self.parameterAsFile(parameters, self.INPUT_PATH, context) or "").strip()
        if (layer is None) == (not product):
            raise QgsProcessingException(self.tr(
                "Give exactly one Sentinel-2 input: a raster layer (INPUT) or a product path "
                "(INPUT_PATH: a per-band folder, a .SAFE folder, its .zip or MTD_*.xml)."))
        if product and not Path(product).exists():
            raise QgsProcessingException(self.tr("{0}: no such file or folder.").format(product))
        s1 = self.parameterAsRasterLayer(parameters, self.S1, context)
        out = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        area = None
        if parameters.get(self.EXTENT) not in (None, ""):
            area = (self.parameterAsExtent(parameters, self.EXTENT, context),
                    self.parameterAsExtentCrs(parameters, self.EXTENT, context))
        level = self.parameterAsEnum(parameters, self.LEVEL, context)
        request = PredictRequest(
            s2=raster_path(layer) if layer is not None else product, out=out,
            model=self.parameterAsFile(parameters, self.MODEL, context) or "",
            s1=raster_path(s1) if s1 is not None else None, area=area,
            tile=self.parameterAsInt(parameters, self.TILE, context),
            level=LEVELS[level][0] if 0 <= level < len(LEVELS) else None,
            attention=self.parameterAsBoolean(parameters, self.ATTENTION, context),
            polygons=self.parameterAsBoolean(parameters, self.POLYGONS, context),
            overview=self.parameterAsBoolean(parameters, self.OVERVIEW, context),
            cloud_mask=self.parameterAsBoolean(parameters, self.MASK_CLOUDS, context),
            device=self.parameterAsEnumString(parameters, self.DEVICE, context) or "auto",
            threads=self.parameterAsInt(parameters, self.THREADS, context),
            precision=self.parameterAsEnumString(parameters, self.PRECISION, context) or "auto",
            batch_size=self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            band_order=self.parameterAsString(parameters, self.BAND_ORDER, context) or None)
        try:
            args = request.to_args()
        except JobError as exc:
            raise QgsProcessingException(str(exc)) from exc
        try:
            Path(out).mkdir(parents=True, exist_ok=True)  # the engine wants an existing folder
        except OSError as exc:
            raise QgsProcessingException(self.tr("Cannot create the output folder {0}: {1}")
                                         .format(out, exc)) from exc
        self._label = input_stem(request.s2)
        return args

    def engine_outputs(self, outcome, parameters, context, feedback):
        result = outcome.result or {}
        outs = result.get("outputs") or {}
        scheme = result.get("scheme")
        results = {
            self.OUTPUT_FOLDER: self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
            self.LANDCOVER: outs.get(roles.LANDCOVER), self.PSEUDOMASK: outs.get(roles.PSEUDOMASK),
            self.LANDCOVER_COARSE: outs.get(roles.LANDCOVER_COARSE),
            self.AREAS_COARSE: outs.get(roles.AREAS_COARSE_CSV),
            self.CONFIDENCE: outs.get(roles.CONFIDENCE), self.ATTENTION_MAPS: outs.get(roles.ATTENTION),
            self.POLYGON_LAYER: outs.get(roles.POLYGONS), self.AREAS: outs.get(roles.AREAS_CSV),
            self.RUN: outs.get(roles.RUN), self.DEVICE: result.get("device") or "",
        }
        label = getattr(self, "_label", "") or "run"
        if outs.get(roles.LANDCOVER):
            load_on_completion(context, outs[roles.LANDCOVER], self.tr("Land cover — {0}").format(label),
                               self.LANDCOVER, roles.LANDCOVER, scheme)
        if outs.get(roles.LANDCOVER_COARSE):  # loaded after the detailed map: on top of it
            load_on_completion(context, outs[roles.LANDCOVER_COARSE],
                               self.tr("Land cover, coarse — {0}").format(label),
                               self.LANDCOVER_COARSE, roles.LANDCOVER_COARSE,
                               result.get("coarse_scheme"))
        for key in ("class_areas", "class_areas_coarse"):
            for row in result.get(key) or []:
                if row.get("hectares"):
                    feedback.pushInfo(class_area_line(row))
        return results
