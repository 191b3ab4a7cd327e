import csv
import json

import numpy as np
import pytest
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS

from sparsevit.cli import main
from sparsevit.export.classes import import_pyogrio
from sparsevit.io.scene import Grid
from sparsevit.io.styles import read_class_table
from sparsevit.io.writers import write_classified
from sparsevit.schemes import load_scheme

UTM = CRS.from_epsg(32630)
GRID = Grid(UTM, Affine(10, 0, 440000, 0, -10, 4220000), 30, 20)


def class_map():
    arr = np.full((20, 30), 1, np.uint8)
    arr[:, 15:] = 10
    arr[10:, :8] = 7
    return arr


@pytest.fixture
def pred(tmp_path):
    arr = class_map()
    arr[0:4, 0:4] = 10  # 16 wrong pixels
    return write_classified(tmp_path / "pred.tif", GRID, load_scheme("dfc2020"), arr)


@pytest.fixture
def ref(tmp_path):
    return write_classified(tmp_path / "ref.tif", GRID, load_scheme("dfc2020"), class_map())


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_evaluate_raster_json_events_and_report(tmp_path, pred, ref, capsys):
    report = tmp_path / "report.json"
    assert main(["--json", "evaluate", "--pred", str(pred), "--ref", str(ref),
                 "--out", str(report)]) == 0
    evs = events(capsys.readouterr().out)
    result = next(e for e in evs if e["event"] == "result")
    assert evs[-1]["event"] == "end" and evs[-1]["exit_code"] == 0
    assert result["overall_accuracy"] == pytest.approx(1 - 16 / 600)
    assert result["class_names"][0] == "Forest" and result["report"] == str(report)
    saved = json.loads(report.read_text())
    assert saved["miou"] == pytest.approx(result["miou"])
    names = saved["class_names"]
    assert saved["per_class"]["iou"][names.index("Savanna")] is None  # absent class: NaN -> null


def test_evaluate_refuses_a_reference_without_class_table_unless_told_its_scheme(tmp_path, pred, capsys):
    """A -1/0/1 water reference scored as if its codes were the prediction's classes gave mIoU 0.004
    without a word: refused, naming the file, its codes and the options; told, it is scored."""
    plain = tmp_path / "water.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=30, height=20, count=1, dtype="int16",
                       crs=UTM, transform=GRID.transform) as dst:
        codes = np.zeros((20, 30), np.int16)
        codes[:, 15:] = 1
        codes[0, 0] = -1
        dst.write(codes, 1)
    code = main(["evaluate", "--pred", str(pred), "--ref", str(plain)])
    err = capsys.readouterr().err
    assert code != 0 and str(plain) in err and "no class table" in err
    assert "-1, 0, 1" in err and "--ref-scheme" in err and "--mapping" in err
    # the same reference written with the prediction's class table is scored as before
    same = write_classified(tmp_path / "same.tif", GRID, load_scheme("dfc2020"), class_map())
    assert main(["evaluate", "--pred", str(pred), "--ref", str(same)]) == 0
    assert main(["evaluate", "--pred", str(pred), "--ref", str(plain), "--ref-scheme", "dfc2020"]) == 0


def test_evaluate_points_prints_a_table(tmp_path, pred, capsys):
    pyogrio = import_pyogrio()
    pts = tmp_path / "pts.gpkg"
    geoms = [shapely.Point(440000 + 5 + 10 * c, 4220000 - 5 - 10 * r) for r, c in
             [(1, 1), (5, 5), (2, 20), (15, 3), (15, 25)]]
    pyogrio.raw.write(str(pts), shapely.to_wkb(np.array(geoms, dtype=object)),
                      [np.array(["Forest", "Forest", "Water", "Urban/Built-up", "Water"], dtype=object)],
                      ["cls"], geometry_type="Point", crs="EPSG:32630")
    assert main(["evaluate", "--pred", str(pred), "--points", str(pts), "--field", "cls"]) == 0
    out = capsys.readouterr().out
    assert "points: 5 scored of 5" in out
    assert "mIoU" in out and "OA  0.800" in out
    assert any(line.split()[:1] == ["Water"] for line in out.splitlines())


def test_evaluate_error_is_one_line(tmp_path, pred, capsys):
    code = main(["evaluate", "--pred", str(pred), "--points", str(tmp_path / "none.gpkg")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "--field" in err
    code = main(["evaluate", "--pred", str(tmp_path / "nope.tif"), "--ref", str(pred)])
    assert code == 2 and "nope.tif" in capsys.readouterr().err


def test_export_formats_from_extension(tmp_path, pred, capsys):
    assert main(["export", str(pred), "--out", str(tmp_path / "a.csv")]) == 0
    assert "Forest" in capsys.readouterr().out
    with open(tmp_path / "a.csv", newline="") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert int(rows["Water"]["pixels"]) == int((class_map() == 10).sum()) + 16
    assert float(rows["Water"]["hectares"]) == pytest.approx(int(rows["Water"]["pixels"]) * 0.01, rel=1e-3)

    assert main(["--json", "export", str(pred), "--out", str(tmp_path / "p.gpkg"),
                 "--crs", "EPSG:4326"]) == 0
    result = next(e for e in events(capsys.readouterr().out) if e["event"] == "result")
    assert result["format"] == "gpkg" and result["crs"] == "EPSG:4326" and result["features"] == 4
    assert import_pyogrio().read_info(str(tmp_path / "p.gpkg"))["features"] == 4

    assert main(["--json", "export", str(pred), "--out", str(tmp_path / "ll.tif"),
                 "--crs", "EPSG:4326"]) == 0
    evs = events(capsys.readouterr().out)
    assert any(e["event"] == "progress" and e["stage"] == "export" for e in evs)
    with rasterio.open(tmp_path / "ll.tif") as ds:
        assert ds.crs.to_epsg() == 4326 and ds.colormap(1)[1][:3] == (0, 153, 0)
    assert read_class_table(tmp_path / "ll.tif")[7][0] == "Urban/Built-up"


def test_export_errors_keep_an_existing_output(tmp_path, pred, capsys):
    code = main(["export", str(pred), "--out", str(tmp_path / "a.shp")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "--format" in err
    dst = tmp_path / "keep.json"
    dst.write_text("old")
    code = main(["export", str(pred), "--out", str(dst), "--crs", "EPSG:4326"])
    assert code == 2 and dst.read_text() == "old"
    plain = tmp_path / "plain.tif"
    with rasterio.open(plain, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       crs="EPSG:32630", transform=Affine(10, 0, 0, 0, -10, 0)) as ds:
        ds.write(np.ones((1, 4, 4), "uint8"))
    (tmp_path / "o.tif").write_bytes(b"old")
    assert main(["export", str(plain), "--out", str(tmp_path / "o.tif")]) == 2
    assert "--scheme" in capsys.readouterr().err
    assert (tmp_path / "o.tif").read_bytes() == b"old"
