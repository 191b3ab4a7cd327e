"""Coarse bands an export upsampled by nearest neighbour are found and smoothed (io/blocky_bands)."""
import json

import numpy as np
import torch
from affine import Affine
from fixtures.rasters import write_raster
from rasterio.windows import Window
from scipy.ndimage import gaussian_filter

from sparsevit.bands import S2_BANDS_NO_CIRRUS, S2_RESOLUTION_M
from sparsevit.io.blocky_bands import smooth, tent
from sparsevit.io.scene import open_s2

T10 = Affine(10, 0, 500000, 0, -10, 5000000)
SIDE = 96


def _field(rng, shape, sigma=1.5):
    """Smooth 12-bit-like DN texture (no two neighbours equal by chance)."""
    return 2000 + 250 * gaussian_filter(rng.standard_normal(shape), sigma) / 0.2


def _stack(blocky: bool, seed=0, quantise=1):
    """The 12 bands on one 10 m grid; coarse bands from native-resolution fields, upsampled by
    nearest neighbour (blocky) or bilinearly (smooth); also the native 20 m arrays."""
    rng = np.random.default_rng(seed)
    bands, native = [], {}
    for b in S2_BANDS_NO_CIRRUS:
        k = S2_RESOLUTION_M[b] // 10
        if k == 1:
            arr = _field(rng, (SIDE, SIDE))
        else:
            nat = _field(rng, (SIDE // k, SIDE // k), sigma=1.0)
            native[b] = nat
            if blocky:
                arr = np.kron(nat, np.ones((k, k)))
            else:
                arr = torch.nn.functional.interpolate(torch.from_numpy(nat)[None, None], scale_factor=k,
                                                      mode="bilinear", align_corners=False)[0, 0].numpy()
        bands.append(np.round(arr / quantise) * quantise)
    return np.stack(bands).astype("uint16"), native


def _write(tmp_path, data, name="x.tif"):
    return write_raster(tmp_path / name, data, T10, descriptions=list(S2_BANDS_NO_CIRRUS))


def test_tent_of_factor_two_is_bilinear_from_nearest_blocks():
    assert np.allclose(tent(2), [0.25, 0.5, 0.25])
    nat = np.random.default_rng(1).uniform(500, 3000, (12, 12)).astype(np.float32)
    blocks = np.kron(nat, np.ones((2, 2), np.float32))
    got = smooth(blocks, np.ones_like(blocks, bool), (2.0, 2.0))
    want = torch.nn.functional.interpolate(torch.from_numpy(nat)[None, None], scale_factor=2,
                                           mode="bilinear", align_corners=False)[0, 0].numpy()
    # exact away from the border (torch clamps the edge differently)
    assert np.allclose(got[1:-1, 1:-1], want[1:-1, 1:-1], atol=1e-3)


def test_nearest_upsampled_coarse_bands_are_found_and_smoothed(tmp_path):
    data, native = _stack(blocky=True)
    f = _write(tmp_path, data)
    with open_s2(f) as scene:
        assert scene.smoothing is not None
        assert set(scene.smoothing.factors) == {"B01", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"}
        assert scene.smoothing.factors["B05"] == (2.0, 2.0) and scene.smoothing.factors["B09"] == (6.0, 6.0)
        assert any("nearest neighbour" in w and "--keep-blocky-bands" in w for w in scene.warnings)
        assert scene.to_dict()["smoothed"]["bands"]["B11"] == [2.0, 2.0]
        got, valid = scene.read(bands=["B05", "B02"])
    assert valid.all()
    want = torch.nn.functional.interpolate(torch.from_numpy(native["B05"])[None, None], scale_factor=2,
                                           mode="bilinear", align_corners=False)[0, 0].numpy()
    # the read is the bilinear upsampling of the native band (to the rounding of the stored DN)
    assert np.abs(got[0, 1:-1, 1:-1] - want[1:-1, 1:-1]).max() < 1.0
    assert np.array_equal(got[1], data[S2_BANDS_NO_CIRRUS.index("B02")].astype(np.float32))
    with open_s2(f, smooth_blocky=False) as raw:
        assert raw.smoothing is None
        stored, _ = raw.read(bands=["B05"])
    assert np.array_equal(stored[0], data[S2_BANDS_NO_CIRRUS.index("B05")].astype(np.float32))


def test_smooth_and_quantised_inputs_are_left_as_stored(tmp_path):
    smooth_f = _write(tmp_path, _stack(blocky=False)[0], "smooth.tif")
    # coarse steps in every band (as in an 8-bit-like export): equal neighbours everywhere,
    # not only in the 20 m bands
    quant_f = _write(tmp_path, _stack(blocky=False, quantise=400)[0], "quantised.tif")
    for f in (smooth_f, quant_f):
        with open_s2(f) as scene:
            assert scene.smoothing is None, f
            assert not any("nearest neighbour" in w for w in scene.warnings)


def test_tiles_read_apart_match_the_whole_read(tmp_path):
    f = _write(tmp_path, _stack(blocky=True, seed=3)[0])
    with open_s2(f) as scene:
        whole, _ = scene.read()
        for win in (Window(0, 0, 40, 40), Window(37, 51, 40, 45), Window(56, 56, 40, 40)):
            part, _ = scene.read(win)
            r, c, h, w = win.row_off, win.col_off, win.height, win.width
            assert np.array_equal(part, whole[:, r:r + h, c:c + w]), win


def test_no_data_does_not_bleed_into_smoothed_values(tmp_path):
    data, _ = _stack(blocky=True, seed=4)
    data[:, :, :30] = 0  # an empty strip at the left (a zero-filled tile edge)
    f = write_raster(tmp_path / "edge.tif", data, T10, nodata=0, descriptions=list(S2_BANDS_NO_CIRRUS))
    crop = write_raster(tmp_path / "crop.tif", data[:, :, 30:], T10 * Affine.translation(30, 0), nodata=0,
                        descriptions=list(S2_BANDS_NO_CIRRUS))
    with open_s2(f) as scene, open_s2(crop) as alone:
        assert scene.smoothing is not None and alone.smoothing is not None
        got, valid = scene.read(bands=["B05", "B11"])
        want, _ = alone.read(bands=["B05", "B11"])
    assert not valid[:, :30].any() and valid[:, 30:].all()
    # the valid part smooths as if the empty strip were not there: no pull towards 0
    assert np.allclose(got[:, :, 30:], want, atol=1e-3)


def test_info_names_the_smoothing_and_the_flag_turns_it_off(tmp_path, capsys):
    from sparsevit.cli import main

    f = _write(tmp_path, _stack(blocky=True)[0])
    products = []
    for extra in ([], ["--keep-blocky-bands"]):
        assert main(["--json", "info", str(f), *extra]) == 0
        events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        products.append(next(e for e in events if e["event"] == "result")["products"][0])
    on, off = products
    assert "B05" in on["smoothed"]["bands"] and off["smoothed"] is None
    assert any(a.startswith("smooth B01, B05") for a in on["actions"])
    assert not any(a.startswith("smooth") for a in off["actions"])
