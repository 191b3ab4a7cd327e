"""The class-scheme editor: add, rename, recolour, merge, remove (never below two classes), the
project save/load round trip, the --classes JSON file, and merges/renames rewriting a grid's tags."""
from __future__ import annotations

import json

import pytest
from qgis.core import QgsProject
from qgis.PyQt.QtGui import QColor
from test_tile_grid import CLASSES, classes_by_cell, open_grid_layer, write_grid_gpkg


@pytest.fixture
def editor(qgis_new_project):
    from sparsevit_qgis.gui.class_scheme_editor import ClassSchemeEditor
    e = ClassSchemeEditor()
    yield e
    e.deleteLater()


def test_editable_scheme_rules():
    from sparsevit_qgis.core.schemes import SchemeError
    from sparsevit_qgis.core.user_scheme import EditableScheme
    s = EditableScheme()
    s.add("Water")
    s.add("Forest", "#00AA00")
    assert [(c.value, c.name, c.color) for c in s.classes][1] == (2, "Forest", "#00aa00")
    for bad in ("", "Water", "water", "A;B", "A,B", "NULL"):
        with pytest.raises(SchemeError):
            s.add(bad)
    with pytest.raises(SchemeError, match="rrggbb"):
        s.recolour("Water", "blue")
    with pytest.raises(SchemeError, match="at least 2"):
        s.remove("Water")
    with pytest.raises(SchemeError, match="at least 2"):
        s.merge(["Water"], "Forest")
    assert s.rename("Water", "Open water") == {"Water": "Open water"}
    assert s.rename("Forest", "Forest") == {}
    assert s.names == ["Open water", "Forest"]
    # classes from a label field: integer codes keep their value, names get 1..K sorted
    codes = EditableScheme.from_values([3, 1, 3.0, None, "NULL"])
    assert [(c.value, c.name) for c in codes.classes] == [(1, "class 1"), (3, "class 3")]
    names = EditableScheme.from_values(["Water", "Forest", "Water", ""])
    assert [(c.value, c.name) for c in names.classes] == [(1, "Forest"), (2, "Water")]


def test_editor_add_rename_recolour_merge_remove(editor):
    seen, renamed, errors = [], [], []
    editor.changed.connect(lambda: seen.append(editor.names))
    editor.tags_renamed.connect(renamed.append)
    editor.error.connect(errors.append)
    assert editor.names == CLASSES and editor.table.rowCount() == 5  # the coarse classes to start
    assert editor.table.item(0, 0).text() == "1"  # number key column

    item = editor.add_class("Wetland")
    assert item.value == 5 and editor.names[-1] == "Wetland" and editor.table.rowCount() == 6
    assert editor.add_class("wetland") is None and "already" in errors[-1]

    # rename through the table, as a double-click edit does
    editor.table.item(1, 1).setText("Urban")
    assert editor.names[1] == "Urban" and renamed[-1] == {"Built-up": "Urban"}
    editor.table.item(1, 1).setText("Bad;name")  # refused: the table shows the old name again
    assert editor.names[1] == "Urban" and editor.table.item(1, 1).text() == "Urban"
    assert ";" in errors[-1]

    # recolour through the colour button of the row
    editor.color_button("Forest").setColor(QColor("#123456"))
    assert editor.scheme.by_name("Forest").color == "#123456"

    assert editor.merge_classes(["Cropland", "Grassland"], "Cropland")
    assert editor.names == ["Water", "Urban", "Cropland", "Forest", "Wetland"]
    assert renamed[-1] == {"Grassland": "Cropland"}
    assert editor.remove_class("Wetland") and renamed[-1] == {"Wetland": None}
    assert editor.merge_classes(["Water", "Urban", "Cropland"], "Water")
    assert editor.names == ["Water", "Forest"]
    assert not editor.remove_class("Forest") and "at least 2" in errors[-1]
    assert not editor.merge_classes(["Water", "Forest"], "Water")
    assert not editor.remove_button.isEnabled() and not editor.merge_button.isEnabled()
    assert seen and seen[-1] == ["Water", "Forest"]


def test_scheme_is_saved_with_the_project_and_read_back(editor, tmp_path):
    from sparsevit_qgis.gui.class_scheme_editor import ClassSchemeEditor
    editor.rename_class("Water", "Open water")
    editor.recolour_class("Forest", "#0a0b0c")
    editor.add_class("Snow", "#ffffff")
    project = QgsProject.instance()
    path = tmp_path / "tagging.qgz"
    assert project.write(str(path))
    project.clear()
    fresh = ClassSchemeEditor()  # a new panel on an empty project: the default classes
    try:
        assert fresh.names == CLASSES
        assert project.read(str(path))  # opening the project brings its scheme to the editor
        assert fresh.names == ["Open water", "Built-up", "Cropland", "Grassland", "Forest", "Snow"]
        assert fresh.scheme.by_name("Forest").color == "#0a0b0c"
        assert editor.names == fresh.names  # every open editor follows the project
    finally:
        fresh.deleteLater()
    text, ok = project.readEntry("SparseViT", "class_scheme", "")
    assert ok and json.loads(text)["classes"][-1] == {"value": 5, "name": "Snow", "color": "#ffffff"}


def test_scheme_json_file_is_what_the_engine_and_the_plugin_read(editor, tmp_path):
    from sparsevit_qgis.core.schemes import load_scheme
    editor.merge_classes(["Grassland"], "Cropland")
    path = editor.write_json(str(tmp_path / "classes.json"))
    scheme = load_scheme(path)
    assert [c.name for c in scheme.classes] == ["Water", "Built-up", "Cropland", "Forest"]
    assert scheme.ignore_value == 255
    data = json.loads(path.read_text())
    assert set(data) >= {"name", "title", "classes"}
    assert all(set(c) == {"value", "name", "color"} for c in data["classes"])


def test_merge_and_rename_rewrite_the_tags_of_the_grid(qgis_iface, qgis_new_project, tmp_path):
    from sparsevit_qgis.gui.dock import SparseVitDock
    path = write_grid_gpkg(tmp_path / "g.gpkg", rows=2, cols=2, tags={
        (0, 0): "Cropland", (0, 1): "Grassland;Forest", (1, 0): "Cropland;Grassland", (1, 1): "Water"})
    dock = SparseVitDock(qgis_iface)
    try:
        train = dock.train_section
        layer = train.add_grid(str(path), tile=64)
        assert layer is not None and layer.isEditable()
        editor = train.scheme_editor
        assert editor.merge_classes(["Grassland"], "Cropland")
        assert classes_by_cell(layer) == {(0, 0): "Cropland", (0, 1): "Cropland;Forest",
                                          (1, 0): "Cropland", (1, 1): "Water"}
        assert editor.rename_class("Water", "Open water")
        assert classes_by_cell(layer)[(1, 1)] == "Open water"
        # the grid's style follows the scheme
        labels = [r.label() for r in layer.renderer().rootRule().children()]
        assert "Open water" in labels and "Grassland" not in labels
        # each rewrite is one undo step
        layer.undoStack().undo()
        assert classes_by_cell(layer)[(1, 1)] == "Water"
        layer.undoStack().undo()
        assert classes_by_cell(layer)[(0, 1)] == "Grassland;Forest"
        reopened = open_grid_layer(path)
        assert classes_by_cell(reopened)[(0, 0)] == "Cropland"  # unsaved: the file is untouched
        assert train.save_tags() and classes_by_cell(open_grid_layer(path))[(0, 1)] == "Grassland;Forest"
    finally:
        dock.shutdown()
        dock.deleteLater()
