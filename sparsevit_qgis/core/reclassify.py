"""What an export tells the engine about classes: the classes a layer shows (``export
--classes``) and a reclassification of them (``export --reclass``), as the JSON the engine reads
(``engine/sparsevit/export/edits.py``).

No QGIS here: the panel reads the layer's paletted renderer into :class:`SchemeClass` es
(``styling.palette_classes``) and the reclassify dialog edits :class:`ReclassRow` s; this module
turns them into files, so the rules (what merges, which value and colour a merged class gets,
which bundled mappings fit a layer) are tested without widgets.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from .resources import resources_dir
from .schemes import SchemeClass, SchemeError, find_scheme

NODATA = 255
MAX_VALUE = 254


def _key(name: str) -> str:
    """The engine's name key: 'Sea / lake' == 'SeaLake' == 'sealake'."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())


def same_name(a: str, b: str) -> bool:
    """Whether two class names are one class (so the classes merge)."""
    return bool(_key(a)) and _key(a) == _key(b)


def shown_classes(classes: Iterable[SchemeClass]) -> list[dict]:
    """``--classes`` entries for what a layer shows: value, legend text, colour; values a class
    raster cannot hold (the nodata 255, out-of-range) left out, the engine would refuse them."""
    out, seen = [], set()
    for c in classes:
        if not 0 <= int(c.value) <= MAX_VALUE or int(c.value) in seen:
            continue
        seen.add(int(c.value))
        out.append({"value": int(c.value), "name": (c.display_name or f"class {c.value}").strip(),
                    "colour": c.color.lower()})
    return out


def write_json(path: str | Path, data) -> Path:
    path = Path(path)
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


@dataclass
class ReclassRow:
    """One class of the layer and the class it becomes: ``target`` empty = nodata."""

    value: int
    name: str  # what the layer shows
    target: str
    colour: str  # of the target; the first row of a merged class sets it
    target_value: int | None = None  # a mapping's target value, kept when free


def rows_for(classes: Iterable[SchemeClass]) -> list[ReclassRow]:
    """Every class kept as it is: the dialog's starting point."""
    return [ReclassRow(int(c.value), c.display_name, c.display_name, c.color.lower())
            for c in classes if 0 <= int(c.value) <= MAX_VALUE]


def targets(rows: Sequence[ReclassRow]) -> list[tuple[str, list[ReclassRow]]]:
    """The new classes in order of first appearance: ``(name, rows merged into it)``; rows with
    the same name (case, spaces and punctuation aside) merge; empty names are nodata."""
    groups: dict[str, tuple[str, list[ReclassRow]]] = {}
    for row in rows:
        name = row.target.strip()
        if not _key(name):
            continue
        groups.setdefault(_key(name), (name, []))[1].append(row)
    return list(groups.values())


def reclass_spec(rows: Sequence[ReclassRow], name: str = "reclassified") -> dict:
    """The ``--reclass`` file: the new classes and ``{old value: new value or null}``.

    A new class keeps a value it already has, so unchanged classes stay what they were: a
    mapping's target value first, else the value of its first merged class, else the smallest
    free one. Its colour is its first row's."""
    groups = targets(rows)
    if not groups:
        raise SchemeError("Every class would become no data; give at least one class a name.")
    values: dict[int, int] = {}  # group index -> new value
    used: set[int] = set()
    for wanted in (lambda m: m[0].target_value, lambda m: m[0].value):
        for i, (_name, members) in enumerate(groups):
            v = wanted(members)
            if i not in values and v is not None and 0 <= v <= MAX_VALUE and v not in used:
                values[i] = v
                used.add(v)
    free = (v for v in range(MAX_VALUE + 1) if v not in used)
    for i in range(len(groups)):
        if i not in values:
            values[i] = next(free)
    classes, mapping = [], {}
    for i, (target, members) in enumerate(groups):
        classes.append({"value": values[i], "name": target, "colour": members[0].colour.lower()})
        for row in members:
            mapping[str(row.value)] = values[i]
    for row in rows:
        mapping.setdefault(str(row.value), None)
    return {"name": name, "classes": sorted(classes, key=lambda c: c["value"]), "map": mapping}


# --- bundled mappings (resources/mappings) ---------------------------------------------------

@dataclass(frozen=True)
class MappingChoice:
    name: str  # e.g. "eurosat_to_eurosat_coarse"
    title: str  # what the dialog lists
    path: Path
    target: str = ""  # the target scheme's name, e.g. "eurosat_coarse"


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("map"), dict) else None


def fitting_mappings(classes: Sequence[SchemeClass], folder: str | Path | None = None) -> list[MappingChoice]:
    """The bundled mappings whose source scheme is the layer's: each of its values a class of
    the source and most names matching (so a layer with a renamed class or two still fits)."""
    if folder is None:
        res = resources_dir()
        folder = res / "mappings" if res is not None else None
    if folder is None or not Path(folder).is_dir() or not classes:
        return []
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        data = _read(path)
        if data is None:
            continue
        try:
            source, target = find_scheme(str(data["source"])), find_scheme(str(data["target"]))
        except (KeyError, SchemeError):
            continue
        by_value = source.by_value()
        if any(int(c.value) not in by_value for c in classes):
            continue
        same = sum(_key(c.display_name) in (_key(by_value[int(c.value)].name),
                                            _key(by_value[int(c.value)].display_name))
                   for c in classes)
        if 2 * same >= len(classes):
            out.append(MappingChoice(path.stem, f"{source.title} \u2192 {target.title}", path,
                                     target.name))
    return out


def rows_from_mapping(classes: Sequence[SchemeClass], mapping: MappingChoice) -> list[ReclassRow]:
    """The dialog's rows after choosing ``mapping``: each class's target name, value and colour
    from the mapping's target scheme; a class the mapping drops (null) becomes nodata."""
    data = _read(mapping.path)
    if data is None:
        raise SchemeError(f"{mapping.path}: not a class mapping.")
    source, target = find_scheme(str(data["source"])), find_scheme(str(data["target"]))
    by_key = {_key(k): v for k, v in data["map"].items()}
    target_by_key = {_key(c.name): c for c in target.classes}
    rows = []
    for c in classes:
        src = source.by_value().get(int(c.value))
        dst_name = by_key.get(_key(src.name)) if src is not None else None
        dst = target_by_key.get(_key(dst_name)) if dst_name else None
        if dst is None:
            rows.append(ReclassRow(int(c.value), c.display_name, "", c.color.lower()))
        else:
            rows.append(ReclassRow(int(c.value), c.display_name, dst.display_name, dst.color,
                                   dst.value))
    return rows
