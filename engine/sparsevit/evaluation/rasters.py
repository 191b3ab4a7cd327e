"""Score a classified GeoTIFF against a reference GeoTIFF, window by window.

The reference grid is the scoring grid. A prediction on another grid (CRS, resolution or
extent) is warped onto it on the fly with nearest-neighbour resampling - class labels must not
be interpolated - through a GDAL warped VRT, so memory stays bounded by one window whatever the
raster size.
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import InputError
from ..schemes import IGNORE
from .metrics import ConfusionMatrix, json_sanitize


def _apply_map(values: np.ndarray, mapping: Mapping[int, int] | None, default: int) -> np.ndarray:
    """Map raster codes to class indices; unmapped codes become ``default``."""
    if mapping is None:
        return values.astype(np.int64, copy=False)
    uniq, inverse = np.unique(values, return_inverse=True)
    lut = np.array([int(mapping.get(int(v), default)) for v in uniq], dtype=np.int64)
    return lut[inverse].reshape(values.shape)


def _same_grid(a, b) -> bool:
    return (a.crs == b.crs and a.width == b.width and a.height == b.height
            and a.transform.almost_equals(b.transform))


def _open(path: str | Path, what: str):
    import rasterio
    from rasterio.errors import RasterioIOError

    if not Path(path).exists():
        raise InputError(f"{what} raster not found", path=path, fix="check the path")
    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(f"{what} raster cannot be read ({exc})", path=path,
                         fix="give a GeoTIFF or another GDAL-readable raster") from exc


def _strips(height: int, width: int, block_pixels: int):
    from rasterio.windows import Window

    rows = max(1, block_pixels // max(width, 1))
    for row in range(0, height, rows):
        yield Window(0, row, width, min(rows, height - row))


def _prediction_on_reference_grid(pred_ds, ref_ds, pred_path, ref_path):
    """A nearest-neighbour WarpedVRT of the prediction on the reference's grid; refuses rasters
    without a CRS or that do not overlap."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import transform_bounds

    if pred_ds.crs is None or ref_ds.crs is None:
        missing = pred_path if pred_ds.crs is None else ref_path
        raise InputError("raster has no coordinate reference system, so it cannot be "
                         "aligned with the other one", path=missing,
                         fix="assign the CRS (e.g. in QGIS: Assign Projection)")
    pb = transform_bounds(pred_ds.crs, ref_ds.crs, *pred_ds.bounds, densify_pts=21)
    rb = ref_ds.bounds
    if min(pb[2], rb.right) <= max(pb[0], rb.left) or min(pb[3], rb.top) <= max(pb[1], rb.bottom):
        raise InputError("prediction and reference rasters do not overlap", path=pred_path,
                         fix="choose a prediction covering the reference area")
    opts = dict(crs=ref_ds.crs, transform=ref_ds.transform, width=ref_ds.width,
                height=ref_ds.height, resampling=Resampling.nearest)
    if pred_ds.nodata is None:
        opts["add_alpha"] = True  # so pixels outside the prediction read as masked
    return WarpedVRT(pred_ds, **opts)


def _infer_num_classes(ref_ds, ref_path, band: int, ref_scheme_map, class_names, ignore_index: int,
                       block_pixels: int) -> int:
    """The largest mapped reference class + 1, the number of names, or one pass over the
    reference for its largest valid code."""
    if ref_scheme_map:
        return max(int(v) for v in ref_scheme_map.values() if int(v) != ignore_index) + 1
    if class_names is not None:
        return len(class_names)
    top = -1
    for win in _strips(ref_ds.height, ref_ds.width, block_pixels):
        ref = ref_ds.read(band, window=win, masked=True)
        vals = ref.compressed()
        vals = vals[vals != ignore_index]
        if vals.size:
            top = max(top, int(vals.max()))
    if top < 0:
        raise InputError("reference raster has no valid class pixels", path=ref_path,
                         fix="check its nodata value and class codes")
    return top + 1


def evaluate_rasters(pred_path: str | Path, ref_path: str | Path,
                     pred_scheme_map: Mapping[int, int] | None = None,
                     ref_scheme_map: Mapping[int, int] | None = None, *,
                     num_classes: int | None = None, class_names: Sequence[str] | None = None,
                     ignore_index: int = IGNORE, band: int = 1, uncovered: str = "ignore",
                     block_pixels: int = 1 << 20, progress=None) -> dict[str, Any]:
    """Confusion-matrix scores of ``pred_path`` against ``ref_path`` (strict-JSON dict).

    ``*_scheme_map``: raster code -> class index; unmapped reference codes are ignored,
    unmapped predicted codes count as no prediction (a miss). Without maps the raster values are
    the class indices. Reference nodata/masked pixels are ignored. ``uncovered`` decides what
    happens to scored reference pixels the prediction has no data for (outside its extent or
    its nodata): ``"ignore"`` leaves them out (reported as ``coverage``), ``"miss"`` counts them
    as unpredicted. ``num_classes`` defaults to the largest mapped reference class + 1 (one
    extra pass over the reference when there is no map).

    Raises :class:`~sparsevit.errors.InputError` for unreadable rasters, rasters on different
    grids without a CRS, or rasters that do not overlap.
    """
    if uncovered not in ("ignore", "miss"):
        raise ValueError("uncovered must be 'ignore' or 'miss'")
    pred_ds = _open(pred_path, "prediction")
    ref_ds = _open(ref_path, "reference")
    vrt = None
    try:
        for ds, path in ((pred_ds, pred_path), (ref_ds, ref_path)):
            if band > ds.count:
                raise InputError(f"raster has {ds.count} band(s), band {band} requested",
                                 path=path, fix="choose an existing band")
        same = _same_grid(pred_ds, ref_ds)
        if not same:
            vrt = _prediction_on_reference_grid(pred_ds, ref_ds, pred_path, ref_path)
        pred_src = vrt if vrt is not None else pred_ds
        if num_classes is None:
            num_classes = _infer_num_classes(ref_ds, ref_path, band, ref_scheme_map, class_names,
                                             ignore_index, block_pixels)
        cm = ConfusionMatrix(num_classes, ignore_index, class_names)
        ref_scored = uncovered_px = 0
        windows = list(_strips(ref_ds.height, ref_ds.width, block_pixels))
        ctx = progress.stage("evaluate", total=len(windows)) if progress is not None else nullcontext()
        with ctx as st:
            for win in windows:
                ref = ref_ds.read(band, window=win, masked=True)
                target = _apply_map(ref.filled(0), ref_scheme_map, ignore_index)
                target[np.ma.getmaskarray(ref)] = ignore_index
                pred_raw = pred_src.read(band, window=win)
                covered = pred_src.read_masks(band, window=win) > 0
                pred = _apply_map(pred_raw, pred_scheme_map, -1)
                scored = target != ignore_index
                ref_scored += int(scored.sum())
                gap = scored & ~covered
                uncovered_px += int(gap.sum())
                if uncovered == "ignore":
                    target[gap] = ignore_index
                else:
                    pred[gap] = -1
                cm.update(pred, target)
                if st is not None:
                    st.advance()
        if cm.total == 0:
            raise InputError("prediction and reference rasters have no valid pixel in common",
                             path=pred_path, fix="check the extents and nodata values")
        out = cm.scores()
        out.update(prediction=str(pred_path), reference=str(ref_path), reprojected=not same,
                   reference_pixels_scored=ref_scored, uncovered_pixels=uncovered_px,
                   uncovered_policy=uncovered,
                   coverage=(1.0 - uncovered_px / ref_scored) if ref_scored else None)
        return json_sanitize(out)
    finally:
        if vrt is not None:
            vrt.close()
        pred_ds.close()
        ref_ds.close()
