"""Class schemes and class mappings, both kept as JSON data in ``resources/``.

A scheme (``resources/schemes/<name>.json``) lists the classes of a nomenclature with their
raster value, name and colour; the QGIS plugin reads the same files for legends and styles, so
nothing here may be Python-only. A mapping (``resources/mappings/<src>_to_<dst>.json``) maps every
source class *name* to a target class name or ``null`` (= ignore); names rather than values keep
the files readable and reviewable. Both are validated on load and fail with an
:class:`~sparsevit.errors.InputError` that names the file.

Masks hold scheme *values* (e.g. DFC2020 1..10); model outputs hold class *indices* 0..K-1.
:meth:`ClassScheme.to_index` and :meth:`ClassScheme.to_value` convert between the two.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .errors import InputError
from .paths import resource

# The class value of "no class here": unlabelled or uncertain pixels in masks (a loss ignores
# them), nodata in class rasters. Class values of a scheme stay below it.
IGNORE = 255

_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def _key(name: str) -> str:
    """Case- and punctuation-insensitive key: 'Urban/Built-up' == 'urban built up'."""
    return re.sub(r"[^0-9a-z]+", "", name.lower())


@dataclass(frozen=True)
class ClassInfo:
    value: int
    name: str
    color: str
    description: str = ""
    label: str = ""  # what a legend shows ("Sea / lake"); the name stays the key in files

    @property
    def display_name(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class ClassScheme:
    name: str
    title: str
    classes: tuple[ClassInfo, ...]
    ignore_value: int = IGNORE
    source: str = ""
    _by_value: dict = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_value", {c.value: i for i, c in enumerate(self.classes)})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(c.value for c in self.classes)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def colors(self) -> tuple[str, ...]:
        return tuple(c.color for c in self.classes)

    def index_of(self, value: int) -> int:
        try:
            return self._by_value[int(value)]
        except KeyError:
            raise InputError(f"value {value} is not a class of scheme '{self.name}'",
                             fix=f"use one of {list(self.values)}") from None

    def rgb(self, value: int) -> tuple[int, int, int]:
        color = self.classes[self.index_of(value)].color
        return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)

    def by_name(self, name: str) -> ClassInfo:
        key = _key(name)
        for c in self.classes:
            if _key(c.name) == key:
                return c
        raise InputError(f"'{name}' is not a class of scheme '{self.name}'",
                         fix=f"use one of: {', '.join(self.names)}")

    def has_name(self, name: str) -> bool:
        key = _key(name)
        return any(_key(c.name) == key for c in self.classes)

    def _lut(self, to_index: bool) -> np.ndarray:
        lut = np.full(256 if max(self.values) < 256 else max(self.values) + 1, self.ignore_value,
                      dtype=np.int64)
        for i, c in enumerate(self.classes):
            lut[c.value] = i if to_index else c.value
        return lut

    def to_index(self, values: np.ndarray) -> np.ndarray:
        """Scheme values -> class indices 0..K-1 (uint8); unknown values and ignore -> 255."""
        values = np.asarray(values)
        lut = self._lut(to_index=True)
        ok = (values >= 0) & (values < lut.size)
        out = np.full(values.shape, 255, dtype=np.uint8)
        out[ok] = lut[values[ok].astype(np.int64)]
        return out

    def to_value(self, indices: np.ndarray) -> np.ndarray:
        """Class indices 0..K-1 -> scheme values; anything else -> ignore_value."""
        indices = np.asarray(indices)
        vals = np.array(self.values + (self.ignore_value,), dtype=np.int64)
        idx = np.where((indices >= 0) & (indices < self.num_classes), indices, self.num_classes)
        return vals[idx.astype(np.int64)]

    def multi_hot(self, names: Iterable[str]) -> np.ndarray:
        out = np.zeros(self.num_classes, dtype=np.float32)
        for n in names:
            out[self.index_of(self.by_name(n).value)] = 1.0
        return out

    def label_names(self, multi_hot: Sequence[float]) -> list[str]:
        return [self.classes[i].name for i, v in enumerate(multi_hot) if v > 0.5]

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "source": self.source,
                "ignore_value": self.ignore_value,
                "classes": [{"value": c.value, "name": c.name, "color": c.color,
                             "description": c.description, **({"label": c.label} if c.label else {})}
                            for c in self.classes]}


def _read_json(path: Path, kind: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{kind} file not found", path=path,
                         fix=f"use a {kind} name from resources/{kind}s or a path to a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{kind} file is not valid JSON ({exc})", path=path,
                         fix="fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"{kind} file must hold a JSON object", path=path)
    return data


def _resolve(name_or_path: str | Path, folder: str) -> Path:
    p = Path(name_or_path)
    if p.suffix.lower() == ".json" or p.exists() or len(p.parts) > 1:
        return p
    return resource(folder, f"{name_or_path}.json")


def scheme_from_dict(data: dict, path: str | Path | None = None) -> ClassScheme:
    def bad(problem: str, fix: str | None = None) -> InputError:
        return InputError(f"invalid class scheme: {problem}", path=path, fix=fix)

    for key in ("name", "classes"):
        if key not in data:
            raise bad(f"missing key '{key}'")
    ignore = data.get("ignore_value", 255)
    if not isinstance(ignore, int) or isinstance(ignore, bool):
        raise bad("'ignore_value' must be an integer")
    raw = data["classes"]
    if not isinstance(raw, list) or not raw:
        raise bad("'classes' must be a non-empty list")
    classes, seen_values, seen_names = [], set(), set()
    for i, c in enumerate(raw):
        if not isinstance(c, dict) or not {"value", "name", "color"} <= set(c):
            raise bad(f"class #{i} needs 'value', 'name' and 'color'")
        value, name, color = c["value"], c["name"], c["color"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"class '{name}' has value {value!r}", fix="values must be integers >= 0")
        if value == ignore:
            raise bad(f"class '{name}' uses the ignore value {ignore}")
        if value in seen_values:
            raise bad(f"duplicate class value {value}", fix="give every class its own value")
        if not isinstance(name, str) or not _key(name):
            raise bad(f"class #{i} has no usable name")
        if _key(name) in seen_names:
            raise bad(f"duplicate class name '{name}'")
        if not isinstance(color, str) or not _COLOR_RE.match(color):
            raise bad(f"class '{name}' has colour {color!r}", fix="use '#rrggbb'")
        seen_values.add(value)
        seen_names.add(_key(name))
        label = c.get("label", "")
        if not isinstance(label, str):
            raise bad(f"class '{name}' has label {label!r}", fix="labels are text")
        classes.append(ClassInfo(value, name, color.lower(), str(c.get("description", "")), label.strip()))
    return ClassScheme(name=str(data["name"]), title=str(data.get("title", data["name"])),
                       classes=tuple(classes), ignore_value=ignore, source=str(data.get("source", "")))


@lru_cache(maxsize=64)
def _load_scheme_cached(path: str) -> ClassScheme:
    return scheme_from_dict(_read_json(Path(path), "scheme"), path)


def load_scheme(name_or_path: str | Path | ClassScheme) -> ClassScheme:
    """A scheme by name (``'dfc2020'`` -> ``resources/schemes/dfc2020.json``) or JSON path."""
    if isinstance(name_or_path, ClassScheme):
        return name_or_path
    return _load_scheme_cached(str(_resolve(name_or_path, "schemes")))


def read_scheme_file(path: str | Path) -> ClassScheme:
    """A scheme JSON file read now, not cached (a model's own scheme may be rewritten in place)."""
    return scheme_from_dict(_read_json(Path(path), "scheme"), path)


def available_schemes() -> list[str]:
    return sorted(p.stem for p in resource("schemes").glob("*.json"))


@dataclass(frozen=True)
class Mapping:
    """A many-to-one map from the classes of ``source`` to those of ``target`` (or ignore)."""

    name: str
    source: ClassScheme
    target: ClassScheme
    pairs: tuple[tuple[str, str | None], ...]  # (source name, target name or None), source order
    notes: str = ""

    def target_name(self, source_name: str) -> str | None:
        src = self.source.by_name(source_name).name
        return dict(self.pairs)[src]

    @property
    def lut(self) -> np.ndarray:
        """Lookup table over source values (0..255): target value, or the target ignore value."""
        size = max(256, max(self.source.values) + 1)
        lut = np.full(size, self.target.ignore_value, dtype=np.int64)
        for src, dst in self.pairs:
            if dst is not None:
                lut[self.source.by_name(src).value] = self.target.by_name(dst).value
        return lut

    def apply(self, x):
        """Map a mask/array of source values, one class name, or a list of class names.

        Arrays: vectorised lookup; the source ignore value and unknown values become the target
        ignore value; the dtype is kept when the target values fit in it. A name gives the target
        name (``None`` = ignored); a list of names gives the sorted-by-target-order unique target
        names, ignored classes dropped (image-level labels).
        """
        if isinstance(x, str):
            return self.target_name(x)
        if isinstance(x, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in x):
            found = {self.target_name(v) for v in x} - {None}
            return [n for n in self.target.names if n in found]
        arr = np.asarray(x)
        if arr.dtype.kind not in "iu":
            raise InputError(f"mapping '{self.name}' needs an integer class mask, got {arr.dtype}")
        lut = self.lut
        ok = (arr >= 0) & (arr < lut.size)
        out = np.full(arr.shape, self.target.ignore_value, dtype=np.int64)
        out[ok] = lut[arr[ok].astype(np.int64)]
        largest = max(self.target.values + (self.target.ignore_value,))
        dtype = arr.dtype if np.can_cast(np.min_scalar_type(largest), arr.dtype) else np.int64
        return out.astype(dtype)

    def apply_multi_hot(self, multi_hot: Sequence[float]) -> np.ndarray:
        """Multi-hot over source classes -> multi-hot over target classes (logical OR)."""
        return self.target.multi_hot(self.apply(self.source.label_names(multi_hot)))


def mapping_from_dict(data: dict, path: str | Path | None = None) -> Mapping:
    def bad(problem: str, fix: str | None = None) -> InputError:
        return InputError(f"invalid class mapping: {problem}", path=path, fix=fix)

    for key in ("source", "target", "map"):
        if key not in data:
            raise bad(f"missing key '{key}'")
    source, target = load_scheme(data["source"]), load_scheme(data["target"])
    raw = data["map"]
    if not isinstance(raw, dict):
        raise bad("'map' must be an object {source class name: target class name or null}")
    given: dict[str, str | None] = {}
    for src, dst in raw.items():
        if not source.has_name(src):
            raise bad(f"'{src}' is not a class of source scheme '{source.name}'")
        if dst is not None and not target.has_name(dst):
            raise bad(f"'{dst}' (for '{src}') is not a class of target scheme '{target.name}'")
        canon = source.by_name(src).name
        if canon in given:
            raise bad(f"source class '{canon}' is mapped twice")
        given[canon] = None if dst is None else target.by_name(dst).name
    missing = [n for n in source.names if n not in given]
    if missing:
        raise bad(f"source classes not covered: {', '.join(missing)}",
                  fix="map every source class (null for ignore)")
    return Mapping(name=str(data.get("name", Path(str(path)).stem if path else "mapping")),
                   source=source, target=target,
                   pairs=tuple((n, given[n]) for n in source.names), notes=str(data.get("notes", "")))


@lru_cache(maxsize=64)
def _load_mapping_cached(path: str) -> Mapping:
    return mapping_from_dict(_read_json(Path(path), "mapping"), path)


def load_mapping(name_or_path: str | Path) -> Mapping:
    """A mapping by name (``'igbp17_to_dfc2020'``) or JSON path."""
    return _load_mapping_cached(str(_resolve(name_or_path, "mappings")))


def available_mappings() -> list[str]:
    return sorted(p.stem for p in resource("mappings").glob("*.json"))
