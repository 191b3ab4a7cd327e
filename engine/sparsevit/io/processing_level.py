"""Reading an input of one processing level (L1C top of atmosphere, L2A surface) with a model
trained on the other.

The default model learnt L1C digital numbers (EuroSAT is L1C). L2A differs in two ways:

- the aerosol (B01) and water-vapour (B09) bands measure something else after Sen2Cor's
  correction (L2A's B09 reads like B8A, about 7x the L1C value over land), so they are left out
  (the band-flexible models read the input without them);
- every other band is darker in the visible (no path radiance) and brighter in the infrared: a
  per-band line ``L1C ~ gain x L2A + offset`` brings it back towards what the model learnt.
  The lines are fitted on a real L1C/L2A pair of the same acquisition
  (``resources/radiometry/l2a_to_l1c.json``, remade by ``scripts/fit_level_conversion.py``).

One fixed line cannot know each scene's atmosphere (the fit is from a hazy June scene in
Punjab); it undoes the systematic part. Measured with the default model on 38 real BigEarthNet
L2A patches, the map's coarse image-level F1 rose from 0.618 to 0.676.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from ..model_bands import to_model_bands
from ..paths import resource

ATMOSPHERIC_BANDS = ("B01", "B09")
LEVELS = ("L1C", "L2A")
CONVERSION_FILE = ("radiometry", "l2a_to_l1c.json")
# median B09 / B8A over land (B8A above this DN): L1C 0.13-0.64 on 356 EuroSAT-MS patches and
# three real L1C scenes, L2A 0.97-1.06 on 38 BigEarthNet patches and two real L2A scenes
_LAND_B8A = 800.0
_L1C_MAX_RATIO, _L2A_MIN_RATIO = 0.75, 0.85


def level_from_b09(b09: np.ndarray, b8a: np.ndarray, min_pixels: int = 100
                   ) -> tuple[str | None, float | None]:
    """``("L1C" | "L2A" | None, ratio)`` judged from the pixels (model DN, no offset): in L1C the
    water-vapour band B09 is much darker than B8A over land, after Sen2Cor's correction it is not.
    None where too little land is seen or the ratio falls between the two levels."""
    b09, b8a = np.asarray(b09, np.float64).ravel(), np.asarray(b8a, np.float64).ravel()
    land = np.isfinite(b09) & np.isfinite(b8a) & (b8a > _LAND_B8A)
    if int(land.sum()) < min_pixels:
        return None, None
    ratio = float(np.median(b09[land]) / np.median(b8a[land]))
    level = "L1C" if ratio <= _L1C_MAX_RATIO else "L2A" if ratio >= _L2A_MIN_RATIO else None
    return level, round(ratio, 3)


def pixels_note(ratio: float) -> str:
    return f"its pixels: B09/B8A {ratio:.2f} over land"


@dataclass(frozen=True)
class LevelConversion:
    """Per-band ``L1C = gain x L2A + offset`` (model DN), and where it was fitted."""

    gain: dict[str, float]
    offset: dict[str, float]
    source: str
    correlation: dict[str, float]

    def to_dict(self) -> dict:
        return {"convention": "L1C DN = gain x L2A DN + offset (reflectance x 10000, no offset)",
                "source": self.source,
                "bands": {b: {"gain": round(self.gain[b], 5), "offset": round(self.offset[b], 2),
                              "r": round(self.correlation[b], 5)} for b in self.gain}}

    @classmethod
    def from_dict(cls, doc: dict, path: Path | str = "") -> "LevelConversion":
        try:
            bands = doc["bands"]
            return cls({b: float(v["gain"]) for b, v in bands.items()},
                       {b: float(v["offset"]) for b, v in bands.items()},
                       str(doc.get("source", "")), {b: float(v.get("r", np.nan)) for b, v in bands.items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"cannot read the L2A -> L1C conversion ({exc!r})", path=str(path),
                             fix="restore the file from the repository or remake it with "
                                 "scripts/fit_level_conversion.py") from None

    def apply(self, data: np.ndarray, bands: Sequence[str], source: str, target: str) -> np.ndarray:
        """``data [len(bands), H, W]`` of level ``source`` as level ``target`` (a copy); bands
        without a line are returned unchanged."""
        out = np.array(data, dtype=np.float32, copy=True)
        if source == target:
            return out
        if (source, target) not in (("L2A", "L1C"), ("L1C", "L2A")):
            raise ValueError(f"no conversion from {source} to {target}")
        for i, b in enumerate(bands):
            if b not in self.gain:
                continue
            g, o = np.float32(self.gain[b]), np.float32(self.offset[b])
            out[i] = out[i] * g + o if source == "L2A" else (out[i] - o) / g
        return out


def fit_conversion(l2a: np.ndarray, l1c: np.ndarray, bands: Sequence[str], valid: np.ndarray,
                   source: str) -> LevelConversion:
    """Least-squares lines ``L1C = gain x L2A + offset`` per band over the ``valid`` pixels of a
    pair of the same acquisition (``[len(bands), H, W]`` each, model DN)."""
    gain, offset, corr = {}, {}, {}
    for i, b in enumerate(bands):
        x, y = l2a[i][valid].astype(np.float64), l1c[i][valid].astype(np.float64)
        g, o = np.polyfit(x, y, 1)
        gain[b], offset[b], corr[b] = float(g), float(o), float(np.corrcoef(x, y)[0, 1])
    return LevelConversion(gain, offset, source, corr)


def load_conversion(path: Path | None = None) -> LevelConversion:
    path = Path(path) if path is not None else resource(*CONVERSION_FILE)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read the L2A -> L1C conversion ({exc})", path=str(path),
                         fix="restore the file from the repository or remake it with "
                             "scripts/fit_level_conversion.py") from None
    return LevelConversion.from_dict(doc, path)


@dataclass(frozen=True)
class LevelPlan:
    """What a model trained on ``trained`` does with an input of ``level``."""

    level: str | None
    trained: str | None
    dropped: tuple[str, ...] = ()
    conversion: LevelConversion | None = None
    judged_from: str | None = None  # how the level was found when the input did not say it

    @property
    def converts(self) -> bool:
        return self.conversion is not None

    def apply(self, data: np.ndarray, bands: Sequence[str], valid: np.ndarray | None = None) -> np.ndarray:
        """``data [len(bands), H, W]`` converted to the model's level; pixels outside ``valid``
        (no data, held as 0 by the reader) are kept as they are."""
        if self.conversion is None:
            return data
        out = self.conversion.apply(data, bands, self.level, self.trained)
        return out if valid is None else np.where(valid, out, data)

    def describe(self) -> str | None:
        if not self.dropped and self.conversion is None:
            return None
        parts = []
        if self.dropped:
            parts.append(f"{', '.join(self.dropped)} left out (atmospheric correction changes what "
                         "the aerosol and water-vapour bands measure)")
        if self.conversion is not None:
            parts.append(f"the other bands converted {self.level} -> {self.trained} with per-band "
                         f"lines fitted on {self.conversion.source}")
        how = f" (judged from {self.judged_from})" if self.judged_from else ""
        return f"the input is {self.level}{how}, the model learnt {self.trained}: " + "; ".join(parts)

    def to_dict(self) -> dict:
        return {"level": self.level, "judged_from": self.judged_from, "trained_on": self.trained,
                "dropped": list(self.dropped),
                "converted": None if self.conversion is None else f"{self.level} -> {self.trained}"}


def plan_levels(used: Iterable[str], level: str | None, trained: str | None, flexible: bool,
                conversion: LevelConversion | None = None, judged_from: str | None = None) -> LevelPlan:
    """Nothing to do when either level is unknown or they agree. Otherwise a band-flexible model
    leaves :data:`ATMOSPHERIC_BANDS` out, and the other bands are converted between the levels
    (a model that needs every band keeps them, converted too)."""
    if not level or not trained or level == trained or level not in LEVELS or trained not in LEVELS:
        return LevelPlan(level, trained)
    dropped = tuple(b for b in used if b in ATMOSPHERIC_BANDS) if flexible else ()
    return LevelPlan(level, trained, dropped, conversion if conversion is not None else load_conversion(),
                     judged_from)


def array_for_model(data: np.ndarray, have: Sequence[str], model_bands: Sequence[str],
                    trained: str | None, flexible: bool, level: str | None = None
                    ) -> tuple[np.ndarray, LevelPlan]:
    """``data [len(have), H, W]`` (model DN) as the model reads it, with the same level handling
    as ``predict`` (level judged from B09/B8A when not given): for benchmarks and datasets that
    hold arrays, not files."""
    have = list(have)
    judged = None
    if level is None and trained and "B09" in have and "B8A" in have:
        level, ratio = level_from_b09(data[have.index("B09")], data[have.index("B8A")])
        judged = pixels_note(ratio) if level else None
    plan = plan_levels([b for b in have if b in model_bands], level, trained, flexible,
                       judged_from=judged)
    keep = [i for i, b in enumerate(have) if b not in plan.dropped]
    part = plan.apply(np.asarray(data, np.float32)[keep], [have[i] for i in keep])
    return to_model_bands(part, tuple(have[i] for i in keep), model_bands), plan


def plan_for_scene(scene, used: Iterable[str], trained: str | None, flexible: bool
                   ) -> tuple[LevelPlan, dict | None]:
    """:func:`plan_levels` for an opened S2 scene: its level from its metadata, else judged
    from its pixels (returned as ``{"level", "b09_b8a"}`` for the run record, else None)."""
    from .scene import level_from_pixels

    level = scene.radiometry.level if scene.radiometry is not None else None
    judged = None
    if level is None and trained:
        level, ratio = level_from_pixels(scene)
        judged = {"level": level, "b09_b8a": ratio}
    plan = plan_levels(used, level, trained, flexible,
                       judged_from=pixels_note(judged["b09_b8a"]) if judged and level else None)
    return plan, judged
