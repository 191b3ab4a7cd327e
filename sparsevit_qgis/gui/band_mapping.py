"""The panel's band-mapping editor: the bands of the Sentinel-2 input file, which Sentinel-2 band
the engine's Inspect assigned to each (and how it found out), and a combo per band to correct
it. Any edit turns on an override the panel passes as ``--band-order``; "Reset to detected"
drops it. The logic (names, presets, checks) is in core/band_mapping.py.
"""
from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core.band_mapping import (
    PRESETS,
    S2_BAND_NAMES,
    UNUSED,
    UNUSED_LABEL,
    BandMappingError,
    FileBand,
    band_order_text,
    canonical,
    detected_bands,
    is_multi_file,
    preset,
    preset_of,
    problems,
)
from .inputs import tr
from .narrow import WrapLabel

COL_INDEX, COL_DESCRIPTION, COL_FOUND, COL_NAME = range(4)


def read_descriptions(path: str) -> list[str] | None:
    """The band descriptions of a raster file (one entry per band, "" when unnamed); None when
    GDAL cannot open it."""
    from osgeo import gdal
    try:
        ds = gdal.OpenEx(path, gdal.OF_RASTER)
    except RuntimeError:  # gdal.UseExceptions() set by someone else
        return None
    if ds is None:
        return None
    try:
        return [ds.GetRasterBand(i).GetDescription() or "" for i in range(1, ds.RasterCount + 1)]
    finally:
        ds = None  # noqa: F841 - closes the file before the engine opens it


class BandMappingEditor(QWidget):
    """Shows and edits which file band is which Sentinel-2 band, for one input file."""

    override_changed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._path = ""
        self._rows: list[FileBand] = []
        self._baseline: dict[int, tuple[str, str]] = {}  # the last Inspect without an override
        self._override = False
        self._filling = False  # combos set by code, not by the user

        self.status_label = WrapLabel(parent=self)  # may name a file: its path may break
        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("sparsevit_band_mapping")
        self.table.setHorizontalHeaderLabels([tr("Band"), tr("Description"), tr("Engine found"),
                                              tr("Sentinel-2 band")])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(COL_DESCRIPTION, QHeaderView.Stretch)
        self.preset_combo = QComboBox(self)
        self.preset_combo.addItem(tr("Preset…"), "")
        for value, label, names in PRESETS:
            self.preset_combo.addItem(tr(label), value)
        self.preset_combo.setToolTip(tr("Set every band from a known band order (the engine's "
                                        "--band-order presets)"))
        self.preset_combo.activated.connect(self._preset_chosen)
        self.load_button = QPushButton(tr("Show bands"), self)
        self.load_button.setToolTip(tr("List the file's bands here without running the engine "
                                       "(Inspect also fills in what the engine finds)"))
        self.load_button.clicked.connect(self.load_bands)
        self.reset_button = QPushButton(tr("Reset to detected"), self)
        self.reset_button.setToolTip(tr("Drop your mapping: the engine names the bands itself "
                                        "again (no --band-order)"))
        self.reset_button.clicked.connect(self.reset)
        self.order_label = QLabel(self)
        self.order_label.setWordWrap(True)
        self.error_label = QLabel(self)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #c00000;")
        self.error_label.setVisible(False)

        # the preset on a row of its own, the buttons under it: fits a narrow panel
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.load_button)
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.status_label)
        col.addWidget(self.table)
        col.addWidget(self.preset_combo)
        col.addLayout(buttons)
        col.addWidget(self.order_label)
        col.addWidget(self.error_label)
        self.set_input("")

    # --- state ---------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def override(self) -> bool:
        return self._override

    @property
    def multi_file(self) -> bool:
        return is_multi_file(self._path)

    def rows(self) -> list[FileBand]:
        return list(self._rows)

    def combo(self, row: int) -> QComboBox:
        """The Sentinel-2 band combo of table row ``row`` (0-based: file band ``row + 1``)."""
        return self.table.cellWidget(row, COL_NAME)

    def names(self) -> list[str]:
        """The table's names in file order (``-`` for unused)."""
        return [self.combo(r).currentData() or UNUSED for r in range(self.table.rowCount())]

    def problems(self) -> list[str]:
        return problems(self.names(), len(self._rows)) if self._override else []

    def band_order(self) -> str | None:
        """The ``--band-order`` value while the mapping is overridden, else None (the engine
        names the bands); :class:`BandMappingError` for a mapping it cannot take."""
        if not self._override or self.multi_file:
            return None
        return band_order_text(self.names(), len(self._rows))

    def band_order_for(self, path: str) -> str | None:
        """:meth:`band_order` when ``path`` is the file shown here (another file's bands are not
        in this table)."""
        if not path or not self._path or Path(path.split("|")[0]) != Path(self._path):
            return None
        return self.band_order()

    # --- input and Inspect -----------------------------------------------------------------
    def set_input(self, path: str) -> None:
        """The Sentinel-2 input changed: another file's mapping would be wrong, so the override
        and the table go."""
        path = (path or "").split("|")[0].strip()
        if path == self._path and self._rows:
            return
        self._path = path
        self._rows, self._baseline, self._override = [], {}, False
        self._fill()
        multi = self.multi_file
        for w in (self.table, self.preset_combo, self.load_button, self.reset_button):
            w.setEnabled(bool(path) and not multi)
        if not path:
            self.status_label.setText(tr("Choose a Sentinel-2 raster to see its bands."))
        elif multi:
            self.status_label.setText(tr("One file per band (a folder or SAFE product): the engine "
                                         "names each band from its file name, so a band order "
                                         "does not apply here. Inspect shows what it found."))
        else:
            self.status_label.setText(tr("Press Inspect to see which band the engine takes for "
                                         "which Sentinel-2 band; change a row to correct it."))
        self._changed()

    def load_bands(self) -> bool:
        """Read the file's bands (count, descriptions) into the table, keeping what is known."""
        if not self._path or self.multi_file:
            return False
        descriptions = read_descriptions(self._path)
        if descriptions is None:
            self.status_label.setText(tr("Cannot read the bands of {0}.").format(self._path))
            return False
        if len(descriptions) != len(self._rows):
            self._rows = [FileBand(i, d) for i, d in enumerate(descriptions, start=1)]
            self._override = False
            self._apply_found(self._baseline, combos=True)
        else:
            for row, d in zip(self._rows, descriptions):
                row.description = d
            self._fill(combos=False)
        return True

    def set_info(self, result: dict | None, path: str, with_override: bool) -> None:
        """An Inspect of ``path`` finished (``result``: the ``info`` result event; None when the
        engine found no Sentinel-2 band). ``with_override``: it ran with :meth:`band_order`."""
        path = (path or "").split("|")[0]
        if path != self._path or self.multi_file or not self.load_bands():
            return
        found = detected_bands(result, path)
        if with_override:
            self._apply_found(found, combos=False)
            self.status_label.setText(tr("Inspect with your mapping (--band-order): the engine "
                                         "column shows what the engine now reads."))
            return
        self._baseline = found
        if self._override:  # edited while that Inspect ran: the user's rows stand
            self._apply_found(found, combos=False)
            self._changed()
            return
        self._apply_found(found, combos=True)
        if found:
            hows = sorted({how for _n, how in found.values()})
            self.status_label.setText(tr("The engine found {0} Sentinel-2 band(s) in {1} band(s) "
                                         "(by {2}). Change a row if a band is wrong.").format(
                len(found), len(self._rows), ", ".join(hows)))
        else:
            self.status_label.setText(tr("The engine names none of the {0} band(s): set the "
                                         "Sentinel-2 band of each row (or a preset).").format(len(self._rows)))
        self._changed()

    # --- editing -----------------------------------------------------------------------------
    def set_names(self, names) -> None:
        """Set every row as the user would (turns the override on); ``names`` may be a preset
        name. :class:`BandMappingError` for names that cannot fill this table."""
        if isinstance(names, str):
            names = preset(names) or names.replace(",", " ").split()
        if not self._rows and not self.load_bands():
            raise BandMappingError(tr("No bands to map: choose a single Sentinel-2 raster file."))
        names = canonical(names, len(self._rows))
        self._filling = True
        try:
            for r, name in enumerate(names):
                self.combo(r).setCurrentIndex(self.combo(r).findData(name))
        finally:
            self._filling = False
        self._set_override(True)

    def set_row(self, row: int, name: str) -> None:
        """File band ``row + 1`` is ``name`` (``-`` or ``(unused)`` for none), as a user's edit."""
        combo = self.combo(row)
        index = combo.findData(UNUSED if name in (UNUSED, UNUSED_LABEL) else name)
        if index < 0:
            raise BandMappingError(tr("'{0}' is not a Sentinel-2 band name.").format(name))
        combo.setCurrentIndex(index)
        self._set_override(True)  # also when the row already showed that name

    def reset(self) -> None:
        """Back to what the engine found by itself; no ``--band-order``."""
        self._override = False
        self._apply_found(self._baseline, combos=True)
        self.preset_combo.setCurrentIndex(0)
        self._changed()

    def _preset_chosen(self, index: int) -> None:
        value = self.preset_combo.itemData(index)
        if not value:
            return
        try:
            self.set_names(value)
        except BandMappingError as exc:
            names = preset(value) or ()
            self._show_error(tr("The {0} preset names {1} bands but the file has {2}.").format(
                value, len(names), len(self._rows)) if len(names) != len(self._rows) else str(exc))
        self.preset_combo.setCurrentIndex(0)

    def _edited(self, *_):
        if not self._filling:
            self._set_override(True)

    def _set_override(self, on: bool) -> None:
        self._override = on
        self._changed()

    # --- display -------------------------------------------------------------------------------
    def _apply_found(self, found: dict[int, tuple[str, str]], combos: bool) -> None:
        for row in self._rows:
            row.detected, row.how = found.get(row.index, (None, None))
        self._fill(combos=combos)

    def _fill(self, combos: bool = True) -> None:
        self._filling = True
        try:
            if self.table.rowCount() != len(self._rows):
                self.table.setRowCount(len(self._rows))
                for r in range(len(self._rows)):
                    combo = QComboBox(self.table)
                    combo.addItem(tr(UNUSED_LABEL), UNUSED)
                    for name in S2_BAND_NAMES:
                        combo.addItem(name, name)
                    combo.currentIndexChanged.connect(self._edited)
                    self.table.setCellWidget(r, COL_NAME, combo)
                combos = True
            for r, band in enumerate(self._rows):
                found = (f"{band.detected} ({tr(band.how or '?')})" if band.detected
                         else tr("not used"))
                for col, text in ((COL_INDEX, str(band.index)), (COL_DESCRIPTION, band.description),
                                  (COL_FOUND, found)):
                    self.table.setItem(r, col, QTableWidgetItem(text))
                if combos:
                    combo = self.combo(r)
                    combo.setCurrentIndex(max(combo.findData(band.detected or UNUSED), 0))
        finally:
            self._filling = False
        self.table.setVisible(bool(self._rows))
        # the panel scrolls as a whole: a table sized to its rows (up to 8) has no scroll bar of its own
        shown = min(len(self._rows), 8)
        rows_h = sum(self.table.rowHeight(r) for r in range(shown))
        self.table.setFixedHeight(self.table.horizontalHeader().height() + rows_h
                                  + 2 * self.table.frameWidth())

    def _changed(self) -> None:
        found = self.problems()
        if self._override and not found:
            names = self.names()
            name = preset_of(names)
            self.order_label.setText(tr("Your mapping is used: --band-order {0}").format(",".join(names))
                                     + (tr(" (the {0} preset)").format(name) if name else ""))
        elif self._override:
            self.order_label.setText(tr("Your mapping cannot be used yet:"))
        else:
            self.order_label.setText(tr("As the engine finds it (no --band-order)") if self._rows else "")
        self._show_error("\n".join(found))
        self.reset_button.setEnabled(self._override and not self.multi_file)
        self.override_changed.emit()

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))
