import numpy as np
import pytest
from affine import Affine
from fixtures.rasters import s2_folder, write_raster
from rasterio.crs import CRS
from rasterio.windows import Window

from sparsevit.bands import EUROSAT_BAND_ORDER, S2_BANDS_NO_CIRRUS
from sparsevit.errors import InputError
from sparsevit.io.scene import detect_s1_units, open_s1, open_s2

T10 = Affine(10, 0, 500000, 0, -10, 5000000)


def test_folder_bands_named_by_filename_and_resampled(tmp_path):
    folder = s2_folder(tmp_path, pattern="T33UUP_20200101_{}_x.tif")
    with open_s2(folder, required=("B02", "B05", "B01")) as scene:
        assert set(scene.bands) == {"B01", "B02", "B03", "B04", "B05", "B08", "B11"}
        assert all(s.how == "filename" for s in scene.bands.values())
        assert scene.grid.res == (10, 10) and (scene.grid.width, scene.grid.height) == (60, 60)
        assert set(scene.resampled()) == {"B01", "B05", "B11"}
        data, valid = scene.read(Window(10, 20, 30, 16), bands=["B05", "B02"])
        assert data.shape == (2, 16, 30) and data.dtype == np.float32 and valid.all()
        # bilinear onto the 10 m grid: values stay inside the source range, and vary smoothly
        assert 500 <= data[0].min() and data[0].max() <= 3000
        whole, _ = scene.read(bands=["B02"])
        assert np.array_equal(whole[0, 20:36, 10:40], data[1])


def test_missing_required_bands_are_listed(tmp_path):
    folder = s2_folder(tmp_path, names=("B02", "B03", "B04"))
    with pytest.raises(InputError) as err:
        open_s2(folder)
    assert "B05" in str(err.value) and "B12" in str(err.value) and "B10" not in err.value.problem.split("(")[0]


def test_descriptions_beat_position_and_are_recorded(tmp_path):
    order = list(reversed(S2_BANDS_NO_CIRRUS))
    data = np.stack([np.full((8, 8), i + 1, "uint16") for i in range(12)])
    f = write_raster(tmp_path / "x.tif", data, T10, descriptions=[f"band {n}" for n in order])
    with open_s2(f) as scene:
        assert {s.how for s in scene.bands.values()} == {"description"}
        assert scene.bands["B12"].index == 1 and scene.bands["B01"].index == 12
        out, _ = scene.read(bands=["B01", "B12"])
        assert out[0, 0, 0] == 12 and out[1, 0, 0] == 1
        assert not scene.warnings


def test_band_tags_name_bands(tmp_path):
    data = np.ones((12, 4, 4), "uint16")
    tags = {i + 1: {"BANDNAME": n} for i, n in enumerate(S2_BANDS_NO_CIRRUS)}
    with open_s2(write_raster(tmp_path / "t.tif", data, T10, tags=tags)) as scene:
        assert {s.how for s in scene.bands.values()} == {"tag"}


def test_positional_fallback_warns(tmp_path):
    data = np.stack([np.full((8, 8), 100 * (i + 1), "uint16") for i in range(12)])
    with open_s2(write_raster(tmp_path / "p.tif", data, T10)) as scene:
        assert list(scene.bands) == list(S2_BANDS_NO_CIRRUS)
        assert {s.how for s in scene.bands.values()} == {"position"}
        assert any("identified by position" in w for w in scene.warnings)


def test_unnamed_band_count_not_trusted(tmp_path):
    f = write_raster(tmp_path / "p.tif", np.ones((5, 8, 8), "uint16"), T10)
    with pytest.raises(InputError, match="no Sentinel-2 bands"):
        open_s2(f)


def test_eurosat_patch_by_cirrus_position_and_override(data_dir):
    f = next((data_dir / "eurosat_ms" / "Forest").glob("*.tif"))
    with open_s2(f) as scene:
        assert scene.bands["B8A"].index == 13 and scene.bands["B10"].index == 10
        assert any("EuroSAT" in w for w in scene.warnings)
    with open_s2(f, band_order=EUROSAT_BAND_ORDER) as scene:
        assert {s.how for s in scene.bands.values()} == {"override"}
        assert scene.bands["B8A"].index == 13
    with pytest.raises(InputError, match="names 3 bands"):
        open_s2(f, band_order=["B02", "B03", "B04"])


def test_esa_13_band_order_by_position(data_dir, tmp_path):
    import rasterio
    with rasterio.open(data_dir.parent / "resources/sample/Spain_7370579_S2Hand.tif") as ds:
        arr, tr, crs = ds.read(window=Window(0, 0, 64, 64)), ds.window_transform(Window(0, 0, 64, 64)), ds.crs
    with open_s2(write_raster(tmp_path / "nodesc.tif", arr, tr, crs=crs)) as scene:
        assert scene.bands["B10"].index == 11 and scene.bands["B8A"].index == 9


def test_nodata_nan_and_zero_pixels_are_invalid(tmp_path):
    data = np.full((12, 6, 6), 1000, "float32")
    data[:, 0, 0] = -9999
    data[3, 1, 1] = np.nan
    data[5, 2, 2] = np.inf
    f = write_raster(tmp_path / "n.tif", data, T10, nodata=-9999,
                     descriptions=list(S2_BANDS_NO_CIRRUS))
    with open_s2(f) as scene:
        out, valid = scene.read()
    assert not valid[0, 0] and not valid[1, 1] and not valid[2, 2] and valid.sum() == 33
    assert np.isfinite(out).all() and out[:, 1, 1].max() == 0
    zeros = np.full((12, 4, 4), 700, "uint16")
    zeros[:, 3, 3] = 0  # no declared nodata: an all-zero pixel is S2 "no data"
    with open_s2(write_raster(tmp_path / "z.tif", zeros, T10)) as scene:
        _, valid = scene.read()
    assert not valid[3, 3] and valid.sum() == 15


def test_s1_linear_converted_to_db_and_reprojected(tmp_path):
    lin = np.full((2, 40, 40), 0.01, "float32")
    lin[1] = 0.001
    # 20 m UTM pixels, offset: must come out on the 10 m S2 grid, in dB
    f = write_raster(tmp_path / "s1.tif", lin, Affine(20, 0, 499900, 0, -20, 5000100),
                     descriptions=["VV", "VH"])
    folder = s2_folder(tmp_path, names=("B02",))
    with open_s2(folder, required=None) as s2, open_s1(f, target=s2) as s1:
        assert s1.units == "linear" and s1.reprojected
        data, valid = s1.read()
        assert data.shape == (2, 60, 60) and valid.all()
        assert np.allclose(data[0], -20, atol=1e-3) and np.allclose(data[1], -30, atol=1e-3)


def test_s1_per_band_files_and_db_detection(tmp_path, data_dir):
    folder = tmp_path / "s1"
    folder.mkdir()
    write_raster(folder / "x_VV.tif", np.full((10, 10), -12, "float32"), T10)
    write_raster(folder / "x_VH.tif", np.full((10, 10), -19, "float32"), T10)
    with open_s1(folder) as s1:
        assert s1.units == "dB" and not s1.reprojected
        assert {b: s.how for b, s in s1.bands.items()} == {"VV": "filename", "VH": "filename"}
        data, _ = s1.read()
        assert data[0, 0, 0] == -12 and data[1, 0, 0] == -19
    assert detect_s1_units(np.array([-15.0, -20, 1])) == "dB"
    assert detect_s1_units(np.array([0.02, 0.1, 1.3])) == "linear"
    assert detect_s1_units(np.array([300.0, 900, 40])) is None


def test_s1_s2_not_overlapping_names_both(tmp_path):
    s1 = write_raster(tmp_path / "far_s1.tif", np.full((2, 10, 10), -10, "float32"),
                      Affine(10, 0, 900000, 0, -10, 5000000), descriptions=["VV", "VH"])
    folder = s2_folder(tmp_path, names=("B02",))
    with open_s2(folder, required=None) as s2:
        with pytest.raises(InputError, match="do not overlap") as err:
            open_s1(s1, target=s2)
    assert "far_s1.tif" in str(err.value) and "B02.tif" in str(err.value)


def test_geographic_s1_on_utm_s2(tmp_path):
    from rasterio.warp import transform_bounds
    folder = s2_folder(tmp_path, names=("B02",))
    w, s, e, n = transform_bounds(CRS.from_epsg(32633), CRS.from_epsg(4326), 499000, 4999000, 501000, 5001000)
    tr = Affine((e - w) / 40, 0, w, 0, -(n - s) / 40, n)
    f = write_raster(tmp_path / "s1geo.tif", np.full((2, 40, 40), -8, "float32"), tr,
                     crs=CRS.from_epsg(4326))
    with open_s2(folder, required=None) as s2, open_s1(f, target=s2) as s1:
        assert s1.reprojected and any("position" in w_ for w_ in s1.warnings)
        data, valid = s1.read(Window(0, 0, 20, 20))
        assert valid.all() and np.allclose(data, -8)


def test_true_colour_names_the_file_bands_and_a_stretch(tmp_path):
    from sparsevit.io.scene import true_colour
    order = list(reversed(S2_BANDS_NO_CIRRUS))  # B04 is not band 4: the plugin must not assume it
    data = np.stack([np.full((8, 8), 100 * (i + 1), "uint16") for i in range(12)])
    data[:, 0, 0] = 0  # fill pixels stay out of the stretch
    f = write_raster(tmp_path / "x.tif", data, T10, descriptions=[f"band {n}" for n in order])
    with open_s2(f) as scene:
        tc = true_colour(scene)
    red = tc["bands"]["B04"]
    assert red["path"] == str(f) and red["index"] == order.index("B04") + 1
    assert red["min"] == pytest.approx(100 * red["index"]) and red["max"] > red["min"]
    folder = s2_folder(tmp_path, names=("B02", "B03", "B08"))
    with open_s2(folder, required=("B02",)) as scene:
        assert true_colour(scene) is None


def test_a_grid_not_at_10_m_is_warned_about(tmp_path):
    data = np.stack([np.full((8, 8), 1000 + i, "uint16") for i in range(12)])
    names = [f"band {n}" for n in S2_BANDS_NO_CIRRUS]
    at20 = write_raster(tmp_path / "x20.tif", data, Affine(20, 0, 500000, 0, -20, 5000000), descriptions=names)
    at10 = write_raster(tmp_path / "x10.tif", data, T10, descriptions=names)
    with open_s2(at20) as scene:
        (note,) = [w for w in scene.warnings if "not 10 m" in w]
        assert "20 x 20 m" in note and "0.5 times their size" in note
    with open_s2(at10) as scene:
        assert not any("not 10 m" in w for w in scene.warnings)


def test_stac_common_names_name_bands_in_descriptions_and_file_names(tmp_path):
    from sparsevit.bands import COMMON_NAMES
    stac = ["coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08",
            "nir09", "swir16", "swir22"]
    data = np.stack([np.full((8, 8), 100 * (i + 1), "uint16") for i in range(12)])
    with open_s2(write_raster(tmp_path / "s.tif", data, T10, descriptions=stac)) as scene:
        assert [scene.bands[COMMON_NAMES[n]].index for n in stac] == list(range(1, 13))
        assert list(sorted(scene.bands)) == sorted(S2_BANDS_NO_CIRRUS)
    # Earth Search-style one file per asset key
    folder = tmp_path / "assets"
    folder.mkdir()
    for n, i in zip(stac, range(12)):
        write_raster(folder / f"S2B_30TXK_20230601_0_L2A_{n}.tif", data[i:i + 1], T10)
    with open_s2(folder) as scene:
        assert {s.how for s in scene.bands.values()} == {"filename"}
        assert scene.bands["B11"].path.name.endswith("_swir16.tif")


def test_band_n_labels_are_positions_not_names(tmp_path):
    """'Band 4' is what QGIS shows for the 4th band of any raster: B04 is the 3rd band here."""
    data = np.stack([np.full((8, 8), 100 * (i + 1), "uint16") for i in range(4)])
    f = write_raster(tmp_path / "rgbn.tif", data, T10, descriptions=[f"Band {i}" for i in range(1, 5)])
    with pytest.raises(InputError) as err:
        open_s2(f, required=None)
    assert "'Band 4' give a band's position" in err.value.problem and "--band-order" in err.value.fix
    with open_s2(f, required=None, band_order=("B04", "B03", "B02", "B08")) as scene:
        assert scene.bands["B04"].index == 1
    # twelve 'Band N' labels: the positional rule applies, and says so
    data = np.stack([np.full((8, 8), 100 * (i + 1), "uint16") for i in range(12)])
    f = write_raster(tmp_path / "p.tif", data, T10, descriptions=[f"Band {i}" for i in range(1, 13)])
    with open_s2(f) as scene:
        assert {s.how for s in scene.bands.values()} == {"position"}
        assert any("count bands" in w for w in scene.warnings)
        assert any("by position" in w for w in scene.warnings)


def test_common_names_only_as_the_whole_label():
    from sparsevit.bands import normalize_s2_filename, normalize_s2_name
    assert normalize_s2_name("Red") == "B04" and normalize_s2_name(" swir16 ") == "B11"
    assert normalize_s2_name("green?") is None and normalize_s2_name("red_edge_ratio") is None
    assert normalize_s2_filename("S2B_30TXK_20230601_0_L2A_nir08") == "B8A"
    assert normalize_s2_filename("redness_index") is None
