"""Plugin life cycle: loads lazily, initGui adds, unload removes everything; code hygiene."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsRectangle
from qgis.PyQt.QtWidgets import QMenu

import sparsevit_qgis

PLUGIN_DIR = Path(sparsevit_qgis.__file__).resolve().parent


class RecordingIface:
    """Wraps pytest-qgis's iface and records what the plugin adds and removes."""

    def __init__(self, iface):
        self._iface = iface
        self.toolbar, self.menu, self.docks = [], [], []
        self.help_menu = QMenu()

    def __getattr__(self, name):
        return getattr(self._iface, name)

    def addToolBarIcon(self, action):  # noqa: N802
        self.toolbar.append(action)

    def removeToolBarIcon(self, action):  # noqa: N802
        self.toolbar.remove(action)

    def addPluginToRasterMenu(self, name, action):  # noqa: N802
        self.menu.append((name, action))

    def removePluginRasterMenu(self, name, action):  # noqa: N802
        self.menu.remove((name, action))

    def addDockWidget(self, area, dock):  # noqa: N802
        self.docks.append(dock)

    def removeDockWidget(self, dock):  # noqa: N802
        self.docks.remove(dock)

    def pluginHelpMenu(self):  # noqa: N802
        return self.help_menu


def test_class_factory_returns_the_plugin(qgis_iface):
    plugin = sparsevit_qgis.classFactory(qgis_iface)
    assert type(plugin).__name__ == "SparseVitPlugin"
    assert plugin.dock is None  # nothing built before initGui / first use


def test_init_gui_then_unload_leaves_nothing(qgis_app, qgis_iface):
    registry = QgsApplication.processingRegistry()
    iface = RecordingIface(qgis_iface)
    plugin = sparsevit_qgis.classFactory(iface)
    plugin.initGui()
    assert len(iface.toolbar) == 1 and len(iface.menu) == 2
    assert len(iface.help_menu.actions()) == 1
    assert registry.providerById("sparsevit") is not None
    for alg in ("info", "predict", "export", "evaluate", "train"):
        assert registry.algorithmById(f"sparsevit:{alg}") is not None
    plugin.toggle_action.setChecked(True)  # opens the panel
    assert len(iface.docks) == 1 and plugin.dock is not None
    plugin.unload()
    assert iface.toolbar == [] and iface.menu == [] and iface.docks == []
    assert iface.help_menu.actions() == []
    assert registry.providerById("sparsevit") is None
    assert plugin.dock is None and plugin.toggle_action is None


def test_dock_form_to_engine_arguments(qgis_app, qgis_iface, tmp_path):
    import datetime as dt

    from sparsevit_qgis.core.predict_job import JobError
    from sparsevit_qgis.gui.dock import SparseVitDock
    dock = SparseVitDock(qgis_iface)
    try:
        with pytest.raises(JobError, match="Sentinel-2"):
            dock.plan_predict()
        model = tmp_path / "model"
        model.mkdir()
        (model / "bundle.json").write_text("{}")
        dock.s2_input.set_path(str(tmp_path / "s2.tif"))
        (tmp_path / "out").mkdir()
        dock.output_dir.setFilePath(str(tmp_path / "out"))
        dock.model_input.set_custom(str(model / "bundle.json"))
        when = dt.datetime(2024, 5, 6, 7, 8, 9)
        args, run_dir = dock.plan_predict(when)
        assert run_dir == tmp_path / "out" / "s2_20240506-070809" and not run_dir.exists()
        assert args == [str(tmp_path / "s2.tif"), "--model", str(model), "--out", str(run_dir)]
        run_dir.mkdir()  # a second run in the same second gets its own folder
        assert dock.plan_predict(when)[1].name == "s2_20240506-070809_2"
        dock.s1_input.set_path(str(tmp_path / "s1.tif"))
        dock.area_canvas.setChecked(True)
        canvas = qgis_iface.mapCanvas()
        canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))
        canvas.setExtent(QgsRectangle(-87000.0, 4590000.0, -82000.0, 4596000.0))
        dock.tile_spin.setValue(256)
        dock.polygons_check.setChecked(True)
        dock.overview_check.setChecked(False)
        args = dock.build_predict_args()
        assert args[1:3] == ["--s1", str(tmp_path / "s1.tif")]
        area = next(a for a in args if a.startswith("--area="))
        assert len(area.split("=", 1)[1].split(",")) == 4
        assert args[args.index("--area-crs") + 1] == "EPSG:3857"
        assert args[-4:] == ["--tile", "256", "--polygons", "--no-overview"]
        dock.model_input.set_custom("")
        with pytest.raises(JobError, match="model folder or file"):
            dock.build_predict_args()
        dock.model_input.set_custom(str(tmp_path))
        with pytest.raises(JobError, match="no bundle.json"):
            dock.build_predict_args()
        assert dock.cancel_button.isEnabled() is False and dock.run_button.isEnabled()
        dock.on_event({"event": "log", "level": "info", "message": "device: cpu"})
        assert "Device: unknown" in dock.device_label.text()  # log text is for people only
        dock.on_event({"event": "start", "command": "predict", "protocol": 2, "device": "cuda",
                       "device_name": "GPU (NVIDIA H200)"})
        assert "Engine started (GPU (NVIDIA H200))" in dock.stage_label.text()  # not a silent 0 %
        dock.on_event({"event": "stage_start", "stage": "predict", "total": 10})
        dock.on_event({"event": "progress", "stage": "predict", "done": 5, "total": 10, "fraction": 0.5})
        assert "predict (5/10)" in dock.stage_label.text() and dock.progress.value() == 50
        assert "NVIDIA H200" in dock.device_label.text() and "GPU" in dock.device_label.toolTip()
        assert "device: cpu" in dock.log.toPlainText()
        assert dock.area_polygon.toolTip() and "no polygon clip" in dock.area_polygon.toolTip()
    finally:
        dock.deleteLater()


FORBIDDEN_MODULES = {"torch", "rasterio", "numpy", "sparsevit", "timm", "sklearn", "pickle", "dill"}


def _plugin_sources():
    return sorted(PLUGIN_DIR.rglob("*.py"))


def test_plugin_never_imports_the_engine_or_heavy_libraries():
    from fixtures.imports import absolute_imports

    for path in _plugin_sources():
        bad = set(absolute_imports(path)) & FORBIDDEN_MODULES
        assert not bad, f"{path}: imports {sorted(bad)}"


def test_no_shell_eval_exec_in_plugin_code():
    """What the plugin repository's Bandit scan rejects."""
    for path in _plugin_sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                assert name not in ("eval", "exec", "system", "popen"), f"{path}:{node.lineno} {name}"
                for kw in node.keywords:
                    if kw.arg == "shell":
                        assert isinstance(kw.value, ast.Constant) and kw.value.value is False, \
                            f"{path}:{node.lineno} shell=True"


def test_no_compiled_ui_or_resources_in_the_plugin():
    names = {p.name for p in PLUGIN_DIR.rglob("*")}
    assert "resources_rc.py" not in names
    assert not [n for n in names if n.startswith("ui_") and n.endswith(".py")]


def test_importing_the_plugin_package_is_light():
    before = set(sys.modules)
    import importlib
    importlib.reload(sparsevit_qgis)
    assert not {m for m in set(sys.modules) - before if m.startswith("sparsevit_qgis.gui")}


def test_dock_inspect_shows_the_band_mapping(qgis_app, qgis_iface, real_engine, engine_setting):
    import time

    from sparsevit_qgis.gui.dock import SparseVitDock
    python, sample = real_engine
    engine_setting.set_python_path(str(python))
    dock = SparseVitDock(qgis_iface)
    try:
        dock.s2_input.set_path(str(sample))
        dock.inspect()
        assert dock.cancel_button.isEnabled()
        t0 = time.monotonic()
        while dock._task is not None and time.monotonic() - t0 < 60:
            QgsApplication.processEvents()
            time.sleep(0.02)
        text = dock.log.toPlainText()
        assert "B04  <- Spain_7370579_S2Hand.tif band 4" in text, text
        assert dock.stage_label.text().startswith("Done")
        assert not dock.cancel_button.isEnabled()
    finally:
        dock.deleteLater()
