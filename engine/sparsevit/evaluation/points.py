"""Score a classified raster against labelled points (field survey, photo-interpretation).

Points come from any vector file GDAL reads (GeoPackage, GeoJSON, Shapefile, ...), through
pyogrio. Their labels are class values or class names of the prediction's scheme (names match
case- and punctuation-insensitively), or labels of another nomenclature translated by a
``scheme_map``. Points are reprojected to the raster CRS and sampled at the pixel they fall in.

Nothing is dropped silently: points outside the raster, on nodata pixels, without geometry or
label, or whose label maps to "ignore" are counted per reason, and the first ones are listed
with their feature id, in the result.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any
from typing import Mapping as TMapping

import numpy as np

from ..errors import InputError
from ..io.vector_labels import as_number, is_missing, pick_layer, resolve_field
from ..schemes import IGNORE, ClassScheme, Mapping, load_mapping
from .metrics import ConfusionMatrix, json_sanitize

_LISTED = 100
_POINT, _MULTIPOINT = 0, 4  # shapely geometry type ids
_REASONS = ("outside", "nodata", "no_geometry", "no_label", "ignored")


class _Labeller:
    """Point label -> class index of ``scheme`` (``None`` = ignore); unknown labels raise."""

    def __init__(self, scheme: ClassScheme, scheme_map):
        self.scheme = scheme
        if isinstance(scheme_map, (str, Path)):
            scheme_map = load_mapping(scheme_map)
        if isinstance(scheme_map, Mapping) and scheme_map.target.name != scheme.name \
                and scheme_map.target.names != scheme.names:
            raise InputError(f"mapping '{scheme_map.name}' maps to scheme '{scheme_map.target.name}' "
                             f"but the prediction uses '{scheme.name}'",
                             fix="choose a mapping whose target is the prediction's scheme")
        self.map = scheme_map

    def _in_scheme(self, target: Any, scheme: ClassScheme) -> int:
        num = as_number(target)
        if num is not None and num in scheme.values:
            return scheme.index_of(num)
        if isinstance(target, str) and scheme.has_name(target):
            return scheme.index_of(scheme.by_name(target).value)
        raise KeyError(target)

    def __call__(self, label: Any) -> int | None:
        if self.map is None:
            return self._in_scheme(label, self.scheme)
        if isinstance(self.map, Mapping):
            src = self.map.source
            name = src.classes[self._in_scheme(label, src)].name
            target = self.map.target_name(name)
            return None if target is None else self.scheme.index_of(self.scheme.by_name(target).value)
        for key in (label, str(label), as_number(label)):
            try:
                if key is not None and key in self.map:
                    target = self.map[key]
                    return None if target is None else self._in_scheme(target, self.scheme)
            except TypeError:  # unhashable
                continue
        raise KeyError(label)


def evaluate_points(pred_raster: str | Path, points_path: str | Path, field: str, *,
                    layer: str | int | None = None,
                    scheme_map: TMapping[Any, Any] | Mapping | str | None = None,
                    scheme: str | Path | ClassScheme | None = None, band: int = 1,
                    progress=None) -> dict[str, Any]:
    """Confusion-matrix scores (strict-JSON dict) of ``pred_raster`` at labelled points.

    ``field``: attribute holding each point's class (value or name). ``scheme``: the
    prediction's scheme (default: the raster's class table). ``scheme_map``: translate point
    labels first - a dict ``{label: class name/value or None}`` (None = ignore), a
    :class:`~sparsevit.schemes.Mapping` or a mapping name (source = the labels' scheme, target =
    the prediction's). Predicted values outside the scheme count as no prediction (a miss).

    Raises :class:`InputError` for a missing field (listing the fields), non-point geometries,
    unknown labels, or when no point lands on a valid prediction pixel.
    """

    from ..export.classes import import_pyogrio, open_raster, raster_scheme

    pyogrio = import_pyogrio()
    points_path = Path(points_path)
    if not points_path.exists():
        raise InputError("points file not found", path=points_path, fix="check the path")
    scheme_obj = raster_scheme(pred_raster, scheme)
    labeller = _Labeller(scheme_obj, scheme_map)
    layer = pick_layer(pyogrio, points_path, layer, what="points",
                       preferred=lambda _name, geom: "point" in geom.lower())
    info = pyogrio.read_info(str(points_path), layer=layer)
    field = resolve_field(info, field, points_path, what="points")
    meta, fids, wkb, field_data = pyogrio.raw.read(str(points_path), layer=layer, columns=[field],
                                                   return_fids=True)
    n = len(wkb)
    if n == 0:
        raise InputError("the points layer has no features", path=points_path,
                         fix="give a layer with labelled points")
    fids = np.asarray(fids) if fids is not None else np.arange(n)
    labels = field_data[0]
    xs, ys, present = _point_coordinates(wkb, points_path)
    reason = np.full(n, "", dtype=object)
    reason[~present] = "no_geometry"
    target = _point_targets(labels, labeller, reason, field, points_path, scheme_obj)
    warnings: list[str] = []
    with open_raster(pred_raster, "prediction") as ds:
        pred_vals, reprojected = _sample_at_points(ds, band, meta.get("crs"), xs, ys, present, reason,
                                                   warnings, pred_raster)
        crs_text = ds.crs.to_string() if ds.crs else None
    return _point_scores(scheme_obj, pred_vals, target, reason, fids, dict(
        prediction=str(pred_raster), points=str(points_path), layer=str(layer), field=field,
        scheme=scheme_obj.name, crs=crs_text, reprojected=reprojected, warnings=warnings), points_path)


def _point_coordinates(wkb, points_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, y, present)`` of every feature (NaN where it has no geometry); refuses anything
    but single points."""
    import shapely

    geoms = shapely.from_wkb(wkb)
    types = shapely.get_type_id(geoms)
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    multi = present & (types == _MULTIPOINT)
    if np.any(multi & (shapely.get_num_geometries(geoms) != 1)):
        raise InputError("the layer has multi-point features with several points", path=points_path,
                         fix="explode them to single points (QGIS: Multipart to singleparts)")
    bad = present & ~np.isin(types, [_POINT, _MULTIPOINT])
    if np.any(bad):
        kinds = sorted({g.geom_type for g in geoms[bad][:50]})
        raise InputError(f"the layer holds {', '.join(kinds)} geometries, not points",
                         path=points_path, fix="give a point layer (QGIS: Centroids for polygons)")
    geoms = np.where(multi, shapely.get_geometry(geoms, 0), geoms)
    xs = np.where(present, shapely.get_x(np.where(present, geoms, shapely.Point(0, 0))), np.nan)
    ys = np.where(present, shapely.get_y(np.where(present, geoms, shapely.Point(0, 0))), np.nan)
    return xs, ys, present


def _point_targets(labels, labeller, reason: np.ndarray, field: str, points_path: Path,
                   scheme_obj) -> np.ndarray:
    """Class index per point (-1: not scored, the reason set in ``reason``); unknown labels
    are refused with the scheme's names."""
    target = np.full(len(labels), -1, dtype=np.int64)
    resolved: dict[Any, int | str] = {}  # label -> class index, or a skip reason / "unknown"
    unknown: list[str] = []
    for i, lab in enumerate(labels.tolist()):
        key = ("missing",) if is_missing(lab) else lab
        if key not in resolved:
            if key == ("missing",):
                resolved[key] = "no_label"
            else:
                try:
                    idx = labeller(lab)
                    resolved[key] = "ignored" if idx is None else idx
                except (KeyError, InputError):
                    resolved[key] = "unknown"
                    unknown.append(str(lab))
        res = resolved[key]
        if isinstance(res, int):
            target[i] = res
        elif reason[i] == "":
            reason[i] = res
    if unknown:
        src = labeller.map.source if isinstance(labeller.map, Mapping) else scheme_obj
        raise InputError(f"field '{field}' has labels that are not classes: {', '.join(sorted(unknown)[:10])}"
                         + (" ..." if len(unknown) > 10 else ""), path=points_path,
                         fix=f"use the values or names of scheme '{src.name}' ({', '.join(src.names)}), "
                             "or give a class mapping")
    return target


def _sample_at_points(ds, band: int, pts_crs, xs, ys, present, reason: np.ndarray, warnings: list,
                      pred_raster) -> tuple[np.ndarray, bool]:
    """The predicted value at every scorable point (-1 elsewhere, the reason set), reprojecting
    the points to the raster's CRS; ``(values, reprojected)``."""
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp_transform

    n = len(xs)
    if band > ds.count:
        raise InputError(f"raster has {ds.count} band(s), band {band} requested", path=pred_raster)
    reprojected = False
    todo = present.copy()
    if pts_crs is None:
        warnings.append("the points have no CRS: assumed to be in the raster's CRS")
    elif ds.crs is None:
        warnings.append("the raster has no CRS: point coordinates used as they are")
    else:
        src_crs = CRS.from_user_input(pts_crs)
        if src_crs != ds.crs and todo.any():
            tx, ty = warp_transform(src_crs, ds.crs, xs[todo].tolist(), ys[todo].tolist())
            xs[todo], ys[todo] = tx, ty
            reprojected = True
    inv = ~ds.transform
    cols, rows = inv * (xs, ys)
    finite = np.isfinite(cols) & np.isfinite(rows)
    cols = np.where(finite, np.floor(np.where(finite, cols, 0)), -1).astype(np.int64)
    rows = np.where(finite, np.floor(np.where(finite, rows, 0)), -1).astype(np.int64)
    inside = (cols >= 0) & (cols < ds.width) & (rows >= 0) & (rows < ds.height)
    reason[present & ~inside & (reason == "")] = "outside"
    sample = present & inside & (reason == "")
    pred_vals = np.full(n, -1, dtype=np.int64)
    idx_sample = np.flatnonzero(sample)
    # sample at pixel centres: the reprojected coordinate may sit a hair off a pixel edge
    centres = [ds.transform * (c + 0.5, r + 0.5) for c, r in zip(cols[idx_sample], rows[idx_sample])]
    for i, v in zip(idx_sample, ds.sample(centres, indexes=band, masked=True)):
        if np.ma.getmaskarray(v)[0]:
            reason[i] = "nodata"
        else:
            pred_vals[i] = int(v[0])
    return pred_vals, reprojected


def _point_scores(scheme_obj, pred_vals, target, reason, fids, about: dict, points_path) -> dict:
    n = len(reason)
    scored = reason == ""
    counts = {"total": int(n), "scored": int(scored.sum()),
              **{r: int((reason == r).sum()) for r in _REASONS}}
    if counts["scored"] == 0:
        if counts["outside"] and not (counts["nodata"] or counts["ignored"] or counts["no_label"]):
            raise InputError(f"none of the {n} points falls inside the raster", path=points_path,
                             fix="check that points and raster cover the same area and that the "
                                 "points layer has the right CRS")
        raise InputError(f"no point can be scored ({_fmt_counts(counts)})", path=points_path,
                         fix="check the labels, the raster's nodata and the extents")
    pred_idx = scheme_obj.to_index(np.clip(pred_vals[scored], 0, None)).astype(np.int64)
    pred_idx[pred_vals[scored] < 0] = -1
    pred_idx[pred_idx == IGNORE] = -1  # values outside the scheme: no prediction
    cm = ConfusionMatrix(scheme_obj.num_classes, None, list(scheme_obj.names))
    cm.update(pred_idx, target[scored])
    out = cm.scores()
    skipped = [{"fid": int(fids[i]), "reason": reason[i]}
               for i in np.flatnonzero(~scored)[:_LISTED]]
    out.update(about, point_counts=counts, skipped=skipped, skipped_listed_max=_LISTED)
    return json_sanitize(out)


def _fmt_counts(counts: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v and k not in ("total", "scored"))
