"""Run by ``qgis --code`` (scripts/qgis_screenshot_tagging.sh): the Train section of the SparseViT
panel driven like a user would, with screenshots of the main window.

1. the sample scene as true colour, the panel open with its Train section expanded;
2. **Make tile grid** (the panel's button: ``sparsevit grid`` through the engine task);
3. the class scheme set to water / land in the class-scheme editor (rename, recolour, remove);
4. **Tag cells** (the panel's button) activates the tagging map tool; about 24 cells are tagged
   by mouse events on the canvas sent to the tool (clicks, drags along rows; keys 1/2 choose the
   class), each cell's tags taken from the reference mask ``Spain_7370579_LabelHand.tif``
   (-1 nodata, 0 not water, 1 water): a class when it covers >= 5 % of the cell's valid pixels;
5. screenshot ``qgis_tagging.png`` with the tool active (a drag held down, its rubber band
   showing) over the tagged grid;
6. **Train** (the panel's button: ``sparsevit fit`` as a QgsTask) with 2 epochs, 2 map-network
   epochs, 2 threads; waits for it (15 min at most);
7. screenshot ``qgis_fit_map.png``: the trained map's layer group, styled in the two classes,
   the grid semi-transparent on top.

Runs inside QGIS: no engine imports here (GDAL and numpy come with QGIS)."""
import os
import time
import traceback

from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsContrastEnhancement,
    QgsMultiBandColorRenderer,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsCollapsibleGroupBox, QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt, QTimer
from qgis.PyQt.QtGui import QColor, QKeyEvent
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface, plugins

S2 = os.environ["SPARSEVIT_SHOT_S2"]
LABELS = os.environ["SPARSEVIT_SHOT_LABELS"]
RUNS = os.environ["SPARSEVIT_SHOT_RUNS"]
PNG_TAGGING = os.environ["SPARSEVIT_SHOT_PNG_TAGGING"]
PNG_MAP = os.environ["SPARSEVIT_SHOT_PNG_MAP"]
GRID_TIMEOUT = 300.0
FIT_TIMEOUT = float(os.environ.get("SPARSEVIT_SHOT_FIT_TIMEOUT", 900))
CELLS_WANTED = 24
MIN_SHARE = 0.05  # a class tags a cell when it covers at least this share of its valid pixels
WATER, LAND = "water", "land"
COLORS = {WATER: "#1f78b4", LAND: "#d9b26f"}
T0 = time.monotonic()
state = {"dock": None, "train": None, "layer": None, "grid": None, "deadline": 0.0, "exit": 1,
         "expected": {}, "pending": None, "last_status": ""}


def say(msg):
    print(f"[tagging-shot {time.monotonic() - T0:6.1f} s] {msg}", flush=True)


def guarded(step):
    """A QTimer step that, on an exception, says so, saves what is on screen and quits (instead
    of leaving QGIS waiting behind its Python error dialog)."""
    def run(*args):
        try:
            return step(*args)
        except Exception:  # noqa: BLE001
            say(f"{step.__name__} raised:\n{traceback.format_exc()}")
            for path in (PNG_TAGGING, PNG_MAP):
                if not os.path.exists(path):
                    iface.mainWindow().grab().save(path)
                    say(f"saved what is on screen to {path}")
                    break
            fail(f"{step.__name__} raised")
    run.__name__ = step.__name__
    return run


def quit_qgis(code=0):
    QgsProject.instance().setDirty(False)
    QgsApplication.exit(code)


def settle(ms=1500):
    """Let the canvas and the panel redraw (layouts, labels, rendering)."""
    end = time.monotonic() + ms / 1000.0
    while time.monotonic() < end:
        QgsApplication.processEvents()
        time.sleep(0.02)
    iface.mapCanvas().waitWhileRendering()
    QgsApplication.processEvents()


def fit_canvas():
    """The whole scene on the canvas, with a small margin, as the canvas is now sized."""
    canvas = iface.mapCanvas()
    canvas.setExtent(state["layer"].extent())
    canvas.zoomByFactor(1.04)
    canvas.refresh()


def grab(path):
    iface.messageBar().clearWidgets()  # "Task complete" notices would cover the map
    settle(800)
    fit_canvas()  # after the message bar went, so the canvas has its final size
    settle()
    ok = iface.mainWindow().grab().save(path)
    say(f"saved {path}" if ok else f"could not save {path}")
    return ok


def fail(msg):
    say("FAILED: " + msg)
    dock = state["dock"]
    if dock is not None:
        say("panel log (last lines):\n" + "\n".join(dock.log.toPlainText().splitlines()[-25:]))
        if dock.running:
            dock.cancel()
    QTimer.singleShot(500, lambda: quit_qgis(1))


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


def show_section(dock, sections):
    """Fold every group of the panel but ``sections`` (unfolded) and the groups inside them."""
    for box in dock.findChildren(QgsCollapsibleGroupBox):
        inside = any(box is s or s.isAncestorOf(box) for s in sections)
        box.setCollapsed(not inside)


# --- 1. the window, the scene, the panel ---------------------------------------------------
@guarded
def start():
    plugin = plugins.get("sparsevit_qgis")
    if plugin is None:
        fail("the plugin is not loaded: check the profile's [PythonPlugins] section")
        return
    win = iface.mainWindow()
    win.move(0, 0)
    win.resize(1600, 1000)
    browser = win.findChild(QDockWidget, "Browser")
    if browser is not None:
        browser.hide()
    layer = rgb_layer()
    if not layer.isValid():
        fail(f"cannot open {S2}")
        return
    QgsProject.instance().addMapLayer(layer)
    state["layer"] = layer
    canvas = iface.mapCanvas()
    canvas.setDestinationCrs(layer.crs())
    canvas.setExtent(layer.extent())
    plugin.toggle_action.setChecked(True)
    dock = plugin.dock
    state["dock"] = dock
    layers_dock = win.findChild(QDockWidget, "Layers")
    if layers_dock is not None:
        win.resizeDocks([layers_dock], [250], Qt.Horizontal)
    win.resizeDocks([dock], [500], Qt.Horizontal)
    train = dock.train_section
    state["train"] = train
    show_section(dock, [train])
    train.raster_input.layer_combo.setLayer(layer)
    train.output_dir.setFilePath(RUNS)
    train.labels_grid.setChecked(True)
    train.start_combo.setCurrentIndex(train.start_combo.findData("default"))
    train.epochs_spin.setValue(2)
    train.refine_spin.setValue(2)
    train.threads_spin.setValue(2)
    train.holdout_spin.setValue(0.2)
    train.predict_check.setChecked(True)
    say("Make tile grid (sparsevit grid through the panel)")
    train.make_grid_button.click()
    if not dock.running:
        fail("Make tile grid did not start: " + (dock.log.toPlainText().splitlines() or ["(empty log)"])[-1])
        return
    state["deadline"] = time.monotonic() + GRID_TIMEOUT
    QTimer.singleShot(500, wait_grid)


@guarded
def wait_grid():
    dock, train = state["dock"], state["train"]
    if dock.running:
        if time.monotonic() > state["deadline"]:
            fail("the grid did not finish in time")
            return
        QTimer.singleShot(500, wait_grid)
        return
    grid = train.grid_layer()
    if grid is None:
        fail("no grid layer after Make tile grid; " + dock.stage_label.text())
        return
    state["grid"] = grid
    say(f"grid: {grid.featureCount()} cells, {grid.source()}")
    set_scheme()
    QTimer.singleShot(300, start_tagging)


# --- 2. the class scheme ------------------------------------------------------------------
def set_scheme():
    """water / land through the editor's own operations (what its buttons call)."""
    editor = state["train"].scheme_editor
    names = editor.names
    say(f"class scheme before: {names}")
    if WATER not in names:
        editor.rename_class(names[0], WATER)
    names = editor.names
    if LAND not in names:
        editor.rename_class(next(n for n in names if n != WATER), LAND)
    for name in [n for n in editor.names if n not in (WATER, LAND)]:
        editor.remove_class(name)
    if editor.names != [WATER, LAND]:
        editor.move_class(WATER, -1)
    for name, color in COLORS.items():
        editor.recolour_class(name, color)
    say(f"class scheme now: {editor.names}")


# --- 3. tags from the reference mask -------------------------------------------------------
def expected_tags(grid, tile):
    """{feature id: set of classes} for the ~24 cells to tag; cells read from the mask by their
    pixel offsets (the grid's ``row``/``col`` fields)."""
    ds = gdal.Open(LABELS)
    mask = ds.GetRasterBand(1).ReadAsArray()
    ds = None
    cells = []
    for f in grid.getFeatures():
        r, c = int(f["row"]), int(f["col"])
        window = mask[r:r + tile, c:c + tile]
        valid = int((window >= 0).sum())
        if valid == 0:
            continue
        water = float((window == 1).sum()) / valid
        land = float((window == 0).sum()) / valid
        tags = {name for name, share in ((WATER, water), (LAND, land)) if share >= MIN_SHARE}
        if tags:
            cells.append((f.id(), r // tile, c // tile, water, tags))
    # a mix: the land-only cells (least water first), then the cells with the most water
    land_only = sorted((x for x in cells if x[4] == {LAND}), key=lambda x: x[3])
    watery = sorted((x for x in cells if WATER in x[4]), key=lambda x: -x[3])
    water_only = [x for x in watery if x[4] == {WATER}]
    n_land = min(len(land_only), CELLS_WANTED // 2 + 3)
    picked = land_only[:n_land]
    picked += water_only[:max(0, (CELLS_WANTED - n_land) // 2)]
    picked += [x for x in watery if x not in picked][:CELLS_WANTED - len(picked)]
    return {fid: (row, col, tags) for fid, row, col, _w, tags in picked}


def runs_of(cells):
    """Horizontal runs of adjacent cells: [[(row, col), ...], ...] (a drag each, a click for one)."""
    out = []
    for row, col in sorted(cells):
        if out and out[-1][-1][0] == row and out[-1][-1][1] == col - 1:
            out[-1].append((row, col))
        else:
            out.append([(row, col)])
    return out


def pixel(point):
    p = iface.mapCanvas().getCoordinateTransform().transform(point)
    return QPoint(int(round(p.x())), int(round(p.y())))


def mouse(kind, point, modifiers=Qt.NoModifier):
    buttons = Qt.NoButton if kind == QEvent.MouseButtonRelease else Qt.LeftButton
    return QgsMapMouseEvent(iface.mapCanvas(), kind, pixel(point), Qt.LeftButton, buttons, modifiers)


@guarded
def start_tagging():
    train, grid = state["train"], state["grid"]
    canvas = iface.mapCanvas()
    iface.messageBar().clearWidgets()
    settle(500)
    fit_canvas()
    settle(800)
    say("Tag cells (the panel's map tool)")
    train.tag_button.click()
    tool = train.tool
    if tool is None or canvas.mapTool() is not tool:
        fail("the tagging tool is not the canvas's map tool")
        return
    tile = int(grid.customProperty("sparsevit/tile") or 64)
    expected = expected_tags(grid, tile)
    state["expected"] = expected
    centers = {}
    for f in grid.getFeatures():
        if f.id() in expected:
            centers[(expected[f.id()][0], expected[f.id()][1])] = f.geometry().centroid().asPoint()
            state["cell_width"] = f.geometry().boundingBox().width()
    say(f"tagging {len(expected)} cells: "
        + ", ".join(f"r{r}c{c}={'+'.join(sorted(t))}" for r, c, t in sorted(expected.values())))
    steps = []
    for key, name in ((Qt.Key_1, WATER), (Qt.Key_2, LAND)):
        cells = [(r, c) for r, c, tags in expected.values() if name in tags]
        steps.append(("key", key, name))
        steps += [("run", run) for run in runs_of(cells)]
    # the screenshot is taken with a drag held down (its rubber band shows): the longest run
    # of the last class, moved to the end
    first = max(i for i, s in enumerate(steps) if s[0] == "key")
    longest = max(range(first + 1, len(steps)), key=lambda i: len(steps[i][1]))
    steps.append(steps.pop(longest))
    state["steps"], state["centers"], state["hold"] = steps, centers, len(steps) - 1
    QTimer.singleShot(100, lambda: tag_step(0))


@guarded
def tag_step(i):
    train, tool = state["train"], state["train"].tool
    steps, centers = state["steps"], state["centers"]
    if i >= len(steps):
        finish_tagging()
        return
    step = steps[i]
    if step[0] == "key":
        event = QKeyEvent(QEvent.KeyPress, step[1], Qt.NoModifier)
        tool.keyPressEvent(event)
        say(f"key {step[1] - Qt.Key_0}: current class {tool.current_class()} "
            f"(panel: {train.class_combo.currentText()})")
    else:
        points = [QgsPointXY(centers[rc]) for rc in step[1]]
        tool.canvasPressEvent(mouse(QEvent.MouseButtonPress, points[0]))
        if len(points) > 1 or i == state["hold"]:
            # along the row's centre line, cell centre to cell centre; a single cell held down
            # moves a little inside it so it reads as a drag in progress
            moves = points[1:] or [QgsPointXY(points[0].x() + 0.3 * state["cell_width"], points[0].y())]
            for p in moves:
                tool.canvasMoveEvent(mouse(QEvent.MouseMove, p))
        if i == state["hold"]:
            state["pending"] = points
            QTimer.singleShot(50, lambda: shot_tagging(i))
            return
        tool.canvasReleaseEvent(mouse(QEvent.MouseButtonRelease, points[-1]))
    QTimer.singleShot(60, lambda: tag_step(i + 1))


@guarded
def shot_tagging(i):
    dock, train = state["dock"], state["train"]
    dock.scroll.ensureWidgetVisible(train.status_label, 0, 10)
    dock.scroll.ensureWidgetVisible(train.make_grid_button, 0, 10)
    grab(PNG_TAGGING)
    tool = train.tool
    tool.canvasReleaseEvent(mouse(QEvent.MouseButtonRelease, state["pending"][-1]))
    state["pending"] = None
    QTimer.singleShot(60, lambda: tag_step(i + 1))


@guarded
def finish_tagging():
    from sparsevit_qgis.core.tags import split_tags, tag_counts
    train, grid = state["train"], state["grid"]
    wrong = []
    for f in grid.getFeatures():
        got = set(split_tags(f["classes"]))
        want = state["expected"].get(f.id(), (0, 0, set()))[2]
        if got != want:
            wrong.append(f"fid {f.id()}: {sorted(got)} (wanted {sorted(want)})")
    say(f"tags: {tag_counts(grid)}; panel: {train.tag_counts_label.text()}; "
        f"undo steps {grid.undoStack().count()}")
    if wrong:
        say("cells whose tags differ from the reference: " + "; ".join(wrong))
    train.save_tags_button.click()
    say("Train (sparsevit fit through the panel's Train button)")
    train.train_button.click()
    if not state["dock"].running:
        fail("Train did not start: " + (state["dock"].log.toPlainText().splitlines() or ["(empty log)"])[-1])
        return
    state["deadline"] = time.monotonic() + FIT_TIMEOUT
    state["fit_t0"] = time.monotonic()
    QTimer.singleShot(1000, wait_fit)


# --- 4. training and the map -----------------------------------------------------------------
@guarded
def wait_fit():
    dock, train = state["dock"], state["train"]
    status = train.status_label.text()
    if status != state["last_status"]:
        state["last_status"] = status
        say(f"train: {status} | {dock.stage_label.text()}")
    if dock.running:
        if time.monotonic() > state["deadline"]:
            say("training ran past the time limit; cancelling")
            dock.cancel()
            state["deadline"] = float("inf")
        QTimer.singleShot(1000, wait_fit)
        return
    say(f"training ended after {time.monotonic() - state['fit_t0']:.0f} s: {train.status_label.text()} "
        f"| {dock.stage_label.text()}")
    run = dock.last_run
    if run is None or run.main_map is None:
        grab(PNG_MAP)
        fail("no map layer after training")
        return
    say("panel log (last lines):\n" + "\n".join(dock.log.toPlainText().splitlines()[-12:]))
    say(f"map group '{run.group.name()}': "
        + ", ".join(f"{role}: {lyr.name()}" for role, lyr in run.layers.items()))
    renderer = run.main_map.renderer()
    classes = getattr(renderer, "classes", lambda: [])()
    say("map legend: " + ", ".join(f"{c.value}={c.label} {QColor(c.color).name()}" for c in classes))
    grid = state["grid"]
    grid.setOpacity(0.35)
    grid.triggerRepaint()
    iface.setActiveLayer(run.main_map)
    show_section(dock, [train, dock.summary_label.parentWidget()])  # and the results
    dock.export_box.setCollapsed(True)
    settle(500)
    dock.scroll.ensureWidgetVisible(dock.summary_label, 0, 10)
    dock.scroll.ensureWidgetVisible(train.train_button, 0, 10)
    ok = grab(PNG_MAP)
    state["exit"] = 0 if ok else 1
    say(f"done in {time.monotonic() - T0:.0f} s")
    QTimer.singleShot(300, lambda: quit_qgis(state["exit"]))


@guarded
def watchdog():
    say("watchdog: the run took too long; saving what is on screen")
    for path in (PNG_TAGGING, PNG_MAP):
        if not os.path.exists(path):
            iface.mainWindow().grab().save(path)
    fail("watchdog")


QTimer.singleShot(1500, start)
QTimer.singleShot(int((GRID_TIMEOUT + FIT_TIMEOUT + 240) * 1000), watchdog)
