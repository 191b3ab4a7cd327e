"""Image-level tags of tile-grid cells: the ``classes`` field of a grid written by ``sparsevit
grid`` holds the class names a cell contains, joined by ``;`` (empty: untagged).

Reading splits on ``;`` and ``,`` like the engine (``engine/sparsevit/fit/labels.py``), writing
always joins with ``;``. Layer edits go through the layer's edit buffer inside one edit command
each, so QGIS's undo (Ctrl+Z, the layer's undo stack) takes back a whole click, drag or merge.
Main-thread only (layers are not thread-safe).
"""
from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

from qgis.core import QgsFeatureRequest, QgsVectorLayer, QgsWkbTypes

GRID_FIELD = "classes"
GRID_LAYER = "tiles"
TAG_SEPARATOR = ";"
GRID_PROPERTY = "sparsevit/grid"  # custom property of the grid layers the plugin added
_SPLIT = re.compile(r"[;,]")
#: characters a class name may not hold: they separate the tags in the ``classes`` field
FORBIDDEN_IN_NAMES = ";,"


def split_tags(text) -> list[str]:
    """``"Water; Forest"`` -> ``["Water", "Forest"]``; None, NULL or empty -> ``[]``."""
    if text is None:
        return []
    text = str(text)
    if text.upper() == "NULL":
        return []
    out: list[str] = []
    for t in _SPLIT.split(text):
        t = t.strip()
        if t and t not in out:
            out.append(t)
    return out


def join_tags(names: Iterable[str], order: Sequence[str] | None = None) -> str:
    """Tags joined by ``;``, duplicates dropped; in scheme ``order`` when given (unknown names
    last, in their own order)."""
    unique: list[str] = []
    for n in names:
        n = str(n).strip()
        if n and n not in unique:
            unique.append(n)
    if order:
        rank = {name: i for i, name in enumerate(order)}
        unique.sort(key=lambda n: rank.get(n, len(rank)))
    return TAG_SEPARATOR.join(unique)


def with_tag(text, name: str, present: bool, order: Sequence[str] | None = None) -> str:
    """``text`` with class ``name`` added (``present``) or removed."""
    tags = [t for t in split_tags(text) if t != name]
    if present:
        tags.append(name)
    return join_tags(tags, order)


def is_grid_layer(layer) -> bool:
    """A polygon vector layer with a ``classes`` field: a tile grid to tag."""
    return (isinstance(layer, QgsVectorLayer) and layer.isValid()
            and layer.geometryType() == QgsWkbTypes.PolygonGeometry
            and layer.fields().indexOf(GRID_FIELD) >= 0)


def _values(layer: QgsVectorLayer, fids: Iterable[int], field: str) -> dict:
    fids = list(fids)
    if not fids:
        return {}
    request = QgsFeatureRequest().setFilterFids(fids)
    request.setFlags(QgsFeatureRequest.NoGeometry)
    return {f.id(): f[field] for f in layer.getFeatures(request)}


def _editable(layer: QgsVectorLayer) -> None:
    if not layer.isEditable() and not layer.startEditing():
        raise RuntimeError(f"{layer.name()}: the layer cannot be edited (read-only file?)")


def set_tags(layer: QgsVectorLayer, values: Mapping[int, str], description: str,
             field: str = GRID_FIELD) -> int:
    """Write ``{feature id: classes text}`` as one undoable edit command; returns how many
    cells changed. Starts editing the layer when it is not in edit mode."""
    idx = layer.fields().indexOf(field)
    if idx < 0:
        raise RuntimeError(f"{layer.name()}: no '{field}' field, so it is not a tile grid")
    current = _values(layer, values, field)
    changes = {fid: text for fid, text in values.items()
               if join_tags(split_tags(current.get(fid))) != text}
    if not changes:
        return 0
    _editable(layer)
    layer.beginEditCommand(description)
    try:
        for fid, text in changes.items():
            layer.changeAttributeValue(fid, idx, text, current.get(fid))
    except Exception:
        layer.destroyEditCommand()
        raise
    layer.endEditCommand()
    layer.triggerRepaint()
    return len(changes)


def toggle_tag(layer: QgsVectorLayer, fids: Iterable[int], name: str, present: bool | None = None,
               order: Sequence[str] | None = None, field: str = GRID_FIELD) -> int:
    """Add or remove class ``name`` in the cells ``fids`` (one undo step).

    ``present`` None: toggle, i.e. remove it when every cell already has it, else add it to
    all (a drag over a mix of tagged and untagged cells tags them all; a second drag over
    the same cells takes the tag away again)."""
    fids = list(dict.fromkeys(fids))
    if not fids:
        return 0
    current = _values(layer, fids, field)
    if present is None:
        present = not all(name in split_tags(current.get(fid)) for fid in fids)
    values = {fid: with_tag(current.get(fid), name, present, order) for fid in fids}
    verb = "Tag" if present else "Untag"
    return set_tags(layer, values, f"{verb} {len(fids)} cell(s) {name}", field)


def rewrite_tags(layer: QgsVectorLayer, mapping: Mapping[str, str | None],
                 order: Sequence[str] | None = None, field: str = GRID_FIELD,
                 description: str = "Rewrite class tags") -> int:
    """Rename tags (``{old: new}``; ``new`` None removes the tag) in every cell, one undo step:
    what a rename or a merge of classes does to a grid that is already tagged."""
    if layer.fields().indexOf(field) < 0 or not mapping:
        return 0
    values: dict[int, str] = {}
    for f in layer.getFeatures():
        tags = split_tags(f[field])
        if not any(t in mapping for t in tags):
            continue
        new = [mapping.get(t, t) if t in mapping else t for t in tags]
        values[f.id()] = join_tags([t for t in new if t], order)
    return set_tags(layer, values, description, field) if values else 0


def grid_tile_size(layer: QgsVectorLayer) -> int | None:
    """The cell size in pixels of a grid written by ``sparsevit grid``, whose ``row``/``col``
    fields are pixel offsets: the smallest step between them; None when it cannot be told (one
    cell, or no such fields)."""
    steps = []
    for name in ("col", "row"):
        idx = layer.fields().indexOf(name)
        if idx < 0:
            return None
        try:
            values = sorted({int(v) for v in layer.uniqueValues(idx) if v is not None and str(v) != "NULL"})
        except (TypeError, ValueError):
            return None
        steps += [b - a for a, b in zip(values, values[1:]) if b > a]
    return min(steps) if steps else None


def tag_counts(layer: QgsVectorLayer, field: str = GRID_FIELD) -> dict[str, int]:
    """Cells per class name, and ``""`` for untagged cells."""
    counts: dict[str, int] = {}
    for f in layer.getFeatures():
        tags = split_tags(f[field])
        for t in tags or [""]:
            counts[t] = counts.get(t, 0) + 1
    return counts
