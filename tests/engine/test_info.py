"""`sparsevit info` on every real product shipped in the repository."""
import json

import pytest

from sparsevit.bands import S2_BANDS, S2_BANDS_NO_CIRRUS
from sparsevit.cli import main
from sparsevit.commands.info import describe
from sparsevit.errors import InputError

ALL13, NO10 = set(S2_BANDS), set(S2_BANDS_NO_CIRRUS)
BEN2 = "bigearthnet_v2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_38_87_{}.tif"
BEN2_FI = "bigearthnet_v2/S2A_MSIL2A_20171101T094131_N9999_R036_T35VNJ_00_00_{}.tif"
BEN1 = "bigearthnet_v1/BigEarthNet-S2-Example/S2A_MSIL2A_20170613T101031_87_48"
BEN1_S1 = "bigearthnet_v1/BigEarthNet-S1-Example/S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48"
MT = "major_tom/S2B_MSIL2A_20200223T032739_N9999_R018_T48QUE_20230924T183543"
SSL = "ssl4eo_s12/{}/0000200/{}"
SSL_S2A = SSL.format("s2a", "20200604T054639_20200604T054831_T43RCP")
SSL_S2C = SSL.format("s2c", "20200823T054639_20200823T055618_T43RCP")
SSL_S1 = SSL.format("s1", "S1A_IW_GRDH_1SDV_20200607T010800_20200607T010825_032904_03CFBA_D457")
SAMPLE = "../resources/sample/Spain_7370579_{}.tif"

# path (relative to data/), kind, bands, how, (width, height), CRS, resolution in m, resampled
CASES = [
    (BEN2.format("S2"), "S2", NO10, "description", (120, 120), "EPSG:32633", 10, set()),
    (BEN2.format("S1"), "S1", {"VV", "VH"}, "description", (120, 120), "EPSG:32633", 10, None),
    (BEN2_FI.format("S2"), "S2", NO10, "description", (120, 120), None, 1, set()),
    ("eurosat_ms/Forest/Forest_1.tif", "S2", ALL13, "position", (64, 64), "EPSG:32632", 10, set()),
    ("eurosat_ms/SeaLake/SeaLake_1.tif", "S2", ALL13, "position", (64, 64), "EPSG:32633", 10, set()),
    (SAMPLE.format("S2Hand"), "S2", ALL13, "description", (512, 512), "EPSG:4326", 10, set()),
    (SAMPLE.format("S1Hand"), "S1", {"VV", "VH"}, "description", (512, 512), "EPSG:4326", 10, None),
    (BEN1, "S2", NO10, "filename", (120, 120), "EPSG:32633", 10, NO10 - {"B02", "B03", "B04", "B08"}),
    (BEN1_S1, "S1", {"VV", "VH"}, "filename", (120, 120), "EPSG:32633", 10, None),
    (MT, "S2", NO10, "filename", (1068, 1068), "EPSG:32648", 10, NO10 - {"B02", "B03", "B04", "B08"}),
    (SSL_S2A, "S2", NO10, "filename", (264, 264), "EPSG:4326", 10, NO10 - {"B02", "B03", "B04", "B08"}),
    (SSL_S2C, "S2", ALL13, "filename", (264, 264), "EPSG:4326", 10, ALL13 - {"B02", "B03", "B04", "B08"}),
    (SSL_S1, "S1", {"VV", "VH"}, "filename", (264, 264), "EPSG:4326", 10, None),
]


@pytest.mark.parametrize("rel,kind,bands,how,size,crs,res,resampled", CASES,
                         ids=[c[0].split("/")[-1][-40:] for c in CASES])
def test_info_on_real_products(data_dir, rel, kind, bands, how, size, crs, res, resampled):
    info = describe([data_dir / rel])
    assert info["kind"] == kind
    assert set(info["bands"]) == bands
    assert {b["how"] for b in info["bands"].values()} == {how}
    g = info["grid"]
    assert (g["width"], g["height"]) == size
    assert g["crs"] == crs
    assert abs(max(g["res_m"]) - res) < 0.5
    assert 0 <= info["nodata_share"] < 0.5 and info["value_range"][0] < info["value_range"][1]
    if kind == "S2":
        assert set(info["resampled"]) == resampled
        for b in resampled:
            assert any(a.startswith(f"resample {b} ") for a in info["actions"])
        # every one of these products holds the bundled model's 12 bands (B10 is not one); an
        # L2A product is read without B01/B09 (the model learnt L1C), and info says why
        mb = info["model_bands"]
        assert mb["missing"] == [] and mb["left_out"] == mb["levels"]["dropped"]
        assert not mb["lacking_required"]
        assert mb["levels"]["dropped"] in ([], ["B01", "B09"])
        used = 12 - len(mb["levels"]["dropped"])
        assert any(a.startswith(f"the model uses {used} of its 12 bands") for a in info["actions"])
        if mb["levels"]["dropped"]:
            assert mb["levels"]["level"] == "L2A"
            assert any("B01, B09 left out" in a for a in info["actions"])
            assert any("B01, B09 present but left out for the processing level" in a for a in info["actions"])
        assert (any(a.startswith("B10 present but not used") for a in info["actions"])
                == ("B10" in bands))
    else:
        assert info["s1_units"] == "dB"


def test_every_eurosat_patch(data_dir):
    import csv

    from sparsevit.io.scene import open_s2
    rows = list(csv.DictReader(open(data_dir / "eurosat_ms/index.csv")))
    assert len(rows) == 200
    for row in rows:
        with open_s2(data_dir / "eurosat_ms" / row["path"], required=S2_BANDS) as scene:
            assert scene.grid.crs.to_epsg() == int(row["epsg"]), row["path"]
            assert (scene.grid.width, scene.grid.height) == (64, 64)
            assert scene.bands["B8A"].index == 13 and scene.bands["B10"].index == 10, row["path"]


def test_eurosat_band_positions(data_dir):
    info = describe([data_dir / "eurosat_ms/River/River_2.tif"])
    assert info["bands"]["B8A"]["index"] == 13 and info["bands"]["B10"]["index"] == 10
    assert any("identified by position" in w for w in info["warnings"])
    info = describe([data_dir / "eurosat_ms/River/River_2.tif"], band_order=list(
        __import__("sparsevit.bands", fromlist=["x"]).EUROSAT_BAND_ORDER))
    assert {b["how"] for b in info["bands"].values()} == {"override"} and not info["warnings"]


def test_s1_with_s2_reprojected(data_dir):
    info = describe([data_dir / SSL_S2A], s1=[data_dir / SSL_S1])
    assert info["s1"]["reprojected"] and "S1 reprojected onto the S2 grid (bilinear)" in info["actions"]
    assert info["s1"]["grid"] == info["grid"]
    info = describe([data_dir / BEN2.format("S2")], s1=[data_dir / BEN2.format("S1")])
    assert "S1 already on the S2 grid: read as is" in info["actions"]


def test_s1_not_overlapping_s2(data_dir):
    with pytest.raises(InputError, match="do not overlap"):
        describe([data_dir / BEN1], s1=[data_dir / SSL_S1])


def test_cli_text_and_json(data_dir, capsys):
    assert main(["info", str(data_dir / MT)]) == 0
    out = capsys.readouterr().out
    assert "resample B05 20 m -> 10 m (bilinear)" in out and "EPSG:32648" in out
    assert "the model uses 10 of its 12 bands" in out and "L2A, the model learnt L1C: B01, B09 left out" in out
    files = sorted(str(p) for p in (data_dir / BEN1_S1).glob("*.tif"))
    assert main(["--json", "info", *files]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    (product,) = result["products"]
    assert product["kind"] == "S1" and set(product["bands"]) == {"VV", "VH"}


def test_cli_band_order_preset_and_bad_input(data_dir, tmp_path, capsys):
    assert main(["--json", "info", "--band-order", "eurosat",
                 str(data_dir / "eurosat_ms/Forest/Forest_2.tif")]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    product = next(e for e in events if e["event"] == "result")["products"][0]
    assert product["bands"]["B8A"]["how"] == "override"
    label = data_dir.parent / "resources/sample/Spain_7370579_LabelHand.tif"
    assert main(["info", str(label)]) == 2
    assert "neither Sentinel-2 bands" in capsys.readouterr().err


def test_band_order_leaves_out_bands_marked_unused(tmp_path, capsys):
    import numpy as np
    from affine import Affine
    from fixtures.rasters import write_raster
    data = np.stack([np.full((16, 16), v, "uint16") for v in (100, 200, 300, 7)])
    f = write_raster(tmp_path / "stack.tif", data, Affine(10, 0, 500000, 0, -10, 5000000))
    info = describe([f], band_order=["B04", "B03", "B02", "-"])
    assert {n: (b["index"], b["how"]) for n, b in info["bands"].items()} == {
        "B02": (3, "override"), "B03": (2, "override"), "B04": (1, "override")}
    assert any("left out by --band-order: stack.tif#4" in w for w in info["warnings"])
    # a leading "-" must stay a value, given as one --band-order=... token
    assert main(["--json", "info", "--band-order=-,B03,B02,B08", str(f)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    product = next(e for e in events if e["event"] == "result")["products"][0]
    assert sorted(product["bands"]) == ["B02", "B03", "B08"]
    with pytest.raises(InputError, match="leaves out every band"):
        describe([f], band_order=["-"] * 4)
