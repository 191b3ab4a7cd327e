"""The pseudomask/refinement report: one PNG grid per scene and a markdown table of scores.

A scene row shows the RGB image, then one class map per method (in the order given, e.g.
Grad-CAM, attention, pruned attention, refined it1/it2) and the ground truth last, every map
coloured with the class scheme's palette and a legend of the classes present. The markdown
file holds the score table (mIoU, OA, AA, images) and links the PNGs, so it reads on GitHub
and in any markdown viewer.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..io.atomic import write_text_atomic
from ..schemes import IGNORE
from .figures import colorize, grid_png, palette_lut


@dataclass
class SceneMaps:
    """One scene: ``rgb`` uint8 [H,W,3], ``maps`` method -> class indices [H,W] (255 = ignore),
    ``truth`` class indices or None, ``labels`` the scene's image-level class indices."""
    id: str
    rgb: np.ndarray
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    truth: np.ndarray | None = None
    labels: Sequence[int] = ()


def _safe_name(scene_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", scene_id)[:80] or "scene"


def _scene_miou(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean IoU over the classes present in truth or prediction of this one scene."""
    valid = truth != IGNORE
    p, t = pred[valid].astype(np.int64), truth[valid].astype(np.int64)
    inter = np.bincount(t[p == t], minlength=k)
    union = np.bincount(t, minlength=k) + np.bincount(p, minlength=k) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else float("nan")


def write_scene_report(out_dir: str | Path, scenes: Sequence[SceneMaps], class_names: Sequence[str],
                       colors: Sequence[str], scores: Mapping[str, Mapping[str, float]] | None = None,
                       title: str = "Pseudomask report", notes: Sequence[str] = (),
                       cell: int = 160) -> Path:
    """Write ``scene_<id>.png`` per scene and ``report.md``; returns the markdown path.

    ``scores``: entry -> {"miou", "overall_accuracy", "average_accuracy", "images"} for the
    table (e.g. ``EvaluationSet.summary()`` flattened). Column titles carry each map's own
    scene mIoU when the truth is known, so a reader sees which map is right where.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lut = palette_lut(colors)
    k = len(class_names)
    lines = [f"# {title}", ""]
    lines += [f"- {n}" for n in notes]
    if notes:
        lines.append("")
    if scores:
        lines += ["| entry | mIoU | OA | AA | images |", "|---|---|---|---|---|"]
        for name, s in scores.items():
            lines.append(f"| {name} | {s.get('miou', float('nan')):.4f} | "
                         f"{s.get('overall_accuracy', float('nan')):.4f} | "
                         f"{s.get('average_accuracy', float('nan')):.4f} | {s.get('images', '')} |")
        lines.append("")
    for sc in scenes:
        titles, row = ["RGB"], [sc.rgb]
        for name, m in sc.maps.items():
            if sc.truth is not None:
                titles.append(f"{name} {_scene_miou(m, sc.truth, k):.2f}")
            else:
                titles.append(name)
            row.append(colorize(m, lut))
        if sc.truth is not None:
            titles.append("ground truth")
            row.append(colorize(sc.truth, lut))
        shown = set()
        for m in list(sc.maps.values()) + ([sc.truth] if sc.truth is not None else []):
            shown.update(int(v) for v in np.unique(m) if v != IGNORE and v < k)
        legend = [(class_names[c], colors[c]) for c in sorted(shown)]
        name = f"scene_{_safe_name(sc.id)}.png"
        label_names = ", ".join(class_names[c] for c in sc.labels)
        grid_png(out / name, [row], titles, legend=legend, cell=cell,
                 title=f"{sc.id}: labels {label_names or '-'} (titles: map and its mIoU on this scene)")
        lines += [f"## {sc.id}", "", f"Image labels: {label_names or '-'}", "", f"![{sc.id}]({name})", ""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path
