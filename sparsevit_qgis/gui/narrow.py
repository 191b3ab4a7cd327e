"""Widgets and layouts for a narrow panel. Analysts dock the panel at ~350-450 px: nothing in it
may need more than that, or the panel scrolls sideways and cuts things off at the right edge.

- :class:`FlowLayout` lays a row of buttons out left to right and wraps it onto more rows when
  the panel is narrower than the row.
- :class:`WrapCheckBox` and :class:`WrapRadioButton` wrap their text (Qt's own never do: a long
  one sets the panel's minimum width).
- :class:`WrapLabel` is a word-wrapped label that may also break a long path or file name (after
  ``/``, ``\\`` and ``_``); its ``text()`` and a copy of its selection are the text as set.
- :func:`narrow_combos` lets combo boxes be narrower than their longest item (which the popup
  still shows in full). A form row whose combo box then does not fit beside its label puts the
  label above it (QFormLayout.WrapLongRows).
"""
from __future__ import annotations

from qgis.PyQt.QtCore import QPoint, QRect, QSize, Qt
from qgis.PyQt.QtGui import QGuiApplication, QKeySequence, QPalette
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QLayout,
    QMenu,
    QRadioButton,
    QSizePolicy,
    QStyle,
    QStyleOptionButton,
    QStylePainter,
    QWidget,
)

ZWSP = "\u200b"  # a zero-width space: where a word-wrapped label may break a word
# the characters a combo box asks room for: enough to read an item, short enough that a form
# row or a row beside a button fits a ~350 px panel
COMBO_CHARS, COMBO_CHARS_BESIDE_BUTTONS = 16, 8


def narrow_combos(root: QWidget | QComboBox, chars: int = COMBO_CHARS) -> None:
    """``root`` (a combo box) or every combo box under it asks for room for ``chars``
    characters, not for its longest item: a long item (a layer name, a preset) no longer sets
    the panel's minimum width."""
    combos = [root] if isinstance(root, QComboBox) else root.findChildren(QComboBox)
    for combo in combos:
        combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(chars)


class FlowLayout(QLayout):
    """Widgets left to right at their size hint, wrapped onto the next row where the width ends."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._items = []

    def addItem(self, item) -> None:
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int):
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int):
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientations(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self) -> QSize:  # all on one row
        shown = self._shown()
        width = sum(i.sizeHint().width() for i in shown) + self._gap() * max(len(shown) - 1, 0)
        height = max((i.sizeHint().height() for i in shown), default=0)
        return QSize(width, height) + self._margins()

    def minimumSize(self) -> QSize:  # one item a row
        size = QSize()
        for item in self._shown():
            size = size.expandedTo(item.minimumSize())
        return size + self._margins()

    def _shown(self) -> list:
        return [i for i in self._items if not i.isEmpty()]

    def _gap(self) -> int:
        gap = self.spacing()
        if gap < 0:
            parent = self.parentWidget()
            style = parent.style() if parent is not None else None
            gap = style.pixelMetric(QStyle.PM_LayoutHorizontalSpacing) if style is not None else -1
        return gap if gap >= 0 else 6

    def _margins(self) -> QSize:
        m = self.contentsMargins()
        return QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect: QRect, move: bool) -> int:
        """Lays the items out in ``rect`` (``move``: really moves them); the height it takes."""
        m = self.contentsMargins()
        area = rect.adjusted(m.left(), m.top(), -m.right(), -m.bottom())
        gap = self._gap()
        x, y, row_height = area.x(), area.y(), 0
        for item in self._shown():
            hint = item.sizeHint().boundedTo(QSize(area.width(), item.sizeHint().height()))
            hint = hint.expandedTo(item.minimumSize())
            if x > area.x() and x + hint.width() > area.right() + 1:  # next row
                x, y, row_height = area.x(), y + row_height + gap, 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + gap
            row_height = max(row_height, hint.height())
        return y + row_height - rect.y() + m.bottom()


class _WrapButton:
    """What :class:`WrapCheckBox` and :class:`WrapRadioButton` share: the indicator at the first
    line, the text wrapped beside it."""

    _CONTENTS = QStyle.CT_CheckBox
    _CONTROL = QStyle.CE_CheckBox
    _TEXT = QStyle.SE_CheckBoxContents

    def _wrap_init(self) -> None:
        policy = self.sizePolicy()
        policy.setHeightForWidth(True)
        policy.setHorizontalPolicy(QSizePolicy.Preferred)
        policy.setVerticalPolicy(QSizePolicy.Preferred)  # Qt's Fixed would hold it to one line
        self.setSizePolicy(policy)

    def _option(self) -> QStyleOptionButton:
        opt = QStyleOptionButton()
        self.initStyleOption(opt)
        return opt

    def _extra(self) -> QSize:
        """What the style adds to the text: the indicator, the spacing, the margins."""
        fm = self.fontMetrics()
        one_line = QSize(0, fm.height())
        return self.style().sizeFromContents(self._CONTENTS, self._option(), one_line, self) - one_line

    def _text_rect(self, width: int) -> QRect:
        flags = Qt.TextWordWrap | Qt.TextShowMnemonic | Qt.AlignLeft
        return self.fontMetrics().boundingRect(QRect(0, 0, max(width, 1), 1 << 20), flags, self.text())

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        extra = self._extra()
        text = self._text_rect(width - extra.width())
        return max(text.height() + extra.height(), self._one_line().height())

    def _one_line(self) -> QSize:
        return super().sizeHint()  # Qt's own: the text on one line

    def minimumSizeHint(self) -> QSize:  # the longest word beside the indicator
        fm = self.fontMetrics()
        words = self.text().replace("&", "").split() or [""]
        word = max(fm.horizontalAdvance(w) for w in words)
        return QSize(self._extra().width() + word, self._one_line().height())

    def hitButton(self, pos) -> bool:  # the second line of text clicks too
        return self.rect().contains(pos)

    def paintEvent(self, _event) -> None:
        painter = QStylePainter(self)
        opt = self._option()
        text = opt.text
        opt.text = ""
        opt.rect = QRect(0, 0, self.width(), self._one_line().height())
        painter.drawControl(self._CONTROL, opt)  # the indicator, at the first line
        left = self.style().subElementRect(self._TEXT, opt, self).left()
        top = max((opt.rect.height() - self.fontMetrics().height()) // 2, 0)
        # as wide as heightForWidth measured it, so every line fits the height it gave
        rect = QRect(left, top, self.width() - self._extra().width(), self.height() - top)
        self.style().drawItemText(painter, rect, Qt.AlignLeft | Qt.AlignTop | Qt.TextWordWrap
                                  | Qt.TextShowMnemonic, self.palette(), self.isEnabled(), text,
                                  QPalette.WindowText)


class WrapCheckBox(_WrapButton, QCheckBox):
    """A check box whose text wraps onto more lines in a narrow panel."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        QCheckBox.__init__(self, text, parent)
        self._wrap_init()


class WrapRadioButton(_WrapButton, QRadioButton):
    """A radio button whose text wraps onto more lines in a narrow panel."""

    _CONTENTS = QStyle.CT_RadioButton
    _CONTROL = QStyle.CE_RadioButton
    _TEXT = QStyle.SE_RadioButtonContents

    def __init__(self, text: str = "", parent: QWidget | None = None):
        QRadioButton.__init__(self, text, parent)
        self._wrap_init()


def breakable(text: str) -> str:
    """``text`` with zero-width spaces after path separators and underscores: a word-wrapped
    label may break a long path or product name (S2B_MSIL2A_2023...) there instead of widening
    the whole panel past the dock (the Install engine button was pushed out of sight on first
    open)."""
    return (str(text).replace(ZWSP, "").replace("/", "/" + ZWSP).replace("\\", "\\" + ZWSP)
            .replace("_", "_" + ZWSP))


class WrapLabel(QLabel):
    """A word-wrapped label that may also break long paths and file names (see
    :func:`breakable`). ``text()`` is the text as set, and copying a selection of
    it copies that text, without the invisible break points."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self._text = ""
        self.setText(text)

    def setText(self, text: str) -> None:
        self._text = str(text or "")
        super().setText(breakable(self._text))

    def text(self) -> str:
        return self._text

    def clear(self) -> None:
        self.setText("")

    def _copy(self) -> None:
        chosen = self.selectedText() if self.hasSelectedText() else super().text()
        QGuiApplication.clipboard().setText(chosen.replace(ZWSP, ""))

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.Copy) and self.hasSelectedText():
            self._copy()
            event.accept()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event) -> None:  # Copy without the break points
        if not self.textInteractionFlags() & Qt.TextSelectableByMouse:
            super().contextMenuEvent(event)
            return
        menu = QMenu(self)
        menu.addAction(self.tr("Copy"), self._copy)
        menu.exec_(event.globalPos())
