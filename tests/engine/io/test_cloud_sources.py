"""Where a scene's cloud mask comes from (io/clouds.py): the product's SCL or MSK_CLASSI, a mask
beside the bands, else the brightness flag; read onto the scene's 10 m grid."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window
from test_radiometry import SIZE, _write_band, make_safe
from test_zipped_safe import zip_safe

from sparsevit.errors import InputError
from sparsevit.io.scene import open_s2

REPO = Path(__file__).resolve().parents[3]
MAJOR_TOM = REPO / "data/major_tom/S2B_MSIL2A_20200223T032739_N9999_R018_T48QUE_20230924T183543"


def _granule(safe: Path) -> Path:
    return next((safe / "GRANULE").iterdir())


def _scl_20m(safe: Path) -> Path:
    """The fixture's 20 m SCL; its 10 m copy removed (products have SCL at 20 and 60 m only)."""
    for f in (_granule(safe) / "IMG_DATA" / "R10m").glob("*_SCL_10m.tif"):
        f.unlink()
    return next((_granule(safe) / "IMG_DATA" / "R20m").glob("*_SCL_20m.tif"))


def _cloudy_scl(safe: Path) -> None:
    """The L2A fixture's 20 m SCL with a cloud (9) in its top-left quarter, shadow (3) beside it."""
    scl = np.full((SIZE // 2, SIZE // 2), 4)
    scl[:SIZE // 4, :SIZE // 4] = 9
    scl[:SIZE // 4, SIZE // 4:SIZE // 4 + 2] = 3
    _write_band(_scl_20m(safe), scl, 20)


def _expected(cloud_cols: int = SIZE // 2 + 4) -> np.ndarray:
    want = np.zeros((SIZE, SIZE), bool)
    want[:SIZE // 2, :cloud_cols] = True  # 20 m pixels onto the 10 m grid: each is 2 x 2
    return want


def test_l2a_safe_scene_classification_is_the_cloud_mask(tmp_path):
    safe, _ = make_safe(tmp_path)
    _cloudy_scl(safe)
    with open_s2(safe) as scene:
        assert scene.clouds.kind == "scl" and scene.clouds.path.name.endswith("_SCL_20m.tif")
        assert scene.to_dict()["clouds"]["kind"] == "scl"
        cloud = scene.read_clouds(Window(0, 0, SIZE, SIZE))
        np.testing.assert_array_equal(cloud, _expected())
        # a window reads the same pixels as the whole
        np.testing.assert_array_equal(scene.read_clouds(Window(3, 5, 20, 16)), cloud[5:21, 3:23])


def test_zipped_l2a_safe_reads_the_same_mask(tmp_path):
    safe, _ = make_safe(tmp_path / "unzipped")
    _cloudy_scl(safe)
    archive = zip_safe(safe, tmp_path / "product.zip")
    with open_s2(archive) as zipped, open_s2(safe) as folder:
        assert zipped.clouds.kind == "scl" and str(zipped.clouds.path).startswith("/vsizip/")
        np.testing.assert_array_equal(zipped.read_clouds(Window(0, 0, SIZE, SIZE)),
                                      folder.read_clouds(Window(0, 0, SIZE, SIZE)))


def test_l1c_msk_classi_opaque_clouds_and_cirrus(tmp_path):
    safe, _ = make_safe(tmp_path, level="1C", baseline="04.00")
    qi = _granule(safe) / "QI_DATA"
    classi = np.zeros((3, SIZE // 6, SIZE // 6), "uint8")  # 60 m: opaque, cirrus, snow
    classi[0, 0, 0] = 1
    classi[1, 1, 1] = 1
    classi[2, 2, 2] = 1  # snow is not a cloud
    with rasterio.open(qi / "MSK_CLASSI_B00.tif", "w", driver="GTiff", width=SIZE // 6,
                       height=SIZE // 6, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=rasterio.Affine(60, 0, 500000, 0, -60, 5000000)) as ds:
        ds.write(classi)
    with open_s2(safe) as scene:
        assert scene.clouds.kind == "msk_classi"
        cloud = scene.read_clouds(Window(0, 0, SIZE, SIZE))
    want = np.zeros((SIZE, SIZE), bool)
    want[0:6, 0:6] = want[6:12, 6:12] = True
    np.testing.assert_array_equal(cloud, want)


def test_major_tom_cloud_mask_beside_the_bands_is_used_not_listed_as_a_band():
    with open_s2(MAJOR_TOM) as scene:
        assert scene.clouds.kind == "cloud_mask" and scene.clouds.path.name == "cloud_mask.tif"
        assert not any("cloud_mask" in w for w in scene.warnings), scene.warnings
        assert not scene.read_clouds(Window(0, 0, 64, 64)).any()  # this scene is cloud-free


def test_a_corrupt_cloud_mask_is_a_clear_error_naming_it(tmp_path):
    safe, _ = make_safe(tmp_path)
    f = _scl_20m(safe)
    f.write_bytes(f.read_bytes()[:200])  # an interrupted copy
    with pytest.raises(InputError) as err:
        with open_s2(safe) as scene:
            scene.read_clouds(Window(0, 0, SIZE, SIZE))
    assert "SCL_20m" in str(err.value) and "--no-cloud-mask" in str(err.value)


def test_shadows_are_cast_away_from_the_sun():
    from sparsevit.io.clouds import SunAngles, project_shadows
    cloud = np.zeros((200, 200), bool)
    cloud[90:110, 90:110] = True
    dark = np.ones_like(cloud)
    # sun in the south at 45 deg: a cloud 200-600 m up casts its shadow 20-60 px north of it
    south = project_shadows(cloud, dark, SunAngles(45.0, 180.0, "test"), 10.0, (200, 600))
    rows = np.flatnonzero(south.any(axis=1))
    assert rows.min() < 90 - 20 and rows.max() < 110 and not south[110:].any()
    assert not (south & cloud).any()
    # sun in the east: shadow to the west; nothing where the land is not dark
    east = project_shadows(cloud, dark, SunAngles(45.0, 90.0, "test"), 10.0, (200, 600))
    cols = np.flatnonzero(east.any(axis=0))
    assert cols.max() < 110 and cols.min() < 70
    assert not project_shadows(cloud, np.zeros_like(cloud), SunAngles(45.0, 90.0, "t"), 10.0).any()


def test_the_sun_comes_from_the_granule_metadata_or_earth_engine_metadata(tmp_path):
    safe, _ = make_safe(tmp_path, level="1C", baseline="04.00")
    (_granule(safe) / "MTD_TL.xml").write_text(
        '<?xml version="1.0"?><n1:Level-1C_Tile_ID xmlns:n1="urn:x"><n1:Geometric_Info><Tile_Angles>'
        '<Mean_Sun_Angle><ZENITH_ANGLE unit="deg">31.5</ZENITH_ANGLE><AZIMUTH_ANGLE unit="deg">152.25'
        '</AZIMUTH_ANGLE></Mean_Sun_Angle></Tile_Angles></n1:Geometric_Info></n1:Level-1C_Tile_ID>')
    with open_s2(safe) as scene:
        assert scene.clouds.kind == "brightness"  # no MSK_CLASSI in this product
        assert (scene.sun.zenith, scene.sun.azimuth) == (31.5, 152.25)
        assert scene.sun.source.endswith("MTD_TL.xml") and scene.to_dict()["sun"]["zenith"] == 31.5
    archive = zip_safe(safe, tmp_path / "product.zip")
    with open_s2(archive) as zipped:
        assert (zipped.sun.zenith, zipped.sun.azimuth) == (31.5, 152.25)
    ssl4eo = REPO / "data/ssl4eo_s12/s2c/0000200/20200823T054639_20200823T055618_T43RCP"
    with open_s2(ssl4eo, required=None) as scene:
        assert scene.sun.source.endswith("metadata.json") and round(scene.sun.zenith, 1) == 24.7
    with open_s2(MAJOR_TOM) as scene:  # its cloud mask has shadows (code 3): none projected
        assert scene.sun is None and scene.cloud_shadows(Window(0, 0, 64, 64)) is None


def _gml(polygons: str) -> str:
    """An MSK_CLOUDS_B00.gml as products before baseline 04.00 carry it (UTM 33N)."""
    members = f"<eop:maskMembers>{polygons}</eop:maskMembers>" if polygons else ""
    return ('<?xml version="1.0" encoding="UTF-8"?><eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" '
            'xmlns:gml="http://www.opengis.net/gml/3.2" gml:id="MSK_CLOUDS"><gml:boundedBy><gml:Envelope '
            'srsName="urn:ogc:def:crs:EPSG::32633"><gml:lowerCorner>500000 4999520</gml:lowerCorner>'
            f'<gml:upperCorner>500480 5000000</gml:upperCorner></gml:Envelope></gml:boundedBy>{members}</eop:Mask>')


def _feature(kind: str, x0: float, y0: float, x1: float, y1: float) -> str:
    ring = f"{x0} {y1} {x1} {y1} {x1} {y0} {x0} {y0} {x0} {y1}"
    return (f'<eop:MaskFeature gml:id="{kind}.0"><eop:maskType>{kind}</eop:maskType><eop:extentOf>'
            f'<gml:Polygon srsName="urn:ogc:def:crs:EPSG::32633"><gml:exterior><gml:LinearRing>'
            f'<gml:posList srsDimension="2">{ring}</gml:posList></gml:LinearRing></gml:exterior>'
            '</gml:Polygon></eop:extentOf></eop:MaskFeature>')


def test_l1c_before_baseline_04_cloud_polygons_are_rasterised(tmp_path):
    safe, _ = make_safe(tmp_path / "unzipped", level="1C", baseline="02.09", offset=0, with_offsets=False)
    qi = _granule(safe) / "QI_DATA"
    # opaque cloud over columns 0-9, rows 0-19; cirrus over columns 20-29, rows 10-14 (10 m pixels)
    (qi / "MSK_CLOUDS_B00.gml").write_text(_gml(
        _feature("OPAQUE", 500000, 4999800, 500100, 5000000) + _feature("CIRRUS", 500200, 4999850, 500300, 4999900)))
    want = np.zeros((SIZE, SIZE), bool)
    want[0:20, 0:10] = want[10:15, 20:30] = True
    with open_s2(safe) as scene:
        assert scene.clouds.kind == "msk_clouds_gml"
        np.testing.assert_array_equal(scene.read_clouds(Window(0, 0, SIZE, SIZE)), want)
        np.testing.assert_array_equal(scene.read_clouds(Window(5, 8, 20, 10)), want[8:18, 5:25])
    with open_s2(zip_safe(safe, tmp_path / "product.zip")) as zipped:
        np.testing.assert_array_equal(zipped.read_clouds(Window(0, 0, SIZE, SIZE)), want)
    (qi / "MSK_CLOUDS_B00.gml").write_text(_gml(""))  # a cloud-free granule's empty mask
    with open_s2(safe) as scene:
        assert not scene.read_clouds(Window(0, 0, SIZE, SIZE)).any()
    (qi / "MSK_CLOUDS_B00.gml").write_text("<eop:Mask")  # cut off
    with pytest.raises(InputError) as err:
        with open_s2(safe) as scene:
            scene.read_clouds(Window(0, 0, SIZE, SIZE))
    assert "MSK_CLOUDS_B00.gml" in str(err.value) and "--no-cloud-mask" in str(err.value)
