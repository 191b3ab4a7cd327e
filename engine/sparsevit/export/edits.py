"""Class edits an export applies: the classes to write (``--classes``) and a reclassification
(``--reclass``), so a product carries what the user sees in QGIS rather than the model's scheme.

``--classes FILE.json``: ``[{"value", "name", "colour" | "color"}]`` (or ``{"classes": [...]}``).
Each entry replaces the name and colour of that value in the colour table, category names,
class-name RAT, ``.qml``, polygon ``class_name`` and area tables; classes the file leaves out keep
their own. A name equal to the class's legend label ("Sea / lake" for ``SeaLake``) keeps the
class's name (and becomes its legend text), so exporting an unedited layer changes nothing
but what was edited.

``--reclass``: a mapping of ``resources/mappings`` by name or path (``{"source", "target",
"map": {source name: target name | null}}``, for rasters of the mapping's source scheme), or a
file ``{"name", "classes": [target classes as above], "map": {"old value": new value | null}}``
that must map every class of the raster. ``null``, values outside the raster's class table and
nodata all become nodata (255). Reclassification comes first; ``--classes`` then names and colours
the *output* values.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..schemes import IGNORE, ClassInfo, ClassScheme, _key, _read_json, _resolve, mapping_from_dict
from .classes import raster_scheme

_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class ClassEdits:
    """The classes an export writes and, after a reclassification, how values change."""

    scheme: ClassScheme | None  # None: the raster has no class table and none was given
    lut: np.ndarray | None = None  # old value -> new value (255 = nodata); None: values unchanged

    def apply(self, values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, valid)`` after the reclassification (uint8; mapped-to-nodata is invalid)."""
        if self.lut is None:
            return values, valid
        v = values.astype(np.int64, copy=False)
        inside = valid & (v >= 0) & (v < self.lut.size)
        out = np.full(values.shape, IGNORE, dtype=np.uint8)
        out[inside] = self.lut[v[inside]]
        return out, out != IGNORE


def resolve_edits(src: str | Path, scheme=None, classes=None, reclass=None,
                  required: bool = True) -> ClassEdits:
    """The :class:`ClassEdits` for exporting ``src``: its class table (or ``scheme``), then
    ``reclass``, then ``classes`` (each a file path, a mapping name, or the parsed JSON)."""
    edits_give_classes = classes is not None or reclass is not None
    base = raster_scheme(src, scheme, required=required and not edits_give_classes)
    lut = None
    if reclass is not None:
        lut, base = _reclass(reclass, base)
    if classes is not None:
        base = _rename(classes, base)
    return ClassEdits(base, lut)


def _load(spec, kind: str) -> tuple[Any, Path | None]:
    if isinstance(spec, (dict, list)):
        return spec, None
    path = Path(spec) if kind == "classes" else _resolve(spec, "mappings")
    if kind == "classes":
        if not path.is_file():
            raise InputError("classes file not found", path=path, fix="check the path")
        try:
            return json.loads(path.read_text(encoding="utf-8")), path
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"classes file is not valid JSON ({exc})", path=path,
                             fix="fix the JSON syntax") from None
    return _read_json(path, "mapping"), path


def _colour(text) -> str | None:
    if not isinstance(text, str):
        return None
    s = text.strip().lower()
    return s if len(s) == 7 and s[0] == "#" and set(s[1:]) <= _HEX else None


def _entries(raw, path, what: str) -> list[ClassInfo]:
    """Validated ``{value, name, colour}`` entries (the order kept)."""
    def bad(problem: str, fix: str | None = None) -> InputError:
        return InputError(f"{what}: {problem}", path=path, fix=fix)

    if isinstance(raw, dict):
        raw = raw.get("classes")
    if not isinstance(raw, list) or not raw:
        raise bad("needs a non-empty list of classes",
                  fix='give [{"value": 1, "name": "Forest", "colour": "#00a600"}, ...]')
    out, seen = [], set()
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or "value" not in item or "name" not in item:
            raise bad(f"class #{i + 1} needs 'value', 'name' and 'colour'")
        value, name = item["value"], item["name"]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < IGNORE:
            raise bad(f"class #{i + 1} has value {value!r}",
                      fix="class values are integers 0..254 (255 is nodata)")
        if value in seen:
            raise bad(f"value {value} is listed twice", fix="list each value once")
        seen.add(value)
        if not isinstance(name, str) or not name.strip():
            raise bad(f"value {value} has no name", fix="give every class a name")
        given = item.get("colour", item.get("color"))
        colour = _colour(given)
        if colour is None:
            raise bad(f"value {value} ('{name.strip()}') has colour {given!r}", fix="use '#rrggbb'")
        label = item.get("label", "")
        out.append(ClassInfo(value, name.strip(), colour, "",
                             label.strip() if isinstance(label, str) else ""))
    return out


def _rename(spec, base: ClassScheme | None) -> ClassScheme:
    raw, path = _load(spec, "classes")
    entries = _entries(raw, path, "classes file")
    if base is None:
        name = path.stem if path is not None else "classes"
        return ClassScheme(name=name, title=name, classes=tuple(sorted(entries, key=lambda c: c.value)))
    own = {c.value: c for c in base.classes}
    unknown = [e.value for e in entries if e.value not in own]
    if unknown:
        raise InputError(f"classes file: value {unknown[0]} is not a class of the raster "
                         f"(its classes: {', '.join(map(str, sorted(own)))})", path=path,
                         fix="list only the raster's classes (to merge or add classes, use --reclass)")
    given = {e.value: e for e in entries}
    classes = []
    for c in base.classes:
        e = given.get(c.value)
        if e is None:
            classes.append(c)
        elif _key(e.name) in (_key(c.name), _key(c.label)) and not e.label:
            # the same class as shown: the name stays the key, the shown text the legend's
            label = c.label if _key(e.name) == _key(c.label) or e.name == c.name else e.name
            classes.append(ClassInfo(c.value, c.name, e.color, c.description, label))
        else:
            classes.append(ClassInfo(c.value, e.name, e.color, c.description, e.label))
    return ClassScheme(name=base.name, title=base.title, classes=tuple(classes),
                       ignore_value=base.ignore_value, source=base.source)


def _reclass(spec, base: ClassScheme | None) -> tuple[np.ndarray, ClassScheme]:
    data, path = _load(spec, "mapping")
    if not isinstance(data, dict):
        raise InputError("reclass file must hold a JSON object", path=path)
    if {"source", "target", "map"} <= set(data):
        return _named_mapping(data, path, base)
    return _value_mapping(data, path, base)


def _named_mapping(data: dict, path, base: ClassScheme | None) -> tuple[np.ndarray, ClassScheme]:
    mapping = mapping_from_dict(data, path)
    if base is not None:
        source = {c.value: c for c in mapping.source.classes}
        for c in base.classes:
            s = source.get(c.value)
            if s is None or _key(c.name) not in (_key(s.name), _key(s.label)):
                here = "no class" if s is None else f"'{s.name}'"
                raise InputError(
                    f"mapping '{mapping.name}' maps the classes of scheme '{mapping.source.name}', "
                    f"but the raster's value {c.value} is '{c.name}' (in '{mapping.source.name}': {here})",
                    path=path, fix="choose a mapping from the raster's own scheme, or give a "
                                   "reclass file of values")
    return mapping.lut, mapping.target


def _value_mapping(data: dict, path, base: ClassScheme | None) -> tuple[np.ndarray, ClassScheme]:
    def bad(problem: str, fix: str | None = None) -> InputError:
        return InputError(f"reclass file: {problem}", path=path, fix=fix)

    if "map" not in data or "classes" not in data:
        raise bad("needs 'classes' (the new classes) and 'map' {old value: new value or null}",
                  fix="or give a mapping of resources/mappings by name")
    targets = _entries(data["classes"], path, "reclass file")
    names: dict[str, int] = {}
    for t in targets:
        if _key(t.name) in names:
            raise bad(f"values {names[_key(t.name)]} and {t.value} are both named '{t.name}'",
                      fix="merge classes by mapping them to one new value")
        names[_key(t.name)] = t.value
    new_values = {t.value for t in targets}
    raw = data["map"]
    if not isinstance(raw, dict) or not raw:
        raise bad("'map' must be a non-empty object {old value: new value or null}")
    own = None if base is None else {c.value: c for c in base.classes}
    pairs: dict[int, int] = {}
    for key, new in raw.items():
        try:
            old = int(str(key).strip())
        except ValueError:
            raise bad(f"'{key}' is not a class value", fix="keys are the raster's class values") from None
        if own is not None and old not in own:
            raise bad(f"value {old} is not a class of the raster "
                      f"(its classes: {', '.join(map(str, sorted(own)))})",
                      fix="map only the raster's classes")
        if new is None:
            new = IGNORE
        elif isinstance(new, bool) or not isinstance(new, int) or new not in new_values:
            raise bad(f"value {old} maps to {new!r}, which is none of the new classes "
                      f"({', '.join(map(str, sorted(new_values)))})",
                      fix="map to a value listed in 'classes', or to null for nodata")
        if old in pairs:
            raise bad(f"value {old} is mapped twice")
        pairs[old] = new
    if own is not None:
        missing = [f"{v} ({c.name})" for v, c in sorted(own.items()) if v not in pairs]
        if missing:
            raise bad(f"classes not mapped: {', '.join(missing)}",
                      fix="map every class of the raster (null for nodata)")
    lut = np.full(max(256, max(pairs) + 1), IGNORE, dtype=np.int64)
    for old, new in pairs.items():
        lut[old] = new
    name = str(data.get("name") or (path.stem if path is not None else "reclassified"))
    return lut, ClassScheme(name=name, title=str(data.get("title") or name),
                            classes=tuple(sorted(targets, key=lambda c: c.value)))
