"""Class polygons from a classified raster, block by block, into a GeoPackage layer.

Design (memory bounded by one block plus the patches touching block borders, whatever the
raster size):

* The raster is cut into blocks of ``block_size`` pixels, and polygons that cross a block
  border are **merged back into one feature**: patches (4-connected, same class) that touch no
  internal block border are written as soon as their block is done; those that do are held back
  (pixel-grid geometry, pixel count, area), the edge rows/columns of the neighbouring blocks are
  compared, and parts whose adjacent pixels across a border are both valid and of the same class
  (each block's own, possibly sieved, values) are joined (union-find). After the last block each
  group is dissolved, then simplified and reprojected like any other polygon. So the layer holds
  the polygons a single-block run gives, with memory bounded by about one block plus the
  border-touching patches. Field ``block``: the row-major block number of a polygon that lies in
  one block, ``-1`` for one merged from several blocks.
* ``min_area_pixels``: patches smaller than that are merged into their largest neighbour
  (GDAL sieve, 4-connectivity) before polygonizing, the usual way to drop salt-and-pepper noise.
  Each block is sieved with a halo of ``min(min_area_pixels, 1024)`` pixels, so which patches go
  is what a whole-raster sieve would decide (a patch that reaches past the halo is already too
  big to be sieved); only the neighbour a patch merges into can differ, and only when that
  neighbour is bigger than the halo. Patches surrounded by nodata are kept (GDAL behaviour).
* ``area_ha`` is the ground area of the pixels of each polygon (the same pixel areas as
  :mod:`sparsevit.export.stats`, so per-class sums equal the class-area table), whatever the
  output CRS, block size, merging or simplification.
* ``simplify`` (in pixels) runs Douglas-Peucker per polygon, after merging (topology of each
  polygon is kept, but neighbours may then overlap or leave slivers - leave it off for exact
  boundaries).
* ``crs``: geometries are reprojected with GDAL (``rasterio.warp.transform_geom``).
"""
from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from ..errors import InputError, OutputError
from ..io.atomic import atomic_path
from ..io.scene import Grid
from ..schemes import ClassScheme
from .classes import import_pyogrio, open_raster
from .crs_check import target_crs_distortion
from .edits import resolve_edits
from .stats import _check_integer, pixel_areas_m2

_MAX_HALO = 1024
_SIEVE_DTYPES = {"uint8", "int16", "uint16", "int32"}


def parse_crs(text, what: str = "--crs"):
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if text is None:
        return None
    try:
        return CRS.from_user_input(text)
    except (CRSError, ValueError, TypeError) as exc:
        raise InputError(f"{what} '{text}' is not a coordinate reference system ({exc})",
                         fix="use e.g. EPSG:4326, EPSG:32633 or a WKT/PROJ string") from None


def _blocks(width: int, height: int, size: int) -> list[tuple[int, Window]]:
    out = []
    for r in range(0, height, size):
        for c in range(0, width, size):
            out.append((len(out), Window(c, r, min(size, width - c), min(size, height - r))))
    return out


def _components(values: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """4-connected patches of equal value: (labels int32 [0 = nodata], class value per label)."""
    from scipy import ndimage

    labels = np.zeros(values.shape, dtype=np.int32)
    classes = [0]
    next_id = 1
    for v in np.unique(values[valid]).tolist():
        lab, n = ndimage.label(valid & (values == v))
        if n:
            sel = lab > 0
            labels[sel] = lab[sel] + (next_id - 1)
            classes.extend([v] * n)
            next_id += n
    return labels, np.asarray(classes, dtype=np.int64)


def vectorize(classified_path: str | Path, out_gpkg: str | Path,
              scheme: str | Path | ClassScheme | None = None, *, min_area_pixels: int = 0,
              simplify: float | None = None, crs=None, layer: str | None = None,
              block_size: int = 2048, band: int = 1, classes=None, reclass=None,
              progress=None) -> dict[str, Any]:
    """Polygonize ``classified_path`` into layer ``layer`` (default: the file stem) of a new
    GeoPackage ``out_gpkg`` (replaced only on success). Fields: ``class_value``, ``class_name``,
    ``area_ha``, ``pixels``, ``block`` (-1 for a polygon merged across block borders). Returns
    ``{"path", "layer", "features", "blocks", "crs", "features_per_class", "merged_across_blocks"}``
    (the last: how many written polygons were joined from parts in more than one block).
    ``reclass`` / ``classes``: see :mod:`sparsevit.export.edits` (applied before the sieve, so
    merged classes are polygonized and sieved as one).
    """
    import shapely
    from affine import Affine
    from rasterio.features import shapes, sieve
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    if min_area_pixels < 0:
        raise InputError(f"--min-area-pixels must be >= 0, got {min_area_pixels}")
    if simplify is not None and simplify < 0:
        raise InputError(f"simplify must be >= 0 pixels, got {simplify}")
    if block_size < 16:
        raise ValueError("block_size must be at least 16")
    out = Path(out_gpkg)
    layer = layer or out.stem
    edits = resolve_edits(classified_path, scheme, classes, reclass, required=False)
    scheme_obj = edits.scheme
    names = {c.value: c.name for c in scheme_obj.classes} if scheme_obj is not None else {}
    dst_crs = parse_crs(crs)
    pyogrio_raw = import_pyogrio().raw

    with open_raster(classified_path) as ds:
        if band > ds.count:
            raise InputError(f"raster has {ds.count} band(s), band {band} requested",
                             path=classified_path)
        _check_integer(ds.dtypes[band - 1], classified_path)
        grid = Grid.of(ds)
        if dst_crs is not None and grid.crs is None:
            raise InputError("raster has no CRS, so its polygons cannot be reprojected",
                             path=classified_path, fix="assign a CRS first or leave out --crs")
        reproject = dst_crs is not None and dst_crs != grid.crs
        out_crs = dst_crs if dst_crs is not None else grid.crs
        distortion = target_crs_distortion(grid, dst_crs) if reproject else None
        if distortion is not None and progress is not None:
            progress.log(distortion["warning"], level="warning")
        tolerance = None if not simplify else float(simplify) * max(grid.res)
        halo = min(int(min_area_pixels), _MAX_HALO) if min_area_pixels > 1 else 0
        blocks = _blocks(grid.width, grid.height, block_size)
        n_cols = -(-grid.width // block_size)
        t = grid.transform

        def to_world(xy: np.ndarray) -> np.ndarray:
            x, y = xy[:, 0], xy[:, 1]
            return np.column_stack([t.a * x + t.b * y + t.c, t.d * x + t.e * y + t.f])

        def finish(geoms: np.ndarray) -> np.ndarray:
            """Global pixel coordinates -> raster CRS -> simplified -> output CRS."""
            geoms = shapely.transform(geoms, to_world)
            if tolerance:
                # in source pixels' units, before reprojection, so "N pixels" means that
                geoms = shapely.simplify(geoms, tolerance, preserve_topology=True)
            if reproject:
                geoms = np.array([shape(g) for g in transform_geom(
                    grid.crs, out_crs, [g.__geo_interface__ for g in geoms])], dtype=object)
            return geoms

        per_class: dict[int, int] = {}
        written = 0

        def emit(geoms, cls, m2, pixels, block_ids) -> None:
            nonlocal written
            fields = [cls.astype(np.int32),
                      np.array([names.get(int(v), f"value {v}" if names else f"class {v}")
                                for v in cls], dtype=object),
                      m2 / 1e4, pixels.astype(np.int64), block_ids.astype(np.int32)]
            _write(pyogrio_raw, tmp, layer, shapely.to_wkb(finish(geoms)), fields, out_crs,
                   append=written > 0)
            written += len(cls)
            for v in cls.tolist():
                per_class[v] = per_class.get(v, 0) + 1

        # parts touching an internal block border, by global id: (pixel-grid geometry, pixels,
        # m2, class, block); edges still waiting for their neighbour block: global ids (0 = none)
        held: dict[int, tuple[Any, int, float, int, int]] = {}
        parent: dict[int, int] = {}
        bottoms: dict[int, np.ndarray] = {}
        right: np.ndarray | None = None
        id_class: dict[int, int] = {}
        offset = 0

        def find(a: int) -> int:
            root = a
            while parent[root] != root:
                root = parent[root]
            while parent[a] != root:
                parent[a], a = root, parent[a]
            return root

        def join(a_ids: np.ndarray, b_ids: np.ndarray) -> None:
            ok = (a_ids > 0) & (b_ids > 0)
            if not ok.any():
                return
            pairs = np.unique(np.stack([a_ids[ok], b_ids[ok]], axis=1), axis=0)
            for a, b in pairs.tolist():
                if id_class[a] == id_class[b]:
                    ra, rb = find(a), find(b)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)

        ctx = progress.stage("vectorize", total=len(blocks)) if progress is not None else nullcontext()
        with atomic_path(out, suffix=".gpkg") as tmp, ctx as st:
            for block_id, core in blocks:
                row0, col0 = int(core.row_off), int(core.col_off)
                h, w = int(core.height), int(core.width)
                r0 = max(0, row0 - halo)
                c0 = max(0, col0 - halo)
                r1 = min(grid.height, row0 + h + halo)
                c1 = min(grid.width, col0 + w + halo)
                m = ds.read(band, window=Window(c0, r0, c1 - c0, r1 - r0), masked=True)
                values, valid = edits.apply(m.data, ~np.ma.getmaskarray(m))
                if halo:
                    if values.dtype.name not in _SIEVE_DTYPES:
                        values = values.astype(np.int32)
                    values = sieve(values, size=int(min_area_pixels), mask=valid, connectivity=4)
                ys = slice(row0 - r0, row0 - r0 + h)
                xs = slice(col0 - c0, col0 - c0 + w)
                values, valid = values[ys, xs], valid[ys, xs]
                labels, label_class = _components(values, valid)
                n_labels = len(label_class)
                # global ids: local label + offset (0 stays "no patch")
                glob = np.where(labels > 0, labels.astype(np.int64) + offset, 0)
                edges = {"top": glob[0] if row0 > 0 else None,
                         "bottom": glob[-1] if row0 + h < grid.height else None,
                         "left": glob[:, 0] if col0 > 0 else None,
                         "right": glob[:, -1] if col0 + w < grid.width else None}
                border = np.zeros(n_labels, dtype=bool)
                for e in edges.values():
                    if e is not None:
                        border[np.unique(e[e > 0]) - offset] = True
                for lab in np.flatnonzero(border).tolist():
                    gid = lab + offset
                    parent[gid] = gid
                    id_class[gid] = int(label_class[lab])
                if n_labels > 1:
                    areas = pixel_areas_m2(grid, core)
                    counts = np.bincount(labels.ravel(), minlength=n_labels)
                    m2 = (np.bincount(labels.ravel(), weights=np.broadcast_to(areas, labels.shape).ravel(),
                                      minlength=n_labels) if areas is not None
                          else np.full(n_labels, np.nan))
                    feats = [(g, int(v)) for g, v in shapes(labels, mask=labels > 0, connectivity=4,
                                                            transform=Affine.translation(col0, row0))]
                    ids = np.array([v for _, v in feats], dtype=np.int64)
                    geoms = np.array([shape(g) for g, _ in feats], dtype=object)
                    keep = border[ids]
                    for lab, g in zip(ids[keep].tolist(), geoms[keep]):
                        held[lab + offset] = (g, int(counts[lab]), float(m2[lab]),
                                              int(label_class[lab]), block_id)
                    ids, geoms = ids[~keep], geoms[~keep]
                    if len(ids):
                        emit(geoms, label_class[ids], m2[ids], counts[ids],
                             np.full(len(ids), block_id))
                if edges["left"] is not None and right is not None:
                    join(right, edges["left"])
                if edges["top"] is not None:
                    join(bottoms.pop(block_id - n_cols), edges["top"])
                right = edges["right"]
                if edges["bottom"] is not None:
                    bottoms[block_id] = edges["bottom"]
                offset += n_labels - 1
                if st is not None:
                    st.advance()
            groups: dict[int, list[int]] = {}
            for gid in held:
                groups.setdefault(find(gid), []).append(gid)
            merged = 0
            if groups:
                geoms, cls, m2s, pixels, block_ids = [], [], [], [], []
                for members in groups.values():
                    parts = [held[g] for g in members]
                    if len(parts) > 1:
                        merged += 1
                        # exact integer pixel coordinates, so parts share their border edges exactly;
                        # tolerance 0 drops the vertices left on the former block borders
                        geom = shapely.simplify(shapely.union_all([p[0] for p in parts]), 0,
                                                preserve_topology=True)
                    else:
                        geom = parts[0][0]
                    geoms.append(geom)
                    cls.append(parts[0][3])
                    pixels.append(sum(p[1] for p in parts))
                    m2s.append(sum(p[2] for p in parts))
                    block_ids.append(parts[0][4] if len(parts) == 1 else -1)
                emit(np.array(geoms, dtype=object), np.array(cls, dtype=np.int64),
                     np.array(m2s, dtype=np.float64), np.array(pixels), np.array(block_ids))
            if written == 0:
                _write(pyogrio_raw, tmp, layer, np.array([], dtype=object),
                       [np.array([], np.int32), np.array([], object), np.array([], np.float64),
                        np.array([], np.int64), np.array([], np.int32)], out_crs, append=False)
    return {"path": str(out), "layer": layer, "features": written, "blocks": len(blocks),
            "crs": out_crs.to_string() if out_crs else None,
            "features_per_class": {str(k): v for k, v in sorted(per_class.items())},
            "merged_across_blocks": merged, "crs_distortion": distortion,
            "warnings": [distortion["warning"]] if distortion else []}


_FIELDS = ["class_value", "class_name", "area_ha", "pixels", "block"]


def _write(raw, path: Path, layer: str, wkb, fields, crs, append: bool) -> None:
    try:
        raw.write(str(path), wkb, fields, _FIELDS, layer=layer, driver="GPKG",
                  geometry_type="Polygon", crs=None if crs is None else crs.to_wkt(),
                  append=append, promote_to_multi=False)
    except Exception as exc:  # pyogrio raises its own DataSourceError/FieldError types
        raise OutputError(f"cannot write the GeoPackage ({str(exc).splitlines()[0][:200]})",
                          path=path, fix="check free disk space and that the folder is writable") from exc
