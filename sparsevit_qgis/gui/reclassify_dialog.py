"""The Export box's "Reclassify…" dialog: each class of the land-cover layer and the class it
becomes. Classes given the same name merge (the first one's colour, editable); an empty name
makes a class no data. "From mapping" fills the names from a bundled mapping of the layer's
scheme (e.g. EuroSAT -> 5 coarse classes). The panel exports the result as a COG
(``sparsevit export --reclass``) and adds it to the map; the rules live in core/reclassify.py.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from qgis.gui import QgsColorButton, QgsFileWidget
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor, QIcon, QPixmap
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ..core.reclassify import (
    MappingChoice,
    ReclassRow,
    fitting_mappings,
    reclass_spec,
    rows_for,
    rows_from_mapping,
    same_name,
    targets,
)
from ..core.schemes import SchemeClass, SchemeError
from .inputs import tr

COL_CLASS, COL_TARGET, COL_COLOUR = 0, 1, 2


def _swatch(colour: str) -> QIcon:
    pix = QPixmap(12, 12)
    pix.fill(QColor(colour))
    return QIcon(pix)


class ReclassifyDialog(QDialog):
    def __init__(self, classes: Sequence[SchemeClass], layer_name: str = "",
                 output_path: str = "", mappings: Sequence[MappingChoice] | None = None,
                 parent=None):
        super().__init__(parent)
        self.setWindowTitle(tr("Reclassify {0}").format(layer_name) if layer_name else tr("Reclassify"))
        self.classes = list(classes)
        self.mappings = list(fitting_mappings(self.classes) if mappings is None else mappings)
        self._rows: list[ReclassRow] = rows_for(self.classes)
        self._filling = False
        self._name = "reclassified"

        intro = QLabel(tr("Name the class each class becomes. Classes with the same name merge "
                          "(with the first one's colour); an empty name makes a class no data."), self)
        intro.setWordWrap(True)
        self.mapping_combo = QComboBox(self)
        self.mapping_combo.addItem(tr("(edit the classes below)"), None)
        for m in self.mappings:
            self.mapping_combo.addItem(m.title, m.name)
        self.mapping_combo.setEnabled(bool(self.mappings))
        self.mapping_combo.setToolTip(tr("A bundled class mapping of this layer's scheme")
                                      if self.mappings else
                                      tr("No bundled mapping fits this layer's classes"))
        self.mapping_combo.currentIndexChanged.connect(self._mapping_chosen)

        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels([tr("Class"), tr("Becomes"), tr("Colour")])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_CLASS, QHeaderView.Stretch)
        header.setSectionResizeMode(COL_TARGET, QHeaderView.Stretch)
        header.setSectionResizeMode(COL_COLOUR, QHeaderView.ResizeToContents)
        self.table.itemChanged.connect(self._item_changed)

        self.summary = QLabel(self)
        self.output = QgsFileWidget(self)
        self.output.setStorageMode(QgsFileWidget.SaveFile)
        self.output.setFilter(tr("GeoTIFF (*.tif)"))
        self.output.setFilePath(output_path)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel, self)
        self.buttons.button(QDialogButtonBox.Ok).setText(tr("Reclassify"))
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.output.fileChanged.connect(lambda *_: self._update())

        form = QFormLayout()
        form.addRow(tr("From mapping"), self.mapping_combo)
        col = QVBoxLayout(self)
        col.addWidget(intro)
        col.addLayout(form)
        col.addWidget(self.table)
        col.addWidget(self.summary)
        out_form = QFormLayout()
        out_form.addRow(tr("File"), self.output)
        col.addLayout(out_form)
        col.addWidget(self.buttons)
        self.resize(460, 420)
        self._fill()

    # --- what the panel reads --------------------------------------------------------------
    def rows(self) -> list[ReclassRow]:
        return [ReclassRow(r.value, r.name, r.target, r.colour, r.target_value) for r in self._rows]

    def spec(self) -> dict:
        """The ``--reclass`` file (raises SchemeError when every class would be no data)."""
        return reclass_spec(self._rows, self._name)

    def output_path(self) -> str:
        path = self.output.filePath().strip()
        return str(Path(path).with_suffix(".tif")) if path else ""

    # --- edits (the widgets call these; so can tests) -------------------------------------
    def set_target(self, row: int, name: str) -> None:
        r = self._rows[row]
        r.target = name.strip()
        r.target_value = None  # the user's own class now, not the mapping's
        first = self._first_of(r.target)
        if first is not None and first is not r:
            r.colour = first.colour  # joins a class: takes its colour
        self._name = "reclassified"
        self._fill()

    def set_colour(self, row: int, colour: str) -> None:
        """Recolours the new class the row belongs to (all of its rows)."""
        target = self._rows[row].target
        for r in self._rows:
            if r is self._rows[row] or (target and same_name(r.target, target)):
                r.colour = QColor(colour).name()
        self._fill()

    def load_mapping(self, name: str) -> None:
        index = self.mapping_combo.findData(name)
        if index < 0:
            raise SchemeError(f"{name}: no such mapping for these classes.")
        self.mapping_combo.setCurrentIndex(index)

    # --- internals ------------------------------------------------------------------------
    def _first_of(self, target: str) -> ReclassRow | None:
        return next((r for r in self._rows if target and same_name(r.target, target)), None)

    def _mapping_chosen(self, index: int) -> None:
        name = self.mapping_combo.itemData(index)
        if not name:
            self._rows = rows_for(self.classes)
            self._name = "reclassified"
        else:
            choice = next(m for m in self.mappings if m.name == name)
            self._rows = rows_from_mapping(self.classes, choice)
            self._name = choice.target or choice.name
        self._fill()

    def _fill(self) -> None:
        self._filling = True
        try:
            self.table.setRowCount(len(self._rows))
            for i, r in enumerate(self._rows):
                src = QTableWidgetItem(_swatch(self._source_colour(r.value)), r.name)
                src.setFlags(Qt.ItemIsEnabled)
                src.setToolTip(tr("value {0}").format(r.value))
                self.table.setItem(i, COL_CLASS, src)
                target = QTableWidgetItem(r.target)
                target.setToolTip(tr("Same name as another class: merged. Empty: no data."))
                self.table.setItem(i, COL_TARGET, target)
                button = QgsColorButton(self.table)
                button.setAllowOpacity(False)
                button.setShowNoColor(False)
                button.setColor(QColor(r.colour))
                button.setEnabled(bool(r.target))
                button.colorChanged.connect(lambda colour, row=i: self._colour_changed(row, colour))
                self.table.setCellWidget(i, COL_COLOUR, button)
        finally:
            self._filling = False
        self._update()

    def _source_colour(self, value: int) -> str:
        return next((c.color for c in self.classes if int(c.value) == value), "#000000")

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != COL_TARGET:
            return
        self.set_target(item.row(), item.text())

    def _colour_changed(self, row: int, colour: QColor) -> None:
        if not self._filling:
            self.set_colour(row, colour.name())

    def _update(self) -> None:
        groups = targets(self._rows)
        dropped = sum(1 for r in self._rows if not r.target.strip())
        text = tr("{0} classes become {1}").format(len(self._rows), len(groups))
        if dropped:
            text += tr("; {0} become no data").format(dropped)
        self.summary.setText(text)
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(bool(groups) and bool(self.output_path()))
