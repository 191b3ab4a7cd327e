import numpy as np
import pytest
import shapely
from fixtures.class_maps import class_map, utm_grid, write_map
from rasterio.warp import transform_bounds
from scipy import ndimage

from sparsevit.errors import InputError
from sparsevit.export import class_areas, vectorize
from sparsevit.export.classes import import_pyogrio


def read_layer(path):
    pyogrio = import_pyogrio()
    meta, _, wkb, fields = pyogrio.raw.read(str(path))
    data = dict(zip(meta["fields"], fields))
    return meta, shapely.from_wkb(wkb), data


def n_components(arr):
    return sum(ndimage.label(arr == v)[1] for v in np.unique(arr) if v != 255)


def test_one_block_gives_one_polygon_per_patch_and_areas_match_class_areas(tmp_path):
    arr = class_map()
    src = write_map(tmp_path / "c.tif", arr)
    res = vectorize(src, tmp_path / "p.gpkg")
    meta, geoms, data = read_layer(tmp_path / "p.gpkg")
    assert meta["crs"] == "EPSG:32630" and meta["geometry_type"] == "Polygon"
    assert list(data) == ["class_value", "class_name", "area_ha", "pixels", "block"]
    assert res["features"] == len(geoms) == n_components(arr)
    assert set(data["block"]) == {0}
    # polygons follow pixel edges: geometry area == pixel count * 100 m2 == area_ha
    assert np.allclose(shapely.area(geoms), data["pixels"] * 100.0)
    assert np.allclose(data["area_ha"], data["pixels"] * 0.01)
    for row in class_areas(src):
        sel = data["class_value"] == row["value"]
        assert data["area_ha"][sel].sum() == pytest.approx(row["hectares"], abs=1e-9)
        assert set(data["class_name"][sel]) <= {row["name"]}
    # nodata is not polygonized: the union misses exactly the nodata corner
    assert shapely.union_all(geoms).area == pytest.approx((arr != 255).sum() * 100.0)


def test_blocks_split_polygons_but_keep_class_totals(tmp_path):
    arr = class_map()
    src = write_map(tmp_path / "c.tif", arr)
    vectorize(src, tmp_path / "one.gpkg")
    res = vectorize(src, tmp_path / "blocks.gpkg", block_size=32)
    assert res["blocks"] == 6  # 60 x 80 in 32 px blocks: 2 rows x 3 cols
    _, g1, d1 = read_layer(tmp_path / "one.gpkg")
    _, g2, d2 = read_layer(tmp_path / "blocks.gpkg")
    assert len(g2) > len(g1) and set(d2["block"]) == set(range(6))
    for v in (1, 2, 7, 10):
        assert d2["area_ha"][d2["class_value"] == v].sum() == pytest.approx(
            d1["area_ha"][d1["class_value"] == v].sum())
        a = shapely.union_all(g1[d1["class_value"] == v])
        b = shapely.union_all(g2[d2["class_value"] == v])
        assert a.symmetric_difference(b).area == pytest.approx(0, abs=1e-6)


def test_min_area_merges_small_patches_and_crs_reprojects(tmp_path):
    arr = class_map()
    arr[30, 40] = 7 if arr[30, 40] != 7 else 1  # a one-pixel speck inside a patch
    arr[31:33, 41:43] = 2 if arr[31, 41] != 2 else 10  # a four-pixel speck
    src = write_map(tmp_path / "c.tif", arr)
    plain = vectorize(src, tmp_path / "plain.gpkg")
    sieved = vectorize(src, tmp_path / "sieved.gpkg", min_area_pixels=5, block_size=32)
    _, _, d = read_layer(tmp_path / "sieved.gpkg")
    assert d["pixels"].min() >= 1
    assert plain["features"] - 2 == n_components(arr) - 2 == vectorize(
        src, tmp_path / "s1.gpkg", min_area_pixels=5)["features"]
    assert sieved["features"] >= plain["features"] - 2
    res = vectorize(src, tmp_path / "ll.gpkg", crs="EPSG:4326", simplify=0.5)
    meta, geoms, data = read_layer(tmp_path / "ll.gpkg")
    assert res["crs"] == "EPSG:4326" and meta["crs"] == "EPSG:4326"
    west, south, east, north = transform_bounds("EPSG:32630", "EPSG:4326", *utm_grid(arr).bounds)
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    assert west - 1e-6 <= x0 < x1 <= east + 1e-6 and south - 1e-6 <= y0 < y1 <= north + 1e-6
    assert -4 < x0 < -3 and 38 < y0 < 39  # lon/lat order, not lat/lon
    # area_ha is measured on the ground grid, not on the degrees of the output
    _, _, p = read_layer(tmp_path / "plain.gpkg")
    assert data["area_ha"].sum() == pytest.approx(p["area_ha"].sum())


def test_errors_leave_an_existing_output_alone(tmp_path):
    src = write_map(tmp_path / "c.tif")
    out = tmp_path / "p.gpkg"
    out.write_bytes(b"old")
    with pytest.raises(InputError, match="coordinate reference system"):
        vectorize(src, out, crs="EPSG:not-a-code")
    with pytest.raises(InputError, match="not found"):
        vectorize(tmp_path / "missing.tif", out)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.qml", "c.tif", "c.tif.aux.xml", "p.gpkg"]
