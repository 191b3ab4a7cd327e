import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from sparsevit.errors import OutputError
from sparsevit.io.scene import Grid
from sparsevit.io.styles import read_class_table
from sparsevit.io.tiles import tile_windows
from sparsevit.io.writers import ClassifiedWriter, FloatWriter, write_classified

GRID = Grid(CRS.from_epsg(32633), Affine(10, 0, 400000, 0, -10, 5300000), 700, 600)


def _classes(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    data = np.choose(((yy // 50 + xx // 70) % 3), [0, 1, 3]).astype("uint8")
    data[:10, :10] = 255
    return data


@pytest.mark.parametrize("cog", [True, False])
def test_classified_round_trip_window_by_window(tmp_path, scheme, cog):
    out = tmp_path / "classes.tif"
    full = _classes(600, 700)
    with ClassifiedWriter(out, GRID, scheme, cog=cog, blocksize=256) as w:
        for t in tile_windows(700, 600, 256, 32):
            w.write(t.crop(full[int(t.window.row_off):, int(t.window.col_off):][
                :int(t.window.height), :int(t.window.width)]), t.core)
    with rasterio.open(out) as ds:
        assert ds.crs == GRID.crs and ds.transform == GRID.transform
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        assert np.array_equal(ds.read(1), full)
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.compression.name.lower() == "deflate"
        assert ds.overviews(1) == [2, 4]
        cmap = ds.colormap(1)
        assert cmap[1] == (0, 153, 0, 255) and cmap[3] == (255, 0, 0, 255) and cmap[0][:3] == (0, 0, 255)
        assert "Forest" in ds.tags(1)["SPARSEVIT_CLASSES"]
        if cog:
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    table = read_class_table(out)
    assert table == {0: ("Water", (0, 0, 255)), 1: ("Forest", (0, 153, 0)),
                     3: ("Built-up & roads", (255, 0, 0))}
    qml = ET.parse(tmp_path / "classes.qml").getroot()
    entries = qml.findall(".//rasterrenderer[@type='paletted']/colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("color")) for e in entries] == [
        ("0", "Water", "#0000ff"), ("1", "Forest", "#009900"), ("3", "Built-up & roads", "#ff0000")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.qml", "classes.tif", "classes.tif.aux.xml"]


def test_gdal_reads_rat_and_category_names(tmp_path, scheme):
    # A separate GDAL (gdalinfo) proves the .aux.xml is what GDAL/QGIS expect, not just what we parse.
    import json
    import shutil
    import subprocess
    if not shutil.which("gdalinfo"):
        pytest.skip("gdalinfo not installed")
    out = write_classified(tmp_path / "c.tif", GRID, scheme, _classes(600, 700))
    info = json.loads(subprocess.run(["gdalinfo", "-json", str(out)], capture_output=True,
                                     text=True, check=True).stdout)
    assert info["bands"][0]["categories"] == ["Water", "Forest", "", "Built-up & roads"]
    rows = [r["f"] for r in info["rat"]["row"]]
    assert rows == [[0, "Water", 0, 0, 255], [1, "Forest", 0, 153, 0], [3, "Built-up & roads", 255, 0, 0]]
    assert info["bands"][0]["colorTable"]["entries"][1] == [0, 153, 0, 255]


def test_float_writer_round_trip(tmp_path):
    grid = Grid(CRS.from_epsg(4326), Affine(0.0001, 0, 10, 0, -0.0001, 50), 300, 200)
    data = np.random.default_rng(1).random((2, 200, 300)).astype("float32")
    data[:, 0, 0] = np.nan
    out = tmp_path / "conf.tif"
    with FloatWriter(out, grid, count=2, descriptions=["confidence", "attention"]) as w:
        w.write(data)
    with rasterio.open(out) as ds:
        assert ds.crs == grid.crs and ds.transform.almost_equals(grid.transform)
        assert np.isnan(ds.nodata) and ds.descriptions == ("confidence", "attention")
        back = ds.read()
    assert np.isnan(back[:, 0, 0]).all() and np.allclose(back[:, 1:], data[:, 1:])


def test_exception_leaves_nothing(tmp_path, scheme):
    out = tmp_path / "fail.tif"
    with pytest.raises(RuntimeError, match="boom"):
        with ClassifiedWriter(out, GRID, scheme) as w:
            w.write(np.zeros((100, 100), "uint8"), Window(0, 0, 100, 100))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_old_file(tmp_path, scheme):
    out = tmp_path / "keep.tif"
    write_classified(out, GRID, scheme, np.ones((600, 700), "uint8"))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ValueError):
        with FloatWriter(out, GRID) as w:
            w.write(np.zeros((600, 700), "float32"))
            w.write(np.zeros((5, 5), "float32"), Window(0, 0, 6, 6))  # wrong shape
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with rasterio.open(out) as ds:
        assert ds.read(1).max() == 1


def test_unwritable_folder(tmp_path, scheme):
    with pytest.raises(OutputError, match="does not exist"):
        ClassifiedWriter(tmp_path / "nope" / "x.tif", GRID, scheme).open()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        import os
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(OutputError, match="not writable"):
            ClassifiedWriter(ro / "x.tif", GRID, scheme).open()
    finally:
        ro.chmod(0o700)


QGIS_CHECK = """
import sys
from qgis.core import QgsApplication, QgsRasterLayer
app = QgsApplication([], False)
app.initQgis()
layer = QgsRasterLayer(sys.argv[1], "q")
msg, ok = layer.loadNamedStyle(sys.argv[2])
r = layer.renderer()
print(layer.isValid(), ok, r.type(), [(int(c.value), c.label, c.color.name()) for c in r.classes()])
del r, layer
app.exitQgis()
"""


def test_qgis_loads_the_style(tmp_path, scheme):
    # In a child process: QGIS's GDAL and rasterio's GDAL must not share one interpreter.
    import subprocess
    import sys
    pytest.importorskip("qgis")
    out = write_classified(tmp_path / "q.tif", GRID, scheme, _classes(600, 700))
    proc = subprocess.run([sys.executable, "-c", QGIS_CHECK, str(out), str(tmp_path / "q.qml")],
                          capture_output=True, text=True, timeout=60,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == (
        "True True paletted [(0, 'Water', '#0000ff'), (1, 'Forest', '#009900'), "
        "(3, 'Built-up & roads', '#ff0000')]")
