"""The coarse land-cover level of ``predict``: derived from the detailed map through a mapping."""
import dataclasses
import json
import os

import numpy as np
import pytest
import rasterio
from PIL import Image

from sparsevit.bundle import load_bundle
from sparsevit.cli import main
from sparsevit.errors import InputError
from sparsevit.io.scene import Grid
from sparsevit.io.styles import read_class_table
from sparsevit.io.writers import write_classified
from sparsevit.predict import PredictOptions, levels, predict_scene
from sparsevit.schemes import load_mapping, load_scheme

S2 = "resources/sample/Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def area(repo_root):
    """A 200 x 150 px corner of the sample: every output, a few seconds."""
    with rasterio.open(repo_root / S2) as src:
        b, t = src.bounds, src.transform
    return (b.left, b.top - 150 * abs(t.e), b.left + 200 * t.a, b.top)


@pytest.fixture(scope="module")
def both(bundle, area, repo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("both")
    return predict_scene(bundle, repo_root / S2, out,
                         opts=PredictOptions(area=area, tile=128, batch_size=4, polygons=True))


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.profile, ds.tags(), ds.overviews(1)


def test_default_writes_both_levels_and_coarse_is_the_lut_of_detailed(both):
    out = both["outputs"]
    for key in ("landcover", "landcover_coarse", "areas_csv", "areas_json", "areas_coarse_csv",
                "areas_coarse_json", "polygons", "overview", "run"):
        assert os.path.exists(out[key]), key
    assert out["landcover_coarse"].endswith("_landcover_coarse.tif")
    assert both["level"] == "both" and both["coarse_scheme"] == "eurosat_coarse"
    assert both["coarse_mapping"] == "eurosat_to_eurosat_coarse"
    detailed, dprof, _, dovr = _read(out["landcover"])
    coarse, cprof, ctags, covr = _read(out["landcover_coarse"])
    mapping = load_mapping("eurosat_to_eurosat_coarse")
    assert np.array_equal(coarse, levels.coarse_lut(mapping)[detailed])  # pixel for pixel
    assert np.array_equal(coarse == 255, detailed == 255)
    # the same kind of file as the detailed map: grid, dtype, nodata, tiling, overviews
    for k in ("crs", "transform", "width", "height", "dtype", "nodata", "blockxsize", "compress"):
        assert cprof.get(k) == dprof.get(k), k
    assert len(covr) == len(dovr)
    assert ctags["SPARSEVIT_SCHEME"] == "eurosat_coarse"
    assert ctags["SPARSEVIT_MAPPING"] == "eurosat_to_eurosat_coarse"
    coarse_scheme = load_scheme("eurosat_coarse")
    table = read_class_table(out["landcover_coarse"])
    assert table == {c.value: (c.name, coarse_scheme.rgb(c.value)) for c in coarse_scheme.classes}
    with rasterio.open(out["landcover_coarse"]) as ds:
        assert ds.colormap(1)[0][:3] == coarse_scheme.rgb(0) and ds.colormap(1)[255][3] == 0
    qml = open(out["landcover_coarse"][:-4] + ".qml", encoding="utf-8").read()
    assert 'label="Built-up"' in qml and 'color="#d7191c"' in qml
    # nothing staged is left over, and the run record names the coarse outputs
    folder = os.path.dirname(out["landcover"])
    assert not [p for p in os.listdir(folder) if p.startswith(".")]
    run = json.loads(open(out["run"], encoding="utf-8").read())
    assert run["outputs"]["landcover_coarse"] == out["landcover_coarse"]


def test_coarse_areas_add_up_to_the_detailed_ones(both):
    mapping = load_mapping("eurosat_to_eurosat_coarse")
    detailed = json.loads(open(both["outputs"]["areas_json"]).read())
    coarse = json.loads(open(both["outputs"]["areas_coarse_json"]).read())
    assert coarse["scheme"] == "eurosat_coarse"
    assert [r["name"] for r in coarse["classes"]] == ["Water", "Built-up", "Cropland", "Grassland", "Forest"]
    for row in coarse["classes"]:
        parts = [r for r in detailed["classes"] if mapping.apply(r["name"]) == row["name"]]
        assert row["pixels"] == sum(r["pixels"] for r in parts), row["name"]
        assert row["hectares"] == pytest.approx(sum(r["hectares"] for r in parts), rel=1e-9, abs=1e-9)
        assert row["percent"] == pytest.approx(sum(r["percent"] for r in parts), abs=1e-9)
    assert coarse["classified_pixels"] == detailed["classified_pixels"]
    assert coarse["total_hectares"] == pytest.approx(detailed["total_hectares"])
    assert [r["name"] for r in both["class_areas_coarse"]] == [r["name"] for r in coarse["classes"]]
    csv = open(both["outputs"]["areas_coarse_csv"]).read().splitlines()
    assert csv[0] == "value,name,pixels,hectares,percent" and len(csv) == 6


def test_overview_shows_the_coarse_map_as_a_fourth_column(both):
    coarse_rgb = {load_scheme("eurosat_coarse").rgb(v) for v in range(5)}
    im = np.asarray(Image.open(both["outputs"]["overview"]).convert("RGB"))
    assert im.shape[1] == 4 * (320 + 6) + 6
    coarse, *_ = _read(both["outputs"]["landcover_coarse"])
    present = {load_scheme("eurosat_coarse").rgb(int(v)) for v in np.unique(coarse) if v != 255}
    assert present and present <= coarse_rgb
    pixels = {tuple(p) for p in im.reshape(-1, 3)[:: 7].tolist()}
    assert present <= pixels  # the coarse colours are drawn (map column and legend)


def test_level_detailed_writes_no_coarse_file(bundle, area, repo_root, tmp_path):
    summary = predict_scene(bundle, repo_root / S2, tmp_path,
                            opts=PredictOptions(area=area, tile=256, level="detailed"))
    assert not [p for p in os.listdir(tmp_path) if "coarse" in p]
    assert "landcover_coarse" not in summary["outputs"] and "class_areas_coarse" not in summary
    assert summary["level"] == "detailed" and os.path.exists(summary["outputs"]["landcover"])
    assert "areas_coarse_csv" not in summary["outputs"]


def test_level_coarse_keeps_only_the_coarse_map(bundle, area, repo_root, tmp_path):
    summary = predict_scene(bundle, repo_root / S2, tmp_path,
                            opts=PredictOptions(area=area, tile=256, level="coarse", polygons=True))
    names = sorted(os.listdir(tmp_path))
    stem = "Spain_7370579_S2Hand"
    assert f"{stem}_landcover.tif" not in names and f"{stem}_class_areas.csv" not in names
    assert f"{stem}_landcover_coarse.tif" in names and f"{stem}_landcover_coarse.qml" in names
    assert f"{stem}_class_areas_coarse.json" in names and f"{stem}_pseudomask.tif" in names
    assert not [n for n in names if n.startswith(".")]
    assert "landcover" not in summary["outputs"] and "class_areas" not in summary
    assert summary["level"] == "coarse" and summary["class_areas_coarse"]
    from sparsevit.export.classes import import_pyogrio
    meta, _, _, fields = import_pyogrio().raw.read(summary["outputs"]["polygons"])
    names = set(fields[list(meta["fields"]).index("class_name")].tolist())
    assert names and names <= set(load_scheme("eurosat_coarse").names)  # polygons of the coarse map


def _dfc_bundle(bundle, **card):
    """The tiny model under another scheme (same number of classes): one without a coarse level."""
    return dataclasses.replace(bundle, scheme=load_scheme("dfc2020"), card=dict(card))


def test_unmappable_scheme_with_coarse_is_a_clear_error(bundle, area, repo_root, tmp_path):
    dfc = _dfc_bundle(bundle)
    for level in ("coarse", "both"):
        with pytest.raises(InputError, match="scheme 'dfc2020'.*no coarse level.*--level detailed"):
            levels.coarse_mapping(dfc, level)
    assert levels.coarse_mapping(dfc, None) is None and levels.coarse_mapping(dfc, "detailed") is None
    # through predict_scene: the error, and nothing written
    with pytest.raises(InputError, match="no coarse level"):
        predict_scene(dfc, repo_root / S2, tmp_path, opts=PredictOptions(area=area, tile=256,
                                                                          level="coarse"))
    assert os.listdir(tmp_path) == []
    # the default level falls back to the detailed map alone
    summary = predict_scene(dfc, repo_root / S2, tmp_path, opts=PredictOptions(area=area, tile=256,
                                                                                overview=False))
    assert summary["level"] == "detailed" and "landcover_coarse" not in summary["outputs"]
    assert not [p for p in os.listdir(tmp_path) if "coarse" in p]


def test_cli_level_coarse_fails_before_any_work(bundle, tmp_path, repo_root, capsys, monkeypatch):
    import sparsevit.bundle as sb
    monkeypatch.setattr(sb, "load_bundle", lambda *_a, **_k: _dfc_bundle(bundle))
    code = main(["predict", str(repo_root / S2), "--out", str(tmp_path), "--level", "coarse"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert "no coarse level" in err[0] and "--level detailed" in err[0]
    assert os.listdir(tmp_path) == []


def test_cli_level_option(tiny_bundle, tmp_path, repo_root, capsys, area):
    code = main(["--json", "predict", str(repo_root / S2), "--model", str(tiny_bundle),
                 "--out", str(tmp_path), "--no-overview", "--tile", "256", "--level", "detailed",
                 "--area=" + ",".join(map(repr, area))])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert result["level"] == "detailed" and "landcover_coarse" not in result["outputs"]
    with pytest.raises(SystemExit):
        main(["predict", str(repo_root / S2), "--out", str(tmp_path), "--level", "medium"])


def test_card_names_the_coarse_mapping(bundle, tmp_path):
    dfc = _dfc_bundle(bundle, coarse_mapping="dfc2020_to_dfc2020_8")
    m = levels.coarse_mapping(dfc, "coarse")
    assert m.name == "dfc2020_to_dfc2020_8" and m.target.name == "dfc2020_8"
    lut = levels.coarse_lut(m)
    assert lut[3] == 255 and lut[1] == 0 and lut[255] == 255  # Savanna is dropped -> no data
    with pytest.raises(InputError, match="maps scheme 'igbp17'"):
        levels.coarse_mapping(_dfc_bundle(bundle, coarse_mapping="igbp17_to_dfc2020"), "both")
    # a mapping file inside the model folder
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "mine.json").write_text(json.dumps({
        "source": "dfc2020", "target": "dfc2020_8",
        "map": {n: ("Forest" if n != "Water" else "Water") for n in load_scheme("dfc2020").names}}))
    own = dataclasses.replace(dfc, path=folder, card={"coarse_mapping": "mine.json"})
    assert levels.coarse_mapping(own, "coarse").apply(np.array([10, 1])).tolist() == [7, 0]


def test_write_coarse_goes_strip_by_strip(tmp_path, monkeypatch):
    from rasterio.transform import from_origin

    from sparsevit.io import writers
    rng = np.random.default_rng(0)
    grid = Grid(rasterio.crs.CRS.from_epsg(32630), from_origin(500000, 4200000, 10, 10), 300, 1100)
    data = rng.integers(0, 10, (1100, 300)).astype(np.uint8)
    data[rng.random(data.shape) < 0.1] = 255
    src = write_classified(tmp_path / "d.tif", grid, load_scheme("eurosat"), data)
    shapes = []
    real = writers.RasterWriter.write

    def spy(self, arr, window=None):
        shapes.append(np.asarray(arr).shape)
        return real(self, arr, window)
    monkeypatch.setattr(writers.RasterWriter, "write", spy)
    mapping = load_mapping("eurosat_to_eurosat_coarse")
    out = levels.write_coarse(src, tmp_path / "c.tif", grid, mapping)
    assert shapes == [(512, 300), (512, 300), (76, 300)]  # never the whole raster at once
    coarse, *_ = _read(out)
    assert np.array_equal(coarse, mapping.apply(data))


def test_cancel_while_writing_the_coarse_map_leaves_nothing(bundle, area, repo_root, tmp_path):
    from sparsevit.errors import Cancelled
    from sparsevit.progress import Progress

    class CancelAtCoarse(Progress):
        def emit(self, event, **fields):
            if event == "stage_start" and fields.get("stage") == "coarse":
                self.request_cancel()
            super().emit(event, **fields)

    import io
    prog = CancelAtCoarse(json_lines=True, stream=io.StringIO(), bar=False)
    with pytest.raises(Cancelled):
        predict_scene(bundle, repo_root / S2, tmp_path, opts=PredictOptions(area=area, tile=256),
                      progress=prog)
    assert os.listdir(tmp_path) == []
