"""Labels -> tile tags: tile grids, points/lines/polygons with a class field, any CRS."""
from __future__ import annotations

import numpy as np
import pytest
import shapely
from fixtures.fit_scenes import SCHEME, pixel_center, river_scene

from sparsevit.errors import InputError
from sparsevit.export.classes import import_pyogrio
from sparsevit.fit.grid import write_grid
from sparsevit.fit.labels import read_labels, scheme_from_labels, split_tags
from sparsevit.io.scene import open_s2


def _grid_of(raster):
    with open_s2(raster, required=None) as sc:
        return sc.grid


def _write_features(path, geoms, labels, crs="EPSG:32633", field="klass"):
    raw = import_pyogrio().raw
    raw.write(str(path), shapely.to_wkb(np.array(geoms, dtype=object)), [np.array(labels, dtype=object)],
              [field], layer="labels", driver="GPKG", crs=crs, promote_to_multi=False,
              geometry_type="Unknown")
    return path


def _set_tags(grid_gpkg, tags: dict[tuple[int, int], str]):
    raw = import_pyogrio().raw
    meta, _, wkb, fields = raw.read(str(grid_gpkg))
    names = list(meta["fields"])
    rows, cols = fields[names.index("row")], fields[names.index("col")]
    fields[names.index("classes")] = np.array([tags.get((int(r), int(c)), "") for r, c in zip(rows, cols)],
                                              dtype=object)
    raw.write(str(grid_gpkg), wkb, fields, names, layer="tiles", driver="GPKG", crs=meta["crs"],
              geometry_type="Polygon")


def test_split_tags_accepts_both_separators_and_empty():
    assert split_tags("water; land") == ["water", "land"]
    assert split_tags("water,land") == ["water", "land"]
    assert split_tags("") == [] and split_tags(None) == []


def test_scheme_from_labels_keeps_integer_codes_and_names():
    codes = scheme_from_labels([3, 1, 3])
    assert codes.values == (1, 3) and codes.names == ("class 1", "class 3")
    names = scheme_from_labels(["water", "land", "water"])
    assert names.names == ("land", "water") and len(set(names.colors)) == 2


def test_grid_cells_are_tagged_tiles_and_untagged_cells_are_left_out(tmp_path):
    raster, _ = river_scene(tmp_path / "s.tif")
    grid = _grid_of(raster)
    out = write_grid(tmp_path / "g.gpkg", [grid], ["s.tif"], 32)
    assert out["cells"] == 16
    _set_tags(tmp_path / "g.gpkg", {(0, 32): "water;land", (64, 96): "land"})
    labels = read_labels(tmp_path / "g.gpkg", [grid], tile=32, scheme=SCHEME)
    got = {(t.row, t.col): labels.scheme.label_names(t.labels) for t in labels.tiles}
    assert got == {(0, 32): ["water", "land"], (64, 96): ["land"]}
    assert labels.report["without_class"] == 14 and labels.kind == "grid"


def test_unknown_tag_is_refused_with_the_scheme_names(tmp_path):
    raster, _ = river_scene(tmp_path / "s.tif")
    grid = _grid_of(raster)
    write_grid(tmp_path / "g.gpkg", [grid], ["s.tif"], 32)
    _set_tags(tmp_path / "g.gpkg", {(0, 0): "wetland"})
    with pytest.raises(InputError, match="wetland.*water, land"):
        read_labels(tmp_path / "g.gpkg", [grid], tile=32, scheme=SCHEME)


def test_points_lines_polygons_tag_every_tile_they_touch(tmp_path):
    raster, _ = river_scene(tmp_path / "s.tif")
    grid = _grid_of(raster)
    p_water = shapely.Point(*pixel_center(10, 50))          # tile (0, 32)
    line = shapely.LineString([pixel_center(70, 5), pixel_center(70, 20)])  # tile (64, 0)
    x0, y0 = pixel_center(100, 100)
    x1, y1 = pixel_center(120, 120)
    poly = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))  # tile (96, 96)
    p_land = shapely.Point(*pixel_center(20, 60))            # same tile as p_water
    _write_features(tmp_path / "l.gpkg", [p_water, line, poly, p_land], ["water", "land", "land", "land"])
    labels = read_labels(tmp_path / "l.gpkg", [grid], tile=32, field="klass", scheme=SCHEME)
    got = {(t.row, t.col): labels.scheme.label_names(t.labels) for t in labels.tiles}
    assert got == {(0, 32): ["water", "land"], (64, 0): ["land"], (96, 96): ["land"]}
    assert labels.kind == "features" and labels.report["outside_rasters"] == 0


def test_labels_in_another_crs_are_reprojected_and_outside_ones_counted(tmp_path):
    from rasterio.warp import transform
    raster, _ = river_scene(tmp_path / "s.tif")
    grid = _grid_of(raster)
    (x,), (y,) = transform("EPSG:32633", "EPSG:4326", [pixel_center(10, 50)[0]], [pixel_center(10, 50)[1]])
    far = shapely.Point(x + 1.0, y)  # ~70 km east: outside the raster
    _write_features(tmp_path / "l.gpkg", [shapely.Point(x, y), far], [1, 2], crs="EPSG:4326")
    labels = read_labels(tmp_path / "l.gpkg", [grid], tile=32, field="KLASS", scheme=SCHEME)  # case-insensitive
    assert [(t.row, t.col) for t in labels.tiles] == [(0, 32)]
    assert labels.scheme.label_names(labels.tiles[0].labels) == ["water"]  # code 1 = the scheme's value 1
    assert labels.report["outside_rasters"] == 1


def test_no_labelled_tile_on_the_raster_is_a_clear_error(tmp_path):
    raster, _ = river_scene(tmp_path / "s.tif")
    _write_features(tmp_path / "l.gpkg", [shapely.Point(0, 0)], ["water"])
    with pytest.raises(InputError, match="no tagged tile lies on the raster"):
        read_labels(tmp_path / "l.gpkg", [_grid_of(raster)], tile=32, field="klass", scheme=SCHEME)


def test_a_layer_without_classes_field_is_not_taken_for_a_grid(tmp_path):
    raster, _ = river_scene(tmp_path / "s.tif")
    _write_features(tmp_path / "l.gpkg", [shapely.Point(*pixel_center(5, 5))], ["water"])
    with pytest.raises(InputError, match="not a tile grid.*--field"):
        read_labels(tmp_path / "l.gpkg", [_grid_of(raster)], tile=32, scheme=SCHEME)
