"""The SparseViT panel: inputs, area, model, output, run/cancel with progress and engine log.

Built in code (no .ui file to compile). Engine work runs in an :class:`EngineTask`; this widget
only reads the form on the main thread, turns it into engine arguments and shows events.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from qgis.core import (
    QgsApplication,
    QgsMapLayerProxyModel,
    QgsProject,
    QgsRasterLayer,
    QgsVectorFileWriter,
)
from qgis.gui import QgsDockWidget, QgsFileWidget, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import settings
from ..core.engine_locator import clear_cache, locate_engine
from ..core.engine_runner import EngineOutcome
from ..core.engine_task import EngineTask
from ..core.styling import add_layers_to_group, run_group_name, style_result_layer

AREA_WHOLE, AREA_CANVAS, AREA_POLYGON = "whole", "canvas", "polygon"
RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.jp2 *.img);;All files (*)"
RESULT_PATH_KEYS = ("output", "outputs", "raster", "rasters", "prediction", "predictions")


def tr(text: str) -> str:
    return QCoreApplication.translate("SparseVitDock", text)


class RasterInput(QWidget):
    """A loaded raster layer, or a file, or a folder of tiles (file/folder win when set)."""

    def __init__(self, optional: bool, parent=None):
        super().__init__(parent)
        self.layer_combo = QgsMapLayerComboBox(self)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        if optional:
            self.layer_combo.setLayer(None)
        self.file_widget = QgsFileWidget(self)
        self.file_widget.setStorageMode(QgsFileWidget.GetFile)
        self.file_widget.setFilter(RASTER_FILTER)
        self.file_widget.lineEdit().setPlaceholderText(tr("or a raster file"))
        self.folder_button = QToolButton(self)
        self.folder_button.setText(tr("Folder…"))
        self.folder_button.setToolTip(tr("Use a folder of tiles as input"))
        self.folder_button.clicked.connect(self._choose_folder)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.file_widget, 1)
        row.addWidget(self.folder_button)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.layer_combo)
        col.addLayout(row)

    def _choose_folder(self):
        folder = QFileDialog.getExistingDirectory(self, tr("Folder of input tiles"), self.path() or "")
        if folder:
            self.file_widget.setFilePath(folder)

    def path(self) -> str:
        typed = self.file_widget.filePath().strip()
        if typed:
            return typed
        layer = self.layer_combo.currentLayer()
        if layer is None:
            return ""
        return layer.source().split("|")[0]

    def set_path(self, path: str) -> None:
        self.file_widget.setFilePath(path)


class SparseVitDock(QgsDockWidget):
    def __init__(self, iface, parent=None):
        super().__init__(tr("SparseViT"), parent)
        self.setObjectName("SparseVitDock")
        self.iface = iface
        self._task: EngineTask | None = None
        self._build()
        self._set_running(False)
        self.refresh_engine_label()

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
        engine_row.addWidget(self.engine_label, 1)
        engine_row.addWidget(self.engine_button)
        outer.addLayout(engine_row)

        inputs = QGroupBox(tr("Input"), body)
        form = QFormLayout(inputs)
        form.setRowWrapPolicy(QFormLayout.WrapAllRows)  # a narrow dock keeps full-width pickers
        self.s2_input = RasterInput(optional=False, parent=inputs)
        self.s1_input = RasterInput(optional=True, parent=inputs)
        form.addRow(tr("Sentinel-2"), self.s2_input)
        form.addRow(tr("Sentinel-1 (optional)"), self.s1_input)
        outer.addWidget(inputs)

        model_box = QGroupBox(tr("Model"), body)
        model_col = QVBoxLayout(model_box)
        self.model_default = QRadioButton(tr("Bundled default model"), model_box)
        self.model_file_radio = QRadioButton(tr("Model file"), model_box)
        self.model_file = QgsFileWidget(model_box)
        self.model_file.setFilter("SparseViT model (*.safetensors);;All files (*)")
        self.model_file.setFilePath(settings.model_path())
        self.model_group = QButtonGroup(model_box)
        for b in (self.model_default, self.model_file_radio):
            self.model_group.addButton(b)
            model_col.addWidget(b)
        model_col.addWidget(self.model_file)
        (self.model_file_radio if settings.model_path() else self.model_default).setChecked(True)
        self.model_file_radio.toggled.connect(self.model_file.setEnabled)
        self.model_file.setEnabled(self.model_file_radio.isChecked())
        outer.addWidget(model_box)

        area_box = QGroupBox(tr("Area"), body)
        area_col = QVBoxLayout(area_box)
        self.area_whole = QRadioButton(tr("Whole raster"), area_box)
        self.area_canvas = QRadioButton(tr("Current map canvas extent"), area_box)
        self.area_polygon = QRadioButton(tr("Selected polygon(s) of layer"), area_box)
        self.area_group = QButtonGroup(area_box)
        for b in (self.area_whole, self.area_canvas, self.area_polygon):
            self.area_group.addButton(b)
            area_col.addWidget(b)
        self.polygon_combo = QgsMapLayerComboBox(area_box)
        self.polygon_combo.setFilters(QgsMapLayerProxyModel.PolygonLayer)
        area_col.addWidget(self.polygon_combo)
        self.area_whole.setChecked(True)
        self.area_polygon.toggled.connect(self.polygon_combo.setEnabled)
        self.polygon_combo.setEnabled(False)
        outer.addWidget(area_box)

        out_form = QFormLayout()
        self.output_dir = QgsFileWidget(body)
        self.output_dir.setStorageMode(QgsFileWidget.GetDirectory)
        self.output_dir.setFilePath(settings.output_dir())
        out_form.addRow(tr("Output folder"), self.output_dir)
        outer.addLayout(out_form)

        buttons = QHBoxLayout()
        self.inspect_button = QPushButton(tr("Inspect"), body)
        self.inspect_button.setToolTip(tr("Show the band mapping the engine finds in the Sentinel-2 input"))
        self.run_button = QPushButton(tr("Run"), body)
        self.cancel_button = QPushButton(tr("Cancel"), body)
        self.cancel_button.setToolTip(tr("Stop the engine now; nothing half-written is kept"))
        self.inspect_button.clicked.connect(self.inspect)
        self.run_button.clicked.connect(self.run_predict)
        self.cancel_button.clicked.connect(self.cancel)
        for b in (self.inspect_button, self.run_button, self.cancel_button):
            buttons.addWidget(b)
        outer.addLayout(buttons)

        self.stage_label = QLabel(tr("Idle"), body)
        self.progress = QProgressBar(body)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.device_label = QLabel(tr("Device: unknown until the engine runs"), body)
        outer.addWidget(self.stage_label)
        outer.addWidget(self.progress)
        outer.addWidget(self.device_label)

        self.log = QPlainTextEdit(body)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)  # a long training run must not grow without bound
        self.log.setPlaceholderText(tr("Engine messages appear here."))
        outer.addWidget(self.log, 1)
        self.setWidget(body)

    # --- form -> engine arguments -------------------------------------------------------
    def area_mode(self) -> str:
        if self.area_canvas.isChecked():
            return AREA_CANVAS
        if self.area_polygon.isChecked():
            return AREA_POLYGON
        return AREA_WHOLE

    def model_path(self) -> str:
        return self.model_file.filePath().strip() if self.model_file_radio.isChecked() else ""

    def area_args(self, out_dir: str) -> list[str]:
        mode = self.area_mode()
        if mode == AREA_CANVAS:
            canvas = self.iface.mapCanvas()
            ext = canvas.extent()
            crs = canvas.mapSettings().destinationCrs().authid()
            return ["--extent", f"{ext.xMinimum()},{ext.yMinimum()},{ext.xMaximum()},{ext.yMaximum()}",
                    "--extent-crs", crs]
        if mode == AREA_POLYGON:
            return ["--aoi", self._write_selected_polygons(out_dir)]
        return []

    def _write_selected_polygons(self, out_dir: str) -> str:
        layer = self.polygon_combo.currentLayer()
        if layer is None or layer.selectedFeatureCount() == 0:
            raise ValueError(tr("Select at least one polygon in the chosen layer, or pick another area."))
        folder = out_dir or tempfile.gettempdir()
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = os.path.join(folder, "sparsevit_area.geojson")
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GeoJSON"
        options.onlySelectedFeatures = True
        res = QgsVectorFileWriter.writeAsVectorFormatV3(
            layer, path, QgsProject.instance().transformContext(), options)
        if res[0] != QgsVectorFileWriter.NoError:
            raise ValueError(tr("Cannot write the selected polygons to {0}: {1}").format(path, res[1]))
        return path

    def build_predict_args(self) -> list[str]:
        s2 = self.s2_input.path()
        if not s2:
            raise ValueError(tr("Choose a Sentinel-2 raster (layer, file or folder)."))
        out_dir = self.output_dir.filePath().strip()
        if not out_dir:
            raise ValueError(tr("Choose an output folder."))
        args = [s2, "--out", out_dir]
        s1 = self.s1_input.path()
        if s1:
            args += ["--s1", s1]
        model = self.model_path()
        if self.model_file_radio.isChecked() and not model:
            raise ValueError(tr("Choose a model file, or use the bundled default model."))
        if model:
            args += ["--model", model]
        return args + self.area_args(out_dir)

    # --- actions -----------------------------------------------------------------------
    def choose_engine(self) -> None:
        start = settings.python_path() or ""
        path, _ = QFileDialog.getOpenFileName(self, tr("Python interpreter of the SparseViT engine"), start)
        if path:
            settings.set_python_path(path)
            clear_cache()
            self.refresh_engine_label()

    def refresh_engine_label(self) -> None:
        # No validation here: that imports the engine (seconds); the task validates at run time.
        info = locate_engine(validate=False)
        if info.ok:
            self.engine_label.setText(tr("Engine: {0} ({1})").format(info.python, info.source))
        else:
            self.engine_label.setText(tr("Engine: not installed (see the log below)"))
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
        self.start("info", args, tr("SparseViT: inspect input"), self._inspect_done)

    def run_predict(self) -> None:
        try:
            args = self.build_predict_args()
        except ValueError as exc:
            self.show_error(str(exc))
            return
        settings.set_output_dir(self.output_dir.filePath().strip())
        settings.set_model_path(self.model_file.filePath().strip() if self.model_file_radio.isChecked() else "")
        self.start("predict", args, tr("SparseViT: map land cover"), self._predict_done)

    def start(self, command: str, args: list[str], description: str, on_done) -> EngineTask | None:
        if self._task is not None:
            self.show_error(tr("A SparseViT run is already going; cancel it first."))
            return None
        self.log.appendPlainText(f"$ sparsevit {command} " + " ".join(args))
        task = EngineTask(description, command, args,
                          on_finished=lambda outcome: self._finished(outcome, command, on_done))
        task.engine_event.connect(self.on_event)
        task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        self._task = task  # keeps the Python object alive until finished() ran
        self._set_running(True)
        self.stage_label.setText(tr("Starting the engine…"))
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel(self) -> None:
        if self._task is not None:
            self.stage_label.setText(tr("Cancelling…"))
            self._task.cancel()

    # --- engine events (main thread) ---------------------------------------------------
    def on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "stage_start":
            self.stage_label.setText(tr("Stage: {0}").format(event.get("stage", "")))
            self.progress.setValue(0)
        elif kind == "progress":
            fraction = event.get("fraction")
            if fraction is None:
                self.progress.setRange(0, 0)  # unknown total: busy indicator
            else:
                self.progress.setRange(0, 100)
                self.progress.setValue(int(round(100 * float(fraction))))
        elif kind == "log":
            self.log.appendPlainText(f"[{event.get('level', 'info')}] {event.get('message', '')}")
        elif kind == "error":
            self.log.appendPlainText(f"[error] {event.get('message', '')}")
        self._update_device(event)

    def _update_device(self, event: dict) -> None:
        device = event.get("device")
        if not device and event.get("event") == "log":
            msg = str(event.get("message", ""))
            if msg.lower().startswith("device:"):
                device = msg.split(":", 1)[1].strip()
        if device:
            name = event.get("device_name")
            text = str(device).upper() if str(device).lower() in ("cpu", "cuda", "mps") else str(device)
            self.device_label.setText(tr("Device: {0}").format(f"{text} ({name})" if name else text))

    def _finished(self, outcome: EngineOutcome, command: str, on_done) -> None:
        self._task = None
        self._set_running(False)
        self.progress.setRange(0, 100)
        if outcome.result:
            self._update_device(outcome.result)
        if outcome.ok:
            self.stage_label.setText(tr("Done in {0:.1f} s").format(outcome.elapsed))
            self.progress.setValue(100)
            on_done(outcome)
        elif outcome.cancelled:
            self.stage_label.setText(tr("Cancelled"))
            self.progress.setValue(0)
            self.log.appendPlainText(tr("Cancelled; no output was written."))
        else:
            self.stage_label.setText(tr("Failed"))
            self.show_error(outcome.message)
            if outcome.stderr.strip():
                self.log.appendPlainText(outcome.stderr.strip()[-4000:])

    def _inspect_done(self, outcome: EngineOutcome) -> None:
        self.log.appendPlainText(format_band_report(outcome.result or {}))

    def _predict_done(self, outcome: EngineOutcome) -> None:
        paths = result_rasters(outcome.result or {})
        layers = []
        for path in paths:
            layer = QgsRasterLayer(path, Path(path).stem)
            if not layer.isValid():
                self.log.appendPlainText(tr("Cannot open the result {0}").format(path))
                continue
            style_result_layer(layer, (outcome.result or {}).get("scheme"), settings.result_opacity())
            layers.append(layer)
        if layers:
            add_layers_to_group(layers, run_group_name("predict"))
        self.log.appendPlainText(tr("{0} result layer(s) added.").format(len(layers)))

    # --- helpers -----------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.inspect_button.setEnabled(not running)
        self.engine_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def show_error(self, message: str) -> None:
        self.log.appendPlainText(f"[error] {message}")
        bar = self.iface.messageBar() if self.iface is not None else None
        if bar is not None:
            first = message.splitlines()[0] if message else ""
            bar.pushCritical(tr("SparseViT"), first)

    def shutdown(self) -> None:
        """Called on plugin unload: no engine may outlive the plugin."""
        if self._task is not None:
            self._task.cancel()
            self._task = None


def result_rasters(result: dict) -> list[str]:
    """Raster files named in a ``result`` event, under the keys the engine uses for outputs."""
    paths: list[str] = []
    for key in RESULT_PATH_KEYS:
        value = result.get(key)
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, dict):
                v = v.get("path")
            if isinstance(v, str) and v.lower().endswith((".tif", ".tiff", ".vrt")) and v not in paths:
                paths.append(v)
    return paths


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
