"""Tag, train and map with the real engine (issue #13): ``sparsevit grid`` from the panel and from
Processing, ``sparsevit fit`` from a point layer in the panel (tiny settings on a 128 px crop of
the sample scene) with the map added and the model joining the model selector, which then
predicts with it; ``sparsevit:fit`` on a tagged grid. Skipped, with the reason, where the engine
lacks the ``grid``/``fit`` commands."""
from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_S2
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsPalettedRasterRenderer,
    QgsPointXY,
    QgsProject,
    QgsRuleBasedRenderer,
    QgsVectorLayer,
)

CROP_PX = 128  # 2 x 2 tag tiles of 64 px


def _has_command(python: Path, command: str) -> bool:
    try:
        proc = subprocess.run([str(python), "-m", "sparsevit", command, "--help"], capture_output=True,
                              text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


@pytest.fixture(scope="module")
def grid_engine(real_engine) -> Path:
    python, _ = real_engine
    if not _has_command(python, "grid"):
        pytest.skip("`sparsevit grid --help` fails: the engine half of issue #13 has not landed")
    return python


@pytest.fixture(scope="module")
def fit_engine(real_engine) -> Path:
    python, _ = real_engine
    if not _has_command(python, "fit"):
        pytest.skip("`sparsevit fit --help` fails: the engine half of issue #13 has not landed")
    return python


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> Path:
    """The north-west 128 x 128 px of the sample scene (all 13 bands, EPSG:4326)."""
    from osgeo import gdal
    path = tmp_path_factory.mktemp("crop") / "crop.tif"
    ds = gdal.Translate(str(path), str(SAMPLE_S2), srcWin=[0, 0, CROP_PX, CROP_PX])
    del ds  # closed (written) before the engine reads it
    return path


def _pixel_point(crop: Path, row: float, col: float) -> QgsPointXY:
    from osgeo import gdal
    ds = gdal.Open(str(crop))
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    ds = None
    return QgsPointXY(x0 + col * dx, y0 + row * dy)


def _wait(dock, timeout=900.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        QgsApplication.processEvents()
        if not dock.running:
            return
        time.sleep(0.05)
    dock.cancel()
    raise AssertionError(f"timed out; log:\n{dock.log.toPlainText()}")


@pytest.fixture
def saved_settings():
    from sparsevit_qgis.core import settings
    before = (settings.trained_model_paths(), settings.model_path(), settings.output_dir())
    yield settings
    settings.set_trained_model_paths(before[0])
    settings.set_model_path(before[1])
    settings.set_output_dir(before[2])


@pytest.fixture
def dock(qgis_iface, qgis_new_project, real_engine, engine_setting, saved_settings, crop, tmp_path):
    from sparsevit_qgis.gui.dock import SparseVitDock
    python, _ = real_engine
    engine_setting.set_python_path(str(python))
    d = SparseVitDock(qgis_iface)
    d.train_section.raster_input.set_path(str(crop))
    (tmp_path / "out").mkdir()
    d.train_section.output_dir.setFilePath(str(tmp_path / "out"))
    yield d
    d.shutdown()
    d.deleteLater()


def test_grid_through_the_engine_is_added_ready_to_tag(grid_engine, dock, crop, tmp_path):
    train = dock.train_section
    assert train.make_grid() is not None
    _wait(dock, 300)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    layer = train.grid_layer()
    assert layer is not None and layer.featureCount() == (CROP_PX // 64) ** 2
    assert Path(layer.source().split("|")[0]) == tmp_path / "out" / "crop_tiles.gpkg"
    assert layer.crs().authid() == "EPSG:4326"
    names = [f.name() for f in layer.fields()]
    assert all(n in names for n in ("tile_id", "raster", "row", "col", "classes"))
    assert {f["raster"] for f in layer.getFeatures()} == {"crop.tif"}
    assert layer.customProperty("sparsevit/tile") == 64
    assert layer.isEditable() and isinstance(layer.renderer(), QgsRuleBasedRenderer)
    from sparsevit_qgis.core.tags import grid_tile_size
    assert grid_tile_size(layer) == 64


def test_grid_and_fit_through_processing(grid_engine, fit_engine, provider, crop, tmp_path, qgis_new_project):
    import processing
    grid = processing.run("sparsevit:grid", {"INPUT": str(crop), "TILE": 64, "OUTPUT": str(tmp_path / "g.gpkg")})
    assert grid["CELLS"] == 4 and grid["TILE_USED"] == 64 and Path(grid["OUTPUT"]).is_file()
    layer = QgsVectorLayer(f"{grid['OUTPUT']}|layername=tiles", "g", "ogr")
    assert layer.isValid() and layer.startEditing()
    idx = layer.fields().indexOf("classes")
    for f, tags in zip(sorted(layer.getFeatures(), key=lambda f: (f["row"], f["col"])),
                       ("Water;Cropland", "Cropland", "Cropland", "Water")):
        layer.changeAttributeValue(f.id(), idx, tags)
    assert layer.commitChanges()
    results = processing.run("sparsevit:fit", {
        "INPUT": [str(crop)], "LABELS": grid["OUTPUT"], "EPOCHS": 1, "REFINE_EPOCHS": 1, "ITERATIONS": 1,
        "THREADS": 1, "HOLDOUT": 0.0, "PREDICT": False, "OUTPUT_FOLDER": str(tmp_path / "fit")})
    model = Path(results["MODEL"])
    assert model == tmp_path / "fit" / "model" and (model / "bundle.json").is_file()
    assert results["LANDCOVER"] is None and results["TAGGED"] == 4
    card = json.loads((model / "bundle.json").read_text())["card"]
    assert sorted(c["name"] for c in card["scheme"]["classes"]) == ["Cropland", "Water"]


def _point_labels(train, crop: Path) -> QgsVectorLayer:
    """A memory point layer, one point per 64 px tile, two classes, one tile with both; chosen
    in the Train section with its class field and the classes made from it."""
    points = QgsVectorLayer("Point?crs=EPSG:4326&field=class:string", "samples", "memory")
    for (row, col, name) in ((32, 32, "Water"), (32, 96, "Cropland"), (96, 32, "Cropland"),
                             (96, 96, "Water"), (40, 40, "Cropland")):
        f = QgsFeature(points.fields())
        f.setGeometry(QgsGeometry.fromPointXY(_pixel_point(crop, row, col)))
        f.setAttributes([name])
        points.dataProvider().addFeature(f)
    QgsProject.instance().addMapLayer(points)
    train.labels_layer.setChecked(True)
    train.labels_combo.setLayer(points)
    train.field_combo.setField("class")
    train.classes_from_field()
    train.threads_spin.setValue(1)  # two torch threads on two shared cores run several times slower
    return points


def test_cancel_stops_training_and_leaves_no_run_folder(fit_engine, dock, crop, tmp_path):
    train = dock.train_section
    _point_labels(train, crop)
    train.epochs_spin.setValue(50)
    models = dock.model_input.trained_paths()
    assert train.run_fit() is not None
    t0 = time.monotonic()
    while "Step 2/5" not in train.status_label.text() and time.monotonic() - t0 < 300:
        QgsApplication.processEvents()
        time.sleep(0.05)
    assert "Step 2/5" in train.status_label.text(), dock.log.toPlainText()
    t0 = time.monotonic()
    dock.cancel()
    _wait(dock, 30)
    assert time.monotonic() - t0 < 5.0
    assert dock.stage_label.text() == "Cancelled" and train.status_label.text() == "Cancelled"
    assert [p.name for p in (tmp_path / "out").iterdir()] == []
    assert dock.model_input.trained_paths() == models  # no model from a cancelled run


def test_train_from_a_point_layer_adds_the_map_and_the_model(fit_engine, dock, crop, tmp_path):
    train = dock.train_section
    _point_labels(train, crop)
    editor = train.scheme_editor
    assert editor.names == ["Cropland", "Water"]
    editor.recolour_class("Water", "#1f78b4")
    train.epochs_spin.setValue(1)
    train.refine_spin.setValue(1)
    train.holdout_spin.setValue(0.0)

    steps = []
    task = train.run_fit()
    assert task is not None
    task.engine_event.connect(lambda e: steps.append(train.status_label.text()))
    _wait(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    assert any(s.startswith("Step 2/5") for s in steps) and any(s.startswith("Step 4/5") for s in steps)
    run_dir = next(p for p in (tmp_path / "out").iterdir() if p.is_dir() and p.name.startswith("crop_fit_"))
    assert json.loads((run_dir / "input_classes.json").read_text())["classes"][1]["color"] == "#1f78b4"

    # the map, as a styled group in the analyst's classes and colours
    run = dock.last_run
    assert run is not None and run.group.name().startswith("crop (trained) ")
    landcover = run.get("landcover")
    assert landcover is not None and Path(landcover.source()).is_file()
    assert isinstance(landcover.renderer(), QgsPalettedRasterRenderer)
    classes = {c.label: c.color.name() for c in landcover.renderer().classes()}
    assert set(classes) == {"Cropland", "Water"} and classes["Water"] == "#1f78b4"
    assert landcover.width() == CROP_PX and run.get("confidence") is not None

    # the model joins the selector, chosen, with its card as the tooltip
    model = run_dir / "model"
    assert (model / "bundle.json").is_file()
    assert dock.model_input.chosen() == str(model)
    assert "2 classes: Cropland, Water" in dock.model_input.trained_combo.toolTip()

    # and maps with it
    dock.s2_input.set_path(str(crop))
    (tmp_path / "pred").mkdir()
    dock.output_dir.setFilePath(str(tmp_path / "pred"))
    dock.overview_check.setChecked(False)
    args = dock.build_predict_args()
    assert args[args.index("--model") + 1] == str(model)
    assert dock.run_predict() is not None
    _wait(dock, 300)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    predicted = dock.last_run.get("landcover")
    assert [c.label for c in predicted.renderer().classes()] == ["Cropland", "Water"]
