"""Class schemes: ``resources/schemes/<name>.json`` read without the engine.

Format: ``{"name", "title", "ignore_value": 255, "classes": [{"value", "name", "color"}]}``.
The plugin reads them itself (plain JSON) so styling never needs the engine process.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from .resources import resources_dir

_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class SchemeError(ValueError):
    """A scheme file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class SchemeClass:
    value: int
    name: str
    color: str  # "#rrggbb"
    label: str = ""  # legend text ("Sea / lake"); the name stays the key the engine and files use

    @property
    def display_name(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Scheme:
    name: str
    title: str
    classes: tuple[SchemeClass, ...]
    ignore_value: int | None = 255
    path: str | None = field(default=None, compare=False)

    def by_value(self) -> dict[int, SchemeClass]:
        return {c.value: c for c in self.classes}


def schemes_dir() -> Path | None:
    res = resources_dir()
    return res / "schemes" if res else None


def load_scheme(path: str | Path) -> Scheme:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemeError(f"{path}: cannot read the class scheme ({exc.strerror or exc}).") from exc
    except ValueError as exc:
        raise SchemeError(f"{path}: the class scheme is not valid JSON ({exc}).") from exc
    return scheme_from_dict(data, str(path))


def scheme_from_dict(data: dict, path: str | None = None) -> Scheme:
    where = path or "class scheme"
    if not isinstance(data, dict) or not isinstance(data.get("classes"), list) or not data["classes"]:
        raise SchemeError(f"{where}: needs a non-empty \"classes\" list.")
    classes = []
    seen: set[int] = set()
    for i, item in enumerate(data["classes"]):
        try:
            value = int(item["value"])
            name = str(item["name"]).strip()
            color = str(item["color"]).strip()
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemeError(f"{where}: class #{i} needs integer \"value\", \"name\" and "
                              f"\"color\" ({exc}).") from exc
        if not _COLOR.match(color):
            raise SchemeError(f"{where}: class {value} has colour {color!r}; use \"#rrggbb\".")
        if value in seen:
            raise SchemeError(f"{where}: class value {value} appears twice.")
        seen.add(value)
        label = item.get("label") if isinstance(item, dict) else None
        classes.append(SchemeClass(value, name or f"class {value}", color.lower(),
                                   label.strip() if isinstance(label, str) else ""))
    ignore = data.get("ignore_value", 255)
    return Scheme(name=str(data.get("name") or Path(where).stem),
                  title=str(data.get("title") or data.get("name") or Path(where).stem),
                  classes=tuple(classes),
                  ignore_value=None if ignore is None else int(ignore), path=path)


def available_schemes(folder: str | Path | None = None) -> dict[str, Path]:
    """Scheme name -> file, sorted by name; empty when no resources are found."""
    folder = Path(folder) if folder else schemes_dir()
    if folder is None or not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.json"))}


def find_scheme(name_or_path: str | Path) -> Scheme:
    """A scheme by file path or by name from the bundled resources."""
    path = Path(name_or_path)
    if path.suffix.lower() == ".json" and path.is_file():
        return load_scheme(path)
    known = available_schemes()
    if str(name_or_path) in known:
        return load_scheme(known[str(name_or_path)])
    raise SchemeError(f"{name_or_path}: unknown class scheme; known: {', '.join(known) or 'none'}.")


def as_scheme(value) -> Scheme:
    """A scheme from what a result event or a caller gives: a :class:`Scheme`, a scheme dict
    (``sparsevit fit`` sends the analyst's scheme itself), a file path or a bundled name."""
    if isinstance(value, Scheme):
        return value
    if isinstance(value, dict):
        return scheme_from_dict(value, str(value.get("name") or "class scheme"))
    return find_scheme(value)
