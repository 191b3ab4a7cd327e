"""The panel's prediction on the sample scene with the real engine: layers, view, export, cancel."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_AREA
from qgis.core import (
    QgsApplication,
    QgsCategorizedSymbolRenderer,
    QgsLayerTreeGroup,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsSingleBandPseudoColorRenderer,
)


def _wait(dock, timeout=180.0, until=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        QgsApplication.processEvents()
        if (until() if until else not dock.running):
            return time.monotonic() - t0
        time.sleep(0.02)
    raise AssertionError(f"timed out; log:\n{dock.log.toPlainText()}")


@pytest.fixture
def dock(qgis_iface, real_engine, engine_setting, tiny_bundle, tmp_path, qgis_new_project):
    from sparsevit_qgis.gui.dock import SparseVitDock
    python, sample = real_engine
    engine_setting.set_python_path(str(python))
    d = SparseVitDock(qgis_iface)
    d.s2_input.set_path(str(sample))
    d.model_input.set_custom(str(tiny_bundle))
    (tmp_path / "out").mkdir()
    d.output_dir.setFilePath(str(tmp_path / "out"))
    d.tile_spin.setValue(256)
    d.overview_check.setChecked(False)
    yield d
    d.shutdown()
    d.deleteLater()


def test_dock_predict_adds_a_styled_group_then_exports_polygons(dock, tmp_path):
    scheme = json.loads((REPO / "resources" / "schemes" / "eurosat.json").read_text())
    names = [c.get("label", c["name"]) for c in scheme["classes"]]  # legends show the readable labels
    coarse_names = [c["name"] for c in json.loads(
        (REPO / "resources" / "schemes" / "eurosat_coarse.json").read_text())["classes"]]
    assert dock.level_combo.currentData() == "both"  # the default: no --level, both maps
    assert "--level" not in dock.build_predict_args()
    assert dock.run_predict() is not None
    _wait(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    assert "CPU" in dock.device_label.text()

    runs = list((tmp_path / "out").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("Spain_7370579_S2Hand_")
    root = QgsProject.instance().layerTreeRoot()
    group = root.children()[0]
    assert isinstance(group, QgsLayerTreeGroup)
    assert group.name().startswith("Spain_7370579_S2Hand ")
    run = dock.last_run
    landcover, pseudomask, confidence = (run.get(r) for r in ("landcover", "pseudomask", "confidence"))
    coarse = run.get("landcover_coarse")
    for layer in (coarse, landcover, pseudomask, confidence):
        assert Path(layer.source()).parent == runs[0]
        assert layer.crs().authid() == "EPSG:4326"
        assert group.findLayer(layer.id()) is not None
    for layer in (landcover, pseudomask):
        assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)
        assert [c.label for c in layer.renderer().classes()] == names
    ramp = confidence.renderer()
    assert isinstance(ramp, QgsSingleBandPseudoColorRenderer)
    assert (ramp.classificationMin(), ramp.classificationMax()) == (0.0, 1.0)
    assert [c.label for c in coarse.renderer().classes()] == coarse_names
    # the coarse map on top and shown; the detailed one just below it, a click away
    assert [n.layer() for n in group.findLayers()][:2] == [coarse, landcover]
    assert group.findLayer(coarse.id()).itemVisibilityChecked()
    assert not group.findLayer(landcover.id()).itemVisibilityChecked()
    assert not group.findLayer(pseudomask.id()).itemVisibilityChecked()
    assert dock.view_buttons["landcover_coarse"].isChecked()
    assert "Coarse land cover:" in dock.log.toPlainText()
    dock.set_view("landcover")
    assert group.findLayer(landcover.id()).itemVisibilityChecked()
    assert not group.findLayer(coarse.id()).itemVisibilityChecked()

    dock.set_view("pseudomask")
    assert group.findLayer(pseudomask.id()).itemVisibilityChecked()
    assert not group.findLayer(landcover.id()).itemVisibilityChecked()
    dock.set_view("basemap")
    basemap = root.children()[-1]
    assert basemap.layer().customProperty("sparsevit/basemap")
    assert "openstreetmap" in basemap.layer().source()
    assert not group.findLayer(pseudomask.id()).itemVisibilityChecked()
    dock.set_view("landcover")
    assert group.findLayer(landcover.id()).itemVisibilityChecked()
    dock.opacity_slider.setValue(40)
    assert landcover.renderer().opacity() == pytest.approx(0.4)
    assert confidence.renderer().opacity() == pytest.approx(0.4)

    # export the run's land cover (the coarse map on show is pre-selected) to polygons in
    # another CRS
    assert dock.export_layer.currentLayer() is coarse
    dock.export_layer.setLayer(landcover)
    dock.export_format.setCurrentIndex(1)  # gpkg
    dock.export_crs.setCrs(__import__("qgis.core").core.QgsCoordinateReferenceSystem("EPSG:32630"))
    dock.export_file.setFilePath(str(tmp_path / "polygons.gpkg"))
    assert dock.run_export() is not None
    _wait(dock)
    assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
    polys = root.children()[0].layer()
    assert polys.source().startswith(str(tmp_path / "polygons.gpkg"))
    assert polys.crs().authid() == "EPSG:32630"
    renderer = polys.renderer()
    assert isinstance(renderer, QgsCategorizedSymbolRenderer)
    assert [c.label() for c in renderer.categories()] == names


def test_dock_level_combo_gives_the_engine_level(dock):
    levels = [dock.level_combo.itemData(i) for i in range(dock.level_combo.count())]
    assert levels == ["both", "detailed", "coarse"]
    for i, level in enumerate(levels):
        dock.level_combo.setCurrentIndex(i)
        args = dock.build_predict_args()
        assert (args[args.index("--level") + 1] if "--level" in args else "both") == level


def test_dock_cancel_stops_the_engine_and_leaves_no_run_folder(dock, tmp_path):
    out = tmp_path / "out"
    assert dock.run_predict() is not None
    run_dir = dock._run_dir
    assert run_dir.parent == out and run_dir.is_dir()
    seen: set[str] = set()

    def predicting():
        seen.update(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
        return "predict" in dock.stage_label.text()

    _wait(dock, until=predicting)
    t0 = time.monotonic()
    dock.cancel()
    _wait(dock, timeout=10)
    assert time.monotonic() - t0 < 3.0  # the engine is gone within a second (+ event loop slack)
    assert dock.stage_label.text() == "Cancelled"
    assert not seen, f"outputs appeared before cancel: {seen}"
    assert not run_dir.exists() and list(out.iterdir()) == []
    assert dock.last_run is None and dock.run_button.isEnabled()


def test_dock_reports_a_missing_default_model(dock, tmp_path, monkeypatch):
    from sparsevit_qgis.core import settings
    monkeypatch.setattr(settings, "default_model_path", lambda: tmp_path / "models" / "default")
    dock.model_input.default_radio.setChecked(True)
    assert dock.run_predict() is None
    assert "default model is missing" in dock.log.toPlainText()
    assert list((tmp_path / "out").iterdir()) == []


def test_an_engine_error_is_shown_at_the_top_of_a_squeezed_panel(dock, tmp_path):
    """Under an open Processing toolbox the panel is ~230 px tall: the error must not be only in
    the log at the bottom, out of sight."""
    bad = tmp_path / "not_a_raster.tif"
    bad.write_text("this is text, not a GeoTIFF")
    dock.s2_input.set_path(str(bad))
    dock.resize(380, 230)
    dock.show()
    bar = dock.scroll.verticalScrollBar()
    QgsApplication.processEvents()
    assert bar.maximum() > 0  # the panel is taller than its 230 px: it scrolls
    bar.setValue(bar.maximum())  # the user had scrolled to the log
    assert dock.run_predict() is not None
    _wait(dock)
    for _ in range(5):
        QgsApplication.processEvents()
    assert dock.stage_label.text() == "Failed"
    assert dock.error_label.isVisible() and str(bad) in dock.error_label.text()
    top = dock.error_label.mapTo(dock.scroll.widget(), dock.error_label.rect().topLeft()).y()
    assert bar.value() <= top < bar.value() + dock.scroll.viewport().height()  # scrolled into view
    dock.s2_input.set_path(str(tmp_path / "other.tif"))
    dock.start("info", [str(bad)], "again", lambda outcome: None)
    assert not dock.error_label.isVisible()  # a new run clears the old error
    _wait(dock)
    dock.hide()


def test_dock_says_the_model_ignored_sentinel1_and_gives_the_engine_the_threads(dock, qgis_iface, tmp_path):
    """Real engine: the S2-only test model given S1 says so in the message bar and the summary
    line; the Compute group's threads reach the engine (its start event reports them)."""
    from qgis.core import Qgis, QgsFeature, QgsGeometry, QgsRectangle, QgsSettings, QgsVectorLayer

    from sparsevit_qgis.core import settings
    keys = [settings.PREFIX + k for k in ("compute/device", "compute/threads", "compute/precision",
                                          "compute/batch_size")]
    before = {k: QgsSettings().value(k) for k in keys}
    bar = qgis_iface.messageBar()
    bar.clear_messages()
    try:
        dock.s1_input.set_path(str(REPO / "resources" / "sample" / "Spain_7370579_S1Hand.tif"))
        box = QgsVectorLayer("Polygon?crs=EPSG:4326", "area", "memory")
        f = QgsFeature()
        f.setGeometry(QgsGeometry.fromRect(QgsRectangle(SAMPLE_AREA[0], SAMPLE_AREA[1],
                                                        SAMPLE_AREA[2], SAMPLE_AREA[3])))
        box.dataProvider().addFeature(f)
        QgsProject.instance().addMapLayer(box)
        box.selectAll()
        dock.area_polygon.setChecked(True)
        dock.polygon_combo.setLayer(box)
        dock.device_combo.setCurrentIndex(dock.device_combo.findData("cpu"))
        dock.threads_spin.setValue(1)
        dock.batch_spin.setValue(4)
        args = dock.build_predict_args()
        assert args[args.index("--threads") + 1] == "1" and args[args.index("--batch-size") + 1] == "4"
        assert dock.run_predict() is not None
        _wait(dock)
        assert dock.stage_label.text().startswith("Done"), dock.log.toPlainText()
        assert dock.device_label.text() == "Device: CPU (1 threads)"  # the engine's start event
        message = "Sentinel-1 input ignored: this model reads Sentinel-2 only"
        assert f"SparseViT:{message}" in bar.get_messages(Qgis.Warning)
        assert message in dock.summary_label.text() and message in dock.stage_label.text()
        assert "on CPU (1 threads)" in dock.summary_label.text()
    finally:
        for k, v in before.items():
            if v is None:
                QgsSettings().remove(k)
            else:
                QgsSettings().setValue(k, v)
        QgsProject.instance().clear()  # a later panel must not pick up these layers as input


@pytest.mark.parametrize("phase", ["engine check", "engine import"])
def test_dock_cancel_during_engine_start_is_prompt_and_leaves_nothing(dock, tmp_path, phase):
    from sparsevit_qgis.core.engine_locator import clear_cache, locate_engine
    out = tmp_path / "out"
    clear_cache()
    if phase == "engine import":  # the check is cached: the run's engine process is starting
        assert locate_engine().ok
    assert dock.run_predict() is not None
    run_dir = dock._run_dir
    time.sleep(0.3)  # no event has come yet: the check or the engine is importing torch
    QgsApplication.processEvents()
    assert "predict" not in dock.stage_label.text()
    assert dock.progress.maximum() == 0  # a busy indicator while the engine starts, not a bar at 0 %
    t0 = time.monotonic()
    dock.cancel()
    _wait(dock, timeout=10)
    took = time.monotonic() - t0
    print(f"cancel during {phase}: {took:.2f} s")
    assert took < 3.0  # goal 1 s (measured: see the issue note); the bound only catches a hang
    assert dock.stage_label.text() == "Cancelled"
    assert not run_dir.exists() and list(out.iterdir()) == []


def test_the_engine_buttons_stay_in_sight_in_a_narrow_panel(new_dock, tmp_path,
                                                               monkeypatch):
    """On first open the Install engine button sat right of the engine label, out of sight in a
    panel narrower than its content: it is under the label now, at the left edge, and the long
    paths in labels can wrap."""
    from sparsevit_qgis.core import settings
    deep = tmp_path / ("profiles_" * 6) / "default" / "python" / "plugins" / "sparsevit_qgis" / "resources" \
        / "models" / "default"
    deep.mkdir(parents=True)
    (deep / "bundle.json").write_text("{}")
    monkeypatch.setattr(settings, "default_model_path", lambda: deep)
    dock = new_dock()
    dock.model_input.refresh_trained()  # fills the default model label
    dock.resize(420, 900)
    dock.show()
    QgsApplication.processEvents()
    body = dock.scroll.widget()
    for button in (dock.install_engine_button, dock.engine_button):
        right = button.mapTo(body, button.rect().topRight()).x()
        assert button.isVisible() and right <= dock.scroll.viewport().width()
    assert "\u200b" in dock.model_input.default_label.text()  # the path may break at its slashes
    dock.hide()
