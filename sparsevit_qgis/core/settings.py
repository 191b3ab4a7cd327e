"""Plugin settings, stored with QgsSettings under the ``sparsevit/`` prefix.

Each setting is a small typed accessor so every module reads the same key and default.
"""
from __future__ import annotations

from qgis.core import QgsSettings

PREFIX = "sparsevit/"

DEFAULT_BASEMAP_URI = (
    "type=xyz&url=https://tile.openstreetmap.org/{z}/{x}/{y}.png&zmax=19&zmin=0"
)
DEFAULT_BASEMAP_NAME = "OpenStreetMap"
DEFAULT_OPACITY = 0.8


def _get(key: str, default, type_=str):
    value = QgsSettings().value(PREFIX + key, default, type=type_)
    return default if value is None else value


def _set(key: str, value) -> None:
    QgsSettings().setValue(PREFIX + key, value)


def _remove(key: str) -> None:
    QgsSettings().remove(PREFIX + key)


def python_path() -> str:
    """The engine interpreter chosen by the user; empty means auto-detect."""
    return _get("engine/python", "", str).strip()


def set_python_path(path: str | None) -> None:
    if path:
        _set("engine/python", str(path))
    else:
        _remove("engine/python")


def basemap_uri() -> str:
    return _get("basemap/uri", DEFAULT_BASEMAP_URI, str).strip() or DEFAULT_BASEMAP_URI


def basemap_name() -> str:
    return _get("basemap/name", DEFAULT_BASEMAP_NAME, str) or DEFAULT_BASEMAP_NAME


def result_opacity() -> float:
    try:
        value = float(_get("style/opacity", DEFAULT_OPACITY, float))
    except (TypeError, ValueError):
        value = DEFAULT_OPACITY
    return min(1.0, max(0.0, value))


def set_result_opacity(value: float) -> None:
    _set("style/opacity", min(1.0, max(0.0, float(value))))


def output_dir() -> str:
    return _get("run/output_dir", "", str)


def set_output_dir(path: str) -> None:
    _set("run/output_dir", path or "")


def model_path() -> str:
    """A model folder (bundle.json) or classifier file chosen by the user; empty means the
    bundled default model (:func:`default_model_path`)."""
    return _get("run/model", "", str)


def default_model_path():
    """``resources/models/default`` of the plugin's resources (None without resources)."""
    from .resources import resources_dir
    res = resources_dir()
    return res / "models" / "default" if res is not None else None


def missing_default_model_message() -> str:
    where = default_model_path()
    return ("The bundled default model is missing ({0}). Choose a model folder (with "
            "bundle.json) or a classifier .safetensors file under Model, or reinstall the "
            "plugin with its resources.").format(where or "no resources folder found")


def set_model_path(path: str) -> None:
    _set("run/model", path or "")


def trained_model_paths() -> list[str]:
    """Model folders trained in the panel (newest first), as stored; see
    :mod:`~.model_registry` for the ones that still exist."""
    import json
    text = _get("models/trained", "", str)
    try:
        paths = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(p) for p in paths if isinstance(p, str) and p.strip()] if isinstance(paths, list) else []


def set_trained_model_paths(paths) -> None:
    import json
    _set("models/trained", json.dumps([str(p) for p in paths]))
