"""Cloudy pixels: found from the product's mask or by brightness, left out of the map (io/clouds.py)."""
import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from sparsevit.bundle import load_bundle
from sparsevit.io.scene import open_s2
from sparsevit.predict import PredictOptions, predict_scene
from sparsevit.predict.scene import CLOUD_CONFIDENCE

S2 = "resources/sample/Spain_7370579_S2Hand.tif"
BOX = (slice(100, 220), slice(260, 400))  # rows, cols of the cloud


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


def _copy(repo_root, path, bright=None, snow=False):
    """The sample chip, with a bright (cloud-like or snow-like) ``bright`` box."""
    with rasterio.open(repo_root / S2) as src:
        data, profile, desc = src.read(), src.profile, src.descriptions
    if bright is not None:
        r, c = bright
        for i, d in enumerate(desc):
            if d in ("B2", "B3", "B4"):
                data[i, r, c] = 5000
            if d == "B8":  # a cloud is as bright in the near infrared
                data[i, r, c] = 5500
            if d == "B11":
                data[i, r, c] = 500 if snow else 4500
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(desc, start=1):
            dst.set_band_description(i, d)
    return path, profile


def test_the_sample_has_no_cloud_flagged(repo_root):
    with open_s2(repo_root / S2) as scene:
        assert scene.clouds.kind == "brightness"
        data, valid = scene.read()
        from sparsevit.bands import S2_BANDS_NO_CIRRUS
        assert not scene.read_clouds(Window(0, 0, 512, 512), data, S2_BANDS_NO_CIRRUS, valid).any()


def test_brightness_flag_finds_a_cloud_but_not_a_roof_or_snow(repo_root, tmp_path):
    from sparsevit.bands import S2_BANDS_NO_CIRRUS
    full = Window(0, 0, 512, 512)
    cases = {"cloud": (BOX, True), "roof": ((slice(300, 303), slice(300, 303)), False)}
    for name, (box, expect) in cases.items():
        f, _ = _copy(repo_root, tmp_path / f"{name}.tif", bright=box)
        with open_s2(f) as scene:
            data, valid = scene.read()
            cloud = scene.read_clouds(full, data, S2_BANDS_NO_CIRRUS, valid)
        assert cloud[box].all() == expect, name
        if expect:  # grown by the buffer, not much further
            assert cloud.sum() < 1.5 * cloud[BOX].size
    f, _ = _copy(repo_root, tmp_path / "snow.tif", bright=BOX, snow=True)
    with open_s2(f) as scene:
        data, valid = scene.read()
        assert not scene.read_clouds(full, data, S2_BANDS_NO_CIRRUS, valid).any()


def test_a_scene_classification_file_masks_the_map_the_confidence_and_the_areas(bundle, repo_root, tmp_path):
    folder = tmp_path / "product"
    stack, profile = _copy(repo_root, folder / "stack.tif")
    scl = np.full((512, 512), 4, np.uint8)  # vegetation
    scl[BOX] = 9  # cloud, high probability
    with rasterio.open(folder / "T30_SCL_10m.tif", "w", **{**profile, "count": 1, "dtype": "uint8",
                                                          "nodata": None}) as dst:
        dst.write(scl, 1)
    with open_s2(folder) as scene:
        assert scene.clouds.kind == "scl" and scene.clouds.path.name == "T30_SCL_10m.tif"
        assert not any("SCL" in w for w in scene.warnings)  # not listed as an ignored band
    out = tmp_path / "out"
    out.mkdir()
    s = predict_scene(bundle, folder, out, opts=PredictOptions())
    with rasterio.open(s["outputs"]["landcover"]) as lc, rasterio.open(s["outputs"]["confidence"]) as cf:
        lcv, cfv = lc.read(1), cf.read(1)
    assert (lcv[BOX] == 255).all() and (cfv[BOX] == CLOUD_CONFIDENCE).all()
    outside = np.ones_like(lcv, bool)
    outside[BOX] = False
    assert (lcv[outside] != 255).all() and np.isfinite(cfv[outside]).all() and (cfv[outside] >= 0).all()
    counts = json.loads(open(s["outputs"]["run"]).read())["counts"]
    assert counts["cloud_pixels"] == scl[BOX].size and counts["clouds"]["kind"] == "scl"
    areas = json.loads(open(s["outputs"]["areas_json"]).read())
    assert sum(c["pixels"] for c in areas["classes"]) == 512 * 512 - scl[BOX].size
    # the overview draws them as clouds (grey stripes), not as the white of no data
    from PIL import Image

    from sparsevit.predict.overview import CLOUD_RGB, CLOUD_STRIPE_RGB
    png = np.asarray(Image.open(s["outputs"]["overview"]).convert("RGB")).reshape(-1, 3)
    for colour in (CLOUD_RGB, CLOUD_STRIPE_RGB):
        assert (png == colour).all(axis=1).sum() > 1000, colour
    # --no-cloud-mask maps them
    out2 = tmp_path / "out2"
    out2.mkdir()
    s2 = predict_scene(bundle, folder, out2, opts=PredictOptions(cloud_mask=False))
    with rasterio.open(s2["outputs"]["landcover"]) as lc:
        assert (lc.read(1) != 255).all()
    assert "cloud_pixels" not in json.loads(open(s2["outputs"]["run"]).read())["counts"]


def _flagged(path) -> float:
    with open_s2(path, required=None) as scene:
        data, valid = scene.read()
        win = Window(0, 0, scene.grid.width, scene.grid.height)
        return float(scene.read_clouds(win, data, list(scene.band_names), valid).mean())


def test_brightness_flag_on_real_scenes_clouds_yes_roofs_no(repo_root):
    """Real clouds of an SSL4EO L1C date and a BigEarthNet L2A patch are found; the bright
    roofs of the EuroSAT Industrial patches (flagged by brightness alone) are not."""
    assert 0.25 < _flagged(repo_root / "data/ssl4eo_s12/s2c/0000200/20200823T054639_20200823T055618_T43RCP") < 0.4
    ben = "data/bigearthnet_v2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_38_58_S2.tif"
    assert 0.35 < _flagged(repo_root / ben) < 0.55
    assert _flagged(repo_root / "data/ssl4eo_s12/s2c/0000200/20200604T054639_20200604T054831_T43RCP") == 0
    roofs = sorted((repo_root / "data/eurosat_ms/Industrial").glob("*.tif"))
    assert len(roofs) >= 20 and all(_flagged(f) == 0 for f in roofs)


def test_shadows_of_a_real_cloudy_date_are_masked_too(bundle, repo_root, tmp_path):
    """SSL4EO L1C, 2020-08-23: the sun's position from its Earth Engine metadata.json; the
    dark land north-west of the clouds (sun in the south-east) is masked with them."""
    cloudy = repo_root / "data/ssl4eo_s12/s2c/0000200/20200823T054639_20200823T055618_T43RCP"
    clear = repo_root / "data/ssl4eo_s12/s2c/0000200/20200604T054639_20200604T054831_T43RCP"
    with open_s2(cloudy, required=None) as scene:
        full = Window(0, 0, scene.grid.width, scene.grid.height)
        shadows = scene.cloud_shadows(full)
        assert 0.05 < shadows.mask.mean() < 0.25
    with open_s2(clear, required=None) as scene:
        assert not scene.cloud_shadows(Window(0, 0, scene.grid.width, scene.grid.height)).mask.any()
    out = tmp_path / "out"
    out.mkdir()
    s = predict_scene(bundle, cloudy, out, opts=PredictOptions(overview=False))
    counts = json.loads(open(s["outputs"]["run"]).read())["counts"]
    assert counts["clouds"]["shadows"]["pixels"] == int(shadows.mask.sum())
    with rasterio.open(s["outputs"]["landcover"]) as lc:
        masked = lc.read(1) == 255
    assert masked[shadows.mask].all()
    assert counts["cloud_share"] > 0.35  # clouds (about 30 %) and their shadows


def test_a_large_area_is_searched_decimated_with_the_same_result_roughly(repo_root, monkeypatch):
    from sparsevit.io import clouds
    cloudy = repo_root / "data/ssl4eo_s12/s2c/0000200/20200823T054639_20200823T055618_T43RCP"
    with open_s2(cloudy, required=None) as scene:
        full = Window(0, 0, scene.grid.width, scene.grid.height)
        fine = scene.cloud_shadows(full)
        monkeypatch.setattr(clouds, "SHADOW_MAX_SIDE", 100)  # 264 px -> 3 x 3 px blocks
        coarse = scene.cloud_shadows(full)
    assert fine.factor == 1 and coarse.factor == 3
    grid = coarse.crop(0, 0, *fine.mask.shape)
    assert grid.shape == fine.mask.shape
    agree = (grid == fine.mask).mean()
    assert agree > 0.9 and 0.5 < grid.mean() / fine.mask.mean() < 2, (agree, grid.mean(), fine.mask.mean())
