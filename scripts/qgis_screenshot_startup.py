"""Run by ``qgis --code`` (scripts/qgis_screenshot.sh): drive the SparseViT panel like a user
and save a screenshot of the main window. Runs inside QGIS: no engine imports here."""
import os
import tempfile
import time

from qgis.core import QgsApplication, QgsContrastEnhancement, QgsMultiBandColorRenderer, QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface, plugins

S2 = os.environ["SPARSEVIT_SHOT_S2"]
MODEL = os.environ.get("SPARSEVIT_SHOT_MODEL", "")
RUNS = os.environ.get("SPARSEVIT_SHOT_RUNS") or tempfile.mkdtemp()
PNG = os.environ["SPARSEVIT_SHOT_PNG"]
PNG_COMPARE = os.environ.get("SPARSEVIT_SHOT_PNG_COMPARE", "")
DEADLINE = time.monotonic() + 420
state = {"dock": None, "saved": False}


def say(msg):
    print(f"[screenshot] {msg}", flush=True)


def quit_qgis(code=0):
    # QGIS 3.22 aborts in its own teardown (setMapStyleDockLayer on a layer removed while the
    # app closes) after the swipe compare: empty the project while the window still lives
    canvas = iface.mapCanvas()
    if canvas.mapTool() is not None:
        canvas.unsetMapTool(canvas.mapTool())
    QgsProject.instance().clear()
    QgsApplication.processEvents()
    QgsProject.instance().setDirty(False)
    QgsApplication.exit(code)


def save_and_quit():
    iface.mapCanvas().waitWhileRendering()
    QgsApplication.processEvents()
    ok = iface.mainWindow().grab().save(PNG)
    say(f"saved {PNG}" if ok else f"could not save {PNG}")
    state["saved"] = ok
    QTimer.singleShot(200, lambda: quit_qgis(0 if ok else 1))


def rgb_layer():
    layer = QgsRasterLayer(S2, "Sentinel-2 (sample)", "gdal")
    # true colour from B4, B3, B2 (bands 4, 3, 2 of the 13-band sample), stretched
    renderer = QgsMultiBandColorRenderer(layer.dataProvider(), 4, 3, 2)
    for band, setter in ((4, renderer.setRedContrastEnhancement), (3, renderer.setGreenContrastEnhancement),
                         (2, renderer.setBlueContrastEnhancement)):
        ce = QgsContrastEnhancement(layer.dataProvider().dataType(band))
        ce.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
        ce.setMinimumValue(200)
        ce.setMaximumValue(2600)
        setter(ce)
    layer.setRenderer(renderer)
    return layer


def start():
    plugin = plugins.get("sparsevit_qgis")
    if plugin is None:
        say("the plugin is not loaded: check the profile's [PythonPlugins] section")
        quit_qgis(1)
        return
    win = iface.mainWindow()
    win.move(0, 0)
    win.resize(1600, 1000)
    layer = rgb_layer()
    QgsProject.instance().addMapLayer(layer)
    iface.mapCanvas().setDestinationCrs(layer.crs())
    iface.mapCanvas().setExtent(layer.extent())
    plugin.toggle_action.setChecked(True)
    dock = plugin.dock
    state["dock"] = dock
    win.resizeDocks([dock], [520], 1)  # 1 = Qt.Horizontal
    dock.s2_input.layer_combo.setLayer(layer)
    if MODEL:
        dock.model_input.set_custom(MODEL)
    else:
        dock.model_input.default_radio.setChecked(True)
    dock.output_dir.setFilePath(RUNS)
    dock.tile_spin.setValue(256)
    dock.overview_check.setChecked(False)
    say("running the panel's job (model: {0})".format(MODEL or "bundled default"))
    if dock.run_predict() is None:
        say("the run did not start: " + dock.log.toPlainText().splitlines()[-1])
        save_and_quit()
        return
    QTimer.singleShot(500, poll)


def poll():
    dock = state["dock"]
    if dock.running and time.monotonic() < DEADLINE:
        QTimer.singleShot(500, poll)
        return
    if dock.running:
        say("timed out; cancelling")
        dock.cancel()
    say(dock.stage_label.text() + " | " + dock.device_label.text())
    # Room for what the run produced: the set-up sections fold away, the layer list grows.
    for box in (dock.area_polygon.parentWidget(), dock.tile_spin.parentWidget(),
                dock.s1_input.parentWidget()):
        if hasattr(box, "setCollapsed"):
            box.setCollapsed(True)
    browser = iface.mainWindow().findChild(QDockWidget, "Browser")
    if browser is not None:
        browser.hide()
    run = dock.last_run
    if run is not None and run.main_map is not None:  # the coarse map when there is one
        iface.setActiveLayer(run.main_map)
        iface.mapCanvas().setExtent(run.main_map.extent())
        iface.mapCanvas().refresh()
    QTimer.singleShot(2500, compare if PNG_COMPARE else save_and_quit)


def compare():
    """The swipe compare: the true-colour input left of the line, the map right of it."""
    dock = state["dock"]
    dock.swipe_button.setChecked(True)
    tool = getattr(dock, "swipe_tool", None)
    if tool is None:
        say("swipe did not start: " + dock.log.toPlainText().splitlines()[-1])
        save_and_quit()
        return

    def shoot():
        if tool.rendering and time.monotonic() < DEADLINE:
            QTimer.singleShot(300, shoot)
            return
        canvas = iface.mapCanvas()
        tool.set_position(canvas.viewport().width() * 0.45)
        QgsApplication.processEvents()
        ok = iface.mainWindow().grab().save(PNG_COMPARE)
        say(f"saved {PNG_COMPARE}" if ok else f"could not save {PNG_COMPARE}")
        dock.swipe_button.setChecked(False)
        QTimer.singleShot(1500, save_and_quit)

    QTimer.singleShot(1000, shoot)


def watchdog():
    if not state["saved"]:
        say("watchdog: saving what is on screen")
        save_and_quit()


QTimer.singleShot(1500, start)
QTimer.singleShot(480 * 1000, watchdog)
