"""Swipe compare: left of the cursor the canvas shows only the imagery (the run's true-colour
layer and the basemap), right of it the map as it is, so a class boundary can be checked
against the image under it without toggling layers.

The imagery is rendered once per canvas view into an image (a map renderer job in the
background, as the canvas itself does) and drawn by a canvas item over the left part.
"""
from __future__ import annotations

from qgis.core import QgsMapLayer, QgsMapRendererParallelJob
from qgis.gui import QgsMapCanvas, QgsMapCanvasItem, QgsMapTool
from qgis.PyQt.QtCore import QPointF, QRectF, Qt
from qgis.PyQt.QtGui import QColor, QImage, QPen


class _SwipeItem(QgsMapCanvasItem):
    def __init__(self, canvas: QgsMapCanvas):
        super().__init__(canvas)
        self._canvas = canvas  # QgsMapCanvasItem keeps its canvas in a C++-only member
        self.image: QImage | None = None
        self.x = canvas.width() // 2
        self.setZValue(1000)

    def paint(self, painter, option=None, widget=None):  # noqa: D401 - Qt
        if self.image is None or self.image.isNull():
            return
        w, h = self._canvas.viewport().width(), self._canvas.viewport().height()
        x = max(0, min(int(self.x), w))
        ratio = self.image.width() / max(1, w)
        painter.save()
        painter.resetTransform()
        painter.drawImage(QRectF(0, 0, x, h), self.image, QRectF(0, 0, x * ratio, h * ratio))
        painter.setPen(QPen(QColor(255, 255, 255), 2))
        painter.drawLine(QPointF(x, 0), QPointF(x, h))
        painter.restore()

    def boundingRect(self):  # noqa: N802 - Qt
        return QRectF(-1e6, -1e6, 2e6, 2e6)


class SwipeTool(QgsMapTool):
    """Active while swiping; ``layers`` are the imagery shown left of the swipe line."""

    def __init__(self, canvas: QgsMapCanvas, layers: list[QgsMapLayer]):
        super().__init__(canvas)
        self.layers = [lyr for lyr in layers if lyr is not None]
        self.item: _SwipeItem | None = None
        self._job: QgsMapRendererParallelJob | None = None
        self.setCursor(Qt.SplitHCursor)

    # --- rendering of the imagery --------------------------------------------------------
    def render(self) -> None:
        if self._job is not None:
            self._job.cancelWithoutBlocking()
        ms = self.canvas().mapSettings()
        ms.setLayers(self.layers)
        ms.setBackgroundColor(QColor(0, 0, 0, 0))
        self._job = QgsMapRendererParallelJob(ms)
        self._job.finished.connect(self._rendered)
        self._job.start()

    def _rendered(self) -> None:
        job = self.sender() or self._job
        if job is not self._job or self.item is None:
            return
        self.item.image = job.renderedImage()
        self._job = None
        self.item.update()

    @property
    def rendering(self) -> bool:
        return self._job is not None

    # --- QgsMapTool ------------------------------------------------------------------------
    def activate(self) -> None:
        super().activate()
        if self.item is None:
            self.item = _SwipeItem(self.canvas())
        self.canvas().extentsChanged.connect(self.render)
        self.render()

    def deactivate(self) -> None:
        try:
            self.canvas().extentsChanged.disconnect(self.render)
        except TypeError:
            pass
        if self._job is not None:
            self._job.cancel()
            self._job = None
        if self.item is not None:
            self.canvas().scene().removeItem(self.item)
            self.item = None
        super().deactivate()

    def set_position(self, x: float) -> None:
        if self.item is not None:
            self.item.x = x
            self.item.update()

    def canvasMoveEvent(self, event):  # noqa: N802 - Qt
        self.set_position(event.pos().x())

    def canvasPressEvent(self, event):  # noqa: N802 - Qt
        self.set_position(event.pos().x())
