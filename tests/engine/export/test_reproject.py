import numpy as np
import pytest
import rasterio
from fixtures.class_maps import class_map, write_map

from sparsevit.errors import InputError
from sparsevit.export import class_areas, export_classified
from sparsevit.io.styles import read_class_table
from sparsevit.schemes import load_scheme


def test_export_to_geographic_keeps_colours_names_and_classes(tmp_path):
    arr = class_map()
    src = write_map(tmp_path / "c.tif", arr)
    res = export_classified(src, tmp_path / "ll.tif", crs="EPSG:4326")
    assert res["reprojected"] and res["scheme"] == "dfc2020"
    scheme = load_scheme("dfc2020")
    with rasterio.open(tmp_path / "ll.tif") as ds:
        assert ds.crs.to_epsg() == 4326 and ds.nodata == 255 and ds.dtypes[0] == "uint8"
        cmap = ds.colormap(1)
        data = ds.read(1)
    for c in scheme.classes:
        assert cmap[c.value][:3] == scheme.rgb(c.value)
    assert read_class_table(tmp_path / "ll.tif") == read_class_table(src)
    assert (tmp_path / "ll.qml").exists()
    assert set(np.unique(data)) == {1, 2, 7, 10, 255}  # nearest: no invented classes
    # class areas survive the round trip within resampling noise
    before = {r["value"]: r["hectares"] for r in class_areas(src)}
    after = {r["value"]: r["hectares"] for r in class_areas(tmp_path / "ll.tif")}
    for v in (1, 2, 7, 10):
        assert after[v] == pytest.approx(before[v], rel=0.05)


def test_resolution_in_same_crs_and_scheme_override(tmp_path):
    src = write_map(tmp_path / "c.tif")
    res = export_classified(src, tmp_path / "r.tif", resolution=20)
    assert (res["grid"]["width"], res["grid"]["height"]) == (40, 30)
    with rasterio.open(tmp_path / "r.tif") as ds:
        assert ds.res == (20.0, 20.0) and ds.crs.to_epsg() == 32630
    same = export_classified(src, tmp_path / "same.tif")
    assert not same["reprojected"]
    with rasterio.open(src) as a, rasterio.open(tmp_path / "same.tif") as b:
        assert np.array_equal(a.read(1), b.read(1))


def test_raster_without_class_table_needs_a_scheme(tmp_path):
    arr = class_map()
    with rasterio.open(tmp_path / "plain.tif", "w", driver="GTiff", width=arr.shape[1],
                       height=arr.shape[0], count=1, dtype="uint8", crs="EPSG:32630",
                       transform=rasterio.transform.from_origin(440000, 4220000, 10, 10),
                       nodata=255) as ds:
        ds.write(arr, 1)
    with pytest.raises(InputError, match="no class table"):
        export_classified(tmp_path / "plain.tif", tmp_path / "o.tif")
    assert not (tmp_path / "o.tif").exists()
    export_classified(tmp_path / "plain.tif", tmp_path / "o.tif", scheme="dfc2020")
    assert read_class_table(tmp_path / "o.tif")[10][0] == "Water"
    with pytest.raises(InputError, match=r"\.tif"):
        export_classified(tmp_path / "plain.tif", tmp_path / "o.png", scheme="dfc2020")
