"""Export what the layer shows, and reclassify: names and colours edited in a land-cover layer's
Symbology reach the exported COG (colour table, category names, .qml) and polygons; the
Reclassify… action merges classes (River + SeaLake -> Water) into a new COG added to the map.
Each export runs the real engine on a small EuroSAT raster and reads the written file back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import wait_for_panel
from qgis.core import (
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

EUROSAT = json.loads((Path(__file__).resolve().parents[2] / "resources" / "schemes" / "eurosat.json")
                     .read_text(encoding="utf-8"))
BLOCK = 6  # px per class block: 2 rows of 5 blocks, values 0..9


def _values(row: int, col: int) -> int:
    return (row // BLOCK) * 5 + col // BLOCK


@pytest.fixture
def eurosat_tif(tmp_path) -> Path:
    """EuroSAT classes 0..9 in blocks, the top-left 2 x 2 px nodata, the class table in the
    engine's SPARSEVIT_CLASSES band tag (as the engine writes it) and a colour table."""
    from osgeo import gdal, osr
    path = tmp_path / "eurosat_landcover.tif"
    width, height = 5 * BLOCK, 2 * BLOCK
    ds = gdal.GetDriverByName("GTiff").Create(str(path), width, height, 1, gdal.GDT_Byte)
    ds.SetGeoTransform((500000.0, 10.0, 0.0, 4200000.0, 0.0, -10.0))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32630)
    ds.SetProjection(srs.ExportToWkt())
    band = ds.GetRasterBand(1)
    band.SetNoDataValue(255)
    pixels = bytes(255 if r < 2 and c < 2 else _values(r, c) for r in range(height) for c in range(width))
    band.WriteRaster(0, 0, width, height, pixels)
    table = gdal.ColorTable()
    for c in EUROSAT["classes"]:
        rgb = QColor(c["color"])
        table.SetColorEntry(c["value"], (rgb.red(), rgb.green(), rgb.blue(), 255))
    band.SetRasterColorTable(table)
    band.SetMetadataItem("SPARSEVIT_CLASSES", json.dumps(
        [{"value": c["value"], "name": c["name"], "color": c["color"]} for c in EUROSAT["classes"]]))
    ds.SetMetadataItem("SPARSEVIT_SCHEME", "eurosat")
    band = None
    ds = None  # closed before QGIS and the engine read it
    return path


@pytest.fixture
def landcover(eurosat_tif, qgis_new_project) -> QgsRasterLayer:
    """The raster as the panel shows a result: paletted, with the scheme's legend labels."""
    from sparsevit_qgis.core.styling import apply_scheme
    layer = QgsRasterLayer(str(eurosat_tif), "eurosat landcover")
    assert layer.isValid()
    apply_scheme(layer, "eurosat")
    QgsProject.instance().addMapLayer(layer)
    yield layer
    QgsProject.instance().clear()


@pytest.fixture
def engine_dock(new_dock, real_engine, engine_setting):
    engine_setting.set_python_path(str(real_engine[0]))
    return new_dock


def _edit_symbology(layer: QgsRasterLayer, edits: dict[int, tuple[str, str]]) -> None:
    """What a user does in Layer Properties > Symbology: relabel and recolour classes."""
    renderer = layer.renderer()
    classes = []
    for c in renderer.classes():
        label, colour = edits.get(int(c.value), (c.label, c.color.name()))
        classes.append(QgsPalettedRasterRenderer.Class(c.value, QColor(colour), label))
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))




def _read(path: Path):
    """(pixel values as rows, colour table {value: rgb}, category names) through GDAL."""
    from osgeo import gdal
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    data = band.ReadRaster(0, 0, ds.RasterXSize, ds.RasterYSize)
    rows = [list(data[r * ds.RasterXSize:(r + 1) * ds.RasterXSize]) for r in range(ds.RasterYSize)]
    table = band.GetRasterColorTable()
    colours = {v: table.GetColorEntry(v)[:3] for v in range(table.GetCount())}
    names = band.GetCategoryNames() or []
    ds = None
    return rows, colours, names


def _qml_labels(path: Path) -> dict[int, tuple[str, str]]:
    import xml.etree.ElementTree as ET
    root = ET.parse(path.with_suffix(".qml")).getroot()
    return {int(e.get("value")): (e.get("label"), e.get("color")) for e in root.iter("paletteEntry")}


def _select_format(dock, fmt: str) -> None:
    dock.export_format.setCurrentIndex(dock.export_format.findData(fmt))


# --- export of edited styles ---------------------------------------------------------------

def test_export_sends_the_classes_the_layer_shows(new_dock, landcover, tmp_path):
    _edit_symbology(landcover, {9: ("Lake", "#123456")})
    dock = new_dock()
    dock.export_layer.setLayer(landcover)
    dock.export_file.setFilePath(str(tmp_path / "out.tif"))
    args = dock.build_export_args()
    shown = json.loads(Path(args[args.index("--classes") + 1]).read_text(encoding="utf-8"))
    assert {"value": 9, "name": "Lake", "colour": "#123456"} in shown
    assert {"value": 8, "name": "River", "colour": "#00ccf2"} in shown
    assert len(shown) == 10
    _select_format(dock, "gpkg")
    dock.export_min_area.setValue(4)
    args = dock.build_export_args()
    assert "--classes" in args and args[-2:] == ["--min-area-pixels", "4"]  # polygon options last


def test_export_of_edited_styles_keeps_them_in_the_cog(engine_dock, landcover, tmp_path):
    _edit_symbology(landcover, {9: ("Lake", "#123456"), 8: ("River", "#abcdef")})
    dock = engine_dock()
    dock.export_layer.setLayer(landcover)
    dock.export_file.setFilePath(str(tmp_path / "edited.tif"))
    assert dock.run_export() is not None
    wait_for_panel(dock)
    out = tmp_path / "edited.tif"
    assert out.exists(), dock.log.toPlainText()
    rows, colours, names = _read(out)
    assert colours[9] == (0x12, 0x34, 0x56) and colours[8] == (0xab, 0xcd, 0xef)
    assert colours[1] == (0x00, 0xa6, 0x00)  # unedited: as before
    assert names[9] == "Lake" and names[8] == "River" and names[0] == "AnnualCrop"
    assert rows[0][0] == 255 and rows[BLOCK][4 * BLOCK] == 9  # pixel values untouched
    labels = _qml_labels(out)
    assert labels[9] == ("Lake", "#123456")
    assert labels[0][0] == "Annual crop"  # the legend text the layer showed
    added = QgsProject.instance().layerTreeRoot().children()[0].layer()
    assert added.source() == str(out)
    shown = {int(c.value): (c.label, c.color.name()) for c in added.renderer().classes()}
    assert shown[9] == ("Lake", "#123456") and shown[8] == ("River", "#abcdef")


def test_processing_export_writes_the_edited_styles_of_a_project_layer(provider, real_engine, engine_setting,
                                                                     landcover, tmp_path):
    """sparsevit:export given the project layer (as the Processing dialog passes it) exports what
    it shows, like the panel: the COG's colour table and class names are the edited ones."""
    import processing
    engine_setting.set_python_path(str(real_engine[0]))
    _edit_symbology(landcover, {9: ("Lake", "#123456")})
    out = tmp_path / "processing.tif"
    processing.run("sparsevit:export", {"INPUT": landcover.id(), "FORMAT": "cog", "OUTPUT": str(out)})
    rows, colours, names = _read(out)
    assert colours[9] == (0x12, 0x34, 0x56) and names[9] == "Lake" and names[0] == "AnnualCrop"
    assert rows[BLOCK][4 * BLOCK] == 9


def test_export_of_edited_styles_names_the_polygons(engine_dock, landcover, tmp_path):
    _edit_symbology(landcover, {9: ("Lake", "#123456")})
    dock = engine_dock()
    dock.export_layer.setLayer(landcover)
    _select_format(dock, "gpkg")
    dock.export_file.setFilePath(str(tmp_path / "edited.gpkg"))
    assert dock.run_export() is not None
    wait_for_panel(dock)
    polys = QgsVectorLayer(str(tmp_path / "edited.gpkg"), "p", "ogr")
    assert polys.isValid(), dock.log.toPlainText()
    names = {f["class_value"]: f["class_name"] for f in polys.getFeatures()}
    assert names[9] == "Lake" and names[8] == "River" and len(names) == 10


# --- reclassify ------------------------------------------------------------------------------

def test_reclassify_rules_merge_by_name_and_keep_values():
    from sparsevit_qgis.core.reclassify import ReclassRow, reclass_spec
    rows = [ReclassRow(0, "Annual crop", "Crops", "#ffd92f"),
            ReclassRow(6, "Permanent crop", " crops ", "#e68000"),  # same name: merged
            ReclassRow(8, "River", "Water", "#00ccf2"),
            ReclassRow(9, "Sea / lake", "Water", "#1c0dff"),
            ReclassRow(3, "Highway", "", "#7f7f7f")]  # no data
    spec = reclass_spec(rows)
    assert spec["classes"] == [{"value": 0, "name": "Crops", "colour": "#ffd92f"},
                               {"value": 8, "name": "Water", "colour": "#00ccf2"}]
    assert spec["map"] == {"0": 0, "6": 0, "8": 8, "9": 8, "3": None}


def test_reclassify_dialog_merges_river_and_sealake_into_water(engine_dock, landcover, tmp_path):
    from sparsevit_qgis.core.styling import palette_classes
    from sparsevit_qgis.gui.reclassify_dialog import ReclassifyDialog
    dock = engine_dock()
    dock.export_layer.setLayer(landcover)
    dialog = ReclassifyDialog(palette_classes(landcover), landcover.name(), str(tmp_path / "water.tif"))
    values = [r.value for r in dialog.rows()]
    dialog.table.item(values.index(8), 1).setText("Water")  # as typed into the table
    dialog.set_target(values.index(9), "water")
    assert dialog.rows()[values.index(9)].colour == "#00ccf2"  # joins Water: River's colour
    dialog.set_colour(values.index(9), "#0055ff")  # recolours the merged class
    assert {r.colour for r in dialog.rows() if r.value in (8, 9)} == {"#0055ff"}
    assert dialog.summary.text().startswith("10 classes become 9")
    assert dock.run_reclassify(dialog.spec(), dialog.output_path()) is not None
    wait_for_panel(dock)
    out = tmp_path / "water.tif"
    rows, colours, names = _read(out)
    expected = [[255 if r < 2 and c < 2 else (8 if _values(r, c) == 9 else _values(r, c))
                 for c in range(5 * BLOCK)] for r in range(2 * BLOCK)]
    assert rows == expected  # SeaLake pixels are Water (8) now; nodata stays nodata
    assert names[8] == "Water" and len(names) == 9 and names[0] == "Annual crop"
    assert colours[8] == (0x00, 0x55, 0xff)
    assert _qml_labels(out)[8] == ("Water", "#0055ff") and 9 not in _qml_labels(out)
    added = QgsProject.instance().layerTreeRoot().children()[0].layer()
    assert added.source() == str(out)
    assert [(int(c.value), c.label) for c in added.renderer().classes()][8:] == [(8, "Water")]


def test_reclassify_action_from_a_bundled_mapping(engine_dock, landcover, tmp_path, monkeypatch):
    from sparsevit_qgis.gui import reclassify_dialog
    dock = engine_dock()
    dock.export_layer.setLayer(landcover)
    seen = {}

    def choose(dialog):  # the user picks the mapping and clicks Reclassify
        seen["mappings"] = [dialog.mapping_combo.itemData(i) for i in range(dialog.mapping_combo.count())]
        dialog.load_mapping("eurosat_to_eurosat_coarse")
        dialog.output.setFilePath(str(tmp_path / "coarse.tif"))
        return True

    monkeypatch.setattr(reclassify_dialog.ReclassifyDialog, "exec_", choose)
    assert dock.open_reclassify() is not None
    # only the mappings from EuroSAT, none of another scheme's
    assert seen["mappings"] == [None, "eurosat_to_dfc2020", "eurosat_to_eurosat_coarse"]
    wait_for_panel(dock)
    rows, colours, names = _read(tmp_path / "coarse.tif")
    coarse = json.loads((Path(__file__).resolve().parents[2] / "resources" / "schemes"
                         / "eurosat_coarse.json").read_text(encoding="utf-8"))
    by_name = {c["name"]: c for c in coarse["classes"]}
    water = by_name["Water"]["value"]
    assert rows[BLOCK][3 * BLOCK] == water and rows[BLOCK][4 * BLOCK] == water  # River, SeaLake
    assert rows[0][BLOCK] == by_name["Forest"]["value"] and rows[0][0] == 255
    assert {names[c["value"]] for c in coarse["classes"]} == set(by_name)
    assert colours[water] == QColor(by_name["Water"]["color"]).getRgb()[:3]
    added = QgsProject.instance().layerTreeRoot().children()[0].layer()
    assert sorted(c.label for c in added.renderer().classes()) == sorted(by_name)


def test_reclassify_needs_a_layer_shown_with_classes(new_dock, uint8_tif, qgis_new_project, tmp_path):
    layer = QgsRasterLayer(str(uint8_tif), "grey")
    QgsProject.instance().addMapLayer(layer)
    try:
        dock = new_dock()
        dock.export_layer.setLayer(layer)
        if isinstance(layer.renderer(), QgsPalettedRasterRenderer):
            pytest.skip("QGIS styled the plain raster as paletted")
        assert dock.open_reclassify() is None
        assert "Paletted" in dock.log.toPlainText()
        dock.export_file.setFilePath(str(tmp_path / "x.tif"))
        assert "--classes" not in dock.build_export_args()  # nothing shown to override with
    finally:
        QgsProject.instance().clear()
