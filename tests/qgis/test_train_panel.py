"""The panel's Train section end to end against a stand-in engine that speaks the ``grid`` and
``fit`` contract (so it runs before, and independently of, the real engine's training): make a
grid, tag it with the map tool, train, get the styled map group and the model in the selector;
cancel and failure leave no run folder; form errors are reported before any engine starts."""
from __future__ import annotations

import json
import shutil
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import REPO
from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsGeometry,
    QgsPalettedRasterRenderer,
    QgsPointXY,
    QgsProject,
    QgsRuleBasedRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt
from test_tile_grid import click, key

FAKE_MAIN = textwrap.dedent('''
    """A stand-in for ``python -m sparsevit`` with the ``grid`` and ``fit`` commands of the contract."""
    import json, os, sys, time
    from osgeo import gdal, ogr, osr

    def emit(event, **fields):
        print(json.dumps({"event": event, "time": time.time(), **fields}), flush=True)

    argv = sys.argv[1:]
    if argv == ["--version"]:
        print("sparsevit 9.9.9")
        sys.exit(0)
    argv.remove("--json")
    cancel_file = None
    if "--cancel-file" in argv:
        i = argv.index("--cancel-file")
        cancel_file = argv[i + 1]
        del argv[i:i + 2]
    command, args = argv[0], argv[1:]
    here = os.path.dirname(os.path.abspath(__file__))
    emit("start", command=command, protocol=json.load(open(os.path.join(here, "protocol.json")))["protocol"],
         engine_version="9.9.9", device="cpu" if command == "fit" else None,
         device_name="CPU (fake)" if command == "fit" else None)

    def opt(name, default=None):
        return args[args.index(name) + 1] if name in args else default

    positional = []
    for a in args:
        if a.startswith("-"):
            break
        positional.append(a)

    def fail(message, code=2):
        emit("error", problem=message, path=None, fix="fix it", message=message)
        sys.exit(code)

    def cancelled():
        return cancel_file and os.path.exists(cancel_file)

    if command == "grid":
        out, tile = opt("--out"), int(opt("--tile", "64"))
        src = gdal.Open(positional[0])
        gt, rows, cols = src.GetGeoTransform(), src.RasterYSize // tile, src.RasterXSize // tile
        srs = osr.SpatialReference(wkt=src.GetProjection())
        ds = ogr.GetDriverByName("GPKG").CreateDataSource(out)
        layer = ds.CreateLayer("tiles", srs, ogr.wkbPolygon)
        for name, kind in (("tile_id", ogr.OFTInteger), ("raster", ogr.OFTString), ("row", ogr.OFTInteger),
                           ("col", ogr.OFTInteger), ("classes", ogr.OFTString)):
            layer.CreateField(ogr.FieldDefn(name, kind))
        for r in range(rows):
            for c in range(cols):
                f = ogr.Feature(layer.GetLayerDefn())
                f.SetField("tile_id", r * cols + c)
                f.SetField("raster", os.path.basename(positional[0]))
                f.SetField("row", r * tile)
                f.SetField("col", c * tile)
                f.SetField("classes", "")
                ring = ogr.Geometry(ogr.wkbLinearRing)
                for dx, dy in ((0, 0), (1, 0), (1, 1), (0, 1), (0, 0)):
                    ring.AddPoint_2D(gt[0] + (c + dx) * tile * gt[1], gt[3] + (r + dy) * tile * gt[5])
                poly = ogr.Geometry(ogr.wkbPolygon)
                poly.AddGeometry(ring)
                f.SetGeometry(poly)
                layer.CreateFeature(f)
        layer = ds = None
        emit("result", outputs={"grid": out}, cells=rows * cols, tile=tile)
        emit("end", command=command, exit_code=0)
    elif command == "fit":
        labels, out = opt("--labels"), opt("--out")
        if not os.path.exists(labels):
            fail(f"{labels}: labels file not found")
        if os.environ.get("FAKE_FIT_FAIL"):
            fail("no tagged tile lies on the raster")
        scheme = json.load(open(opt("--classes"))) if opt("--classes") else {
            "name": "user", "title": "user classes",
            "classes": [{"value": 1, "name": "A", "color": "#ff0000"}, {"value": 2, "name": "B", "color": "#00ff00"}]}
        for stage in ("labels", "classifier", "pseudomasks", "refine", "predict"):
            if stage == "predict" and "--no-predict" in args:
                break
            emit("stage_start", stage=stage, total=4)
            steps = 200 if os.environ.get("FAKE_FIT_SLOW") and stage == "classifier" else 4
            for done in range(1, steps + 1):
                if cancelled():
                    fail("run cancelled; no output was written", 130)
                time.sleep(0.05 if steps > 4 else 0.01)
                emit("progress", stage=stage, done=min(done, 4), total=4, fraction=done / steps)
            emit("stage_end", stage=stage, seconds=0.04)
        # outputs only once done, like the engine (which stages them): a cancelled run leaves none
        with open(os.path.join(out, "fake_args.json"), "w") as fh:
            json.dump({"args": args, "classes": json.load(open(opt("--classes"))) if opt("--classes") else None},
                      fh)
        model = os.path.join(out, "model")
        os.makedirs(model)
        json.dump({"format": "sparsevit-bundle", "tile": 256,
                   "card": {"summary": "fake model", "scheme": scheme, "metrics": {"holdout_macro_f1": 0.5}}},
                  open(os.path.join(model, "bundle.json"), "w"))
        json.dump(scheme, open(os.path.join(model, "scheme.json"), "w"))
        outputs = {"model": model}
        maps = []
        for raster in positional if "--no-predict" not in args else []:
            src = gdal.Open(raster)
            stem = os.path.splitext(os.path.basename(raster))[0]
            values = [c["value"] for c in scheme["classes"]]
            written = {}
            for role, kind in (("landcover", gdal.GDT_Byte), ("pseudomask", gdal.GDT_Byte),
                               ("confidence", gdal.GDT_Float32)):
                path = os.path.join(out, f"{stem}_{role}.tif")
                dst = gdal.GetDriverByName("GTiff").Create(path, src.RasterXSize, src.RasterYSize, 1, kind)
                dst.SetGeoTransform(src.GetGeoTransform())
                dst.SetProjection(src.GetProjection())
                band = dst.GetRasterBand(1)
                if kind == gdal.GDT_Byte:
                    n = src.RasterXSize * src.RasterYSize
                    band.WriteRaster(0, 0, src.RasterXSize, src.RasterYSize,
                                     bytes(values[i % len(values)] for i in range(n)))
                else:
                    band.Fill(0.75)
                band = dst = None
                written[role] = path
            run = os.path.join(out, f"{stem}_run.json")
            json.dump({"args": args}, open(run, "w"))
            written["run"] = run
            maps.append(written)
        if maps:  # like the engine: the outputs name the first raster's map, "maps" every one
            outputs.update(maps[0])
        emit("result", outputs=outputs, maps=maps, scheme=scheme, metrics={"holdout_macro_f1": 0.5},
             tiles={"tagged": 3, "train": 2, "holdout": 1}, device="cpu", device_name="CPU (fake)")
        emit("end", command=command, exit_code=0)
    else:
        print(f"unknown command {command}", file=sys.stderr)
        sys.exit(2)
''')


@pytest.fixture(scope="module")
def fake_train_python(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fake_train_engine")
    pkg = root / "sparsevit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(FAKE_MAIN)
    shutil.copy(REPO / "resources" / "protocol.json", pkg / "protocol.json")
    wrapper = root / "python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{root}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return wrapper


def write_scene(path: Path, size: int = 64) -> Path:
    """A 3-band uint16 GeoTIFF, 10 m pixels in EPSG:32630."""
    from osgeo import gdal, osr
    ds = gdal.GetDriverByName("GTiff").Create(str(path), size, size, 3, gdal.GDT_UInt16)
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32630)
    ds.SetProjection(srs.ExportToWkt())
    for b in range(1, 4):
        ds.GetRasterBand(b).Fill(1000 * b)
    ds = None
    return path


def _wait(dock, timeout=60.0, until=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        QgsApplication.processEvents()
        if (until() if until else not dock.running):
            return
        time.sleep(0.02)
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
def dock(qgis_iface, qgis_new_project, fake_train_python, engine_setting, saved_settings, tmp_path):
    from sparsevit_qgis.gui.dock import SparseVitDock
    engine_setting.set_python_path(str(fake_train_python))
    d = SparseVitDock(qgis_iface)
    train = d.train_section
    train.raster_input.set_path(str(write_scene(tmp_path / "scene.tif")))
    (tmp_path / "out").mkdir()
    train.output_dir.setFilePath(str(tmp_path / "out"))
    train.tile_spin.setValue(16)
    yield d
    d.shutdown()
    d.deleteLater()


def _make_grid(dock):
    train = dock.train_section
    assert train.make_grid() is not None
    _wait(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    return train.grid_layer()


def _cell(layer, row, col) -> QgsFeature:
    return next(f for f in layer.getFeatures() if f["row"] == row and f["col"] == col)


def _tags(layer) -> dict:
    return {(f["row"], f["col"]): f["classes"] or "" for f in layer.getFeatures() if f["classes"]}


def test_make_grid_tag_train_and_map(dock, qgis_iface, tmp_path, saved_settings):
    train = dock.train_section
    layer = _make_grid(dock)
    assert layer is not None and layer.featureCount() == 16
    assert Path(layer.source().split("|")[0]) == tmp_path / "out" / "scene_tiles.gpkg"
    assert layer.isEditable() and isinstance(layer.renderer(), QgsRuleBasedRenderer)
    assert layer.customProperty("sparsevit/tile") == 16
    assert QgsProject.instance().layerTreeRoot().children()[0].layer() is layer
    assert "16 cells of 16 px" in dock.log.toPlainText()

    # tag with the map tool on the panel's canvas
    canvas = qgis_iface.mapCanvas()
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32630"))
    canvas.setLayers([layer])
    canvas.setExtent(layer.extent())
    train.tag_button.setChecked(True)
    tool = train.tool
    assert canvas.mapTool() is tool and tool.layer() is layer
    assert train.class_combo.currentText() == "1 Water"
    click(tool, _cell(layer, 0, 0).geometry().centroid().asPoint())
    assert key(tool, Qt.Key_5) and train.class_combo.currentText() == "5 Forest"  # the combo follows
    click(tool, _cell(layer, 0, 0).geometry().centroid().asPoint())
    click(tool, _cell(layer, 16, 32).geometry().centroid().asPoint())
    train.class_combo.setCurrentIndex(1)  # and the tool follows the combo
    assert tool.current_class() == "Built-up"
    click(tool, _cell(layer, 48, 48).geometry().centroid().asPoint())
    assert _tags(layer) == {(0, 0): "Water;Forest", (16, 32): "Forest", (48, 48): "Built-up"}
    assert "Water 1" in train.tag_counts_label.text() and "untagged 13" in train.tag_counts_label.text()
    train.undo()
    assert (48, 48) not in _tags(layer)
    click(tool, _cell(layer, 48, 48).geometry().centroid().asPoint())
    from qgis.gui import QgsMapToolPan
    pan = QgsMapToolPan(canvas)
    canvas.setMapTool(pan)  # another map tool: the Tag button follows
    assert not train.tag_button.isChecked()
    train.tag_button.setChecked(True)
    assert canvas.mapTool() is tool
    train.tag_button.setChecked(False)
    assert canvas.mapTool() is not tool
    train.add_raster(str(write_scene(tmp_path / "scene2.tif")))  # a second raster, mapped too

    # train on the unsaved tags
    texts = []
    task = train.run_fit()
    assert task is not None and not train.train_button.isEnabled() and dock.cancel_button.isEnabled()
    task.engine_event.connect(lambda e: texts.append(train.status_label.text()))
    _wait(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    runs = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert len(runs) == 1 and runs[0].name.startswith("scene_fit_")
    seen = json.loads((runs[0] / "fake_args.json").read_text())
    args = seen["args"]
    assert args[:2] == [str(tmp_path / "scene.tif"), str(tmp_path / "scene2.tif")]
    labels = Path(args[args.index("--labels") + 1])
    assert labels == runs[0] / "input_labels.gpkg"  # a snapshot: the tags were not saved
    assert args[args.index("--layer") + 1] == "tiles" and "--field" not in args
    assert args[args.index("--tile") + 1] == "16" and args[args.index("--out") + 1] == str(runs[0])
    snapshot = QgsVectorLayer(f"{labels}|layername=tiles", "s", "ogr")
    assert sorted(f["classes"] for f in snapshot.getFeatures() if f["classes"]) == [
        "Built-up", "Forest", "Water;Forest"]
    assert [c["name"] for c in seen["classes"]["classes"]] == train.scheme_editor.names
    assert any(t.startswith("Step 2/5: Training the classifier") for t in texts), texts
    assert train.status_label.text().startswith("Trained in")

    # the map, styled by the analyst's scheme, as the last run's group
    run = dock.last_run
    assert run is not None and run.group.name().startswith("scene (trained) ")
    landcover = run.get("landcover")
    assert isinstance(landcover.renderer(), QgsPalettedRasterRenderer)
    assert [c.label for c in landcover.renderer().classes()] == train.scheme_editor.names
    assert run.get("confidence") is not None and run.get("pseudomask") is not None
    groups = [g.name() for g in QgsProject.instance().layerTreeRoot().children() if hasattr(g, "addGroup")]
    assert sum(n.startswith("scene2 (trained) ") for n in groups) == 1

    # the model joins the model selector, chosen and remembered
    model = runs[0] / "model"
    assert dock.model_input.trained_radio.isChecked() and dock.model_input.chosen() == str(model)
    assert dock.model_input.trained_combo.currentText() == runs[0].name
    assert "fake model" in dock.model_input.trained_combo.toolTip()
    assert saved_settings.trained_model_paths()[0] == str(model) and saved_settings.model_path() == str(model)
    dock.s2_input.set_path(str(tmp_path / "scene.tif"))
    dock.output_dir.setFilePath(str(tmp_path / "out"))
    predict_args = dock.build_predict_args()
    assert predict_args[predict_args.index("--model") + 1] == str(model)
    assert "Tiles: 3 tagged, 2 trained on, 1 held out" in dock.log.toPlainText()


def test_train_from_a_point_layer_and_its_class_field(dock, tmp_path):
    train = dock.train_section
    points = QgsVectorLayer("Point?crs=EPSG:32630&field=class:string", "samples", "memory")
    for x, name in ((500015.0, "Water"), (500125.0, "Forest"), (500135.0, "Water")):
        f = QgsFeature(points.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x, 4199925.0)))
        f.setAttributes([name])
        points.dataProvider().addFeature(f)
    QgsProject.instance().addMapLayer(points)
    train.labels_layer.setChecked(True)
    assert train.layer_box.isVisibleTo(train) and not train.grid_box.isVisibleTo(train)
    train.labels_combo.setLayer(points)
    train.field_combo.setField("class")
    train.classes_from_field()
    assert train.scheme_editor.names == ["Forest", "Water"]
    train.predict_check.setChecked(False)
    train.epochs_spin.setValue(1)
    train.threads_spin.setValue(1)
    train.start_combo.setCurrentIndex(2)  # from scratch
    assert train.run_fit() is not None
    _wait(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    run_dir = next(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    args = json.loads((run_dir / "fake_args.json").read_text())["args"]
    assert args[args.index("--field") + 1] == "class" and args[args.index("--layer") + 1] == "labels"
    assert "--tile" in args and args[args.index("--epochs") + 1] == "1"
    assert args[args.index("--threads") + 1] == "1"
    assert "--from-scratch" in args and "--no-predict" in args
    assert dock.last_run is None  # no map asked for: no group, no error
    assert "[error]" not in dock.log.toPlainText()
    assert dock.model_input.chosen() == str(run_dir / "model")


def test_cancel_and_failure_leave_no_run_folder(dock, tmp_path, monkeypatch):
    from sparsevit_qgis.core.tags import toggle_tag
    train = dock.train_section
    layer = _make_grid(dock)
    toggle_tag(layer, [next(layer.getFeatures()).id()], "Water")
    out = tmp_path / "out"

    monkeypatch.setenv("FAKE_FIT_SLOW", "1")
    assert train.run_fit() is not None
    _wait(dock, until=lambda: "Step 2/5" in train.status_label.text())
    assert "about" in dock.stage_label.text() or "classifier" in dock.stage_label.text()
    t0 = time.monotonic()
    dock.cancel()
    _wait(dock, timeout=10)
    assert time.monotonic() - t0 < 3.0
    assert dock.stage_label.text() == "Cancelled" and train.status_label.text() == "Cancelled"
    assert [p for p in out.iterdir() if p.is_dir()] == []
    assert train.train_button.isEnabled()

    monkeypatch.delenv("FAKE_FIT_SLOW")
    monkeypatch.setenv("FAKE_FIT_FAIL", "1")
    assert train.run_fit() is not None
    _wait(dock)
    assert dock.stage_label.text() == "Failed" and "no tagged tile" in dock.log.toPlainText()
    assert [p for p in out.iterdir() if p.is_dir()] == []
    assert dock.model_input.trained_paths() == [] or all(
        not p.startswith(str(out)) for p in dock.model_input.trained_paths())


def test_form_errors_are_reported_before_the_engine_starts(dock, tmp_path):
    train = dock.train_section
    out = tmp_path / "out"
    assert train.run_fit() is None  # no grid yet
    assert "Make a tile grid" in dock.log.toPlainText()
    layer = _make_grid(dock)
    assert train.run_fit() is None
    assert "No cell is tagged yet" in dock.log.toPlainText()
    from sparsevit_qgis.core.tags import set_tags
    set_tags(layer, {next(layer.getFeatures()).id(): "Snow"}, "tag")
    assert train.run_fit() is None
    assert "Snow, which the class scheme lacks" in dock.log.toPlainText()
    train.labels_layer.setChecked(True)
    assert train.run_fit() is None and "Choose the labels layer" in dock.log.toPlainText()
    assert [p for p in out.iterdir() if p.is_dir()] == []  # no run folder left by a refused run
    assert not dock.running
