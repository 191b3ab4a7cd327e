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
    assert np.allclose(data["area_ha"], data["pixels"] * 0.01, rtol=1e-3)  # ground area, UTM scale
    for row in class_areas(src):
        sel = data["class_value"] == row["value"]
        assert data["area_ha"][sel].sum() == pytest.approx(row["hectares"], abs=1e-9)
        assert set(data["class_name"][sel]) <= {row["name"]}
    # nodata is not polygonized: the union misses exactly the nodata corner
    assert shapely.union_all(geoms).area == pytest.approx((arr != 255).sum() * 100.0)


def match_features(ga, da, gb, db):
    """Pair each feature of layer a with one of layer b of the same class and the same shape."""
    assert len(ga) == len(gb)
    free = set(range(len(gb)))
    for i in range(len(ga)):
        hits = [j for j in free if db["class_value"][j] == da["class_value"][i]
                and db["pixels"][j] == da["pixels"][i]
                and ga[i].symmetric_difference(gb[j]).area < 1e-6]
        assert hits, f"no match for feature {i} (class {da['class_value'][i]})"
        free.remove(hits[0])
        assert db["area_ha"][hits[0]] == pytest.approx(da["area_ha"][i], abs=1e-9)
    return True


def per_class(data, key):
    return {int(v): (data[key][data["class_value"] == v].sum() if key else int((data["class_value"] == v).sum()))
            for v in np.unique(data["class_value"])}


def shapes_map():
    """100 x 100 shrubland (2) with a forest U (1) whose arms meet only in the block below, a water
    square (10) on a block corner, an urban strip (7) along a block row and a nodata corner."""
    arr = np.full((100, 100), 2, np.uint8)
    arr[5:60, 5:11] = 1      # left arm, block 0 and 3
    arr[5:60, 25:31] = 1     # right arm, block 0 and 3
    arr[50:60, 5:31] = 1     # the bottom of the U, only in block 3
    arr[70:90, 70:90] = 10   # on the corner of blocks 4, 5, 7, 8
    arr[92:95, 2:] = 7       # blocks 6, 7, 8
    arr[10:20, 50:60] = 7    # inside block 1
    arr[:3, 95:] = 255
    return arr


def test_blocks_merge_polygons_across_borders_like_one_block(tmp_path):
    arr = shapes_map()
    src = write_map(tmp_path / "c.tif", arr)
    one = vectorize(src, tmp_path / "one.gpkg")
    res = vectorize(src, tmp_path / "blocks.gpkg", block_size=40)
    assert res["blocks"] == 9 and one["blocks"] == 1
    _, g1, d1 = read_layer(tmp_path / "one.gpkg")
    _, g2, d2 = read_layer(tmp_path / "blocks.gpkg")
    assert res["features"] == one["features"] == len(g2) == n_components(arr) == 5
    assert res["features_per_class"] == one["features_per_class"] == {"1": 1, "2": 1, "7": 2, "10": 1}
    assert match_features(g1, d1, g2, d2)
    assert per_class(d2, "area_ha") == pytest.approx(per_class(d1, "area_ha"), abs=1e-6)
    # U (3 parts in 2 blocks), water square (4 blocks), strip (3), shrubland (all 9) merged; the
    # urban square inside block 1 is not
    assert res["merged_across_blocks"] == 4 and one["merged_across_blocks"] == 0
    assert sorted(d2["block"].tolist()) == [-1, -1, -1, -1, 1]
    assert set(shapely.get_type_id(g2).tolist()) == {3}  # plain polygons
    u = g2[d2["class_value"] == 1][0]
    assert u.area == pytest.approx((arr == 1).sum() * 100.0) and len(u.interiors) == 0
    # no vertex is left on the block borders of the straight water square
    assert len(shapely.get_coordinates(g2[d2["class_value"] == 10][0])) == 5


def test_blocks_merge_random_map_and_keep_class_totals(tmp_path):
    arr = class_map(seed=3, shape=(100, 100))
    src = write_map(tmp_path / "c.tif", arr)
    one = vectorize(src, tmp_path / "one.gpkg")
    res = vectorize(src, tmp_path / "blocks.gpkg", block_size=16)
    assert res["blocks"] == 49 and res["merged_across_blocks"] > 0
    _, g1, d1 = read_layer(tmp_path / "one.gpkg")
    _, g2, d2 = read_layer(tmp_path / "blocks.gpkg")
    assert res["features"] == one["features"] == n_components(arr)
    assert res["features_per_class"] == one["features_per_class"]
    assert match_features(g1, d1, g2, d2)
    assert (d2["block"] == -1).sum() == res["merged_across_blocks"]
    for row in class_areas(src):
        sel = d2["class_value"] == row["value"]
        assert d2["area_ha"][sel].sum() == pytest.approx(row["hectares"], abs=1e-9)


def test_blocks_merge_after_sieve_and_simplify_keeps_areas(tmp_path):
    arr = shapes_map()
    arr[39:41, 60] = 10      # a two-pixel speck across a block border
    arr[45, 45] = 7          # a one-pixel speck
    arr[79:81, 79:81] = 1    # a four-pixel speck on the corner inside the water square
    src = write_map(tmp_path / "c.tif", arr)
    kw = dict(min_area_pixels=5, simplify=1.0)
    one = vectorize(src, tmp_path / "one.gpkg", **kw)
    res = vectorize(src, tmp_path / "blocks.gpkg", block_size=40, **kw)
    _, g1, d1 = read_layer(tmp_path / "one.gpkg")
    _, g2, d2 = read_layer(tmp_path / "blocks.gpkg")
    assert res["features"] == one["features"] == 5
    assert res["features_per_class"] == one["features_per_class"]
    assert per_class(d2, "area_ha") == pytest.approx(per_class(d1, "area_ha"), abs=1e-6)
    assert per_class(d2, "pixels") == per_class(d1, "pixels")
    assert per_class(d2, "area_ha")[10] == pytest.approx(4.0, rel=1e-3)  # the corner speck went to water
    assert res["merged_across_blocks"] == 4
    # simplified after merging: the same polygons, up to the simplification of either run
    for v in (1, 2, 7, 10):
        a = shapely.union_all(g1[d1["class_value"] == v])
        b = shapely.union_all(g2[d2["class_value"] == v])
        assert a.symmetric_difference(b).area < 0.02 * a.area


def test_nodata_on_a_block_border_does_not_connect(tmp_path):
    arr = np.full((60, 60), 2, np.uint8)
    arr[5:30, 20:60] = 1
    arr[5:30, 39:41] = 255   # nodata on both sides of the border at column 40
    arr[42:55, 25:55] = 1
    arr[42:55, 40] = 255     # nodata on the right side only
    arr[:, 0] = 255
    arr[:, 59] = 255
    src = write_map(tmp_path / "c.tif", arr)
    one = vectorize(src, tmp_path / "one.gpkg")
    res = vectorize(src, tmp_path / "blocks.gpkg", block_size=40)
    _, g1, d1 = read_layer(tmp_path / "one.gpkg")
    _, g2, d2 = read_layer(tmp_path / "blocks.gpkg")
    assert res["features_per_class"] == one["features_per_class"] == {"1": 4, "2": 1}
    assert match_features(g1, d1, g2, d2)
    # shrubland wraps around and is merged; forest never crosses the nodata
    assert res["merged_across_blocks"] == 1
    assert set(d2["block"][d2["class_value"] == 1].tolist()) <= {0, 1, 2, 3}
    assert (d2["block"][d2["class_value"] == 1] >= 0).all()


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
    assert sieved["features"] == plain["features"] - 2
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
