"""sparsevit:predict / export / evaluate / train through processing.run, on the real engine."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import rasterio
from conftest import REPO, SAMPLE_AREA
from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
)


@pytest.fixture
def engine(provider, real_engine, engine_setting):
    python, sample = real_engine
    engine_setting.set_python_path(str(python))
    return sample


class Feedback(QgsProcessingFeedback):
    """Records what an algorithm reports (stage names, progress)."""

    def __init__(self):
        super().__init__()
        self.texts, self.values, self.warnings = [], [], []
        self.progressChanged.connect(self.values.append)

    def setProgressText(self, text):  # noqa: N802
        self.texts.append(text)
        super().setProgressText(text)

    def pushWarning(self, text):  # noqa: N802
        self.warnings.append(text)
        super().pushWarning(text)


def _run_and_load(alg_id, params, project):
    """Run like the toolbox does: results handled, layers loaded and post-processed."""
    import processing
    from processing.gui.Postprocessing import handleAlgorithmResults
    context = QgsProcessingContext()
    context.setProject(project)
    feedback = Feedback()
    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    results = processing.run(alg, params, context=context, feedback=feedback,
                             onFinish=lambda *a: None)
    assert handleAlgorithmResults(alg, context, feedback)
    return results, feedback


def test_predict_loads_a_styled_land_cover_layer(engine, tiny_bundle, tmp_path, qgis_new_project):
    project = QgsProject.instance()
    extent = "{0},{2},{1},{3} [EPSG:4326]".format(*SAMPLE_AREA)  # xmin,xmax,ymin,ymax
    out = tmp_path / "pred"
    results, feedback = _run_and_load("sparsevit:predict", {
        "INPUT": str(engine), "MODEL": str(tiny_bundle / "bundle.json"), "EXTENT": extent,
        "TILE": 256, "OVERVIEW": False, "THREADS": 1, "PRECISION": "fp32", "MASK_CLOUDS": False,
        "OUTPUT_FOLDER": str(out)}, project)
    for key in ("LANDCOVER", "PSEUDOMASK", "CONFIDENCE", "AREAS"):
        assert Path(results[key]).is_file() and Path(results[key]).parent == out, key
    counts = json.loads(Path(results["RUN"]).read_text())["counts"]
    assert "clouds" not in counts  # MASK_CLOUDS reached the engine as --no-cloud-mask
    assert results["ATTENTION_MAPS"] is None and results["POLYGON_LAYER"] is None
    assert results["DEVICE"] == "CPU (1 threads)"  # THREADS reached the engine
    assert "predict" in feedback.texts and max(feedback.values) == 100
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source() == results["LANDCOVER"]]
    assert len(layers) == 1
    renderer = layers[0].renderer()
    assert isinstance(renderer, QgsPalettedRasterRenderer)
    assert [c.label for c in renderer.classes()][:2] == ["Annual crop", "Forest"]
    assert layers[0].crs().authid() == "EPSG:4326"
    # the extent was honoured: ~170 px, not the 512 px scene
    assert layers[0].width() < 250
    # the default level writes the coarse map too, loaded styled and on top of the detailed one
    coarse = results["LANDCOVER_COARSE"]
    assert coarse.endswith("_landcover_coarse.tif") and Path(coarse).parent == out
    assert Path(results["AREAS_COARSE"]).is_file()
    found = [lyr for lyr in project.mapLayers().values() if lyr.source() == coarse]
    assert len(found) == 1 and isinstance(found[0].renderer(), QgsPalettedRasterRenderer)
    assert [c.label for c in found[0].renderer().classes()] == [
        "Water", "Built-up", "Cropland", "Grassland", "Forest"]
    order = [node.layer() for node in project.layerTreeRoot().findLayers()]
    assert order.index(found[0]) < order.index(layers[0])


def test_predict_reads_a_per_band_product_folder_given_as_a_path(engine, tiny_bundle, tmp_path):
    """A folder of per-band files is no raster layer: INPUT_PATH takes it (batch, model builder,
    qgis_process); exactly one of INPUT / INPUT_PATH."""
    import processing
    from fixtures.rasters import s2_folder

    from sparsevit.bands import S2_BANDS_NO_CIRRUS
    folder = s2_folder(tmp_path, names=S2_BANDS_NO_CIRRUS, size=120)
    results = processing.run("sparsevit:predict", {
        "INPUT_PATH": str(folder), "MODEL": str(tiny_bundle / "bundle.json"), "TILE": 128,
        "OVERVIEW": False, "THREADS": 1, "OUTPUT_FOLDER": str(tmp_path / "out")})
    with rasterio.open(results["LANDCOVER"]) as lc:
        assert (lc.width, lc.height) == (120, 120) and lc.res == (10.0, 10.0)
    for params, match in (({}, "exactly one"), ({"INPUT": str(engine), "INPUT_PATH": str(folder)}, "exactly one"),
                          ({"INPUT_PATH": str(tmp_path / "nowhere")}, "no such file")):
        with pytest.raises(QgsProcessingException, match=match):
            processing.run("sparsevit:predict", {**params, "OUTPUT_FOLDER": str(tmp_path / "o2")})


def test_predict_level_parameter_becomes_the_engine_level(engine, tiny_bundle, tmp_path):
    from qgis.core import QgsProcessingParameterEnum
    alg = QgsApplication.processingRegistry().createAlgorithmById("sparsevit:predict")
    param = alg.parameterDefinition("LEVEL")
    assert isinstance(param, QgsProcessingParameterEnum) and param.defaultValue() == 0
    assert [o.split(":")[0] for o in param.options()] == ["Both", "Detailed", "Coarse"]
    assert "Coarse" in alg.shortHelpString() or "coarse" in alg.shortHelpString()
    seen = {}
    for level in (None, 0, 1, 2):
        params = {"INPUT": str(engine), "MODEL": str(tiny_bundle / "bundle.json"),
                  "OUTPUT_FOLDER": str(tmp_path / "o")}
        if level is not None:
            params["LEVEL"] = level
        args = alg.engine_args(params, QgsProcessingContext(), QgsProcessingFeedback())
        seen[level] = args[args.index("--level") + 1] if "--level" in args else None
    # "Both" is the engine's default: no flag, so a model without a coarse level still runs
    assert seen == {None: None, 0: None, 1: "detailed", 2: "coarse"}


def test_predict_has_advanced_compute_parameters_mapped_to_the_engine(engine, tmp_path):
    from qgis.core import (
        QgsProcessingParameterDefinition,
        QgsProcessingParameterEnum,
        QgsProcessingParameterNumber,
    )
    alg = QgsApplication.processingRegistry().createAlgorithmById("sparsevit:predict")
    expected = {"DEVICE": (QgsProcessingParameterEnum, "auto"), "THREADS": (QgsProcessingParameterNumber, 0),
                "PRECISION": (QgsProcessingParameterEnum, "auto"),
                "BATCH_SIZE": (QgsProcessingParameterNumber, 8)}
    for name, (kind, default) in expected.items():
        param = alg.parameterDefinition(name)
        assert isinstance(param, kind), name
        assert param.flags() & QgsProcessingParameterDefinition.FlagAdvanced, name
        assert param.defaultValue() == default, name
    assert alg.parameterDefinition("DEVICE").options() == ["auto", "cpu", "cuda"]
    assert alg.parameterDefinition("PRECISION").options() == ["auto", "fp32", "bf16"]
    assert alg.parameterDefinition("BATCH_SIZE").minimum() == 1
    assert alg.outputDefinition("DEVICE") is not None  # the device used, as before
    model = str(REPO / "resources" / "models" / "default")
    base = {"INPUT": str(engine), "MODEL": model, "OUTPUT_FOLDER": str(tmp_path / "o")}

    def compute(**extra):
        args = alg.engine_args({**base, **extra}, QgsProcessingContext(), QgsProcessingFeedback())
        return args[args.index("--out") + 2:]

    assert compute() == []  # all auto: the engine chooses
    assert compute(DEVICE="auto", THREADS=0, PRECISION="auto", BATCH_SIZE=8) == []
    assert compute(DEVICE="cpu") == ["--device", "cpu"]
    assert compute(DEVICE="cuda", THREADS=4, PRECISION="bf16", BATCH_SIZE=32) == [
        "--device", "cuda", "--threads", "4", "--precision", "bf16", "--batch-size", "32"]
    assert compute(PRECISION="fp32", BATCH_SIZE=2) == ["--precision", "fp32", "--batch-size", "2"]


def test_predict_without_default_model_says_what_to_do(engine, tmp_path, monkeypatch):
    import processing

    from sparsevit_qgis.core import settings
    monkeypatch.setattr(settings, "default_model_path", lambda: tmp_path / "models" / "default")
    with pytest.raises(QgsProcessingException, match="default model is missing"):
        processing.run("sparsevit:predict", {"INPUT": str(engine), "OUTPUT_FOLDER": str(tmp_path / "o")})


def test_export_to_gpkg_loads_polygons_categorized_by_class(engine, small_prediction, tmp_path,
                                                            qgis_new_project):
    project = QgsProject.instance()
    landcover = small_prediction["outputs"]["landcover"]
    results, _ = _run_and_load("sparsevit:export", {
        "INPUT": landcover, "FORMAT": "gpkg", "CRS": "EPSG:3857",
        "OUTPUT": str(tmp_path / "polys.gpkg")}, project)
    assert results["OUTPUT"] == str(tmp_path / "polys.gpkg")
    layers = [lyr for lyr in project.mapLayers().values() if lyr.source().startswith(results["OUTPUT"])]
    assert len(layers) == 1
    layer = layers[0]
    assert layer.crs().authid() == "EPSG:3857" and layer.featureCount() > 0
    renderer = layer.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert renderer.classAttribute() == "class_value"
    cats = {c.value(): (c.label(), c.symbol().color().name()) for c in renderer.categories()}
    scheme = json.loads((REPO / "resources" / "schemes" / "eurosat.json").read_text())
    for c in scheme["classes"]:
        # the polygons take what the input layer shows: loaded from a path, QGIS's own paletted
        # renderer names classes by the raster's category names; with the engine's .qml, by label
        assert cats[c["value"]] in ((c.get("label", c["name"]), c["color"].lower()),
                                    (c["name"], c["color"].lower()))


def test_export_cog_in_another_crs_and_area_table(engine, small_prediction, tmp_path):
    import processing
    landcover = small_prediction["outputs"]["landcover"]
    cog = processing.run("sparsevit:export", {"INPUT": landcover, "FORMAT": "cog", "CRS": "EPSG:32630",
                                              "OUTPUT": str(tmp_path / "lc.tif")})
    summary = json.loads(cog["SUMMARY"])
    assert summary["grid"]["crs"] == "EPSG:32630" and Path(cog["OUTPUT"]).is_file()
    # a temporary output gets the extension of the format, not the filter's first one
    table = processing.run("sparsevit:export", {"INPUT": landcover, "FORMAT": "csv",
                                                "OUTPUT": "TEMPORARY_OUTPUT"})
    assert table["OUTPUT"].endswith(".csv")
    assert Path(table["OUTPUT"]).read_text().splitlines()[0].startswith("value,name")


def test_evaluate_against_a_reference_raster(engine, small_prediction, tmp_path):
    import processing
    landcover = small_prediction["outputs"]["landcover"]
    ref = tmp_path / "ref.tif"
    shutil.copy(landcover, ref)  # a prediction scored against itself is perfect
    results = processing.run("sparsevit:evaluate", {"PREDICTION": landcover, "REFERENCE": str(ref),
                                                    "OUTPUT": str(tmp_path / "report.json")})
    assert results["OVERALL_ACCURACY"] == pytest.approx(1.0)
    assert results["MIOU"] == pytest.approx(1.0)
    report = json.loads(Path(results["OUTPUT"]).read_text())
    assert report["overall_accuracy"] == pytest.approx(1.0)


def test_evaluate_refuses_a_reference_of_unknown_codes_and_scores_it_when_told(engine, small_prediction, tmp_path):
    """A reference without a class table (0/1 codes) is not scored as the model's classes."""
    import numpy as np
    import processing
    import rasterio
    landcover = small_prediction["outputs"]["landcover"]
    plain = tmp_path / "codes.tif"
    with rasterio.open(landcover) as src:
        profile = {k: src.profile[k] for k in ("driver", "width", "height", "crs", "transform")}
        codes = (src.read(1) % 2).astype(np.uint8)
    with rasterio.open(plain, "w", count=1, dtype="uint8", **profile) as dst:
        dst.write(codes, 1)
    with pytest.raises(QgsProcessingException, match="no class table"):
        processing.run("sparsevit:evaluate", {"PREDICTION": landcover, "REFERENCE": str(plain),
                                              "OUTPUT": str(tmp_path / "r.json")})
    told = processing.run("sparsevit:evaluate", {"PREDICTION": landcover, "REFERENCE": str(plain),
                                                 "REF_SCHEME": "eurosat", "OUTPUT": str(tmp_path / "r2.json")})
    assert 0.0 <= told["OVERALL_ACCURACY"] < 1.0


def test_evaluate_needs_exactly_one_reference(engine, small_prediction, tmp_path):
    import processing
    with pytest.raises(QgsProcessingException, match="exactly one"):
        processing.run("sparsevit:evaluate", {"PREDICTION": small_prediction["outputs"]["landcover"],
                                              "OUTPUT": str(tmp_path / "r.json")})


def test_train_one_epoch_on_a_few_eurosat_scenes(engine, tmp_path):
    import processing
    data = REPO / "data" / "eurosat_ms"
    if not data.is_dir():
        pytest.skip("data/eurosat_ms not in this checkout")
    feedback = Feedback()
    results = processing.run("sparsevit:train", {
        "DATASET": "eurosat-mosaic", "DATA": str(data), "CONFIG": "tiny", "EPOCHS": 1,
        "LAMBDA_L0": 0.01, "BATCH_SIZE": 2, "CROP": 64, "TRAIN_SCENES": 2, "VAL_SCENES": 1,
        "OUTPUT": str(tmp_path / "model")}, feedback=feedback)
    assert Path(results["CHECKPOINT"]).is_file()
    assert Path(results["CHECKPOINT"]).parent == tmp_path / "model"
    assert 0.0 <= results["PRUNED_SHARE"] <= 1.0
    assert any(t.startswith("train epoch") for t in feedback.texts)


def test_train_checks_the_dataset_folder_before_starting_the_engine(engine, tmp_path):
    import processing
    with pytest.raises(QgsProcessingException, match="does not exist"):
        processing.run("sparsevit:train", {"DATASET": "dfc2020", "DATA": str(tmp_path / "none"),
                                           "EPOCHS": 1, "OUTPUT": str(tmp_path / "m")})


def test_predict_warns_that_an_s2_only_model_ignores_the_sentinel1_input(engine, tiny_bundle, tmp_path,
                                                                         qgis_new_project):
    s1 = engine.with_name(engine.name.replace("S2Hand", "S1Hand"))
    extent = "{0},{2},{1},{3} [EPSG:4326]".format(*SAMPLE_AREA)
    results, feedback = _run_and_load("sparsevit:predict", {
        "INPUT": str(engine), "S1": str(s1), "MODEL": str(tiny_bundle / "bundle.json"), "EXTENT": extent,
        "OVERVIEW": False, "THREADS": 1, "OUTPUT_FOLDER": str(tmp_path / "out")}, QgsProject.instance())
    assert any("Sentinel-1 input ignored" in w for w in feedback.warnings), feedback.warnings
    counts = json.loads(Path(results["RUN"]).read_text())["counts"]
    assert counts["bands"]["s1_ignored"] is True
