"""Blended tiles (predict/blend.py): no tile-shaped seams, same maps where tiles agree, memory
bounded by one band of tile rows, no-data kept."""
import copy
import dataclasses
import os

import numpy as np
import pytest
import rasterio
import torch

from sparsevit.bundle import load_bundle
from sparsevit.io.tiles import tile_windows
from sparsevit.predict import PredictOptions, predict_scene
from sparsevit.predict.blend import BandBlender, TileWeights, argmax_confidence, pseudomask_scores, seam_ratio
from sparsevit.pseudomasks.postprocess import make_pseudomask

S2 = "resources/sample/Spain_7370579_S2Hand.tif"
LAYOUTS = [(300, 200, 128, 16), (512, 512, 128, 16), (500, 260, 256, 32), (97, 61, 128, 16),
           (700, 450, 128, 63)]


def _blend(tiles, H, W, per_tile, K, chunk_rows=128):
    """Run ``per_tile(tile) -> [K, h, w]`` through the blender; (labels, conf, emitted windows)."""
    lab = np.full((H, W), 255, np.uint8)
    conf = np.full((H, W), np.nan, np.float32)
    emitted = []

    def emit(r0, sums, weight, valid):
        n = valid.shape[0]
        emitted.append((r0, n))
        lab[r0:r0 + n], conf[r0:r0 + n] = argmax_confidence(sums["s"], weight)
        lab[r0:r0 + n][~valid] = 255

    band = max(int(t.window.height) for t in tiles)
    blender = BandBlender(W, H, band, {"s": K}, emit, chunk_rows=chunk_rows)
    weights = TileWeights(tiles)
    for t in tiles:
        blender.add(t, weights(t), np.ones((int(t.window.height), int(t.window.width)), bool),
                    {"s": (per_tile(t), None)})
    blender.finish()
    return lab, conf, emitted, blender


def _crop(field, t):
    return field[:, int(t.window.row_off):int(t.window.row_off + t.window.height),
                 int(t.window.col_off):int(t.window.col_off + t.window.width)]


@pytest.mark.parametrize("W,H,size,overlap", LAYOUTS)
def test_tiles_that_agree_blend_to_the_single_big_tile_map(W, H, size, overlap):
    """A model whose per-pixel scores do not depend on the tile (constant weights in every
    tile): the blended map is exactly the one-tile map, rows are emitted once, in order."""
    rng = np.random.default_rng(0)
    K = 5
    field = rng.random((K, H, W), dtype=np.float32)
    tiles = tile_windows(W, H, size, overlap)
    lab, conf, emitted, blender = _blend(tiles, H, W, lambda t: _crop(field, t), K, chunk_rows=50)
    ref_lab, ref_conf = argmax_confidence(field)
    assert np.array_equal(lab, ref_lab)
    np.testing.assert_allclose(conf, ref_conf, rtol=1e-5)
    rows = [r for r0, n in emitted for r in range(r0, r0 + n)]
    assert rows == list(range(H)) and max(n for _, n in emitted) <= 50
    assert blender.sums["s"].shape[1] == min(size, H)  # one band of tile rows, not the raster


@pytest.mark.parametrize("W,H,size,overlap", LAYOUTS)
def test_weights_fade_across_overlaps_and_sum_to_one(W, H, size, overlap):
    tiles = tile_windows(W, H, size, overlap)
    weights = TileWeights(tiles)
    total = np.zeros((H, W))
    row_cover, col_cover = np.zeros(H, int), np.zeros(W, int)
    for r0, h in {(int(t.window.row_off), int(t.window.height)) for t in tiles}:
        row_cover[r0:r0 + h] += 1
    for c0, w in {(int(t.window.col_off), int(t.window.width)) for t in tiles}:
        col_cover[c0:c0 + w] += 1
    for t in tiles:
        w = weights(t)
        assert w.shape == (int(t.window.height), int(t.window.width)) and (w > 0).all() and (w <= 1).all()
        rs = slice(int(t.window.row_off), int(t.window.row_off + t.window.height))
        cs = slice(int(t.window.col_off), int(t.window.col_off + t.window.width))
        total[rs, cs] += w
    # a tile owns its raster edges fully; where (at most) two tiles meet per axis, weights add to 1
    two_per_axis = (row_cover[:, None] <= 2) & (col_cover[None, :] <= 2)
    assert two_per_axis.mean() > 0.9
    np.testing.assert_allclose(total[two_per_axis], 1.0, atol=1e-5)
    assert (total > 0).all()


def test_blending_removes_seams_where_tiles_disagree():
    """Every tile adds its own bias to a smooth scene-wide field (tiles disagree about which
    class is likelier): cutting cores leaves straight label changes on the core borders,
    blending spreads them over the overlaps."""
    H = W = 512
    size, overlap = 128, 32
    rng = np.random.default_rng(1)
    K = 3
    yy, xx = np.mgrid[0:H, 0:W] / 512.0
    field = np.stack([np.sin(6 * xx + 1), np.cos(5 * yy), np.sin(4 * (xx + yy))]).astype(np.float32)
    tiles = tile_windows(W, H, size, overlap)
    bias = {(t.row, t.col): rng.normal(0, 0.6, K).astype(np.float32) for t in tiles}

    def per_tile(t):
        return _crop(field, t) + bias[(t.row, t.col)][:, None, None]

    cut = np.zeros((H, W), np.uint8)
    for t in tiles:
        lab, _ = argmax_confidence(per_tile(t))
        rs, cs = t.core_slices
        cut[int(t.core.row_off):int(t.core.row_off + t.core.height),
            int(t.core.col_off):int(t.core.col_off + t.core.width)] = lab[rs, cs]
    blended, _, _, _ = _blend(tiles, H, W, per_tile, K)
    before, after = seam_ratio(cut, tiles), seam_ratio(blended, tiles)
    assert before["ratio"] > 50  # 205 (label changes ~200x likelier on a core border)
    assert after["ratio"] < before["ratio"] / 10  # 5.6: the hand-over is spread over the overlap


def test_running_arg_max_is_numpys():
    rng = np.random.default_rng(5)
    s = rng.integers(0, 4, (7, 30, 40)).astype(np.float32)  # many ties
    w = rng.random((30, 40)).astype(np.float32) + 0.5
    lab, conf = argmax_confidence(s, w)
    assert np.array_equal(lab, np.argmax(s, 0))
    np.testing.assert_allclose(conf, s.max(0) / w, rtol=1e-6)


def test_seam_ratio_counts_border_pairs():
    tiles = tile_windows(256, 256, 128, 16)
    lab = np.zeros((256, 256), np.uint8)
    lab[:, int(tiles[1].core.col_off):] = 1  # one straight change exactly on the core border
    r = seam_ratio(lab, tiles)
    # two column and two row cuts, 256 pairs each: the 256 pairs across one column cut change
    assert r["pairs"]["border"] == 4 * 256 and r["border_change_rate"] == pytest.approx(0.25)
    assert r["elsewhere_change_rate"] == 0 and np.isnan(r["ratio"])
    noisy = np.random.default_rng(0).integers(0, 3, (256, 256)).astype(np.uint8)
    assert seam_ratio(noisy, tiles)["ratio"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("method", ["attention_class_tokens", "gradcam", "top1_fill"])
def test_scores_take_the_methods_own_arg_max(method):
    rng = np.random.default_rng(3)
    K, size = 6, (64, 48)
    for trial in range(6):
        probs = rng.random(K)
        probs[rng.integers(K)] = 0.9 if trial else 0.2  # trial 0: no class predicted -> fallback
        maps = {"class_maps": rng.normal(size=(K, 8, 6)), "class_attention": rng.random((K, 8, 6)),
                "head_maps": rng.random((3, 8, 6))}
        pm = make_pseudomask(method, probs, size, **maps, threshold=0.5)
        scores, classes, fallback = pseudomask_scores(method, probs, size, **maps, threshold=0.5,
                                                      prob_power=0.0)
        assert scores.shape == (len(classes),) + size and fallback == bool(pm.info.get("fallback"))
        labels = classes[np.argmax(scores, 0)]
        assert (labels == pm.labels).mean() > 0.999
        # with the probability factor (the default) a class the tile doubts counts less
        s1, c1, _ = pseudomask_scores(method, probs, size, **maps, threshold=0.5)
        expected = (scores * probs[classes][:, None, None]).max(axis=(1, 2))
        np.testing.assert_allclose(s1.max(axis=(1, 2)), expected,
                                   rtol=1e-3, atol=1e-3)


def test_other_methods_vote_with_their_confidence():
    rng = np.random.default_rng(4)
    probs = np.array([0.9, 0.8, 0.1, 0.7])
    maps = {"class_maps": rng.random((4, 8, 8)), "head_maps": rng.random((5, 8, 8))}
    pm = make_pseudomask("attention_weighted", probs, (32, 32), **maps)
    scores, classes, _ = pseudomask_scores("attention_weighted", probs, (32, 32), **maps)
    assert np.array_equal(classes[np.argmax(scores, 0)], pm.labels)


# --- through predict_scene -----------------------------------------------------------------------

class _PixelSegmenter(torch.nn.Module):
    """A 1x1 convolution: each pixel's softmax depends on that pixel only, whatever the tile."""

    def __init__(self, c_in, k):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(c_in, k, 1)

    def forward(self, x):
        return self.conv(torch.nan_to_num(x)) * 4.0


@pytest.fixture(scope="module")
def pixel_bundle(tiny_bundle):
    """The tiny bundle with a tile-independent model: a per-pixel segmenter and a classifier
    whose head reads nothing but its bias (the same classes in every tile, top-1 fill)."""
    b = copy.copy(load_bundle(tiny_bundle))
    b.segmenter = _PixelSegmenter(len(b.s2_bands), b.scheme.num_classes)
    with torch.no_grad():
        b.classifier.head.weight.zero_()
    b.pseudomask = dataclasses.replace(b.pseudomask, method="top1_fill", options={})
    return b


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.crs, (ds.width, ds.height)


def test_blended_prediction_equals_one_big_tile(pixel_bundle, tmp_path, repo_root):
    runs = {}
    for name, tile, overlap in (("blend", 128, 16), ("wide", 128, 48), ("one", 512, 0)):
        (tmp_path / name).mkdir()
        runs[name] = predict_scene(pixel_bundle, repo_root / S2, tmp_path / name,
                                   opts=PredictOptions(tile=tile, overlap=overlap, overview=False,
                                                       stats=False, level="detailed"))
    assert runs["blend"]["counts"]["blend"] and runs["blend"]["counts"]["tiles"] == 25
    assert runs["one"]["counts"]["tiles"] == 1
    one_lc = _read(runs["one"]["outputs"]["landcover"])[0]
    one_cf = _read(runs["one"]["outputs"]["confidence"])[0]
    for name in ("blend", "wide"):
        lc = _read(runs[name]["outputs"]["landcover"])[0]
        assert (lc == one_lc).mean() > 0.9999  # float rounding of the per-tile convolutions
        np.testing.assert_allclose(_read(runs[name]["outputs"]["confidence"])[0], one_cf, atol=1e-4)
        assert np.array_equal(_read(runs[name]["outputs"]["pseudomask"])[0],
                              _read(runs["one"]["outputs"]["pseudomask"])[0])


def test_blended_outputs_are_on_the_input_grid(tiny_bundle, tmp_path, repo_root):
    b = load_bundle(tiny_bundle)
    with rasterio.open(repo_root / S2) as src:
        t, crs, bounds = src.transform, src.crs, src.bounds
    area = (bounds.left + 37 * t.a, bounds.top - 331 * abs(t.e), bounds.left + 338 * t.a,
            bounds.top - 20 * abs(t.e))  # 301 x 311 px, not a multiple of anything
    s = predict_scene(b, repo_root / S2, tmp_path, opts=PredictOptions(area=area, overview=False,
                                                                       stats=False, level="detailed"))
    assert s["counts"]["blend"] and s["counts"]["tiles"] == 9
    for key in ("landcover", "pseudomask", "confidence"):
        data, transform, out_crs, shape = _read(s["outputs"][key])
        assert shape == (301, 311) and out_crs == crs
        assert transform.c == pytest.approx(area[0]) and transform.f == pytest.approx(area[3])
        assert transform.a == t.a and transform.e == t.e
        if key != "confidence":
            assert set(np.unique(data).tolist()) <= set(b.scheme.values)


def test_blending_lowers_the_seams_of_a_real_run(tiny_bundle, tmp_path, repo_root):
    """The untrained tiny model: its tiles disagree (each picks its own mix of the three
    confident classes); blending must leave fewer label changes on the core borders."""
    b = load_bundle(tiny_bundle)
    ratios = {}
    for blend in (False, True):
        out = tmp_path / str(blend)
        out.mkdir()
        s = predict_scene(b, repo_root / S2, out, opts=PredictOptions(blend=blend, overview=False,
                                                                      stats=False, level="detailed"))
        c = s["counts"]
        tiles = tile_windows(512, 512, c["tile"], c["overlap"])
        ratios[blend] = {k: seam_ratio(_read(s["outputs"][k])[0], tiles)["ratio"]
                         for k in ("pseudomask", "landcover")}
    assert ratios[True]["pseudomask"] < ratios[False]["pseudomask"]
    assert ratios[True]["landcover"] <= ratios[False]["landcover"]


@pytest.mark.parametrize("blend", [True, False])
def test_nodata_stays_255_and_nan(tiny_bundle, tmp_path, repo_root, blend):
    src_path = tmp_path / "holes.tif"
    with rasterio.open(repo_root / S2) as src:
        profile, data = src.profile, src.read()
    holes = np.zeros(data.shape[1:], bool)
    holes[100:180, 90:300] = True  # across tile borders
    holes[400:, 450:] = True  # a corner
    data[:, holes] = 0  # the file's declared nodata
    with rasterio.open(src_path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = rasterio.open(repo_root / S2).descriptions
    out = tmp_path / "out"
    out.mkdir()
    s = predict_scene(load_bundle(tiny_bundle), src_path, out,
                      opts=PredictOptions(blend=blend, overview=False, stats=False, level="detailed"))
    assert s["counts"]["valid_pixels"] == int((~holes).sum())
    for key in ("landcover", "pseudomask"):
        lab = _read(s["outputs"][key])[0]
        assert (lab[holes] == 255).all() and (lab[~holes] != 255).all()
    conf = _read(s["outputs"]["confidence"])[0]
    assert np.isnan(conf[holes]).all() and np.isfinite(conf[~holes]).all()
    assert not [p for p in os.listdir(out) if ".partial" in p]


def test_cli_no_blend_switch(tiny_bundle, tmp_path, repo_root, capsys):
    import json

    from sparsevit.cli import main
    code = main(["--json", "predict", str(repo_root / S2), "--model", str(tiny_bundle), "--out",
                 str(tmp_path), "--no-overview", "--no-stats", "--tile", "256", "--no-blend",
                 "--level", "detailed"])
    assert code == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = next(e for e in events if e["event"] == "result")
    assert result["counts"]["blend"] is False and result["counts"]["tiles"] == 9
