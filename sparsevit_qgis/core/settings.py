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
# the basemaps the panel offers; "Custom…" takes any XYZ URL, an MBTiles file or a local XYZ folder
BASEMAP_PRESETS = (
    (DEFAULT_BASEMAP_NAME, DEFAULT_BASEMAP_URI),
    ("Esri World Imagery (satellite)",
     "type=xyz&url=https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/"
     "{z}/{y}/{x}&zmax=19&zmin=0"),
)
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


def set_basemap(name: str, uri: str) -> None:
    _set("basemap/name", name)
    _set("basemap/uri", uri)


def result_opacity() -> float:
    try:
        value = float(_get("style/opacity", DEFAULT_OPACITY, float))
    except (TypeError, ValueError):
        value = DEFAULT_OPACITY
    return min(1.0, max(0.0, value))


def set_result_opacity(value: float) -> None:
    _set("style/opacity", min(1.0, max(0.0, float(value))))


PROJECT_RUNS_FOLDER = "sparsevit_runs"
HOME_RUNS_FOLDER = "SparseViT runs"


def output_dir() -> str:
    """The output folder the user chose last; empty when none was ever chosen (see
    :func:`proposed_output_dir`)."""
    return _get("run/output_dir", "", str)


def set_output_dir(path: str) -> None:
    _set("run/output_dir", path or "")


def proposed_output_dir(project=None) -> str:
    """The output folder offered when none was ever chosen: ``<project folder>/sparsevit_runs``
    for a saved project, else ``~/SparseViT runs``. Not created here: a run creates it."""
    from pathlib import Path

    from qgis.core import QgsProject
    project = project or QgsProject.instance()
    if project.fileName() and project.absolutePath():
        return str(Path(project.absolutePath()) / PROJECT_RUNS_FOLDER)
    return str(Path.home() / HOME_RUNS_FOLDER)


def output_dir_or_proposal(project=None) -> str:
    """What the output folder field shows: the user's choice, else :func:`proposed_output_dir`."""
    return output_dir() or proposed_output_dir(project)


def is_proposed_output_dir(path: str, project=None) -> bool:
    """Whether ``path`` is the folder :func:`proposed_output_dir` offers (which a run may create)."""
    import os
    if not path:
        return False
    return os.path.normpath(os.path.expanduser(str(path))) == os.path.normpath(proposed_output_dir(project))


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


# --- where the engine computes (panel's Compute group; Processing has its own parameters) ---
def compute_device() -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; ``auto`` for anything else stored."""
    from .predict_job import JobError, normalize_device
    try:
        return normalize_device(_get("compute/device", "auto", str))
    except JobError:
        return "auto"


def set_compute_device(device: str) -> None:
    _set("compute/device", device or "auto")


def _int_setting(key: str, default: int, lowest: int) -> int:
    try:
        value = int(_get(key, default, int))
    except (TypeError, ValueError):
        return default
    return value if value >= lowest else default


def compute_threads() -> int:
    """CPU threads for torch; 0 (the default) is the engine's own choice."""
    return _int_setting("compute/threads", 0, 0)


def set_compute_threads(threads: int) -> None:
    _set("compute/threads", max(0, int(threads)))


def compute_precision() -> str:
    from .predict_job import PRECISIONS
    value = _get("compute/precision", "auto", str).strip().lower()
    return value if value in {v for v, _label in PRECISIONS} else "auto"


def set_compute_precision(precision: str) -> None:
    _set("compute/precision", precision or "auto")


def compute_batch_size() -> int:
    from .predict_job import DEFAULT_BATCH_SIZE
    return _int_setting("compute/batch_size", DEFAULT_BATCH_SIZE, 1)


def set_compute_batch_size(batch_size: int) -> None:
    _set("compute/batch_size", max(1, int(batch_size)))


# --- the panel's Export group: GeoPackage polygon options (Processing has its own parameters) ---
def _float_setting(key: str, default: float, lowest: float) -> float:
    try:
        value = float(_get(key, default, float))
    except (TypeError, ValueError):
        return default
    return value if value >= lowest else default


def export_min_area_pixels() -> int:
    """Polygons: patches smaller than this many pixels are merged into a neighbour; 0 (the
    default) keeps every patch."""
    return _int_setting("export/min_area_pixels", 0, 0)


def set_export_min_area_pixels(pixels: int) -> None:
    _set("export/min_area_pixels", max(0, int(pixels)))


def export_simplify() -> float:
    """Polygons: outline simplification tolerance in pixels; 0 (the default) keeps the exact
    pixel outlines."""
    return _float_setting("export/simplify", 0.0, 0.0)


def set_export_simplify(pixels: float) -> None:
    _set("export/simplify", max(0.0, float(pixels)))
