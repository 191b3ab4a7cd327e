"""The SparseViT panel: inputs, model, training on your own tags (gui/train_section.py), area,
options, where the engine computes (device, CPU threads, precision, batch size; saved in the
settings), run/cancel with progress, device and engine log; then the results of the last run
(view toggles, opacity, basemap, a summary line with what the user must know) and their export.

The device label says where the next run computes before any run: the engine interpreter is
asked once in the background (core/compute.py) when the panel opens or the interpreter changes;
after a run's ``start`` event it shows what the engine reported.

Built in code (no .ui file to compile). Engine work runs in an :class:`EngineTask`; this widget
only reads the form on the main thread, turns it into engine arguments and shows events.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsMapLayerProxyModel,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsTask,
)
from qgis.gui import (
    QgsCollapsibleGroupBox,
    QgsDockWidget,
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsProjectionSelectionWidget,
)
from qgis.PyQt.QtCore import QEvent, QSize, Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import compute, settings
from ..core.band_mapping import BandMappingError, band_order_args
from ..core.engine_locator import clear_cache, engine_environment, locate_engine
from ..core.engine_runner import EngineOutcome
from ..core.engine_task import EngineTask
from ..core.fit_job import eta_text
from ..core.imagery import basemap_problem
from ..core.predict_job import (
    DEVICES,
    LEVELS,
    PRECISIONS,
    JobError,
    PredictRequest,
    crs_arg,
    discard_run_folder,
    input_stem,
    leftover_files,
    result_is_complete,
    run_folder,
)
from ..core.reclassify import shown_classes, write_json
from ..core.results import (
    VIEW_BASEMAP,
    VIEW_COARSE,
    VIEW_IMAGERY,
    VIEW_LANDCOVER,
    VIEW_PSEUDOMASK,
    RunLayers,
    add_export_result,
    add_predict_results,
    class_area_line,
    ensure_basemap,
    find_basemap,
    result_warnings,
    set_view,
    summary_line,
    sync_legends,
)
from ..core.schemes import SchemeError
from ..core.styling import palette_classes, set_group_opacity
from .band_mapping import BandMappingEditor
from .inputs import ModelInput, RasterInput, tr
from .narrow import (
    COMBO_CHARS_BESIDE_BUTTONS,
    FlowLayout,
    WrapCheckBox,
    WrapLabel,
    WrapRadioButton,
    breakable,
    narrow_combos,
)
from .train_section import TrainSection

AREA_WHOLE, AREA_CANVAS, AREA_POLYGON = "whole", "canvas", "polygon"
# (engine --format, label, extension)
EXPORT_FORMATS = (
    ("cog", "Land cover as GeoTIFF (COG)", ".tif"),
    ("gpkg", "Land-cover polygons (GeoPackage)", ".gpkg"),
    ("csv", "Class areas table (CSV)", ".csv"),
    ("json", "Class areas (JSON)", ".json"),
)
HA_PER_PIXEL_AT_10M = 0.01  # a 10 m x 10 m Sentinel-2 pixel is 100 m2


class PanelScroll(QScrollArea):
    """The panel's scroll area: up and down only. The content wraps to the dock's width (long
    labels, rows of buttons; see gui/narrow.py), and the dock cannot be made narrower than the
    narrowest the content can be, so nothing is ever cut off at the right edge."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QScrollArea.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        body = self.widget()
        if body is None:
            return hint
        need = (body.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
                + 2 * self.frameWidth())
        return QSize(max(hint.width(), need), hint.height())

    def eventFilter(self, watched, event) -> bool:
        if watched is self.widget() and event.type() == QEvent.LayoutRequest:
            self.updateGeometry()  # a section unfolded: the narrowest width may have changed
        return super().eventFilter(watched, event)


class SparseVitDock(QgsDockWidget):
    def __init__(self, iface, parent=None):
        super().__init__(tr("SparseViT"), parent)
        self.setObjectName("SparseVitDock")
        self.iface = iface
        self._task: EngineTask | None = None
        self._run_dir: Path | None = None
        self._run_label = ""
        self._run_scene: str | None = None
        self._run_started: _dt.datetime | None = None
        self._proposed_out: str | None = None  # the output folder offered, while none was chosen
        self.last_run: RunLayers | None = None
        self._stage_t0: float | None = None
        self._probe: compute.DeviceProbe | None = None
        self._probe_task: compute.DeviceProbeTask | None = None
        self._device_from_run = False  # the label shows what a run's start event said
        self._edits_dir: Path | None = None  # the --classes / --reclass files handed to the engine
        self._build()
        self._set_running(False)
        self.refresh_engine_label()
        # a project opened or saved later moves the offered output folder along (QGIS 3.22
        # emits homePathChanged on opening and clearing, only projectSaved on a first save)
        for signal in self._project_signals():
            signal.connect(self._propose_output_dir)

    # --- layout ------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget(self)
        outer = QVBoxLayout(body)

        engine_row = QHBoxLayout()
        self.engine_label = QLabel(tr("Engine: not checked yet"), body)
        self.engine_label.setWordWrap(True)
        self.engine_button = QPushButton(tr("Engine…"), body)
        self.engine_button.setToolTip(tr("Choose the Python interpreter of the SparseViT engine"))
        self.engine_button.clicked.connect(self.choose_engine)
        self.install_engine_button = QPushButton(tr("Install engine…"), body)
        self.install_engine_button.setToolTip(tr("Install, repair or remove the engine's own Python "
                                                 "environment (from the internet or a local wheel folder)"))
        self.install_engine_button.clicked.connect(self.open_engine_installer)
        # the buttons under the label, not beside it: a narrow panel must still show them
        outer.addWidget(self.engine_label)
        engine_row.addWidget(self.install_engine_button)
        engine_row.addWidget(self.engine_button)
        engine_row.addStretch(1)
        outer.addLayout(engine_row)

        inputs = QgsCollapsibleGroupBox(tr("Input"), body)
        form = QFormLayout(inputs)
        form.setRowWrapPolicy(QFormLayout.WrapAllRows)  # a narrow dock keeps full-width pickers
        self.s2_input = RasterInput(optional=False, parent=inputs)
        self.s1_input = RasterInput(optional=True, parent=inputs)
        form.addRow(tr("Sentinel-2"), self.s2_input)
        form.addRow(tr("Sentinel-1 (optional)"), self.s1_input)
        # which file band is which S2 band: filled by Inspect, edits become --band-order
        self.band_mapping = BandMappingEditor(inputs)
        form.addRow(tr("Band mapping"), self.band_mapping)
        self.s2_input.layer_combo.layerChanged.connect(self._s2_changed)
        self.s2_input.file_widget.fileChanged.connect(self._s2_changed)
        self._s2_changed()
        outer.addWidget(inputs)

        model_box = QgsCollapsibleGroupBox(tr("Model"), body)
        model_col = QVBoxLayout(model_box)
        self.model_input = ModelInput(model_box)
        model_col.addWidget(self.model_input)
        outer.addWidget(model_box)

        # tag tiles, train on the tags, map (gui/train_section.py); uses start() below
        self.train_section = TrainSection(self, body)
        self.train_section.setCollapsed(True)
        outer.addWidget(self.train_section)

        area_box = QgsCollapsibleGroupBox(tr("Area"), body)
        area_col = QVBoxLayout(area_box)
        self.area_whole = WrapRadioButton(tr("Whole raster"), area_box)
        self.area_canvas = WrapRadioButton(tr("Current map canvas extent"), area_box)
        self.area_polygon = WrapRadioButton(tr("Bounding box of the selected polygon(s)"), area_box)
        bbox_tip = tr("The engine maps rectangles only: it has no polygon clip, so the bounding "
                      "box of the selected features is mapped, including what lies outside them.")
        self.area_polygon.setToolTip(bbox_tip)
        self.area_group = QButtonGroup(area_box)
        for b in (self.area_whole, self.area_canvas, self.area_polygon):
            self.area_group.addButton(b)
            area_col.addWidget(b)
        self.polygon_combo = QgsMapLayerComboBox(area_box)
        self.polygon_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        self.polygon_combo.setToolTip(bbox_tip)
        area_col.addWidget(self.polygon_combo)
        self.area_whole.setChecked(True)
        self.area_polygon.toggled.connect(self.polygon_combo.setEnabled)
        self.polygon_combo.setEnabled(False)
        outer.addWidget(area_box)

        opt_box = QgsCollapsibleGroupBox(tr("Options and output"), body)
        opt_form = QFormLayout(opt_box)
        opt_form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.tile_spin = QSpinBox(opt_box)
        self.tile_spin.setRange(0, 4096)
        self.tile_spin.setSingleStep(64)
        self.tile_spin.setSpecialValueText(tr("model's"))
        self.tile_spin.setSuffix(tr(" px"))
        self.tile_spin.setToolTip(tr("Tile size in pixels; larger tiles are faster but need more memory"))
        opt_form.addRow(tr("Tile size"), self.tile_spin)
        self.level_combo = QComboBox(opt_box)
        for value, label in LEVELS:
            self.level_combo.addItem(tr(label), value)
        self.level_combo.setToolTip(tr(
            "Detailed: the model's own classes. Coarse: those merged into Water, Built-up, "
            "Cropland, Grassland and Forest, a map that is easier to read. Both: the coarse map "
            "on top of the detailed one (the detailed map alone for a model without a coarse "
            "level)."))
        opt_form.addRow(tr("Land-cover level"), self.level_combo)
        self.attention_check = WrapCheckBox(tr("Per-head attention maps"), opt_box)
        self.polygons_check = WrapCheckBox(tr("Land-cover polygons (GeoPackage)"), opt_box)
        self.overview_check = WrapCheckBox(tr("PNG overview"), opt_box)
        self.overview_check.setChecked(True)
        self.clouds_check = WrapCheckBox(tr("Mask clouds"), opt_box)
        self.clouds_check.setChecked(True)
        self.clouds_check.setToolTip(tr(
            "Cloudy pixels have no land cover: they become no data in the maps and stay out of "
            "the class areas. The mask comes from the product (L2A scene classification, L1C "
            "MSK_CLASSI, a cloud_mask file beside the bands), else from a brightness flag that "
            "finds thick clouds only. The run's log says how much was masked."))
        for c in (self.attention_check, self.polygons_check, self.overview_check, self.clouds_check):
            opt_form.addRow(c)
        self.output_dir = QgsFileWidget(opt_box)
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setToolTip(tr("Each run writes into its own new subfolder "
                                      "<input name>_<date-time> of this folder. Until you "
                                      "choose one: the project's folder/sparsevit_runs, or "
                                      "~/SparseViT runs for an unsaved project (created by "
                                      "the first run)."))
        self._propose_output_dir()
        opt_form.addRow(tr("Output folder"), self.output_dir)
        outer.addWidget(opt_box)
        outer.addWidget(self._build_compute(body))

        buttons = QHBoxLayout()
        self.inspect_button = QPushButton(tr("Inspect"), body)
        self.inspect_button.setToolTip(tr("Show the band mapping the engine finds in the Sentinel-2 input "
                                          "(in the Input section, where it can be corrected)"))
        self.run_button = QPushButton(tr("Run"), body)
        self.run_button.setObjectName("sparsevit_run")
        self.cancel_button = QPushButton(tr("Cancel"), body)
        self.cancel_button.setToolTip(tr("Stop the engine now; nothing half-written is kept"))
        self.inspect_button.clicked.connect(self.inspect)
        self.run_button.clicked.connect(self.run_predict)
        self.cancel_button.clicked.connect(self.cancel)
        for b in (self.inspect_button, self.run_button, self.cancel_button):
            buttons.addWidget(b)
        outer.addLayout(buttons)

        self.stage_label = QLabel(tr("Idle"), body)
        self.stage_label.setWordWrap(True)  # "Done in 5.3 s — ⚠ <a warning>"
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.device_label = QLabel(tr("Device: unknown until the engine runs"), body)
        self.device_label.setWordWrap(True)
        status_row = QHBoxLayout()
        status_row.addWidget(self.stage_label, 1)
        status_row.addWidget(self.device_label)
        outer.addLayout(status_row)
        outer.addWidget(self.progress)
        # the last error next to the Run button: in a panel squeezed under the Processing
        # toolbox the log at the bottom is out of sight, and the message bar shows one line
        self.error_label = WrapLabel(parent=body)  # may break the paths in a message
        self.error_label.setObjectName("sparsevit_error")
        self.error_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.error_label.setStyleSheet("color: #b00020;")
        self.error_label.hide()
        outer.addWidget(self.error_label)

        outer.addWidget(self._build_results(body))
        self.export_box = self._build_export(body)
        outer.addWidget(self.export_box)

        self.log = QPlainTextEdit(body)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)  # a long training run must not grow without bound
        self.log.setMinimumHeight(90)
        self.log.setPlaceholderText(tr("Engine messages appear here."))
        outer.addWidget(self.log, 1)

        # no combo box is as wide as its longest item (a layer name, a preset); those that
        # share a row with buttons are narrower still
        narrow_combos(body)
        for combo in (self.basemap_combo, self.train_section.class_combo):
            narrow_combos(combo, COMBO_CHARS_BESIDE_BUTTONS)
        self.scroll = scroll = PanelScroll(self)  # the panel stays usable on a small screen
        scroll.setWidget(body)
        self.setWidget(scroll)

    def _build_compute(self, parent) -> QgsCollapsibleGroupBox:
        """Device, CPU threads, precision, batch size: saved in the settings on every change;
        "auto" leaves the choice to the engine (no argument)."""
        box = QgsCollapsibleGroupBox(tr("Compute (CPU / GPU)"), parent)
        box.setObjectName("sparsevit_compute")
        form = QFormLayout(box)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.device_combo = QComboBox(box)
        for value, label in DEVICES:
            self.device_combo.addItem(tr(label), value)
        self.device_combo.setToolTip(tr("Where the engine runs the model. Auto: the GPU when the "
                                        "engine's PyTorch finds one (a CUDA build), else the CPU. "
                                        "Training uses the same choice."))
        self._select_device(settings.compute_device())
        self.device_combo.currentIndexChanged.connect(self._compute_changed)
        form.addRow(tr("Device"), self.device_combo)
        self.threads_spin = QSpinBox(box)
        self.threads_spin.setRange(0, max(os.cpu_count() or 1, settings.compute_threads(), 1))
        self.threads_spin.setSpecialValueText(tr("auto (engine's default)"))
        self.threads_spin.setToolTip(tr("CPU threads of the engine's PyTorch (also for training); "
                                        "fewer keep QGIS and other programs responsive"))
        self.threads_spin.setValue(settings.compute_threads())
        self.threads_spin.valueChanged.connect(self._compute_changed)
        form.addRow(tr("CPU threads"), self.threads_spin)
        self.precision_combo = QComboBox(box)
        for value, label in PRECISIONS:
            self.precision_combo.addItem(tr(label), value)
        self.precision_combo.setToolTip(tr("bf16 autocast is ~1.8x faster on GPUs and on CPUs "
                                           "with AMX/AVX512-BF16, with slightly different maps"))
        index = self.precision_combo.findData(settings.compute_precision())
        self.precision_combo.setCurrentIndex(max(index, 0))
        self.precision_combo.currentIndexChanged.connect(self._compute_changed)
        form.addRow(tr("Precision"), self.precision_combo)
        self.batch_spin = QSpinBox(box)
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setToolTip(tr("Tiles the model reads at once: larger is faster on a GPU "
                                      "but needs more memory"))
        self.batch_spin.setValue(settings.compute_batch_size())
        self.batch_spin.valueChanged.connect(self._compute_changed)
        form.addRow(tr("Batch size"), self.batch_spin)
        box.setCollapsed(True)  # the defaults suit most runs; the device label shows the outcome
        return box

    def _select_device(self, device: str) -> None:
        index = self.device_combo.findData(device)
        if index < 0:  # a saved cuda:N before the engine was asked: keep the choice
            self.device_combo.addItem(device, device)
            index = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(index)

    def compute_options(self) -> dict:
        """The Compute group as :class:`PredictRequest` fields (``device``, ``threads``,
        ``precision``, ``batch_size``)."""
        return {"device": self.device_combo.currentData() or "auto",
                "threads": self.threads_spin.value(),
                "precision": self.precision_combo.currentData() or "auto",
                "batch_size": self.batch_spin.value()}

    def _compute_changed(self, *_) -> None:
        options = self.compute_options()
        settings.set_compute_device(options["device"])
        settings.set_compute_threads(options["threads"])
        settings.set_compute_precision(options["precision"])
        settings.set_compute_batch_size(options["batch_size"])
        self._device_from_run = False  # the next run's device, not the last one's
        self._show_planned_device()

    def _build_results(self, parent) -> QgsCollapsibleGroupBox:
        box = QgsCollapsibleGroupBox(tr("Results of the last run"), parent)
        col = QVBoxLayout(box)
        self.summary_label = WrapLabel(tr("No run yet"), box)  # may break a long scene name
        self.summary_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        col.addWidget(self.summary_label)
        # the view toggles wrap onto a second row in a narrow panel; the basemap row below
        row = FlowLayout()
        self.view_group = QButtonGroup(box)
        self.view_group.setExclusive(True)
        self.view_buttons = {}
        for view, label, tip in (
                (VIEW_COARSE, tr("Coarse"), tr("Show the coarse land-cover map (5 classes)")),
                (VIEW_LANDCOVER, tr("Detailed"), tr("Show the detailed land-cover map (the "
                                                    "model's classes)")),
                (VIEW_PSEUDOMASK, tr("Pseudomask"), tr("Show the attention pseudomask")),
                (VIEW_IMAGERY, tr("Imagery"), tr("Hide the results, show the run's Sentinel-2 "
                                                 "input in true colour")),
                (VIEW_BASEMAP, tr("Basemap"), tr("Hide the results, show the basemap"))):
            b = QToolButton(box)
            b.setText(label)
            b.setToolTip(tip)
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            b.clicked.connect(lambda _c=False, v=view: self.set_view(v))
            self.view_group.addButton(b)
            self.view_buttons[view] = b
            row.addWidget(b)
        self.view_buttons[VIEW_LANDCOVER].setChecked(True)
        self.swipe_button = QToolButton(box)
        self.swipe_button.setText(tr("Swipe"))
        self.swipe_button.setCheckable(True)
        self.swipe_button.setToolTip(tr("Swipe compare on the map: left of the cursor the imagery "
                                        "(true colour, basemap), right of it the results"))
        self.swipe_button.toggled.connect(self.set_swipe)
        row.addWidget(self.swipe_button)
        col.addLayout(row)
        row = QHBoxLayout()
        self.basemap_combo = QComboBox(box)
        self.basemap_combo.setToolTip(tr("The basemap under the results: a preset, or Custom… for "
                                         "an XYZ tile URL, an MBTiles file or a local XYZ folder "
                                         "(offline). Saved in the settings."))
        self._fill_basemap_combo()
        self.basemap_combo.activated.connect(self._basemap_chosen)
        row.addWidget(self.basemap_combo, 1)
        self.basemap_button = QPushButton(tr("Add basemap"), box)
        self.basemap_button.setToolTip(tr("Add the chosen basemap at the bottom of the layer list"))
        self.basemap_button.clicked.connect(self.add_basemap)
        row.addWidget(self.basemap_button)
        col.addLayout(row)
        op_row = QHBoxLayout()
        op_row.addWidget(QLabel(tr("Opacity"), box))
        self.opacity_slider = QSlider(Qt.Horizontal, box)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(round(100 * settings.result_opacity())))
        self.opacity_slider.valueChanged.connect(self.set_opacity)
        self.opacity_value = QLabel(f"{self.opacity_slider.value()} %", box)
        op_row.addWidget(self.opacity_slider, 1)
        op_row.addWidget(self.opacity_value)
        col.addLayout(op_row)
        return box

    def _build_export(self, parent) -> QgsCollapsibleGroupBox:
        box = QgsCollapsibleGroupBox(tr("Export"), parent)
        form = QFormLayout(box)
        form.setRowWrapPolicy(QFormLayout.WrapLongRows)
        self.export_layer = QgsMapLayerComboBox(box)
        self.export_layer.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.export_layer.setToolTip(tr("A classified land-cover raster (a SparseViT result)"))
        form.addRow(tr("Land cover"), self.export_layer)
        self.export_format = QComboBox(box)
        for fmt, label, _ext in EXPORT_FORMATS:
            self.export_format.addItem(tr(label), fmt)
        self.export_format.currentIndexChanged.connect(self._export_format_changed)
        form.addRow(tr("As"), self.export_format)
        self.export_crs = QgsProjectionSelectionWidget(box)
        self.export_crs.setOptionVisible(QgsProjectionSelectionWidget.CrsNotSet, True)
        self.export_crs.setNotSetText(tr("same as the raster"))
        self.export_crs.setCrs(QgsCoordinateReferenceSystem())
        form.addRow(tr("CRS"), self.export_crs)
        # polygons only (engine --min-area-pixels / --simplify); shown for the gpkg format
        self.export_min_area = QgsDoubleSpinBox(box)
        self.export_min_area.setDecimals(0)
        self.export_min_area.setRange(0, 1e9)
        self.export_min_area.setClearValue(0)
        self.export_min_area.setSuffix(tr(" px"))
        self.export_min_area.setSpecialValueText(tr("0 (keep every patch)"))
        self.export_min_area.setToolTip(tr(
            "Patches smaller than this many pixels of the raster are merged into their largest "
            "neighbour before the polygons are made (drops salt-and-pepper noise). "
            "At 10 m pixels 1 px = {0:g} ha: 25 px = 0.25 ha, 100 px = 1 ha. "
            "0 keeps every patch.").format(HA_PER_PIXEL_AT_10M))
        self.export_min_area.setValue(settings.export_min_area_pixels())
        # QgsDoubleSpinBox's own minimum width (108 px) is less than its text needs: the row
        # squeezed it to "ery patch)" instead of putting the label above it
        self.export_min_area.setMinimumWidth(0)
        self.export_min_area_ha = QLabel(box)
        self.export_min_area_ha.setWordWrap(True)
        self.export_min_area.valueChanged.connect(self._export_options_changed)
        min_area_row = QWidget(box)
        row = QHBoxLayout(min_area_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.export_min_area, 1)
        row.addWidget(self.export_min_area_ha)
        self.export_min_area_row = min_area_row
        self.export_min_area_label = QLabel(tr("Minimum area"), box)
        form.addRow(self.export_min_area_label, min_area_row)
        self.export_simplify = QgsDoubleSpinBox(box)
        self.export_simplify.setDecimals(2)
        self.export_simplify.setRange(0, 1000)
        self.export_simplify.setSingleStep(0.5)
        self.export_simplify.setClearValue(0)
        self.export_simplify.setSuffix(tr(" px"))
        self.export_simplify.setSpecialValueText(tr("0 (exact outlines)"))
        self.export_simplify.setToolTip(tr(
            "Smooths the staircase pixel outlines (Douglas-Peucker, tolerance in pixels of the "
            "raster). Each polygon is simplified on its own: neighbours may then overlap or "
            "leave small gaps. 0 keeps the exact pixel outlines."))
        self.export_simplify.setValue(settings.export_simplify())
        self.export_simplify.setMinimumWidth(0)
        self.export_simplify.valueChanged.connect(self._export_options_changed)
        self.export_simplify_label = QLabel(tr("Simplify"), box)
        form.addRow(self.export_simplify_label, self.export_simplify)
        self._show_min_area_ha()
        self.export_file = QgsFileWidget(box)
        self.export_file.setStorageMode(QgsFileWidget.SaveFile)
        form.addRow(tr("File"), self.export_file)
        self.export_button = QPushButton(tr("Export"), box)
        self.export_button.setToolTip(tr("Exports the classes as the layer shows them: names "
                                         "and colours edited in its Symbology are kept"))
        self.export_button.clicked.connect(self.run_export)
        self.reclassify_button = QPushButton(tr("Reclassify…"), box)
        self.reclassify_button.setToolTip(tr("Merge or rename the layer's classes (e.g. River + "
                                             "Sea / lake -> Water) into a new GeoTIFF added to the map"))
        self.reclassify_button.clicked.connect(self.open_reclassify)
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_button, 1)
        buttons.addWidget(self.reclassify_button)
        form.addRow(buttons)
        self._export_format_changed()
        box.setCollapsed(True)  # needed after a run, not before: keeps the panel short
        return box

    def _export_format_changed(self, *_):
        fmt, label, ext = EXPORT_FORMATS[max(0, self.export_format.currentIndex())]
        self.export_file.setFilter(f"{label} (*{ext})")
        self.export_crs.setEnabled(fmt in ("cog", "gpkg"))  # areas are ground areas in any CRS
        for widget in (self.export_min_area_label, self.export_min_area_row,
                       self.export_simplify_label, self.export_simplify):
            widget.setVisible(fmt == "gpkg")  # the engine takes them for polygons only
        current = self.export_file.filePath().strip()
        if current:
            self.export_file.setFilePath(str(Path(current).with_suffix(ext)))

    def _show_min_area_ha(self) -> None:
        ha = self.export_min_area.value() * HA_PER_PIXEL_AT_10M
        self.export_min_area_ha.setText(tr("= {0:g} ha at 10 m").format(round(ha, 4)))

    def _export_options_changed(self, *_) -> None:
        self._show_min_area_ha()
        settings.set_export_min_area_pixels(int(round(self.export_min_area.value())))
        settings.set_export_simplify(self.export_simplify.value())

    def export_polygon_args(self) -> list[str]:
        """``--min-area-pixels`` / ``--simplify`` for a GeoPackage export, each only when > 0."""
        args = []
        min_area = int(round(self.export_min_area.value()))
        if min_area > 0:
            args += ["--min-area-pixels", str(min_area)]
        simplify = round(self.export_simplify.value(), self.export_simplify.decimals())
        if simplify > 0:
            args += ["--simplify", f"{simplify:g}"]
        return args

    # --- form -> engine arguments -------------------------------------------------------
    def area_mode(self) -> str:
        if self.area_canvas.isChecked():
            return AREA_CANVAS
        if self.area_polygon.isChecked():
            return AREA_POLYGON
        return AREA_WHOLE

    def area(self) -> tuple[QgsRectangle, QgsCoordinateReferenceSystem | None] | None:
        """The chosen area as ``(rectangle, CRS)``, None for the whole raster."""
        mode = self.area_mode()
        if mode == AREA_CANVAS:
            canvas = self.iface.mapCanvas()
            return canvas.extent(), canvas.mapSettings().destinationCrs()
        if mode == AREA_POLYGON:
            layer = self.polygon_combo.currentLayer()
            if layer is None or layer.selectedFeatureCount() == 0:
                raise JobError(tr("Select at least one polygon in the chosen layer, or pick another area."))
            return layer.boundingBoxOfSelected(), layer.crs()
        return None

    @staticmethod
    def _project_signals():
        project = QgsProject.instance()
        return (project.homePathChanged, project.fileNameChanged, project.projectSaved)

    def _propose_output_dir(self, *_args) -> None:
        """The output folder field on first use: the user's last choice, else the proposed
        folder (settings.proposed_output_dir), which follows the project while the field
        still shows it."""
        chosen = settings.output_dir()
        current = self.output_dir.filePath().strip()
        if chosen and not current:
            self.output_dir.setFilePath(chosen)
            return
        if chosen or (current and current != self._proposed_out):
            return  # the user's choice stands
        self._proposed_out = settings.proposed_output_dir()
        self.output_dir.setFilePath(self._proposed_out)

    def plan_predict(self, when: _dt.datetime | None = None) -> tuple[list[str], Path]:
        """The engine arguments and the fresh run folder they write to (not created yet)."""
        s2 = self.s2_input.path()
        if not s2:
            raise JobError(tr("Choose a Sentinel-2 raster (layer, file or folder)."))
        out_dir = self.output_dir.filePath().strip()
        if not out_dir:
            raise JobError(tr("Choose an output folder."))
        if not Path(out_dir).is_dir() and not (settings.is_proposed_output_dir(out_dir)
                                               and Path(out_dir).parent.is_dir()):
            raise JobError(tr("The output folder {0} does not exist.").format(out_dir))
        run_dir = run_folder(out_dir, input_stem(s2), when)
        request = PredictRequest(
            s2=s2, out=str(run_dir), model=self.model_input.model(), s1=self.s1_input.path() or None,
            area=self.area(), tile=self.tile_spin.value(), level=self.level_combo.currentData(),
            attention=self.attention_check.isChecked(), polygons=self.polygons_check.isChecked(),
            overview=self.overview_check.isChecked(), band_order=self.band_order_for(s2),
            cloud_mask=self.clouds_check.isChecked(),
            **self.compute_options())
        return request.to_args(), run_dir

    def _s2_changed(self, *_) -> None:
        self.band_mapping.set_input(self.s2_input.path())

    def band_order_for(self, path: str) -> str | None:
        """The band-mapping override for ``path`` as a ``--band-order`` value (None: the engine
        names the bands); JobError when the mapping in the table cannot be used."""
        try:
            return self.band_mapping.band_order_for(path)
        except BandMappingError as exc:
            raise JobError(tr("The band mapping (Input) cannot be used: {0}").format(exc)) from exc

    def build_predict_args(self) -> list[str]:
        return self.plan_predict()[0]

    # --- actions -----------------------------------------------------------------------
    def choose_engine(self) -> None:
        start = settings.python_path() or ""
        path, _ = QFileDialog.getOpenFileName(self, tr("Python interpreter of the SparseViT engine"), start)
        if path:
            settings.set_python_path(path)
            clear_cache()
            compute.clear_probe_cache()
            self.refresh_engine_label()
            self.probe_device()

    def open_engine_installer(self):
        from .engine_install_dialog import EngineInstallDialog
        dialog = getattr(self, "_install_dialog", None)
        if dialog is None:
            dialog = self._install_dialog = EngineInstallDialog(self)
            dialog.engine_changed.connect(self._engine_changed)
        dialog.show()
        dialog.raise_()
        return dialog

    def _engine_changed(self) -> None:
        clear_cache()
        compute.clear_probe_cache()
        self._probe = None
        self.refresh_engine_label()
        self.probe_device()

    def showEvent(self, event):  # Qt
        """The panel opens: ask the engine for its device (once per interpreter, cached)."""
        super().showEvent(event)
        if self._probe_task is None and (self._probe is None or not self._probe.final):
            self.probe_device()

    def probe_device(self, force: bool = False) -> compute.DeviceProbeTask | None:
        """Ask the engine interpreter, in the background, where a run will compute; the label
        shows it when the answer arrives (at once when cached). Never blocks: returns the task
        (None when the answer was known or there is no interpreter)."""
        info = locate_engine(validate=False)
        if not info.ok or not info.python:
            self._probe_done(compute.DeviceProbe.failed(None, info.message or tr("no engine interpreter")))
            return None
        if not Path(info.python).is_file():  # said at once, no task
            self._probe_done(compute.run_probe(info.python))
            return None
        if self._probe_task is not None:
            if self._probe_task.python == info.python:
                return self._probe_task
            self._probe_task.cancel()
            self._probe_task = None
        cached = None if force else compute.cached_probe(info.python)
        if cached is not None:
            self._probe_done(cached)
            return None
        task = compute.DeviceProbeTask(info.python, extra_env=engine_environment())
        task.probed.connect(self._probe_done)
        self._probe_task = task
        if not self._device_from_run:
            self.device_label.setText(tr("Device: asking the engine…"))
            self.device_label.setToolTip(tr("Asking {0} which device its PyTorch uses").format(info.python))
        QgsApplication.taskManager().addTask(task)
        return task

    def _probe_done(self, probe: compute.DeviceProbe) -> None:
        try:
            if self._probe_task is not None and probe.python == self._probe_task.python:
                self._probe_task = None
            current = locate_engine(validate=False).python
            if probe.python is not None and probe.python != current:
                return  # an answer about an interpreter no longer chosen
            self._probe = probe
            if not probe.ok and probe.final and probe.python is not None:
                self.log.appendPlainText(tr("[warning] Device check: {0}").format(probe.message))
            self._update_device_combo(probe)
            self._show_planned_device()
        except RuntimeError:  # the panel was deleted meanwhile
            pass

    def _update_device_combo(self, probe: compute.DeviceProbe) -> None:
        """One entry per GPU found (cuda:N) when there are several; the GPU's name on CUDA."""
        if not probe.ok:
            return
        current = self.device_combo.currentData()
        self.device_combo.blockSignals(True)
        for i in range(self.device_combo.count() - 1, -1, -1):
            if str(self.device_combo.itemData(i)).startswith("cuda:"):
                self.device_combo.removeItem(i)
        cuda = self.device_combo.findData("cuda")
        if probe.devices:
            self.device_combo.setItemText(cuda, tr("CUDA GPU ({0})").format(probe.devices[0]))
        else:
            self.device_combo.setItemText(cuda, tr("CUDA GPU (none found)"))
        if len(probe.devices) > 1:
            for i, name in enumerate(probe.devices):
                self.device_combo.addItem(tr("cuda:{0} ({1})").format(i, name), f"cuda:{i}")
        self._select_device(current or "auto")
        self.device_combo.blockSignals(False)

    def _show_planned_device(self) -> None:
        """The label before a run: where the chosen options will make the engine compute."""
        if self._device_from_run or self.running:
            return
        probe = self._probe
        if probe is None:
            return
        if not probe.ok:
            self.device_label.setText(tr("Device: engine not found") if probe.final
                                      else tr("Device: unknown until the engine runs"))
            self.device_label.setToolTip(probe.message)
            return
        options = self.compute_options()
        text, ok = compute.planned_device(probe, options["device"], options["threads"])
        self.device_label.setText(tr("Device: {0}").format(text) if ok else tr("Device: ⚠ {0}").format(text))
        self.device_label.setToolTip(tr(
            "What the engine ({0}) reports before a run: {1} GPU(s), {2} CPU threads by default. "
            "A run's start event confirms it.").format(probe.python, len(probe.devices), probe.threads or "?"))

    def refresh_engine_label(self) -> None:
        # No validation here: that imports the engine (seconds); the task validates at run time.
        info = locate_engine(validate=False)
        if info.ok:
            self.engine_label.setText(breakable(tr("Engine: {0} ({1})").format(info.python, info.source)))
            self.install_engine_button.setDefault(False)
        else:
            self.engine_label.setText(tr("Engine: not installed. Press Install engine… (or see "
                                         "the log below for the terminal commands)"))
            self.install_engine_button.setDefault(True)
            self.log.appendPlainText(info.message)

    def inspect(self) -> None:
        s2 = self.s2_input.path()
        if not s2:
            self.show_error(tr("Choose a Sentinel-2 raster (layer, file or folder) to inspect."))
            return
        args = [s2]
        s1 = self.s1_input.path()
        if s1:
            args += ["--s1", s1]
        try:
            band_order = self.band_order_for(s2)
        except JobError as exc:
            self.show_error(str(exc))
            return
        args += band_order_args(band_order)
        self.start("info", args, tr("SparseViT: inspect input"),
                   lambda outcome: self._inspect_done(outcome, s2, band_order is not None),
                   lambda outcome: self._inspect_failed(outcome, s2, band_order is not None))

    def run_predict(self) -> EngineTask | None:
        if self._task is not None:
            self.show_error(tr("A SparseViT run is already going; cancel it first."))
            return None
        try:
            when = _dt.datetime.now()
            args, run_dir = self.plan_predict(when)
            run_dir.parent.mkdir(exist_ok=True)  # the proposed output folder, on first use
            run_dir.mkdir(parents=False)
        except (JobError, OSError) as exc:
            self.show_error(str(exc))
            return None
        out_dir = self.output_dir.filePath().strip()
        if settings.output_dir() or out_dir != self._proposed_out:
            settings.set_output_dir(out_dir)  # the user's choice; the proposal stays one
        settings.set_model_path(self.model_input.chosen())
        self._run_dir, self._run_started = run_dir, when
        self._run_label = input_stem(self.s2_input.path())
        self._run_scene = self.s2_input.path()
        self.log.appendPlainText(tr("Run folder: {0}").format(run_dir))
        task = self.start("predict", args, tr("SparseViT: map land cover"), self._predict_done)
        if task is None:
            discard_run_folder(run_dir)
            self._run_dir = None
        return task

    def plan_export(self) -> tuple[str, list[str], str]:
        """The Export group as ``(format, engine arguments, source layer id)``."""
        layer = self.export_layer.currentLayer()
        if layer is None:
            raise JobError(tr("Choose the land-cover raster to export."))
        fmt, _label, ext = EXPORT_FORMATS[max(0, self.export_format.currentIndex())]
        dst = self.export_file.filePath().strip()
        if not dst:
            raise JobError(tr("Choose the file to export to."))
        if Path(dst).suffix.lower() != ext:
            dst = str(Path(dst).with_suffix(ext))
        src = layer.source().split("|")[0]
        args = [src, "--out", dst, "--format", fmt]
        crs = self.export_crs.crs()
        if fmt in ("cog", "gpkg") and crs.isValid():
            args += ["--crs", crs_arg(crs)]
        # the scheme's names and colours are not what the user sees after editing the Symbology
        shown = shown_classes(palette_classes(layer)) if isinstance(layer, QgsRasterLayer) else []
        if shown:
            args += ["--classes", str(write_json(self._edit_file("classes"), shown))]
        if fmt == "gpkg":
            args += self.export_polygon_args()
        return fmt, args, layer.id()

    def build_export_args(self) -> list[str]:
        return self.plan_export()[1]

    def run_export(self) -> EngineTask | None:
        try:
            fmt, args, source_id = self.plan_export()
        except JobError as exc:
            self.show_error(str(exc))
            return None
        return self.start("export", args, tr("SparseViT: export land cover"),
                          lambda outcome: self._export_done(outcome, fmt, source_id))

    def _edit_file(self, kind: str) -> Path:
        if self._edits_dir is None or not self._edits_dir.is_dir():
            self._edits_dir = Path(tempfile.mkdtemp(prefix="sparsevit-export-"))
        fd, name = tempfile.mkstemp(prefix=kind + "-", suffix=".json", dir=self._edits_dir)
        os.close(fd)
        return Path(name)

    def open_reclassify(self):
        """The Reclassify… dialog for the chosen land-cover layer; its result is exported."""
        from .reclassify_dialog import ReclassifyDialog
        layer = self.export_layer.currentLayer()
        classes = palette_classes(layer) if isinstance(layer, QgsRasterLayer) else []
        if not classes:
            self.show_error(tr("Choose a land-cover layer shown with classes (Paletted/Unique "
                               "values symbology) to reclassify."))
            return None
        stem = Path(layer.source().split("|")[0]).with_suffix("")
        dialog = ReclassifyDialog(classes, layer.name(), f"{stem}_reclassified.tif", parent=self)
        if not dialog.exec_():
            return None
        try:
            spec = dialog.spec()
        except SchemeError as exc:
            self.show_error(str(exc))
            return None
        return self.run_reclassify(spec, dialog.output_path(), layer)

    def plan_reclassify(self, spec: dict, dst: str, layer=None) -> tuple[list[str], str]:
        """``(engine arguments, source layer id)`` for exporting ``layer`` (default: the Export
        box's) reclassified by ``spec`` (core/reclassify.py ``reclass_spec``) as a COG ``dst``."""
        layer = layer or self.export_layer.currentLayer()
        if layer is None:
            raise JobError(tr("Choose the land-cover raster to reclassify."))
        if not dst:
            raise JobError(tr("Choose the file to write the reclassified land cover to."))
        src = layer.source().split("|")[0]
        dst = str(Path(dst).with_suffix(".tif"))
        args = [src, "--out", dst, "--format", "cog",
                "--reclass", str(write_json(self._edit_file("reclass"), spec))]
        return args, layer.id()

    def run_reclassify(self, spec: dict, dst: str, layer=None) -> EngineTask | None:
        try:
            args, source_id = self.plan_reclassify(spec, dst, layer)
        except JobError as exc:
            self.show_error(str(exc))
            return None
        return self.start("export", args, tr("SparseViT: reclassify land cover"),
                          lambda outcome: self._export_done(outcome, "cog", source_id))

    def start(self, command: str, args: list[str], description: str, on_done,
              on_failed=None) -> EngineTask | None:
        """Run ``sparsevit <command> <args>`` as a task; ``on_done(outcome)`` after success,
        ``on_failed(outcome)`` after a failure or cancel (on the main thread)."""
        if self._task is not None:
            self.show_error(tr("A SparseViT run is already going; cancel it first."))
            return None
        self.log.appendPlainText(f"$ sparsevit {command} " + " ".join(args))
        task = EngineTask(description, command, args,
                          on_finished=lambda outcome: self._finished(outcome, command, on_done, on_failed))
        task.engine_event.connect(self.on_event)
        self._task = task  # keeps the Python object alive until finished() ran
        self._set_running(True)
        self.error_label.hide()
        self.progress.setRange(0, 0)  # busy until the first stage: the engine imports PyTorch first
        self.stage_label.setText(tr("Starting the engine…"))
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel(self) -> None:
        if self._task is not None:
            self.stage_label.setText(tr("Cancelling…"))
            self._task.cancel()

    @property
    def running(self) -> bool:
        return self._task is not None

    # --- results -----------------------------------------------------------------------
    def _live_run(self) -> RunLayers | None:
        run = self.last_run
        if run is None or run.group is None:
            return None
        try:
            run.group.name()
        except RuntimeError:  # the user deleted the group
            self.last_run = None
            return None
        return run

    def set_view(self, view: str) -> None:
        run = self._live_run()
        if run is None:
            if view == VIEW_BASEMAP:
                self.add_basemap()
            return
        if view == VIEW_IMAGERY and run.get(VIEW_IMAGERY) is None:
            self.show_warning(tr("This run has no true-colour layer: its input lacks one of "
                                 "B02, B03, B04 (see Inspect)."))
            return
        if view == VIEW_BASEMAP:
            self._check_basemap(ensure_basemap())
        if view in (VIEW_COARSE, VIEW_LANDCOVER) and run.get(view) is None:
            view = run.main_role  # this run has only the other level
        set_view(run, view)
        self.view_buttons[view].setChecked(True)

    def _sync_view_buttons(self) -> None:
        """Level buttons for the maps the last run has; the one shown checked."""
        run = self._live_run()
        for view in (VIEW_COARSE, VIEW_LANDCOVER):
            self.view_buttons[view].setEnabled(run is None or run.get(view) is not None)
        self.view_buttons[run.main_role if run is not None else VIEW_LANDCOVER].setChecked(True)

    def set_opacity(self, value: int) -> None:
        self.opacity_value.setText(f"{value} %")
        settings.set_result_opacity(value / 100.0)
        run = self._live_run()
        if run is not None:
            set_group_opacity(run.group, value / 100.0)

    CUSTOM_BASEMAP = "__custom__"

    def _fill_basemap_combo(self) -> None:
        combo = self.basemap_combo
        combo.clear()
        for name, uri in settings.BASEMAP_PRESETS:
            combo.addItem(tr(name), (name, uri))
        current = (settings.basemap_name(), settings.basemap_uri())
        if current not in settings.BASEMAP_PRESETS:
            combo.addItem(current[0], current)
        combo.addItem(tr("Custom…"), self.CUSTOM_BASEMAP)
        for i in range(combo.count()):
            if combo.itemData(i) == current or tuple(combo.itemData(i) or ()) == current:
                combo.setCurrentIndex(i)

    def _basemap_chosen(self, index: int) -> None:
        data = self.basemap_combo.itemData(index)
        if data == self.CUSTOM_BASEMAP:
            from qgis.PyQt.QtWidgets import QInputDialog
            uri, ok = QInputDialog.getText(self, tr("Custom basemap"), tr(
                "XYZ tile URL (https://…/{z}/{x}/{y}.png), or a QGIS XYZ data source "
                "(type=xyz&url=file:///…/{z}/{x}/{y}.png for a local tile folder, or an MBTiles "
                "file as type=mbtiles&url=/path/tiles.mbtiles):"), text=settings.basemap_uri())
            if not ok or not uri.strip():
                self._fill_basemap_combo()
                return
            data = (tr("Custom basemap"), uri.strip())
        self.set_basemap_choice(*data)

    def set_basemap_choice(self, name: str, uri: str) -> None:
        """Save the basemap and switch the plugin's basemap layer (if there is one) to it."""
        from ..core.styling import basemap_uri
        settings.set_basemap(name, uri)
        self._fill_basemap_combo()
        layer = find_basemap()
        if layer is not None:
            layer.setDataSource(basemap_uri(uri), name, "wms")
            layer.setName(name)
            self._basemap_checked = None
            self._check_basemap(layer)

    def add_basemap(self) -> None:
        layer = ensure_basemap()
        self.log.appendPlainText(tr("Basemap: {0}").format(layer.name()))
        self._check_basemap(layer)

    def _check_basemap(self, layer) -> QgsTask | None:
        """Fetch one tile in the background; say so when the basemap cannot load (offline)."""
        if getattr(self, "_basemap_checked", None) == layer.source():
            return None
        self._basemap_checked = layer.source()
        uri = layer.source()

        def done(exception, problem=None):
            if exception is None and problem:
                self._basemap_checked = None  # try again next time: the network may be back
                self.show_warning(tr("The basemap's tiles do not load ({0}): the basemap stays "
                                     "empty. Offline, choose Custom… next to Add basemap and give "
                                     "a local one (an MBTiles file or an XYZ tile folder).").format(problem))

        task = QgsTask.fromFunction(tr("Checking the basemap"), lambda _t: basemap_problem(uri),
                                    on_finished=done)
        self._basemap_task = task
        QgsApplication.taskManager().addTask(task)
        return task

    def set_swipe(self, on: bool) -> None:
        from .swipe import SwipeTool
        canvas = self.iface.mapCanvas() if self.iface is not None else None
        tool = getattr(self, "swipe_tool", None)
        if not on:
            if tool is not None and canvas is not None and canvas.mapTool() is tool:
                canvas.unsetMapTool(tool)
            self.swipe_tool = None
            return
        run = self._live_run()
        layers = [run.get(VIEW_IMAGERY) if run is not None else None, find_basemap()]
        layers = [lyr for lyr in layers if lyr is not None]
        if canvas is None or not layers:
            self.show_warning(tr("Nothing to swipe against: the last run has no true-colour "
                                 "layer and there is no basemap (Add basemap)."))
            self.swipe_button.setChecked(False)
            return
        self.swipe_tool = SwipeTool(canvas, layers)
        self.swipe_tool.deactivated.connect(lambda: self.swipe_button.setChecked(False))
        canvas.setMapTool(self.swipe_tool)

    # --- engine events (main thread) ---------------------------------------------------
    def on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "stage_start":
            self._stage_t0 = time.monotonic()
            total = event.get("total")
            self.stage_label.setText(tr("Stage: {0}").format(event.get("stage", "")))
            if total:
                self.progress.setRange(0, 100)
                self.progress.setValue(0)
            else:
                self.progress.setRange(0, 0)  # unknown total: busy indicator
        elif kind == "progress":
            fraction = event.get("fraction")
            stage = event.get("stage", "")
            done, total = event.get("done"), event.get("total")
            eta = ""
            if fraction is not None and self._stage_t0 is not None:
                eta = eta_text(time.monotonic() - self._stage_t0, float(fraction))
            if total:
                self.stage_label.setText(tr("Stage: {0} ({1}/{2})").format(stage, done, total)
                                         + (f", {tr(eta)}" if eta else ""))
            if fraction is None:
                self.progress.setRange(0, 0)
            else:
                self.progress.setRange(0, 100)
                self.progress.setValue(int(round(100 * float(fraction))))
        elif kind == "start":
            self.stage_label.setText(tr("Engine started ({0}); preparing…").format(
                event.get("device_name") or event.get("device") or event.get("command", "")))
        elif kind == "log":
            self.log.appendPlainText(f"[{event.get('level', 'info')}] {event.get('message', '')}")
        elif kind == "error":
            self.log.appendPlainText(f"[error] {event.get('message', '')}")
        self._update_device(event)

    def _update_device(self, event: dict) -> None:
        """The ``start`` event says where a model runs (docs/protocol.md)."""
        if event.get("event") != "start" or not event.get("device"):
            return
        device, name = str(event["device"]), event.get("device_name")
        kind = "GPU" if device.lower().startswith(("cuda", "mps")) else "CPU"
        self._device_from_run = True
        self.device_label.setText(tr("Device: {0}").format(name or device.upper()))
        self.device_label.setToolTip(tr("The engine runs on the {0} ({1})").format(kind, device))

    def _finished(self, outcome: EngineOutcome, command: str, on_done, on_failed=None) -> None:
        self._task = None
        self._stage_t0 = None
        self._set_running(False)
        self._show_planned_device()  # a device check that ended during a run without a device
        self.progress.setRange(0, 100)
        if outcome.ok:
            self.stage_label.setText(tr("Done in {0:.1f} s").format(outcome.elapsed))
            self.progress.setValue(100)
            on_done(outcome)
            return
        if outcome.cancelled and command == "predict" and result_is_complete(outcome.result):
            # The engine had committed every output before the cancel reached it: the result
            # is complete, so it is shown rather than left unseen in a folder.
            self.stage_label.setText(tr("Done in {0:.1f} s (the cancel came too late)").format(outcome.elapsed))
            self.progress.setValue(100)
            self.log.appendPlainText(tr("The cancel came after the engine had written the whole result; "
                                        "the result is kept and added to the map."))
            on_done(outcome)
            return
        if outcome.cancelled:
            self.stage_label.setText(tr("Cancelled"))
            self.progress.setValue(0)
        else:
            self.stage_label.setText(tr("Failed"))
            self.show_error(outcome.message)
            if outcome.stderr.strip():
                self.log.appendPlainText(outcome.stderr.strip()[-4000:])
        if on_failed is not None:
            on_failed(outcome)
        if command == "predict" and self._run_dir is not None:
            left = [] if discard_run_folder(self._run_dir) else leftover_files(self._run_dir)
            if outcome.cancelled and not left:
                self.log.appendPlainText(tr("Cancelled; no output was written (removed {0}).").format(self._run_dir))
            elif not left:
                self.log.appendPlainText(tr("Removed the run folder {0}").format(self._run_dir))
            else:
                self.log.appendPlainText(
                    tr("{0}; kept the run folder {1}: it holds {2}, which the run did not finish "
                       "(not added to the map)").format(tr("Cancelled") if outcome.cancelled else tr("Failed"),
                                                       self._run_dir, ", ".join(left[:5])))
            self._run_dir = None
        elif outcome.cancelled:
            self.log.appendPlainText(tr("Cancelled; no output was written."))

    def _inspect_done(self, outcome: EngineOutcome, s2: str = "", with_override: bool = False) -> None:
        self.log.appendPlainText(format_band_report(outcome.result or {}))
        if s2:
            self.band_mapping.set_info(outcome.result, s2, with_override)

    def _inspect_failed(self, outcome: EngineOutcome, s2: str, with_override: bool) -> None:
        """The engine found no band it could name: the table still lists the file's bands, for
        the user to name them."""
        if not outcome.cancelled and not with_override:
            self.band_mapping.set_info(None, s2, with_override=False)

    def show_map_result(self, outcome: EngineOutcome, label: str, when: _dt.datetime | None) -> None:
        """Add a result's maps (a training run's, which has the predict roles) as the last run."""
        self._run_label, self._run_started, self._run_scene = label, when, None
        self._predict_done(outcome)

    def _predict_done(self, outcome: EngineOutcome) -> None:
        result = outcome.result or {}
        run = add_predict_results(result, self._run_label or "run", when=self._run_started,
                                  log=self.log.appendPlainText, scene=self._run_scene)
        self._run_dir = None
        if run.group is None:
            self.show_error(tr("The engine finished but no result could be opened; see the log."))
            return
        self.last_run = run
        self._sync_view_buttons()
        self._show_summary(result, outcome)
        self.export_box.setCollapsed(False)
        # The layer tree view re-expands a paletted layer's legend once its style is applied;
        # fold the hidden layers again after that (and keep the shown map's legend open).
        QTimer.singleShot(0, lambda: sync_legends(run))
        landcover = run.main_map  # the coarse map when there is one: the map on show
        if landcover is not None:
            self.export_layer.setLayer(landcover)
            stem = Path(landcover.source()).with_suffix("")
            self.export_file.setFilePath(str(stem) + EXPORT_FORMATS[self.export_format.currentIndex()][2])
            if self.iface is not None and self.iface.mapCanvas() is not None and self.area_mode() == AREA_WHOLE:
                self._zoom_to(landcover)
        for key, heading in (("class_areas_coarse", tr("Coarse land cover:")),
                             ("class_areas", tr("Detailed land cover:"))):
            areas = [r for r in result.get(key) or [] if r.get("hectares")]
            if areas and result.get("class_areas_coarse") and result.get("class_areas"):
                self.log.appendPlainText(heading)
            for row in sorted(areas, key=lambda r: -r["hectares"]):
                self.log.appendPlainText("  " + class_area_line(row))
        self.log.appendPlainText(tr("{0} layer(s) added to group '{1}'; outputs in {2}").format(
            len(run.layers), run.group.name(), Path(str((result.get("outputs") or {}).get("run", ""))).parent))

    def _show_summary(self, result: dict, outcome: EngineOutcome) -> None:
        """The result summary line; what the user must know (an input the model ignored) also
        in the message bar and the stage label, not only in the log."""
        warnings = result_warnings(result)
        line = summary_line(result, self._run_label, outcome.elapsed)
        self.summary_label.setText(line)
        self.summary_label.setStyleSheet("color: #b35900; font-weight: bold;" if warnings else "")
        self.summary_label.setToolTip("\n".join(warnings))
        self.log.appendPlainText(line)
        for message in warnings:
            self.show_warning(message)
        if warnings and self.stage_label.text().startswith(tr("Done")):
            self.stage_label.setText(self.stage_label.text() + " — ⚠ " + warnings[0])

    def _zoom_to(self, layer) -> None:
        from qgis.core import QgsCoordinateTransform
        canvas = self.iface.mapCanvas()
        try:
            xform = QgsCoordinateTransform(layer.crs(), canvas.mapSettings().destinationCrs(),
                                           QgsProject.instance())
            canvas.setExtent(xform.transformBoundingBox(layer.extent()))
            canvas.refresh()
        except Exception:  # noqa: BLE001 - zooming is a convenience; never fail a finished run on it
            pass

    def _export_done(self, outcome: EngineOutcome, fmt: str, source_id: str) -> None:
        result = outcome.result or {}
        source = QgsProject.instance().mapLayer(source_id)
        layer = add_export_result(result, fmt, source, log=self.log.appendPlainText)
        if layer is not None:
            self.log.appendPlainText(tr("Added {0}").format(layer.name()))
        self.log.appendPlainText(tr("Exported to {0}").format(result.get("path", "?")))

    # --- helpers -----------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        for b in (self.run_button, self.inspect_button, self.engine_button, self.install_engine_button,
                  self.export_button):
            b.setEnabled(not running)
        self.reclassify_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.train_section.set_running(running)

    def show_warning(self, message: str) -> None:
        self.log.appendPlainText(f"[warning] {message}")
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:
            bar.pushWarning(tr("SparseViT"), message)

    def show_error(self, message: str) -> None:
        self.log.appendPlainText(f"[error] {message}")
        self.error_label.setText(message)
        self.error_label.setToolTip(message)
        self.error_label.show()
        # after the layout placed the label: scroll the squeezed panel to it
        QTimer.singleShot(0, lambda: self.scroll.ensureWidgetVisible(self.error_label))
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:
            first = message.splitlines()[0] if message else ""
            bar.pushCritical(tr("SparseViT"), first)

    def shutdown(self) -> None:
        """Called on plugin unload: no engine may outlive the plugin."""
        for signal in self._project_signals():
            try:
                signal.disconnect(self._propose_output_dir)
            except (TypeError, RuntimeError):  # not connected
                pass
        self.train_section.shutdown()
        if self._probe_task is not None:
            self._probe_task.cancel()
            self._probe_task = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._edits_dir is not None:
            shutil.rmtree(self._edits_dir, ignore_errors=True)
            self._edits_dir = None


def format_band_report(result: dict) -> str:
    """The ``sparsevit info`` result (``{"products": [...]}``) as lines a person reads."""
    products = result.get("products")
    if not isinstance(products, list):
        return json.dumps(result, indent=2, default=str)
    lines: list[str] = []
    for info in products:
        lines.append(", ".join(map(str, info.get("source") or info.get("inputs") or [])))
        bands = info.get("bands") or {}
        kind = info.get("kind", "?")
        missing = info.get("missing") or []
        lines.append(f"  {kind}: {len(bands)} band(s)" + (f", missing {', '.join(missing)}" if missing else ""))
        if isinstance(bands, dict):
            for name, b in bands.items():
                if isinstance(b, dict):
                    lines.append(f"    {name:<4} <- {Path(str(b.get('path', ''))).name} band {b.get('index')}"
                                 f" (by {b.get('how')}, {b.get('res_m')} m)")
                else:
                    lines.append(f"    {name}")
        elif isinstance(bands, list):
            lines.append("    " + ", ".join(map(str, bands)))
        grid = info.get("grid") or {}
        if grid:
            lines.append(f"  grid: {grid.get('width')} x {grid.get('height')} px, CRS {grid.get('crs') or 'none'}")
        for action in info.get("actions") or []:
            lines.append(f"    - {action}")
        for warning in info.get("warnings") or []:
            lines.append(f"    ! {warning}")
    return "\n".join(lines)
