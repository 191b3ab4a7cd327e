"""The "Install engine" dialog: install, repair or remove the engine's venv without a terminal.

The work runs in a QgsTask (QGIS stays responsive, the task manager shows progress and can
cancel it); pip's output streams into the dialog's log and into ``install.log`` next to the venv.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from qgis.core import Qgis, QgsApplication, QgsTask
from qgis.gui import QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ..core import engine_installer as ei
from ..core.engine_locator import profile_venv_dir, venv_python
from .inputs import tr


class EngineInstallTask(QgsTask):
    line = pyqtSignal(str)   # queued to the dialog's thread

    def __init__(self, plan: ei.InstallPlan, on_finished: Callable[[ei.InstallOutcome], None]):
        super().__init__(tr("Installing the SparseViT engine"), QgsTask.CanCancel)
        self.plan = plan
        self.on_finished = on_finished
        self.outcome: ei.InstallOutcome | None = None

    def run(self) -> bool:
        try:
            self.outcome = ei.run_install(
                self.plan, on_line=self.line.emit,
                on_progress=lambda f: self.setProgress(100.0 * f), is_cancelled=self.isCanceled)
        except Exception as exc:  # run() must not raise: QGIS would only log "task failed"
            self.outcome = ei.InstallOutcome(False, message=f"Internal plugin error: {exc!r}")
        return self.outcome.ok

    def finished(self, result: bool) -> None:
        self.on_finished(self.outcome or ei.InstallOutcome(False, True, "Installation cancelled."))


class EngineInstallDialog(QDialog):
    #: emitted after an install, repair or removal: the engine the plugin finds has changed
    engine_changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None, venv: Path | None = None,
                 sources: ei.EngineSources | None = None,
                 detected: ei.Accelerator | None = None):
        super().__init__(parent)
        self.setObjectName("SparseVitEngineInstallDialog")
        self.setWindowTitle(tr("SparseViT engine"))
        self.venv = Path(venv) if venv else (profile_venv_dir() or Path.home() / ".sparsevit" / "venv")
        self.sources = sources
        self.detected = detected or ei.detect_accelerator()
        self.task: EngineInstallTask | None = None
        self.outcome: ei.InstallOutcome | None = None
        self._build()
        self.refresh_state()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        intro = QLabel(tr(
            "The engine runs in its own Python environment, outside QGIS, so that PyTorch never "
            "slows down or crashes QGIS. Installing it takes about 1.4 GB."), self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.state_label = QLabel(self)
        self.state_label.setWordWrap(True)
        self.state_label.setObjectName("state")
        layout.addWidget(self.state_label)

        form = QFormLayout()
        source_box = QWidget(self)
        source_layout = QVBoxLayout(source_box)
        source_layout.setContentsMargins(0, 0, 0, 0)
        self.online = QRadioButton(tr("Download (PyPI and download.pytorch.org)"), source_box)
        self.offline = QRadioButton(tr("Local wheel folder (offline)"), source_box)
        self.online.setChecked(True)
        group = QButtonGroup(self)
        group.addButton(self.online)
        group.addButton(self.offline)
        self.wheel_folder = QgsFileWidget(source_box)
        self.wheel_folder.setStorageMode(QgsFileWidget.GetDirectory)
        self.wheel_folder.setToolTip(tr("A folder filled by scripts/make_wheelhouse.sh on a machine "
                                        "with internet (same OS and Python version)"))
        self.wheel_folder.setEnabled(False)
        self.offline.toggled.connect(self.wheel_folder.setEnabled)
        self.wheel_folder.fileChanged.connect(lambda path: path and self.offline.setChecked(True))
        for w in (self.online, self.offline, self.wheel_folder):
            source_layout.addWidget(w)
        form.addRow(tr("Packages from"), source_box)

        self.build = QComboBox(self)
        self.build.addItem(tr("Automatic: {0}").format(self.detected.detail), "auto")
        self.build.addItem(tr("CPU only"), "cpu")
        self.build.addItem(tr("CUDA (NVIDIA GPU)"), "cuda")
        form.addRow(tr("PyTorch"), self.build)
        layout.addLayout(form)

        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        layout.addWidget(self.progress)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        self.log.setMinimumHeight(160)
        layout.addWidget(self.log, 1)

        buttons = QHBoxLayout()
        self.install_button = QPushButton(tr("Install"), self)
        self.install_button.clicked.connect(self.install)
        self.remove_button = QPushButton(tr("Remove"), self)
        self.remove_button.clicked.connect(self.remove)
        self.cancel_button = QPushButton(tr("Cancel installation"), self)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton(tr("Close"), self)
        self.close_button.clicked.connect(self.close)
        buttons.addWidget(self.install_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.close_button)
        layout.addLayout(buttons)
        self.resize(640, 520)

    # --- state -------------------------------------------------------------------------
    def refresh_state(self) -> None:
        marker = ei.read_marker(self.venv)
        has_python = venv_python(self.venv).exists()
        running = self.task is not None
        if marker and has_python:
            device = marker.get("device") or tr("device unknown")
            text = tr("Installed: engine {0} in {1} ({2}; {3}).").format(
                marker.get("engine_version"), self.venv, device, marker.get("installed", ""))
            self.install_button.setText(tr("Repair"))
            self.install_button.setToolTip(tr("Reinstall the pinned packages and the engine into "
                                              "the existing environment"))
        elif has_python:
            text = tr("{0} holds a Python environment that this installer did not make: Install "
                      "repairs it, Remove is not offered.").format(self.venv)
            self.install_button.setText(tr("Repair"))
        else:
            text = tr("Not installed. It will be installed in {0}.").format(self.venv)
            self.install_button.setText(tr("Install"))
        self.state_label.setText(text)
        self.install_button.setEnabled(not running)
        self.remove_button.setEnabled(not running and bool(marker))
        self.cancel_button.setEnabled(running)
        for w in (self.online, self.offline, self.build):
            w.setEnabled(not running)
        self.wheel_folder.setEnabled(not running and self.offline.isChecked())

    def selected_wheel_folder(self) -> str | None:
        return (self.wheel_folder.filePath() or "").strip() or None if self.offline.isChecked() else None

    def plan(self) -> ei.InstallPlan:
        if self.offline.isChecked() and not self.selected_wheel_folder():
            raise ei.InstallError(tr("Choose the local wheel folder, or install from the internet."))
        return ei.plan_install(self.venv, build=self.build.currentData(),
                               wheel_folder=self.selected_wheel_folder(), sources=self.sources,
                               detected=self.detected)

    # --- actions -----------------------------------------------------------------------
    def install(self) -> EngineInstallTask | None:
        try:
            plan = self.plan()
        except ei.InstallError as exc:
            self.log.appendPlainText(str(exc))
            self.state_label.setText(str(exc))
            return None
        self.outcome = None
        self.progress.setValue(0)
        self.log.clear()
        self.task = EngineInstallTask(plan, self._finished)
        self.task.line.connect(self.log.appendPlainText)
        self.task.progressChanged.connect(lambda p: self.progress.setValue(int(p)))
        self.refresh_state()
        QgsApplication.taskManager().addTask(self.task)
        return self.task

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def _finished(self, outcome: ei.InstallOutcome) -> None:
        self.task = None
        self.outcome = outcome
        if outcome.ok:
            self.progress.setValue(100)
            done = tr("{0} ({1:.0f} s). {2}").format(outcome.message, outcome.seconds, outcome.device or "")
        else:
            done = outcome.message
        self.log.appendPlainText(done)
        self.refresh_state()
        if not outcome.ok:
            self.state_label.setText(done)
        self.engine_changed.emit()
        try:
            from qgis.utils import iface
            bar = iface.messageBar() if iface is not None else None
        except Exception:
            bar = None
        if bar is not None:
            level = Qgis.Success if outcome.ok else (Qgis.Info if outcome.cancelled else Qgis.Critical)
            bar.pushMessage("SparseViT", done, level, 15)

    def remove(self, confirm: bool = True) -> None:
        if confirm and QMessageBox.question(
                self, tr("Remove the engine"),
                tr("Delete {0} and everything installed in it?").format(self.venv)) != QMessageBox.Yes:
            return
        try:
            self.log.appendPlainText(ei.remove_engine(self.venv))
        except (ei.InstallError, OSError) as exc:
            self.log.appendPlainText(str(exc))
        self.refresh_state()
        self.engine_changed.emit()
