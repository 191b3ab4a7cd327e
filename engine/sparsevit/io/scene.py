"""Sentinel-2 / Sentinel-1 inputs: find the bands by name, put them on one grid, read windows.

Inputs can be one multi-band GeoTIFF/VRT, a folder with one file per band, or a list of per-band
files. Bands are identified by name (band description, then band tags, then file name); a
position is only trusted for the two ESA layouts (13 or 12 bands) and always leaves a warning.
Coarser bands are resampled onto the grid of the finest band through a WarpedVRT, so reading a
window never touches more than that window of every source.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Iterable, Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.features import rasterize
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window

from ..bands import (
    EUROSAT_BAND_ORDER,
    S1_BANDS,
    S2_BANDS,
    S2_BANDS_NO_CIRRUS,
    UNUSED_BAND,
    is_generic_band_label,
    normalize_s1_name,
    normalize_s2_filename,
    normalize_s2_name,
)
from ..errors import InputError
from . import blocky_bands as _blocky
from . import clouds as _clouds
from . import radiometry as _radiometry
from .archive import ArchivePath

RASTER_SUFFIXES = {".tif", ".tiff", ".jp2", ".vrt", ".img"}
HOW_DESCRIPTION, HOW_TAG, HOW_FILENAME, HOW_POSITION, HOW_OVERRIDE = (
    "description", "tag", "filename", "position", "override")
_NAME_TAG_KEYS = ("NAME", "BAND", "DESC")
# Decimated reads for statistics never pull more than about this many pixels per band.
_SAMPLE_SIDE = 512
_SPARSE_FACTOR = 16


# --------------------------------------------------------------------------------------------
# grid
@dataclass(frozen=True)
class Grid:
    crs: CRS | None
    transform: Affine
    width: int
    height: int

    @property
    def res(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    def res_m(self) -> tuple[float, float]:
        """Pixel size in metres (approximate for geographic CRSs)."""
        if self.crs is not None and self.crs.is_geographic:
            lat = (self.bounds[1] + self.bounds[3]) / 2
            return (self.res[0] * 111_320 * math.cos(math.radians(lat)), self.res[1] * 110_574)
        return self.res

    def window_transform(self, window: Window) -> Affine:
        return rasterio.windows.transform(window, self.transform)

    def same_as(self, other: "Grid", tol: float = 1e-6) -> bool:
        if (self.width, self.height) != (other.width, other.height) or self.crs != other.crs:
            return False
        return self.transform.almost_equals(other.transform, precision=tol * max(self.res))

    def to_dict(self) -> dict:
        return {"crs": self.crs.to_string() if self.crs else None,
                "transform": list(self.transform)[:6], "width": self.width,
                "height": self.height, "res": list(self.res),
                "res_m": [round(v, 2) for v in self.res_m()], "bounds": list(self.bounds)}

    @classmethod
    def of(cls, ds) -> "Grid":
        return cls(ds.crs, ds.transform, ds.width, ds.height)


@dataclass
class BandSource:
    name: str
    path: Path
    index: int  # 1-based band index in ``path``
    how: str  # description | tag | filename | position | override
    grid: Grid
    dtype: str
    nodata: float | None

    @property
    def res_m(self) -> float:
        return max(self.grid.res_m())

    def to_dict(self) -> dict:
        return {"path": str(self.path), "index": self.index, "how": self.how,
                "res_m": round(self.res_m, 2), "width": self.grid.width,
                "height": self.grid.height, "dtype": self.dtype, "nodata": self.nodata}


# --------------------------------------------------------------------------------------------
# opening files
def _open(path: Path):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(path)
    except RasterioIOError as exc:
        if not path.exists():
            raise InputError("file not found", path=path, fix="check the path") from exc
        raise InputError(f"not a readable raster ({_short(exc)})", path=path,
                         fix="give a GeoTIFF, JP2 or VRT; re-export the file if it is truncated or corrupt"
                         ) from exc
    if ds.driver == "VRT":
        try:
            _check_vrt_sources(ds, path)
        except InputError:
            ds.close()
            raise
    return ds


_REMOTE = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsihdfs",
           "/vsiwebhdfs", "http://", "https://", "ftp://")


def _check_vrt_sources(ds, path: Path) -> None:
    """A VRT opens even when its sources are gone (GDAL reads them lazily, and a missing one
    reads as zeros or fails mid-run); a remote source would be fetched tile by tile over the
    network. Both are said at open, naming the source."""
    for src in ds.files[1:]:
        if src.lower().startswith(_REMOTE):
            raise InputError(f"the VRT reads {src} over the network", path=path,
                             fix="download that file and point the VRT at the local copy")
        if not src.startswith("/vsi") and not Path(src).exists():
            raise InputError(f"the VRT refers to {src}, which does not exist", path=path,
                             fix="restore that file, or rebuild the VRT (gdalbuildvrt) from the files you have")


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def _read(ds, index: int, window: Window, path: Path) -> np.ndarray:
    try:
        return ds.read(index, window=window, out_dtype="float32")
    except RasterioIOError as exc:
        raise InputError(f"cannot read pixels ({_short(exc)})", path=path,
                         fix="the file is truncated or corrupt: download or export it again") from exc


def _decimated(ds, index: int | Sequence[int], max_side: int = _SAMPLE_SIDE) -> np.ndarray:
    """float64 sample of a band (or bands, first axis) with at most ~max_side**2 pixels.

    A decimated read of a raster without overviews makes GDAL visit every block, which for a
    100000 x 100000 px header (sparse or real) takes minutes and gigabytes of block cache. Above
    ``_SPARSE_FACTOR`` times the sample size, read a grid of small block-aligned windows instead.
    """
    try:
        return _decimated_read(ds, index, max_side)
    except RasterioIOError as exc:
        raise InputError(f"cannot read pixels ({_short(exc)})", path=ds.name,
                         fix="the file is truncated or corrupt: download or export it again") from exc


def _decimated_read(ds, index, max_side: int) -> np.ndarray:
    many = not isinstance(index, int)
    if max(ds.width, ds.height) <= _SPARSE_FACTOR * max_side:
        step = max(1, max(ds.width, ds.height) // max_side)
        out = (max(1, ds.height // step), max(1, ds.width // step))
        shape = ((len(index),) + out) if many else out
        return ds.read(index, out_shape=shape, out_dtype="float64")
    k, side = 16, max(1, max_side // 16)
    bh, bw = ds.block_shapes[0]
    parts = []
    for r in range(k):
        for c in range(k):
            row = min((r * ds.height // k) // bh * bh, ds.height - side)
            col = min((c * ds.width // k) // bw * bw, ds.width - side)
            parts.append(ds.read(index, window=Window(col, row, side, side), out_dtype="float64"))
    return np.concatenate(parts, axis=-1)


def _check_dtype(ds, path: Path) -> None:
    for dt in set(ds.dtypes):
        if np.dtype(dt).kind not in "uif":
            raise InputError(f"unsupported data type {dt}", path=path,
                             fix="convert the bands to an integer or float type (e.g. gdal_translate -ot Float32)")


def _expand(inputs: str | Path | Sequence[str | Path]) -> list[Path]:
    """One path, a folder or a list -> the raster files it stands for (band files inside a zipped
    product, :class:`~sparsevit.io.archive.ArchivePath`, are kept as they are)."""
    items = [inputs] if isinstance(inputs, (str, PurePath)) else list(inputs)
    if not items:
        raise InputError("no input raster given", fix="give a raster file, a band folder or band files")
    out: list[Path] = []
    for item in items:
        if isinstance(item, ArchivePath):
            if not item.is_file():
                raise InputError("file not found in the zip archive", path=item, fix="check the path")
            out.append(item)
            continue
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in RASTER_SUFFIXES and f.is_file())
            if not found:  # e.g. a .SAFE folder: the band files sit deeper
                found = sorted(f for f in p.rglob("*") if f.suffix.lower() in RASTER_SUFFIXES and f.is_file())
            if not found:
                raise InputError("folder holds no raster files", path=p,
                                 fix="point at the folder with the band files (B02.tif, ...) or at a GeoTIFF")
            out.extend(found)
        elif not p.exists():
            raise InputError("file not found", path=p, fix="check the path")
        else:
            out.append(p)
    return out


def _name_from_tags(tags: dict, normalize) -> str | None:
    for key, value in tags.items():
        if any(k in key.upper() for k in _NAME_TAG_KEYS) and isinstance(value, str) and len(value) < 64:
            name = normalize(value)
            if name:
                return name
    return None


# --------------------------------------------------------------------------------------------
# Sentinel-2
class _OpenSources:
    """Open files and warped views kept between window reads (``_handles``: ``("file", path)``
    -> dataset, band name -> (dataset or WarpedVRT, index, mode)); a context manager."""

    def _file(self, path: Path):
        """The open dataset of ``path``: one per file, shared by the bands it holds."""
        key = ("file", path)
        if key not in self._handles:
            self._handles[key] = _open(path)
        return self._handles[key]

    def close(self) -> None:
        # Close warped views before the files they read from.
        for key, handle in list(self._handles.items()):
            if not isinstance(key, tuple) and isinstance(handle[0], WarpedVRT):
                handle[0].close()
        for key, handle in list(self._handles.items()):
            if isinstance(key, tuple):
                handle.close()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class S2Scene(_OpenSources):
    """Sentinel-2 bands found in the input, on one target grid.

    Use as a context manager (or call :meth:`close`): sources stay open between window reads.
    """

    inputs: list[Path]
    bands: dict[str, BandSource]
    grid: Grid
    dtype: str
    nodata: float | None
    warnings: list[str] = field(default_factory=list)
    # how the values are converted to the model's DN (see io/radiometry.py); None: read as is
    radiometry: "_radiometry.Radiometry | None" = None
    metadata_files: list[Path] = field(default_factory=list)  # MTD_*.xml given as the input
    # coarse bands an export upsampled by nearest neighbour, smoothed on read (io/blocky_bands.py)
    smoothing: "_blocky.Smoothing | None" = None
    # where cloudy pixels come from (io/clouds.py): a mask of the product, else the brightness flag
    clouds: "_clouds.CloudSource" = field(default_factory=lambda: _clouds.CloudSource(_clouds.KIND_BRIGHT))
    # the sun's position, from the product metadata: cloud shadows are projected with it
    sun: "_clouds.SunAngles | None" = None
    _handles: dict = field(default_factory=dict, repr=False)

    # -- description ------------------------------------------------------------------------
    @property
    def missing(self) -> list[str]:
        return [b for b in S2_BANDS if b not in self.bands]

    @property
    def band_names(self) -> list[str]:
        return [b for b in S2_BANDS if b in self.bands]

    def resampled(self) -> list[str]:
        """Bands not already on the target grid (read through a bilinear warp)."""
        return [b for b in self.band_names if not self.bands[b].grid.same_as(self.grid)]

    def require(self, bands: Iterable[str] = S2_BANDS_NO_CIRRUS) -> None:
        lacking = [b for b in bands if b not in self.bands]
        if lacking:
            found = ', '.join(self.band_names) or 'none'
            raise InputError(f"missing Sentinel-2 bands {', '.join(lacking)} (found {found})",
                             path=", ".join(str(p) for p in self.inputs),
                             fix="add the missing band files, or name the bands with --band-order")

    def to_dict(self) -> dict:
        return {"kind": "S2", "inputs": [str(p) for p in self.inputs],
                "bands": {b: self.bands[b].to_dict() for b in self.band_names},
                "missing": self.missing, "resampled": self.resampled(),
                "grid": self.grid.to_dict(), "dtype": self.dtype, "nodata": self.nodata,
                "radiometry": self.radiometry.to_dict() if self.radiometry is not None else None,
                "smoothed": self.smoothing.to_dict() if self.smoothing is not None else None,
                "clouds": self.clouds.to_dict(), "sun": self.sun.to_dict() if self.sun else None,
                "warnings": list(self.warnings)}

    # -- reading ----------------------------------------------------------------------------
    def _reader(self, name: str):
        if name not in self._handles:
            src = self.bands[name]
            ds = self._file(src.path)
            if src.grid.same_as(self.grid):
                self._handles[name] = (ds, src.index, None)
            elif src.grid.crs is None or self.grid.crs is None:
                # No CRS to warp with: assume both cover the same extent and rescale.
                self._handles[name] = (ds, src.index, "scale")
            else:
                vrt = WarpedVRT(ds, crs=self.grid.crs, transform=self.grid.transform,
                                width=self.grid.width, height=self.grid.height,
                                resampling=Resampling.bilinear, dtype="float32",
                                src_nodata=src.nodata, nodata=np.nan)
                self._handles[name] = (vrt, src.index, None)
        return self._handles[name]

    def read(self, window: Window | None = None, bands: Sequence[str] | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
        """Read ``bands`` (default: the 12 bands without B10) in that order as float32 [C,H,W],
        converted to the model's DN (reflectance x 10000, no offset; see :attr:`radiometry`).

        Returns ``(data, valid)``; ``valid`` [H,W] is False where any band is nodata, NaN/Inf or
        outside its source, and where every band is 0 (the Sentinel-2 no-data value when the
        file does not declare one); all judged on the values as stored, before the conversion.
        Invalid pixels hold 0 in ``data``.
        """
        bands = list(bands) if bands is not None else list(S2_BANDS_NO_CIRRUS)
        self.require(bands)
        window = window or Window(0, 0, self.grid.width, self.grid.height)
        h, w = int(window.height), int(window.width)
        data = np.empty((len(bands), h, w), dtype=np.float32)
        valid = np.ones((h, w), dtype=bool)
        zero_is_nodata = self.nodata is None and np.dtype(self.dtype).kind in "ui"
        nonzero = np.zeros((h, w), dtype=bool)
        for i, name in enumerate(bands):
            ds, idx, mode = self._reader(name)
            src = self.bands[name]
            if mode == "scale":
                try:
                    arr = ds.read(idx, window=self._scaled(ds, window), out_shape=(h, w),
                                  resampling=Resampling.bilinear,
                                  out_dtype="float32")
                except RasterioIOError as exc:
                    raise InputError(f"cannot read pixels ({_short(exc)})", path=src.path,
                                     fix="the file is truncated or corrupt: download or export it again") from exc
            elif self.smoothing is not None and name in self.smoothing.factors and mode is None:
                arr = self._read_smoothed(name, ds, idx, window, zero_is_nodata)
            else:
                arr = _read(ds, idx, window, src.path)
            if src.nodata is not None and not (isinstance(ds, WarpedVRT)):
                valid &= ~((arr == src.nodata) if not np.isnan(src.nodata) else np.isnan(arr))
            valid &= np.isfinite(arr)
            if zero_is_nodata:
                nonzero |= arr != 0
            data[i] = arr if self.radiometry is None else self.radiometry.apply(name, arr)
        if zero_is_nodata:
            valid &= nonzero
        data[:, ~valid] = 0
        return data, valid

    def _scaled(self, ds, window: Window) -> Window:
        """``window`` of the grid in the pixels of ``ds``, a file without a CRS whose extent is
        taken to be the grid's ("scale" mode)."""
        sx, sy = ds.width / self.grid.width, ds.height / self.grid.height
        return Window(window.col_off * sx, window.row_off * sy, window.width * sx, window.height * sy)

    def _band_valid(self, name: str, arr: np.ndarray, zero_is_nodata: bool) -> np.ndarray:
        nd = self.bands[name].nodata
        ok = np.isfinite(arr)
        if nd is not None:
            ok &= ~np.isnan(arr) if np.isnan(nd) else arr != nd
        if zero_is_nodata:
            ok &= arr != 0
        return ok

    def _read_smoothed(self, name: str, ds, idx: int, window: Window, zero_is_nodata: bool
                       ) -> np.ndarray:
        """The raw values of ``window`` after the tent filter, computed on the window grown by
        the filter's reach (within the raster), so tiles read apart join without a seam."""
        hy, hx = self.smoothing.halo(name)
        r0, c0 = int(window.row_off), int(window.col_off)
        h, w = int(window.height), int(window.width)
        if r0 < 0 or c0 < 0 or r0 + h > self.grid.height or c0 + w > self.grid.width:
            return _read(ds, idx, window, self.bands[name].path)  # as the plain read does
        R0, C0 = max(0, r0 - hy), max(0, c0 - hx)
        R1, C1 = min(self.grid.height, r0 + h + hy), min(self.grid.width, c0 + w + hx)
        big = _read(ds, idx, Window(C0, R0, C1 - C0, R1 - R0), self.bands[name].path)
        sm = _blocky.smooth(big, self._band_valid(name, big, zero_is_nodata), self.smoothing.factors[name])
        return sm[r0 - R0:r0 - R0 + h, c0 - C0:c0 - C0 + w]

    def read_clouds(self, window: Window, data: np.ndarray | None = None,
                    bands: Sequence[str] | None = None, valid: np.ndarray | None = None,
                    factor: int = 1) -> np.ndarray:
        """Cloudy pixels [H, W] of ``window``: from the product's mask (nearest neighbour onto
        the grid), or the brightness flag on ``data`` (model DN, channels ``bands``).
        ``factor`` > 1: at that many grid pixels a side (``data`` read so, see
        :meth:`cloud_shadows`)."""
        h, w = -(-int(window.height) // factor), -(-int(window.width) // factor)
        src = self.clouds
        if src.kind == _clouds.KIND_BRIGHT:
            if data is None or bands is None:
                raise ValueError("the brightness flag needs the data")
            return _clouds.bright(data, bands, valid if valid is not None else np.ones((h, w), bool), factor)
        if src.kind == _clouds.KIND_GML:
            return self._rasterise_gml(window, (h, w), factor)
        key = "__clouds__"  # not a ("file", path) key: a warped view is closed before its file
        if key not in self._handles:
            try:
                ds = self._file(src.path)
            except InputError as exc:
                raise InputError(f"cannot open the cloud mask ({exc.problem})", path=src.path,
                                 fix="download the product again; or pass --no-cloud-mask") from exc
            g = Grid.of(ds)
            if g.same_as(self.grid):
                self._handles[key] = (ds, None)
            elif g.crs is None or self.grid.crs is None:
                self._handles[key] = (ds, "scale")
            else:
                vrt = WarpedVRT(ds, crs=self.grid.crs, transform=self.grid.transform,
                                width=self.grid.width, height=self.grid.height,
                                resampling=Resampling.nearest, nodata=0)
                self._handles[key] = (vrt, None)
        ds, mode = self._handles[key]
        idx = [1, 2] if (src.kind == _clouds.KIND_CLASSI and ds.count >= 2) else [src.index]
        try:
            if mode == "scale":
                vals = ds.read(idx, window=self._scaled(ds, window), out_shape=(len(idx), h, w),
                               resampling=Resampling.nearest)
            elif factor > 1:
                vals = ds.read(idx, window=window, out_shape=(len(idx), h, w), resampling=Resampling.nearest)
            else:
                vals = ds.read(idx, window=window)
        except RasterioIOError as exc:
            raise InputError(f"cannot read the cloud mask ({_short(exc)})", path=src.path,
                             fix="the file is truncated or corrupt; or pass --no-cloud-mask") from exc
        return src.cloudy(vals).any(axis=0)

    def _rasterise_gml(self, window: Window, shape: tuple[int, int], factor: int) -> np.ndarray:
        """The polygons of an MSK_CLOUDS_B00.gml burnt onto ``window`` (pixels whose centre
        lies inside), read once and kept."""
        key = "__clouds_gml__"
        if key not in self._handles:
            src = self.clouds
            try:
                shapes, epsg = _clouds.gml_polygons(_radiometry.read_xml(src.path))
            except (InputError, ValueError) as exc:
                raise InputError(f"cannot read the cloud mask ({getattr(exc, 'problem', exc)})",
                                 path=src.path, fix="download the product again; or pass --no-cloud-mask") from exc
            if shapes and epsg and self.grid.crs is not None and CRS.from_epsg(int(epsg)) != self.grid.crs:
                shapes = [transform_geom(CRS.from_epsg(int(epsg)), self.grid.crs, g) for g in shapes]
            self._handles[key] = (None, shapes)  # close() looks at handle[0]
        shapes = self._handles[key][1]
        if not shapes:
            return np.zeros(shape, bool)
        tf = self.grid.window_transform(window) * Affine.scale(factor)
        return rasterize(((g, 1) for g in shapes), out_shape=shape, transform=tf, fill=0,
                         dtype="uint8").astype(bool)

    def cloud_shadows(self, window: Window) -> "_clouds.ShadowMask | None":
        """Shadows of the clouds in ``window`` (io/clouds.py), for masks that leave them out
        (the brightness flag, MSK_CLASSI) when the sun's position is known; None otherwise.
        The area is read once, decimated to at most ``SHADOW_MAX_SIDE`` pixels a side, since
        a shadow can fall a few kilometres from its cloud, further than any tile reaches."""
        if self.sun is None or self.clouds.kind not in _clouds.NO_SHADOWS \
                or not {"B02", "B03", "B04", "B08"} <= set(self.bands):
            return None
        bands = [b for b in ("B02", "B03", "B04", "B08", "B11") if b in self.bands]
        f = max(1, -(-max(int(window.height), int(window.width)) // _clouds.SHADOW_MAX_SIDE))
        data, valid = self._read_decimated(window, bands, f)
        cloud = self.read_clouds(window, data, bands, valid, factor=f) & valid
        if not cloud.any():
            return _clouds.ShadowMask(np.zeros(valid.shape, bool), f, int(window.row_off), int(window.col_off))
        dark = _clouds.dark_not_water(data, bands, valid, ~cloud)
        shadow = _clouds.project_shadows(cloud, dark, self.sun, max(self.grid.res_m()) * f)
        return _clouds.ShadowMask(shadow, f, int(window.row_off), int(window.col_off))

    def _read_decimated(self, window: Window, bands: Sequence[str], f: int) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`read`, at ``f`` x ``f`` grid pixels per pixel (block averages)."""
        if f == 1:
            return self.read(window, bands)
        shape = (-(-int(window.height) // f), -(-int(window.width) // f))
        data = np.empty((len(bands),) + shape, np.float32)
        valid = np.ones(shape, bool)
        zero_is_nodata = self.nodata is None and np.dtype(self.dtype).kind in "ui"
        for i, name in enumerate(bands):
            ds, idx, mode = self._reader(name)
            win = self._scaled(ds, window) if mode == "scale" else window
            try:
                arr = ds.read(idx, window=win, out_shape=shape, resampling=Resampling.average,
                              out_dtype="float32")
            except RasterioIOError as exc:
                raise InputError(f"cannot read pixels ({_short(exc)})", path=self.bands[name].path,
                                 fix="the file is truncated or corrupt: download or export it again") from exc
            valid &= self._band_valid(name, arr, zero_is_nodata)
            data[i] = arr if self.radiometry is None else self.radiometry.apply(name, arr)
        data[:, ~valid] = 0
        return data, valid

    def detect_blocky_bands(self) -> None:
        """Set :attr:`smoothing` from a central full-resolution window (io/blocky_bands.py)."""
        on_grid = [b for b in self.band_names if b not in self.resampled()]
        side_h, side_w = min(_blocky._SAMPLE, self.grid.height), min(_blocky._SAMPLE, self.grid.width)
        win = Window((self.grid.width - side_w) // 2, (self.grid.height - side_h) // 2, side_w, side_h)
        zero_is_nodata = self.nodata is None and np.dtype(self.dtype).kind in "ui"

        def sample(name):
            ds, idx, mode = self._reader(name)
            arr = _read(ds, idx, win, self.bands[name].path)
            return arr, self._band_valid(name, arr, zero_is_nodata)

        self.smoothing = _blocky.detect(on_grid, self.grid.res_m(), sample)
        if self.smoothing is not None:
            self.warnings.append(self.smoothing.describe())



def _s2_candidates(files: list[Path], band_order: Sequence[str] | None
                   ) -> tuple[list[BandSource], list[str], list[tuple[Path, int]]]:
    """Every band of every file, named if a name was found. Returns (named, warnings, unnamed)."""
    named: list[BandSource] = []
    unnamed: list[tuple[Path, int]] = []
    notes: list[str] = []
    multi = [f for f in files]
    order = [None if b == UNUSED_BAND else _canon(b) for b in band_order] if band_order else None
    flat: list[tuple[Path, int, object]] = []
    for f in multi:
        ds = _open(f)
        try:
            _check_dtype(ds, f)
            g = Grid.of(ds)
            for i in range(1, ds.count + 1):
                flat.append((f, i, (g, ds.dtypes[i - 1], ds.nodata, ds.descriptions[i - 1],
                                    ds.tags(i), ds.count)))
        finally:
            ds.close()
    if order is not None:
        if len(order) != len(flat):
            raise InputError(f"--band-order names {len(order)} bands but the input has {len(flat)}",
                             path=", ".join(map(str, files)), fix="give one name per band, in file order")
        for (f, i, (g, dt, nd, *_)), name in zip(flat, order):
            if name is None:
                unnamed.append((f, i))
            else:
                named.append(BandSource(name, f, i, HOW_OVERRIDE, g, dt, nd))
        return named, notes, unnamed
    generic: list[str] = []
    for f, i, (g, dt, nd, desc, tags, count) in flat:
        name, how = None, None
        if desc and not is_generic_band_label(desc):
            name, how = normalize_s2_name(desc), HOW_DESCRIPTION
        elif desc:
            generic.append(desc)
        if not name:
            name, how = _name_from_tags(tags, _specific_s2_name), HOW_TAG
        if not name and count == 1:
            name, how = normalize_s2_filename(f.stem), HOW_FILENAME
        if name:
            named.append(BandSource(name, f, i, how, g, dt, nd))
        else:
            unnamed.append((f, i))
    if generic:
        notes.append(f"band labels such as '{generic[0]}' {_GENERIC_NOTE}: those bands were identified "
                     "otherwise or not at all")
    return named, notes, unnamed


_GENERIC_NOTE = "count bands, they do not name Sentinel-2 bands"


def _specific_s2_name(text: str) -> str | None:
    return None if is_generic_band_label(text) else normalize_s2_name(text)


def _canon(name: str) -> str:
    canon = normalize_s2_name(name)
    if canon is None:
        raise InputError(f"'{name}' is not a Sentinel-2 band name", fix="use names like B02 or B8A")
    return canon


def _positional_order(path: Path, count: int) -> tuple[tuple[str, ...], str]:
    if count == 12:
        return S2_BANDS_NO_CIRRUS, "ESA order without B10 (L2A)"
    # 13 bands: ESA order puts cirrus (B10, almost always the darkest band in L1C) at position 11,
    # EuroSAT-MS puts it at position 10 and B8A last.
    with _open(path) as ds:
        b10, b11 = (_decimated(ds, i) for i in (10, 11))
    if np.nanmedian(b10) < np.nanmedian(b11):
        return EUROSAT_BAND_ORDER, "EuroSAT-MS order (B10 10th, B8A last)"
    return S2_BANDS, "ESA order"


def _granule_files(mtd) -> list:
    """The files under GRANULE/ of the product whose MTD_MSIL*.xml is ``mtd`` (a folder's or,
    inside a zip, archive paths)."""
    root = mtd.parent
    if isinstance(root, ArchivePath):
        return [m for m in root.files() if "GRANULE/" in str(m)]
    return [f for f in sorted(root.glob("GRANULE/*/**/*")) if f.is_file()]


def _find_clouds(metadata_files: list, unnamed: list[tuple[Path, int]]) -> "_clouds.CloudSource | None":
    """The cloud mask of a SAFE product, else a band of the input named as one."""
    for mtd in metadata_files:
        found = _clouds.in_safe(_granule_files(mtd))
        if found is not None:
            return found
    for f, i in unnamed:
        with _open(f) as ds:
            found = _clouds.by_name(f, i, ds.descriptions[i - 1], ds.count)
        if found is not None:
            return found
    return None


def _find_sun(metadata_files: list, files: list[Path]) -> "_clouds.SunAngles | None":
    """The sun's mean position from a SAFE granule's MTD_TL.xml, an Earth Engine metadata.json
    beside the bands, or the same keys in the first file's tags."""
    for mtd in metadata_files:
        for m in _granule_files(mtd):
            if Path(str(m)).name == "MTD_TL.xml":
                try:
                    sun = _clouds.sun_from_tile_xml(_radiometry.read_xml(m), str(m))
                except InputError:
                    sun = None  # a damaged granule file costs the shadows, not the run
                if sun is not None:
                    return sun
    for folder in dict.fromkeys(f.parent for f in files if not isinstance(f, ArchivePath)):
        doc = _radiometry.ee_metadata_json(folder)
        sun = _clouds.sun_from_json(doc, str(folder / "metadata.json")) if doc else None
        if sun is not None:
            return sun
    if files:
        with _open(files[0]) as ds:
            return _clouds.sun_from_json(ds.tags(), f"{files[0]} (tags)")
    return None


def open_s2(inputs: str | Path | Sequence[str | Path], band_order: Sequence[str] | None = None,
            required: Iterable[str] | None = S2_BANDS_NO_CIRRUS, radiometry: str | None = None,
            smooth_blocky: bool = True) -> S2Scene:
    """Open a Sentinel-2 input (multi-band file, band folder, band files, a SAFE folder or its
    MTD_MSIL1C.xml / MTD_MSIL2A.xml, a zipped SAFE product as downloaded, read in place) as an
    :class:`S2Scene`.

    ``band_order`` names every band of the input in file order (e.g. ``EUROSAT_BAND_ORDER``) and
    overrides what the files say. ``required`` bands missing -> :class:`InputError` (``None``
    accepts any subset, as ``sparsevit info`` does). ``radiometry`` overrides the detected value
    convention (``dn``, ``reflectance``, ``dn-offset-1000`` or ``SCALE,OFFSET``; see
    :mod:`sparsevit.io.radiometry`). ``smooth_blocky``: smooth coarse bands an export upsampled
    by nearest neighbour (:mod:`sparsevit.io.blocky_bands`).
    """
    inputs, metadata_files = _radiometry.expand_safe(inputs)
    files = _expand(inputs)
    named, notes, unnamed = _s2_candidates(files, band_order)
    if not named and unnamed and not band_order:  # bands the user left out are not guessed back
        by_file: dict[Path, list[int]] = {}
        for f, i in unnamed:
            by_file.setdefault(f, []).append(i)
        if len(by_file) == 1:
            (f, idxs), = by_file.items()
            if len(idxs) in (12, 13):
                order, label = _positional_order(f, len(idxs))
                with _open(f) as ds:
                    g, dts, nd = Grid.of(ds), ds.dtypes, ds.nodata
                named = [BandSource(n, f, i, HOW_POSITION, g, dts[i - 1], nd)
                         for n, i in zip(order, idxs)]
                notes.append(f"bands identified by position ({label}): {f.name} names no bands; "
                             "pass --band-order if this is wrong")
                unnamed = []
    if not named and band_order:
        raise InputError("--band-order leaves out every band", path=", ".join(str(p) for p in files),
                         fix="name at least one band (B02, ...) instead of -")
    if not named:
        generic = any(_GENERIC_NOTE in n for n in notes)
        raise InputError("no Sentinel-2 bands found (no band names in descriptions, tags or file names"
                         + ("; labels such as 'Band 4' give a band's position, not its name" if generic
                            else "") + ")",
                         path=", ".join(str(p) for p in files),
                         fix="name the bands (B02.tif, ... or band descriptions) or pass --band-order "
                             "(e.g. --band-order B04,B03,B02,B08)")
    cloud_src = _find_clouds(metadata_files, unnamed) if not band_order else None
    if cloud_src is not None and cloud_src.path is not None:
        unnamed = [(f, i) for f, i in unnamed if not (f == cloud_src.path and i == cloud_src.index)]
    if unnamed:
        notes.append(("bands left out by --band-order: " if band_order
                      else "ignored bands without a Sentinel-2 name: ")
                     + ", ".join(f"{f.name}#{i}" for f, i in unnamed[:8]))
    bands: dict[str, BandSource] = {}
    for src in named:
        old = bands.get(src.name)
        if old is None or src.res_m < old.res_m:
            bands[src.name] = src
        if old is not None:
            notes.append(f"{src.name} found twice ({old.path.name}, {src.path.name}); using the finer one")
    # The finest band defines the grid; ties go to ESA order so B02 wins among 10 m bands.
    ref = min((bands[b] for b in S2_BANDS if b in bands), key=lambda s: s.res_m)
    dtypes = {s.dtype for s in bands.values()}
    dtype = np.result_type(*dtypes).name if len(dtypes) > 1 else dtypes.pop()
    nodatas = {s.nodata for s in bands.values()}
    nodata = nodatas.pop() if len(nodatas) == 1 else None
    if ref.grid.crs is None:
        notes.append("the input has no CRS: outputs will not be georeferenced")
    else:
        rx, ry = ref.grid.res_m()
        if not (7 <= rx <= 13 and 7 <= ry <= 13):
            notes.append(f"the input's pixels are {rx:.3g} x {ry:.3g} m, not 10 m: the model learnt "
                         "from 10 m pixels, so fields, roads and buildings look "
                         f"{10 / max(rx, ry):.2g} times their size to it; expect a less reliable map "
                         "(resample to 10 m, or use a model trained at this resolution)")
    scene = S2Scene(inputs=files, bands=bands, grid=ref.grid, dtype=dtype, nodata=nodata,
                    warnings=notes, metadata_files=metadata_files)
    if cloud_src is not None:
        scene.clouds = cloud_src
    if scene.clouds.kind in _clouds.NO_SHADOWS:
        scene.sun = _find_sun(metadata_files, files)
    if required is not None:
        scene.require(required)
    scene.radiometry = _radiometry.detect(scene, override=radiometry)
    if smooth_blocky:
        scene.detect_blocky_bands()
    return scene


# --------------------------------------------------------------------------------------------
# Sentinel-1
@dataclass
class S1Scene(_OpenSources):
    """Sentinel-1 VV/VH, read in dB on ``grid`` (the S2 grid when aligned to one)."""

    inputs: list[Path]
    bands: dict[str, BandSource]
    native_grid: Grid
    grid: Grid
    units: str  # "dB" or "linear" (as found; reads always return dB)
    warnings: list[str] = field(default_factory=list)
    _handles: dict = field(default_factory=dict, repr=False)

    @property
    def reprojected(self) -> bool:
        return not self.native_grid.same_as(self.grid)

    def to_dict(self) -> dict:
        return {"kind": "S1", "inputs": [str(p) for p in self.inputs],
                "bands": {b: s.to_dict() for b, s in self.bands.items()}, "units": self.units,
                "native_grid": self.native_grid.to_dict(), "grid": self.grid.to_dict(),
                "reprojected": self.reprojected, "warnings": list(self.warnings)}

    def _reader(self, name: str):
        if name not in self._handles:
            src = self.bands[name]
            ds = self._file(src.path)
            if src.grid.same_as(self.grid):
                self._handles[name] = (ds, src.index)
            else:
                self._handles[name] = (WarpedVRT(
                    ds, crs=self.grid.crs, transform=self.grid.transform, width=self.grid.width,
                    height=self.grid.height, resampling=Resampling.bilinear, dtype="float32",
                    src_nodata=src.nodata, nodata=np.nan), src.index)
        return self._handles[name]

    def read(self, window: Window | None = None, bands: Sequence[str] = S1_BANDS
             ) -> tuple[np.ndarray, np.ndarray]:
        """float32 [C,H,W] backscatter in dB and a validity mask [H,W] (invalid pixels hold 0)."""
        window = window or Window(0, 0, self.grid.width, self.grid.height)
        h, w = int(window.height), int(window.width)
        data = np.empty((len(bands), h, w), dtype=np.float32)
        valid = np.ones((h, w), dtype=bool)
        for i, name in enumerate(bands):
            ds, idx = self._reader(name)
            arr = _read(ds, idx, window, self.bands[name].path)
            nd = self.bands[name].nodata
            if nd is not None and not isinstance(ds, WarpedVRT) and not np.isnan(nd):
                valid &= arr != nd
            if self.units == "linear":
                # Warping linear power is right (averages power); dB only afterwards.
                valid &= arr >= 0
                arr = 10.0 * np.log10(np.maximum(arr, 1e-5))
            valid &= np.isfinite(arr)
            data[i] = arr
        data[:, ~valid] = 0
        return data, valid



def _s1_sources(files: list[Path]) -> tuple[dict[str, BandSource], list[str]]:
    found: dict[str, BandSource] = {}
    notes: list[str] = []
    for f in files:
        with _open(f) as ds:
            _check_dtype(ds, f)
            g = Grid.of(ds)
            for i in range(1, ds.count + 1):
                desc = ds.descriptions[i - 1]
                name, how = (normalize_s1_name(desc), HOW_DESCRIPTION) if desc else (None, None)
                if not name:
                    name, how = _name_from_tags(ds.tags(i), normalize_s1_name), HOW_TAG
                if not name and ds.count == 1:
                    name, how = normalize_s1_name(f.stem), HOW_FILENAME
                if not name and ds.count == 2 and not any(ds.descriptions):
                    name, how = S1_BANDS[i - 1], HOW_POSITION
                    if i == 1:
                        notes.append(f"S1 bands identified by position (VV, VH) in {f.name}")
                if name in S1_BANDS and name not in found:
                    found[name] = BandSource(name, f, i, how, g, ds.dtypes[i - 1], ds.nodata)
    return found, notes


def detect_s1_units(values: np.ndarray) -> str | None:
    """'dB' when most values are negative, 'linear' when they sit in [0, ~1], else None."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    if np.mean(v < 0) > 0.5:
        return "dB"
    if v.min() >= 0 and np.median(v) <= 1.0:
        return "linear"
    return None


def _sample(src: BandSource) -> np.ndarray:
    with _open(src.path) as ds:
        a = _decimated(ds, src.index)
    if src.nodata is not None and not np.isnan(src.nodata):
        a = a[a != src.nodata]
    return a.ravel()


def open_s1(inputs: str | Path | Sequence[str | Path], target: Grid | S2Scene | None = None,
            s2_path: str | Path | None = None) -> S1Scene:
    """Open VV/VH (one 2-band file, a folder with VV/VH files, or the two files).

    With ``target`` (an S2 grid or scene) reads come out on that grid, reprojected when CRS,
    resolution or extent differ; no overlap -> :class:`InputError` naming both inputs.
    """
    files = _expand(inputs)
    bands, notes = _s1_sources(files)
    where = ", ".join(str(p) for p in files)
    lacking = [b for b in S1_BANDS if b not in bands]
    if lacking:
        raise InputError(f"missing Sentinel-1 bands {', '.join(lacking)}", path=where,
                         fix="give VV and VH (band descriptions VV/VH, or files named *VV*.tif/*VH*.tif)")
    units = {b: detect_s1_units(_sample(s)) for b, s in bands.items()}
    if None in units.values():
        raise InputError("Sentinel-1 values are neither dB nor linear backscatter", path=where,
                         fix="give calibrated sigma0 (linear power or dB), not raw amplitude")
    if len(set(units.values())) > 1:
        raise InputError(f"VV and VH are in different units ({units['VV']} / {units['VH']})",
                         path=where, fix="give both bands in dB or both in linear power")
    native = bands["VV"].grid
    if isinstance(target, S2Scene):
        s2_path = s2_path or ", ".join(str(p) for p in target.inputs)
        target = target.grid
    grid = target or native
    if target is not None:
        _check_overlap(native, target, where, str(s2_path or "the Sentinel-2 input"))
    scene = S1Scene(inputs=files, bands=bands, native_grid=native, grid=grid,
                    units=units["VV"], warnings=notes)
    return scene


def _check_overlap(s1: Grid, s2: Grid, s1_where: str, s2_where: str) -> None:
    if s1.crs is None or s2.crs is None:
        if s1.crs is None and s2.crs is None and (s1.width, s1.height) == (s2.width, s2.height):
            return
        raise InputError(f"cannot align Sentinel-1 ({s1_where}) with Sentinel-2 ({s2_where}): "
                         "one of them has no CRS", path=s1_where,
                         fix="give both inputs georeferenced, or both with the same pixel grid")
    left, bottom, right, top = transform_bounds(s1.crs, s2.crs, *s1.bounds, densify_pts=21)
    l2, b2, r2, t2 = s2.bounds
    if left >= r2 or right <= l2 or bottom >= t2 or top <= b2:
        raise InputError(f"Sentinel-1 ({s1_where}) and Sentinel-2 ({s2_where}) do not overlap",
                         path=s1_where, fix="give an S1 scene that covers the S2 scene")


# --------------------------------------------------------------------------------------------
# statistics for `sparsevit info`
def decimated_stats(scene: S2Scene | S1Scene, max_side: int = _SAMPLE_SIDE) -> dict:
    """Nodata share and value range per band from a decimated read (fast on big rasters)."""
    stats: dict[str, dict] = {}
    shares = []
    for name, src in scene.bands.items():
        with _open(src.path) as ds:
            a = _decimated(ds, src.index, max_side)
        bad = ~np.isfinite(a)
        if src.nodata is not None:
            bad |= np.isnan(a) if np.isnan(src.nodata) else (a == src.nodata)
        good = a[~bad]
        shares.append(bad.mean())
        stats[name] = {"nodata_share": round(float(bad.mean()), 4),
                       "min": float(good.min()) if good.size else None,
                       "max": float(good.max()) if good.size else None,
                       "p2": float(np.percentile(good, 2)) if good.size else None,
                       "p98": float(np.percentile(good, 98)) if good.size else None}
    return {"bands": stats, "nodata_share": round(float(max(shares)), 4) if shares else None}


def level_from_pixels(scene: S2Scene, max_side: int = 256) -> tuple[str | None, float | None]:
    """Processing level judged from a decimated read of B09 and B8A (see
    :func:`~sparsevit.io.processing_level.level_from_b09`); ``(None, None)`` without both bands."""
    from .processing_level import level_from_b09

    if not all(b in scene.bands for b in ("B09", "B8A")):
        return None, None
    arrays = {}
    for name in ("B09", "B8A"):
        src = scene.bands[name]
        with _open(src.path) as ds:
            a = _decimated(ds, src.index, max_side).astype(np.float32)
        bad = ~np.isfinite(a) | (a == 0)
        if src.nodata is not None and not np.isnan(src.nodata):
            bad |= a == src.nodata
        a = scene.radiometry.apply(name, a) if scene.radiometry is not None else a
        arrays[name] = np.where(bad, np.nan, a)
    if arrays["B09"].shape != arrays["B8A"].shape:  # separate files of other sizes: a common grid
        h = min(arrays["B09"].shape[0], arrays["B8A"].shape[0])
        w = min(arrays["B09"].shape[1], arrays["B8A"].shape[1])
        arrays = {k: v[:: max(1, v.shape[0] // h), :: max(1, v.shape[1] // w)][:h, :w]
                  for k, v in arrays.items()}
    return level_from_b09(arrays["B09"], arrays["B8A"])


TRUE_COLOUR = ("B04", "B03", "B02")


def true_colour(scene: S2Scene, max_side: int = 256) -> dict | None:
    """Where a GIS finds the scene's red, green and blue bands (file and 1-based band index),
    with a 2-98 % stretch of each in the file's own values: what the plugin needs to show the
    input as true colour under the map without guessing band order. None without all three."""
    if not all(b in scene.bands for b in TRUE_COLOUR):
        return None
    bands = {}
    for name in TRUE_COLOUR:
        src = scene.bands[name]
        with _open(src.path) as ds:
            a = _decimated(ds, src.index, max_side)
        good = np.isfinite(a)
        if src.nodata is not None and not np.isnan(src.nodata):
            good &= a != src.nodata
        good &= a != 0  # L1C/L2A fill value, also when the file declares no nodata
        v = a[good]
        lo, hi = (float(np.percentile(v, 2)), float(np.percentile(v, 98))) if v.size else (0.0, 1.0)
        bands[name] = {"path": str(src.path), "index": src.index,
                       "min": round(lo, 4), "max": round(max(hi, lo + 1.0), 4)}
    return {"bands": bands}


def ensure_has_data(scene: S2Scene | S1Scene) -> dict:
    """:func:`decimated_stats`, raising :class:`InputError` when every sampled pixel is no data."""
    stats = decimated_stats(scene)
    if stats["nodata_share"] is not None and stats["nodata_share"] >= 1.0:
        raise InputError("the raster holds only no-data pixels",
                         path=", ".join(str(p) for p in scene.inputs),
                         fix="check the nodata value of the file or choose another scene")
    return stats
