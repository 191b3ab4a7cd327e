"""Window-by-window GeoTIFF writers for classified (uint8) and float rasters.

Both write into a temporary tiled GeoTIFF beside the target (see :mod:`sparsevit.io.atomic`),
then lay it out as a Cloud Optimized GeoTIFF (512 px tiles, DEFLATE, internal overviews) and
rename it over the target only when everything succeeded. Nothing larger than one window and
GDAL's bounded block cache is ever in memory, so a full 10980 x 10980 tile writes in well under
500 MB. Usage::

    with ClassifiedWriter(out, scene.grid, scheme) as w:
        for tile in tile_windows(scene.grid.width, scene.grid.height, 512, 64):
            data, valid = scene.read(tile.window)
            w.write(tile.crop(predict(data)), tile.core)
"""
from __future__ import annotations

import os
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.windows import Window

from ..errors import OutputError
from ..schemes import IGNORE
from .atomic import atomic_path, write_text_atomic
from .scene import Grid
from .styles import CLASSES_TAG, class_entries, classes_tag, colormap, paletted_qml, pam_xml, qml_path

# GDAL's block cache defaults to 5% of RAM; a fixed cap keeps the writers' memory predictable.
_CACHE_BYTES = 128 * 1024 * 1024


def cog_available() -> bool:
    with rasterio.Env() as env:
        return "COG" in env.drivers()


class RasterWriter:
    """Write a raster on ``grid`` window by window, atomically, as a COG-like GeoTIFF.

    Use as a context manager: the file appears at ``path`` only when the ``with`` block ends
    without an exception; otherwise no file (and no temporary file) is left and an existing
    file at ``path`` is untouched.
    """

    def __init__(self, path: str | Path, grid: Grid, *, dtype: str = "float32", count: int = 1,
                 nodata: float | None = None, descriptions: Sequence[str] | None = None,
                 tags: dict | None = None, band_tags: dict | None = None,
                 colormap: dict | None = None, overview_resampling: str = "average",
                 cog: bool = True, blocksize: int = 512):
        self.path = Path(path)
        self.grid = grid
        self.dtype = np.dtype(dtype).name
        self.count = count
        self.nodata = nodata
        self.descriptions = list(descriptions) if descriptions else None
        self.tags = tags or {}
        self.band_tags = band_tags or {}
        self.colormap = colormap
        self.overview_resampling = overview_resampling
        self.cog = cog and cog_available()
        self.blocksize = blocksize
        self._stack: ExitStack | None = None
        self._ds = None
        self._tmp: Path | None = None
        self._stage: Path | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> "RasterWriter":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc_type, exc, tb)

    def open(self) -> None:
        stack = ExitStack()
        try:
            self._tmp = stack.enter_context(atomic_path(self.path, suffix=".tif"))
            stack.enter_context(rasterio.Env(GDAL_CACHEMAX=_CACHE_BYTES))
            # The COG driver can only copy a finished dataset: stage first, lay out at close.
            self._stage = Path(str(self._tmp) + ".stage.tif") if self.cog else self._tmp
            stack.callback(self._remove_stage)
            profile = dict(driver="GTiff", width=self.grid.width, height=self.grid.height,
                           count=self.count, dtype=self.dtype, nodata=self.nodata,
                           transform=self.grid.transform, tiled=True,
                           blockxsize=self.blocksize, blockysize=self.blocksize,
                           compress="deflate", bigtiff="IF_SAFER")
            if self.grid.crs is not None:
                profile["crs"] = self.grid.crs
            if np.dtype(self.dtype).kind == "f":
                profile["predictor"] = 3
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                self._ds = rasterio.open(self._stage, "w", **profile)
        except RasterioIOError as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise OutputError(f"cannot create the output ({exc})", path=self.path,
                              fix="check the folder is writable and has free space") from exc
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack = stack

    def write(self, data: np.ndarray, window: Window | None = None) -> None:
        """Write ``data`` ([H,W] or [C,H,W]) at ``window`` (default: the whole grid)."""
        if self._ds is None:
            raise RuntimeError("writer is not open")
        arr = np.asarray(data)
        if arr.ndim == 2:
            arr = arr[None]
        if window is None:
            window = Window(0, 0, self.grid.width, self.grid.height)
        if arr.shape != (self.count, int(window.height), int(window.width)):
            raise ValueError(f"data shape {arr.shape} does not match window "
                             f"{int(window.height)}x{int(window.width)} and {self.count} band(s)")
        self._ds.write(arr.astype(self.dtype, copy=False), window=window)

    def close(self) -> Path:
        """Finish the file (metadata, overviews, COG layout, sidecars) and move it into place."""
        if self._stack is None:
            return self.path
        stack, self._stack = self._stack, None
        try:
            self._finish_dataset()
            self._layout()
            self.write_sidecars(self._tmp)
        except BaseException as exc:
            self._close_ds_quietly()
            if not stack.__exit__(type(exc), exc, exc.__traceback__):
                raise
            return self.path
        stack.close()  # commits: renames the temporary file (and .aux.xml) over the target
        self.after_commit()
        return self.path

    def abort(self, exc_type=None, exc=None, tb=None) -> None:
        """Drop everything written so far."""
        if self._stack is None:
            return
        stack, self._stack = self._stack, None
        self._close_ds_quietly()
        if exc is None:
            exc_type, exc = RuntimeError, RuntimeError("writer aborted")
        try:
            stack.__exit__(exc_type, exc, tb)
        except BaseException as err:
            if err is not exc:
                raise

    # -- steps ------------------------------------------------------------------------------
    def _finish_dataset(self) -> None:
        ds = self._ds
        if self.colormap:
            ds.write_colormap(1, self.colormap)
        if self.descriptions:
            for i, d in enumerate(self.descriptions, start=1):
                ds.set_band_description(i, d)
        if self.tags:
            ds.update_tags(**self.tags)
        for b, t in self.band_tags.items():
            ds.update_tags(b, **t)
        self._ds = None
        ds.close()

    def _layout(self) -> None:
        resampling = self.overview_resampling
        if self.cog:
            rasterio.shutil.copy(str(self._stage), str(self._tmp), driver="COG",
                                 COMPRESS="DEFLATE", BLOCKSIZE=str(self.blocksize),
                                 OVERVIEW_RESAMPLING=resampling.upper(), BIGTIFF="IF_SAFER",
                                 NUM_THREADS="2", **({"PREDICTOR": "YES"}
                                                     if np.dtype(self.dtype).kind == "f" else {}))
            self._remove_stage()
            return
        factors = []
        f = 2
        while max(self.grid.width, self.grid.height) / f >= self.blocksize / 2:
            factors.append(f)
            f *= 2
        if factors:
            with rasterio.open(self._tmp, "r+") as ds:
                ds.build_overviews(factors, Resampling[resampling])
                ds.update_tags(ns="rio_overview", resampling=resampling)

    def write_sidecars(self, tmp: Path) -> None:
        """Hook: write ``<tmp>.aux.xml`` etc.; they move with the file on commit."""

    def after_commit(self) -> None:
        """Hook: files that live beside the committed output (e.g. the .qml style)."""

    def _remove_stage(self) -> None:
        if self._stage is not None and self._stage != self._tmp:
            for p in (self._stage, Path(str(self._stage) + ".aux.xml")):
                try:
                    p.unlink()
                except FileNotFoundError:
                    pass

    def _close_ds_quietly(self) -> None:
        if self._ds is not None:
            try:
                self._ds.close()
            except Exception:  # already failing; the temporary file is removed anyway
                pass
            self._ds = None


class ClassifiedWriter(RasterWriter):
    """uint8 class map: colour table, class names (RAT + category names in ``.aux.xml``, and a
    ``SPARSEVIT_CLASSES`` band tag), nodata 255 and a ``.qml`` paletted style beside the file."""

    def __init__(self, path: str | Path, grid: Grid, scheme, *, nodata: int = IGNORE,
                 write_qml: bool = True, description: str = "class", tags: dict | None = None,
                 **kwargs):
        self.entries = class_entries(scheme)
        self.write_qml = write_qml
        extra = dict(tags or {})
        if getattr(scheme, "name", None):
            extra.setdefault("SPARSEVIT_SCHEME", str(scheme.name))
        super().__init__(path, grid, dtype="uint8", count=1, nodata=nodata,
                         descriptions=[description], tags=extra,
                         band_tags={1: {CLASSES_TAG: classes_tag(self.entries)}},
                         colormap=colormap(self.entries, nodata), overview_resampling="mode",
                         **kwargs)

    def write_sidecars(self, tmp: Path) -> None:
        aux = Path(str(tmp) + ".aux.xml")
        existing = aux.read_text(encoding="utf-8") if aux.exists() else None
        aux.write_text(pam_xml(self.entries, existing), encoding="utf-8")

    def after_commit(self) -> None:
        if self.write_qml:
            write_text_atomic(qml_path(self.path), paletted_qml(self.entries, nodata=int(self.nodata)))


class FloatWriter(RasterWriter):
    """float32 rasters (confidence, attention, probabilities): NaN is no data."""

    def __init__(self, path: str | Path, grid: Grid, *, count: int = 1,
                 descriptions: Sequence[str] | None = None, tags: dict | None = None, **kwargs):
        super().__init__(path, grid, dtype="float32", count=count, nodata=float("nan"),
                         descriptions=descriptions, tags=tags, overview_resampling="average",
                         **kwargs)


def write_classified(path: str | Path, grid: Grid, scheme, data: np.ndarray, **kwargs) -> Path:
    """Write a whole (small) class map in one go; big ones go through :class:`ClassifiedWriter`."""
    with ClassifiedWriter(path, grid, scheme, **kwargs) as w:
        w.write(data)
    return Path(path)


def check_output_path(path: str | Path) -> Path:
    """Fail early (before hours of work) when the output cannot be written."""
    from .atomic import check_writable_dir
    target = check_writable_dir(path)
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError("output file exists and is read-only", path=target,
                          fix="choose another output path or make the file writable")
    return target
