"""Comparing the map with imagery: the run's input as a true-colour layer under the results,
the Imagery and Basemap views, swipe compare on a real canvas, and the offline-basemap notice."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import wait_until
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
from qgis.PyQt.QtGui import QColor

from sparsevit_qgis.core.imagery import (
    TRUE_COLOUR_ROLE,
    basemap_problem,
    probe_tile_url,
    true_colour_layer,
)

GT = (500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0)


def _tif(path, bands: list[np.ndarray], dtype="uint16"):
    from osgeo import gdal, osr
    kind = {"uint16": gdal.GDT_UInt16, "uint8": gdal.GDT_Byte}[dtype]
    h, w = bands[0].shape
    ds = gdal.GetDriverByName("GTiff").Create(str(path), w, h, len(bands), kind)
    ds.SetGeoTransform(GT)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32630)
    ds.SetProjection(srs.ExportToWkt())
    for i, a in enumerate(bands, 1):
        ds.GetRasterBand(i).WriteArray(a.astype(dtype))
    ds = None
    return path


def _tc(paths_indices):
    return {"true_colour": {"bands": {b: {"path": str(p), "index": i, "min": 100.0, "max": 2000.0}
                                      for b, (p, i) in paths_indices.items()}}}


def test_one_file_true_colour_uses_the_engine_band_indices(tmp_path):
    f = _tif(tmp_path / "s2.tif", [np.full((16, 16), 500 + i) for i in range(13)])
    layer = true_colour_layer(_tc({"B04": (f, 9), "B03": (f, 2), "B02": (f, 5)}), "tc")
    r = layer.renderer()
    assert (r.redBand(), r.greenBand(), r.blueBand()) == (9, 2, 5)
    assert r.redContrastEnhancement().minimumValue() == 100.0
    assert r.redContrastEnhancement().maximumValue() == 2000.0
    assert layer.customProperty("sparsevit/role") == TRUE_COLOUR_ROLE


def test_band_files_are_stacked_by_a_vrt_in_the_run_folder(tmp_path):
    files = {b: _tif(tmp_path / f"T30_{b}.tif", [np.full((16, 16), v)]) for b, v in
             (("B04", 900), ("B03", 600), ("B02", 300))}
    run = tmp_path / "run"
    run.mkdir()
    layer = true_colour_layer(_tc({b: (p, 1) for b, p in files.items()}), "tc", run)
    assert layer is not None and layer.bandCount() == 3
    assert (run / "true_colour.vrt").is_file() and not list(run.glob(".*tmp"))
    ident = layer.dataProvider().identify(layer.extent().center(), 1).results()  # 1: IdentifyFormatValue
    assert [ident[i] for i in (1, 2, 3)] == [900, 600, 300]
    assert true_colour_layer({"true_colour": None}, "tc", run) is None


def test_results_put_the_imagery_under_the_maps(tmp_path, qgis_new_project, small_prediction):
    from sparsevit_qgis.core.results import VIEW_BASEMAP, VIEW_IMAGERY, add_predict_results, set_view
    from sparsevit_qgis.core.styling import set_group_opacity
    assert small_prediction.get("true_colour"), "the engine names the RGB bands of its input"
    run = add_predict_results(small_prediction, "sample", QgsProject.instance())
    layers = [n.layer() for n in run.group.findLayers()]
    assert layers[-1].customProperty("sparsevit/role") == TRUE_COLOUR_ROLE
    root = QgsProject.instance().layerTreeRoot()
    node = root.findLayer(layers[-1].id())
    assert node.itemVisibilityChecked() and not node.isExpanded()
    set_group_opacity(run.group, 0.3)
    assert layers[-1].renderer().opacity() == 1.0 and run.main_map.renderer().opacity() == pytest.approx(0.3)
    set_view(run, VIEW_IMAGERY)
    assert node.itemVisibilityChecked() and not root.findLayer(run.main_map.id()).itemVisibilityChecked()
    set_view(run, VIEW_BASEMAP)
    assert not node.itemVisibilityChecked()




def test_swipe_shows_the_imagery_left_of_the_line(tmp_path, qgis_new_project):
    from qgis.gui import QgsMapCanvas

    from sparsevit_qgis.gui.swipe import SwipeTool
    qgis_canvas = QgsMapCanvas()
    red = QgsRasterLayer(str(_tif(tmp_path / "red.tif", [np.full((64, 64), 250), np.zeros((64, 64)),
                                                          np.zeros((64, 64))], "uint8")), "imagery")
    blue = QgsRasterLayer(str(_tif(tmp_path / "blue.tif", [np.zeros((64, 64)), np.zeros((64, 64)),
                                                           np.full((64, 64), 250)], "uint8")), "map")
    for lyr in (red, blue):
        assert lyr.isValid()
        QgsProject.instance().addMapLayer(lyr)
    qgis_canvas.resize(400, 300)
    qgis_canvas.show()  # a hidden canvas keeps its old output size
    wait_until(lambda: qgis_canvas.mapSettings().outputSize().width() > 300, 5)
    qgis_canvas.setCanvasColor(QColor(0, 0, 0))
    qgis_canvas.setDestinationCrs(blue.crs())
    qgis_canvas.setLayers([blue])
    qgis_canvas.setExtent(blue.extent())
    qgis_canvas.refresh()
    qgis_canvas.waitWhileRendering()
    tool = SwipeTool(qgis_canvas, [red])
    qgis_canvas.setMapTool(tool)
    wait_until(lambda: not tool.rendering and tool.item is not None and tool.item.image is not None)
    probe = tool.item.image.pixelColor(100, 150)
    assert probe.red() > 200, f"imagery render: {probe.name()} {tool.item.image.width()}"
    tool.set_position(200)
    qgis_canvas.waitWhileRendering()
    QgsApplication.processEvents()  # the item's repaint
    img = qgis_canvas.grab().toImage()
    left, right = img.pixelColor(100, 150), img.pixelColor(300, 150)
    assert left.red() > 200 and left.blue() < 50, left.name()
    assert right.blue() > 200 and right.red() < 50, right.name()
    qgis_canvas.unsetMapTool(tool)
    assert tool.item is None
    qgis_canvas.deleteLater()


def test_basemap_probe_url_and_offline_problem(tmp_path):
    uri = "type=xyz&url=https://tile.openstreetmap.org/{z}/{x}/{y}.png&zmax=19&zmin=0"
    assert probe_tile_url(uri) == "https://tile.openstreetmap.org/0/0/0.png"
    assert probe_tile_url("crs=EPSG:3857&format=image/png&layers=x&url=https://wms") is None
    missing = f"type=xyz&url=file://{tmp_path}/tiles/{{z}}/{{x}}/{{y}}.png"
    assert "does not exist" in basemap_problem(missing)
    (tmp_path / "tiles" / "0" / "0").mkdir(parents=True)
    (tmp_path / "tiles" / "0" / "0" / "0.png").write_bytes(b"png")
    assert basemap_problem(missing) is None
    # a closed local port answers at once: what an offline machine sees, without the network
    assert basemap_problem("type=xyz&url=http://127.0.0.1:9/{z}/{x}/{y}.png", timeout_ms=2000)


@pytest.fixture
def basemap_settings():
    """The basemap choice is a user setting: restored after the test."""
    from sparsevit_qgis.core import settings
    before = (settings.basemap_name(), settings.basemap_uri())
    yield settings
    settings.set_basemap(*before)


def test_the_basemap_is_chosen_in_the_panel_and_an_offline_one_is_reported(basemap_settings, new_dock,
                                                                           qgis_iface, qgis_new_project,
                                                                           tmp_path):
    from qgis.core import Qgis

    from sparsevit_qgis.core.results import find_basemap
    settings = basemap_settings
    dock = new_dock()
    names = [dock.basemap_combo.itemText(i) for i in range(dock.basemap_combo.count())]
    assert names[:2] == ["OpenStreetMap", "Esri World Imagery (satellite)"] and names[-1] == "Custom…"
    imagery = dock.basemap_combo.findText("Esri World Imagery (satellite)")
    bar = qgis_iface.messageBar()
    bar.clear_messages()
    dock.basemap_combo.setCurrentIndex(imagery)
    dock._basemap_chosen(imagery)
    assert settings.basemap_name() == "Esri World Imagery (satellite)"
    assert "World_Imagery" in settings.basemap_uri()
    assert find_basemap() is None  # choosing does not add a layer; Add basemap does
    # an unreachable custom basemap (what an offline machine sees): the layer switches and the
    # panel says that its tiles do not load
    # (a local tile folder first: the test never asks the network)
    tiles = tmp_path / "tiles" / "0" / "0"
    tiles.mkdir(parents=True)
    (tiles / "0.png").write_bytes(b"png")
    dock.set_basemap_choice("My tiles", f"type=xyz&url=file://{tmp_path}/tiles/{{z}}/{{x}}/{{y}}.png")
    dock.add_basemap()
    layer = find_basemap()
    assert layer is not None and "My tiles" == layer.name() and str(tmp_path) in layer.source()
    QgsApplication.processEvents()
    dock.set_basemap_choice("Local tiles", "type=xyz&url=http://127.0.0.1:9/{z}/{x}/{y}.png")
    assert find_basemap() is layer and layer.name() == "Local tiles" and "127.0.0.1:9" in layer.source()
    assert dock.basemap_combo.currentText() == "Local tiles"  # a custom choice is listed as itself
    wait_until(lambda: bar.get_messages(Qgis.Warning), timeout=20, describe="the offline warning")
    assert any("do not load" in m for m in bar.get_messages(Qgis.Warning))
