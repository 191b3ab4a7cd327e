"""Products as downloaded (issue #14): a zipped SAFE product (``S2*_MSIL1C_..._.SAFE.zip``, the
Copernicus browser's download) goes everywhere its unzipped folder goes -- ``info``, ``predict``,
``grid``, ``fit`` -- read in place through GDAL's /vsizip/, with the radiometry of the MTD inside
the zip; a zip that is no product, or a damaged one, is one clean error line naming the zip.

Before the fix every such zip failed: ``<zip>: not a readable raster (Cannot find
Query_Options.Band_List)`` (GDAL's SENTINEL2 driver claimed the file), or found no bands.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
from fixtures.bundle import write_tiny_bundle
from fixtures.cli_runs import assert_clean_error, run_cli, s2_data, snapshot, write_s2
from test_radiometry_faults import _l1c_safe

COMPRESSIONS = {"stored": zipfile.ZIP_STORED, "deflated": zipfile.ZIP_DEFLATED}


@pytest.fixture(scope="module")
def flexible_bundle(tmp_path_factory):
    return write_tiny_bundle(tmp_path_factory.mktemp("bundle"), band_flexible=True)


def zip_product(safe: Path, zpath: Path, compression=zipfile.ZIP_DEFLATED) -> Path:
    """``safe`` zipped as downloaded: ``X.SAFE/...`` with its folder entries."""
    with zipfile.ZipFile(zpath, "w", compression) as zf:
        for f in sorted(safe.rglob("*")):
            zf.write(f, f.relative_to(safe.parent).as_posix())
    return zpath


@pytest.fixture
def product(tmp_path):
    """``(dn, safe folder, {compression: zip})`` of one baseline 04.00 L1C scene, in a folder
    with a space and a non-ASCII letter (Windows download folders)."""
    root = tmp_path / "Descargas \u00f1"
    root.mkdir()
    dn = s2_data()
    safe = _l1c_safe(root / "unzipped", dn)
    zips = {k: zip_product(safe, root / f"{k}_{safe.name}.zip", c) for k, c in COMPRESSIONS.items()}
    return dn, safe, zips


def _events(stdout: str) -> list[dict]:
    return [json.loads(ln) for ln in stdout.splitlines() if ln.startswith("{")]


def _result(stdout: str) -> dict:
    return [e for e in _events(stdout) if e["event"] == "result"][-1]


def _predict(capsys, s2, model, out, *extra):
    return run_cli(capsys, ["--json", "predict", str(s2), "--model", str(model), "--out", str(out),
                            "--tile", "32", "--overlap", "4", "--no-overview", *map(str, extra)])


def _rasters(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(land cover, confidence) of the one prediction in ``folder``."""
    out = []
    for what in ("landcover", "confidence"):
        (f,) = folder.glob(f"*_{what}.tif")
        with rasterio.open(f) as ds:
            out.append(ds.read(1))
    return out[0], out[1]


def test_info_on_the_zip_equals_the_folder(capsys, product):
    _, safe, zips = product
    code, out, err = run_cli(capsys, ["--json", "info", str(safe)])
    assert code == 0, err
    folder = _result(out)["products"][0]
    for kind, z in zips.items():
        code, out, err = run_cli(capsys, ["--json", "info", str(z)])
        assert code == 0, (kind, err)
        zipped = _result(out)["products"][0]
        assert zipped["source"] == [str(z)]
        assert list(zipped["bands"]) == list(folder["bands"])
        for b, fb in folder["bands"].items():
            zb = zipped["bands"][b]
            assert zb["path"].startswith(f"/vsizip/{{{z.resolve()}}}/{safe.name}/GRANULE/")
            assert Path(zb["path"]).name == Path(fb["path"]).name
            assert {k: v for k, v in zb.items() if k != "path"} == {k: v for k, v in fb.items() if k != "path"}
        rz, rf = dict(zipped["radiometry"]), dict(folder["radiometry"])
        assert rz.pop("product_info_from").endswith(f"{z.name}}}/{safe.name}/MTD_MSIL1C.xml")
        rf.pop("product_info_from")
        assert rz == rf and (rz["level"], rz["baseline"], rz["input"]) == ("L1C", "04.00", "dn-offset-1000")
        assert {b["offset"] for b in rz["bands"].values()} == {-1000.0}
        # the same pixels: identical statistics of every band, as stored and as the model sees them
        for key in ("stats", "value_range", "value_range_model", "grid", "actions", "warnings", "missing"):
            assert zipped[key] == folder[key], (kind, key)
    # and in text
    code, out, err = run_cli(capsys, ["info", str(zips["deflated"])])
    assert code == 0, err
    assert "radiometry: L1C, baseline 04.00" in out and "value - 1000" in out


def test_predict_on_the_zip_gives_the_folders_map(capsys, tmp_path, product, flexible_bundle):
    """The same land-cover pixels (and confidences) from the folder, the stored and the deflated
    zip, and the plain DN GeoTIFF of the scene: the -1000 of the zip's MTD is applied."""
    dn, safe, zips = product
    runs = [("dn", write_s2(tmp_path / "dn.tif", data=dn), ()), ("folder", safe, ()), *(
        (k, z, ()) for k, z in zips.items()), ("offset_ignored", zips["stored"], ("--radiometry", "dn"))]
    maps = {}
    for kind, src, extra in runs:
        out = tmp_path / f"out_{kind}"
        out.mkdir()
        code, _, err = _predict(capsys, src, flexible_bundle, out, *extra)
        assert code == 0, (kind, err)
        maps[kind] = _rasters(out)
        if kind in zips:  # named after the product, as for the folder
            assert (out / f"{Path(src).stem}_landcover.tif").is_file()
    assert not list(safe.parent.parent.glob("*.aux.xml"))  # nothing written beside the zips
    for kind in ("folder", *zips):
        np.testing.assert_array_equal(maps[kind][0], maps["dn"][0], err_msg=kind)
        np.testing.assert_array_equal(maps[kind][1], maps["dn"][1], err_msg=kind)
    # the comparison can see a wrong radiometry: without the offset the confidences differ
    assert not np.array_equal(maps["offset_ignored"][1], maps["dn"][1])


def test_grid_on_the_zip_equals_the_folder(capsys, tmp_path, product):
    _, safe, zips = product
    results = {}
    for kind, src in [("folder", safe), ("zip", zips["deflated"])]:
        code, out, err = run_cli(capsys, ["--json", "grid", str(src), "--tile", "32",
                                          "--out", str(tmp_path / f"{kind}.gpkg")])
        assert code == 0, (kind, err)
        results[kind] = _result(out)
    assert results["zip"]["cells"] == results["folder"]["cells"] == 4
    from sparsevit.export.classes import import_pyogrio
    raw = import_pyogrio().raw
    geoms = {k: raw.read(str(tmp_path / f"{k}.gpkg"))[2].tolist() for k in results}
    assert geoms["zip"] == geoms["folder"]


def test_fit_on_the_zip(capsys, tmp_path):
    """``fit`` reads its tiles from a zipped product (tiny base model, one epoch per stage)."""
    import shapely
    from fixtures.fit_scenes import pixel_center, river_scene

    from sparsevit.export.classes import import_pyogrio
    raster, _ = river_scene(tmp_path / "river.tif")
    with rasterio.open(raster) as ds:
        dn = ds.read()
    z = zip_product(_l1c_safe(tmp_path / "unzipped", dn), tmp_path / "river.SAFE.zip")
    pts = [shapely.Point(*pixel_center(r, c)) for r, c in ((10, 50), (50, 50), (90, 60), (10, 10), (50, 100), (100, 5))]
    import_pyogrio().raw.write(
        str(tmp_path / "p.gpkg"), shapely.to_wkb(np.array(pts, dtype=object)),
        [np.array(["water"] * 3 + ["land"] * 3, dtype=object)], ["cls"], layer="pts", driver="GPKG",
        crs="EPSG:32633", geometry_type="Point")
    (tmp_path / "base").mkdir()
    base = write_tiny_bundle(tmp_path / "base", tile=64, overlap=8, class_tokens=True, band_flexible=True)
    code, out, err = run_cli(capsys, [
        "--json", "fit", str(z), "--labels", str(tmp_path / "p.gpkg"), "--field", "cls", "--tile", "32",
        "--base", str(base), "--no-predict", "--holdout", "0", "--out", str(tmp_path / "run"),
        "--epochs", "1", "--refine-epochs", "1", "--iterations", "1", "--threads", "1"])
    assert code == 0, err
    result = _result(out)
    assert [c["name"] for c in result["scheme"]["classes"]] == ["land", "water"]
    assert (tmp_path / "run" / "model" / "bundle.json").is_file()


# --------------------------------------------------------------------------------------------
# a zip that is no product, or a damaged one: one clean line naming the zip, outputs untouched
def _not_a_product(tmp_path) -> Path:
    z = tmp_path / "my bands.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("B02.tif", b"II*\x00")
        zf.writestr("notes.txt", "band files, no product metadata")
    return z


def _truncated(tmp_path, product) -> Path:
    z = product[2]["deflated"]
    raw = z.read_bytes()
    z.write_bytes(raw[: len(raw) * 2 // 3])  # an interrupted download: no central directory
    return z


def _damaged_band(tmp_path, product) -> Path:
    z = product[2]["deflated"]
    with zipfile.ZipFile(z) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("_B04.jp2"))
    raw = bytearray(z.read_bytes())
    mid = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + info.compress_size // 2
    raw[mid:mid + 32] = bytes(32)
    z.write_bytes(bytes(raw))
    return z


@pytest.mark.parametrize("case,problem,fix", [
    ("not_a_product", "the zip archive holds no Sentinel-2 product (no MTD_MSIL1C.xml or MTD_MSIL2A.xml",
     "unzip the archive"),
    ("truncated", "not a readable zip archive (", "download the product again"),
    ("damaged_band", "_B04.jp2 is damaged inside the zip archive (Bad CRC-32", "download the product again"),
])
@pytest.mark.parametrize("command", ["info", "predict", "grid"])
def test_bad_zip_is_a_clean_error(capsys, tmp_path, product, flexible_bundle, out_dir, case, problem, fix,
                                  command):
    z = {"not_a_product": lambda: _not_a_product(tmp_path), "truncated": lambda: _truncated(tmp_path, product),
         "damaged_band": lambda: _damaged_band(tmp_path, product)}[case]()
    before = snapshot(out_dir)
    argv = {"info": ["info", str(z)],
            "predict": ["predict", str(z), "--model", str(flexible_bundle), "--out", str(out_dir),
                        "--tile", "32", "--no-overview"],
            "grid": ["grid", str(z), "--tile", "32", "--out", str(out_dir / "g.gpkg")]}[command]
    code, _, err = run_cli(capsys, argv)
    line = assert_clean_error(code, err, command, z.name, exit_code=2)
    assert problem in line and fix in line, line
    assert snapshot(out_dir) == before
