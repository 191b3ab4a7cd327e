"""The SparseViT Processing provider (id ``sparsevit``)."""
from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtCore import QCoreApplication
from qgis.PyQt.QtGui import QIcon

from .algorithms import all_algorithms

ICON = Path(__file__).resolve().parents[1] / "icons" / "icon.svg"


class SparseVitProvider(QgsProcessingProvider):
    def id(self) -> str:
        return "sparsevit"

    def name(self) -> str:
        return QCoreApplication.translate("SparseViT", "SparseViT")

    def longName(self) -> str:  # noqa: N802
        return QCoreApplication.translate("SparseViT", "SparseViT land-cover mapping")

    def icon(self) -> QIcon:
        return QIcon(str(ICON))

    def svgIconPath(self) -> str:  # noqa: N802
        return str(ICON)

    def loadAlgorithms(self) -> None:  # noqa: N802
        for alg in all_algorithms():
            self.addAlgorithm(alg)
