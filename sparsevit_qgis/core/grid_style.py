"""The look of a tile grid being tagged: one rule per class on the ``classes`` field (a cell
with several classes shows each colour blended), untagged cells hollow, tags of classes the
scheme does not know hatched grey; each cell labelled with the numbers (the 1..9 keys of the
tagging tool) of its classes.

Main-thread only (layers are not thread-safe).
"""
from __future__ import annotations

from typing import Iterable, Sequence

from qgis.core import (
    QgsExpression,
    QgsFillSymbol,
    QgsPalLayerSettings,
    QgsRuleBasedRenderer,
    QgsTextFormat,
    QgsVectorLayer,
    QgsVectorLayerSimpleLabeling,
)
from qgis.PyQt.QtGui import QColor

from .schemes import Scheme, SchemeClass
from .tags import GRID_FIELD

FILL_ALPHA = 120  # of 255: the imagery stays visible under a tagged cell
UNTAGGED_LABEL = "untagged"
UNKNOWN_LABEL = "other tags (not in the class scheme)"


def _tags_text(field: str) -> str:
    """``';' || classes || ';'`` with the separators normalised to ``;``."""
    col = QgsExpression.quotedColumnRef(field)
    return f"concat(';', regexp_replace(coalesce({col}, ''), '\\\\s*[;,]\\\\s*', ';'), ';')"


def has_class_expression(name: str, field: str = GRID_FIELD) -> str:
    """An expression true for the cells whose tags include class ``name``."""
    return f"strpos({_tags_text(field)}, {QgsExpression.quotedString(';' + name + ';')}) > 0"


def untagged_expression(field: str = GRID_FIELD) -> str:
    col = QgsExpression.quotedColumnRef(field)
    return f"regexp_replace(coalesce({col}, ''), '[\\\\s;,]', '') = ''"


def class_numbers_expression(names: Sequence[str], field: str = GRID_FIELD) -> str:
    """The label of a cell: the 1-based numbers of its classes (``"1 4"``)."""
    if not names:
        return "''"
    parts = [f"if({has_class_expression(n, field)}, '{i} ', '')" for i, n in enumerate(names, start=1)]
    return f"trim(concat({', '.join(parts)}))"


def _fill(color: str, alpha: int = FILL_ALPHA) -> QgsFillSymbol:
    c = QColor(color)
    fill = QColor(c)
    fill.setAlpha(alpha)
    symbol = QgsFillSymbol.createSimple({"color": fill.name(QColor.HexArgb), "style": "solid",
                                         "outline_color": c.name(), "outline_width": "0.4"})
    symbol.symbolLayer(0).setFillColor(fill)
    return symbol


def grid_renderer(classes: Iterable[SchemeClass], field: str = GRID_FIELD) -> QgsRuleBasedRenderer:
    root = QgsRuleBasedRenderer.Rule(None)
    hollow = QgsFillSymbol.createSimple({"style": "no", "outline_color": "#707070",
                                         "outline_width": "0.2"})
    root.appendChild(QgsRuleBasedRenderer.Rule(hollow, 0, 0, untagged_expression(field), UNTAGGED_LABEL))
    for c in classes:
        root.appendChild(QgsRuleBasedRenderer.Rule(_fill(c.color), 0, 0, has_class_expression(c.name, field),
                                                   c.name))
    other = QgsFillSymbol.createSimple({"color": "#606060", "style": "b_diagonal",
                                        "outline_color": "#303030", "outline_width": "0.3"})
    root.appendChild(QgsRuleBasedRenderer.Rule(other, 0, 0, "", UNKNOWN_LABEL, "", True))
    return QgsRuleBasedRenderer(root)


def grid_labeling(names: Sequence[str], field: str = GRID_FIELD) -> QgsVectorLayerSimpleLabeling:
    settings = QgsPalLayerSettings()
    settings.fieldName = class_numbers_expression(names, field)
    settings.isExpression = True
    settings.placement = QgsPalLayerSettings.OverPoint
    fmt = QgsTextFormat()
    fmt.setSize(8)
    fmt.setColor(QColor("#111111"))
    buffer = fmt.buffer()
    buffer.setEnabled(True)
    buffer.setColor(QColor("#ffffff"))
    buffer.setSize(0.8)
    fmt.setBuffer(buffer)
    settings.setFormat(fmt)
    return QgsVectorLayerSimpleLabeling(settings)


def style_grid(layer: QgsVectorLayer, scheme: Scheme | Iterable[SchemeClass] | None,
               field: str = GRID_FIELD, labels: bool = True) -> QgsRuleBasedRenderer:
    """Rule-based renderer and number labels on ``layer`` for the classes of ``scheme``."""
    classes = list(scheme.classes if isinstance(scheme, Scheme) else (scheme or []))
    renderer = grid_renderer(classes, field)
    layer.setRenderer(renderer)
    if labels and classes:
        layer.setLabeling(grid_labeling([c.name for c in classes], field))
        layer.setLabelsEnabled(True)
    layer.triggerRepaint()
    return renderer


def class_rules(layer: QgsVectorLayer) -> dict[str, tuple[str, str]]:
    """``{rule label: (filter expression, fill colour #rrggbb)}`` of a grid's renderer."""
    renderer = layer.renderer()
    if not isinstance(renderer, QgsRuleBasedRenderer):
        return {}
    out = {}
    for rule in renderer.rootRule().children():
        color = rule.symbol().color().name() if rule.symbol() is not None else ""
        out[rule.label()] = ("ELSE" if rule.isElse() else rule.filterExpression(), color)
    return out


def is_valid_expression(text: str) -> bool:
    return not QgsExpression(text).hasParserError()

