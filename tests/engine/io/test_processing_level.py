"""An input of another processing level than the model learnt (io/processing_level.py):
the level judged from the pixels, B01/B09 left out, the other bands converted, said everywhere."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.datasets import BigEarthNetV1Dataset, BigEarthNetV2Dataset
from sparsevit.datasets.eurosat import read_eurosat_patch
from sparsevit.datasets.eurosat_real import ms_patches
from sparsevit.errors import InputError
from sparsevit.io.processing_level import (
    ATMOSPHERIC_BANDS,
    array_for_model,
    level_from_b09,
    load_conversion,
    plan_levels,
)
from sparsevit.io.scene import level_from_pixels, open_s2

REPO = Path(__file__).resolve().parents[3]
DATA = REPO / "data"
SSL4EO = DATA / "ssl4eo_s12"
DATE = "20200604T054639_20200604T054831_T43RCP"
L1C_DIR, L2A_DIR = SSL4EO / "s2c" / "0000200" / DATE, SSL4EO / "s2a" / "0000200" / DATE


def _b09_b8a(a, bands):
    bands = list(bands)
    return a[bands.index("B09")], a[bands.index("B8A")]


def test_real_l1c_patches_are_judged_l1c():
    for _, _, path in ms_patches(DATA, "train")[::10]:
        a = read_eurosat_patch(path, S2_BANDS_NO_CIRRUS).astype(np.float32)
        level, ratio = level_from_b09(*_b09_b8a(a, S2_BANDS_NO_CIRRUS))
        assert level in ("L1C", None), (path.name, ratio)  # None: a water patch, too little land
        if level is None:
            assert ratio is None


def test_real_l2a_patches_are_judged_l2a():
    found = 0
    for ds in (BigEarthNetV2Dataset(DATA / "bigearthnet_v2"), BigEarthNetV1Dataset(DATA / "bigearthnet_v1")):
        for i in range(len(ds)):
            s = ds[i]
            level, ratio = level_from_b09(*_b09_b8a(s.s2, ds.s2_bands))
            assert level in ("L2A", None), (s.id, ratio)
            found += level == "L2A"
    assert found >= 10


def test_real_scenes_judged_from_a_decimated_read():
    with open_s2(L1C_DIR) as s:
        assert level_from_pixels(s)[0] == "L1C"
    with open_s2(L2A_DIR) as s:
        assert level_from_pixels(s)[0] == "L2A"
    with open_s2(REPO / "resources/sample/Spain_7370579_S2Hand.tif") as s:
        assert level_from_pixels(s)[0] == "L1C"


def test_too_little_land_or_an_unclear_ratio_says_nothing():
    water = np.full((20, 20), 300.0)
    assert level_from_b09(water * 0.2, water) == (None, None)
    land = np.full((20, 20), 3000.0)
    level, ratio = level_from_b09(land * 0.8, land)
    assert level is None and ratio == pytest.approx(0.8)


def test_plan_does_nothing_when_levels_agree_or_are_unknown():
    for level, trained in (("L1C", "L1C"), (None, "L1C"), ("L2A", None), ("L2A", "L2A")):
        plan = plan_levels(S2_BANDS_NO_CIRRUS, level, trained, True)
        assert plan.dropped == () and not plan.converts and plan.describe() is None


def test_plan_for_l2a_on_an_l1c_model():
    plan = plan_levels(S2_BANDS_NO_CIRRUS, "L2A", "L1C", True)
    assert plan.dropped == ATMOSPHERIC_BANDS and plan.converts
    assert "B01, B09 left out" in plan.describe() and "L2A -> L1C" in plan.describe()
    fixed = plan_levels(S2_BANDS_NO_CIRRUS, "L2A", "L1C", False)  # a model needing every band keeps them
    assert fixed.dropped == () and fixed.converts


def test_conversion_brightens_l2a_blue_and_inverts():
    conv = load_conversion()
    bands = ["B02", "B04", "B08"]
    x = np.full((3, 4, 4), 1000.0, np.float32)
    y = conv.apply(x, bands, "L2A", "L1C")
    assert y[0].mean() > 1300  # path radiance: L1C blue is brighter than L2A blue
    np.testing.assert_allclose(conv.apply(y, bands, "L1C", "L2A"), x, rtol=1e-5)
    assert np.isnan(conv.apply(np.full((1, 2, 2), np.nan, np.float32), ["B02"], "L2A", "L1C")).all()


def test_conversion_brings_the_real_l2a_twin_close_to_its_l1c():
    conv = load_conversion()
    bands = [b for b in S2_BANDS_NO_CIRRUS if b not in ATMOSPHERIC_BANDS]
    with open_s2(L1C_DIR) as s:
        l1c, v1 = s.read(bands=bands)
    with open_s2(L2A_DIR) as s:
        l2a, v2 = s.read(bands=bands)
    v = v1 & v2
    before = np.abs(l2a - l1c)[:, v].mean()
    after = np.abs(conv.apply(l2a, bands, "L2A", "L1C") - l1c)[:, v].mean()
    assert after < 0.25 * before


def test_fit_script_remakes_the_shipped_conversion(tmp_path):
    out = tmp_path / "conv.json"
    subprocess.run([sys.executable, str(REPO / "scripts/fit_level_conversion.py"), "--out", str(out)],
                   check=True, capture_output=True, text=True)
    made = json.loads(out.read_text())["bands"]
    shipped = json.loads((REPO / "resources/radiometry/l2a_to_l1c.json").read_text())["bands"]
    assert made.keys() == shipped.keys()
    for b in made:
        assert made[b]["gain"] == pytest.approx(shipped[b]["gain"], abs=1e-4)
        assert made[b]["offset"] == pytest.approx(shipped[b]["offset"], abs=0.05)


def test_a_damaged_conversion_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "l2a_to_l1c.json"
    bad.write_text('{"bands": {"B02": {"gain": "x"}}}')
    with pytest.raises(InputError) as e:
        load_conversion(bad)
    assert str(bad) in str(e.value) and "fit_level_conversion.py" in str(e.value)
    bad.write_text("{")
    with pytest.raises(InputError):
        load_conversion(bad)


def test_array_for_model_matches_the_plan():
    ds = BigEarthNetV2Dataset(DATA / "bigearthnet_v2")
    s = ds[0]
    x, plan = array_for_model(s.s2.astype(np.float32), ds.s2_bands, S2_BANDS_NO_CIRRUS, "L1C", True)
    assert plan.level == "L2A" and plan.judged_from.startswith("its pixels")
    for b in ATMOSPHERIC_BANDS:
        assert np.isnan(x[S2_BANDS_NO_CIRRUS.index(b)]).all()
    i = list(ds.s2_bands).index("B02")
    assert x[S2_BANDS_NO_CIRRUS.index("B02")].mean() > s.s2[i].mean()
    same, plan = array_for_model(s.s2.astype(np.float32), ds.s2_bands, S2_BANDS_NO_CIRRUS, None, True)
    assert plan.describe() is None and not np.isnan(same).any()


@pytest.fixture(scope="module")
def default_bundle():
    from sparsevit.bundle import load_bundle
    return load_bundle(REPO / "resources/models/default")


def _predict(bundle, src, out):
    from sparsevit.predict import PredictOptions, predict_scene
    out.mkdir()
    return predict_scene(bundle, src, out, opts=PredictOptions(overview=False, stats=False))


def test_predict_on_l2a_leaves_out_b01_b09_and_converts(default_bundle, tmp_path):
    rec = _predict(default_bundle, L2A_DIR, tmp_path / "a")
    bands = rec["counts"]["bands"]
    assert bands["used"] == [b for b in default_bundle.s2_bands if b not in ATMOSPHERIC_BANDS]
    assert bands["levels"] == {"level": "L2A", "judged_from": None, "trained_on": "L1C",
                               "dropped": ["B01", "B09"], "converted": "L2A -> L1C"}


def test_predict_judges_an_unlabelled_l1c_from_pixels(default_bundle, tmp_path):
    rec = _predict(default_bundle, REPO / "resources/sample/Spain_7370579_S2Hand.tif", tmp_path / "s")
    bands = rec["counts"]["bands"]
    assert bands["level_from_pixels"]["level"] == "L1C"
    assert bands["levels"]["dropped"] == [] and bands["levels"]["converted"] is None
    assert "B09" in bands["used"]


def test_the_conversion_changes_the_l2a_map(default_bundle, tmp_path):
    """A bundle whose card does not name its level reads L2A as before: the maps differ."""
    import rasterio

    from sparsevit.bundle import load_bundle

    plain = tmp_path / "plain"
    shutil.copytree(REPO / "resources/models/default", plain)
    doc = json.loads((plain / "bundle.json").read_text())
    doc["card"].pop("trained_on_level")
    (plain / "bundle.json").write_text(json.dumps(doc))
    a = _predict(default_bundle, L2A_DIR, tmp_path / "a")
    b = _predict(load_bundle(plain), L2A_DIR, tmp_path / "b")
    assert b["counts"]["bands"]["levels"]["dropped"] == []
    with rasterio.open(a["outputs"]["pseudomask"]) as ra, rasterio.open(b["outputs"]["pseudomask"]) as rb:
        assert (ra.read(1) != rb.read(1)).mean() > 0.05


def test_fit_reads_its_tiles_as_predict_does():
    """``fit`` fine-tunes an L1C model on an L2A raster with the same band handling predict will
    give the fitted model: B01/B09 absent (NaN) and the other bands converted."""
    from sparsevit.fit.labels import TileTag
    from sparsevit.fit.tiles import TaggedTiles
    from sparsevit.schemes import load_scheme

    scheme = load_scheme("eurosat")
    tag = TileTag(0, 0, 0, 64, np.eye(len(scheme.names), dtype=np.float32)[0], "t0")
    with open_s2(L2A_DIR) as s:
        plan = plan_levels([b for b in S2_BANDS_NO_CIRRUS if b in s.bands], "L2A", "L1C", True)
        raw, valid = s.read(Window(0, 0, 64, 64), ["B02"])
        tiles = TaggedTiles([s], [tag], S2_BANDS_NO_CIRRUS, scheme, levels=[plan])
        plain = TaggedTiles([s], [tag], S2_BANDS_NO_CIRRUS, scheme)
    got = tiles.images[0]
    for b in ATMOSPHERIC_BANDS:
        assert np.isnan(got[S2_BANDS_NO_CIRRUS.index(b)]).all()
        assert not np.isnan(plain.images[0][S2_BANDS_NO_CIRRUS.index(b)]).any()
    expect = plan.conversion.apply(raw, ["B02"], "L2A", "L1C")[0]
    np.testing.assert_allclose(got[S2_BANDS_NO_CIRRUS.index("B02")][valid], expect[valid], rtol=1e-5)
