"""The EuroSAT RGB -> L1C DN calibration, re-derived on the patches present in both sets."""
from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest

from sparsevit.datasets import rgb_calibration


def _script(repo_root):
    spec = importlib.util.spec_from_file_location("calibrate", repo_root / "scripts" / "calibrate_eurosat_rgb.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calibrate"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def pairs(repo_root, data_dir):
    files = _script(repo_root).ms_files(data_dir)
    return rgb_calibration.paired_arrays(files, data_dir / "eurosat_rgb" / "EuroSAT_RGB.zip")


def test_every_ms_patch_has_its_rgb_twin(pairs):
    dn, levels = pairs
    assert dn.shape == levels.shape == (469, 3, 64, 64)


def test_fit_is_near_linear_and_matches_the_committed_calibration(pairs, data_dir):
    cal = rgb_calibration.fit(*pairs)
    for band in rgb_calibration.RGB_CHANNEL_BANDS:
        assert 0.088 < cal.gain[band] < 0.094, band   # about 0.0925 x DN
        assert abs(cal.offset[band]) < 5
        assert cal.correlation[band] > 0.99
        assert cal.rmse_levels[band] < 5
    committed = rgb_calibration.load(data_dir / "eurosat_rgb" / "calibration.json")
    for band in rgb_calibration.RGB_CHANNEL_BANDS:
        assert committed.gain[band] == pytest.approx(cal.gain[band], rel=1e-6)
        assert committed.offset[band] == pytest.approx(cal.offset[band], abs=1e-4)


def test_levels_to_dn_inverts_the_fit_up_to_quantisation(data_dir):
    cal = rgb_calibration.load(data_dir / "eurosat_rgb" / "calibration.json")
    dn = np.random.default_rng(0).uniform(0, 2600, (3, 16, 16)).astype(np.float32)
    back = cal.to_dn(cal.to_levels(dn))
    step = 1 / min(cal.gain.values())  # one grey level in DN (~11)
    assert np.abs(back - dn)[dn > 40].max() <= step / 2 + 1e-3
    # saturated levels only give the lower bound (~DN 2770)
    sat = cal.to_dn(np.full((3, 2, 2), 255, np.uint8))
    assert np.all((sat > 2700) & (sat < 2900))


def test_calibration_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "calibration.json"
    bad.write_text(json.dumps({"gain": {}}))
    with pytest.raises(Exception, match="calibration"):
        rgb_calibration.load(bad)
