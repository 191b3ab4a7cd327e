"""Radiometry from the product: every form of the same values reads as the model's DN.

Each fixture is written here from one canonical array ``C`` (reflectance x 10000, no offset) and
stored the way a distribution stores it (ESA baseline 04.00 +1000, STAC scale/offset, float
reflectance, tags, SAFE folders); ``S2Scene.read`` must give back ``C`` within float tolerance,
or the input is refused / warned about.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from fixtures.rasters import UTM, write_raster

from sparsevit.bands import S2_BANDS, S2_BANDS_NO_CIRRUS, S2_RESOLUTION_M
from sparsevit.commands.info import describe, format_text
from sparsevit.errors import InputError
from sparsevit.io import radiometry as R
from sparsevit.io.scene import open_s2

T10 = Affine(10, 0, 500000, 0, -10, 5000000)
SIZE = 48
BANDS = list(S2_BANDS_NO_CIRRUS)


def canonical(bands=BANDS, size=SIZE, seed=0) -> np.ndarray:
    """Model DN: reflectance x 10000 in 500..3000 (a plausible land scene)."""
    return np.random.default_rng(seed).integers(500, 3000, (len(bands), size, size)).astype("float32")


def write_multi(path, data, dtype, scales=None, offsets=None, ds_tags=None, band_tags=None,
                nodata=None, names=BANDS) -> Path:
    profile = dict(driver="GTiff", width=data.shape[2], height=data.shape[1], count=data.shape[0],
                   dtype=dtype, crs=UTM, transform=T10, nodata=nodata)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data.astype(dtype))
        for i, n in enumerate(names, 1):
            ds.set_band_description(i, n)
        if scales is not None:
            ds.scales = scales
        if offsets is not None:
            ds.offsets = offsets
        if ds_tags:
            ds.update_tags(**ds_tags)
        for i, t in (band_tags or {}).items():
            ds.update_tags(i, **t)
    return Path(path)


def read_all(src, **kw):
    with open_s2(src, **kw) as scene:
        data, valid = scene.read()
        return data, valid, scene


def assert_canonical(data, valid, c):
    assert valid.all()
    np.testing.assert_allclose(data, c, atol=0.05)


# --------------------------------------------------------------------------------------------
# plain DN, GDAL scale/offset, tags
def test_plain_uint16_dn_is_read_as_is(tmp_path):
    c = canonical()
    data, valid, scene = read_all(write_multi(tmp_path / "dn.tif", c, "uint16"))
    assert_canonical(data, valid, c)
    r = scene.radiometry
    assert not r.applied and r.input_form == "dn" and r.sources == [R.SRC_DTYPE]
    assert scene.to_dict()["radiometry"]["applied"] is False
    assert not scene.warnings


def test_stac_scale_offset_reflectance_units(tmp_path):
    """STAC/COG L2A: reflectance = DN * 0.0001 - 0.1, the DN carrying +1000."""
    c = canonical()
    f = write_multi(tmp_path / "cog.tif", c + 1000, "uint16", scales=[1e-4] * 12, offsets=[-0.1] * 12)
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    d = scene.to_dict()["radiometry"]
    assert d["source"] == R.SRC_GDAL and d["input"] == "dn-offset-1000" and d["applied"]
    assert d["bands"]["B04"]["scale"] == pytest.approx(1.0) and d["bands"]["B04"]["offset"] == pytest.approx(-1000)


def test_gdal_offset_in_dn_units(tmp_path):
    c = canonical()
    f = write_multi(tmp_path / "off.tif", c + 1000, "uint16", scales=[1.0] * 12, offsets=[-1000.0] * 12)
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    assert scene.radiometry.sources == [R.SRC_GDAL]


def test_scale_only_float_reflectance_stored_as_int(tmp_path):
    """uint16 reflectance x 10000 published with scale 0.0001 and no offset: read as is."""
    c = canonical()
    f = write_multi(tmp_path / "s.tif", c, "uint16", scales=[1e-4] * 12, offsets=[0.0] * 12)
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    assert not scene.radiometry.applied


def test_dataset_tags_baseline_and_offset(tmp_path):
    c = canonical()
    f = write_multi(tmp_path / "tags.tif", c + 1000, "uint16",
                    ds_tags={"PROCESSING_BASELINE": "04.00", "PROCESSING_LEVEL": "Level-2A",
                             "BOA_ADD_OFFSET": "-1000", "BOA_QUANTIFICATION_VALUE": "10000"})
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    r = scene.radiometry
    assert (r.level, r.baseline, r.sources) == ("L2A", "04.00", [R.SRC_TAGS])
    assert not scene.warnings


def test_band_tags_per_band_offset(tmp_path):
    c = canonical()
    offs = {i: (-1000 if n != "B01" else -900) for i, n in enumerate(BANDS, 1)}
    raw = c + np.array([-o for o in offs.values()], "float32")[:, None, None]
    f = write_multi(tmp_path / "btags.tif", raw, "uint16",
                    band_tags={i: {"RADIO_ADD_OFFSET": str(o)} for i, o in offs.items()},
                    ds_tags={"PROCESSING_BASELINE": "05.09"})
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    assert scene.radiometry.bands["B01"].offset == -900 and scene.radiometry.input_form == "mixed"


def test_baseline_04_without_offset_warns_and_reads_as_is(tmp_path):
    c = canonical() + 1000
    f = write_multi(tmp_path / "b4.tif", c, "uint16", ds_tags={"PROCESSING_BASELINE": "04.00"})
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)  # never a silent guess: unchanged, but said
    w = [x for x in scene.warnings if "baseline 04.00" in x]
    assert w and "map may be wrong" in w[0] and "--radiometry dn-offset-1000" in w[0]


def test_old_baseline_tag_means_no_offset(tmp_path):
    c = canonical()
    f = write_multi(tmp_path / "b2.tif", c, "uint16", ds_tags={"PROCESSING_BASELINE": "02.09"})
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    assert scene.radiometry.sources == [R.SRC_TAGS] and not scene.warnings


# --------------------------------------------------------------------------------------------
# value range, 8-bit, overrides
def test_float_reflectance_is_multiplied(tmp_path):
    c = canonical()
    f = write_multi(tmp_path / "refl.tif", c / 10000.0, "float32")
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    r = scene.radiometry
    assert r.input_form == "reflectance" and r.sources == [R.SRC_RANGE]
    assert any("float reflectance" in w for w in scene.warnings)


def test_float_dn_is_read_as_is(tmp_path):
    c = canonical()
    data, valid, scene = read_all(write_multi(tmp_path / "fdn.tif", c, "float32"))
    assert_canonical(data, valid, c)
    assert not scene.radiometry.applied


def test_float_reflectance_ignores_dn_offset_tags(tmp_path):
    """Tags kept from the DN product do not shift reflectance floats by -1000."""
    c = canonical()
    f = write_multi(tmp_path / "refl_tags.tif", c / 10000.0, "float32",
                    ds_tags={"PROCESSING_BASELINE": "04.00", "BOA_ADD_OFFSET": "-1000"})
    data, valid, scene = read_all(f)
    assert_canonical(data, valid, c)
    assert any("offset not applied" in w for w in scene.warnings)


def test_uint8_is_refused_naming_the_file_and_fix(tmp_path):
    f = write_multi(tmp_path / "rendered.tif", canonical() / 20, "uint8")
    with pytest.raises(InputError) as e:
        open_s2(f)
    assert "rendered.tif" in str(e.value) and "8-bit" in e.value.problem
    assert "--radiometry" in e.value.fix


def test_uint8_with_stated_scaling(tmp_path):
    c8 = np.clip(canonical() / 20, 0, 255).astype("uint8")
    f = write_multi(tmp_path / "rendered.tif", c8, "uint8")
    data, valid, scene = read_all(f, radiometry="0.002,0")  # reflectance = value * 0.002
    assert_canonical(data, valid, c8.astype("float32") * 20)
    assert scene.radiometry.sources[0].startswith(R.SRC_OVERRIDE)


@pytest.mark.parametrize("form,raw", [("dn", lambda c: c), ("reflectance", lambda c: c / 10000),
                                      ("dn-offset-1000", lambda c: c + 1000)])
def test_override_presets(tmp_path, form, raw):
    c = canonical()
    f = write_multi(tmp_path / "x.tif", raw(c), "float32")
    data, valid, scene = read_all(f, radiometry=form)
    assert_canonical(data, valid, c)
    assert scene.radiometry.input_form == form


def test_override_beats_metadata_and_says_so(tmp_path):
    c = canonical()
    f = write_multi(tmp_path / "o.tif", c, "uint16", scales=[1e-4] * 12, offsets=[-0.1] * 12)
    data, valid, scene = read_all(f, radiometry="dn")
    assert_canonical(data, valid, c)
    assert any("given by the user: dn" in w and f"overrides the {R.SRC_GDAL}" in w
               for w in scene.warnings)


def test_wrong_override_is_flagged(tmp_path):
    """--radiometry dn-offset-1000 on values without an offset: most go negative -> warning."""
    c = np.random.default_rng(1).integers(100, 1500, (12, SIZE, SIZE))
    f = write_multi(tmp_path / "dn.tif", c, "uint16")
    with open_s2(f, radiometry="dn-offset-1000") as scene:
        assert any("negative" in w for w in scene.warnings)


@pytest.mark.parametrize("text", ["dB", "1,2,3", "0,0", "x,1"])
def test_bad_override_is_a_clear_error(tmp_path, text):
    f = write_multi(tmp_path / "x.tif", canonical(), "uint16")
    with pytest.raises(InputError) as e:
        open_s2(f, radiometry=text)
    assert "--radiometry" in e.value.problem and "dn-offset-1000" in e.value.fix


# --------------------------------------------------------------------------------------------
# nodata is judged on the stored values
def test_nodata_is_judged_before_conversion(tmp_path):
    c = canonical()
    raw = c + 1000
    raw[:, 0, 0] = 0  # declared nodata
    raw[:, 0, 1] = 1000  # a real zero reflectance: valid, converts to 0
    f = write_multi(tmp_path / "nd.tif", raw, "uint16", nodata=0,
                    ds_tags={"PROCESSING_BASELINE": "04.00", "BOA_ADD_OFFSET": "-1000"})
    data, valid, _ = read_all(f)
    assert not valid[0, 0] and valid[0, 1] and valid.sum() == SIZE * SIZE - 1
    assert (data[:, 0, 1] == 0).all() and (data[:, 0, 0] == 0).all()


def test_undeclared_zero_nodata_uses_raw_values(tmp_path):
    c = canonical()
    raw = c + 1000
    raw[:, 5, 5] = 0  # all-zero pixel, no declared nodata: ESA's no-data
    f = write_multi(tmp_path / "z.tif", raw, "uint16", scales=[1e-4] * 12, offsets=[-0.1] * 12)
    data, valid, _ = read_all(f)
    assert not valid[5, 5] and valid.sum() == SIZE * SIZE - 1
    np.testing.assert_allclose(data[:, valid], c[:, valid], atol=0.05)


def test_offset_already_removed_is_flagged(tmp_path):
    """Metadata says -1000 but the values were already harmonised: most go negative -> warning."""
    c = np.random.default_rng(1).integers(100, 1500, (12, SIZE, SIZE))  # red/NIR of a green scene
    f = write_multi(tmp_path / "twice.tif", c, "uint16",
                    ds_tags={"PROCESSING_BASELINE": "04.00", "BOA_ADD_OFFSET": "-1000"})
    with open_s2(f) as scene:
        assert any("negative" in w and "--radiometry dn" in w for w in scene.warnings)


# --------------------------------------------------------------------------------------------
# SAFE products
PRODUCT_L2A = "S2B_MSIL2A_20230612T101559_N0509_R065_T33UUP_20230612T131005.SAFE"
PRODUCT_L1C = "S2A_MSIL1C_20220601T101031_N0400_R022_T33UUP_20220601T121517.SAFE"
_L2A_RES = {10: ("B02", "B03", "B04", "B08"),
            20: ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"),
            60: ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12")}


def mtd_xml(level="2A", baseline="05.09", offset=-1000, quant=10000, with_offsets=True) -> str:
    ids = "".join(f'<Spectral_Information bandId="{i}" physicalBand="{b.replace("B0", "B")}"/>'
                  for i, b in enumerate(S2_BANDS))
    if level == "2A":
        q = (f"<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit=\"none\">{quant}"
             "</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit=\"none\">1000.0"
             "</AOT_QUANTIFICATION_VALUE></QUANTIFICATION_VALUES_LIST>")
        offs = ("<BOA_ADD_OFFSET_VALUES_LIST>" + "".join(
            f'<BOA_ADD_OFFSET band_id="{i}">{offset}</BOA_ADD_OFFSET>' for i in range(13))
            + "</BOA_ADD_OFFSET_VALUES_LIST>")
        root, ns = "Level-2A_User_Product", "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd"
    else:
        q = f'<QUANTIFICATION_VALUE unit="none">{quant}</QUANTIFICATION_VALUE>'
        offs = ("<Radiometric_Offset_List>" + "".join(
            f'<RADIO_ADD_OFFSET band_id="{i}">{offset}</RADIO_ADD_OFFSET>' for i in range(13))
            + "</Radiometric_Offset_List>")
        root, ns = "Level-1C_User_Product", "https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-1C.xsd"
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<n1:{root} xmlns:n1="{ns}">'
            f"<n1:General_Info><Product_Info><PROCESSING_LEVEL>Level-{level}</PROCESSING_LEVEL>"
            f"<PRODUCT_TYPE>S2MSI{level}</PRODUCT_TYPE><PROCESSING_BASELINE>{baseline}"
            "</PROCESSING_BASELINE></Product_Info><Product_Image_Characteristics>"
            "<Special_Values><SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>"
            f"<SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX></Special_Values>{q}"
            f"{offs if with_offsets else ''}<Spectral_Information_List>{ids}</Spectral_Information_List>"
            f"</Product_Image_Characteristics></n1:General_Info></n1:{root}>")


def _band_raw(c: dict, band: str, res: int, add: float) -> np.ndarray:
    """The canonical 10 m field of ``band`` averaged to ``res`` (+ the product's DN offset)."""
    f = res // 10
    a = c[band].reshape(SIZE // f, f, SIZE // f, f).mean(axis=(1, 3))
    return np.round(a + add)


def make_safe(tmp_path, level="2A", baseline="05.09", offset=-1000, ext=".tif", with_offsets=True,
              name=None) -> tuple[Path, dict]:
    """A SAFE-like product: MTD_MSIL{level}.xml, GRANULE/*/IMG_DATA band files, a QI mask decoy."""
    rng = np.random.default_rng(3)
    # constant 60x60 m blocks, so every resolution holds the same field
    c = {b: np.kron(rng.integers(500, 3000, (SIZE // 6, SIZE // 6)), np.ones((6, 6))).astype("float32")
         for b in S2_BANDS}
    safe = tmp_path / (name or (PRODUCT_L2A if level == "2A" else PRODUCT_L1C))
    granule = safe / "GRANULE" / f"L{level}_T33UUP_A041234_20230612T101559"
    safe.mkdir(parents=True)
    (safe / f"MTD_MSIL{level}.xml").write_text(mtd_xml(level, baseline, offset, with_offsets=with_offsets))
    (safe / "manifest.safe").write_text("<manifest/>")
    add = -offset if with_offsets else 0
    stem = "T33UUP_20230612T101559"
    if level == "2A":
        for res, names in _L2A_RES.items():
            d = granule / "IMG_DATA" / f"R{res}m"
            d.mkdir(parents=True)
            for b in names:
                _write_band(d / f"{stem}_{b}_{res}m{ext}", _band_raw(c, b, res, add), res)
            _write_band(d / f"{stem}_SCL_{res}m{ext}", np.full((SIZE * 10 // res,) * 2, 4), res)
    else:
        d = granule / "IMG_DATA"
        d.mkdir(parents=True)
        for b in S2_BANDS:
            res = S2_RESOLUTION_M[b]
            _write_band(d / f"{stem}_{b}{ext}", _band_raw(c, b, res, add), res)
        _write_band(d / f"{stem}_TCI{ext}", np.full((SIZE, SIZE), 7), 10)
    qi = granule / "QI_DATA"
    qi.mkdir(parents=True)
    _write_band(qi / "MSK_DETFOO_B01.tif", np.full((SIZE // 6, SIZE // 6), 3), 60)  # not a band
    return safe, c


def _write_band(path: Path, data: np.ndarray, res: int) -> None:
    kw = dict(QUALITY=100, REVERSIBLE="YES") if path.suffix == ".jp2" else {}
    with rasterio.open(path, "w", driver="JP2OpenJPEG" if path.suffix == ".jp2" else "GTiff",
                       width=data.shape[1], height=data.shape[0], count=1, dtype="uint16", crs=UTM,
                       transform=Affine(res, 0, 500000, 0, -res, 5000000), **kw) as ds:
        ds.write(data.astype("uint16"), 1)


def _check_safe_scene(scene, c, bands=BANDS, offset=-1000):
    """10 m bands equal the canonical field; coarser ones equal the same product stored without
    offset, read through the same warp (bilinear resampling is linear: only the offset differs)."""
    data, valid = scene.read(bands=bands)
    assert valid.all()
    ref = _reference_reads(scene, bands, offset)
    for i, b in enumerate(bands):
        want = c[b] if S2_RESOLUTION_M[b] == 10 else ref[i]
        np.testing.assert_allclose(data[i], want, atol=0.05, err_msg=b)


def _reference_reads(scene, bands, offset):
    """The scene's band files rewritten without the fixture's offset, opened as plain DN."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for b in bands:
            src = scene.bands[b]
            with rasterio.open(src.path) as ds:
                a = ds.read(1).astype("float32") + offset
                write_raster(Path(d) / f"{b}.tif", a.astype("uint16"), ds.transform)
        with open_s2(d, required=bands) as ref:
            assert not ref.radiometry.applied
            return ref.read(bands=bands)[0]


@pytest.mark.parametrize("how", ["folder", "mtd", "r10m_folder", "band_files"])
def test_l2a_safe_baseline_05_offsets(tmp_path, how):
    safe, c = make_safe(tmp_path)
    granule = next((safe / "GRANULE").iterdir())
    src = {"folder": safe, "mtd": safe / "MTD_MSIL2A.xml",
           "r10m_folder": granule / "IMG_DATA" / "R10m",
           "band_files": sorted((granule / "IMG_DATA" / "R10m").glob("*_B0*_10m.tif"))}[how]
    bands = BANDS if how in ("folder", "mtd") else ["B02", "B03", "B04", "B08"]
    with open_s2(src, required=bands) as scene:
        r = scene.radiometry
        assert (r.level, r.baseline) == ("L2A", "05.09")
        assert r.sources == [R.SRC_SAFE] and r.input_form == "dn-offset-1000"
        if how in ("folder", "mtd"):
            # the finest copy of every band, never the QI masks or SCL
            assert scene.bands["B02"].path.name.endswith("_B02_10m.tif")
            assert scene.bands["B05"].path.name.endswith("_B05_20m.tif")
            assert scene.bands["B01"].path.name.endswith("_B01_60m.tif")
            assert all("QI_DATA" not in str(s.path) for s in scene.bands.values())
            assert not scene.warnings, scene.warnings
        _check_safe_scene(scene, c, bands)
        d = scene.to_dict()["radiometry"]
        assert d["bands"]["B04"] == {"scale": 1.0, "offset": -1000.0, "source": R.SRC_SAFE}
        assert d["product_info_from"].endswith("MTD_MSIL2A.xml")


def test_l1c_safe_jp2_baseline_04(tmp_path):
    safe, c = make_safe(tmp_path, level="1C", baseline="04.00", ext=".jp2")
    with open_s2(safe) as scene:
        r = scene.radiometry
        assert (r.level, r.baseline, r.input_form) == ("L1C", "04.00", "dn-offset-1000")
        assert "B10" in scene.bands and scene.bands["B04"].path.suffix == ".jp2"
        _check_safe_scene(scene, c)


def test_old_baseline_safe_without_offsets(tmp_path):
    safe, c = make_safe(tmp_path, baseline="02.14", with_offsets=False,
                        name="S2A_MSIL2A_20200613T101031_N0214_R022_T33UUP_20200613T130102.SAFE")
    with open_s2(safe) as scene:
        r = scene.radiometry
        assert not r.applied and r.sources == [R.SRC_SAFE] and r.baseline == "02.14"
        assert not scene.warnings
        _check_safe_scene(scene, c, offset=0)


def test_safe_quantification_value_other_than_10000(tmp_path):
    safe, c = make_safe(tmp_path)
    mtd = safe / "MTD_MSIL2A.xml"
    mtd.write_text(mtd.read_text().replace(">10000<", ">20000<"))  # DN = 2 x reflectance x 10000
    with open_s2(safe) as scene:
        b = scene.radiometry.bands["B04"]
        assert b.scale == pytest.approx(0.5) and b.offset == pytest.approx(-500)


def test_safe_without_band_files_is_a_clear_error(tmp_path):
    safe = tmp_path / PRODUCT_L2A
    safe.mkdir()
    (safe / "MTD_MSIL2A.xml").write_text(mtd_xml())
    with pytest.raises(InputError) as e:
        open_s2(safe)
    assert "GRANULE" in e.value.problem and str(safe) in str(e.value)


def test_damaged_mtd_given_as_input_is_an_error_found_beside_a_warning(tmp_path):
    safe, c = make_safe(tmp_path)
    mtd = safe / "MTD_MSIL2A.xml"
    mtd.write_text("<Level-2A_User_Product><unclosed>")
    with pytest.raises(InputError) as e:
        open_s2(mtd)
    assert "MTD_MSIL2A.xml" in str(e.value) and "XML" in e.value.problem
    r10 = next((safe / "GRANULE").iterdir()) / "IMG_DATA" / "R10m"
    with open_s2(r10, required=None) as scene:
        assert any("MTD_MSIL2A.xml" in w and "ignored" in w for w in scene.warnings)
        # the product name still says baseline 05.09: no offset known -> the map-may-be-wrong warning
        assert any("map may be wrong" in w for w in scene.warnings)


def test_band_files_from_a_new_product_without_metadata_warn(tmp_path):
    """Band files copied out of a baseline 05.09 product (its name says so), no MTD, no tags."""
    folder = tmp_path / "S2B_MSIL2A_20230612T101559_N0509_R065_T33UUP_20230612T131005"
    folder.mkdir()
    c = canonical()
    for i, b in enumerate(BANDS):
        write_raster(folder / f"{b}.tif", (c[i] + 1000).astype("uint16"), T10)
    with open_s2(folder) as scene:
        r = scene.radiometry
        assert (r.level, r.baseline, r.applied) == ("L2A", "05.09", False)
        assert any("map may be wrong" in w for w in scene.warnings)


# --------------------------------------------------------------------------------------------
# Earth Engine exports
@pytest.mark.parametrize("sid,baseline,add,offset", [
    ("COPERNICUS/S2_SR/20230612T101559_20230612T101602_T33UUP", "05.09", 1000, -1000),
    ("COPERNICUS/S2_SR_HARMONIZED/20230612T101559_20230612T101602_T33UUP", "05.09", 0, 0),
    ("COPERNICUS/S2/20200604T054639_20200604T054831_T43RCP", "02.09", 0, 0),
])
def test_earth_engine_metadata_json(tmp_path, sid, baseline, add, offset):
    folder = tmp_path / "site"
    folder.mkdir()
    c = canonical()
    for i, b in enumerate(BANDS):
        write_raster(folder / f"{b.replace('B0', 'B')}.tif", (c[i] + add).astype("uint16"), T10)
    (folder / "metadata.json").write_text(json.dumps({"PROCESSING_BASELINE": baseline, "system:id": sid}))
    data, valid, scene = read_all(folder)
    assert_canonical(data, valid, c)
    assert scene.radiometry.bands["B04"].offset == offset
    assert scene.radiometry.sources == [R.SRC_EE] and scene.radiometry.baseline == baseline
    assert not scene.warnings


# --------------------------------------------------------------------------------------------
# resampled bands and the record in info
def test_resampled_band_is_converted_too(tmp_path):
    """A 20 m band read through the warp onto the 10 m grid carries its own offset."""
    folder = tmp_path / "bands"
    folder.mkdir()
    for b in BANDS:
        res = S2_RESOLUTION_M[b]
        n = SIZE * 10 // res
        write_raster(folder / f"{b}.tif", np.full((n, n), 2000 + 1000, "uint16"),
                     Affine(res, 0, 500000, 0, -res, 5000000),
                     tags={1: {"BOA_ADD_OFFSET": "-1000", "PROCESSING_BASELINE": "04.00"}})
    with open_s2(folder) as scene:
        assert "B05" in scene.resampled()
        data, valid = scene.read()
        inner = valid.copy()
        np.testing.assert_allclose(data[:, inner], 2000, atol=0.05)


def test_info_names_level_baseline_and_offsets(tmp_path):
    safe, _ = make_safe(tmp_path, level="1C", baseline="04.00")
    info = describe([safe])
    r = info["radiometry"]
    assert (r["level"], r["baseline"], r["source"], r["input"]) == ("L1C", "04.00", R.SRC_SAFE,
                                                                     "dn-offset-1000")
    assert all(b["offset"] == -1000 for b in r["bands"].values())
    assert info["value_range_model"][0] == pytest.approx(info["value_range"][0] - 1000)
    text = format_text(info)
    assert "radiometry: L1C, baseline 04.00" in text and "value - 1000" in text
    assert any("convert the values" in a for a in info["actions"])


def test_mtd_parser_reads_band_ids_and_levels(tmp_path):
    p = tmp_path / "MTD_MSIL1C.xml"
    p.write_text(mtd_xml(level="1C", baseline="04.00", offset=-1000))
    info = R.read_mtd(p)
    assert (info.level, info.baseline, info.quantification) == ("L1C", "04.00", 10000.0)
    assert set(info.offsets) == set(S2_BANDS) and info.offsets["B8A"] == -1000
    assert R.parse_baseline("N0400") == (4, 0) and R.parse_baseline("99.99") is None
