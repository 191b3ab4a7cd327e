"""A target CRS far from the data's zone is warned about when exporting (export/crs_check.py)."""
import pytest
import rasterio
from fixtures.class_maps import write_map
from rasterio.crs import CRS

from sparsevit.export.crs_check import target_crs_distortion
from sparsevit.export.reproject import export_classified
from sparsevit.export.vectorize import vectorize
from sparsevit.io.scene import Grid
from sparsevit.progress import Progress

SAMPLE = "resources/sample/Spain_7370579_S2Hand.tif"  # EPSG:4326 at 0.76 W, 38.1 N


@pytest.fixture(scope="module")
def spain():
    with rasterio.open(SAMPLE) as ds:
        return Grid.of(ds)


@pytest.mark.parametrize("crs", ["EPSG:32630", "EPSG:32631", "EPSG:25830", "EPSG:3035", "EPSG:4326"])
def test_crs_meant_for_the_area_pass(spain, crs):
    assert target_crs_distortion(spain, CRS.from_user_input(crs)) is None


@pytest.mark.parametrize("crs, stretch", [("EPSG:32650", 39), ("EPSG:3857", 27), ("EPSG:32633", 2)])
def test_crs_far_from_the_area_are_warned_with_the_figure_and_the_zone(spain, crs, stretch):
    d = target_crs_distortion(spain, CRS.from_user_input(crs))
    assert f"by up to {stretch} %" in d["warning"] and d["suggested_crs"] == "EPSG:32630"
    assert "measured on the ground" in d["warning"]


def test_cog_and_gpkg_exports_carry_the_warning(tmp_path, capsys):
    src = write_map(tmp_path / "c.tif")  # UTM 30N near 3.7 W
    progress = Progress(json_lines=False)
    cog = export_classified(src, tmp_path / "far.tif", crs="EPSG:32636", progress=progress)
    assert cog["crs_distortion"]["suggested_crs"] == "EPSG:32630" and len(cog["warnings"]) == 1
    assert "EPSG:32636 is far from where it is meant to be used" in capsys.readouterr().err
    near = export_classified(src, tmp_path / "near.tif", crs="EPSG:4326")
    assert near["crs_distortion"] is None and near["warnings"] == []
    gpkg = vectorize(src, tmp_path / "far.gpkg", crs="EPSG:3857", progress=progress)
    assert gpkg["warnings"] and "EPSG:3857" in gpkg["warnings"][0]


def test_a_crs_that_cannot_project_the_area_is_a_clear_error(spain, tmp_path):
    from sparsevit.errors import InputError

    far_side = CRS.from_user_input("+proj=ortho +lat_0=-38 +lon_0=179 +datum=WGS84")
    with pytest.raises(InputError, match="cannot hold this raster") as err:
        target_crs_distortion(spain, far_side)
    assert "UTM zone" in err.value.fix
