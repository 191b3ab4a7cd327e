"""``sparsevit export-model``: the bundled model's segmenter as ONNX for the Deepness plugin.

onnxruntime on the exported file must give the class probabilities of the engine's own torch
path (``predict_scene``: ``_read_tile`` -> ``_model_input`` -> segmenter -> softmax) on real tiles
of the bundled Sen1Floods11 sample, within ``TOL`` (max abs probability difference; measured
~2e-6 in float32), also when the input goes through Deepness' own preprocessing (x / 255, then
the standardisation from the file's metadata).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from rasterio.windows import Window

from sparsevit.bands import S2_BANDS
from sparsevit.bundle import load_bundle
from sparsevit.cli import main
from sparsevit.io.scene import open_s2
from sparsevit.io.tiles import tile_windows
from sparsevit.paths import default_model_path
from sparsevit.predict.scene import _model_input, _read_tile
from sparsevit.refine.segmenter import predict_logits_padded

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TOL = 1e-4  # max abs difference of class probabilities, ONNX vs torch
N_TILES = 3
SUBSET = ["B04", "B03", "B02", "B08"]  # not the model's order: the graph reorders


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(default_model_path())


@pytest.fixture(scope="module")
def sample(repo_root):
    return repo_root / "resources" / "sample" / "Spain_7370579_S2Hand.tif"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "default.onnx"
    assert main(["export-model", str(default_model_path()), "--onnx", str(out)]) == 0
    return out


def _session(path):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as Deepness sets it
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _tiles(bundle, sample, have: list[str], raw_bands: list[str]):
    """The engine's model input for the first tiles, reading only ``have`` of the raster's
    bands (the others absent), and the raw digital numbers of ``raw_bands`` for the ONNX file."""
    with open_s2(sample, required=bundle.min_bands, smooth_blocky=False) as scene:
        full = Window(0, 0, scene.grid.width, scene.grid.height)
        tiles = tile_windows(scene.grid.width, scene.grid.height, bundle.tile, bundle.overlap)[:N_TILES]
        items = [(t, *_read_tile(t, scene, None, full, have, bundle.s2_bands)) for t in tiles]
        raw = np.stack([scene.read(t.window, raw_bands)[0] for t in tiles])
    return _model_input(bundle, items), raw.astype(np.float32)


def _torch_probs(bundle, x):
    with torch.no_grad():
        return torch.softmax(predict_logits_padded(bundle.segmenter.eval(), x).float(), 1).numpy()


def _meta(path):
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _deepness_preprocess(tiles_nhwc: np.ndarray, meta: dict) -> np.ndarray:
    """Deepness' ModelBase.preprocessing: limit channels, x / 255 in float32, standardise with
    the metadata's mean/std, NHWC -> NCHW."""
    mean = np.array(json.loads(meta["standardization_mean"]), dtype=np.float32)
    std = np.array(json.loads(meta["standardization_std"]), dtype=np.float32)
    x = np.float32(tiles_nhwc * 1. / 255.)
    return np.transpose((x - mean) / std, (0, 3, 1, 2))


def test_onnx_equals_torch_on_real_tiles(bundle, sample, exported):
    x, raw = _tiles(bundle, sample, list(bundle.s2_bands), list(bundle.s2_bands))
    ref = _torch_probs(bundle, x)
    sess = _session(exported)
    out = sess.run(None, {sess.get_inputs()[0].name: raw})[0]
    assert out.shape == ref.shape == (N_TILES, bundle.scheme.num_classes, bundle.tile, bundle.tile)
    assert np.abs(out - ref).max() <= TOL
    assert (out.argmax(1) == ref.argmax(1)).mean() >= 0.999
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)  # probabilities, not logits
    # one tile per run() call, as Deepness drives it by default (batch size 1)
    one = sess.run(None, {sess.get_inputs()[0].name: raw[1:2]})[0]
    assert np.abs(one[0] - ref[1]).max() <= TOL


def test_deepness_preprocessing_feeds_digital_numbers(bundle, sample, exported):
    x, raw = _tiles(bundle, sample, list(bundle.s2_bands), list(bundle.s2_bands))
    ref = _torch_probs(bundle, x)
    # the sample is int16: Deepness hands the band values over as stored
    tiles_nhwc = np.transpose(raw.astype(np.int16), (0, 2, 3, 1))
    sess = _session(exported)
    out = sess.run(None, {"input": _deepness_preprocess(tiles_nhwc, _meta(exported))})[0]
    assert np.abs(out - ref).max() <= TOL


def test_metadata_holds_the_deepness_keys(bundle, exported):
    meta = {k: json.loads(v) for k, v in _meta(exported).items()}
    assert meta["model_type"] == "Segmentor"
    names = meta["class_names"]
    assert [names[str(i)] for i in range(len(names))] == list(bundle.scheme.names)
    assert meta["resolution"] == 1000  # cm per px: the 10 m grid
    assert meta["tile_size"] == meta["tiles_size"] == bundle.tile == 256
    # Deepness' overlap in px for an integer percent: int(T * p / 100 * 2) // 2
    p = meta["tiles_overlap"]
    assert isinstance(p, int) and int(256 * p / 100 * 2) // 2 >= bundle.overlap
    assert int(256 * (p - 1) / 100 * 2) // 2 < bundle.overlap  # the smallest such percent
    assert meta["seg_thresh"] == 0 and meta["seg_small_segment"] == 0
    n = len(bundle.s2_bands)
    assert meta["standardization_mean"] == [0.0] * n
    assert np.allclose(meta["standardization_std"], [1 / 255] * n)
    assert meta["sparsevit_bands"] == list(bundle.s2_bands) == [b for b in S2_BANDS if b != "B10"]
    assert meta["sparsevit_input_units"] == "dn"
    assert meta["sparsevit_normalization"]["mean"] == pytest.approx(bundle.normalizer.mean)
    sess = _session(exported)
    (inp,), (outp,) = sess.get_inputs(), sess.get_outputs()
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [n, 256, 256]  # free batch
    # Deepness checks: one 4-D output, square, channels = classes
    assert isinstance(outp.shape[0], str) and outp.shape[1:] == [bundle.scheme.num_classes, 256, 256]
    model = onnx.load(str(exported))
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {17}
    assert all(i.data_type == onnx.TensorProto.FLOAT for i in model.graph.initializer
               if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16))


def test_band_subset_feeds_the_others_as_absent(bundle, sample, tmp_path):
    out = tmp_path / "rgbn.onnx"
    assert main(["export-model", str(default_model_path()), "--onnx", str(out),
                 "--bands", ",".join(SUBSET)]) == 0
    have = [b for b in bundle.s2_bands if b in SUBSET]  # what predict reads from a 4-band raster
    x, raw = _tiles(bundle, sample, have, SUBSET)
    ref = _torch_probs(bundle, x)
    sess = _session(out)
    assert sess.get_inputs()[0].shape[1] == 4
    got = sess.run(None, {"input": raw})[0]
    assert np.abs(got - ref).max() <= TOL
    meta = {k: json.loads(v) for k, v in _meta(out).items()}
    assert meta["sparsevit_bands"] == SUBSET
    assert meta["sparsevit_absent_bands"] == [b for b in bundle.s2_bands if b not in SUBSET]
    assert len(meta["standardization_std"]) == 4


def test_l1c_stack_and_dn255_input(bundle, sample, tmp_path):
    """``--bands esa``: the 13 bands of an L1C stack, B10 read and ignored; ``dn255``: the graph
    divides nothing, it multiplies Deepness' DN/255 back (identity standardisation)."""
    out = tmp_path / "l1c.onnx"
    assert main(["export-model", str(default_model_path()), "--onnx", str(out), "--bands", "esa",
                 "--input-units", "dn255", "--batch-size", "1"]) == 0
    x, raw = _tiles(bundle, sample, list(bundle.s2_bands), list(S2_BANDS))
    ref = _torch_probs(bundle, x)
    meta = _meta(out)
    assert json.loads(meta["standardization_std"]) == [1.0] * 13
    assert json.loads(meta["sparsevit_ignored_inputs"]) == ["B10"]
    sess = _session(out)
    assert sess.get_inputs()[0].shape == [1, 13, 256, 256]  # fixed batch
    tiles_nhwc = np.transpose(raw.astype(np.int16), (0, 2, 3, 1))
    for k in range(N_TILES):  # the fixed batch of 1: one run() per tile
        got = sess.run(None, {"input": _deepness_preprocess(tiles_nhwc[k:k + 1], meta)})[0]
        assert np.abs(got[0] - ref[k]).max() <= TOL


def test_no_data_pixels_are_fed_as_band_means(bundle, exported):
    """A pixel with every input 0 (or NaN) is no data: the engine feeds it as 0 after
    normalisation, the graph must do the same."""
    rng = np.random.default_rng(0)
    raw = rng.uniform(200, 3000, (1, 12, 256, 256)).astype(np.float32)
    raw[:, :, :40, :] = 0.0
    raw[:, 3, 100:120, 100:120] = np.nan
    x = bundle.normalizer(torch.from_numpy(np.nan_to_num(raw)))
    invalid = torch.from_numpy((raw == 0).all(1) | np.isnan(raw).any(1))
    x = torch.where(invalid.unsqueeze(1), torch.zeros(()), x)
    ref = _torch_probs(bundle, x)
    got = _session(exported).run(None, {"input": raw})[0]
    assert np.abs(got - ref).max() <= TOL


def test_bad_bundle_path_is_an_input_error(tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert main(["export-model", str(tmp_path / "no_such_model"), "--onnx", str(out)]) == 2
    assert "model not found" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_bands_are_input_errors(tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert main(["export-model", str(default_model_path()), "--onnx", str(out),
                 "--bands", "B02,B03"]) == 2  # the model needs B02, B03 and B04
    assert "B04" in capsys.readouterr().err
    assert main(["export-model", str(default_model_path()), "--onnx", str(out),
                 "--bands", "B02,B03,B04,XYZ"]) == 2
    assert not list(tmp_path.iterdir())


def test_missing_output_folder_is_an_output_error(tmp_path):
    assert main(["export-model", str(default_model_path()), "--onnx",
                 str(tmp_path / "nope" / "x.onnx")]) == 3
