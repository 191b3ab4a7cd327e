"""A zipped SAFE product as downloaded (``S2*_MSIL2A_..._.SAFE.zip``) reads exactly as its
unzipped folder: the same bands, the same radiometry from the MTD inside the zip, the same
pixels, read in place through GDAL's /vsizip/ without extracting anything.

Before issue #14 a zip went to GDAL as a raster and failed (``not a readable raster (Cannot find
Query_Options.Band_List)``: GDAL's SENTINEL2 driver claims the zip and then wants metadata a
product reader does not need) or, for a full product, found no bands.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from test_radiometry import BANDS, PRODUCT_L1C, PRODUCT_L2A, _check_safe_scene, make_safe, mtd_xml

from sparsevit.commands.info import describe, format_text
from sparsevit.errors import InputError
from sparsevit.io import radiometry as R
from sparsevit.io.archive import ArchivePath
from sparsevit.io.scene import open_s2

COMPRESSIONS = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}


def zip_safe(safe: Path, zpath: Path, compression=zipfile.ZIP_DEFLATED, top: bool = True) -> Path:
    """``safe`` zipped as the Copernicus browser does (``X.SAFE/...`` with folder entries);
    ``top=False``: the product's contents at the top of the zip (no .SAFE folder)."""
    base = safe.parent if top else safe
    with zipfile.ZipFile(zpath, "w", compression) as zf:
        for f in sorted(safe.rglob("*")):
            zf.write(f, f.relative_to(base).as_posix())
    return zpath


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _same_scene(zipped, folder, archive: Path, safe: Path) -> None:
    """Same bands (name, how, grid, dtype, file inside the product), radiometry and warnings."""
    assert zipped.band_names == folder.band_names
    for b in folder.band_names:
        zs, fs = zipped.bands[b], folder.bands[b]
        assert isinstance(zs.path, ArchivePath) and zs.path.archive == archive.resolve()
        assert zs.path.member == fs.path.relative_to(safe.parent).as_posix()
        assert (zs.how, zs.index, zs.dtype, zs.nodata) == (fs.how, fs.index, fs.dtype, fs.nodata)
        assert zs.grid.same_as(fs.grid)
    assert zipped.grid.same_as(folder.grid) and zipped.dtype == folder.dtype
    rz, rf = zipped.radiometry.to_dict(), folder.radiometry.to_dict()
    pz, pf = rz.pop("product_info_from"), rf.pop("product_info_from")
    assert rz == rf
    # the metadata was read from inside the zip, not from anywhere on disk
    assert pz.startswith(f"{R.SRC_SAFE}: /vsizip/") and str(archive.resolve()) in pz
    assert pz.rsplit("/", 1)[-1] == pf.rsplit("/", 1)[-1]
    assert zipped.warnings == folder.warnings
    assert [str(p) for p in zipped.metadata_files][0].startswith("/vsizip/")


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
@pytest.mark.parametrize("level,baseline,ext", [("2A", "05.09", ".jp2"), ("1C", "04.00", ".jp2"),
                                                ("2A", "05.09", ".tif")])
def test_zipped_safe_reads_as_its_folder(tmp_path, compression, level, baseline, ext):
    safe, c = make_safe(tmp_path / "unzipped", level=level, baseline=baseline, ext=ext)
    z = zip_safe(safe, tmp_path / f"{safe.name}.zip", COMPRESSIONS[compression])
    before = _listing(tmp_path)
    with open_s2(safe) as folder, open_s2(z) as zipped:
        _same_scene(zipped, folder, z, safe)
        r = zipped.radiometry
        assert (r.level, r.baseline, r.input_form) == (f"L{level}", baseline, "dn-offset-1000")
        assert {b.offset for b in r.bands.values()} == {-1000.0} and r.sources == [R.SRC_SAFE]
        if level == "2A":  # the finest copy of each band, no QI mask, no SCL
            assert zipped.bands["B02"].path.name.endswith(f"_B02_10m{ext}")
            assert zipped.bands["B05"].path.name.endswith(f"_B05_20m{ext}")
            assert all("QI_DATA" not in str(s.path) for s in zipped.bands.values())
        else:
            assert "B10" in zipped.bands
        dz, vz = zipped.read()
        df, vf = folder.read()
        np.testing.assert_array_equal(dz, df)
        np.testing.assert_array_equal(vz, vf)
        _check_safe_scene(zipped, c)  # and both are the canonical field, offset removed
    assert _listing(tmp_path) == before  # read in place: nothing extracted, no sidecars written


def test_quantification_and_offsets_come_from_the_mtd_inside_the_zip(tmp_path):
    """The zip's own MTD decides (QUANTIFICATION 20000, offset -900), not the product name."""
    safe, _ = make_safe(tmp_path / "unzipped")
    mtd = safe / "MTD_MSIL2A.xml"
    mtd.write_text(mtd_xml(offset=-900, quant=20000))
    z = zip_safe(safe, tmp_path / "download.zip")  # the name says nothing about the product
    with open_s2(z) as scene:
        b = scene.radiometry.bands["B04"]
        assert b.scale == pytest.approx(0.5) and b.offset == pytest.approx(-450)
        assert scene.radiometry.quantification == 20000


def test_product_at_the_top_of_the_zip(tmp_path):
    """Someone zipped the product's contents, not its .SAFE folder: still one product."""
    safe, c = make_safe(tmp_path / "unzipped", level="1C", baseline="04.00")
    z = zip_safe(safe, tmp_path / "contents.zip", top=False)
    with open_s2(z) as scene:
        assert scene.radiometry.baseline == "04.00" and scene.radiometry.input_form == "dn-offset-1000"
        assert scene.bands["B02"].path.member.startswith("GRANULE/")
        _check_safe_scene(scene, c)


def test_info_on_the_zip(tmp_path):
    safe, _ = make_safe(tmp_path / "unzipped", level="1C", baseline="04.00", ext=".jp2")
    z = zip_safe(safe, tmp_path / f"{PRODUCT_L1C}.zip")
    fi, zi = describe([safe]), describe([z])
    assert zi["source"] == [str(z)]
    assert zi["stats"] == fi["stats"] and zi["value_range_model"] == fi["value_range_model"]
    assert zi["actions"] == fi["actions"] and zi["missing"] == fi["missing"]
    assert all(b["path"].startswith("/vsizip/") for b in zi["bands"].values())
    text = format_text(zi)
    assert "radiometry: L1C, baseline 04.00" in text and "value - 1000" in text
    assert "T33UUP_20230612T101559_B02.jp2#1" in text


def test_archive_paths_open_in_rasterio_and_answer_like_paths(tmp_path):
    safe, _ = make_safe(tmp_path / "unzipped")
    z = zip_safe(safe, tmp_path / "p r\u00f8duct.zip")  # spaces and unicode in the zip's name
    mtd = R.zip_product_mtd(z)
    assert mtd.is_file() and not mtd.is_dir() and mtd.parent.is_dir() and mtd.parent.exists()
    assert mtd.name == "MTD_MSIL2A.xml" and mtd.parent.name == PRODUCT_L2A
    assert not (mtd.parent / "nothing.jp2").exists() and mtd.resolve() == mtd
    assert R.read_mtd(mtd).baseline == "05.09"
    band = next(f for f in mtd.parent.files() if f.name.endswith("_B04_10m.tif"))
    assert R.find_mtd(band) == mtd
    with rasterio.open(band) as ds:  # os.fspath: GDAL's /vsizip/{archive}/member
        assert ds.count == 1 and ds.name == os.fspath(band)


# --------------------------------------------------------------------------------------------
# errors: always an InputError naming the zip, never a traceback
def test_zip_that_is_not_a_safe_product(tmp_path):
    bands = tmp_path / "bands"
    bands.mkdir()
    (bands / "B02.tif").write_bytes(b"II*\x00")
    z = tmp_path / "my_bands.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.write(bands / "B02.tif", "B02.tif")
        zf.writestr("readme.txt", "not a product")
    with pytest.raises(InputError) as e:
        open_s2(z)
    assert e.value.path == str(z) and "no Sentinel-2 product" in e.value.problem
    assert "MTD_MSIL" in e.value.problem and "unzip" in e.value.fix


@pytest.mark.parametrize("damage", ["truncated", "empty", "text"])
def test_damaged_zip(tmp_path, damage):
    safe, _ = make_safe(tmp_path / "unzipped")
    z = zip_safe(safe, tmp_path / f"{PRODUCT_L2A}.zip")
    raw = z.read_bytes()
    z.write_bytes({"truncated": raw[: len(raw) // 2], "empty": b"", "text": b"<html>503</html>"}[damage])
    with pytest.raises(InputError) as e:
        open_s2(z)
    assert e.value.path == str(z) and "not a readable zip archive" in e.value.problem
    assert "download the product again" in e.value.fix


def _corrupt_member(z: Path, member_suffix: str) -> None:
    """Overwrite the middle of one member's compressed bytes (the zip's directory stays whole)."""
    with zipfile.ZipFile(z) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith(member_suffix))
    raw = bytearray(z.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    mid = start + info.compress_size // 2
    raw[mid:mid + 64] = b"\xff" * 64
    z.write_bytes(bytes(raw))


def test_damaged_metadata_inside_the_zip(tmp_path):
    safe, _ = make_safe(tmp_path / "unzipped")
    z = zip_safe(safe, tmp_path / f"{PRODUCT_L2A}.zip")
    _corrupt_member(z, "MTD_MSIL2A.xml")
    with pytest.raises(InputError) as e:
        open_s2(z)
    assert e.value.path == str(z) and "MTD_MSIL2A.xml" in e.value.problem
    assert "download the product again" in e.value.fix


@pytest.mark.parametrize("compression", list(COMPRESSIONS))
def test_damaged_band_inside_the_zip(tmp_path, compression):
    """Damaged bytes in a band member, the zip's directory whole: GDAL alone would inflate a
    deflated member to wrong pixels without an error; the CRC check refuses it at open."""
    safe, _ = make_safe(tmp_path / "unzipped", ext=".jp2")
    z = zip_safe(safe, tmp_path / f"{PRODUCT_L2A}.zip", COMPRESSIONS[compression])
    _corrupt_member(z, "_B04_10m.jp2")
    with pytest.raises(InputError) as e:
        open_s2(z)
    assert e.value.path == str(z.resolve()) and "_B04_10m.jp2 is damaged inside the zip" in e.value.problem
    assert "CRC" in e.value.problem and "download the product again" in e.value.fix


def test_unused_damaged_member_does_not_matter(tmp_path):
    """Only the band files the scene reads are checked (not the 20/60 m copies of 10 m bands)."""
    safe, c = make_safe(tmp_path / "unzipped")
    z = zip_safe(safe, tmp_path / f"{PRODUCT_L2A}.zip")
    _corrupt_member(z, "_B04_60m.tif")
    with open_s2(z) as scene:
        _check_safe_scene(scene, c)


def test_zip_with_two_products(tmp_path):
    a, _ = make_safe(tmp_path / "a")
    b, _ = make_safe(tmp_path / "b", level="1C", baseline="04.00")
    z = tmp_path / "two.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for safe in (a, b):
            for f in sorted(safe.rglob("*")):
                zf.write(f, f.relative_to(safe.parent).as_posix())
    with pytest.raises(InputError) as e:
        open_s2(z)
    assert e.value.path == str(z) and "2 Sentinel-2 products" in e.value.problem
    assert "one product per zip" in e.value.fix


def test_zip_with_metadata_but_no_band_files(tmp_path):
    z = tmp_path / f"{PRODUCT_L2A}.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"{PRODUCT_L2A}/MTD_MSIL2A.xml", mtd_xml())
        zf.writestr(f"{PRODUCT_L2A}/GRANULE/", "")
    with pytest.raises(InputError) as e:
        open_s2(z)
    assert e.value.path == str(z.resolve()) and "GRANULE" in e.value.problem


def test_band_files_picked_as_in_the_folder(tmp_path):
    """Same selection rule inside the zip: finest copy per (granule, band), IMG_DATA only."""
    safe, _ = make_safe(tmp_path / "unzipped")
    z = zip_safe(safe, tmp_path / "p.zip")
    root = R.zip_product_mtd(z).parent
    inside = [f.relative_to(root).as_posix() for f in R.safe_band_files(root)]
    on_disk = [f.relative_to(safe).as_posix() for f in R.safe_band_files(safe)]
    assert inside == on_disk and len(inside) == len(BANDS)  # L2A: no B10
