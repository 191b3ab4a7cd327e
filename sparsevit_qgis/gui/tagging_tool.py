"""The tagging map tool: click a tile-grid cell, or drag over cells, to toggle the current class
in their ``classes`` field.

- click: toggles the current class in that cell;
- drag: every cell the pointer passes over; Ctrl+drag: every cell in the rectangle. The class
  is removed when all those cells have it already, else added to all of them;
- Shift with a click or drag: always removes the class;
- keys 1..9 choose the current class (the order of the class scheme), Ctrl+Z undoes.

Each click or drag is one edit command in the layer's edit buffer (``core/tags.py``), so QGIS's
Undo (Ctrl+Z, Edit ▸ Undo, the layer's undo stack) takes it back whole.
"""
from __future__ import annotations

from typing import Sequence

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeatureRequest,
    QgsGeometry,
    QgsPointXY,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.gui import QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor

from ..core.tags import GRID_FIELD, is_grid_layer, toggle_tag

DRAG_PIXELS = 4  # a press and release further apart than this is a drag, not a click


class TaggingTool(QgsMapTool):
    #: the current class changed (its index in :attr:`classes`)
    class_changed = pyqtSignal(int)
    #: cells were tagged or untagged (how many changed)
    tagged = pyqtSignal(int)
    #: a message for the user (no grid layer, no class...)
    message = pyqtSignal(str)

    def __init__(self, canvas, layer: QgsVectorLayer | None = None, classes: Sequence[str] = (),
                 field: str = GRID_FIELD):
        super().__init__(canvas)
        self.field = field
        self._layer: QgsVectorLayer | None = None
        self.classes: list[str] = []
        self.current = 0
        self._press = None         # QPoint of the left-button press
        self._path: list[QgsPointXY] = []
        self._dragging = False
        self._band: QgsRubberBand | None = None
        self._band_kind = None
        self.setCursor(Qt.CrossCursor)
        self.set_layer(layer)
        self.set_classes(classes)

    # --- state ---------------------------------------------------------------------------
    def layer(self) -> QgsVectorLayer | None:
        try:
            if self._layer is not None:
                self._layer.id()  # a deleted layer raises
        except RuntimeError:
            self._layer = None
        return self._layer

    def set_layer(self, layer: QgsVectorLayer | None) -> None:
        self._layer = layer if is_grid_layer(layer) else None

    def set_classes(self, names: Sequence[str]) -> None:
        """The classes the number keys choose; the current class stays when it is still there."""
        before = self.current_class()
        self.classes = [str(n) for n in names]
        if before in self.classes:
            self.current = self.classes.index(before)
        else:
            self.current = min(self.current, max(0, len(self.classes) - 1))
        self.class_changed.emit(self.current)

    def current_class(self) -> str | None:
        return self.classes[self.current] if 0 <= self.current < len(self.classes) else None

    def set_current(self, index: int) -> bool:
        if not 0 <= index < len(self.classes):
            return False
        changed = index != self.current
        self.current = index
        if changed:
            self.class_changed.emit(index)
        return True

    # --- cells ---------------------------------------------------------------------------
    def _to_layer(self, geometry: QgsGeometry, layer: QgsVectorLayer) -> QgsGeometry:
        src = self.canvas().mapSettings().destinationCrs()
        if src.isValid() and layer.crs().isValid() and src != layer.crs():
            geometry = QgsGeometry(geometry)
            geometry.transform(QgsCoordinateTransform(src, layer.crs(), QgsProject.instance()))
        return geometry

    def cells_touching(self, geometry: QgsGeometry) -> list[int]:
        """Ids of the grid cells ``geometry`` (in the canvas CRS) touches."""
        layer = self.layer()
        if layer is None or geometry is None or geometry.isEmpty():
            return []
        geometry = self._to_layer(geometry, layer)
        bbox = geometry.boundingBox()
        if bbox.width() == 0 or bbox.height() == 0:
            bbox.grow(1e-9 * max(1.0, abs(bbox.xMinimum()) + abs(bbox.yMinimum())))
        request = QgsFeatureRequest().setFilterRect(bbox)
        request.setSubsetOfAttributes([])
        engine = QgsGeometry.createGeometryEngine(geometry.constGet())
        engine.prepareGeometry()
        return [f.id() for f in layer.getFeatures(request)
                if f.hasGeometry() and engine.intersects(f.geometry().constGet())]

    def cells_at(self, point: QgsPointXY) -> list[int]:
        return self.cells_touching(QgsGeometry.fromPointXY(QgsPointXY(point)))

    def cells_along(self, points: Sequence[QgsPointXY]) -> list[int]:
        points = [QgsPointXY(p) for p in points]
        if len(points) < 2:
            return self.cells_at(points[0]) if points else []
        return self.cells_touching(QgsGeometry.fromPolylineXY(points))

    def cells_in(self, rect: QgsRectangle) -> list[int]:
        return self.cells_touching(QgsGeometry.fromRect(rect))

    def apply(self, fids: Sequence[int], remove: bool = False) -> int:
        """Toggle (or, ``remove``, take away) the current class in the cells; one undo step."""
        layer, name = self.layer(), self.current_class()
        if layer is None:
            self.message.emit("Choose a tile grid to tag (Make tile grid, or a layer with a "
                              "'classes' field).")
            return 0
        if name is None:
            self.message.emit("Add classes to the class scheme first.")
            return 0
        if not fids:
            return 0
        try:
            changed = toggle_tag(layer, fids, name, False if remove else None, self.classes, self.field)
        except RuntimeError as exc:
            self.message.emit(str(exc))
            return 0
        self.tagged.emit(changed)
        return changed

    def undo(self) -> bool:
        layer = self.layer()
        if layer is None or not layer.undoStack().canUndo():
            return False
        layer.undoStack().undo()
        layer.triggerRepaint()
        return True

    # --- rubber band ------------------------------------------------------------------------
    def _show(self, geometry: QgsGeometry, polygon: bool) -> None:
        kind = QgsWkbTypes.PolygonGeometry if polygon else QgsWkbTypes.LineGeometry
        if self._band is None or self._band_kind != kind:
            self._clear_band()
            self._band = QgsRubberBand(self.canvas(), kind)
            self._band_kind = kind
            color = QColor("#ff00ff")
            self._band.setStrokeColor(color)
            color.setAlpha(40)
            self._band.setFillColor(color)
            self._band.setWidth(2)
        self._band.setToGeometry(geometry, None)

    def _clear_band(self) -> None:
        if self._band is not None:
            self._band.reset()
            self.canvas().scene().removeItem(self._band)
            self._band = None

    # --- events --------------------------------------------------------------------------
    def canvasPressEvent(self, e):  # noqa: N802
        if e.button() != Qt.LeftButton:
            return
        self._press = e.pos()
        self._path = [e.mapPoint()]
        self._dragging = False

    def canvasMoveEvent(self, e):  # noqa: N802
        if self._press is None or not (e.buttons() & Qt.LeftButton):
            return
        if not self._dragging and (e.pos() - self._press).manhattanLength() <= DRAG_PIXELS:
            return
        self._dragging = True
        self._path.append(e.mapPoint())
        if e.modifiers() & Qt.ControlModifier:
            self._show(QgsGeometry.fromRect(QgsRectangle(self._path[0], e.mapPoint())), True)
        else:
            self._show(QgsGeometry.fromPolylineXY(self._path), False)

    def canvasReleaseEvent(self, e):  # noqa: N802
        if e.button() != Qt.LeftButton or self._press is None:
            return
        press, self._press = self._press, None
        dragging = self._dragging or (e.pos() - press).manhattanLength() > DRAG_PIXELS
        self._dragging = False
        self._clear_band()
        remove = bool(e.modifiers() & Qt.ShiftModifier)
        if not dragging:
            fids = self.cells_at(e.mapPoint())
        elif e.modifiers() & Qt.ControlModifier:
            fids = self.cells_in(QgsRectangle(self._path[0], e.mapPoint()))
        else:
            fids = self.cells_along(self._path + [e.mapPoint()])
        self._path = []
        self.apply(fids, remove)

    def keyPressEvent(self, e):  # noqa: N802
        key, mods = e.key(), e.modifiers()
        if Qt.Key_1 <= key <= Qt.Key_9 and not mods & (Qt.ControlModifier | Qt.AltModifier | Qt.MetaModifier):
            if self.set_current(key - Qt.Key_1):
                e.accept()
                return
        if key == Qt.Key_Z and mods & Qt.ControlModifier and self.undo():
            e.accept()
            return
        if key == Qt.Key_Escape and self._press is not None:
            self._press, self._path, self._dragging = None, [], False
            self._clear_band()
            e.accept()
            return
        e.ignore()

    def deactivate(self):
        self._press, self._path, self._dragging = None, [], False
        self._clear_band()
        super().deactivate()
