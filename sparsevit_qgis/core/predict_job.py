"""What the dock, the Processing algorithm and the screenshot script share about a prediction:
one typed request (:class:`PredictRequest`, turned into the engine's arguments by
``to_args``), per-run output folders, the ``--area`` arguments, the model to use and where the
engine computes (:func:`compute_args`: device, CPU threads, precision, batch size; shared with
``sparsevit fit``).

No widgets here, so every caller (and a test) builds the same engine arguments.
"""
from __future__ import annotations

import datetime as _dt
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from qgis.core import QgsCoordinateReferenceSystem, QgsRectangle

from . import settings
from .band_mapping import band_order_args

# The class levels a prediction can write (value, label); the first is the engine's default.
# "both" gives the detailed map alone for a model whose classes have no coarse level.
LEVELS = (
    ("both", "Both: detailed and coarse land cover"),
    ("detailed", "Detailed: the model's classes (e.g. 10 EuroSAT)"),
    ("coarse", "Coarse: Water, Built-up, Cropland, Grassland, Forest"),
)


# Where the engine computes. "auto" (and 0 threads, the default batch size) means the engine's
# own choice and gives no argument at all: CUDA when the engine's torch sees a GPU, torch's
# default thread count, bf16 autocast on GPUs and CPUs with native bf16, else fp32 (engine/sparsevit/devices.py,
# commands/predict.py).
DEVICE_AUTO = "auto"
DEVICES = (  # (value, label) the panel offers; cuda:N entries are added for each GPU found
    ("auto", "Auto (GPU when the engine finds one)"),
    ("cpu", "CPU"),
    ("cuda", "CUDA GPU"),
)
PRECISIONS = (
    ("auto", "Auto (bf16 on GPUs and bf16 CPUs, else fp32)"),
    ("fp32", "fp32 (exact)"),
    ("bf16", "bf16 (faster on GPUs and CPUs with AMX/AVX512-BF16)"),
)
DEFAULT_BATCH_SIZE = 8  # the engine's --batch-size default
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class JobError(ValueError):
    """A form or parameter value the engine cannot be started with; the message says the fix."""


def normalize_device(device: str | None) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (any case, empty = auto); JobError otherwise."""
    value = (device or DEVICE_AUTO).strip().lower() or DEVICE_AUTO
    if not _DEVICE_RE.match(value):
        raise JobError(f"Unknown device '{device}'; use auto, cpu, cuda or cuda:N (N: the GPU's number).")
    return value


def normalize_precision(precision: str | None) -> str:
    value = (precision or "auto").strip().lower() or "auto"
    if value not in {v for v, _label in PRECISIONS}:
        raise JobError(f"Unknown precision '{precision}'; use "
                       + ", ".join(v for v, _label in PRECISIONS) + ".")
    return value


def compute_args(device: str | None = DEVICE_AUTO, threads: int = 0, precision: str | None = None,
                 batch_size: int | None = None) -> list[str]:
    """``--device``, ``--threads``, ``--precision``, ``--batch-size``, each only when it is not
    the engine's own choice (``auto``, 0 threads, None/``auto`` precision, None, 0 or
    :data:`DEFAULT_BATCH_SIZE`), so a run with the defaults gives the engine no argument."""
    args: list[str] = []
    device = normalize_device(device)
    if device != DEVICE_AUTO:
        args += ["--device", device]
    threads = int(threads or 0)
    if threads < 0:
        raise JobError(f"The CPU threads must be positive (or 0 for the engine's default), not {threads}.")
    if threads:
        args += ["--threads", str(threads)]
    if precision is not None:
        precision = normalize_precision(precision)
        if precision != "auto":
            args += ["--precision", precision]
    if batch_size is not None:
        batch_size = int(batch_size)
        if batch_size < 0:
            raise JobError(f"The batch size must be positive (or 0 for the engine's default), not {batch_size}.")
        if batch_size not in (0, DEFAULT_BATCH_SIZE):
            args += ["--batch-size", str(batch_size)]
    return args


def input_stem(path: str) -> str:
    """The name the engine gives its outputs: the file stem, or the folder name for band folders."""
    p = Path(path.split("|")[0])
    return p.name if p.is_dir() else p.stem


def run_folder(out_dir: str | Path, stem: str, when: _dt.datetime | None = None) -> Path:
    """``<out>/<stem>_<yyyymmdd-hhmmss>``, suffixed ``_2``, ``_3``... when that exists, so two
    runs (even within one second) never write into the same folder."""
    when = when or _dt.datetime.now()
    base = Path(out_dir) / f"{stem}_{when:%Y%m%d-%H%M%S}"
    candidate, n = base, 2
    while candidate.exists():
        candidate = base.with_name(f"{base.name}_{n}")
        n += 1
    return candidate


def discard_run_folder(folder: str | Path) -> bool:
    """Remove a run folder after a cancelled or failed run. Only the engine's hidden staging
    folders (``.<stem>.partial-*``, left behind when the engine had to be killed) are deleted
    with it; a folder holding anything else is kept. True when the folder is gone."""
    folder = Path(folder)
    if not folder.is_dir():
        return True
    for entry in folder.iterdir():
        if entry.name.startswith(".") and ".partial" in entry.name:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                try:
                    entry.unlink()
                except OSError:
                    pass
    try:
        folder.rmdir()
    except OSError:
        return False
    return True


def result_is_complete(result: dict | None) -> bool:
    """True when a ``predict`` result event arrived and every output it names exists: the
    engine had committed the whole result (its outputs appear only together, docs/protocol.md)
    before a cancel reached it, so the result is real and is kept, not thrown away."""
    outputs = (result or {}).get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return False
    return all(isinstance(p, str) and Path(p).is_file() for p in outputs.values())


def leftover_files(folder: str | Path) -> list[str]:
    """Names of what a run folder still holds (for a message that says why it was kept)."""
    folder = Path(folder)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def crs_arg(crs: QgsCoordinateReferenceSystem) -> str:
    """A CRS the engine (rasterio's ``CRS.from_user_input``) reads: the authid, else WKT."""
    if not crs.isValid():
        raise JobError("The area has no valid CRS; set the project or layer CRS first.")
    return crs.authid() or crs.toWkt()


def area_args(rect: QgsRectangle, crs: QgsCoordinateReferenceSystem | None) -> list[str]:
    """``--area xmin,ymin,xmax,ymax [--area-crs CRS]`` (QGIS extent strings are ordered
    xmin,xmax,ymin,ymax; the engine wants the other order). Without a CRS the engine reads the
    rectangle in the raster's own CRS."""
    if rect is None or rect.isNull() or rect.isEmpty():
        raise JobError("The area is empty; choose another extent or the whole raster.")
    value = ",".join(repr(float(v)) for v in (rect.xMinimum(), rect.yMinimum(),
                                              rect.xMaximum(), rect.yMaximum()))
    # One token: argparse would read a leading "-0.78,..." as an option, not as the value.
    args = [f"--area={value}"]
    if crs is not None and crs.isValid():
        args += ["--area-crs", crs_arg(crs)]
    return args


def level_args(level: str | None) -> list[str]:
    """``--level detailed|coarse``; nothing for "both", the engine's default (which, unlike an
    explicit ``--level both``, also works for a model without a coarse level)."""
    level = (level or "both").strip().lower()
    if level not in {value for value, _label in LEVELS}:
        raise JobError(f"Unknown land-cover level '{level}'; use one of "
                       + ", ".join(value for value, _label in LEVELS) + ".")
    return [] if level == "both" else ["--level", level]


def resolve_model(chosen: str | None) -> str:
    """The model to pass as ``--model``: the chosen folder/file, else the bundled default.

    Always explicit, so the run log names the model, and a missing default model is reported
    here with the fix instead of as an engine error about a path the user never typed.
    """
    chosen = (chosen or "").strip()
    if chosen.endswith("bundle.json"):  # file pickers select the file, the engine wants its folder
        chosen = str(Path(chosen).parent)
    if chosen:
        p = Path(chosen)
        if not p.exists():
            raise JobError(f"{chosen}: the model folder or file does not exist.")
        if p.is_dir() and not (p / "bundle.json").is_file():
            raise JobError(f"{chosen}: not a model folder (no bundle.json in it). Choose the "
                           "folder that holds bundle.json, or a classifier .safetensors file.")
        return str(p)
    default = settings.default_model_path()
    if default is None or not (default / "bundle.json").is_file():
        raise JobError(settings.missing_default_model_message())
    return str(default)


@dataclass
class PredictRequest:
    """One ``sparsevit predict`` run as the dock and Processing fill it in.

    ``model``: a model folder, its ``bundle.json`` or a classifier file; empty for the bundled
    default (resolved by :func:`resolve_model`). ``area``: ``(rectangle, its CRS)`` or None for
    the whole raster. ``tile``: 0 for the model's own tile size. ``level``: see :data:`LEVELS`.
    ``device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``), ``threads`` (0: the engine's default),
    ``precision`` (see :data:`PRECISIONS`), ``batch_size`` (tiles per batch; 0 or
    :data:`DEFAULT_BATCH_SIZE`: the engine's default): see :func:`compute_args`.
    ``band_order``: the ``--band-order`` value (names in file order, ``-`` for a band left out,
    or a preset: eurosat, esa, esa12); None or empty lets the engine name the bands.
    """

    s2: str
    out: str
    model: str = ""
    s1: str | None = None
    area: tuple[QgsRectangle, QgsCoordinateReferenceSystem | None] | None = None
    tile: int = 0
    level: str | None = None
    attention: bool = False
    polygons: bool = False
    overview: bool = True
    device: str = DEVICE_AUTO
    threads: int = 0
    precision: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE
    band_order: str | None = None
    # cloudy pixels -> no data in the maps (the product's cloud mask, else a brightness flag)
    cloud_mask: bool = True

    def to_args(self) -> list[str]:
        """The engine arguments; raises :class:`JobError` with the fix for a value it cannot run."""
        if not (self.s2 or "").strip():
            raise JobError("Choose a Sentinel-2 raster (layer, file or folder).")
        if not (self.out or "").strip():
            raise JobError("Choose an output folder.")
        if self.tile < 0:
            raise JobError(f"The tile size must be positive (or 0 for the model's own), not {self.tile}.")
        args = [self.s2]
        if self.s1:
            args += ["--s1", self.s1]
        args += ["--model", resolve_model(self.model), "--out", str(self.out)]
        if self.area is not None:
            args += area_args(*self.area)
        args += compute_args(self.device, self.threads, self.precision, self.batch_size)
        if self.tile > 0:
            args += ["--tile", str(self.tile)]
        args += level_args(self.level)
        if self.attention:
            args.append("--attention")
        if self.polygons:
            args.append("--polygons")
        if not self.overview:
            args.append("--no-overview")
        if not self.cloud_mask:
            args.append("--no-cloud-mask")
        return args + band_order_args(self.band_order)
