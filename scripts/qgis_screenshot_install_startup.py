"""Run by ``qgis --code`` (scripts/qgis_screenshot_install.sh): open the panel of a plugin
without an engine, install the engine from a local wheel folder, save three screenshots."""
import os
import time

from qgis.core import QgsApplication, QgsProject
from qgis.PyQt.QtCore import QTimer
from qgis.PyQt.QtGui import QGuiApplication
from qgis.utils import iface, plugins

WHEELS = os.environ["SPARSEVIT_SHOT_WHEELS"]
PNG_FIRST = os.environ["SPARSEVIT_SHOT_PNG_FIRST"]
PNG_PROGRESS = os.environ["SPARSEVIT_SHOT_PNG_PROGRESS"]
PNG_DONE = os.environ["SPARSEVIT_SHOT_PNG_DONE"]
DEADLINE = time.monotonic() + 780
state = {"dialog": None, "progress_saved": False}


def say(msg):
    print(f"[screenshot] {msg}", flush=True)


def grab(path):
    # the whole screen: the install dialog is a window of its own
    QgsApplication.processEvents()
    ok = QGuiApplication.primaryScreen().grabWindow(0).save(path)
    say(f"saved {path}" if ok else f"could not save {path}")
    return ok


def quit_qgis(code=0):
    QgsProject.instance().setDirty(False)
    QgsApplication.exit(code)


def start():
    plugin = plugins.get("sparsevit_qgis")
    if plugin is None:
        say("the plugin is not loaded")
        quit_qgis(1)
        return
    win = iface.mainWindow()
    win.move(0, 0)
    win.resize(1600, 1000)
    plugin.toggle_action.setChecked(True)
    win.resizeDocks([plugin.dock], [520], 1)
    state["dock"] = plugin.dock
    QTimer.singleShot(2000, first_open)


def first_open():
    dock = state["dock"]
    say("engine label: " + dock.engine_label.text())
    grab(PNG_FIRST)
    dialog = dock.open_engine_installer()
    dialog.move(520, 120)
    dialog.offline.setChecked(True)
    dialog.wheel_folder.setFilePath(WHEELS)
    state["dialog"] = dialog
    if dialog.install() is None:
        say("the install did not start: " + dialog.state_label.text())
        quit_qgis(1)
        return
    QTimer.singleShot(500, poll)


def poll():
    dialog = state["dialog"]
    log = dialog.log.toPlainText()
    if not state["progress_saved"] and "[3/" in log:
        state["progress_saved"] = grab(PNG_PROGRESS)
    if dialog.outcome is None and time.monotonic() < DEADLINE:
        QTimer.singleShot(500, poll)
        return
    outcome = dialog.outcome
    say("outcome: " + (outcome.message if outcome else "timed out"))
    QTimer.singleShot(3000, lambda: finish(outcome))


def finish(outcome):
    say("engine label: " + state["dock"].engine_label.text())
    grab(PNG_DONE)
    QTimer.singleShot(200, lambda: quit_qgis(0 if outcome is not None and outcome.ok else 1))


QTimer.singleShot(1500, start)
