"""The panel fits a narrow dock. Analysts dock it at ~350-450 px; its content was wider than that,
so the panel scrolled sideways and cut things off at the right edge: the engine message, the input
pickers, the bundled model's path, the row of view buttons after "Swipe"."""
from __future__ import annotations

from qgis.core import QgsApplication
from qgis.gui import QgsCollapsibleGroupBox
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QAbstractScrollArea, QWidget

DOCK_WIDTH = 380
SAFE_NAME = "S2B_MSIL2A_20230615T105619_N0509_R094_T30SYJ_20230615T143221"


def _inside_a_scroll_area(widget: QWidget, body: QWidget) -> bool:
    """Cell widgets of a table and the like: their own scroll area shows them."""
    parent = widget.parentWidget()
    while parent is not None and parent is not body:
        if isinstance(parent, QAbstractScrollArea):
            return True
        parent = parent.parentWidget()
    return False


def _cut_off(dock) -> list[str]:
    """The visible widgets of the panel that reach past the right edge of its viewport."""
    body, viewport = dock.scroll.widget(), dock.scroll.viewport()
    out = []
    for widget in body.findChildren(QWidget):
        if not widget.isVisibleTo(body) or _inside_a_scroll_area(widget, body):
            continue
        right = widget.mapTo(viewport, widget.rect().topRight()).x()
        if right >= viewport.width():
            text = widget.text() if callable(getattr(widget, "text", None)) else ""
            out.append(f"{type(widget).__name__} {widget.objectName()!r} {str(text)[:40]!r}: "
                       f"right edge {right}, minimum width {widget.minimumSizeHint().width()}")
    return out


def _check_fits(dock) -> None:
    QgsApplication.processEvents()
    body, viewport = dock.scroll.widget(), dock.scroll.viewport()
    assert dock.width() == DOCK_WIDTH  # the panel can be docked that narrow
    assert body.minimumSizeHint().width() <= viewport.width(), _cut_off(dock)
    assert body.width() <= viewport.width(), _cut_off(dock)
    assert dock.scroll.horizontalScrollBar().maximum() == 0  # nothing to scroll sideways
    assert dock.scroll.horizontalScrollBarPolicy() == Qt.ScrollBarAlwaysOff
    assert not _cut_off(dock)


def test_the_panel_fits_a_380_px_dock(new_dock, tmp_path, monkeypatch):
    """Every section unfolded, with a long engine message, a deep model path, a long scene name
    in the summary and a long path in an error: all of it wraps within 380 px, no horizontal
    scroll bar."""
    from sparsevit_qgis.core import settings
    from sparsevit_qgis.core.engine_locator import EngineInfo
    from sparsevit_qgis.gui import dock as dock_module
    deep = tmp_path / ("profiles_" * 6) / "default" / "python" / "plugins" / "sparsevit_qgis" / "resources" \
        / "models" / "default"
    deep.mkdir(parents=True)
    (deep / "bundle.json").write_text("{}")
    monkeypatch.setattr(settings, "default_model_path", lambda: deep)
    monkeypatch.setattr(dock_module, "locate_engine",
                        lambda validate=False, **_: EngineInfo(None, False, message="no engine found"))
    dock = new_dock()
    dock.refresh_engine_label()
    assert dock.engine_label.text().startswith("Engine: not installed. Press Install engine…")
    dock.model_input.refresh_trained()
    dock.model_input._sync()  # fills the default model label
    assert str(deep.name) in dock.model_input.default_label.text()
    dock.summary_label.setText(f"{SAFE_NAME}: 10980 x 10980 px on CPU (2 threads) in 812.4 s")
    dock.show_error(f"{deep / SAFE_NAME}.SAFE: no Sentinel-2 bands found. Pass --band-order.")
    dock.export_format.setCurrentIndex(dock.export_format.findData("gpkg"))  # its polygon rows too
    for box in dock.findChildren(QgsCollapsibleGroupBox):
        box.setCollapsed(False)
    dock.resize(DOCK_WIDTH, 900)
    dock.show()
    try:
        _check_fits(dock)
        dock.train_section.labels_layer.setChecked(True)  # the labels-layer rows instead of the grid's
        _check_fits(dock)
    finally:
        dock.hide()


def test_wrapped_check_boxes_and_labels_behave_as_before(qgis_app):
    """A wrapped check box toggles on a click on its second line too; a label that may break a
    path keeps the path as set in text() and in a copy of its selection."""
    from qgis.PyQt.QtCore import QPoint
    from qgis.PyQt.QtGui import QGuiApplication
    from qgis.PyQt.QtTest import QTest
    from qgis.PyQt.QtWidgets import QLabel

    from sparsevit_qgis.gui.narrow import ZWSP, WrapCheckBox, WrapLabel
    box = WrapCheckBox("Use the class scheme below (else: the distinct field values)")
    one_line = box.heightForWidth(10_000)
    assert box.heightForWidth(150) > one_line  # wraps
    assert box.minimumSizeHint().width() < 150 < box.sizeHint().width()
    box.resize(150, box.heightForWidth(150))
    box.show()
    QTest.mouseClick(box, Qt.LeftButton, Qt.NoModifier, QPoint(100, box.height() - 4))
    assert box.isChecked()
    box.hide()

    path = "/tmp/runs/S2B_MSIL2A_20230615T105619.SAFE"
    label = WrapLabel(path)
    label.setTextInteractionFlags(Qt.TextSelectableByMouse)
    assert label.text() == path and ZWSP in QLabel.text(label)
    label.setSelection(0, len(QLabel.text(label)))
    label._copy()
    assert QGuiApplication.clipboard().text() == path
