"""The panel's input widgets: a raster (layer, file or per-band folder) and a model (the bundled
default, a trained model or a folder/file), each a file chooser with a Folder... button."""
from __future__ import annotations

from qgis.core import (
    QgsMapLayerProxyModel,
)
from qgis.gui import (
    QgsFileWidget,
    QgsMapLayerComboBox,
)
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core import model_registry, settings
from ..core.predict_job import JobError
from .narrow import WrapRadioButton, breakable

RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.jp2 *.img);;Zipped SAFE products (*.zip);;All files (*)"
MODEL_FILTER = "SparseViT model (bundle.json *.safetensors);;All files (*)"


def tr(text: str) -> str:
    return QCoreApplication.translate("SparseVitDock", text)


def file_and_folder_row(owner: QWidget, file_filter: str, placeholder: str, folder_tip: str,
                        on_folder) -> QHBoxLayout:
    """A file chooser with a "Folder…" button beside it (inputs and models can be either); sets
    ``owner.file_widget`` and ``owner.folder_button`` and returns the row."""
    owner.file_widget = QgsFileWidget(owner)
    owner.file_widget.setStorageMode(QgsFileWidget.GetFile)
    owner.file_widget.setFilter(file_filter)
    owner.file_widget.lineEdit().setPlaceholderText(placeholder)
    owner.folder_button = QToolButton(owner)
    owner.folder_button.setText(tr("Folder…"))
    owner.folder_button.setToolTip(folder_tip)
    owner.folder_button.clicked.connect(on_folder)
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(owner.file_widget, 1)
    row.addWidget(owner.folder_button)
    return row


class RasterInput(QWidget):
    """A loaded raster layer, or a file, or a folder of tiles (file/folder win when set)."""

    def __init__(self, optional: bool, parent=None):
        super().__init__(parent)
        self.layer_combo = QgsMapLayerComboBox(self)
        self.layer_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.layer_combo.setAllowEmptyLayer(True)
        if optional:
            self.layer_combo.setLayer(None)
        row = file_and_folder_row(self, RASTER_FILTER, tr("or a raster file"),
                                  tr("Use a folder of tiles as input"), self._choose_folder)
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


class ModelInput(QWidget):
    """The bundled default model, one of the user's trained models (remembered in QgsSettings,
    see :mod:`~..core.model_registry`), or a chosen model folder (bundle.json) or classifier
    file."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.default_radio = WrapRadioButton(tr("Bundled default model"), self)
        self.trained_radio = WrapRadioButton(tr("Trained model"), self)
        self.custom_radio = WrapRadioButton(tr("Model folder or file"), self)
        self.group = QButtonGroup(self)
        for b in (self.default_radio, self.trained_radio, self.custom_radio):
            self.group.addButton(b)
        self.trained_combo = QComboBox(self)
        self.trained_combo.setToolTip(tr("Models trained in this panel (Train); hover an entry "
                                         "for its classes and scores"))
        self.trained_combo.currentIndexChanged.connect(self._trained_tooltip)
        row = file_and_folder_row(self, MODEL_FILTER, tr("model folder (bundle.json) or .safetensors"),
                                  tr("Choose a model folder (the one holding bundle.json)"),
                                  self._choose_folder)
        self.default_label = QLabel(self)
        self.default_label.setWordWrap(True)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.default_radio)
        col.addWidget(self.default_label)
        col.addWidget(self.trained_radio)
        col.addWidget(self.trained_combo)
        col.addWidget(self.custom_radio)
        col.addLayout(row)
        self.refresh_trained()
        saved = settings.model_path()
        if saved and self._trained_index(saved) >= 0:
            self.trained_combo.setCurrentIndex(self._trained_index(saved))
            self.trained_radio.setChecked(True)
        else:
            self.file_widget.setFilePath(saved)
            (self.custom_radio if saved else self.default_radio).setChecked(True)
        self.custom_radio.toggled.connect(self._sync)
        self.trained_radio.toggled.connect(self._sync)
        self._sync()

    def _sync(self) -> None:
        custom = self.custom_radio.isChecked()
        self.file_widget.setEnabled(custom)
        self.folder_button.setEnabled(custom)
        self.trained_combo.setEnabled(self.trained_radio.isChecked())
        self.trained_radio.setEnabled(self.trained_combo.count() > 0)
        default = settings.default_model_path()
        present = default is not None and (default / "bundle.json").is_file()
        self.default_label.setText(breakable(tr("  {0}").format(default) if present
                                   else tr("  missing: {0}").format(default or tr("no resources folder"))))
        # the path wraps at its slashes; the tooltip has it in one piece
        self.default_label.setToolTip(settings.missing_default_model_message() if not present
                                      else str(default))
        if present:
            self.default_radio.setToolTip(model_registry.model_summary(default))

    # --- trained models ------------------------------------------------------------------
    def _trained_index(self, path: str) -> int:
        folder = str(model_registry.model_folder(path)) if path else ""
        for i in range(self.trained_combo.count()):
            if self.trained_combo.itemData(i) == folder:
                return i
        return -1

    def _trained_tooltip(self, *_):
        path = self.trained_combo.currentData()
        self.trained_combo.setToolTip(model_registry.model_summary(path) if path else "")

    def refresh_trained(self) -> None:
        """Re-read the remembered trained models (the current one stays selected)."""
        current = self.trained_combo.currentData()
        self.trained_combo.blockSignals(True)
        self.trained_combo.clear()
        for path in model_registry.trained_models():
            self.trained_combo.addItem(model_registry.model_label(path), path)
            self.trained_combo.setItemData(self.trained_combo.count() - 1,
                                           model_registry.model_summary(path), Qt.ToolTipRole)
        index = self._trained_index(current) if current else -1
        self.trained_combo.setCurrentIndex(max(index, 0) if self.trained_combo.count() else -1)
        self.trained_combo.blockSignals(False)
        self._trained_tooltip()
        self.trained_radio.setEnabled(self.trained_combo.count() > 0)

    def add_trained(self, path: str, select: bool = True) -> str:
        """Remember a newly trained model and (``select``) make it the chosen model."""
        folder = model_registry.add_trained_model(path)
        self.refresh_trained()
        if select:
            self.trained_combo.setCurrentIndex(self._trained_index(folder))
            self.trained_radio.setChecked(True)
            self._sync()
        return folder

    def trained_paths(self) -> list[str]:
        return [self.trained_combo.itemData(i) for i in range(self.trained_combo.count())]

    # --- choice --------------------------------------------------------------------------
    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("Model folder (with bundle.json)"),
                                                  self.file_widget.filePath() or "")
        if folder:
            self.set_custom(folder)

    def set_custom(self, path: str) -> None:
        self.file_widget.setFilePath(path)
        self.custom_radio.setChecked(True)

    def chosen(self) -> str:
        """The user's path; empty for the default model."""
        if self.trained_radio.isChecked():
            return self.trained_combo.currentData() or ""
        return self.file_widget.filePath().strip() if self.custom_radio.isChecked() else ""

    def model(self) -> str:
        """The model for a :class:`~..core.predict_job.PredictRequest` (which resolves and checks
        it): the chosen path, "" for the bundled default."""
        if self.custom_radio.isChecked() and not self.chosen():
            raise JobError(tr("Choose a model folder or file, or use the bundled default model."))
        if self.trained_radio.isChecked() and not self.chosen():
            raise JobError(tr("Choose a trained model, or use the bundled default model."))
        return self.chosen()
