import numpy as np
import pytest
from affine import Affine
from fixtures.rasters import write_raster

from sparsevit.bands import S2_BANDS_NO_CIRRUS
from sparsevit.errors import InputError
from sparsevit.io.scene import ensure_has_data, open_s1, open_s2

T10 = Affine(10, 0, 500000, 0, -10, 5000000)


def _one_line(err):
    msg = str(err.value)
    assert "\n" not in msg and err.value.fix
    return msg


def test_not_a_raster(tmp_path):
    f = tmp_path / "notes.tif"
    f.write_text("hello")
    with pytest.raises(InputError, match="not a readable raster") as err:
        open_s2(f)
    assert "notes.tif" in _one_line(err)


def test_truncated_file(tmp_path):
    f = write_raster(tmp_path / "full.tif", np.ones((12, 64, 64), "uint16"), T10,
                     descriptions=list(S2_BANDS_NO_CIRRUS))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(f.read_bytes()[:2000])
    with pytest.raises(InputError) as err:
        with open_s2(cut) as scene:
            scene.read()
    assert "cut.tif" in _one_line(err)


def test_unsupported_dtype(tmp_path):
    f = write_raster(tmp_path / "c.tif", np.ones((12, 4, 4), "complex64"), T10)
    with pytest.raises(InputError, match="unsupported data type complex64") as err:
        open_s2(f)
    _one_line(err)


def test_all_nodata(tmp_path):
    f = write_raster(tmp_path / "e.tif", np.zeros((12, 8, 8), "uint16"), T10, nodata=0,
                     descriptions=list(S2_BANDS_NO_CIRRUS))
    with open_s2(f) as scene, pytest.raises(InputError, match="only no-data") as err:
        ensure_has_data(scene)
    assert "e.tif" in _one_line(err)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        open_s2(tmp_path / "nothing.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no raster files"):
        open_s2(tmp_path / "empty")


def test_s1_raw_amplitude_rejected(tmp_path):
    f = write_raster(tmp_path / "amp.tif", np.full((2, 8, 8), 400, "uint16"), T10,
                     descriptions=["VV", "VH"])
    with pytest.raises(InputError, match="neither dB nor linear"):
        open_s1(f)
