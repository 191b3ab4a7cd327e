"""The models the model selector lists: the bundled default and the user's trained models (model
bundle folders written by ``sparsevit fit``, remembered in QgsSettings), each with a name and a
summary read from its ``bundle.json`` card with plain JSON (never the engine)."""
from __future__ import annotations

import json
from pathlib import Path

from . import settings

MAX_REMEMBERED = 50


def model_folder(path: str | Path) -> Path:
    """The bundle folder of a model path (its ``bundle.json`` given: the folder)."""
    p = Path(str(path).strip())
    return p.parent if p.name == "bundle.json" else p


def is_bundle(path: str | Path) -> bool:
    return (model_folder(path) / "bundle.json").is_file()


def trained_models() -> list[str]:
    """Remembered trained models that are still model folders, newest first."""
    return [p for p in settings.trained_model_paths() if is_bundle(p)]


def add_trained_model(path: str | Path) -> str:
    folder = str(model_folder(path))
    paths = [folder] + [p for p in settings.trained_model_paths() if str(model_folder(p)) != folder]
    settings.set_trained_model_paths(paths[:MAX_REMEMBERED])
    return folder


def forget_trained_model(path: str | Path) -> None:
    folder = str(model_folder(path))
    settings.set_trained_model_paths([p for p in settings.trained_model_paths()
                                      if str(model_folder(p)) != folder])


def read_bundle(path: str | Path) -> dict:
    """``bundle.json`` as a dict; empty when missing or unreadable."""
    try:
        data = json.loads((model_folder(path) / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _card(bundle: dict) -> dict:
    card = bundle.get("card")
    return card if isinstance(card, dict) else {}


def _class_names(card: dict, folder: Path) -> list[str]:
    scheme = card.get("scheme")
    if not isinstance(scheme, dict):
        try:  # a trained bundle carries its scheme.json
            scheme = json.loads((folder / "scheme.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            scheme = None
    if isinstance(scheme, dict) and isinstance(scheme.get("classes"), list):
        return [str(c.get("name")) for c in scheme["classes"] if isinstance(c, dict) and c.get("name")]
    return []


def model_label(path: str | Path) -> str:
    """A short name: the card's ``name``/``title``, else the run folder of ``<run>/model``."""
    folder = model_folder(path)
    card = _card(read_bundle(folder))
    for key in ("name", "title"):
        if isinstance(card.get(key), str) and card[key].strip():
            return card[key].strip()
    return folder.parent.name if folder.name == "model" and folder.parent.name else folder.name


def _number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def model_summary(path: str | Path) -> str:
    """Lines for a tooltip: where it is, its classes, what it was trained on, its scores."""
    folder = model_folder(path)
    bundle = read_bundle(folder)
    if not bundle:
        return f"{folder}\n(no readable bundle.json)"
    card = _card(bundle)
    lines = [str(folder)]
    for key in ("summary", "description"):
        if isinstance(card.get(key), str) and card[key].strip():
            lines.append(card[key].strip())
            break
    names = _class_names(card, folder)
    if names:
        lines.append(f"{len(names)} classes: " + ", ".join(names))
    elif isinstance(card.get("scheme"), str):
        lines.append(f"classes: {card['scheme']}")
    data = card.get("data")
    if isinstance(data, dict) and data.get("name"):
        lines.append(f"trained on: {data['name']}")
    sources = card.get("sources")
    if isinstance(sources, list) and sources:
        lines.append("trained on: " + ", ".join(Path(str(s)).name for s in sources[:5])
                     + (f" (+{len(sources) - 5})" if len(sources) > 5 else ""))
    tiles = card.get("tiles")
    if isinstance(tiles, dict) and tiles:
        lines.append("tiles: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in tiles.items()))
    metrics = card.get("metrics")
    if isinstance(metrics, dict):
        flat = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if flat:
            lines.append("scores: " + ", ".join(f"{k} {_number(v)}" for k, v in flat[:6]))
    classifier = card.get("classifier")
    if isinstance(classifier, dict) and isinstance(classifier.get("test_macro_f1"), (int, float)):
        lines.append(f"classifier macro-F1 {classifier['test_macro_f1']:.3f}")
    if bundle.get("tile"):
        lines.append(f"tile {bundle['tile']} px")
    return "\n".join(lines)
