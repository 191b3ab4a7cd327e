"""The class-scheme editor of the Train section: the analyst's classes (number key, name,
colour) with Add, Remove, Merge, Up/Down, Load and Save as.

The scheme (:class:`~..core.user_scheme.EditableScheme`) is kept in the QGIS project after every
change and re-read when a project is opened; training writes it as the ``--classes`` file. A
rename or merge emits :attr:`ClassSchemeEditor.tags_renamed` so the tags already in a grid
follow (``core/tags.py`` ``rewrite_tags``).
"""
from __future__ import annotations

from typing import Sequence

from qgis.core import QgsProject
from qgis.gui import QgsColorButton
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHeaderView,
    QInputDialog,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.schemes import SchemeClass, SchemeError
from ..core.user_scheme import MIN_CLASSES, EditableScheme
from .inputs import tr
from .narrow import FlowLayout

COL_KEY, COL_NAME, COL_COLOR = 0, 1, 2
SCHEME_FILTER = "Class scheme (*.json);;All files (*)"


class ClassSchemeEditor(QWidget):
    #: the classes, names, colours or their order changed
    changed = pyqtSignal()
    #: ``{old name: new name, or None when removed}``: tags to rewrite in the grids
    tags_renamed = pyqtSignal(object)
    #: a message for the user (a refused change says why)
    error = pyqtSignal(str)

    def __init__(self, parent=None, project: QgsProject | None = None):
        super().__init__(parent)
        self._project = project
        self._filling = False
        self.scheme = EditableScheme.load_from_project(self.project()) or EditableScheme.default()

        self.table = QTableWidget(0, 3, self)
        self.table.setHorizontalHeaderLabels([tr("Key"), tr("Class"), tr("Colour")])
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_KEY, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(COL_NAME, QHeaderView.Stretch)
        header.setSectionResizeMode(COL_COLOR, QHeaderView.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed)
        self.table.setMinimumHeight(120)
        self.table.setToolTip(tr("Double-click a name to rename it (tags in the grid follow); "
                                 "the first nine classes have the number keys 1..9 of the "
                                 "tagging tool"))
        self.table.itemChanged.connect(self._item_changed)

        buttons = FlowLayout()  # wraps onto a second row in a narrow panel
        buttons.setContentsMargins(0, 0, 0, 0)
        self.add_button = self._button(tr("Add"), tr("Add a class"), self._add_clicked)
        self.remove_button = self._button(tr("Remove"), tr("Remove the selected class; its tags "
                                                           "are taken out of the grid"), self._remove_clicked)
        self.merge_button = self._button(tr("Merge…"), tr("Merge the selected classes into one; "
                                                          "the grid's tags are rewritten"), self._merge_clicked)
        self.up_button = self._button("▲", tr("Move the class up (its number key changes)"),
                                      lambda: self._move_clicked(-1))
        self.down_button = self._button("▼", tr("Move the class down (its number key changes)"),
                                        lambda: self._move_clicked(1))
        self.load_button = self._button(tr("Load…"), tr("Replace the classes by those of a "
                                                        "scheme JSON file"), self._load_clicked)
        self.save_button = self._button(tr("Save as…"), tr("Write the classes as a scheme JSON "
                                                           "file"), self._save_clicked)
        for b in (self.add_button, self.remove_button, self.merge_button, self.up_button,
                  self.down_button, self.load_button, self.save_button):
            buttons.addWidget(b)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.table)
        col.addLayout(buttons)
        self._fill()
        QgsProject.instance().readProject.connect(self._project_read)

    def _button(self, text: str, tip: str, slot) -> QToolButton:
        b = QToolButton(self)
        b.setText(text)
        b.setToolTip(tip)
        b.clicked.connect(slot)
        return b

    def project(self) -> QgsProject:
        return self._project or QgsProject.instance()

    # --- the table -----------------------------------------------------------------------
    def _fill(self) -> None:
        self._filling = True
        try:
            self.table.setRowCount(len(self.scheme.classes))
            for row, c in enumerate(self.scheme.classes):
                key = QTableWidgetItem(str(row + 1) if row < 9 else "")
                key.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable)
                key.setTextAlignment(Qt.AlignCenter)
                self.table.setItem(row, COL_KEY, key)
                name = QTableWidgetItem(c.name)
                name.setData(Qt.UserRole, c.name)
                name.setToolTip(tr("value {0}").format(c.value))
                self.table.setItem(row, COL_NAME, name)
                button = QgsColorButton(self.table)
                button.setAllowOpacity(False)
                button.setShowNoColor(False)
                button.setColor(QColor(c.color))
                button.setToolTip(tr("Colour of {0}").format(c.name))
                button.colorChanged.connect(lambda color, n=c.name: self.recolour_class(n, color))
                self.table.setCellWidget(row, COL_COLOR, button)
        finally:
            self._filling = False
        self.remove_button.setEnabled(len(self.scheme.classes) > MIN_CLASSES)
        self.merge_button.setEnabled(len(self.scheme.classes) > MIN_CLASSES)

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if self._filling or item.column() != COL_NAME:
            return
        old = item.data(Qt.UserRole)
        if not self.rename_class(old, item.text()):
            self._fill()

    def selected_names(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.scheme.classes[r].name for r in rows if r < len(self.scheme.classes)]

    def color_button(self, name: str) -> QgsColorButton:
        return self.table.cellWidget(self.scheme.index_of(name), COL_COLOR)

    # --- changes (also the API the tests drive) ------------------------------------------
    def _changed(self, renamed: dict | None = None, refill: bool = True) -> None:
        self.scheme.save_to_project(self.project())
        if refill:  # not from a colour button's own signal: refilling would delete the sender
            self._fill()
        if renamed:
            self.tags_renamed.emit(dict(renamed))
        self.changed.emit()

    def _refused(self, exc: Exception) -> bool:
        self.error.emit(str(exc))
        return False

    @property
    def names(self) -> list[str]:
        return self.scheme.names

    def add_class(self, name: str | None = None, color: str | None = None) -> SchemeClass | None:
        try:
            item = self.scheme.add(name, color)
        except SchemeError as exc:
            self._refused(exc)
            return None
        self._changed()
        return item

    def rename_class(self, old: str, new: str) -> bool:
        try:
            renamed = self.scheme.rename(old, new)
        except SchemeError as exc:
            return self._refused(exc)
        if renamed:
            self._changed(renamed)
        return True

    def recolour_class(self, name: str, color) -> bool:
        try:
            before = self.scheme.by_name(name).color
            self.scheme.recolour(name, color)
        except SchemeError as exc:
            return self._refused(exc)
        after = self.scheme.by_name(name).color
        if after != before:
            button = self.color_button(name)
            if button is not None and button.color().name() != after:
                button.blockSignals(True)
                button.setColor(QColor(after))
                button.blockSignals(False)
            self._changed(refill=False)
        return True

    def merge_classes(self, names: Sequence[str], into: str) -> bool:
        try:
            renamed = self.scheme.merge(names, into)
        except SchemeError as exc:
            return self._refused(exc)
        if renamed:
            self._changed(renamed)
        return True

    def remove_class(self, name: str) -> bool:
        try:
            removed = self.scheme.remove(name)
        except SchemeError as exc:
            return self._refused(exc)
        self._changed(removed)
        return True

    def move_class(self, name: str, offset: int) -> None:
        self.scheme.move(name, offset)
        self._changed()

    def set_scheme(self, scheme: EditableScheme, save: bool = True) -> None:
        """Replace every class (tags in the grid are left as they are)."""
        if len(scheme.classes) < MIN_CLASSES:
            self._refused(SchemeError(f"A class scheme needs at least {MIN_CLASSES} classes."))
            return
        self.scheme = scheme
        if save:
            self._changed()
        else:
            self._fill()
            self.changed.emit()

    def reload_from_project(self, project: QgsProject | None = None) -> None:
        """The scheme of ``project`` (the default scheme when it holds none), not saved back."""
        scheme = EditableScheme.load_from_project(project or self.project())
        self.set_scheme(scheme or EditableScheme.default(), save=False)

    def _project_read(self, *_):
        try:
            self.reload_from_project()
        except RuntimeError:  # the editor was deleted; Qt had not disconnected yet
            pass

    def write_json(self, path: str):
        return self.scheme.write_json(path)

    # --- buttons -------------------------------------------------------------------------
    def _add_clicked(self) -> None:
        item = self.add_class()
        if item is not None:
            row = self.scheme.index_of(item.name)
            self.table.setCurrentCell(row, COL_NAME)
            self.table.editItem(self.table.item(row, COL_NAME))

    def _remove_clicked(self) -> None:
        for name in self.selected_names()[:1]:
            self.remove_class(name)

    def _merge_clicked(self) -> None:
        names = self.selected_names()
        if len(names) < 2:
            self.error.emit(tr("Select two or more classes (Ctrl+click) to merge."))
            return
        into, ok = QInputDialog.getItem(self, tr("Merge classes"), tr("Merge the selected classes into"),
                                        names, 0, False)
        if ok and into:
            self.merge_classes(names, into)

    def _move_clicked(self, offset: int) -> None:
        names = self.selected_names()
        if names:
            self.move_class(names[0], offset)
            self.table.selectRow(self.scheme.index_of(names[0]))

    def _load_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, tr("Class scheme"), "", SCHEME_FILTER)
        if not path:
            return
        try:
            self.set_scheme(EditableScheme.from_file(path))
        except SchemeError as exc:
            self._refused(exc)

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, tr("Save the class scheme"), "", SCHEME_FILTER)
        if not path:
            return
        if not path.lower().endswith(".json"):
            path += ".json"
        try:
            self.write_json(path)
        except (SchemeError, OSError) as exc:
            self._refused(exc)
