import csv
import json

import numpy as np
import pytest
import rasterio
from affine import Affine
from fixtures.class_maps import class_map, utm_grid, write_map
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import calculate_default_transform, reproject

from sparsevit.errors import InputError
from sparsevit.export import area_summary, class_areas, write_areas_csv, write_areas_json
from sparsevit.export.stats import pixel_areas_m2
from sparsevit.io.scene import Grid
from sparsevit.progress import Progress

SAMPLE_LABEL = "resources/sample/Spain_7370579_LabelHand.tif"  # EPSG:4326, -1 = no data


def test_utm_areas_count_pixels_times_pixel_area(tmp_path):
    arr = class_map()
    path = write_map(tmp_path / "c.tif", arr)
    rows = class_areas(path, block_pixels=80 * 7)  # several strips
    by_value = {r["value"]: r for r in rows}
    assert [r["name"] for r in rows][:3] == ["Forest", "Shrubland", "Savanna"]  # scheme order
    for v in (1, 2, 7, 10):
        px = int((arr == v).sum())
        assert by_value[v]["pixels"] == px
        # ground area: a UTM cell near the central meridian is 1/k^2 ~ 1.0008 of its nominal area
        assert by_value[v]["hectares"] == pytest.approx(px * 100 / 1e4, rel=1e-3)
        assert by_value[v]["hectares"] != pytest.approx(px * 100 / 1e4, rel=1e-5)
    assert by_value[3]["pixels"] == 0 and by_value[3]["hectares"] == 0
    assert sum(r["percent"] for r in rows) == pytest.approx(100.0)
    summary = area_summary(path)
    assert summary["nodata_pixels"] == 35
    assert summary["classified_pixels"] == arr.size - 35
    assert summary["area_method"] == "ellipsoidal (projected cells)" and summary["scheme"] == "dfc2020"


def test_grid_and_array_match_the_raster_and_values_outside_scheme_are_kept(tmp_path):
    arr = class_map()
    arr[-1, -3:] = 42  # not a DFC2020 class: listed, not dropped
    path = write_map(tmp_path / "c.tif", arr)
    from_file = class_areas(path, "dfc2020")
    from_array = class_areas(utm_grid(arr), "dfc2020", arr)
    assert from_file == from_array
    extra = [r for r in from_file if r["value"] == 42]
    assert extra == [{"value": 42, "name": "value 42", "pixels": 3, "hectares": pytest.approx(0.03, rel=1e-3),
                      "percent": pytest.approx(100 * 3 / (arr.size - 35), rel=1e-4), "in_scheme": False}]


def test_one_degree_cell_at_equator_and_60n_on_wgs84():
    # 1x1 degree cells: 12308.8 km2 at 0-1N (tabulated); at 60-61N the local estimate
    # M*N*cos(lat) at the centre latitude (good to ~1e-5 for one degree)
    grid = Grid(CRS.from_epsg(4326), Affine(1, 0, 0, 0, -1, 61), 1, 61)
    areas = pixel_areas_m2(grid, rasterio.windows.Window(0, 0, 1, 61))[:, 0] / 1e6
    assert areas[-1] == pytest.approx(12308.8, rel=1e-4)
    a, e2, lat = 6378137.0, 0.00669437999014, np.radians(60.5)
    s2 = np.sin(lat) ** 2
    m, n = a * (1 - e2) / (1 - e2 * s2) ** 1.5, a / np.sqrt(1 - e2 * s2)
    assert areas[0] == pytest.approx(m * n * np.cos(lat) * np.radians(1) ** 2 / 1e6, rel=1e-4)
    assert areas[0] / areas[-1] == pytest.approx(0.4975, abs=1e-3)  # not cos(60.5) = 0.492
    # the whole northern hemisphere band 0..90 over 360 degrees is a quarter of the ellipsoid
    grid = Grid(CRS.from_epsg(4326), Affine(360, 0, -180, 0, -90, 90), 1, 1)
    half = pixel_areas_m2(grid, rasterio.windows.Window(0, 0, 1, 1)).item()
    assert 2 * half == pytest.approx(510_065_621.7e6, rel=1e-6)


def test_projected_cells_are_measured_on_the_ground():
    import math

    # UTM 30N, 10 m: on the central meridian the scale is 0.9996, 300 km east of it ~1.0007
    at_cm = Grid(CRS.from_epsg(32630), Affine(10, 0, 500000, 0, -10, 4200000), 64, 64)
    east = Grid(CRS.from_epsg(32630), Affine(10, 0, 800000, 0, -10, 4200000), 64, 64)
    win = rasterio.windows.Window(0, 0, 64, 64)
    assert pixel_areas_m2(at_cm, win).mean() == pytest.approx(100 / 0.9996 ** 2, rel=2e-5)
    assert pixel_areas_m2(east, win).mean() < 100
    # Web Mercator at 38 N: a 10 m cell covers about cos^2(38) of 100 m2 on the ground
    y = math.log(math.tan(math.pi / 4 + math.radians(38) / 2)) * 6378137
    merc = Grid(CRS.from_epsg(3857), Affine(10, 0, -87000, 0, -10, y), 512, 512)
    a = pixel_areas_m2(merc, rasterio.windows.Window(0, 0, 512, 512))
    assert a.shape == (512, 512) and a[0, 0] == pytest.approx(100 * math.cos(math.radians(38)) ** 2, rel=5e-3)
    assert a[-1, 0] > a[0, 0]  # further south, less shrunk
    # the same pixel read in another block gets the same area (totals independent of blocks)
    part = pixel_areas_m2(merc, rasterio.windows.Window(100, 37, 50, 60))
    assert np.array_equal(part, a[37:97, 100:150])


def test_geographic_sample_matches_an_equal_area_reprojection():
    rows = class_areas(SAMPLE_LABEL, nodata=-1)
    with rasterio.open(SAMPLE_LABEL) as ds:
        assert ds.crs.is_geographic
        src = ds.read(1)
        dst_crs = CRS.from_epsg(3035)  # ETRS89 LAEA Europe: equal-area
        transform, w, h = calculate_default_transform(ds.crs, dst_crs, ds.width, ds.height,
                                                      *ds.bounds, resolution=2.5)
        dst = np.full((h, w), -1, dtype=np.int16)
        reproject(src, dst, src_transform=ds.transform, src_crs=ds.crs, dst_transform=transform,
                  dst_crs=dst_crs, resampling=Resampling.nearest, src_nodata=-1, dst_nodata=-1)
    for r in rows:
        expected_ha = (dst == r["value"]).sum() * 2.5 * 2.5 / 1e4
        assert r["hectares"] == pytest.approx(expected_ha, rel=0.01), r
        assert r["pixels"] == int((src == r["value"]).sum())
    assert {r["value"] for r in rows} == set(np.unique(src[src != -1]).tolist())
    # pixel counts alone would be wrong: a 0.0000898 degree pixel at 38 N is ~ 78.7 m2, not 100
    total_ha = sum(r["hectares"] for r in rows)
    assert total_ha / sum(r["pixels"] for r in rows) * 1e4 == pytest.approx(78.6, rel=0.01)


def test_csv_and_json_writers_round_trip(tmp_path):
    path = write_map(tmp_path / "c.tif")
    summary = area_summary(path, progress=Progress(json_lines=True, stream=open(tmp_path / "ev", "w")))
    write_areas_csv(tmp_path / "a.csv", summary)
    write_areas_json(tmp_path / "a.json", summary)
    with open(tmp_path / "a.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["value", "name", "pixels", "hectares", "percent"]
    assert [int(r["value"]) for r in table] == [r["value"] for r in summary["classes"]]
    forest = next(r for r in table if r["name"] == "Forest")
    assert float(forest["hectares"]) == pytest.approx(
        next(r["hectares"] for r in summary["classes"] if r["value"] == 1), abs=1e-4)
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["classes"] == json.loads(json.dumps(summary["classes"]))
    assert data["total_hectares"] == pytest.approx(summary["total_hectares"])
    assert not list(tmp_path.glob(".*part*"))  # no temporary file left


def test_no_crs_gives_no_hectares_and_float_raster_is_refused(tmp_path):
    arr = class_map()
    grid = Grid(None, Affine(1, 0, 0, 0, -1, 0), arr.shape[1], arr.shape[0])
    rows = class_areas(grid, "dfc2020", arr)
    assert all(r["hectares"] is None for r in rows)
    assert sum(r["percent"] for r in rows) == pytest.approx(100.0)
    with rasterio.open(tmp_path / "f.tif", "w", driver="GTiff", width=4, height=4, count=1,
                       dtype="float32", crs="EPSG:32630", transform=Affine(10, 0, 0, 0, -10, 0)) as ds:
        ds.write(np.zeros((1, 4, 4), "float32"))
    with pytest.raises(InputError, match="integer"):
        class_areas(tmp_path / "f.tif", "dfc2020")
