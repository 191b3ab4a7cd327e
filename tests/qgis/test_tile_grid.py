"""A tile grid being tagged, without the engine: the grid GeoPackage of ``sparsevit grid`` (made
here with OGR, same layer and fields), its tag styling, and the tagging map tool driven by mouse
and key events on a real canvas (click, drag, Ctrl+drag, Shift, number keys, undo)."""
from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsExpression,
    QgsExpressionContext,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsRuleBasedRenderer,
)
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QKeyEvent

TILE, RES = 64, 10.0          # px, m: cells of 640 m
ORIGIN = (500000.0, 4200000.0)  # top-left corner, EPSG:32630
CELL = TILE * RES
CLASSES = ["Water", "Built-up", "Cropland", "Grassland", "Forest"]


def write_grid_gpkg(path: Path, rows: int = 4, cols: int = 4, tags: dict | None = None,
                    epsg: int = 32630, origin=ORIGIN, cell: float = CELL, raster: str = "scene.tif") -> Path:
    """A grid as ``sparsevit grid`` writes it: layer ``tiles``, fields tile_id, raster, row, col,
    classes (``tags``: {(row, col): "A;B"})."""
    from osgeo import ogr, osr
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("tiles", srs, ogr.wkbPolygon)
    for name, kind in (("tile_id", ogr.OFTInteger), ("raster", ogr.OFTString), ("row", ogr.OFTInteger),
                       ("col", ogr.OFTInteger), ("classes", ogr.OFTString)):
        layer.CreateField(ogr.FieldDefn(name, kind))
    defn = layer.GetLayerDefn()
    x0, y0 = origin
    for r in range(rows):
        for c in range(cols):
            f = ogr.Feature(defn)
            f.SetField("tile_id", r * cols + c)
            f.SetField("raster", raster)
            f.SetField("row", r * TILE)
            f.SetField("col", c * TILE)
            f.SetField("classes", (tags or {}).get((r, c), ""))
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for x, y in ((0, 0), (1, 0), (1, 1), (0, 1), (0, 0)):
                ring.AddPoint_2D(x0 + (c + x) * cell, y0 - (r + y) * cell)
            poly = ogr.Geometry(ogr.wkbPolygon)
            poly.AddGeometry(ring)
            f.SetGeometry(poly)
            layer.CreateFeature(f)
            f = None
    layer = None
    ds = None  # closed before QGIS opens it
    return Path(path)


def open_grid_layer(path: Path, name: str = "tiles"):
    from qgis.core import QgsVectorLayer
    layer = QgsVectorLayer(f"{path}|layername=tiles", name, "ogr")
    assert layer.isValid()
    return layer


def cell_center(r: int, c: int) -> QgsPointXY:
    return QgsPointXY(ORIGIN[0] + (c + 0.5) * CELL, ORIGIN[1] - (r + 0.5) * CELL)


def classes_by_cell(layer) -> dict[tuple[int, int], str]:
    return {(f["row"] // TILE, f["col"] // TILE): (f["classes"] or "") for f in layer.getFeatures()}


@pytest.fixture
def grid_gpkg(tmp_path) -> Path:
    return write_grid_gpkg(tmp_path / "scene_tiles.gpkg", tags={(0, 0): "Forest"})


@pytest.fixture
def grid(grid_gpkg, qgis_new_project):
    layer = open_grid_layer(grid_gpkg)
    QgsProject.instance().addMapLayer(layer)
    yield layer
    if layer.isEditable():
        layer.rollBack()


@pytest.fixture
def canvas(qgis_canvas, grid):
    qgis_canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:32630"))
    qgis_canvas.setLayers([grid])
    qgis_canvas.setExtent(QgsRectangle(ORIGIN[0] - 100, ORIGIN[1] - 4 * CELL - 100,
                                       ORIGIN[0] + 4 * CELL + 100, ORIGIN[1] + 100))
    return qgis_canvas


@pytest.fixture
def tool(canvas, grid):
    from sparsevit_qgis.gui.tagging_tool import TaggingTool
    t = TaggingTool(canvas, grid, CLASSES)
    canvas.setMapTool(t)
    yield t
    canvas.unsetMapTool(t)


def pixel(canvas, point: QgsPointXY) -> QPoint:
    p = canvas.getCoordinateTransform().transform(point)
    return QPoint(int(round(p.x())), int(round(p.y())))


def mouse(canvas, kind, point: QgsPointXY, modifiers=Qt.NoModifier, button=Qt.LeftButton):
    buttons = Qt.NoButton if kind == QEvent.MouseButtonRelease else Qt.LeftButton
    return QgsMapMouseEvent(canvas, kind, pixel(canvas, point), button, buttons, modifiers)


def click(tool, point, modifiers=Qt.NoModifier):
    canvas = tool.canvas()
    tool.canvasPressEvent(mouse(canvas, QEvent.MouseButtonPress, point, modifiers))
    tool.canvasReleaseEvent(mouse(canvas, QEvent.MouseButtonRelease, point, modifiers))


def drag(tool, points, modifiers=Qt.NoModifier):
    canvas = tool.canvas()
    tool.canvasPressEvent(mouse(canvas, QEvent.MouseButtonPress, points[0], modifiers))
    for p in points[1:]:
        tool.canvasMoveEvent(mouse(canvas, QEvent.MouseMove, p, modifiers))
    tool.canvasReleaseEvent(mouse(canvas, QEvent.MouseButtonRelease, points[-1], modifiers))


def key(tool, k, modifiers=Qt.NoModifier) -> bool:
    event = QKeyEvent(QEvent.KeyPress, k, modifiers)
    tool.keyPressEvent(event)
    return event.isAccepted()


# --- tags ----------------------------------------------------------------------------------
def test_tag_text_helpers_read_like_the_engine_and_write_with_semicolons():
    from sparsevit_qgis.core.tags import join_tags, split_tags, with_tag
    assert split_tags("Water; Forest,Water") == ["Water", "Forest"]
    assert split_tags(None) == split_tags("") == split_tags("NULL") == split_tags(" ; ") == []
    assert join_tags(["Forest", "Water"], order=CLASSES) == "Water;Forest"
    assert with_tag("Forest", "Water", True, CLASSES) == "Water;Forest"
    assert with_tag("Water;Forest", "Water", False) == "Forest"


def test_fixture_grid_is_a_grid_with_the_engine_fields(grid):
    from sparsevit_qgis.core.tags import grid_tile_size, is_grid_layer, tag_counts
    assert is_grid_layer(grid) and grid.featureCount() == 16
    assert grid_tile_size(grid) == TILE  # row/col are pixel offsets
    assert [f.name() for f in grid.fields()][-5:] == ["tile_id", "raster", "row", "col", "classes"]
    assert tag_counts(grid) == {"Forest": 1, "": 15}


# --- styling -------------------------------------------------------------------------------
def _evaluate(expression: str, layer, classes_text) -> bool:
    from qgis.core import QgsFeature
    f = QgsFeature(layer.fields())
    f.setAttribute(layer.fields().indexOf("classes"), classes_text)
    ctx = QgsExpressionContext()
    ctx.setFeature(f)
    expr = QgsExpression(expression)
    assert not expr.hasParserError(), expr.parserErrorString()
    return bool(expr.evaluate(ctx))


def test_grid_is_styled_by_its_tags_with_the_class_colours(grid):
    from sparsevit_qgis.core.grid_style import UNKNOWN_LABEL, UNTAGGED_LABEL, class_rules, style_grid
    from sparsevit_qgis.core.user_scheme import EditableScheme
    scheme = EditableScheme.default()
    assert scheme.names == CLASSES
    style_grid(grid, scheme.validate())
    assert isinstance(grid.renderer(), QgsRuleBasedRenderer)
    rules = class_rules(grid)
    assert list(rules) == [UNTAGGED_LABEL] + CLASSES + [UNKNOWN_LABEL]
    for c in scheme.classes:
        assert rules[c.name][1] == c.color  # fill in the class colour (alpha aside)
    root = grid.renderer().rootRule().children()
    untagged = root[0].symbol().symbolLayer(0)
    assert untagged.brushStyle() == Qt.NoBrush  # untagged cells hollow
    assert root[-1].isElse()
    water = rules["Water"][0]
    assert _evaluate(water, grid, "Water") and _evaluate(water, grid, "Forest; Water")
    assert _evaluate(water, grid, "Built-up,Water")
    assert not _evaluate(water, grid, "Waterway") and not _evaluate(water, grid, "")
    assert _evaluate(rules[UNTAGGED_LABEL][0], grid, None) and _evaluate(rules[UNTAGGED_LABEL][0], grid, " ")
    assert not _evaluate(rules[UNTAGGED_LABEL][0], grid, "Forest")
    # cells are labelled with the number keys of their classes
    assert grid.labelsEnabled()
    label = QgsExpression(grid.labeling().settings().fieldName)
    ctx = QgsExpressionContext()
    feature = next(grid.getFeatures())  # the Forest cell
    ctx.setFeature(feature)
    assert label.evaluate(ctx) == "5"


# --- the tagging tool ------------------------------------------------------------------------
def test_click_toggles_the_current_class_and_undo_restores(tool, grid):
    assert tool.current_class() == "Water"
    click(tool, cell_center(1, 2))
    assert grid.isEditable() and grid.isModified()
    assert classes_by_cell(grid)[(1, 2)] == "Water"
    click(tool, cell_center(0, 0))  # the Forest cell gets Water too, in scheme order
    assert classes_by_cell(grid)[(0, 0)] == "Water;Forest"
    click(tool, cell_center(1, 2))  # a second click takes it away
    assert classes_by_cell(grid)[(1, 2)] == ""
    stack = grid.undoStack()
    assert stack.count() == 3
    stack.undo()
    assert classes_by_cell(grid)[(1, 2)] == "Water"
    assert key(tool, Qt.Key_Z, Qt.ControlModifier)  # Ctrl+Z in the tool: the same undo stack
    assert classes_by_cell(grid)[(0, 0)] == "Forest"
    stack.undo()
    assert classes_by_cell(grid)[(1, 2)] == ""
    assert not key(tool, Qt.Key_Z, Qt.ControlModifier)  # nothing left to undo
    assert classes_by_cell(grid) == {**{(r, c): "" for r in range(4) for c in range(4)}, (0, 0): "Forest"}


def test_number_keys_choose_the_class(tool, grid):
    seen = []
    tool.class_changed.connect(seen.append)
    assert key(tool, Qt.Key_3)
    assert tool.current_class() == "Cropland" and seen == [2]
    click(tool, cell_center(3, 3))
    assert key(tool, Qt.Key_5) and tool.current_class() == "Forest"
    click(tool, cell_center(3, 3))
    assert classes_by_cell(grid)[(3, 3)] == "Cropland;Forest"
    assert not key(tool, Qt.Key_9)  # no ninth class: not taken, the class stays
    assert tool.current_class() == "Forest"
    assert not key(tool, Qt.Key_2, Qt.ControlModifier)  # Ctrl+2 is left to QGIS


def test_drag_tags_every_cell_on_the_path_as_one_undo_step(tool, grid):
    key(tool, Qt.Key_1)
    # along row 2 from column 0 to 3, a little wobble
    path = [cell_center(2, 0), QgsPointXY(ORIGIN[0] + 1.5 * CELL, ORIGIN[1] - 2.4 * CELL), cell_center(2, 3)]
    drag(tool, path)
    tags = classes_by_cell(grid)
    assert [tags[(2, c)] for c in range(4)] == ["Water"] * 4
    assert all(tags[(r, c)] in ("", "Forest") for r in (0, 1, 3) for c in range(4))
    assert grid.undoStack().count() == 1
    drag(tool, path)  # all four have it: a second drag removes it
    assert [classes_by_cell(grid)[(2, c)] for c in range(4)] == [""] * 4
    grid.undoStack().undo()
    assert [classes_by_cell(grid)[(2, c)] for c in range(4)] == ["Water"] * 4


def test_ctrl_drag_tags_a_rectangle_and_shift_removes(tool, grid):
    key(tool, Qt.Key_5)
    a = QgsPointXY(ORIGIN[0] + 0.5 * CELL, ORIGIN[1] - 0.5 * CELL)
    b = QgsPointXY(ORIGIN[0] + 1.5 * CELL, ORIGIN[1] - 1.5 * CELL)
    drag(tool, [a, b], Qt.ControlModifier)
    tags = classes_by_cell(grid)
    assert {rc for rc, t in tags.items() if t == "Forest"} == {(0, 0), (0, 1), (1, 0), (1, 1)}
    click(tool, cell_center(0, 0), Qt.ShiftModifier)  # Shift removes, never adds
    click(tool, cell_center(3, 0), Qt.ShiftModifier)
    tags = classes_by_cell(grid)
    assert tags[(0, 0)] == "" and tags[(3, 0)] == "" and tags[(1, 1)] == "Forest"


def test_tool_without_a_grid_or_outside_it_changes_nothing(tool, grid):
    messages = []
    tool.message.connect(messages.append)
    click(tool, QgsPointXY(ORIGIN[0] - 50, ORIGIN[1] + 50))  # outside every cell
    assert not grid.isModified()
    tool.set_layer(None)
    click(tool, cell_center(1, 1))
    assert messages and "tile grid" in messages[0]
    assert classes_by_cell(grid)[(1, 1)] == ""


def test_tool_works_on_a_canvas_in_another_crs(tool, grid, canvas):
    canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
    from qgis.core import QgsCoordinateTransform
    xform = QgsCoordinateTransform(grid.crs(), canvas.mapSettings().destinationCrs(), QgsProject.instance())
    canvas.setExtent(xform.transformBoundingBox(grid.extent()))
    click(tool, xform.transform(cell_center(2, 1)))
    assert classes_by_cell(grid)[(2, 1)] == "Water"
