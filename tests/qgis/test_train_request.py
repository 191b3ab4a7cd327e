"""Training requests turned into engine arguments (``sparsevit grid`` / ``sparsevit fit``), the
labels as a file the engine reads, and the trained models of the model selector."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from qgis.core import QgsCoordinateReferenceSystem, QgsFeature, QgsGeometry, QgsPointXY, QgsRectangle, QgsVectorLayer
from test_tile_grid import classes_by_cell, open_grid_layer, write_grid_gpkg

from sparsevit_qgis.core.fit_job import FitRequest, GridRequest, eta_text, labels_for_engine, stage_title
from sparsevit_qgis.core.predict_job import JobError


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "run_fit" / "model"
    folder.mkdir(parents=True)
    (folder / "bundle.json").write_text(json.dumps({
        "format": "sparsevit-bundle", "tile": 64,
        "card": {"summary": "Trained on 40 tagged tiles of scene.tif",
                 "scheme": {"name": "user", "classes": [{"value": 1, "name": "Water", "color": "#0000ff"},
                                                        {"value": 2, "name": "Forest", "color": "#00ff00"}]},
                 "metrics": {"holdout_macro_f1": 0.71, "note": "text is skipped"},
                 "tiles": {"tagged": 40, "train": 32, "holdout": 8}}}))
    return folder


def test_fit_request_to_args(tmp_path, model_dir):
    scheme = tmp_path / "classes.json"
    scheme.write_text("{}")
    minimal = FitRequest(rasters=["a.tif"], labels="grid.gpkg", out="/o")
    assert minimal.to_args() == ["a.tif", "--labels", "grid.gpkg", "--out", "/o"]
    full = FitRequest(rasters=["a.tif", " ", "b.tif"], labels="pts.gpkg", out="/o", layer="samples",
                      field="MC_ID", classes=str(scheme), tile=32, base=str(model_dir / "bundle.json"),
                      epochs=1, refine_epochs=2, iterations=1, holdout=0.25, seed=7, predict=False, threads=2,
                      device="CPU", band_order="B02,B03,B04,B08")
    assert full.to_args() == [
        "a.tif", "b.tif", "--labels", "pts.gpkg", "--layer", "samples", "--field", "MC_ID",
        "--classes", str(scheme), "--out", "/o", "--tile", "32", "--base", str(model_dir),
        "--epochs", "1", "--refine-epochs", "2", "--iterations", "1", "--holdout", "0.25", "--seed", "7",
        "--no-predict", "--threads", "2", "--device", "cpu", "--band-order", "B02,B03,B04,B08"]
    assert FitRequest(rasters=["a.tif"], labels="g", out="/o", from_scratch=True).to_args()[-1] == "--from-scratch"
    for bad, match in (
            (dict(rasters=[]), "at least one raster"),
            (dict(labels=""), "labels"),
            (dict(out=""), "output folder"),
            (dict(holdout=1.0), "held-out"),
            (dict(epochs=-1), "epochs"),
            (dict(tile=8), "at least 16 px"),
            (dict(device="tpu"), "device"),
            (dict(base=str(model_dir), from_scratch=True), "not both"),
            (dict(base=str(tmp_path / "nope")), "does not exist"),
            (dict(classes=str(tmp_path / "none.json")), "scheme file")):
        request = FitRequest(**{**dict(rasters=["a.tif"], labels="g.gpkg", out="/o"), **bad})
        with pytest.raises(JobError, match=match):
            request.to_args()


def test_grid_request_to_args():
    assert GridRequest(rasters=["a.tif"], out="/o/g.gpkg").to_args() == ["a.tif", "--out", "/o/g.gpkg"]
    area = (QgsRectangle(-0.78, 38.11, -0.765, 38.125), QgsCoordinateReferenceSystem("EPSG:4326"))
    args = GridRequest(rasters=["a.tif"], out="/o/g.shp", tile=128, area=area, band_order="esa").to_args()
    assert args[:5] == ["a.tif", "--out", "/o/g.gpkg", "--tile", "128"]  # the engine writes GeoPackages
    assert args[5].startswith("--area=-0.78,38.11,") and args[6:8] == ["--area-crs", "EPSG:4326"]
    assert args[-2:] == ["--band-order", "esa"]
    with pytest.raises(JobError, match="raster"):
        GridRequest(rasters=[], out="/o/g.gpkg").to_args()
    for tile in (-1, 15):
        with pytest.raises(JobError, match="at least 16 px"):
            GridRequest(rasters=["a.tif"], out="/o/g.gpkg", tile=tile).to_args()


def test_stage_titles_and_time_left():
    assert stage_title("classifier") == "Step 2/5: Training the classifier on the tags"
    assert stage_title("predict").startswith("Step 5/5")
    assert stage_title("other") == "other"
    # the engine's finer stage names find their step
    assert stage_title("train epoch 1/8") == "Step 2/5: Training the classifier on the tags (train epoch 1/8)"
    assert stage_title("refine_it2").startswith("Step 4/5") and stage_title("read tiles").startswith("Step 1/5")
    assert stage_title("spectral refinement").startswith("Step 3/5")
    assert eta_text(10.0, 0.5) == "about 10 s left"
    assert eta_text(120.0, 0.25) == "about 6 min left"
    assert eta_text(1.0, 0.5) == "" and eta_text(100.0, 0.01) == "" and eta_text(10.0, None) == ""


def test_labels_are_the_file_itself_or_a_snapshot_with_unsaved_tags(tmp_path, qgis_new_project):
    path = write_grid_gpkg(tmp_path / "g.gpkg", rows=2, cols=2, tags={(0, 0): "Water"})
    layer = open_grid_layer(path)
    assert labels_for_engine(layer, tmp_path) == (str(path), "tiles", False)
    layer.startEditing()
    fid = next(f.id() for f in layer.getFeatures() if f["row"] == 64 and f["col"] == 64)
    layer.changeAttributeValue(fid, layer.fields().indexOf("classes"), "Forest;Water")
    file, name, snapshot = labels_for_engine(layer, tmp_path)
    assert snapshot and name == "tiles" and Path(file) == tmp_path / "input_labels.gpkg"
    copy = QgsVectorLayer(f"{file}|layername=tiles", "copy", "ogr")
    assert copy.isValid() and copy.featureCount() == 4 and copy.crs().authid() == "EPSG:32630"
    assert [f.name() for f in copy.fields() if f.name() != "fid"] == ["classes"]
    assert sorted(f["classes"] or "" for f in copy.getFeatures()) == ["", "", "Forest;Water", "Water"]
    layer.rollBack()
    assert classes_by_cell(open_grid_layer(path))[(1, 1)] == ""  # the grid file was never written
    with pytest.raises(JobError, match="no field 'class'"):
        labels_for_engine(layer, tmp_path, field="class")


def test_a_memory_point_layer_becomes_a_labels_file(tmp_path, qgis_new_project):
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=MC_ID:integer&field=MC_info:string", "pts", "memory")
    for x, code, name in ((-0.77, 1, "Water"), (-0.76, 2, "Forest")):
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, 38.12)))
        f.setAttributes([code, name])
        layer.dataProvider().addFeature(f)
    file, name, snapshot = labels_for_engine(layer, tmp_path, field="MC_ID")
    assert snapshot and name == "labels"
    copy = QgsVectorLayer(f"{file}|layername=labels", "copy", "ogr")
    assert sorted(f["MC_ID"] for f in copy.getFeatures()) == [1, 2]
    assert copy.crs().authid() == "EPSG:4326"


def test_trained_models_are_remembered_with_their_card(qgis_app, model_dir, tmp_path):
    from sparsevit_qgis.core import model_registry, settings
    from sparsevit_qgis.gui.inputs import ModelInput
    before_models, before_model = settings.trained_model_paths(), settings.model_path()
    try:
        settings.set_trained_model_paths([str(tmp_path / "gone")])
        settings.set_model_path("")
        assert model_registry.trained_models() == []  # a folder that vanished is not listed
        assert model_registry.model_label(model_dir) == "run_fit"
        summary = model_registry.model_summary(model_dir / "bundle.json")
        assert "Trained on 40 tagged tiles" in summary and "2 classes: Water, Forest" in summary
        assert "holdout_macro_f1 0.710" in summary and "tagged 40" in summary and "note" not in summary
        widget = ModelInput()
        assert widget.default_radio.isChecked() and not widget.trained_radio.isEnabled()
        assert widget.add_trained(str(model_dir / "bundle.json")) == str(model_dir)
        assert widget.trained_radio.isChecked() and widget.model() == str(model_dir)
        assert widget.trained_combo.currentText() == "run_fit"
        assert "2 classes" in widget.trained_combo.toolTip()
        assert model_registry.trained_models() == [str(model_dir)]
        settings.set_model_path(widget.chosen())
        again = ModelInput()  # a new panel: the trained model is listed and still chosen
        assert again.trained_paths() == [str(model_dir)] and again.trained_radio.isChecked()
        again.default_radio.setChecked(True)
        assert again.model() == ""
        widget.deleteLater()
        again.deleteLater()
    finally:
        settings.set_trained_model_paths(before_models)
        settings.set_model_path(before_model)
