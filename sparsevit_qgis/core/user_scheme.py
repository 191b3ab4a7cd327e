"""The analyst's own class scheme, as the class-scheme editor changes it: add, rename, recolour,
merge and remove classes (never fewer than :data:`MIN_CLASSES`), kept in the QGIS project
(``QgsProject.writeEntry``, one JSON string) and written as a scheme JSON file for ``sparsevit
fit --classes`` (the format of ``resources/schemes/*.json``, read back by
:func:`~.schemes.load_scheme`).

No widgets here: the editor (``gui/class_scheme_editor.py``) and the tests drive this class.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from qgis.core import QgsProject

from .schemes import Scheme, SchemeClass, SchemeError, find_scheme, load_scheme, scheme_from_dict
from .tags import FORBIDDEN_IN_NAMES

MIN_CLASSES = 2
MAX_VALUE = 254  # 255 is the engine's no-class value
PROJECT_SCOPE = "SparseViT"
PROJECT_KEY = "class_scheme"
DEFAULT_SCHEME = "eurosat_coarse"  # a readable start: Water, Built-up, Cropland, Grassland, Forest
# distinct, colour-blind-friendly colours for new classes (Okabe-Ito, then Tableau), the same
# list the engine uses for a scheme made from label values
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#f0e442",
           "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf", "#9467bd", "#ff9896")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass
class EditableScheme:
    """A mutable list of classes (value, name, colour). Every change checks the result and
    raises :class:`SchemeError` with the reason, leaving the scheme as it was."""

    classes: list[SchemeClass] = field(default_factory=list)
    name: str = "user"
    title: str = "My classes"

    # --- reading -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def by_name(self, name: str) -> SchemeClass:
        for c in self.classes:
            if c.name == name:
                return c
        raise SchemeError(f"No class named '{name}'.")

    def by_value(self, value: int) -> SchemeClass:
        for c in self.classes:
            if c.value == value:
                return c
        raise SchemeError(f"No class with value {value}.")

    def index_of(self, name: str) -> int:
        return self.names.index(self.by_name(name).name)

    # --- changes ---------------------------------------------------------------------------
    def check_name(self, name: str, ignore: str | None = None) -> str:
        name = str(name or "").strip()
        if not name:
            raise SchemeError("A class needs a name.")
        bad = [ch for ch in FORBIDDEN_IN_NAMES if ch in name]
        if bad:
            raise SchemeError(f"'{name}': a class name cannot hold {' or '.join(repr(b) for b in bad)} "
                              "(they separate the tags of a cell).")
        if name.upper() == "NULL":
            raise SchemeError("'NULL' cannot be a class name.")
        for c in self.classes:
            if c.name != ignore and c.name.casefold() == name.casefold():
                raise SchemeError(f"There is already a class '{c.name}'.")
        return name

    @staticmethod
    def check_color(color) -> str:
        text = color.name() if hasattr(color, "name") and callable(color.name) else str(color or "")
        text = text.strip().lower()
        if not _COLOR.match(text):
            raise SchemeError(f"Colour {text!r}: use \"#rrggbb\".")
        return text

    def next_value(self) -> int:
        used = {c.value for c in self.classes}
        value = max(used) + 1 if used else 1
        if value > MAX_VALUE:
            value = next((v for v in range(MAX_VALUE + 1) if v not in used), None)
            if value is None:
                raise SchemeError(f"No class value left (0..{MAX_VALUE}).")
        return value

    def next_color(self) -> str:
        used = {c.color.lower() for c in self.classes}
        return next((c for c in PALETTE if c not in used), PALETTE[len(self.classes) % len(PALETTE)])

    def add(self, name: str | None = None, color: str | None = None, value: int | None = None) -> SchemeClass:
        if value is None:
            value = self.next_value()
        value = int(value)
        if not 0 <= value <= MAX_VALUE:
            raise SchemeError(f"Class value {value} is outside 0..{MAX_VALUE}.")
        if any(c.value == value for c in self.classes):
            raise SchemeError(f"Class value {value} is taken.")
        if name is None:
            n = len(self.classes) + 1
            while any(c.name.casefold() == f"class {n}" for c in self.classes):
                n += 1
            name = f"Class {n}"
        item = SchemeClass(value, self.check_name(name), self.check_color(color or self.next_color()))
        self.classes.append(item)
        return item

    def rename(self, old: str, new: str) -> dict[str, str]:
        """Rename class ``old``; returns ``{old: new}`` for the tags to rewrite (empty when the
        name did not change)."""
        item = self.by_name(old)
        new = self.check_name(new, ignore=old)
        if new == old:
            return {}
        self.classes[self.classes.index(item)] = replace(item, name=new)
        return {old: new}

    def recolour(self, name: str, color) -> None:
        item = self.by_name(name)
        self.classes[self.classes.index(item)] = replace(item, color=self.check_color(color))

    def merge(self, names: Iterable[str], into: str) -> dict[str, str]:
        """Merge the classes ``names`` into class ``into`` (which stays, with its value and
        colour); returns ``{merged name: into}`` for the tags to rewrite."""
        target = self.by_name(into)
        gone = [self.by_name(n) for n in dict.fromkeys(names) if n != into]
        if len(self.classes) - len(gone) < MIN_CLASSES:
            raise SchemeError(f"A scheme keeps at least {MIN_CLASSES} classes; merge fewer.")
        self.classes = [c for c in self.classes if c not in gone]
        return {c.name: target.name for c in gone}

    def remove(self, name: str) -> dict[str, None]:
        """Remove class ``name``; returns ``{name: None}`` (its tags are dropped)."""
        item = self.by_name(name)
        if len(self.classes) <= MIN_CLASSES:
            raise SchemeError(f"A scheme keeps at least {MIN_CLASSES} classes.")
        self.classes.remove(item)
        return {item.name: None}

    def move(self, name: str, offset: int) -> None:
        """Move a class up (-1) or down (+1): the order is that of the number keys 1..9."""
        i = self.index_of(name)
        j = min(max(i + offset, 0), len(self.classes) - 1)
        self.classes.insert(j, self.classes.pop(i))

    # --- conversions -----------------------------------------------------------------------
    def validate(self) -> Scheme:
        """The scheme as the engine will read it; raises when it cannot be trained on."""
        if len(self.classes) < MIN_CLASSES:
            raise SchemeError(f"Define at least {MIN_CLASSES} classes to train.")
        for c in self.classes:
            self.check_name(c.name, ignore=c.name)
        return scheme_from_dict(self.to_dict())

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "ignore_value": 255,
                "classes": [{"value": c.value, "name": c.name, "color": c.color} for c in self.classes]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    def write_json(self, path: str | Path) -> Path:
        """The ``--classes`` file of a training run."""
        self.validate()
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_scheme(cls, scheme: Scheme) -> "EditableScheme":
        return cls(classes=list(scheme.classes), name=scheme.name or "user",
                   title=scheme.title or scheme.name or "My classes")

    @classmethod
    def from_dict(cls, data: dict) -> "EditableScheme":
        return cls.from_scheme(scheme_from_dict(data))

    @classmethod
    def from_file(cls, path: str | Path) -> "EditableScheme":
        return cls.from_scheme(load_scheme(path))

    @classmethod
    def default(cls) -> "EditableScheme":
        """The starting scheme: the bundled coarse land-cover classes, else two placeholders."""
        try:
            scheme = cls.from_scheme(find_scheme(DEFAULT_SCHEME))
            scheme.name, scheme.title = "user", "My classes"
            return scheme
        except SchemeError:
            out = cls()
            out.add("Class 1")
            out.add("Class 2")
            return out

    @classmethod
    def from_values(cls, values: Iterable) -> "EditableScheme":
        """Classes from the distinct values of a label field, as the engine makes them when no
        scheme is given: integer codes keep their value (named "class <code>"), names get
        1..K in sorted order."""
        numbers, names = set(), set()
        for v in values:
            if v is None or str(v).strip() == "" or str(v).upper() == "NULL":
                continue
            try:
                f = float(v)
                if f == int(f):
                    numbers.add(int(f))
                    continue
            except (TypeError, ValueError):
                pass
            names.add(str(v).strip())
        out = cls()
        for n in sorted(numbers):
            out.add(f"class {n}", value=n)
        for i, n in enumerate(sorted(names)):
            out.add(n, value=out.next_value() if numbers else i + 1)
        return out

    # --- the QGIS project ---------------------------------------------------------------
    def save_to_project(self, project: QgsProject | None = None) -> None:
        (project or QgsProject.instance()).writeEntry(PROJECT_SCOPE, PROJECT_KEY, self.to_json())

    @classmethod
    def load_from_project(cls, project: QgsProject | None = None) -> "EditableScheme | None":
        """The scheme saved in the project; None when it holds none (or an unreadable one)."""
        text, ok = (project or QgsProject.instance()).readEntry(PROJECT_SCOPE, PROJECT_KEY, "")
        if not ok or not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except (ValueError, SchemeError):
            return None
