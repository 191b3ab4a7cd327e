"""The panel's Train section: tag tiles of your own scene, train a model on the tags, get a map.

1. raster(s) to train on;
2. labels: a tile grid made by ``sparsevit grid`` (Make tile grid) and tagged with the tagging
   map tool (``gui/tagging_tool.py``), or an existing point/line/polygon layer and its class
   field (e.g. SCP's ``MC_info``/``MC_ID``, dzetsaka's class field);
3. the class scheme (``gui/class_scheme_editor.py``), kept in the project;
4. Train runs ``sparsevit fit`` through the panel's engine task (progress bar, Cancel); the map
   arrives as a result group like a prediction's, the model joins the model selector.

Engine work goes through :meth:`SparseVitDock.start`; this widget only reads the form, writes
the run's inputs (scheme JSON, labels snapshot) and shows results.
"""
from __future__ import annotations

import datetime as _dt
import json
import shutil
import time
from pathlib import Path

from qgis.core import (
    QgsMapLayerProxyModel,
    QgsProject,
    QgsVectorLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsFieldComboBox, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import protocol as roles
from ..core import settings
from ..core.engine_runner import EngineOutcome
from ..core.fit_job import (
    LABELS_SNAPSHOT,
    SCHEME_FILE,
    FitRequest,
    GridRequest,
    eta_text,
    labels_for_engine,
    stage_title,
)
from ..core.grid_style import style_grid
from ..core.predict_job import JobError, discard_run_folder, input_stem, run_folder
from ..core.results import add_predict_results, has_map_outputs
from ..core.schemes import SchemeError
from ..core.tags import GRID_LAYER, GRID_PROPERTY, grid_tile_size, is_grid_layer, rewrite_tags, tag_counts
from ..core.user_scheme import EditableScheme
from .class_scheme_editor import ClassSchemeEditor
from .inputs import RasterInput, tr
from .narrow import WrapCheckBox, WrapRadioButton
from .tagging_tool import TaggingTool

TILE_PROPERTY = "sparsevit/tile"  # the tile size (px) a grid was made with
LABELS_GRID, LABELS_LAYER = "grid", "layer"
# how training starts: (value, label)
START_FROM = (
    ("default", "The engine's default (the bundled model)"),
    ("chosen", "The model chosen under Model"),
    ("scratch", "Nothing (from scratch; needs many tags)"),
)


def unique_path(path: Path) -> Path:
    """``path``, or ``<stem>_2<suffix>``, ``_3``... when it exists."""
    candidate, n = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}_{n}{path.suffix}")
        n += 1
    return candidate


def open_grid(path: str, name: str) -> QgsVectorLayer:
    """The ``tiles`` layer of a grid GeoPackage (the file's only layer otherwise)."""
    layer = QgsVectorLayer(f"{path}|layername={GRID_LAYER}", name, "ogr")
    if not layer.isValid():
        layer = QgsVectorLayer(str(path), name, "ogr")
    return layer


def color_icon(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class TrainSection(QgsCollapsibleGroupBox):
    def __init__(self, dock, parent=None):
        super().__init__(tr("Train on your labels"), parent)
        self.dock = dock
        self.iface = dock.iface
        self.tool: TaggingTool | None = None
        self._fit_dir: Path | None = None
        self._fit_inputs: list[Path] = []
        self._fit_started: _dt.datetime | None = None
        self._fit_label = ""
        self._fit_rasters: list[str] = []
        self._grid_path: Path | None = None
        self._stage_t0: float | None = None
        self._build()
        self._scheme_changed()
        self._labels_mode_changed()

    # --- layout --------------------------------------------------------------------------
    def _build(self) -> None:
        col = QVBoxLayout(self)
        form = QFormLayout()
        form.setRowWrapPolicy(QFormLayout.WrapAllRows)
        self.raster_input = RasterInput(optional=False, parent=self)
        form.addRow(tr("Sentinel-2 raster to train on"), self.raster_input)
        more = QWidget(self)
        more_row = QHBoxLayout(more)
        more_row.setContentsMargins(0, 0, 0, 0)
        self.more_rasters = QListWidget(more)
        self.more_rasters.setMaximumHeight(60)
        self.more_rasters.setToolTip(tr("More rasters trained on together with the one above"))
        more_buttons = QVBoxLayout()
        self.add_raster_button = QToolButton(more)
        self.add_raster_button.setText(tr("Add"))
        self.add_raster_button.setToolTip(tr("Add the raster chosen above to the list, then choose another"))
        self.add_raster_button.clicked.connect(self._add_raster)
        self.remove_raster_button = QToolButton(more)
        self.remove_raster_button.setText(tr("Remove"))
        self.remove_raster_button.clicked.connect(self._remove_raster)
        more_buttons.addWidget(self.add_raster_button)
        more_buttons.addWidget(self.remove_raster_button)
        more_row.addWidget(self.more_rasters, 1)
        more_row.addLayout(more_buttons)
        form.addRow(tr("More rasters (optional)"), more)
        self.tile_spin = QSpinBox(self)
        self.tile_spin.setRange(0, 1024)
        self.tile_spin.setSingleStep(16)
        self.tile_spin.setSpecialValueText(tr("model's"))
        self.tile_spin.setSuffix(tr(" px"))
        self.tile_spin.setToolTip(tr("Size of the tiles the tags describe, in pixels (0: the model's "
                                     "tag tile, 64 px for the bundled model): the cells of a new grid, "
                                     "the tiles a labelled feature tags. A grid keeps its own cell size."))
        form.addRow(tr("Tag tile size"), self.tile_spin)
        col.addLayout(form)

        # labels: a grid to tag, or a layer with a class field
        self.labels_grid = WrapRadioButton(tr("Tag cells of a tile grid"), self)
        self.labels_layer = WrapRadioButton(tr("A point, line or polygon layer with a class field"), self)
        self.labels_group = QButtonGroup(self)
        for b in (self.labels_grid, self.labels_layer):
            self.labels_group.addButton(b)
        col.addWidget(self.labels_grid)
        self.labels_grid.setChecked(True)
        self.labels_grid.toggled.connect(self._labels_mode_changed)
        # QgsCollapsibleGroupBox shows every child again when it unfolds, hidden ones included
        self.collapsedStateChanged.connect(self._labels_mode_changed)

        self.grid_box = QWidget(self)
        grid_form = QFormLayout(self.grid_box)
        grid_form.setContentsMargins(12, 0, 0, 0)
        grid_form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.grid_canvas_check = WrapCheckBox(tr("Only the current map canvas extent"), self.grid_box)
        grid_form.addRow(self.grid_canvas_check)
        self.make_grid_button = QPushButton(tr("Make tile grid"), self.grid_box)
        self.make_grid_button.setToolTip(tr("Write a grid of square cells aligned to the raster's "
                                            "pixels (GeoPackage in the output folder) and add it "
                                            "for tagging"))
        self.make_grid_button.clicked.connect(self.make_grid)
        grid_form.addRow(self.make_grid_button)
        self.grid_combo = QgsMapLayerComboBox(self.grid_box)
        self.grid_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.grid_combo.setAllowEmptyLayer(True)
        self.grid_combo.setToolTip(tr("A polygon layer with a 'classes' field (a grid from Make tile grid)"))
        self.grid_combo.layerChanged.connect(self._grid_changed)
        grid_form.addRow(tr("Tile grid"), self.grid_combo)
        tag_row = QHBoxLayout()
        self.tag_button = QToolButton(self.grid_box)
        self.tag_button.setText(tr("Tag cells"))
        self.tag_button.setCheckable(True)
        self.tag_button.setToolTip(tr("Click a cell, or drag over cells, to toggle the current class "
                                      "(Ctrl+drag: a rectangle; Shift: remove). Keys 1..9 choose "
                                      "the class, Ctrl+Z undoes."))
        self.tag_button.toggled.connect(self.set_tagging)
        self.class_combo = QComboBox(self.grid_box)
        self.class_combo.setToolTip(tr("The class a click adds or removes (keys 1..9)"))
        self.class_combo.currentIndexChanged.connect(self._class_chosen)
        self.undo_button = QToolButton(self.grid_box)
        self.undo_button.setText(tr("Undo"))
        self.undo_button.setToolTip(tr("Undo the last tagging (Ctrl+Z)"))
        self.undo_button.clicked.connect(self.undo)
        self.save_tags_button = QToolButton(self.grid_box)
        self.save_tags_button.setText(tr("Save tags"))
        self.save_tags_button.setToolTip(tr("Write the tags into the grid's file (training reads "
                                            "unsaved tags too)"))
        self.save_tags_button.clicked.connect(self.save_tags)
        # two rows: the tool and its class, then Undo and Save tags (one row is too wide for a
        # narrow panel)
        tag_row.addWidget(self.tag_button)
        tag_row.addWidget(self.class_combo, 1)
        grid_form.addRow(tag_row)
        tag_row_2 = QHBoxLayout()
        tag_row_2.addWidget(self.undo_button)
        tag_row_2.addWidget(self.save_tags_button)
        tag_row_2.addStretch(1)
        grid_form.addRow(tag_row_2)
        self.tag_counts_label = QLabel(self.grid_box)
        self.tag_counts_label.setWordWrap(True)
        grid_form.addRow(self.tag_counts_label)
        col.addWidget(self.grid_box)

        col.addWidget(self.labels_layer)
        self.layer_box = QWidget(self)
        layer_form = QFormLayout(self.layer_box)
        layer_form.setContentsMargins(12, 0, 0, 0)
        layer_form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.labels_combo = QgsMapLayerComboBox(self.layer_box)
        self.labels_combo.setFilters(QgsMapLayerProxyModel.PointLayer | QgsMapLayerProxyModel.LineLayer
                                     | QgsMapLayerProxyModel.PolygonLayer)
        self.labels_combo.setAllowEmptyLayer(True)
        self.labels_combo.setLayer(None)
        self.field_combo = QgsFieldComboBox(self.layer_box)
        self.field_combo.setToolTip(tr("The class of each feature: names or integer codes; every "
                                       "tile a feature touches gets its class"))
        self.labels_combo.layerChanged.connect(self.field_combo.setLayer)
        layer_form.addRow(tr("Labels layer"), self.labels_combo)
        layer_form.addRow(tr("Class field"), self.field_combo)
        self.use_scheme_check = WrapCheckBox(tr("Use the class scheme below (else: the distinct field values)"),
                                             self.layer_box)
        self.use_scheme_check.setChecked(True)
        layer_form.addRow(self.use_scheme_check)
        self.classes_from_field_button = QPushButton(tr("Classes from this field"), self.layer_box)
        self.classes_from_field_button.setToolTip(tr("Replace the class scheme by the distinct values of "
                                                     "the class field (integer codes keep their value)"))
        self.classes_from_field_button.clicked.connect(self.classes_from_field)
        layer_form.addRow(self.classes_from_field_button)
        col.addWidget(self.layer_box)

        col.addWidget(QLabel(tr("Classes"), self))
        self.scheme_editor = ClassSchemeEditor(self)
        self.scheme_editor.changed.connect(self._scheme_changed)
        self.scheme_editor.tags_renamed.connect(self.rewrite_grid_tags)
        self.scheme_editor.error.connect(self.dock.show_error)
        col.addWidget(self.scheme_editor)

        opts = QFormLayout()
        opts.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.start_combo = QComboBox(self)
        for value, label in START_FROM:
            self.start_combo.addItem(tr(label), value)
        opts.addRow(tr("Start from"), self.start_combo)
        self.epochs_spin = QSpinBox(self)
        self.epochs_spin.setRange(0, 1000)
        self.epochs_spin.setSpecialValueText(tr("engine's default"))
        opts.addRow(tr("Classifier epochs"), self.epochs_spin)
        self.refine_spin = QSpinBox(self)
        self.refine_spin.setRange(0, 1000)
        self.refine_spin.setSpecialValueText(tr("engine's default"))
        opts.addRow(tr("Map network epochs"), self.refine_spin)
        self.holdout_spin = QDoubleSpinBox(self)
        self.holdout_spin.setRange(0.0, 0.9)
        self.holdout_spin.setSingleStep(0.05)
        self.holdout_spin.setDecimals(2)
        self.holdout_spin.setValue(0.2)
        self.holdout_spin.setToolTip(tr("Share of the tagged tiles kept out of training to score the model"))
        opts.addRow(tr("Held-out share"), self.holdout_spin)
        # device and threads come from the panel's Compute group; this overrides the threads
        self.threads_spin = QSpinBox(self)
        self.threads_spin.setRange(0, 256)
        self.threads_spin.setSpecialValueText(tr("as under Compute"))
        self.threads_spin.setToolTip(tr("CPU threads the engine trains with (0: the panel's Compute "
                                        "setting, which also gives the device); fewer keep QGIS "
                                        "and other programs responsive"))
        opts.addRow(tr("CPU threads"), self.threads_spin)
        self.predict_check = WrapCheckBox(tr("Map the raster(s) when trained"), self)
        self.predict_check.setChecked(True)
        opts.addRow(self.predict_check)
        self.output_dir = QgsFileWidget(self)
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setFilePath(settings.output_dir())
        self.output_dir.setToolTip(tr("Grids are written here; each training run writes into its "
                                      "own new subfolder <raster name>_fit_<date-time>."))
        opts.addRow(tr("Output folder"), self.output_dir)
        col.addLayout(opts)

        self.train_button = QPushButton(tr("Train"), self)
        self.train_button.setObjectName("sparsevit_train")
        self.train_button.setToolTip(tr("Train a model on the tags (sparsevit fit) and map the "
                                        "raster(s) with it; Cancel above stops it"))
        self.train_button.clicked.connect(self.run_fit)
        col.addWidget(self.train_button)
        self.status_label = QLabel(tr("Not trained yet"), self)
        self.status_label.setWordWrap(True)
        col.addWidget(self.status_label)

    # --- form ----------------------------------------------------------------------------
    def _add_raster(self) -> None:
        path = self.raster_input.path()
        if path and path not in self.rasters()[1:]:
            self.more_rasters.addItem(path)

    def _remove_raster(self) -> None:
        for item in self.more_rasters.selectedItems() or [self.more_rasters.item(self.more_rasters.count() - 1)]:
            if item is not None:
                self.more_rasters.takeItem(self.more_rasters.row(item))

    def add_raster(self, path: str) -> None:
        self.more_rasters.addItem(path)

    def rasters(self) -> list[str]:
        out = [self.raster_input.path()] + [self.more_rasters.item(i).text()
                                            for i in range(self.more_rasters.count())]
        return list(dict.fromkeys(p for p in out if p))

    def labels_mode(self) -> str:
        return LABELS_GRID if self.labels_grid.isChecked() else LABELS_LAYER

    def _labels_mode_changed(self, *_):
        grid = self.labels_mode() == LABELS_GRID
        self.grid_box.setVisible(grid)
        self.layer_box.setVisible(not grid)
        if not grid:
            self.tag_button.setChecked(False)

    def output_folder(self) -> Path:
        out = self.output_dir.filePath().strip() or self.dock.output_dir.filePath().strip()
        if not out:
            raise JobError(tr("Choose an output folder for the grid and the trained model."))
        if not Path(out).is_dir() and settings.is_proposed_output_dir(out) and Path(out).parent.is_dir():
            try:  # the panel's proposed output folder, on first use
                Path(out).mkdir(exist_ok=True)
            except OSError as exc:
                raise JobError(str(exc)) from exc
        if not Path(out).is_dir():
            raise JobError(tr("The output folder {0} does not exist.").format(out))
        return Path(out)

    def grid_layer(self) -> QgsVectorLayer | None:
        layer = self.grid_combo.currentLayer()
        return layer if is_grid_layer(layer) else None

    def set_running(self, running: bool) -> None:
        for b in (self.train_button, self.make_grid_button):
            b.setEnabled(not running)

    # --- the grid ------------------------------------------------------------------------
    def plan_grid(self) -> tuple[list[str], Path]:
        rasters = self.rasters()
        if not rasters:
            raise JobError(tr("Choose the raster to make a tile grid for."))
        out = unique_path(self.output_folder() / f"{input_stem(rasters[0])}_tiles.gpkg")
        area = None
        if self.grid_canvas_check.isChecked():
            canvas = self.iface.mapCanvas()
            area = canvas.extent(), canvas.mapSettings().destinationCrs()
        model = self.dock.model_input.model() if self.start_combo.currentData() == "chosen" else ""
        request = GridRequest(rasters=rasters, out=str(out), tile=self.tile_spin.value(), model=model, area=area,
                              band_order=self.band_order(rasters))
        return request.to_args(), Path(request.out_path)

    def make_grid(self):
        try:
            args, path = self.plan_grid()
        except JobError as exc:
            self.dock.show_error(str(exc))
            return None
        self._grid_path = path
        return self.dock.start("grid", args, tr("SparseViT: make a tile grid"), self._grid_done)

    def _grid_done(self, outcome: EngineOutcome) -> None:
        result = outcome.result or {}
        path = (result.get("outputs") or {}).get(roles.ROLE_GRID) or (str(self._grid_path) if self._grid_path else "")
        if not path or not Path(path).is_file():
            self.dock.show_error(tr("The engine finished but wrote no grid; see the log."))
            return
        layer = self.add_grid(path, result.get("tile"))
        if layer is not None:
            self.dock.log.appendPlainText(tr("Tile grid: {0} cells of {1} px in {2}").format(
                result.get("cells", layer.featureCount()), result.get("tile", "?"), path))

    def add_grid(self, path: str, tile=None, project: QgsProject | None = None) -> QgsVectorLayer | None:
        """Add a grid GeoPackage as an editable, tag-styled layer and choose it for tagging."""
        project = project or QgsProject.instance()
        layer = open_grid(path, tr("Tiles — {0}").format(Path(path).stem))
        if not is_grid_layer(layer):
            self.dock.show_error(tr("{0}: not a tile grid (no polygon layer with a 'classes' field).")
                                 .format(path))
            return None
        layer.setCustomProperty(GRID_PROPERTY, True)
        if tile:
            layer.setCustomProperty(TILE_PROPERTY, int(tile))
        self.style(layer)
        project.addMapLayer(layer, False)
        project.layerTreeRoot().insertLayer(0, layer)
        self.grid_combo.setLayer(layer)
        layer.startEditing()
        if self.iface is not None:
            self.iface.setActiveLayer(layer)  # QGIS's Undo (Ctrl+Z) acts on the active layer
        return layer

    def style(self, layer: QgsVectorLayer) -> None:
        try:
            scheme = self.scheme_editor.scheme.validate()
        except SchemeError:
            scheme = self.scheme_editor.scheme.classes
        style_grid(layer, scheme)

    def _grid_changed(self, layer) -> None:
        grid = layer if is_grid_layer(layer) else None
        if grid is not None and not grid.customProperty(GRID_PROPERTY):
            grid.setCustomProperty(GRID_PROPERTY, True)
            self.style(grid)
        if self.tool is not None:
            self.tool.set_layer(grid)
        self._update_counts()

    def grid_layers(self) -> list[QgsVectorLayer]:
        """The grids whose tags follow the scheme: the one chosen and those the plugin added."""
        out = [lyr for lyr in QgsProject.instance().mapLayers().values()
               if is_grid_layer(lyr) and lyr.customProperty(GRID_PROPERTY)]
        chosen = self.grid_layer()
        if chosen is not None and chosen not in out:
            out.append(chosen)
        return out

    # --- tagging -------------------------------------------------------------------------
    def set_tagging(self, on: bool) -> None:
        canvas = self.iface.mapCanvas() if self.iface is not None else None
        if canvas is None:
            return
        if on:
            layer = self.grid_layer()
            if layer is None:
                self.dock.show_error(tr("Make a tile grid first (or choose a layer with a 'classes' field)."))
                self.tag_button.setChecked(False)
                return
            if self.tool is None:
                self.tool = TaggingTool(canvas, layer, self.scheme_editor.names)
                self.tool.class_changed.connect(self._tool_class_changed)
                self.tool.tagged.connect(lambda _n: self._update_counts())
                self.tool.message.connect(self.dock.log.appendPlainText)
                canvas.mapToolSet.connect(self._map_tool_set)
            self.tool.set_layer(layer)
            self.tool.set_current(max(0, self.class_combo.currentIndex()))
            if not layer.isEditable():
                layer.startEditing()
            if self.iface is not None:
                self.iface.setActiveLayer(layer)
            canvas.setMapTool(self.tool)
            canvas.setFocus()
        elif self.tool is not None and canvas.mapTool() is self.tool:
            canvas.unsetMapTool(self.tool)

    def _map_tool_set(self, new, _old=None) -> None:
        if new is not self.tool and self.tag_button.isChecked():
            self.tag_button.blockSignals(True)
            self.tag_button.setChecked(False)
            self.tag_button.blockSignals(False)

    def _tool_class_changed(self, index: int) -> None:
        if self.class_combo.currentIndex() != index:
            self.class_combo.setCurrentIndex(index)

    def _class_chosen(self, index: int) -> None:
        if self.tool is not None and index >= 0:
            self.tool.set_current(index)

    def undo(self) -> None:
        layer = self.grid_layer()
        if layer is not None and layer.undoStack().canUndo():
            layer.undoStack().undo()
            layer.triggerRepaint()
            self._update_counts()

    def save_tags(self) -> bool:
        layer = self.grid_layer()
        if layer is None or not layer.isEditable():
            return True
        try:
            ok = layer.commitChanges(False)
        except TypeError:  # a QGIS without commitChanges(stopEditing)
            ok = layer.commitChanges()
            layer.startEditing()
        if not ok:
            self.dock.show_error(tr("Could not save the tags: {0}").format("; ".join(layer.commitErrors())))
        return ok

    def _update_counts(self) -> None:
        layer = self.grid_layer()
        if layer is None:
            self.tag_counts_label.setText(tr("No tile grid chosen."))
            return
        counts = tag_counts(layer)
        untagged = counts.pop("", 0)
        names = self.scheme_editor.names
        parts = [f"{n} {counts[n]}" for n in names if counts.get(n)]
        parts += [f"{n}? {c}" for n, c in counts.items() if n not in names]
        self.tag_counts_label.setText(tr("Tagged cells: {0}; untagged {1}").format(
            ", ".join(parts) or tr("none"), untagged))

    # --- classes -------------------------------------------------------------------------
    def _scheme_changed(self) -> None:
        names = self.scheme_editor.names
        current = self.class_combo.currentText().split(" ", 1)[-1] if self.class_combo.count() else None
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        for i, c in enumerate(self.scheme_editor.scheme.classes):
            self.class_combo.addItem(color_icon(c.color), f"{i + 1} {c.name}" if i < 9 else c.name, c.name)
        index = names.index(current) if current in names else 0
        self.class_combo.setCurrentIndex(index if names else -1)
        self.class_combo.blockSignals(False)
        if self.tool is not None:
            self.tool.set_classes(names)
            self.tool.set_current(max(0, self.class_combo.currentIndex()))
        for layer in self.grid_layers():
            self.style(layer)
        self._update_counts()

    def rewrite_grid_tags(self, mapping: dict) -> int:
        """Rename/merge/remove tags in the grids (one undo step per grid)."""
        total = 0
        for layer in self.grid_layers():
            try:
                total += rewrite_tags(layer, mapping, self.scheme_editor.names,
                                      description=tr("Class scheme: {0}").format(
                                          ", ".join(f"{k} → {v or '∅'}" for k, v in mapping.items())))
            except RuntimeError as exc:
                self.dock.show_error(str(exc))
        if total:
            self.dock.log.appendPlainText(tr("Rewrote the tags of {0} cell(s)").format(total))
        self._update_counts()
        return total

    def classes_from_field(self) -> None:
        layer, name = self.labels_combo.currentLayer(), self.field_combo.currentField()
        if layer is None or not name:
            self.dock.show_error(tr("Choose the labels layer and its class field first."))
            return
        scheme = EditableScheme.from_values(layer.uniqueValues(layer.fields().indexOf(name)))
        self.scheme_editor.set_scheme(scheme)

    # --- training ------------------------------------------------------------------------
    def fit_request(self, run_dir: Path) -> FitRequest:
        """The request for a run into ``run_dir`` (which must exist): writes the class scheme
        and, where needed, a snapshot of the labels into it (listed in ``self._fit_inputs``)."""
        rasters = self.rasters()
        if not rasters:
            raise JobError(tr("Choose the raster(s) to train on."))
        classes = None
        scheme_names = self.scheme_editor.names
        tile = self.tile_spin.value()
        if self.labels_mode() == LABELS_GRID:
            layer = self.grid_layer()
            if layer is None:
                raise JobError(tr("Make a tile grid and tag some cells, or choose a labels layer."))
            counts = tag_counts(layer)
            counts.pop("", None)
            if not counts:
                raise JobError(tr("No cell is tagged yet: choose Tag cells and click the cells "
                                  "that contain the current class."))
            unknown = sorted(set(counts) - set(scheme_names))
            if unknown:
                raise JobError(tr("Cells are tagged with {0}, which the class scheme lacks: add "
                                  "or rename the class, or untag those cells.").format(", ".join(unknown)))
            field, use_scheme = None, True
            # the engine reads each tagged cell as a window of --tile px: the grid's own cell size
            tile = int(layer.customProperty(TILE_PROPERTY) or 0) or grid_tile_size(layer) or tile
        else:
            layer = self.labels_combo.currentLayer()
            field = self.field_combo.currentField()
            if layer is None:
                raise JobError(tr("Choose the labels layer (points, lines or polygons)."))
            if not field:
                raise JobError(tr("Choose the class field of {0}.").format(layer.name()))
            use_scheme = self.use_scheme_check.isChecked()
        if use_scheme:
            try:
                classes = str(self.scheme_editor.write_json(str(run_dir / SCHEME_FILE)))
            except SchemeError as exc:
                raise JobError(str(exc)) from exc
            self._fit_inputs.append(Path(classes))
        labels, layer_name, snapshot = labels_for_engine(layer, run_dir, field)
        if snapshot:
            self._fit_inputs.append(Path(labels))
        start = self.start_combo.currentData()
        compute = self.dock.compute_options()
        return FitRequest(
            rasters=rasters, labels=labels, out=str(run_dir), layer=layer_name, field=field,
            classes=classes, tile=tile,
            base=self.dock.model_input.model() if start == "chosen" else "",
            from_scratch=start == "scratch", epochs=self.epochs_spin.value(),
            refine_epochs=self.refine_spin.value(), holdout=self.holdout_spin.value(),
            predict=self.predict_check.isChecked(),
            threads=self.threads_spin.value() or compute["threads"], device=compute["device"],
            band_order=self.band_order(rasters))

    def band_order(self, rasters: list[str]) -> str | None:
        """The panel's band mapping (Input) when training on that one file: its table lists
        that file's bands only, so other rasters get none."""
        return self.dock.band_order_for(rasters[0]) if len(rasters) == 1 else None

    def plan_fit(self, when: _dt.datetime | None = None) -> tuple[list[str], Path]:
        """The engine arguments and the run folder (created, holding the run's inputs)."""
        rasters = self.rasters()
        if not rasters:
            raise JobError(tr("Choose the raster(s) to train on."))
        run_dir = run_folder(self.output_folder(), f"{input_stem(rasters[0])}_fit", when)
        run_dir.mkdir(parents=False)
        self._fit_inputs = []
        try:
            args = self.fit_request(run_dir).to_args()
        except Exception:
            self._discard(run_dir)
            raise
        return args, run_dir

    def run_fit(self):
        if self.dock.running:
            self.dock.show_error(tr("A SparseViT run is already going; cancel it first."))
            return None
        when = _dt.datetime.now()
        try:
            args, run_dir = self.plan_fit(when)
        except (JobError, OSError) as exc:
            self.dock.show_error(str(exc))
            return None
        settings.set_output_dir(str(run_dir.parent))
        self._fit_dir, self._fit_started = run_dir, when
        self._fit_rasters = self.rasters()
        self._fit_label = input_stem(self._fit_rasters[0])
        self.dock.log.appendPlainText(tr("Training run folder: {0}").format(run_dir))
        task = self.dock.start("fit", args, tr("SparseViT: train on my labels"), self._fit_done,
                               on_failed=self._fit_failed)
        if task is None:
            self._discard(run_dir)
            self._fit_dir = None
            return None
        self.status_label.setText(tr("Starting the engine…"))
        task.engine_event.connect(self._fit_event)
        return task

    def _fit_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "stage_start":
            self._stage_t0 = time.monotonic()
            self.status_label.setText(stage_title(str(event.get("stage") or "")))
        elif kind == "progress":
            stage = stage_title(str(event.get("stage") or ""))
            fraction = event.get("fraction")
            eta = ""
            if isinstance(fraction, (int, float)) and self._stage_t0 is not None:
                eta = eta_text(time.monotonic() - self._stage_t0, float(fraction))
            done, total = event.get("done"), event.get("total")
            text = f"{stage} ({done}/{total})" if total else stage
            self.status_label.setText(f"{text}, {eta}" if eta else text)

    def _discard(self, run_dir: Path) -> None:
        """After a failed or cancelled run: the inputs the panel wrote and the engine's hidden
        scratch (work and staging folders, kept by the engine for ``--resume``) go; the folder
        goes when nothing else is in it."""
        for path in self._fit_inputs + [run_dir / f"{LABELS_SNAPSHOT}-wal", run_dir / f"{LABELS_SNAPSHOT}-shm"]:
            try:
                path.unlink()
            except OSError:
                pass
        self._fit_inputs = []
        if run_dir.is_dir():
            for entry in run_dir.iterdir():
                if entry.name.startswith(".") and entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
        discard_run_folder(run_dir)

    def _fit_failed(self, outcome: EngineOutcome) -> None:
        self.status_label.setText(tr("Cancelled") if outcome.cancelled else tr("Training failed"))
        if self._fit_dir is not None:
            self._discard(self._fit_dir)
            if self._fit_dir.exists():
                from ..core.predict_job import leftover_files
                self.dock.log.appendPlainText(tr("Kept the run folder {0}: it holds {1}").format(
                    self._fit_dir, ", ".join(leftover_files(self._fit_dir)[:5])))
            else:
                self.dock.log.appendPlainText(tr("Removed the run folder {0}").format(self._fit_dir))
        self._fit_dir = None

    def _fit_done(self, outcome: EngineOutcome) -> None:
        result = outcome.result or {}
        outputs = result.get("outputs") or {}
        model = outputs.get(roles.ROLE_MODEL)
        tiles = result.get("tiles") or {}
        self.status_label.setText(tr("Trained in {0:.0f} s").format(outcome.elapsed))
        if model and Path(str(model)).is_dir():
            folder = self.dock.model_input.add_trained(str(model))
            settings.set_model_path(folder)
            self.dock.log.appendPlainText(tr("Trained model: {0} (now chosen under Model)").format(folder))
        elif model:
            self.dock.log.appendPlainText(tr("The engine named the model {0}, which is not a folder").format(model))
        if tiles:
            self.dock.log.appendPlainText(tr("Tiles: {0} tagged, {1} trained on, {2} held out").format(
                tiles.get("tagged", "?"), tiles.get("train", "?"), tiles.get("holdout", "?")))
        metrics = result.get("metrics")
        if metrics:
            self.dock.log.appendPlainText(tr("Scores: {0}").format(json.dumps(metrics, default=str)))
        if has_map_outputs(result):
            self.dock.show_map_result(outcome, tr("{0} (trained)").format(self._fit_label or "run"),
                                      self._fit_started)
        # the outputs name the first raster's map; "maps" holds one per raster
        for i, outs in enumerate((result.get("maps") or [])[1:], start=1):
            if not isinstance(outs, dict):
                continue
            stem = input_stem(self._fit_rasters[i]) if i < len(self._fit_rasters) else f"raster {i + 1}"
            add_predict_results({"outputs": outs, "scheme": result.get("scheme")}, tr("{0} (trained)").format(stem),
                                when=self._fit_started, log=self.dock.log.appendPlainText)
        self._fit_dir = None
        self._fit_inputs = []

    def shutdown(self) -> None:
        if self.tool is not None:
            canvas = self.tool.canvas()
            try:
                if canvas is not None and canvas.mapTool() is self.tool:
                    canvas.unsetMapTool(self.tool)
            except RuntimeError:
                pass
            self.tool = None

